//! Private vulnerability reports over the HTTP API, against the simulator: discovery by the
//! `reported` webhook and by polling `?state=triage`, opening a case that adopts the report,
//! a merged duplicate, a rejection under a rule, the authority table, and bad input.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const POLICY: &str = r#"
name = "policy"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[triage]
[[triage.out_of_scope]]
id = "stdio-trust-boundary"
summary = "One stdio peer can crash, hang or exhaust the other; file it as a regular issue"
guidance = "Please file it as a regular issue."

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
"#;

async fn reporting_world() -> World {
    let w = world().await;
    for login in ["rita", "sam", "tom"] {
        w.sim.add_user(login, &format!("tok-{login}"));
    }
    std::fs::write(w.dir.path().join("workflows").join("policy.toml"), POLICY).unwrap();
    w
}

async fn listed(w: &World, who: &str, all: bool) -> (StatusCode, Vec<Value>) {
    let path = if all {
        "/api/reports?all=true"
    } else {
        "/api/reports"
    };
    let (status, v) = w.call("GET", path, Some(who), None).await;
    let reports = v["reports"].as_array().cloned().unwrap_or_default();
    (status, reports)
}

#[tokio::test]
async fn a_webhook_delivery_is_listed_at_once_and_recorded_once() {
    let w = reporting_world().await;
    w.serve_webhooks(Some(SECRET)).await;
    let ghsa = file_report(&w, "rita", "org/extra");
    w.sim.flush_webhooks().await;
    let started = std::time::Instant::now();
    let mut found = Vec::new();
    while started.elapsed() < Duration::from_secs(1) {
        found = listed(&w, "alice", false).await.1;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(found.len(), 1, "listed within one second of the delivery");
    let r = &found[0];
    assert_eq!(r["repo"], "org/extra");
    assert_eq!(r["ghsa_id"], ghsa.as_str());
    assert_eq!(r["reporter"], "rita");
    assert_eq!(r["state"], "new");
    assert_eq!(r["case_id"], Value::Null);
    for key in ["summary", "received_at"] {
        assert!(r.get(key).is_some(), "{key}");
    }
    // The poll finds it too, and records nothing new.
    let rt = intake_runtime(&w);
    rt.run_once().await.unwrap();
    assert_eq!(listed(&w, "alice", true).await.1.len(), 1);
}

#[tokio::test]
async fn without_webhooks_the_runtime_polls_triage_with_conditional_requests() {
    let w = reporting_world().await;
    let ghsa = file_report(&w, "rita", "org/core");
    let rt = intake_runtime(&w);
    rt.run_once().await.unwrap();
    let (_, found) = listed(&w, "alice", false).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["ghsa_id"], ghsa.as_str());
    let lists = |w: &World| {
        w.sim
            .ledger()
            .iter()
            .filter(|e| e.path.contains("security-advisories") && e.path.contains("state=triage"))
            .count()
    };
    let after_first = lists(&w);
    assert_eq!(after_first, 4, "one listing per repository");
    // Within the interval the next pass does not poll again.
    rt.run_once().await.unwrap();
    assert_eq!(lists(&w), after_first);
    // With the interval passed, the next poll asks again, conditionally: unchanged listings
    // answer 304 (free against the rate limit).
    let every = intake_runtime_every(&w, Duration::ZERO);
    every.run_once().await.unwrap();
    let not_modified = |w: &World| {
        w.sim
            .ledger()
            .iter()
            .filter(|e| e.path.contains("state=triage") && e.status == 304)
            .count()
    };
    assert_eq!(not_modified(&w), 0);
    every.run_once().await.unwrap();
    assert_eq!(lists(&w), after_first + 8);
    assert_eq!(not_modified(&w), 4);
    assert_eq!(listed(&w, "alice", true).await.1.len(), 1);
    // While webhooks are healthy the `reported` delivery brings reports: the poll backs off
    // to the safety interval (an hour by default).
    every.webhook_received();
    every.run_once().await.unwrap();
    every.run_once().await.unwrap();
    assert_eq!(lists(&w), after_first + 8);
}

