//! The JSON endpoints for the case commands.
//!
//! Every handler runs the same steps, in this order, so that the answer does not depend on
//! what a caller could not see: authenticate the token (401), parse the body (400 malformed
//! JSON or a malformed field, 422 a missing or unknown field), load the case (404), resolve
//! the caller's permissions for the repositories concerned, and submit the input to the store,
//! where the core decides (403 not authorized, 422 or 409 otherwise).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lockstep_core::vuln::Vulnerability;
use lockstep_core::{Case, CaseId, Input, OpenCase, Workflow};
use lockstep_store::Committed;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::AppState;
use crate::auth::{Bearer, Caller};
use crate::error::ApiError;
use crate::metrics::CommandOutcome;
use crate::surface::{Acted, CaseAction, CaseView, OpenFields, OpenRequest, Opened};

type Shared = Arc<AppState>;

/// Parses a JSON body: syntax errors → 400, a missing, unknown or mistyped field → 422.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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

fn case_id(id: &str) -> Result<CaseId, ApiError> {
    crate::surface::field(id).map_err(ApiError::bad_request)
}

async fn load(app: &AppState, id: &CaseId) -> Result<Case, ApiError> {
    app.store.case(id).await.map_err(ApiError::store)
}

pub(crate) fn outcome_of(result: &Result<Committed, lockstep_store::Error>) -> CommandOutcome {
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
pub(crate) async fn readable(app: &AppState, caller: &Caller, id: &str) -> Result<Case, ApiError> {
    app.identities.authenticate(caller).await?;
    let id = case_id(id)?;
    let case = load(app, &id).await?;
    let principal = app
        .identities
        .for_case(caller, &case, &case.repos())
        .await?;
    if !case.may_view(&principal) {
        return Err(ApiError::forbidden(case.view_refusal(&principal)));
    }
    Ok(case)
}

/// Cases per page of `GET /api/cases` unless `limit` says otherwise, and the most it may say.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// `GET /api/cases`'s query: `after` (the last case of the previous page) and `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /api/cases?after=ID&limit=N`: a page of the cases the caller may read, oldest first.
/// `next` names the case to pass as `after` for the next page (`null` on the last one). A page
/// reads `limit` cases through an index (default 100, at most 1000), whatever the history; it
/// may hold fewer cases than `limit` when the caller may not read some of them.
pub(crate) async fn list(
    State(app): State<Shared>,
    bearer: Bearer,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let limit = match query.limit.as_deref() {
        None => PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a number from 1 to {MAX_PAGE}"
                )));
            }
        },
    };
    let after = query
        .after
        .as_deref()
        .map(|a| {
            a.parse::<CaseId>()
                .map_err(|e| ApiError::bad_request(format!("after: {e}")))
        })
        .transpose()?;
    let (visible, next) = visible_page(&app, &bearer, after.as_ref(), limit).await?;
    let visible: Vec<_> = visible.into_iter().map(|(summary, _)| summary).collect();
    Ok(Json(json!({ "cases": visible, "next": next })).into_response())
}

/// A page of the cases `caller` may read (with each case), and the `after` of the next page.
pub(crate) async fn visible_page(
    app: &AppState,
    caller: &Caller,
    after: Option<&CaseId>,
    limit: usize,
) -> Result<(Vec<(lockstep_store::CaseSummary, Case)>, Option<String>), ApiError> {
    let summaries = app
        .store
        .list_cases_page(after, limit)
        .await
        .map_err(ApiError::store)?;
    let next = (summaries.len() == limit)
        .then(|| summaries.last().map(|s| s.id.to_string()))
        .flatten();
    let mut visible = Vec::new();
    for summary in summaries {
        let case = load(app, &summary.id).await?;
        let principal = app
            .identities
            .for_case(caller, &case, &case.repos())
            .await?;
        if case.may_view(&principal) {
            visible.push((summary, case));
        }
    }
    Ok((visible, next))
}

/// `GET /api/cases/{id}`.
pub(crate) async fn show(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = readable(&app, &bearer.into(), &id).await?;
    let now = app.store.now().await.map_err(ApiError::store)?;
    Ok(Json(CaseView::of(&case, now)).into_response())
}

/// `GET /api/cases/{id}/plan`: the core's `Plan`.
pub(crate) async fn plan(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = readable(&app, &bearer.into(), &id).await?;
    Ok(Json(case.plan()).into_response())
}

fn valid_workflow_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn resolve_workflow(app: &AppState, body: &OpenRequest) -> Result<Workflow, ApiError> {
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
    let bearer = Caller::from(bearer);
    app.identities.authenticate(&bearer).await?;
    let req: OpenRequest = parse_body(&body)?;
    if req.from_report.is_none() {
        // Required unless the case opens from a report, which supplies them.
        for (name, value) in [("summary", &req.summary), ("description", &req.description)] {
            if value.is_empty() {
                return Err(ApiError::unprocessable(format!(
                    "invalid request body: missing field `{name}` (required unless from_report)"
                )));
            }
        }
    }
    let workflow = resolve_workflow(&app, &req).await?;
    let fields = req.fields().map_err(ApiError::bad_request)?;
    if fields.from_report.is_some() {
        return crate::reports::open_from_report(&app, &bearer, req, workflow, fields).await;
    }
    let OpenFields {
        case_id: given_id,
        rating,
        cwes,
        credits,
        scope,
        embargo_until,
        from_report: _,
    } = fields;
    let Some(rating) = rating else {
        return Err(ApiError::bad_request("give severity or cvss"));
    };
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

/// `POST /api/cases/{id}/{A::PATH}`: any [`CaseAction`]. Authenticates the token, parses the
/// body, and runs [`perform`]; answers 200 with the case as `GET /api/cases/{id}` shows it,
/// plus `events_committed`.
pub(crate) async fn act<A: CaseAction>(
    State(app): State<Shared>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = Caller::from(bearer);
    app.identities.authenticate(&caller).await?;
    let req: A = parse_body(&body)?;
    Ok(Json(perform(&app, &caller, &id, req).await?).into_response())
}

/// Runs one action for an authenticated caller, whatever brought it (the JSON API, a web
/// form): load the case, build the command from the request and the case, resolve the
/// caller's permissions for the repositories it concerns, and submit it; the core decides.
pub(crate) async fn perform<A: CaseAction>(
    app: &AppState,
    caller: &Caller,
    id: &str,
    req: A,
) -> Result<Acted, ApiError> {
    let name = A::NAME;
    let id = case_id(id)?;
    let case = load(app, &id).await?;
    let (cmd, repos) = req.command(&case).map_err(ApiError::bad_request)?;
    let principal = app.identities.for_case(caller, &case, &repos).await?;
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
    let now = app.store.now().await.map_err(ApiError::store)?;
    Ok(Acted {
        case: CaseView::of(&committed.case, now),
        events_committed: committed.events.len(),
    })
}
