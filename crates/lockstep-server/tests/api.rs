//! The JSON API against the simulator (identity) and a SQLite store: every endpoint's success
//! and its errors.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Request, StatusCode};
use common::*;
use lockstep_sim::Permission;
use serde_json::{Value, json};

fn repo<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == name)
        .unwrap_or_else(|| panic!("{name} not in {view}"))
}

fn error_line(v: &Value) -> &str {
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"));
    assert!(!e.contains('\n'), "{e}");
    e
}

#[tokio::test]
async fn open_list_show_and_plan() {
    let w = world().await;
    let case = w.open().await;
    assert!(case.starts_with("LS-"), "{case}");
    assert!(
        w.wakes.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the runtime is woken"
    );

    let (status, v) = w.call("GET", "/api/cases", Some("alice"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["cases"][0]["id"], case.as_str());
    assert_eq!(v["cases"][0]["status"], "embargoed");

    let (status, v) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["case_id"], case.as_str());
    assert_eq!(v["embargo"]["state"], "active");
    assert_eq!(v["repos"].as_array().unwrap().len(), 4);
    assert_eq!(repo(&v, "org/core")["assessment"]["status"], "unassessed");
    assert_eq!(v["blockers"].as_array().unwrap().len(), 4);
    assert!(v["alerts"].as_array().unwrap().is_empty());

    // Drafts open once the runtime runs; the view shows their GHSA ids and state.
    w.settle().await;
    let (_, v) = w
        .call("GET", &format!("/api/cases/{case}"), Some("bob"), None)
        .await;
    let core = repo(&v, "org/core");
    assert!(
        core["ghsa_id"].as_str().unwrap().starts_with("GHSA-"),
        "{core}"
    );
    assert_eq!(core["advisory_state"], "draft");

    let (status, plan) = w
        .call(
            "GET",
            &format!("/api/cases/{case}/plan"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plan["gate_open"], false);
    assert_eq!(plan["embargo"], "active");
    assert_eq!(
        plan["waves"].as_array().unwrap().len(),
        2,
        "core's wave, then plugin's: {plan}"
    );

    // Maintainers read; dave through his GitHub permission on org/plugin.
    for who in ["bob", "carol", "dave"] {
        let (status, _) = w
            .call("GET", &format!("/api/cases/{case}"), Some(who), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{who}");
    }
    // Outsiders do not: erin only pushes to org/plugin, eve has nothing.
    for who in ["erin", "eve"] {
        let (status, v) = w
            .call("GET", &format!("/api/cases/{case}"), Some(who), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {v}");
        assert!(!v.to_string().contains(SUMMARY));
        let (status, _) = w
            .call("GET", &format!("/api/cases/{case}/plan"), Some(who), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, v) = w.call("GET", "/api/cases", Some(who), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["cases"], json!([]), "{who} lists nothing");
    }
}

#[tokio::test]
async fn open_with_scope_embargo_cvss_and_given_id() {
    let w = world().await;
    let until = "2099-01-01T00:00:00Z";
    let (status, v) = w
        .call(
            "POST",
            "/api/cases",
            Some("alice"),
            Some(
                &json!({
                    "case_id": "LS-GIVEN-1",
                    "workflow_name": "fixture",
                    "summary": SUMMARY,
                    "description": DESCRIPTION,
                    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:N",
                    "repo": ["org/core", "org/plugin"],
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["case_id"], "LS-GIVEN-1");
    assert_eq!(v["repos"], json!(["org/core", "org/plugin"]));
    // The same id again: a conflict, nothing changes.
    let body = json!({"case_id": "LS-GIVEN-1", "workflow_name": "fixture", "summary": "s", "description": "d", "severity": "low"});
    let (status, v) = w
        .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    // An embargo beyond max_days.
    let (status, v) = w
        .call(
            "POST",
            "/api/cases",
            Some("alice"),
            Some(&json!({"workflow_name": "fixture", "summary": "s", "description": "d", "severity": "low", "embargo_until": until}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_line(&v).contains("limit"), "{v}");
    let (_, list) = w.call("GET", "/api/cases", Some("alice"), None).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn open_refuses_bad_input_and_changes_nothing() {
    let w = world().await;
    let base = json!({
        "workflow_name": "fixture",
        "summary": SUMMARY,
        "description": DESCRIPTION,
        "severity": "high",
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b.to_string()
    };
    let cases: Vec<(&str, Option<&str>, String, StatusCode)> = vec![
        ("no token", None, base.to_string(), StatusCode::UNAUTHORIZED),
        (
            "malformed JSON",
            Some("alice"),
            "{\"summary\": ".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not an object",
            Some("alice"),
            "[1,2]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty body",
            Some("alice"),
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing summary",
            Some("alice"),
            without("summary"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown field",
            Some("alice"),
            with("sevrity", json!("high")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad date",
            Some("alice"),
            with("embargo_until", json!("next tuesday")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a credited login GitHub does not know",
            Some("alice"),
            with("credit", json!(["ghost-user:finder"])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a one-line summary with a newline",
            Some("alice"),
            with("summary", json!("line1\nline2")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a case id of dots",
            Some("alice"),
            with("case_id", json!("..")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "past date",
            Some("alice"),
            with("embargo_until", json!("2001-01-01T00:00:00Z")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad severity",
            Some("alice"),
            with("severity", json!("dire")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad CVSS",
            Some("alice"),
            {
                let mut b = base.clone();
                b.as_object_mut().unwrap().remove("severity");
                b["cvss"] = json!("CVSS:3.1/AV:X");
                b.to_string()
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            "CVSS 2",
            Some("alice"),
            {
                let mut b = base.clone();
                b.as_object_mut().unwrap().remove("severity");
                b["cvss"] = json!("AV:N/AC:L/Au:N/C:P/I:P/A:P");
                b.to_string()
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            "both ratings",
            Some("alice"),
            with(
                "cvss",
                json!("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:N"),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no rating",
            Some("alice"),
            without("severity"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad CWE",
            Some("alice"),
            with("cwe", json!(["XSS"])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad credit",
            Some("alice"),
            with("credit", json!(["finder1"])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad repo id",
            Some("alice"),
            with("repo", json!(["not a repo"])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "repo outside the workflow",
            Some("alice"),
            with("repo", json!(["org/unknown"])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty summary",
            Some("alice"),
            with("summary", json!("  ")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad case id",
            Some("alice"),
            with("case_id", json!("../x")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown workflow",
            Some("alice"),
            with("workflow_name", json!("nope")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "path in workflow name",
            Some("alice"),
            with("workflow_name", json!("../workflows/fixture")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "broken workflow file",
            Some("alice"),
            with("workflow_name", json!("broken")),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            "no workflow",
            Some("alice"),
            without("workflow_name"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "inline workflow refused by default",
            Some("alice"),
            {
                let mut b = base.clone();
                b.as_object_mut().unwrap().remove("workflow_name");
                b["workflow"] = json!(WORKFLOW);
                b.to_string()
            },
            StatusCode::FORBIDDEN,
        ),
        (
            "not a coordinator",
            Some("bob"),
            base.to_string(),
            StatusCode::FORBIDDEN,
        ),
        (
            "unknown token",
            Some("mallory"),
            base.to_string(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, login, body, expected) in cases {
        let (status, v) = w.call("POST", "/api/cases", login, Some(&body)).await;
        assert_eq!(status, expected, "{what}: {v}");
        let e = error_line(&v);
        assert!(!e.is_empty(), "{what}");
        if expected == StatusCode::FORBIDDEN && what == "not a coordinator" {
            assert!(e.contains("bob") && e.contains("coordinator"), "{e}");
        }
    }
    assert!(
        w.store.list_cases().await.unwrap().is_empty(),
        "nothing was opened"
    );
}

#[tokio::test]
async fn malformed_authorization_headers_are_401() {
    let w = world().await;
    for value in [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "tok-alice",
        "Bearer a b",
    ] {
        let req = Request::builder()
            .method("GET")
            .uri("/api/cases")
            .header("authorization", value)
            .body(axum::body::Body::empty())
            .unwrap();
        let (status, text, _) = w.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        error_line(&v);
    }
    // GitHub's own `token` scheme is accepted.
    let req = Request::builder()
        .method("GET")
        .uri("/api/cases")
        .header("authorization", "token tok-alice")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(w.send(req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn assess_as_maintainers_and_refusals() {
    let w = world().await;
    let case = w.open().await;
    let path = format!("/api/cases/{case}/assess");
    let body = |repo: &str, verdict: &str| {
        json!({"repo": repo, "verdict": verdict, "reason": "looked at it"}).to_string()
    };

    let (status, v) = w
        .call(
            "POST",
            &path,
            Some("bob"),
            Some(&body("org/core", "affected")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(repo(&v, "org/core")["assessment"]["status"], "affected");
    assert!(v["events_committed"].as_u64().unwrap() > 0);
    // dave maintains org/plugin through GitHub's permission (the workflow names nobody).
    let (status, v) = w
        .call(
            "POST",
            &path,
            Some("dave"),
            Some(&body("org/plugin", "investigating")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The same assessment again changes nothing.
    let (status, v) = w
        .call(
            "POST",
            &path,
            Some("dave"),
            Some(&body("org/plugin", "investigating")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["events_committed"], 0);

    let version = w.version(&case).await;
    let refusals: Vec<(&str, Option<&str>, String, StatusCode)> = vec![
        (
            "maintainer on someone else's repo",
            Some("bob"),
            body("org/extra", "affected"),
            StatusCode::FORBIDDEN,
        ),
        (
            "push access is not maintain",
            Some("erin"),
            body("org/plugin", "affected"),
            StatusCode::FORBIDDEN,
        ),
        (
            "outsider",
            Some("eve"),
            body("org/core", "affected"),
            StatusCode::FORBIDDEN,
        ),
        (
            "maintainer on a repo outside the workflow",
            Some("bob"),
            body("org/unknown", "affected"),
            StatusCode::FORBIDDEN,
        ),
        (
            "coordinator on a repo outside the workflow",
            Some("alice"),
            body("org/unknown", "affected"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad repo id",
            Some("alice"),
            body("nope", "affected"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad verdict",
            Some("alice"),
            body("org/core", "maybe"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty reason",
            Some("bob"),
            json!({"repo": "org/core", "verdict": "affected", "reason": " "}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "missing reason",
            Some("bob"),
            json!({"repo": "org/core", "verdict": "affected"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "malformed JSON",
            Some("bob"),
            "{".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no token",
            None,
            body("org/core", "affected"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown token",
            Some("mallory"),
            body("org/core", "affected"),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, login, b, expected) in refusals {
        let (status, v) = w.call("POST", &path, login, Some(&b)).await;
        assert_eq!(status, expected, "{what}: {v}");
        error_line(&v);
    }
    let (status, v) = w
        .call(
            "POST",
            &path,
            Some("bob"),
            Some(&body("org/extra", "affected")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error_line(&v).contains("does not maintain org/extra"),
        "{v}"
    );
    assert_eq!(w.version(&case).await, version, "refusals change nothing");

    // Unknown case, malformed case id.
    let (status, v) = w
        .call(
            "POST",
            "/api/cases/LS-NOPE/assess",
            Some("bob"),
            Some(&body("org/core", "affected")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(error_line(&v).contains("LS-NOPE"));
    let (status, _) = w
        .call(
            "POST",
            "/api/cases/a%20b/assess",
            Some("bob"),
            Some(&body("org/core", "affected")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w
        .call("GET", "/api/cases/LS-NOPE", Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call("GET", "/api/cases/LS-NOPE/plan", Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_repository_outside_the_case() {
    let w = world().await;
    let case = w
        .open_with(json!({"repo": ["org/core", "org/extra"]}))
        .await;
    // org/spare is in the workflow but not in this case.
    let body = json!({"repo": "org/spare", "verdict": "affected", "reason": "r"}).to_string();
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/cases/{case}/assess"),
            Some("alice"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_line(&v).contains("not in this case"), "{v}");
    let (status, _) = w
        .call(
            "POST",
            &format!("/api/cases/{case}/assess"),
            Some("carol"),
            Some(&body),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "carol maintains org/spare, but it is not in the case"
    );
}

#[tokio::test]
async fn fixes_ready_prepared_and_revoked() {
    let w = world().await;
    let case = w.open().await;
    let ready = format!("/api/cases/{case}/fix-ready");
    let revoke = format!("/api/cases/{case}/fix-revoke");

    // Every package of the repository by default.
    let (status, v) = w
        .call("POST", &ready, Some("carol"), Some(&json!({"repo": "org/extra", "patched_versions": "0.4.2", "vulnerable_range": "< 0.4.2"}).to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let extra = repo(&v, "org/extra");
    assert_eq!(extra["fix"]["status"], "released");
    let names: Vec<&str> = extra["fix"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["extra", "extra-macros"]);
    assert_eq!(
        extra["assessment"]["status"], "affected",
        "a fix implies affected"
    );

    // One package, prepared.
    let (status, v) = w
        .call("POST", &ready, Some("bob"), Some(&json!({"repo": "org/core", "patched_versions": "1.9.0", "package": "core", "stage": "prepared"}).to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(repo(&v, "org/core")["fix"]["status"], "prepared");
    assert!(
        v["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["repo"] == "org/core" && b["prepared"] == true),
        "{v}"
    );

    let version = w.version(&case).await;
    for (what, login, body, expected) in [
        (
            "unknown package",
            "bob",
            json!({"repo": "org/core", "patched_versions": "1.9.0", "package": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty versions",
            "bob",
            json!({"repo": "org/core", "patched_versions": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "missing versions",
            "bob",
            json!({"repo": "org/core"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad stage",
            "bob",
            json!({"repo": "org/core", "patched_versions": "1", "stage": "shipped"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "lines and patched versions",
            "bob",
            json!({"repo": "org/core", "patched_versions": "1", "lines": [{"vulnerable_range": "< 1.0.3", "patched_version": "1.0.3"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "overlapping lines",
            "bob",
            json!({"repo": "org/core", "lines": [{"vulnerable_range": "< 1.1.0", "patched_version": "1.1.0"}, {"vulnerable_range": ">= 1.0.0, < 1.1.2", "patched_version": "1.1.2"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a range that does not parse",
            "bob",
            json!({"repo": "org/core", "lines": [{"vulnerable_range": "before 1.0.3", "patched_version": "1.0.3"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a patched version inside its range",
            "bob",
            json!({"repo": "org/core", "lines": [{"vulnerable_range": "< 1.0.3", "patched_version": "1.0.2"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "someone else's repo",
            "bob",
            json!({"repo": "org/extra", "patched_versions": "1"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "outsider",
            "eve",
            json!({"repo": "org/core", "patched_versions": "1"}),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, v) = w
            .call("POST", &ready, Some(login), Some(&body.to_string()))
            .await;
        assert_eq!(status, expected, "{what}: {v}");
        error_line(&v);
    }
    assert_eq!(w.version(&case).await, version);

    let (status, v) = w
        .call(
            "POST",
            &revoke,
            Some("carol"),
            Some(&json!({"repo": "org/extra", "reason": "regression"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(repo(&v, "org/extra")["fix"]["status"], "none");
    let (status, v) = w
        .call(
            "POST",
            &revoke,
            Some("carol"),
            Some(&json!({"repo": "org/extra", "reason": "again"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing to revoke: {v}");
    let (status, _) = w
        .call(
            "POST",
            &revoke,
            Some("bob"),
            Some(&json!({"repo": "org/extra", "reason": "x"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .call(
            "POST",
            &revoke,
            Some("carol"),
            Some(&json!({"repo": "org/extra"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Two release lines, prepared: each shown with its own state.
    let body = json!({"repo": "org/core", "package": "core", "stage": "prepared", "lines": [
        {"vulnerable_range": "< 1.0.3", "patched_version": "1.0.3"},
        {"vulnerable_range": ">= 1.1.0, < 1.1.2", "patched_version": "1.1.2"},
    ]});
    let (status, v) = w
        .call("POST", &ready, Some("bob"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let core = repo(&v, "org/core");
    assert_eq!(core["fix"]["status"], "prepared");
    assert_eq!(
        core["lines"]["core"],
        json!([
            {"vulnerable_range": "< 1.0.3", "patched_version": "1.0.3", "released": false},
            {"vulnerable_range": ">= 1.1.0, < 1.1.2", "patched_version": "1.1.2", "released": false},
        ]),
        "{v}"
    );
}

#[tokio::test]
async fn embargo_and_disclose_now() {
    let w = world().await;
    let case = w.open().await;
    let embargo = format!("/api/cases/{case}/embargo");
    let disclose = format!("/api/cases/{case}/disclose-now");
    let now = w.store.now().await.unwrap();
    let soon = now.plus_days(10).to_string();

    let (status, v) = w
        .call(
            "POST",
            &embargo,
            Some("alice"),
            Some(&json!({"until": soon, "reason": "fixes are slow"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["embargo"]["until"], soon.as_str());

    let version = w.version(&case).await;
    for (what, login, body, expected) in [
        (
            "bad date",
            "alice",
            json!({"until": "2026-13-01T00:00:00Z", "reason": "r"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "too long",
            "alice",
            json!({"until": now.plus_days(90).to_string(), "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "in the past",
            "alice",
            json!({"until": "2001-01-01T00:00:00Z", "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a maintainer",
            "bob",
            json!({"until": soon, "reason": "r"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "no reason",
            "alice",
            json!({"until": soon}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, v) = w
            .call("POST", &embargo, Some(login), Some(&body.to_string()))
            .await;
        assert_eq!(status, expected, "{what}: {v}");
        error_line(&v);
    }
    let (status, v) = w
        .call(
            "POST",
            &disclose,
            Some("bob"),
            Some(&json!({"reason": "leaked"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(error_line(&v).contains("only a coordinator"), "{v}");
    let (status, _) = w.call("POST", &disclose, Some("alice"), Some("{}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.version(&case).await, version);

    let (status, v) = w
        .call(
            "POST",
            &disclose,
            Some("alice"),
            Some(&json!({"reason": "exploited in the wild"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["embargo"]["state"], "exited");
    assert_eq!(v["embargo"]["exit"]["cause"], "disclosed");
    assert_eq!(v["release"], "forced");
    // Once ended, the embargo cannot be set again.
    let (status, v) = w
        .call(
            "POST",
            &embargo,
            Some("alice"),
            Some(&json!({"until": soon, "reason": "r"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    // Closing is a coordinator's; a closed case takes no more commands.
    let close = format!("/api/cases/{case}/close");
    let body = json!({"reason": "withdrawn"}).to_string();
    let (status, v) = w.call("POST", &close, Some("bob"), Some(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = w.call("POST", &close, Some("alice"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["closed"], true, "{v}");
    assert!(v["events_committed"].as_u64().unwrap() > 0, "{v}");
    let (status, v) = w
        .call(
            "POST",
            &disclose,
            Some("alice"),
            Some(&json!({"reason": "again"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(error_line(&v).contains("closed"), "{v}");
}

#[tokio::test]
async fn unknown_routes_methods_and_oversized_bodies_answer_json() {
    let w = world().await;
    let (status, v) = w.call("GET", "/api/nothing", Some("alice"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error_line(&v);
    let (status, v) = w.call("DELETE", "/api/cases", Some("alice"), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    error_line(&v);
    let (status, v) = w
        .call("GET", "/api/cases/x/assess", Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    error_line(&v);
    // A path segment that is not UTF-8 once decoded.
    let (status, v) = w
        .call("GET", "/api/cases/%FF%FE", Some("alice"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    error_line(&v);
    let big = format!(
        "{{\"summary\": \"{}\"}}",
        "x".repeat(lockstep_server::API_BODY_LIMIT + 10)
    );
    let (status, v) = w
        .call("POST", "/api/cases", Some("alice"), Some(&big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error_line(&v);
    // Garbage of every kind in a body never panics.
    let case = w.open().await;
    for body in [
        "\u{0}",
        "null",
        "1e999999",
        "{\"repo\": {\"$gt\": 1}}",
        "\"\\ud800\"",
        "{\"reason\": 5}",
    ] {
        for ep in [
            "assess",
            "fix-ready",
            "fix-revoke",
            "embargo",
            "disclose-now",
            "close",
        ] {
            let (status, v) = w
                .call(
                    "POST",
                    &format!("/api/cases/{case}/{ep}"),
                    Some("alice"),
                    Some(body),
                )
                .await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{ep} {body:?}: {status} {v}"
            );
            error_line(&v);
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let w = world().await;
    let (status, v) = w.call("GET", "/healthz", None, None).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"status": "ok"})));
    let (status, v) = w.call("GET", "/readyz", None, None).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"status": "ready"})));

    let case = w.open().await;
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
    w.call("GET", "/api/cases", None, None).await;

    let (status, text, content_type) = w.raw("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for series in [
        "lockstep_http_requests_total{route=\"/api/cases\",method=\"POST\",status=\"201\"} 1",
        "lockstep_http_requests_total{route=\"/api/cases/{id}/assess\",method=\"POST\",status=\"200\"} 1",
        "lockstep_http_requests_total{route=\"/api/cases/{id}/assess\",method=\"POST\",status=\"403\"} 1",
        "lockstep_http_requests_total{route=\"/api/cases\",method=\"GET\",status=\"401\"} 1",
        "lockstep_http_request_duration_seconds_count{route=\"/api/cases\"} 2",
        "lockstep_commands_total{command=\"open_case\",outcome=\"committed\"} 1",
        "lockstep_commands_total{command=\"assess\",outcome=\"committed\"} 1",
        "lockstep_commands_total{command=\"assess\",outcome=\"refused\"} 1",
        "lockstep_cases{status=\"embargoed\"} 1",
        "lockstep_open_cases 1",
        "lockstep_outbox_rows{state=\"pending\"} 3", // N-1 drafts open first
        "lockstep_outbox_rows{state=\"done\"} 0",
        "lockstep_store_up 1",
        "# TYPE lockstep_webhook_deliveries_total counter",
    ] {
        assert!(text.contains(series), "missing {series:?} in\n{text}");
    }
    assert!(!text.contains(&case), "no case ids in labels");
    assert!(!text.contains(SUMMARY));
}

#[tokio::test]
async fn resolved_callers_are_cached_per_token() {
    let w = world().await;
    let case = w.open().await;
    let before = w.user_lookups();
    for _ in 0..5 {
        let (status, _) = w
            .call("GET", &format!("/api/cases/{case}"), Some("bob"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // One `GET /user` serves the authentication and the case's own question (which adds only
    // the permission lookups); the other four reads hit the cache.
    assert_eq!(w.user_lookups() - before, 1);
    // Another token is another caller.
    w.call("GET", &format!("/api/cases/{case}"), Some("carol"), None)
        .await;
    assert_eq!(w.user_lookups() - before, 2);
    // A refused token is not cached: each attempt asks GitHub.
    w.call("GET", "/api/cases", Some("mallory"), None).await;
    w.call("GET", "/api/cases", Some("mallory"), None).await;
    assert_eq!(w.user_lookups() - before, 4);
}

#[tokio::test]
async fn inline_workflows_when_allowed() {
    let w = world_with(Options {
        inline_workflows: true,
        ..Options::default()
    })
    .await;
    let body = json!({"workflow": WORKFLOW, "summary": SUMMARY, "description": DESCRIPTION, "severity": "low"});
    let (status, v) = w
        .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let broken = json!({"workflow": "name = \"x\"\ncoordinators = 5\n", "summary": "s", "description": "d", "severity": "low"});
    let (status, v) = w
        .call(
            "POST",
            "/api/cases",
            Some("alice"),
            Some(&broken.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_line(&v).contains("workflow:"), "names the line: {v}");
    let both = json!({"workflow": WORKFLOW, "workflow_name": "fixture", "summary": "s", "description": "d", "severity": "low"});
    let (status, _) = w
        .call("POST", "/api/cases", Some("alice"), Some(&both.to_string()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_person_retries_a_write_that_failed_for_good() {
    let w = world().await;
    // The service may not write advisories in org/spare: GitHub refuses its draft for good.
    w.sim.revoke("org/spare", "lockstep-bot").unwrap();
    let case = w.open().await;
    w.settle().await;
    let (_, v) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(
        repo(&v, "org/spare")["failures"].as_object().unwrap().len(),
        1,
        "{v}"
    );
    let retry = format!("/api/cases/{case}/retry");
    let body = json!({"repo": "org/spare", "reason": "granted the app advisory write"}).to_string();
    // bob maintains org/core, not org/spare.
    let (status, v) = w.call("POST", &retry, Some("bob"), Some(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = w
        .call(
            "POST",
            &retry,
            Some("carol"),
            Some(&json!({"repo": "org/core", "reason": "r"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    w.sim
        .grant("org/spare", "lockstep-bot", Permission::Admin)
        .unwrap();
    // carol maintains org/spare.
    let (status, v) = w.call("POST", &retry, Some("carol"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        repo(&v, "org/spare")["failures"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    let (status, v) = w.call("POST", &retry, Some("carol"), Some(&body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing left to retry: {v}");
    w.settle().await;
    let (_, v) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(repo(&v, "org/spare")["advisory_state"], "draft", "{v}");
    assert_eq!(w.sim.advisories("org/spare").unwrap().len(), 1);
}

/// `GET /api/cases` pages through the cases, oldest first, with `after` and `limit`; a bad
/// page request is one clear 400.
#[tokio::test]
async fn case_list_pages() {
    let w = world().await;
    let mut opened = Vec::new();
    for _ in 0..5 {
        opened.push(w.open().await);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let uri = match &after {
            Some(a) => format!("/api/cases?limit=2&after={a}"),
            None => "/api/cases?limit=2".to_owned(),
        };
        let (status, v) = w.call("GET", &uri, Some("alice"), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let page: Vec<String> = v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(page.len() <= 2, "{v}");
        seen.extend(page);
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, opened, "every case once, in the order opened");
    let (_, all) = w.call("GET", "/api/cases", Some("alice"), None).await;
    assert_eq!(all["cases"].as_array().unwrap().len(), 5);
    assert_eq!(all["next"], Value::Null);
    for bad in [
        "/api/cases?limit=0",
        "/api/cases?limit=1001",
        "/api/cases?limit=x",
        "/api/cases?after=not%20an%20id",
        "/api/cases?page=2",
    ] {
        let (status, v) = w.call("GET", bad, Some("alice"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(!error_line(&v).contains('\n'), "{v}");
    }
}
