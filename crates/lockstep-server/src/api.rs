//! The JSON endpoints for the case commands.
//!
//! Every handler runs the same steps, in this order, so that the answer does not depend on
//! what a caller could not see: authenticate the token (401), parse the body (400 malformed
//! JSON or a malformed field, 422 a missing or unknown field), load the case (404), resolve
//! the caller's permissions for the repositories concerned, and submit the input to the store,
//! where the core decides (403 not authorized, 422 or 409 otherwise).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::vuln::{Credit, CvssVector, PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::{Case, CaseId, Command, Input, OpenCase, RepoId, Timestamp, Workflow};
use lockstep_store::Committed;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::Bearer;
use crate::error::ApiError;
use crate::metrics::CommandOutcome;
use crate::{AppState, view};

type Shared = Arc<AppState>;

/// Parses a JSON body: syntax errors → 400, a missing, unknown or mistyped field → 422.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable(format!("invalid request body: {e}"))
        }
        _ => ApiError::bad_request(format!("malformed JSON: {e}")),
    })
}

/// Parses a field with its `FromStr`; the identifier types' errors name the field's kind.
fn field<T: std::str::FromStr>(value: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(ApiError::bad_request)
}

fn case_id(id: &str) -> Result<CaseId, ApiError> {
    field(id)
}

async fn load(app: &AppState, id: &CaseId) -> Result<Case, ApiError> {
    app.store.case(id).await.map_err(ApiError::store)
}

fn outcome_of(result: &Result<Committed, lockstep_store::Error>) -> CommandOutcome {
    match result {
        Ok(c) if c.events.is_empty() => CommandOutcome::Unchanged,
        Ok(_) => CommandOutcome::Committed,
        Err(lockstep_store::Error::Rejected(r)) if r.is_not_authorized() => CommandOutcome::Refused,
        Err(lockstep_store::Error::Rejected(_) | lockstep_store::Error::DuplicateCase { .. }) => {
            CommandOutcome::Rejected
        }
        Err(_) => CommandOutcome::Error,
    }
}

/// Loads the case, checks that the caller may read it, and returns it.
pub(crate) async fn readable(app: &AppState, bearer: &Bearer, id: &str) -> Result<Case, ApiError> {
    app.identities.authenticate(bearer).await?;
    let id = case_id(id)?;
    let case = load(app, &id).await?;
    let principal = app
        .identities
        .for_case(bearer, &case, &case.repos())
        .await?;
    if !case.may_view(&principal) {
        return Err(ApiError::forbidden(case.view_refusal(&principal)));
    }
    Ok(case)
}

/// `GET /api/cases`: the cases the caller may read, oldest first.
pub(crate) async fn list(State(app): State<Shared>, bearer: Bearer) -> Result<Response, ApiError> {
    app.identities.authenticate(&bearer).await?;
    let summaries = app.store.list_cases().await.map_err(ApiError::store)?;
    let mut visible = Vec::new();
    for summary in summaries {
        let case = load(&app, &summary.id).await?;
        let principal = app
            .identities
            .for_case(&bearer, &case, &case.repos())
            .await?;
        if case.may_view(&principal) {
            visible.push(summary);
        }
    }
    Ok(Json(json!({ "cases": visible })).into_response())
}

/// `GET /api/cases/{id}`.
pub(crate) async fn show(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = readable(&app, &bearer, &id).await?;
    let mut view = view::case(&case);
    // After publication: each advisory's copy in GitHub's global database.
    let now = app.store.now().await.map_err(ApiError::store)?;
    view["propagation"] = json!(case.propagation(now));
    view["propagated"] = json!(case.propagated());
    Ok(Json(view).into_response())
}

