//! The `security_advisory` webhook: GitHub's global database published, updated or withdrew
//! the copy of a case's advisory, and the case records it at once.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use lockstep_sim::signature_256;
use serde_json::{Value, json};

fn signed(event: &str, id: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header(
            "x-hub-signature-256",
            signature_256(SECRET, body.as_bytes()),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn payload(action: &str, ghsa: &str, cve: Option<&str>, withdrawn: bool) -> String {
    json!({
        "action": action,
        "security_advisory": {
            "ghsa_id": ghsa,
            "cve_id": cve,
            "summary": "s",
            "description": "d",
            "severity": "high",
            "identifiers": [{"type": "GHSA", "value": ghsa}],
            "references": [],
            "published_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
            "withdrawn_at": if withdrawn { json!("2026-01-03T00:00:00Z") } else { Value::Null },
            "vulnerabilities": [{
                "package": {"ecosystem": "npm", "name": "core"},
                "severity": "high",
                "vulnerable_version_range": "< 1.9.0",
                "first_patched_version": {"identifier": "1.9.0"}
            }]
        }
    })
    .to_string()
}

#[tokio::test]
async fn the_global_copy_is_recorded_from_the_webhook() {
    let w = world().await;
    // No reviewed copy for a long time: the runtime's reads find nothing.
    w.sim
        .update_global(|g| g.review_delay = std::time::Duration::from_secs(3_600));
    let case = w.open_with(json!({"repo": ["org/core"]})).await;
    w.settle().await;
    let body =
        json!({"repo": "org/core", "patched_versions": "1.9.0", "package": "core"}).to_string();
    let (status, _) = w
        .call(
            "POST",
            &format!("/api/cases/{case}/fix-ready"),
            Some("bob"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    w.settle().await;
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(view["propagation"][0]["copy"]["state"], "pending", "{view}");
    let ghsa = view["repos"][0]["ghsa_id"].as_str().unwrap().to_owned();
    let cve = view["repos"][0]["cve_id"].as_str().map(str::to_owned);

    let (status, text, _) = w
        .send(signed(
            "security_advisory",
            "d-1",
            &payload("published", &ghsa, cve.as_deref(), false),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(
        view["propagation"][0]["copy"]["state"], "reviewed",
        "{view}"
    );
    assert_eq!(view["propagated"], true);

    let (status, _, _) = w
        .send(signed(
            "security_advisory",
            "d-2",
            &payload("withdrawn", &ghsa, cve.as_deref(), true),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(
        view["propagation"][0]["copy"]["state"], "withdrawn",
        "{view}"
    );
    assert!(
        view["alerts"].to_string().contains("global_database"),
        "{view}"
    );

    // Another advisory: acknowledged and ignored.
    let (status, text, _) = w
        .send(signed(
            "security_advisory",
            "d-3",
            &payload("published", "GHSA-2222-3333-4444", None, false),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains("no open case"), "{text}");
}
