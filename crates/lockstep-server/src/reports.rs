//! The report endpoints: private vulnerability reports awaiting triage, and the decisions on
//! them (`GET /api/reports`, `GET /api/reports/{owner}/{repo}/{ghsa}`, `…/reject`, `…/merge`,
//! and `POST /api/cases` with `from_report`).
//!
//! Every handler runs the same steps: authenticate (401), parse (400/422), find the workflows
//! that list the report's repository (422 if none), resolve the caller's permissions for it,
//! let the core decide who may (403), then read or decide (422 for a report that is not
//! awaiting triage).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lockstep_core::engine::intake::{ReportAction, ReportState, authorize_report};
use lockstep_core::input::Principal;
use lockstep_core::{CaseId, OpenCase, RepoId, Workflow};
use lockstep_store::StoredReport;
use serde::Deserialize;

use crate::AppState;
use crate::api::{outcome_of, parse_body};
use crate::auth::{Bearer, Caller};
use crate::error::ApiError;
use crate::surface::{
    Acted, CaseView, MergeReport, OpenFields, OpenRequest, Opened, RejectReport, ReportList,
    ReportRef, ReportSummary, ReportView, RuleView,
};

type Shared = Arc<AppState>;

/// Every workflow of the server's workflows directory; a file that does not parse is logged
/// and left out.
async fn workflows(app: &AppState) -> Result<Vec<Workflow>, ApiError> {
    let Some(dir) = &app.workflows_dir else {
        return Ok(Vec::new());
    };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        // No workflows directory: no repository is any workflow's.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the workflows directory");
            return Err(ApiError::internal("cannot read the workflows directory"));
        }
    };
    let mut out = Vec::new();
    let mut names = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            names.push(path);
        }
    }
    names.sort();
    for path in names {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => match Workflow::parse(&file, &text) {
                Ok(w) => out.push(w),
                Err(e) => tracing::error!(error = %e, "a workflow file is invalid"),
            },
            Err(e) => tracing::error!(file = %file, error = %e, "cannot read a workflow file"),
        }
    }
    Ok(out)
}

/// The caller, with GitHub's permissions gathered for `repos` under each workflow.
async fn principal(
    app: &AppState,
    bearer: &Caller,
    workflows: &[Workflow],
    repos: &[RepoId],
) -> Result<Principal, ApiError> {
    let mut principal = app.identities.authenticate(bearer).await?;
    for w in workflows {
        let mine: Vec<RepoId> = repos
            .iter()
            .filter(|r| w.repos.contains_key(*r))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let p = app.identities.principal(bearer, Some(w), &mine).await?;
        principal.github_maintains.extend(p.github_maintains);
    }
    Ok(principal)
}

fn summary(r: &StoredReport) -> ReportSummary {
    let r = &r.report;
    ReportSummary {
        repo: r.repo.to_string(),
        ghsa_id: r.ghsa.to_string(),
        summary: r.summary.clone(),
        reporter: r.reporter.to_string(),
        received_at: r.received_at,
        state: r.state.as_str().to_owned(),
        case_id: r.case_id.as_ref().map(ToString::to_string),
    }
}

fn view(r: &StoredReport, workflows: &[&Workflow]) -> ReportView {
    use lockstep_core::vuln::Rating;
    let rep = &r.report;
    let (severity, cvss) = match &rep.rating {
        Some(Rating::Severity(s)) => (Some(Rating::Severity(*s).severity()), None),
        Some(Rating::Cvss(v)) => (Some(v.severity()), Some(v.as_str().to_owned())),
        None => (None, None),
    };
    ReportView {
        summary: summary(r),
        description: rep.description.clone(),
        severity: severity.map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }),
        cvss,
        cwes: rep.cwes.iter().map(ToString::to_string).collect(),
        credits: rep
            .credits
            .iter()
            .map(|c| format!("{}:{}", c.login, c.kind.as_str()))
            .collect(),
        rm: serde_json::to_value(rep.rm)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        decision: rep
            .decision
            .as_ref()
            .and_then(|d| serde_json::to_value(d).ok()),
        close_state: r.close_state.clone(),
        close_error: r.close_error.clone(),
        workflows: workflows.iter().map(|w| w.name.clone()).collect(),
        rules: workflows
            .iter()
            .flat_map(|w| {
                w.triage.out_of_scope.iter().map(|rule| RuleView {
                    workflow: w.name.clone(),
                    id: rule.id.clone(),
                    summary: rule.summary.clone(),
                    guidance: rule.guidance.clone(),
                })
            })
            .collect(),
    }
}

fn reference(owner: &str, repo: &str, ghsa: &str) -> Result<ReportRef, ApiError> {
    ReportRef::parse(&format!("{owner}/{repo}/{ghsa}")).map_err(ApiError::bad_request)
}