/// `GET /api/cases/{id}/plan`: the core's `Plan`.
pub(crate) async fn plan(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = readable(&app, &bearer, &id).await?;
    Ok(Json(case.plan()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    /// The case id; generated (`LS-YYYYMMDD-XXXXXX`) when absent.
    #[serde(default)]
    case_id: Option<String>,
    /// A workflow of the workflows directory, by file stem.
    #[serde(default)]
    workflow_name: Option<String>,
    /// A workflow's TOML text (only when the server allows inline workflows).
    #[serde(default)]
    workflow: Option<String>,
    summary: String,
    description: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    cvss: Option<String>,
    #[serde(default, alias = "cwes")]
    cwe: Vec<String>,
    #[serde(default, alias = "credits")]
    credit: Vec<String>,
    #[serde(default, alias = "repos")]
    repo: Vec<String>,
    #[serde(default)]
    embargo_until: Option<String>,
}

fn valid_workflow_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn resolve_workflow(app: &AppState, body: &OpenBody) -> Result<Workflow, ApiError> {
    match (&body.workflow_name, &body.workflow) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give workflow_name or workflow, not both",
        )),
        (None, None) => Err(ApiError::bad_request(
            "workflow_name is required (the name of a workflow file on the server)",
        )),
        (None, Some(text)) => {
            if !app.inline_workflows {
                return Err(ApiError::forbidden(
                    "this server does not accept inline workflows; name one of its workflows with workflow_name",
                ));
            }
            Workflow::parse("workflow", text).map_err(ApiError::unprocessable)
        }
        (Some(name), None) => {
            if !valid_workflow_name(name) {
                return Err(ApiError::bad_request(
                    "workflow_name must be 1 to 64 ASCII letters, digits, '-' or '_'",
                ));
            }
            let Some(dir) = &app.workflows_dir else {
                return Err(ApiError::unprocessable(
                    "this server has no workflows directory configured",
                ));
            };
            let file = format!("{name}.toml");
            let text = match tokio::fs::read_to_string(dir.join(&file)).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ApiError::unprocessable(format!(
                        "no workflow named {name:?}"
                    )));
                }
                Err(e) => {
                    tracing::error!(file = %file, error = %e, "cannot read a workflow file");
                    return Err(ApiError::internal(format!("cannot read workflow {name:?}")));
                }
            };
            Workflow::parse(&file, &text).map_err(|e| {
                tracing::error!(error = %e, "a workflow file of the workflows directory is invalid");
                ApiError::internal(format!("workflow {name:?} on the server is invalid: {e}"))
            })
        }
    }
}

/// `POST /api/cases`: opens a case. 201 with `{"case_id", "repos", "embargo_until",
/// "effects"}` and `Location: /api/cases/{id}`.
pub(crate) async fn open(
    State(app): State<Shared>,
    bearer: Bearer,
    body: Bytes,
) -> Result<Response, ApiError> {
    app.identities.authenticate(&bearer).await?;
    let req: OpenBody = parse_body(&body)?;
    let workflow = resolve_workflow(&app, &req).await?;
    let rating = match (&req.severity, &req.cvss) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give severity or cvss, not both (GitHub takes one or the other)",
            ));
        }
        (Some(s), None) => Rating::Severity(field::<Severity>(s)?),
        (None, Some(v)) => Rating::Cvss(field::<CvssVector>(v)?),
        (None, None) => return Err(ApiError::bad_request("give severity or cvss")),
    };
    let cwes = req
        .cwe
        .iter()
        .map(|c| field(c))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let credits = req
        .credit
        .iter()
        .map(|c| field::<Credit>(c))
        .collect::<Result<Vec<_>, _>>()?;
    let scope = req
        .repo
        .iter()
        .map(|r| field::<RepoId>(r))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let embargo_until = req
        .embargo_until
        .as_deref()
        .map(field::<Timestamp>)
        .transpose()?;
    let given_id = req.case_id.as_deref().map(case_id).transpose()?;
    let principal = app
        .identities
        .principal(&bearer, Some(&workflow), &[])
        .await?;
    app.identities.check_credits(&credits).await?;
    let mut open = OpenCase {
        case_id: match &given_id {
            Some(id) => id.clone(),
            None => CaseId::generate(
                app.store.now().await.map_err(ApiError::store)?,
                rand::random(),
            ),
        },
        workflow,
        scope,
        vulnerability: Vulnerability {
            summary: req.summary,
            description: req.description,
            rating,
            cwes,
            credits,
        },
        embargo_until,
    };
    // A generated id that happens to exist already is drawn again.
    let mut attempts = 0;
    let result = loop {
        let result = app.store.open_case(&principal, open.clone()).await;
        match result {
            Err(lockstep_store::Error::DuplicateCase { .. })
                if given_id.is_none() && attempts < 3 =>
            {
                attempts += 1;
                open.case_id = CaseId::generate(
                    app.store.now().await.map_err(ApiError::store)?,
                    rand::random(),
                );
            }
            other => break other,
        }
    };
    app.metrics.command("open_case", outcome_of(&result));
    let committed = result.map_err(ApiError::store)?;
    app.wake();
    let case = &committed.case;
    tracing::info!(case = %case.id, actor = %principal.actor, repos = case.scope().count(), "case opened");
    let repos: Vec<&RepoId> = case.scope().map(|(r, _)| r).collect();
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "case_id": case.id,
            "repos": repos,
            "embargo_until": case.embargo.until,
            "effects": committed.effects_inserted,
        })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/cases/{}", case.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Runs one command: authenticate, parse the body, load the case, build the command from the
