//! Tokens, the webhook secret and advisory text stay out of the logs. Its own test binary:
//! the capturing subscriber is the process's global default, so every callsite sees it.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use lockstep_sim::signature_256;
use serde_json::json;

#[tokio::test]
async fn secrets_tokens_and_advisory_text_stay_out_of_the_logs() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let case = w.open().await;
    w.settle().await;
    let body = json!({"repo": "org/core", "verdict": "affected", "reason": "r"}).to_string();
    w.call(
        "POST",
        &format!("/api/cases/{case}/assess"),
        Some("bob"),
        Some(&body),
    )
    .await;
    w.call(
        "POST",
        &format!("/api/cases/{case}/assess"),
        Some("eve"),
        Some(&body),
    )
    .await;
    w.call("GET", "/api/cases", Some("mallory"), None).await;
    w.call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    let forged = Request::builder()
        .method("POST")
        .uri("/webhooks/github")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "x")
        .header("x-hub-signature-256", signature_256("forged", b"{}"))
        .body(Body::from("{}"))
        .unwrap();
    w.send(forged).await;
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    let core = view["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == "org/core")
        .unwrap();
    let ghsa = core["ghsa_id"].as_str().unwrap().to_owned();
    w.sim.publish_as("lockstep-bot", "org/core", &ghsa).unwrap();
    w.sim.flush_webhooks().await;

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("case opened"), "the capture works");
    assert!(logs.contains("webhook delivery"));
    // Tokens and the webhook secret never appear, at any level.
    for secret in [
        "tok-alice",
        "tok-bob",
        "tok-eve",
        "tok-mallory",
        "tok-bot",
        SECRET,
    ] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
    // Advisory text does not appear above DEBUG.
    let above_debug: Vec<&str> = logs
        .lines()
        .filter(|l| {
            [" INFO ", " WARN ", " ERROR "]
                .iter()
                .any(|lvl| l.contains(lvl))
        })
        .collect();
    assert!(above_debug.len() > 10, "{above_debug:?}");
    for text in [SUMMARY, DESCRIPTION] {
        assert!(
            !above_debug.iter().any(|l| l.contains(text)),
            "{text:?} logged above DEBUG"
        );
    }
}
