//! The intake journey through the built binary, against the simulator, locally and through a
//! shared `lockstep serve`: a researcher files a private vulnerability report on one
//! repository; Lockstep discovers it (by polling in local mode, by the `reported` webhook
//! through the server); the coordinator opens the case from it, and it releases. The ledger
//! shows exactly one advisory per repository, the reporter's keeps its GHSA id, and the
//! reporter is credited on every advisory. Then a duplicate is merged, an out-of-scope report
//! is rejected under the policy's rule, and bad input gets one line and exit 1.
#![allow(clippy::unwrap_used)]

use lockstep_e2e::cli::{Mode, WORKFLOW, World, one_line_error, serve_with};
use serde_json::{Value, json};

const RULES: &str = r#"
[[triage.out_of_scope]]
id = "stdio-trust-boundary"
summary = "One stdio peer can crash, hang or exhaust the other; file it as a regular issue"
guidance = "Please file it as a regular issue: the SDK does not defend one stdio peer against the other."
"#;

/// A second workflow that lists only org/core.
const CORE_ONLY: &str = r#"
name = "core-only"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]
"#;

fn file_report(w: &World, who: &str, repo: &str, summary: &str) -> String {
    let a = w
        .sim
        .report_as(
            who,
            repo,
            &json!({
                "summary": summary,
                "description": "The plugin's HTTP transport accepts any Host header (reporter's text).",
                "severity": "high",
                "cwe_ids": ["CWE-350"],
            }),
        )
        .unwrap();
    a["ghsa_id"].as_str().unwrap().to_owned()
}

/// The binary as `who`, with the world's directory as the workflows directory.
fn lockstep(w: &World, who: &str) -> assert_cmd::Command {
    let mut c = w.as_(who);
    c.env("LOCKSTEP_WORKFLOWS_DIR", w.dir.path());
    c
}