fn listing<'a>(workflows: &'a [Workflow], repo: &RepoId) -> Vec<&'a Workflow> {
    workflows
        .iter()
        .filter(|w| w.repos.contains_key(repo))
        .collect()
}

/// The stored report, which must be awaiting triage when `undecided`.
async fn stored(app: &AppState, r: &ReportRef, undecided: bool) -> Result<StoredReport, ApiError> {
    let found = app
        .store
        .report(&r.repo, &r.ghsa)
        .await
        .map_err(ApiError::store)?;
    match found {
        None => Err(ApiError::unprocessable(format!(
            "{r} is not a report awaiting triage (Lockstep has not seen it; the poll or the reported webhook records it)"
        ))),
        Some(s) if undecided && s.report.state != ReportState::New => Err(ApiError::unprocessable(
            format!("{r} was already decided ({})", s.report.state.as_str()),
        )),
        Some(s) => Ok(s),
    }
}

/// Checks the caller's authority over reports of `r`'s repository (422 if no workflow lists
/// it, 403 if they have none), and returns the workflows that list it.
async fn authorized<'a>(
    app: &AppState,
    bearer: &Caller,
    all: &'a [Workflow],
    repo: &RepoId,
    action: ReportAction,
) -> Result<(Principal, Vec<&'a Workflow>), ApiError> {
    let listing = listing(all, repo);
    let p = principal(app, bearer, all, std::slice::from_ref(repo)).await?;
    authorize_report(&p, repo, &listing, action)
        .map_err(|r| ApiError::store(lockstep_store::Error::Rejected(r)))?;
    Ok((p, listing))
}

/// `GET /api/reports`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    all: Option<bool>,
}

/// `GET /api/reports[?all=true]`: the reports awaiting triage (with `all`, decided ones too)
/// on the repositories the caller coordinates or maintains. Someone with no role in any
/// workflow is refused.
pub(crate) async fn list(
    State(app): State<Shared>,
    bearer: Bearer,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let reports = visible(&app, &bearer, query.all.unwrap_or(false)).await?;
    Ok(Json(ReportList { reports }).into_response())
}

