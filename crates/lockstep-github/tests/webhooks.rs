//! Webhook verification against the simulator's signed deliveries: published advisory,
//! reported advisory, release, ping; wrong secret and unsigned deliveries are rejected
//! before parsing. Every `repository_advisory` payload validates against the oracle's
//! webhook schemas.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use lockstep_github::webhook::{AdvisoryAction, WebhookError, WebhookEvent, verify_and_parse};
use lockstep_github::{Attempt, SecretString};

type Seen = Arc<Mutex<Vec<Result<WebhookEvent, WebhookError>>>>;

async fn receive(
    State((secret, seen)): State<(Arc<SecretString>, Seen)>,
    headers: HeaderMap,
    body: Bytes,
) -> http::StatusCode {
    let r = verify_and_parse(&secret, &headers, &body).map(|d| d.event);
    let status = if r.is_ok() {
        http::StatusCode::NO_CONTENT
    } else {
        http::StatusCode::UNAUTHORIZED
    };
    seen.lock().unwrap().push(r);
    status
}

async fn receiver(secret: &str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().route("/hook", post(receive)).with_state((
        Arc::new(SecretString::from(secret.to_owned())),
        seen.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test]
async fn simulator_deliveries_verify_and_parse() {
    let (sim, _running, c) = start().await;
    let (url, seen) = receiver("hook-secret").await;
    sim.set_webhook(&url, Some("hook-secret"));
    sim.emit_ping();
    let r = repo(REPO);
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    c.publish(&r, &a.ghsa_id, None, Attempt::First)
        .await
        .unwrap();
    sim.emit_release(REPO, "v1.2.3").unwrap();
    sim.flush_webhooks().await;
    let got: Vec<WebhookEvent> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.clone().unwrap())
        .collect();
    assert!(
        matches!(
            got[0],
            WebhookEvent::Ping {
                hook_id: Some(_),
                ..
            }
        ),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        WebhookEvent::RepositoryAdvisory {
            action: AdvisoryAction::Published,
            ghsa_id: a.ghsa_id.clone(),
            state: Some("published".into()),
            repository: REPO.into(),
            installation_id: None,
        }
    );
    assert!(matches!(
        &got[2],
        WebhookEvent::Release { action, tag_name, repository, .. }
            if action == "published" && tag_name == "v1.2.3" && repository == REPO
    ));
    // A private vulnerability report arrives as repository_advisory/reported.
    let report = sim
        .report_as(
            "mallory",
            REPO,
            &serde_json::json!({"summary": "found a bug", "description": "details"}),
        )
        .unwrap();
    sim.flush_webhooks().await;
    let last = seen.lock().unwrap().last().cloned().unwrap().unwrap();
    assert_eq!(
        last,
        WebhookEvent::RepositoryAdvisory {
            action: AdvisoryAction::Reported,
            ghsa_id: report["ghsa_id"].as_str().unwrap().to_owned(),
            state: Some("triage".into()),
            repository: REPO.into(),
            installation_id: None,
        }
    );
    assert_eq!(check_advisory_webhooks(&sim), 2, "published and reported");
}

#[tokio::test]
async fn wrong_secret_and_unsigned_deliveries_are_rejected() {
    let (sim, _running, _c) = start().await;
    let (url, seen) = receiver("the-right-secret").await;
    sim.set_webhook(&url, Some("a-wrong-secret"));
    sim.emit_ping();
    sim.flush_webhooks().await;
    sim.set_webhook(&url, None);
    sim.emit_ping();
    sim.flush_webhooks().await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            Err(WebhookError::BadSignature),
            Err(WebhookError::MissingSignature)
        ]
    );
    let statuses: Vec<_> = sim.webhook_deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![Some(401), Some(401)]);
}

#[test]
fn unknown_events_are_unsupported_not_errors() {
    let secret = SecretString::from("s".to_owned());
    let body = br#"{"action":"opened"}"#;
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", "issues".parse().unwrap());
    headers.insert(
        "x-hub-signature-256",
        lockstep_sim::signature_256("s", body).parse().unwrap(),
    );
    let d = verify_and_parse(&secret, &headers, body).unwrap();
    assert_eq!(
        d.event,
        WebhookEvent::Unsupported {
            event: "issues".into()
        }
    );
    headers.remove("x-github-event");
    assert_eq!(
        verify_and_parse(&secret, &headers, body),
        Err(WebhookError::MissingEvent)
    );
}
