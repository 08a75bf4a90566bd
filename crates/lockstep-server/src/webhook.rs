//! `POST /webhooks/github`.
//!
//! Order of work: the signature is verified over the raw body (nothing is parsed before it
//! verifies), then the delivery id is looked up in the store's inbox (a delivery seen before is
//! answered 200 and changes nothing), then the event is parsed and handled. Inputs a delivery
//! causes are committed in the same transaction as its inbox row (`transact_delivery`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lockstep_core::input::{AuthMethod, Observation, Principal};
use lockstep_core::{Actor, Case, CaseId, GhsaId, Input, Rejection, RepoId};
use lockstep_github::webhook::{
    AdvisoryAction, DELIVERY_HEADER, EVENT_HEADER, WebhookError, WebhookEvent, parse_event,
    verify_headers,
};
use lockstep_store::Store;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{CommandOutcome, event_label};

type Shared = Arc<AppState>;

/// The answer to a delivery, with the labels it is counted under.
struct Answer {
    event: &'static str,
    outcome: &'static str,
    response: Response,
}

impl Answer {
    fn json(
        event: &'static str,
        outcome: &'static str,
        status: StatusCode,
        body: serde_json::Value,
    ) -> Self {
        Self {
            event,
            outcome,
            response: (status, Json(body)).into_response(),
        }
    }

    fn error(event: &'static str, outcome: &'static str, error: ApiError) -> Self {
        Self {
            event,
            outcome,
            response: error.into_response(),
        }
    }

    fn ignored(event: &'static str, why: impl std::fmt::Display) -> Self {
        Self::json(
            event,
            "ignored",
            StatusCode::ACCEPTED,
            json!({ "status": "ignored", "reason": crate::error::one_line(&why.to_string()) }),
        )
    }
}

/// The principal of a verified delivery: automation, authenticated by the signature.
fn webhook_principal() -> Principal {
    Principal {
        actor: Actor::Automation,
        authenticated_by: AuthMethod::WebhookSignature,
        github_maintains: Default::default(),
    }
}

/// Receives one delivery.
pub(crate) async fn receive(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = process(&app, &headers, &body).await;
    app.metrics.webhook(answer.event, answer.outcome);
    tracing::info!(
        event = answer.event,
        outcome = answer.outcome,
        status = answer.response.status().as_u16(),
        "webhook delivery"
    );
    answer.response
}

/// A delivery id as GitHub sends it (a GUID); anything else is refused.
fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

