//! `POST /webhooks/github`: signatures checked before parsing, deduplication (also across two
//! instances over one database), a leak seen
//! through the simulator's webhook, and a release promoting a prepared fix.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use lockstep_sim::signature_256;
use serde_json::{Value, json};

fn delivery(event: &str, id: &str, body: &str, signature: Option<String>) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

fn signed(event: &str, id: &str, body: &str) -> Request<Body> {
    delivery(
        event,
        id,
        body,
        Some(signature_256(SECRET, body.as_bytes())),
    )
}

async fn post(w: &World, req: Request<Body>) -> (StatusCode, Value) {
    let (status, text, content_type) = w.send(req).await;
    assert!(
        content_type.starts_with("application/json"),
        "{status} {content_type} {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn participant<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == name)
        .unwrap()
}

#[tokio::test]
async fn signatures_are_checked_before_anything_is_parsed() {
    let w = world().await;
    // Not JSON at all: with a valid signature it would be a 400 (malformed); a forged or
    // missing signature is refused first, so the body is never looked at.
    let garbage = "{this is not json";
    let (status, v) = post(
        &w,
        delivery(
            "release",
            "d-1",
            garbage,
            Some(format!("sha256={}", "0".repeat(64))),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "signature mismatch");
    let (status, v) = post(
        &w,
        delivery(
            "release",
            "d-1",
            garbage,
            Some(signature_256("wrong secret", garbage.as_bytes())),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (status, v) = post(&w, delivery("release", "d-1", garbage, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "missing X-Hub-Signature-256");
    let (status, v) = post(
        &w,
        delivery("release", "d-1", garbage, Some("sha1=abc".into())),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    // The same body, correctly signed, gets as far as the parser.
    let (status, v) = post(&w, signed("release", "d-1", garbage)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed release payload"),
        "{v}"
    );
    // None of these was recorded as delivered.
    assert!(!w.store.delivery_seen("d-1").await.unwrap());
    // A signature over a re-serialised body does not verify the raw one.
    let raw = "{\"zen\":  \"x\"}";
    let reserialised = serde_json::to_string(&serde_json::from_str::<Value>(raw).unwrap()).unwrap();
    let (status, _) = post(
        &w,
        delivery(
            "ping",
            "d-2",
            raw,
            Some(signature_256(SECRET, reserialised.as_bytes())),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Missing headers after a valid signature.
    let mut req = signed("ping", "d-3", "{}");
    req.headers_mut().remove("x-github-delivery");
    assert_eq!(post(&w, req).await.0, StatusCode::BAD_REQUEST);
    let mut req = signed("ping", "d-3", "{}");
    req.headers_mut().remove("x-github-event");
    assert_eq!(post(&w, req).await.0, StatusCode::BAD_REQUEST);

    let (_, text, _) = w.raw("GET", "/metrics", None, None).await;
    for series in [
        "lockstep_webhook_deliveries_total{event=\"unverified\",outcome=\"bad_signature\"} 4",
        "lockstep_webhook_deliveries_total{event=\"unverified\",outcome=\"missing_signature\"} 1",
        "lockstep_webhook_deliveries_total{event=\"release\",outcome=\"malformed\"} 1",
    ] {
        assert!(text.contains(series), "missing {series:?} in\n{text}");
    }
}

#[tokio::test]
async fn without_a_secret_every_delivery_is_refused() {
    let w = world_with(Options {
        secret: None,
        ..Options::default()
    })
    .await;
    let (status, v) = post(&w, signed("ping", "d-1", "{}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no webhook secret"));
    let (status, _) = post(&w, delivery("ping", "d-1", "{}", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // An empty secret counts as none.
    let w = world_with(Options {
        secret: Some(""),
        ..Options::default()
    })
    .await;
    assert_eq!(
        post(&w, signed("ping", "d-1", "{}")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn ping_unknown_events_and_irrelevant_actions() {
    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    w.sim.emit_ping();
    w.sim.flush_webhooks().await;
    let deliveries = w.sim.webhook_deliveries();
    assert_eq!(
        deliveries.last().unwrap().status,
        Some(200),
        "{deliveries:?}"
    );

    let (status, v) = post(&w, signed("issues", "d-1", "{\"action\":\"opened\"}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "ignored");
    // Unknown events are not parsed at all.
    let (status, _) = post(&w, signed("push", "d-2", "\u{1}not json")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reported = json!({"action": "reported", "repository": {"full_name": "org/core"}, "repository_advisory": {"ghsa_id": "GHSA-2345-6789-cfgh"}});
    let (status, v) = post(
        &w,
        signed("repository_advisory", "d-3", &reported.to_string()),
    )
    .await;
    assert_eq!(
        (status, v["status"].clone()),
        (StatusCode::ACCEPTED, json!("ignored"))
    );
    let unknown = json!({"action": "published", "repository": {"full_name": "org/core"}, "repository_advisory": {"ghsa_id": "GHSA-2345-6789-cfgh"}});
    let (status, v) = post(
        &w,
        signed("repository_advisory", "d-4", &unknown.to_string()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "an advisory no case knows: {v}"
    );
    let release = json!({"action": "published", "repository": {"full_name": "org/core"}, "release": {"tag_name": "v1.0.0"}});
    let (status, v) = post(&w, signed("release", "d-5", &release.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "no case at all: {v}");
    let (status, _) = post(&w, signed("release", "d-6", &json!({"action": "created", "repository": {"full_name": "org/core"}, "release": {"tag_name": "v1.0.0"}}).to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_leak_ends_the_embargo_and_duplicates_change_nothing() {
    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let case = w.open().await;
    w.settle().await;
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    let ghsa = participant(&view, "org/core")["ghsa_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(view["embargo"]["state"], "active");

    // Someone presses "Publish" on GitHub: a leak.
    w.sim.publish_as("lockstep-bot", "org/core", &ghsa).unwrap();
    w.sim.flush_webhooks().await;
    let sent = w.sim.webhook_deliveries();
    let leak = sent
        .iter()
        .find(|d| d.event == "repository_advisory")
        .unwrap()
        .clone();
    assert_eq!(leak.status, Some(200), "{leak:?}");

    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(view["embargo"]["state"], "exited");
    assert_eq!(
        view["embargo"]["exit"],
        json!({"cause": "leak", "repo": "org/core"})
    );
    assert_eq!(view["release"], "forced");
    let core = participant(&view, "org/core");
    assert_eq!(core["advisory_state"], "published");
    assert_eq!(core["published_elsewhere"], true);
    assert!(
        view["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alert"] == "published_elsewhere"),
        "{view}"
    );
    assert!(w.wakes.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    // The same delivery again (GitHub's redelivery): 200, nothing changes.
    let version = w.version(&case).await;
    let mut req = delivery(
        "repository_advisory",
        &leak.delivery_id,
        &leak.body,
        leak.signature_256.clone(),
    );
    req.headers_mut()
        .insert("x-github-hook-id", "1".parse().unwrap());
    let (status, v) = post(&w, req).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "duplicate");
    assert_eq!(w.version(&case).await, version);
    // A fresh delivery id with the same content: the core sees it is already published.
    let (status, v) = post(&w, signed("repository_advisory", "fresh-id", &leak.body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["cases"][0]["events"], 0);
    assert_eq!(w.version(&case).await, version);

    let (_, text, _) = w.raw("GET", "/metrics", None, None).await;
    for series in [
        "lockstep_webhook_deliveries_total{event=\"repository_advisory\",outcome=\"processed\"} 2",
        "lockstep_webhook_deliveries_total{event=\"repository_advisory\",outcome=\"duplicate\"} 1",
        "lockstep_commands_total{command=\"advisory_published\",outcome=\"committed\"} 1",
        "lockstep_commands_total{command=\"advisory_published\",outcome=\"unchanged\"} 1",
    ] {
        assert!(text.contains(series), "missing {series:?} in\n{text}");
    }
}

#[tokio::test]
async fn lockstep_s_own_publication_is_not_a_leak() {
    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let case = w.open_with(json!({"repo": ["org/core"]})).await;
    w.settle().await;
    let body = json!({"repo": "org/core", "patched_versions": "1.9.0"}).to_string();
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
    w.sim.flush_webhooks().await;
    let published = w
        .sim
        .webhook_deliveries()
        .into_iter()
        .find(|d| d.event == "repository_advisory")
        .unwrap();
    assert_eq!(published.status, Some(200));
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(
        participant(&view, "org/core")["advisory_state"],
        "published"
    );
    assert_eq!(participant(&view, "org/core")["published_elsewhere"], false);
    assert_eq!(view["embargo"]["exit"]["cause"], "all_fixes_ready");
}

#[tokio::test]
async fn a_release_promotes_a_prepared_fix() {
    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let case = w.open().await;
    let ready = format!("/api/cases/{case}/fix-ready");
    let body = json!({"repo": "org/core", "patched_versions": "1.9.0", "vulnerable_range": "< 1.9.0", "stage": "prepared"}).to_string();
    let (status, v) = w.call("POST", &ready, Some("bob"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let version = w.version(&case).await;

    // A release of another version, and of another repository, change nothing.
    w.sim.emit_release("org/core", "v1.8.9").unwrap();
    w.sim.emit_release("org/extra", "v1.9.0").unwrap();
    w.sim.flush_webhooks().await;
    assert!(
        w.sim
            .webhook_deliveries()
            .iter()
            .all(|d| d.status == Some(202)),
        "{:?}",
        w.sim.webhook_deliveries()
    );
    assert_eq!(w.version(&case).await, version);

    w.sim.emit_release("org/core", "v1.9.0").unwrap();
    w.sim.flush_webhooks().await;
    let last = w.sim.webhook_deliveries().last().unwrap().clone();
    assert_eq!(last.status, Some(200), "{last:?}");
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    let core = participant(&view, "org/core");
    assert_eq!(core["fix"]["status"], "released", "{core}");
    assert_eq!(core["fix"]["packages"][0]["patched_versions"], "1.9.0");
    assert_eq!(core["fix"]["packages"][0]["vulnerable_range"], "< 1.9.0");

    // The same release again: a duplicate; a new delivery of it: the fix is no longer prepared.
    let version = w.version(&case).await;
    let (status, v) = post(
        &w,
        delivery(
            "release",
            &last.delivery_id,
            &last.body,
            last.signature_256.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, v["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    let (status, v) = post(&w, signed("release", "another", &last.body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(w.version(&case).await, version);

    // Audit: the promotion was made by automation, authenticated by the webhook signature.
    w.store.verify(None).await.unwrap();
    let events = w.store.events(&case.parse().unwrap()).await.unwrap();
    let marked = events
        .iter()
        .rev()
        .find(|e| matches!(e.kind, lockstep_core::EventKind::LinesReleased { .. }))
        .unwrap();
    assert_eq!(marked.by, lockstep_core::Actor::Automation);
}

#[tokio::test]
async fn releases_mark_the_release_lines_they_satisfy_one_by_one() {
    let w = world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let case = w.open().await;
    let ready = format!("/api/cases/{case}/fix-ready");
    let body = json!({"repo": "org/core", "package": "core", "stage": "prepared", "lines": [
        {"vulnerable_range": "< 1.0.3", "patched_version": "1.0.3"},
        {"vulnerable_range": ">= 1.1.0, < 1.1.2", "patched_version": "1.1.2"},
    ]})
    .to_string();
    let (status, v) = w.call("POST", &ready, Some("bob"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let released = |view: &Value| -> Vec<bool> {
        participant(view, "org/core")["lines"]["core"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["released"].as_bool().unwrap())
            .collect()
    };

    // v1.0.3 releases the 1.0.x line: the fix is still prepared, the repository still holds.
    w.sim.emit_release("org/core", "v1.0.3").unwrap();
    w.sim.flush_webhooks().await;
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(released(&view), [true, false], "{view}");
    assert_eq!(participant(&view, "org/core")["fix"]["status"], "prepared");
    assert!(
        view["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["repo"] == "org/core" && b["lines_waiting"] == json!(["1.1.2"])),
        "{view}"
    );

    // v1.1.2 releases the other: the fix is released.
    w.sim.emit_release("org/core", "v1.1.2").unwrap();
    w.sim.flush_webhooks().await;
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(released(&view), [true, true], "{view}");
    assert_eq!(participant(&view, "org/core")["fix"]["status"], "released");
}

#[tokio::test]
async fn one_release_can_promote_fixes_in_several_cases() {
    let w = world().await;
    let a = w.open().await;
    let b = w.open().await;
    for case in [&a, &b] {
        let body = json!({"repo": "org/core", "patched_versions": "2.0.0", "stage": "prepared", "package": ["core"]}).to_string();
        let (status, v) = w
            .call(
                "POST",
                &format!("/api/cases/{case}/fix-ready"),
                Some("bob"),
                Some(&body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let release = json!({"action": "published", "repository": {"full_name": "Org/Core"}, "release": {"tag_name": "core@2.0.0"}});
    let (status, v) = post(&w, signed("release", "rel-1", &release.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["cases"].as_array().unwrap().len(), 2, "{v}");
    for case in [&a, &b] {
        let (_, view) = w
            .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
            .await;
        assert_eq!(participant(&view, "org/core")["fix"]["status"], "released");
    }
    let (status, v) = post(&w, signed("release", "rel-1", &release.to_string())).await;
    assert_eq!(
        (status, v["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
}

/// A second instance of the service over the same database (its own store connection and
/// router), as a load balancer in front of several `serve` processes would reach.
async fn second_instance(w: &World) -> axum::Router {
    use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
    let store =
        lockstep_store::Store::open(&format!("sqlite://{}", w.dir.path().join("l.db").display()))
            .await
            .unwrap();
    let base = ApiBase::parse(&w.running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    let github = std::sync::Arc::new(GithubClient::new(config.clone()).unwrap());
    let state = lockstep_server::AppState::new(store, github, config)
        .with_webhook_secret(Some(secrecy::SecretString::from(SECRET.to_owned())));
    lockstep_server::router(state)
}

#[tokio::test]
async fn a_delivery_sent_to_two_instances_has_its_effect_once() {
    use tower::ServiceExt as _;
    let w = world().await;
    let other = second_instance(&w).await;
    let case = w.open().await;
    let ready = format!("/api/cases/{case}/fix-ready");
    let body = json!({"repo": "org/core", "patched_versions": "1.9.0", "vulnerable_range": "< 1.9.0", "stage": "prepared"}).to_string();
    let (status, v) = w.call("POST", &ready, Some("bob"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // GitHub's delivery of the release, captured (its target refuses connections), then
    // sent to both instances at once (a redelivery racing the original across a load
    // balancer).
    w.sim
        .set_webhook("http://127.0.0.1:1/webhooks/github", Some(SECRET));
    w.sim.emit_release("org/core", "v1.9.0").unwrap();
    w.sim.flush_webhooks().await;
    let d = w.sim.webhook_deliveries().last().unwrap().clone();
    let req = || delivery("release", &d.delivery_id, &d.body, d.signature_256.clone());
    let (a, b) = tokio::join!(
        w.router.clone().oneshot(req()),
        other.clone().oneshot(req())
    );
    let mut outcomes = Vec::new();
    for resp in [
        a.unwrap(),
        b.unwrap(),
        other.clone().oneshot(req()).await.unwrap(),
    ] {
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        // A delivery seen before is a duplicate as a whole; one racing the original is a
        // duplicate for the case (the inbox row of `DELIVERY:CASE` commits with its effect).
        let outcome = match v["status"].as_str() {
            Some("duplicate") => "duplicate",
            _ => v["cases"][0]["status"].as_str().unwrap_or_default(),
        };
        outcomes.push((status, outcome.to_owned()));
    }
    // Exactly one instance applied it; the other, and a third try, saw a duplicate.
    let duplicates = outcomes.iter().filter(|(_, s)| s == "duplicate").count();
    assert_eq!(duplicates, 2, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|(s, _)| *s == StatusCode::OK),
        "{outcomes:?}"
    );

    let events = w.store.events(&case.parse().unwrap()).await.unwrap();
    let released = events
        .iter()
        .filter(|e| matches!(e.kind, lockstep_core::EventKind::LinesReleased { .. }))
        .count();
    assert_eq!(released, 1, "the release was applied {released} times");
    assert!(w.store.delivery_seen(&d.delivery_id).await.unwrap());
}