fn json_of(w: &World, who: &str, args: &[&str]) -> Value {
    let out = lockstep(w, who)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// Local mode: `run --once` polls (with the workflows directory); remote: the server runs.
fn discover(w: &World) {
    if w.mode == Mode::Local {
        w.operator_as("alice")
            .env("LOCKSTEP_WORKFLOWS_DIR", w.dir.path())
            .args(["run", "--once"])
            .assert()
            .success();
    }
}

fn run(w: &World) {
    match w.mode {
        Mode::Local => discover(w),
        Mode::Remote => w.wait_idle(),
    }
}

async fn journey(mode: Mode) {
    let mut w = World::new().await;
    for login in ["rita", "sam"] {
        w.sim.add_user(login, &format!("tok-{login}"));
    }
    std::fs::write(w.path("w.toml"), format!("{WORKFLOW}{RULES}")).unwrap();
    std::fs::write(w.path("core-only.toml"), CORE_ONLY).unwrap();
    if mode == Mode::Remote {
        w.service = Some(serve_with(&w, "whsec", "info", true));
        w.mode = Mode::Remote;
        let url = format!("{}/webhooks/github", w.service.as_ref().unwrap().url);
        w.sim.set_webhook(&url, Some("whsec"));
    }

    // A researcher files a private report on one SDK.
    let ghsa = file_report(&w, "rita", "org/plugin", "Host header not validated");
    w.sim.flush_webhooks().await;
    discover(&w);
    let mut listed = json_of(&w, "alice", &["report", "list", "--json"]);
    for _ in 0..20 {
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        listed = json_of(&w, "alice", &["report", "list", "--json"]);
    }
    let reports = listed.as_array().unwrap();
    assert_eq!(reports.len(), 1, "{listed}");
    let r = &reports[0];
    assert_eq!(r["repo"], "org/plugin");
    assert_eq!(r["ghsa_id"], ghsa.as_str());
    assert_eq!(r["reporter"], "rita");
    assert_eq!(r["state"], "new");
    assert_eq!(r["case_id"], Value::Null);

    // dave maintains org/plugin on GitHub: he sees the report and the policy's choices; eve
    // (write access only) is refused.
    let shown = json_of(
        &w,
        "dave",
        &["report", "show", "org/plugin", &ghsa, "--json"],
    );
    assert_eq!(shown["rules"][0]["id"], "stdio-trust-boundary");
    assert_eq!(shown["severity"], "high");
    one_line_error(
        lockstep(&w, "eve").args(["report", "show", "org/plugin", &ghsa]),
        3,
        "refused",
    );

    // Bad input: one line, exit 1, nothing changes.
    let reference = format!("org/plugin/{ghsa}");
    one_line_error(
        lockstep(&w, "alice").args([
            "case",
            "open",
            "--workflow",
            "core-only.toml",
            "--from-report",
            &reference,
        ]),
        1,
        "is not a repository of workflow",
    );
    one_line_error(
        lockstep(&w, "alice").args([
            "report",
            "reject",
            "org/core/GHSA-zzzz-zzzz-zzzz",
            "--reason",
            "x",
        ]),
        1,
        "not a report awaiting triage",
    );
    one_line_error(
        lockstep(&w, "alice").args(["report", "show", "else/where", &ghsa]),
        1,
        "not a repository of any workflow",
    );
    one_line_error(
        lockstep(&w, "alice").args(["report", "merge", "not-a-ref", "--case", "LS-1"]),
        1,
        "report",
    );

    // The coordinator opens the case from the report.
    let opened = json_of(
        &w,
        "alice",
        &[
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--from-report",
            &reference,
            "--json",
        ],
    );
    let case = opened["case_id"].as_str().unwrap().to_owned();
    assert_eq!(opened["repos"].as_array().unwrap().len(), 3);
    one_line_error(
        lockstep(&w, "alice").args([
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--from-report",
            &reference,
        ]),
        1,
        "already decided",
    );
    run(&w);
    // The drafts: one per repository, the reporter's adopted, the reporter credited and a
    // collaborator on every sibling.
    for repo in ["org/core", "org/plugin", "org/extra"] {
        let advisories = w.sim.advisories(repo).unwrap();
        assert_eq!(advisories.len(), 1, "{repo}: {advisories:?}");
        let a = &advisories[0];
        assert_eq!(a["state"], "draft", "{repo}");
        assert!(
            a["credits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["login"] == "rita" && c["type"] == "reporter"),
            "{repo}: {}",
            a["credits"]
        );
        if repo != "org/plugin" {
            assert!(
                a["collaborating_users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u["login"] == "rita"),
                "{repo}"
            );
        }
    }
    let plugin = &w.sim.advisories("org/plugin").unwrap()[0];
    assert_eq!(plugin["ghsa_id"], ghsa.as_str());
    assert_eq!(plugin["submission"]["accepted"], true);

    // A second researcher reports the same flaw on org/core: merged as a duplicate.
    let dup = file_report(&w, "sam", "org/core", "Same Host header flaw");
    w.sim.flush_webhooks().await;
    discover(&w);
    let mut merged = false;
    for _ in 0..20 {
        let out = lockstep(&w, "alice")
            .args([
                "report",
                "merge",
                &format!("org/core/{dup}"),
                "--case",
                &case,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            merged = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(merged, "the duplicate was never listed");

    // An out-of-scope report, rejected under the rule by the repository's maintainer.
    let oos = file_report(&w, "sam", "org/plugin", "stdio server can hang the client");
    w.sim.flush_webhooks().await;
    discover(&w);
    let mut rejected = false;
    for _ in 0..20 {
        let out = lockstep(&w, "dave")
            .args([
                "report",
                "reject",
                &format!("org/plugin/{oos}"),
                "--rule",
                "stdio-trust-boundary",
                "--reason",
                "stdio only",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            rejected = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(rejected);
    one_line_error(
        lockstep(&w, "alice").args([
            "report",
            "reject",
            &format!("org/plugin/{oos}"),
            "--reason",
            "again",
        ]),
        1,
        "already decided",
    );

    // The release.
    run(&w);
    for repo in ["org/core", "org/plugin", "org/extra"] {
        lockstep(&w, "alice")
            .args([
                "fix-ready",
                &case,
                "--repo",
                repo,
                "--patched-versions",
                "2.0.1",
            ])
            .assert()
            .success();
    }
    run(&w);
    run(&w);
    if mode == Mode::Remote {
        for _ in 0..100 {
            if w.sim.advisories("org/extra").unwrap()[0]["state"] == "published" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    // The ledger: one advisory of the case per repository, all published; the reporter's
    // kept its id; the duplicate and the rejected report are closed.
    for repo in ["org/core", "org/plugin", "org/extra"] {
        let published: Vec<Value> = w
            .sim
            .advisories(repo)
            .unwrap()
            .into_iter()
            .filter(|a| a["state"] == "published")
            .collect();
        assert_eq!(published.len(), 1, "{repo}");
    }
    let states = |repo: &str| -> Vec<(String, String)> {
        w.sim
            .advisories(repo)
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["ghsa_id"].as_str().unwrap().to_owned(),
                    a["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert!(states("org/plugin").contains(&(ghsa.clone(), "published".into())));
    let mut closed = false;
    for _ in 0..100 {
        closed = states("org/plugin").contains(&(oos.clone(), "closed".into()));
        if closed {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        closed,
        "{:?} {}",
        states("org/plugin"),
        json_of(
            &w,
            "alice",
            &["report", "show", "org/plugin", &oos, "--json"]
        )
    );
    assert!(states("org/core").contains(&(dup.clone(), "closed".into())));
    assert_eq!(states("org/extra").len(), 1);
    // The reporter's own credit (accepted: they filed it) survives publication.
    let plugin = w.sim.advisory("org/plugin", &ghsa).unwrap();
    assert!(
        plugin["credits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["login"] == "rita" && c["type"] == "reporter")
    );
    let all = json_of(&w, "alice", &["report", "list", "--all", "--json"]);
    let state_of = |g: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["ghsa_id"] == g)
            .map(|r| r["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&ghsa).as_deref(), Some("accepted"));
    assert_eq!(state_of(&dup).as_deref(), Some("merged"));
    assert_eq!(state_of(&oos).as_deref(), Some("rejected"));
    // The audit trail verifies and records the rule's guidance.
    w.audit(&["verify"]).assert().success();
    let guidance = w
        .scalar(&format!(
            "SELECT count(*) FROM audit WHERE case_id = 'report:org/plugin/{oos}' AND input LIKE '%regular issue%' AND input LIKE '%stdio-trust-boundary%'"
        ))
        .await;
    assert_eq!(guidance, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_report_becomes_the_case_locally() {
    journey(Mode::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_report_becomes_the_case_through_a_server_with_webhooks() {
    journey(Mode::Remote).await;
}