async fn process(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Answer {
    const UNVERIFIED: &str = "unverified";
    let Some(secret) = &app.webhook_secret else {
        return Answer::error(
            UNVERIFIED,
            "no_secret",
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no webhook secret is configured: every delivery is refused",
            ),
        );
    };
    if let Err(e) = verify_headers(secret, headers, body) {
        tracing::warn!(reason = %e, "webhook delivery refused");
        let (status, outcome) = match e {
            WebhookError::NoSecret => (StatusCode::SERVICE_UNAVAILABLE, "no_secret"),
            WebhookError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            WebhookError::MissingSignature => (StatusCode::UNAUTHORIZED, "missing_signature"),
            _ => (StatusCode::UNAUTHORIZED, "bad_signature"),
        };
        return Answer::error(UNVERIFIED, outcome, ApiError::new(status, e));
    }
    // Verified from here on: webhooks reach this instance.
    app.delivered();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(event_name) = header(EVENT_HEADER) else {
        return Answer::error(
            "other",
            "malformed",
            ApiError::bad_request("missing X-GitHub-Event"),
        );
    };
    let event = event_label(event_name);
    let delivery = match header(DELIVERY_HEADER) {
        Some(d) if valid_delivery_id(d) => d.to_owned(),
        _ => {
            return Answer::error(
                event,
                "malformed",
                ApiError::bad_request("missing or malformed X-GitHub-Delivery"),
            );
        }
    };
    match app.store.delivery_seen(&delivery).await {
        Ok(true) => {
            return Answer::json(
                event,
                "duplicate",
                StatusCode::OK,
                json!({ "status": "duplicate", "delivery": delivery }),
            );
        }
        Ok(false) => {}
        Err(e) => return Answer::error(event, "error", ApiError::store(e)),
    }
    let parsed = match parse_event(event_name, header("content-type"), body) {
        Ok(p) => p,
        Err(e) => return Answer::error(event, "malformed", ApiError::bad_request(e)),
    };
    match parsed {
        WebhookEvent::Ping { .. } => {
            Answer::json(event, "pong", StatusCode::OK, json!({ "status": "pong" }))
        }
        WebhookEvent::Unsupported { event: name } => {
            Answer::ignored(event, format!("event {name:?} is not handled"))
        }
        WebhookEvent::RepositoryAdvisory {
            action: AdvisoryAction::Published,
            ghsa_id,
            repository,
            ..
        } => advisory_published(app, event, &delivery, &repository, &ghsa_id).await,
        WebhookEvent::RepositoryAdvisory {
            action: AdvisoryAction::Reported,
            ..
        } => reported(app, event, &delivery, header("content-type"), body).await,
        WebhookEvent::RepositoryAdvisory { .. } => {
            Answer::ignored(event, "only the published and reported actions are handled")
        }
        WebhookEvent::Release {
            action,
            tag_name,
            repository,
            ..
        } if action == "published" => release(app, event, &delivery, &repository, &tag_name).await,
        WebhookEvent::Release { .. } => {
            Answer::ignored(event, "only the published action is handled")
        }
        WebhookEvent::SecurityAdvisory {
            action,
            ghsa_id,
            cves,
            updated_at,
            withdrawn_at,
            packages,
        } => {
            if !matches!(action.as_str(), "published" | "updated" | "withdrawn") {
                return Answer::ignored(event, "only published, updated and withdrawn are handled");
            }
            let ts = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.and_then(|t| lockstep_core::Timestamp::from_millis(t.timestamp_millis()))
            };
            // GitHub sends this event for reviewed advisories of its global database.
            let read = lockstep_core::propagation::GlobalRead {
                reviewed_at: ts(updated_at),
                withdrawn_at: ts(withdrawn_at),
                cves,
                packages,
            };
            global_copy(app, event, &delivery, &ghsa_id, read).await
        }
    }
}

/// `security_advisory`: the global copy of one of a case's advisories changed; the core
/// judges it at once, as it judges the runtime's reads.
async fn global_copy(
    app: &AppState,
    event: &'static str,
    delivery: &str,
    ghsa: &str,
    read: lockstep_core::propagation::GlobalRead,
) -> Answer {
    let Ok(ghsa) = ghsa.parse::<GhsaId>() else {
        return Answer::ignored(event, "the payload names no usable GHSA id");
    };
    let found = match case_with_advisory(&app.store, &ghsa).await {
        Ok(found) => found,
        Err(e) => return Answer::error(event, "error", ApiError::store(e)),
    };
    let Some((case, repo)) = found else {
        return Answer::ignored(event, format!("no open case has advisory {ghsa}"));
    };
    let input = Input::Observation(Observation::GlobalCopyRead {
        repo,
        read: Some(read),
    });
    let build = |_: &Case| Ok(input.clone());
    let result = commit(app, delivery, &case, "global_copy", &input, build).await;
    conclude(app, event, delivery, vec![(case, result)]).await
}

/// Every case that is not closed, folded.
/// The open case, and its repository, whose advisory is `ghsa`.
async fn case_with_advisory(
    store: &Store,
    ghsa: &GhsaId,
) -> Result<Option<(CaseId, RepoId)>, lockstep_store::Error> {
    Ok(open_cases(store).await?.iter().find_map(|c| {
        c.participants
            .iter()
            .find(|(_, p)| p.advisory.ghsa.as_ref() == Some(ghsa))
            .map(|(r, _)| (c.id.clone(), r.clone()))
    }))
}

async fn open_cases(store: &Store) -> Result<Vec<Case>, lockstep_store::Error> {
    let mut out = Vec::new();
    for summary in store.list_open_cases().await? {
        out.push(store.case(&summary.id).await?);
    }
    Ok(out)
}

/// What committing one delivery's input to one case did.
enum Committed {
    Events(usize),
    Duplicate,
    Refused(Rejection),
    Failed(lockstep_store::Error),
}