#[tokio::test]
async fn a_case_opened_from_a_report_adopts_it_and_credits_the_reporter_everywhere() {
    let w = reporting_world().await;
    let ghsa = file_report(&w, "rita", "org/extra");
    intake_runtime(&w).run_once().await.unwrap();
    let body = json!({
        "workflow_name": "fixture",
        "from_report": format!("org/extra/{ghsa}"),
        "repo": ["org/core", "org/plugin"],
    });
    // Only a coordinator opens a case from a report.
    let (status, _) = w
        .call("POST", "/api/cases", Some("carol"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = w
        .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let repos: Vec<&str> = v["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(repos, ["org/core", "org/extra", "org/plugin"]);
    let before = w.sim.ledger().len();
    w.settle().await;
    let writes = w.sim.ledger()[before..]
        .iter()
        .filter(|e| e.method != "GET")
        .count();
    // 2 creates, 1 adoption, 2 link updates (with collaborators).
    assert_eq!(
        writes, 5,
        "2N - 1 writes to open N = 3 drafts from a report"
    );
    // Exactly one advisory in the report's repository: the reporter's, accepted.
    let extra = w.sim.advisories("org/extra").unwrap();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0]["ghsa_id"], ghsa.as_str());
    assert_eq!(extra[0]["state"], "draft");
    assert_eq!(extra[0]["submission"]["accepted"], true);
    for repo in ["org/core", "org/extra", "org/plugin"] {
        let advisories = w.sim.advisories(repo).unwrap();
        assert_eq!(advisories.len(), 1, "{repo}");
        let a = &advisories[0];
        assert!(
            a["credits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["login"] == "rita" && c["type"] == "reporter"),
            "{repo}: {}",
            a["credits"]
        );
        let collaborators: Vec<&str> = a["collaborating_users"]
            .as_array()
            .map(|u| u.iter().filter_map(|u| u["login"].as_str()).collect())
            .unwrap_or_default();
        if repo != "org/extra" {
            assert!(collaborators.contains(&"rita"), "{repo}: {collaborators:?}");
        }
        let description = a["description"].as_str().unwrap();
        assert!(description.starts_with("A web page can reach"), "{repo}");
    }
    // The report is accepted and tied to the case; deciding it again is refused.
    let (_, all) = listed(&w, "alice", true).await;
    assert_eq!(all[0]["state"], "accepted");
    assert_eq!(all[0]["case_id"], v["case_id"]);
    let (status, again) = w
        .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{again}");
    assert!(again["error"].as_str().unwrap().contains("already decided"));
}

#[tokio::test]
async fn a_duplicate_is_merged_and_closed_and_a_rejection_names_its_rule() {
    let w = reporting_world().await;
    let first = file_report(&w, "rita", "org/core");
    let rt = intake_runtime(&w);
    rt.run_once().await.unwrap();
    let case = {
        let body = json!({"workflow_name": "fixture", "from_report": format!("org/core/{first}"), "repo": ["org/extra"]});
        let (status, v) = w
            .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["case_id"].as_str().unwrap().to_owned()
    };
    w.settle().await;
    // sam reports the same flaw on org/core: merged as a duplicate, closed, credited.
    let dup = file_report(&w, "sam", "org/core");
    // tom reports on org/plugin, which the case does not include: merged and adopted.
    let late = file_report(&w, "tom", "org/plugin");
    let poll = intake_runtime(&w);
    poll.run_once().await.unwrap();
    let merge = json!({"case": case, "reason": "same flaw"}).to_string();
    let (status, _) = w
        .call(
            "POST",
            &format!("/api/reports/org/core/{dup}/merge"),
            Some("bob"),
            Some(&merge),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a maintainer may not merge");
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/reports/org/core/{dup}/merge"),
            Some("alice"),
            Some(&merge),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/reports/org/plugin/{late}/merge"),
            Some("alice"),
            Some(&merge),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    w.settle().await;
    let core = w.sim.advisory_states("org/core").unwrap();
    assert_eq!(core.len(), 2);
    assert!(
        core.iter()
            .any(|(g, s)| *g == dup && format!("{s:?}").to_lowercase().contains("closed")),
        "{core:?}"
    );
    let plugin = w.sim.advisories("org/plugin").unwrap();
    assert_eq!(
        plugin.len(),
        1,
        "the late report is adopted, never duplicated"
    );
    assert_eq!(plugin[0]["ghsa_id"], late.as_str());
    assert_eq!(plugin[0]["state"], "draft");

    // A third report on org/plugin, out of scope under the policy's rule: dave (GitHub
    // maintainer of org/plugin) rejects it; the rule's guidance is in the audit trail, and
    // the runtime closes it on GitHub.
    let oos = file_report(&w, "rita", "org/plugin");
    intake_runtime(&w).run_once().await.unwrap();
    let (status, v) = w
        .call(
            "GET",
            &format!("/api/reports/org/plugin/{oos}"),
            Some("dave"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rules"][0]["id"], "stdio-trust-boundary");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("reporter's text")
    );
    let reject = |rule: &str| json!({"reason": "stdio only", "rule": rule}).to_string();
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/reports/org/plugin/{oos}/reject"),
            Some("dave"),
            Some(&reject("no-such-rule")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/reports/org/plugin/{oos}/reject"),
            Some("dave"),
            Some(&reject("stdio-trust-boundary")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["rm"], "closed");
    assert_eq!(v["decision"]["rule"]["id"], "stdio-trust-boundary");
    assert_eq!(v["close_state"], "pending");
    intake_runtime(&w).run_once().await.unwrap();
    let closed = w.sim.advisory("org/plugin", &oos).unwrap();
    assert_eq!(closed["state"], "closed");
    let (_, v) = w
        .call(
            "GET",
            &format!("/api/reports/org/plugin/{oos}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(v["close_state"], "done");
    // Decided already: refused, nothing changes.
    let (status, _) = w
        .call(
            "POST",
            &format!("/api/reports/org/plugin/{oos}/reject"),
            Some("alice"),
            Some(&reject("stdio-trust-boundary")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    w.store.verify(None).await.unwrap();
}

#[tokio::test]
async fn the_authority_table_and_bad_input() {
    let w = reporting_world().await;
    let core = file_report(&w, "rita", "org/core");
    let plugin = file_report(&w, "rita", "org/plugin");
    intake_runtime(&w).run_once().await.unwrap();
    let show = |repo: &str, g: &str| format!("/api/reports/{repo}/{g}");
    // (who, method, path, status)
    let cases: Vec<(&str, String, StatusCode)> = vec![
        ("alice", show("org/core", &core), StatusCode::OK),
        ("bob", show("org/core", &core), StatusCode::OK),
        ("carol", show("org/core", &core), StatusCode::FORBIDDEN),
        ("dave", show("org/plugin", &plugin), StatusCode::OK),
        ("erin", show("org/plugin", &plugin), StatusCode::FORBIDDEN),
        ("eve", show("org/core", &core), StatusCode::FORBIDDEN),
    ];
    for (who, path, want) in cases {
        let (status, v) = w.call("GET", &path, Some(who), None).await;
        assert_eq!(status, want, "{who} GET {path}: {v}");
    }
    // Lists: each sees what they may; someone with no role is refused.
    assert_eq!(listed(&w, "alice", false).await.1.len(), 2);
    assert_eq!(listed(&w, "bob", false).await.1.len(), 1);
    assert_eq!(listed(&w, "dave", false).await.1.len(), 1);
    assert_eq!(listed(&w, "eve", false).await.0, StatusCode::FORBIDDEN);
    // A maintainer may reject on their repository, not on another's.
    let reject = json!({"reason": "not ours"}).to_string();
    let (status, _) = w
        .call(
            "POST",
            &format!("{}/reject", show("org/plugin", &plugin)),
            Some("bob"),
            Some(&reject),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Bad input, and nothing changes.
    let bad: Vec<(String, Option<String>, &str)> = vec![
        // A GHSA Lockstep has no report for.
        (
            show("org/core", "GHSA-zzzz-zzzz-zzzz"),
            None,
            "not a report awaiting triage",
        ),
        // A repository outside every workflow.
        (
            show("else/where", &core),
            None,
            "not a repository of any workflow",
        ),
    ];
    for (path, body, want) in bad {
        let (status, v) = w.call("GET", &path, Some("alice"), body.as_deref()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{v}");
    }
    // --from-report whose repository is not in the workflow named.
    let body = json!({"workflow_name": "policy", "from_report": format!("org/core/{core}")});
    let (status, v) = w
        .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(listed(&w, "alice", false).await.1.len(), 2);
    assert!(w.store.list_cases().await.unwrap().is_empty());
}