/// The reports awaiting triage (with `all`, decided ones too) on the repositories `caller`
/// coordinates or maintains; refused (403) if they have no role in any workflow. For the
/// API's list and the dashboard's.
pub(crate) async fn visible(
    app: &AppState,
    caller: &Caller,
    all: bool,
) -> Result<Vec<ReportSummary>, ApiError> {
    let workflows = workflows(app).await?;
    let repos: Vec<RepoId> = workflows
        .iter()
        .flat_map(|w| w.repos.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let p = principal(app, caller, &workflows, &repos).await?;
    let may = |repo: &RepoId| {
        authorize_report(&p, repo, &listing(&workflows, repo), ReportAction::View).is_ok()
    };
    if !repos.iter().any(may) {
        return Err(ApiError::forbidden(format!(
            "refused: {} may not read reports: they coordinate no workflow and maintain none of its repositories",
            p.actor
        )));
    }
    let stored = app.store.reports(all).await.map_err(ApiError::store)?;
    Ok(stored
        .iter()
        .filter(|r| may(&r.report.repo))
        .map(summary)
        .collect())
}

/// `GET /api/reports/{owner}/{repo}/{ghsa}`: the report and its workflows' triage rules.
pub(crate) async fn show(
    State(app): State<Shared>,
    bearer: Bearer,
    Path((owner, repo, ghsa)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let r = reference(&owner, &repo, &ghsa)?;
    let all = workflows(&app).await?;
    let (_, listing) = authorized(&app, &bearer, &all, &r.repo, ReportAction::View).await?;
    let s = stored(&app, &r, false).await?;
    Ok(Json(view(&s, &listing)).into_response())
}

/// `POST /api/reports/{owner}/{repo}/{ghsa}/reject`: closes the report (the runtime closes
/// its advisory on GitHub), recording who, why and the rule in the audit trail.
pub(crate) async fn reject(
    State(app): State<Shared>,
    bearer: Bearer,
    Path((owner, repo, ghsa)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let req: RejectReport = parse_body(&body)?;
    let r = reference(&owner, &repo, &ghsa)?;
    let all = workflows(&app).await?;
    let (p, listing) = authorized(&app, &bearer, &all, &r.repo, ReportAction::Reject).await?;
    let s = stored(&app, &r, true).await?;
    let now = app.store.now().await.map_err(ApiError::store)?;
    let outcome = s
        .report
        .reject(&p, &listing, &req.reason, req.rule.as_deref(), now)
        .map_err(|e| ApiError::store(lockstep_store::Error::Rejected(e)))?;
    let result = app.store.reject_report(&outcome, &req).await;
    app.metrics.command(
        "reject_report",
        match &result {
            Ok(()) => crate::metrics::CommandOutcome::Committed,
            Err(_) => crate::metrics::CommandOutcome::Rejected,
        },
    );
    result.map_err(ApiError::store)?;
    app.wake();
    tracing::info!(report = %r, actor = %p.actor, rule = ?req.rule, "report rejected");
    let s = stored(&app, &r, false).await?;
    Ok(Json(view(&s, &listing)).into_response())
}

/// `POST /api/reports/{owner}/{repo}/{ghsa}/merge`: a second report of a case's
/// vulnerability joins it. Answers with the case, as an action does.
pub(crate) async fn merge(
    State(app): State<Shared>,
    bearer: Bearer,
    Path((owner, repo, ghsa)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let req: MergeReport = parse_body(&body)?;
    let r = reference(&owner, &repo, &ghsa)?;
    let case_id: CaseId = crate::surface::field(&req.case).map_err(ApiError::bad_request)?;
    let case = app.store.case(&case_id).await.map_err(ApiError::store)?;
    let all = workflows(&app).await?;
    authorized(&app, &bearer, &all, &r.repo, ReportAction::Merge).await?;
    let s = stored(&app, &r, true).await?;
    let p = app
        .identities
        .for_case(&bearer, &case, std::slice::from_ref(&r.repo))
        .await?;
    let result = app
        .store
        .merge_report(&case_id, &p, &s.report, req.reason.as_deref())
        .await;
    app.metrics.command("merge_report", outcome_of(&result));
    let committed = result.map_err(ApiError::store)?;
    app.wake();
    tracing::info!(report = %r, case = %case_id, actor = %p.actor, "report merged");
    let now = app.store.now().await.map_err(ApiError::store)?;
    Ok(Json(Acted {
        case: CaseView::of(&committed.case, now),
        events_committed: committed.events.len(),
    })
    .into_response())
}

/// `POST /api/cases` with `from_report`: the case opens from the report, whose text, rating,
/// CWEs and credits it takes unless the request overrides them.
pub(crate) async fn open_from_report(
    app: &AppState,
    bearer: &Caller,
    req: OpenRequest,
    workflow: Workflow,
    fields: OpenFields,
) -> Result<Response, ApiError> {
    let Some(r) = fields.from_report.clone() else {
        return Err(ApiError::internal("open_from_report without a report"));
    };
    if !workflow.repos.contains_key(&r.repo) {
        return Err(ApiError::store(lockstep_store::Error::Rejected(
            lockstep_core::Rejection::NotInWorkflow {
                repo: r.repo.clone(),
                workflow: workflow.name.clone(),
            },
        )));
    }
    let principal = app
        .identities
        .principal(bearer, Some(&workflow), std::slice::from_ref(&r.repo))
        .await?;
    authorize_report(&principal, &r.repo, &[&workflow], ReportAction::Accept)
        .map_err(|e| ApiError::store(lockstep_store::Error::Rejected(e)))?;
    let s = stored(app, &r, true).await?;
    app.identities.check_credits(&fields.credits).await?;
    let mut vulnerability = s.report.vulnerability();
    if !req.summary.is_empty() {
        vulnerability.summary = req.summary;
    }
    if !req.description.is_empty() {
        vulnerability.description = req.description;
    }
    if let Some(rating) = fields.rating {
        vulnerability.rating = rating;
    }
    if !fields.cwes.is_empty() {
        vulnerability.cwes = fields.cwes;
    }
    if !fields.credits.is_empty() {
        vulnerability.credits = fields.credits;
    }
    let open = OpenCase {
        case_id: match &fields.case_id {
            Some(id) => id.clone(),
            None => CaseId::generate(
                app.store.now().await.map_err(ApiError::store)?,
                rand::random(),
            ),
        },
        workflow,
        scope: fields.scope,
        vulnerability,
        embargo_until: fields.embargo_until,
    };
    let result = app
        .store
        .open_case_from_report(&principal, open, &s.report)
        .await;
    app.metrics.command("open_case", outcome_of(&result));
    let committed = result.map_err(ApiError::store)?;
    app.wake();
    let case = &committed.case;
    tracing::info!(case = %case.id, report = %r, actor = %principal.actor, repos = case.scope().count(), "case opened from a report");
    let mut response = (
        StatusCode::CREATED,
        Json(Opened {
            case_id: case.id.clone(),
            repos: case.scope().map(|(r, _)| r.clone()).collect(),
            embargo_until: case.embargo.until,
            effects: committed.effects_inserted,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/cases/{}", case.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