/// Commits `build`'s input to `case` as automation, recording the delivery (keyed
/// `DELIVERY:CASE`, so that one release can reach several cases) in the same transaction.
async fn commit(
    app: &AppState,
    delivery: &str,
    case: &CaseId,
    name: &'static str,
    input: &Input,
    build: impl Fn(&Case) -> Result<Input, Rejection>,
) -> Committed {
    let principal = webhook_principal();
    let key = format!("{delivery}:{case}");
    let result = app
        .store
        .transact_delivery(&key, case, input, |c, now| {
            let input = build(c)?;
            c.handle(&principal, input, now)
        })
        .await;
    let (outcome, committed) = match result {
        Ok(Some(c)) if c.events.is_empty() => (CommandOutcome::Unchanged, Committed::Events(0)),
        Ok(Some(c)) => {
            app.wake();
            (CommandOutcome::Committed, Committed::Events(c.events.len()))
        }
        Ok(None) => return Committed::Duplicate,
        Err(lockstep_store::Error::Rejected(r)) => {
            tracing::warn!(case = %case, input = name, rejection = %r, "the core refused a webhook's input");
            let outcome = if r.is_not_authorized() {
                CommandOutcome::Refused
            } else {
                CommandOutcome::Rejected
            };
            (outcome, Committed::Refused(r))
        }
        Err(e) => {
            tracing::error!(case = %case, input = name, error = %e, "committing a webhook's input failed");
            (CommandOutcome::Error, Committed::Failed(e))
        }
    };
    app.metrics.command(name, outcome);
    committed
}

/// Turns the per-case results of one delivery into the answer; records the delivery id once
/// every case has been handled, so that a redelivery is answered as a duplicate at once.
async fn conclude(
    app: &AppState,
    event: &'static str,
    delivery: &str,
    results: Vec<(CaseId, Committed)>,
) -> Answer {
    let mut cases = Vec::new();
    let mut refused = 0;
    let mut failure = None;
    for (case, result) in results {
        let entry = match result {
            Committed::Events(n) => json!({ "case_id": case, "status": "processed", "events": n }),
            Committed::Duplicate => json!({ "case_id": case, "status": "duplicate" }),
            Committed::Refused(r) => {
                refused += 1;
                json!({ "case_id": case, "status": "refused", "reason": crate::error::one_line(&r.to_string()) })
            }
            Committed::Failed(e) => {
                failure = Some(e);
                continue;
            }
        };
        cases.push(entry);
    }
    if let Some(e) = failure {
        // Not recorded: a redelivery tries again (cases already committed dedupe by key).
        return Answer::error(event, "error", ApiError::store(e));
    }
    if let Err(e) = app.store.record_delivery(delivery).await {
        tracing::warn!(error = %e, "recording a webhook delivery failed");
    }
    let all_refused = refused > 0 && refused == cases.len();
    Answer::json(
        event,
        if all_refused { "refused" } else { "processed" },
        if all_refused {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        },
        json!({ "status": if all_refused { "refused" } else { "processed" }, "cases": cases }),
    )
}

/// `repository_advisory`/`published`: if the advisory is the draft of an open case, the core
/// hears `AdvisoryPublished` and decides whether it confirms Lockstep's own publication or is
/// a leak (which ends the embargo and publishes every released fix).
async fn advisory_published(
    app: &AppState,
    event: &'static str,
    delivery: &str,
    repository: &str,
    ghsa: &str,
) -> Answer {
    let (Ok(repo), Ok(ghsa)) = (repository.parse::<RepoId>(), ghsa.parse::<GhsaId>()) else {
        return Answer::ignored(event, "the payload names no usable repository or GHSA id");
    };
    let found = match case_with_advisory(&app.store, &ghsa).await {
        Ok(found) => found,
        Err(e) => return Answer::error(event, "error", ApiError::store(e)),
    };
    let Some((case, case_repo)) = found else {
        return Answer::ignored(event, format!("no open case has advisory {ghsa}"));
    };
    if case_repo != repo {
        tracing::warn!(case = %case, %ghsa, "a published advisory arrived for another repository than its case records");
        return Answer::ignored(
            event,
            format!("{ghsa} belongs to {case_repo} in its case, not {repo}"),
        );
    }
    let input = Input::Observation(Observation::AdvisoryPublished {
        repo: repo.clone(),
        ghsa: ghsa.clone(),
    });
    let build = |_: &Case| Ok(input.clone());
    let result = commit(app, delivery, &case, "advisory_published", &input, build).await;
    conclude(app, event, delivery, vec![(case, result)]).await
}