/// body and the case, resolve the caller's permissions for the repositories it concerns, and
/// submit it. Answers 200 with the case as `GET /api/cases/{id}` shows it, plus
/// `events_committed`.
async fn command<B: DeserializeOwned>(
    app: &AppState,
    bearer: &Bearer,
    id: &str,
    body: &[u8],
    name: &'static str,
    build: impl FnOnce(B, &Case) -> Result<(Command, Vec<RepoId>), ApiError>,
) -> Result<Response, ApiError> {
    app.identities.authenticate(bearer).await?;
    let req: B = parse_body(body)?;
    let id = case_id(id)?;
    let case = load(app, &id).await?;
    let (cmd, repos) = build(req, &case)?;
    let principal = app.identities.for_case(bearer, &case, &repos).await?;
    let result = app.store.handle(&id, &principal, Input::Command(cmd)).await;
    let outcome = outcome_of(&result);
    app.metrics.command(name, outcome);
    let committed = match result {
        Ok(c) => c,
        Err(e) => {
            if let lockstep_store::Error::Rejected(r) = &e {
                tracing::info!(case = %id, actor = %principal.actor, command = name, rejection = %r, "command refused");
            }
            return Err(ApiError::store(e));
        }
    };
    if !committed.events.is_empty() {
        app.wake();
    }
    tracing::info!(case = %id, actor = %principal.actor, command = name, events = committed.events.len(), "command accepted");
    let mut view = view::case(&committed.case);
    if let Value::Object(map) = &mut view {
        map.insert("events_committed".into(), committed.events.len().into());
    }
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssessBody {
    repo: String,
    verdict: Verdict,
    reason: String,
}

/// `POST /api/cases/{id}/assess`.
pub(crate) async fn assess(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(&app, &bearer, &id, &body, "assess", |b: AssessBody, _| {
        let repo: RepoId = field(&b.repo)?;
        Ok((
            Command::Assess {
                repo: repo.clone(),
                verdict: b.verdict,
                reason: b.reason,
            },
            vec![repo],
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixBody {
    repo: String,
    patched_versions: String,
    #[serde(default)]
    vulnerable_range: Option<String>,
    #[serde(default, alias = "packages")]
    package: Option<OneOrMany>,
    /// `released` (the default, like `lockstep fix-ready`) or `prepared` (ready in private;
    /// a matching `release` webhook promotes it).
    #[serde(default)]
    stage: Option<FixStage>,
}

/// `POST /api/cases/{id}/fix-ready`.
pub(crate) async fn fix_ready(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(
        &app,
        &bearer,
        &id,
        &body,
        "fix_ready",
        |b: FixBody, case| {
            let repo: RepoId = field(&b.repo)?;
            let names = match b.package {
                Some(OneOrMany::One(p)) => vec![p],
                Some(OneOrMany::Many(ps)) => ps,
                None => case
                    .workflow
                    .repos
                    .get(&repo)
                    .map(|s| s.packages.clone())
                    .unwrap_or_default(),
            };
            let packages = names
                .into_iter()
                .map(|package| PackageFix {
                    package,
                    vulnerable_range: b.vulnerable_range.clone(),
                    patched_versions: b.patched_versions.clone(),
                })
                .collect();
            Ok((
                Command::MarkFix {
                    repo: repo.clone(),
                    stage: b.stage.unwrap_or(FixStage::Released),
                    packages,
                },
                vec![repo],
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    repo: String,
    reason: String,
}

/// `POST /api/cases/{id}/fix-revoke`.
pub(crate) async fn fix_revoke(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(
        &app,
        &bearer,
        &id,
        &body,
        "fix_revoke",
        |b: RevokeBody, _| {
            let repo: RepoId = field(&b.repo)?;
            Ok((
                Command::RevokeFix {
                    repo: repo.clone(),
                    reason: b.reason,
                },
                vec![repo],
            ))
        },
    )
    .await
}

/// `POST /api/cases/{id}/retry`: puts the repository's effects that failed for good back in
/// line.
pub(crate) async fn retry(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(&app, &bearer, &id, &body, "retry", |b: RevokeBody, _| {
        let repo: RepoId = field(&b.repo)?;
        Ok((
            Command::Retry {
                repo: repo.clone(),
                reason: b.reason,
            },
            vec![repo],
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbargoBody {
    until: String,
    reason: String,
}

/// `POST /api/cases/{id}/embargo`.
pub(crate) async fn embargo(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(
        &app,
        &bearer,
        &id,
        &body,
        "set_embargo",
        |b: EmbargoBody, _| {
            Ok((
                Command::SetEmbargo {
                    until: field(&b.until)?,
                    reason: b.reason,
                },
                Vec::new(),
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

/// `POST /api/cases/{id}/close`: the case takes no more commands; unpublished drafts close.
pub(crate) async fn close(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(&app, &bearer, &id, &body, "close", |b: ReasonBody, _| {
        Ok((Command::Close { reason: b.reason }, Vec::new()))
    })
    .await
}

/// `POST /api/cases/{id}/disclose-now`.
pub(crate) async fn disclose_now(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    command(
        &app,
        &bearer,
        &id,
        &body,
        "disclose_now",
        |b: ReasonBody, _| Ok((Command::DiscloseNow { reason: b.reason }, Vec::new())),
    )
    .await
}