/// `repository_advisory`/`reported`: a private vulnerability report, recorded once (by
/// repository and GHSA id, whichever path saw it first), with this delivery recorded in the
/// same transaction. It is listed by `report list` as soon as this answers.
async fn reported(
    app: &AppState,
    event: &'static str,
    delivery: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Answer {
    let (repository, advisory) = match lockstep_github::webhook::parse_reported(content_type, body)
    {
        Ok(p) => p,
        Err(e) => return Answer::error(event, "malformed", ApiError::bad_request(e)),
    };
    let Ok(repo) = repository.parse::<RepoId>() else {
        return Answer::ignored(event, "the payload names no usable repository");
    };
    let now = match app.store.now().await {
        Ok(n) => n,
        Err(e) => return Answer::error(event, "error", ApiError::store(e)),
    };
    let Some(report) = lockstep_runtime::intake::report_from_advisory(&repo, &advisory, now) else {
        return Answer::ignored(
            event,
            "the advisory is not a report in triage with a reporter",
        );
    };
    match app.store.record_report(&report, Some(delivery)).await {
        Ok(lockstep_store::ReportSeen::DuplicateDelivery) => Answer::json(
            event,
            "duplicate",
            StatusCode::OK,
            json!({ "status": "duplicate", "delivery": delivery }),
        ),
        Ok(seen) => {
            tracing::info!(%repo, ghsa = %report.ghsa, new = seen == lockstep_store::ReportSeen::New, "private vulnerability report received");
            Answer::json(
                event,
                "processed",
                StatusCode::OK,
                json!({ "status": "processed", "report": report.reference(), "new": seen == lockstep_store::ReportSeen::New }),
            )
        }
        Err(e) => Answer::error(event, "error", ApiError::store(e)),
    }
}

/// `release`/`published`: every open case in which the repository has a prepared fix with a
/// release line whose patched version the tag satisfies (see
/// [`lockstep_core::release_tag::releases`]) gets the observation `ReleasePublished`, which
/// marks those lines released; the fix is released once every line is.
async fn release(
    app: &AppState,
    event: &'static str,
    delivery: &str,
    repository: &str,
    tag: &str,
) -> Answer {
    let Ok(repo) = repository.parse::<RepoId>() else {
        return Answer::ignored(event, "the payload names no usable repository");
    };
    let cases = match open_cases(&app.store).await {
        Ok(c) => c,
        Err(e) => return Answer::error(event, "error", ApiError::store(e)),
    };
    let matching: Vec<(CaseId, Input)> = cases
        .iter()
        .filter_map(|c| promotion(c, &repo, tag).map(|input| (c.id.clone(), input)))
        .collect();
    if matching.is_empty() {
        return Answer::ignored(
            event,
            format!("no open case has a prepared fix of {repo} that tag {tag:?} releases"),
        );
    }
    let mut results = Vec::new();
    for (case, input) in matching {
        // Decided again on the case as it is inside the transaction.
        let build = |c: &Case| {
            promotion(c, &repo, tag).ok_or_else(|| Rejection::Invalid {
                field: "release",
                why: format!("{repo} has no prepared line that tag {tag:?} releases any more"),
            })
        };
        let result = commit(app, delivery, &case, "release_promote", &input, build).await;
        results.push((case, result));
    }
    conclude(app, event, delivery, results).await
}

/// The observation that marks `repo`'s prepared lines in `case` that `tag` releases, if any.
fn promotion(case: &Case, repo: &RepoId, tag: &str) -> Option<Input> {
    if case.closed.is_some() {
        return None;
    }
    let p = case.participants.get(repo).filter(|p| p.in_scope)?;
    let lines = lockstep_core::engine::lines::released_by(p, tag);
    (!lines.is_empty()).then(|| {
        Input::Observation(Observation::ReleasePublished {
            repo: repo.clone(),
            tag: tag.to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids() {
        assert!(valid_delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert!(!valid_delivery_id(""));
        assert!(!valid_delivery_id("a b"));
        assert!(!valid_delivery_id(&"a".repeat(129)));
    }
}
