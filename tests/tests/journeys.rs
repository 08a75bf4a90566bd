//! Every case command through the built binary, against the simulator: the coordinator's and
//! maintainers' journeys, and each command's errors (exit codes and one-line messages).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use lockstep_e2e::cli::{
    Mode, Service, WORKFLOW, World, days_from_now, normalize, one_line_error, repo_state,
    seconds_from_now, serve_logging,
};
use lockstep_sim::Permission;
use predicates::prelude::*;
use serde_json::{Value, json};

/// What a script printed: per command, its arguments, exit code and output, normalized.
#[derive(Default)]
struct Transcript(std::cell::RefCell<Vec<String>>);

impl Transcript {
    /// Runs `who`'s command, expecting success; records and returns its stdout.
    fn ok(&self, w: &World, who: &str, args: &[&str]) -> String {
        let out = w
            .as_(who)
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        self.0.borrow_mut().push(normalize(&format!(
            "{who} {} -> 0\n{stdout}",
            args.join(" ")
        )));
        stdout
    }

    /// Runs `who`'s command, expecting `code` and one line containing `needle`; records it.
    fn fails(&self, w: &World, who: &str, args: &[&str], code: i32, needle: &str) {
        let line = one_line_error(w.as_(who).args(args), code, needle);
        self.0.borrow_mut().push(normalize(&format!(
            "{who} {} -> {code}\n{line}",
            args.join(" ")
        )));
    }

    fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// The coordinator's and maintainers' journeys, in `mode`; what every case command printed.
async fn three_journeys(mode: Mode) -> Vec<String> {
    let w = World::in_mode(mode).await;
    let t = Transcript::default();
    let case = w.open(&[]);
    assert!(case.starts_with("LS-"), "{case}");

    // Automation opens the linked drafts and requests the CVEs.
    w.run_once();
    let show = w.show(&case);
    for repo in ["org/core", "org/plugin", "org/extra"] {
        assert_eq!(repo_state(&show, repo)["advisory_state"], "draft");
        assert!(
            repo_state(&show, repo)["ghsa_id"]
                .as_str()
                .unwrap()
                .starts_with("GHSA-")
        );
    }
    assert_eq!(show["embargo"]["state"], "active");
    assert!(t.ok(&w, "alice", &["case", "list"]).contains(&case));
    let list: Value =
        serde_json::from_str(&t.ok(&w, "alice", &["case", "list", "--json"])).unwrap();
    assert_eq!(list[0]["id"], case.as_str());
    t.ok(&w, "alice", &["case", "show", &case]);
    t.ok(&w, "alice", &["case", "show", &case, "--json"]);

    // Maintainers assess and mark fixes: bob by the workflow, dave by GitHub permission.
    t.ok(
        &w,
        "bob",
        &[
            "assess",
            &case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "transport",
        ],
    );
    t.ok(
        &w,
        "alice",
        &[
            "assess",
            &case,
            "--repo",
            "org/extra",
            "--not-affected",
            "--reason",
            "no HTTP",
        ],
    );
    let out = t.ok(
        &w,
        "bob",
        &[
            "fix-ready",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.1",
            "--vulnerable-range",
            "< 2.0.1",
        ],
    );
    assert!(out.contains("1 repositories still hold"), "{out}");
    let plan: Value = serde_json::from_str(&t.ok(&w, "alice", &["plan", &case, "--json"])).unwrap();
    assert_eq!(plan["gate_open"], false);
    assert_eq!(plan["blockers"][0]["repo"], "org/plugin");
    assert!(
        t.ok(&w, "alice", &["plan", &case])
            .contains("wave 2: org/plugin")
    );
    w.run_once();
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "held while plugin lacks a fix"
    );

    // A fix that is ready but not released holds the release like no fix at all.
    let out = t.ok(
        &w,
        "dave",
        &[
            "fix-ready",
            &case,
            "--repo",
            "org/plugin",
            "--patched-versions",
            "0.9.1",
            "--prepared",
        ],
    );
    assert!(out.contains("fix prepared, not yet released"), "{out}");
    w.run_once();
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "held while plugin's fix is only prepared"
    );
    let plan: Value = serde_json::from_str(&t.ok(&w, "alice", &["plan", &case, "--json"])).unwrap();
    assert_eq!(plan["gate_open"], false);
    assert_eq!(plan["blockers"][0]["repo"], "org/plugin");
    assert_eq!(plan["blockers"][0]["reason"], "fix_not_released");
    assert_eq!(plan["blockers"][0]["prepared"], true);

    // A fix mark can be withdrawn and given again: core's is withdrawn, so plugin's release
    // does not open the gate.
    t.ok(
        &w,
        "bob",
        &[
            "fix-revoke",
            &case,
            "--repo",
            "org/core",
            "--reason",
            "regression",
        ],
    );
    t.ok(
        &w,
        "dave",
        &[
            "fix-ready",
            &case,
            "--repo",
            "org/plugin",
            "--patched-versions",
            "0.9.1",
        ],
    );
    w.run_once();
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "the revocation held the release"
    );
    t.ok(
        &w,
        "bob",
        &[
            "fix-ready",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.2",
        ],
    );
    w.run_once();
    let show = w.show(&case);
    assert_eq!(repo_state(&show, "org/core")["advisory_state"], "published");
    assert_eq!(
        repo_state(&show, "org/plugin")["advisory_state"],
        "published"
    );
    assert_eq!(repo_state(&show, "org/extra")["advisory_state"], "closed");
    let core = w.sim.advisories("org/core").unwrap();
    assert_eq!(core[0]["vulnerabilities"][0]["patched_versions"], "2.0.2");
    t.ok(&w, "alice", &["case", "show", &case]);
    t.ok(&w, "alice", &["plan", &case]);

    // The audit trail verifies, and a checkpoint kept outside the database verifies too
    // (operator commands, over the database, in either mode).
    w.audit(&["verify"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("audit ok"));
    let checkpoint = w
        .audit(&["checkpoint", "--key", "audit.key"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(w.path("cp.txt"), checkpoint).unwrap();
    w.audit(&["verify", "--checkpoint", "cp.txt"])
        .assert()
        .success()
        .stdout(predicate::str::contains("consistent with the checkpoint"));
    assert!(Path::new(&w.path("audit.key")).exists());

    // Every advisory is out: the coordinator closes the case, a maintainer may not.
    t.fails(
        &w,
        "bob",
        &["case", "close", &case, "--reason", "done"],
        3,
        "refused",
    );
    let out = t.ok(
        &w,
        "alice",
        &[
            "case",
            "close",
            &case,
            "--reason",
            "all advisories published",
        ],
    );
    assert!(out.contains("closed; 0 unpublished draft(s)"), "{out}");
    let listed: Value =
        serde_json::from_str(&t.ok(&w, "alice", &["case", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["status"], "closed", "{listed}");
    t.fails(
        &w,
        "bob",
        &["fix-revoke", &case, "--repo", "org/core", "--reason", "x"],
        1,
        "closed",
    );
    t.lines()
}

/// The journeys run in both modes, and every case command prints the same in both.
#[tokio::test(flavor = "multi_thread")]
async fn the_three_journeys_from_a_terminal_locally_and_through_a_server() {
    let local = three_journeys(Mode::Local).await;
    let remote = three_journeys(Mode::Remote).await;
    assert_eq!(local.len(), remote.len());
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(l, r, "local and remote outputs differ");
    }
}

/// Every command's errors, locally and through a server: the same lines, the same codes.
#[tokio::test(flavor = "multi_thread")]
async fn every_command_reports_its_errors_in_one_line_in_both_modes() {
    let local = errors_in_one_line(Mode::Local).await;
    let remote = errors_in_one_line(Mode::Remote).await;
    assert!(local.len() >= 20, "{local:?}");
    assert_eq!(local.len(), remote.len());
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(l, r, "local and remote errors differ");
    }
}

async fn errors_in_one_line(mode: Mode) -> Vec<String> {
    let w = World::in_mode(mode).await;
    // Every error line, normalized, to compare the two modes.
    let lines = std::cell::RefCell::new(Vec::new());
    let err = |cmd: &mut assert_cmd::Command, code: i32, needle: &str| {
        let line = one_line_error(cmd, code, needle);
        lines.borrow_mut().push(normalize(&line));
        line
    };
    let case = w.open(&[]);

    // Reading an embargoed case is for its coordinators and maintainers, as over HTTP: eve
    // only has write access to one repository, and a token GitHub does not know is nobody.
    err(
        w.as_("eve").args(["case", "show", &case]),
        3,
        "refused: eve is neither a coordinator",
    );
    err(w.as_("eve").args(["plan", &case]), 3, "refused: eve");
    let listed = w.as_("eve").args(["case", "list", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).unwrap(),
        json!([])
    );
    err(
        w.as_("nobody").args(["case", "list"]),
        1,
        "cannot identify the caller",
    );
    w.as_("dave").args(["plan", &case]).assert().success();
    let listed = w.as_("bob").args(["case", "list", "--json"]).unwrap();
    assert!(String::from_utf8(listed.stdout).unwrap().contains(&case));

    // Unknown case, for every command that takes one.
    for args in [
        vec!["case", "show", "LS-NOPE"],
        vec![
            "assess",
            "LS-NOPE",
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "x",
        ],
        vec![
            "fix-ready",
            "LS-NOPE",
            "--repo",
            "org/core",
            "--patched-versions",
            "1",
        ],
        vec![
            "fix-revoke",
            "LS-NOPE",
            "--repo",
            "org/core",
            "--reason",
            "x",
        ],
        vec![
            "embargo",
            "LS-NOPE",
            "--until",
            "2030-01-01T00:00:00Z",
            "--reason",
            "x",
        ],
        vec!["disclose-now", "LS-NOPE", "--reason", "x"],
        vec!["plan", "LS-NOPE"],
    ] {
        err(w.as_("alice").args(&args), 1, "unknown case LS-NOPE");
    }
    // Release lines: a range that does not parse, a patched version inside its own range,
    // two lines that overlap, a line without its patched version; nothing changes.
    let before = w.show(&case);
    for (lines, needle) in [
        (vec!["before 1.0.3=1.0.3"], "does not parse"),
        (
            vec![">= 1.0.0, < 1.0.3=1.0.2"],
            "inside its own vulnerable range",
        ),
        (vec!["< 1.1.0=1.1.0", ">= 1.0.0, < 1.1.2=1.1.2"], "overlap"),
        (vec!["< 1.0.3"], "VULNERABLE_RANGE=PATCHED_VERSION"),
    ] {
        let mut args = vec!["fix-ready", &case, "--repo", "org/core"];
        for l in &lines {
            args.extend(["--line", l]);
        }
        one_line_error(w.as_("bob").args(&args), 1, needle);
    }
    assert_eq!(w.show(&case), before);
    // Two lines, prepared (in a case of their own): case show names both.
    let lined = w.open(&[]);
    w.as_("bob")
        .args([
            "fix-ready",
            &lined,
            "--repo",
            "org/core",
            "--line",
            "< 1.0.3=1.0.3",
            "--line",
            ">= 1.1.0, < 1.1.2=1.1.2",
            "--prepared",
        ])
        .assert()
        .success();
    w.as_("alice")
        .args(["case", "show", &lined])
        .assert()
        .success()
        .stdout(predicate::str::contains("prepared 1.0.3, 1.1.2"));
    let show = w.show(&lined);
    let core_lines = &repo_state(&show, "org/core")["lines"];
    assert_eq!(core_lines.as_object().unwrap().len(), 2, "{show}");
    // A repository outside the case (and one outside the workflow).
    let narrow = w.open(&["--repo", "org/core"]);
    err(
        w.as_("alice").args([
            "assess",
            &narrow,
            "--repo",
            "org/plugin",
            "--affected",
            "--reason",
            "x",
        ]),
        1,
        "org/plugin is not in this case",
    );
    err(
        w.as_("alice").args([
            "assess",
            &case,
            "--repo",
            "org/nope",
            "--affected",
            "--reason",
            "x",
        ]),
        1,
        "not a repository of workflow",
    );
    // A maintainer acting on someone else's repository, and a writer who maintains nothing.
    err(
        w.as_("bob").args([
            "assess",
            &case,
            "--repo",
            "org/plugin",
            "--affected",
            "--reason",
            "x",
        ]),
        3,
        "does not maintain org/plugin",
    );
    err(
        w.as_("eve").args([
            "fix-ready",
            &case,
            "--repo",
            "org/plugin",
            "--patched-versions",
            "1",
        ]),
        3,
        "refused",
    );
    err(
        w.as_("bob").args(["disclose-now", &case, "--reason", "x"]),
        3,
        "only a coordinator",
    );
    err(
        w.as_("bob").args([
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
            "--severity",
            "low",
        ]),
        3,
        "not a coordinator",
    );
    // Bad dates, CVSS vectors, CWE ids, credits.
    let open = |extra: &[&str]| {
        let mut c = w.as_("alice");
        c.args([
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
        ])
        .args(extra);
        c
    };
    err(
        &mut open(&["--cvss", "CVSS:3.1/AV:N"]),
        1,
        "invalid CVSS vector",
    );
    err(&mut open(&["--severity", "severe"]), 1, "invalid severity");
    err(
        &mut open(&["--severity", "high", "--cwe", "79"]),
        1,
        "invalid CWE id",
    );
    err(
        &mut open(&["--severity", "high", "--credit", "alice"]),
        1,
        "invalid credit",
    );
    // GitHub would refuse a draft crediting a login it does not know, for good: refused at
    // once, and no case is opened.
    let list = || {
        w.as_("alice")
            .args(["case", "list", "--json"])
            .unwrap()
            .stdout
    };
    let cases_before = list();
    err(
        &mut open(&["--severity", "low", "--credit", "ghost-user:finder"]),
        1,
        "credited user \"ghost-user\" is not a GitHub user",
    );
    assert_eq!(list(), cases_before);
    err(
        &mut open(&["--severity", "high", "--embargo-until", "next week"]),
        1,
        "invalid time",
    );
    err(
        &mut open(&[
            "--severity",
            "high",
            "--embargo-until",
            "2099-01-01T00:00:00Z",
        ]),
        1,
        "past the workflow's limit",
    );
    err(
        w.as_("alice")
            .args(["embargo", &case, "--until", "31/12/2026", "--reason", "x"]),
        1,
        "invalid time",
    );
    err(
        w.as_("alice").args([
            "embargo",
            &case,
            "--until",
            "2020-01-01T00:00:00Z",
            "--reason",
            "x",
        ]),
        1,
        "not after now",
    );
    // A malformed workflow names file, line and column.
    std::fs::write(w.path("bad.toml"), WORKFLOW.replace("\"pip\"", "\"pypi\"")).unwrap();
    err(
        w.as_("alice").args([
            "case",
            "open",
            "--workflow",
            "bad.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
            "--severity",
            "low",
        ]),
        1,
        "bad.toml:18:13: invalid ecosystem",
    );
    // Usage errors exit 2: both --severity and --cvss, neither, no verdict.
    w.as_("alice")
        .args([
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
            "--severity",
            "low",
            "--cvss",
            "x",
        ])
        .assert()
        .code(2);
    w.as_("alice")
        .args([
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
        ])
        .assert()
        .code(2);
    w.as_("alice")
        .args(["assess", &case, "--repo", "org/core", "--reason", "x"])
        .assert()
        .code(2);
    // A forged token is refused by GitHub: one line, nothing changed.
    err(
        w.as_("mallory").args([
            "assess",
            &case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "x",
        ]),
        1,
        "cannot identify the caller",
    );
    // Errors changed nothing.
    let show = w.show(&case);
    assert_eq!(
        repo_state(&show, "org/core")["assessment"]["status"],
        "unassessed"
    );
    if mode == Mode::Remote {
        return lines.into_inner();
    }
    // A broken database is one line too.
    std::fs::write(w.path("broken.db"), "not a database").unwrap();
    let mut c = w.as_("alice");
    c.env(
        "LOCKSTEP_DATABASE_URL",
        format!("sqlite://{}", w.path("broken.db").display()),
    )
    .args(["case", "list"]);
    one_line_error(&mut c, 1, "");
    assert_eq!(
        std::fs::read_to_string(w.path("broken.db")).unwrap(),
        "not a database"
    );
    lines.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn embargo_and_disclose_now() {
    let w = World::new().await;
    let case = w.open(&[]);
    w.run_once();
    // An extension within max_days (60) is accepted; past it, refused in one line.
    let within = days_from_now(45);
    w.as_("alice")
        .args([
            "embargo",
            &case,
            "--until",
            &within,
            "--reason",
            "the Python backport needs time",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("embargo until"));
    assert_eq!(w.show(&case)["embargo"]["until"], within.as_str());
    one_line_error(
        w.as_("alice").args([
            "embargo",
            &case,
            "--until",
            &days_from_now(75),
            "--reason",
            "more",
        ]),
        1,
        "past the workflow's limit of 60 days",
    );
    one_line_error(
        w.as_("bob")
            .args(["embargo", &case, "--until", &within, "--reason", "x"]),
        3,
        "only a coordinator",
    );

    // Disclose now: what has a released fix publishes; the rest is flagged.
    w.as_("bob")
        .args([
            "fix-ready",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.1",
        ])
        .assert()
        .success();
    w.as_("alice")
        .args(["disclose-now", &case, "--reason", "exploit published"])
        .assert()
        .success()
        .stdout(predicate::str::contains("embargo ended"))
        .stdout(predicate::str::contains("the vulnerability is public"));
    w.run_once();
    let show = w.show(&case);
    assert_eq!(repo_state(&show, "org/core")["advisory_state"], "published");
    assert_eq!(
        repo_state(&show, "org/plugin")["advisory_state"],
        "draft",
        "no fix: stays private"
    );
    assert!(
        show["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alert"] == "public_without_fix")
    );
    one_line_error(
        w.as_("alice")
            .args(["embargo", &case, "--until", &within, "--reason", "x"]),
        1,
        "the embargo has ended",
    );
    w.as_("alice")
        .args(["disclose-now", &case, "--reason", "again"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the embargo had already ended; nothing changed",
        ));
    // Closing withdraws what is left: the drafts without a fix close on GitHub, unpublished.
    w.as_("alice")
        .args(["case", "close", &case, "--reason", "abandoned upstream"])
        .assert()
        .success()
        .stdout(predicate::str::contains("closed; 2 unpublished draft(s)"));
    w.run_once();
    let show = w.show(&case);
    for repo in ["org/plugin", "org/extra"] {
        assert_eq!(
            repo_state(&show, repo)["advisory_state"],
            "closed",
            "{repo}"
        );
        assert_eq!(
            w.sim.advisories(repo).unwrap()[0]["state"],
            "closed",
            "{repo}"
        );
    }
    assert_eq!(
        w.sim.advisories("org/core").unwrap()[0]["state"],
        "published"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_under_each_policy() {
    for policy in ["hold-all", "publish-ready"] {
        let w = World::new().await;
        std::fs::write(w.path("w.toml"), WORKFLOW.replace("hold-all", policy)).unwrap();
        let until = seconds_from_now(6);
        let deadline = until.parse::<lockstep_core::Timestamp>().unwrap().millis();
        let case = w.open(&["--embargo-until", &until]);
        w.run_once();
        w.as_("bob")
            .args([
                "fix-ready",
                &case,
                "--repo",
                "org/core",
                "--patched-versions",
                "2.0.1",
            ])
            .assert()
            .success();
        w.run_once();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        tokio::time::sleep(std::time::Duration::from_millis(
            (deadline - now).max(0) as u64 + 500,
        ))
        .await;
        w.run_once();
        // Whatever the machine's speed: no publication before the deadline.
        assert!(
            w.sim
                .ledger()
                .iter()
                .filter(|e| e.is_publish() && e.applied)
                .all(|e| e.at.timestamp_millis() >= deadline),
            "{policy}: published before the deadline"
        );
        let show = w.show(&case);
        let core = repo_state(&show, "org/core")["advisory_state"].clone();
        let plugin = repo_state(&show, "org/plugin")["advisory_state"].clone();
        if policy == "hold-all" {
            // The deadline does not end the embargo: it stays in force, overdue.
            assert_eq!(show["embargo"]["state"], "active", "{show}");
            assert!(show["embargo"]["overdue"].is_string(), "{show}");
            assert_eq!(core, "draft", "hold-all keeps holding");
            assert!(
                show["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["alert"] == "embargo_overdue")
            );
            w.as_("alice")
                .args(["case", "show", &case])
                .assert()
                .success()
                .stdout(predicate::str::contains(
                    "passed; hold-all keeps it in force",
                ));
            // The coordinator can still revise the end, which clears the alert.
            w.as_("alice")
                .args([
                    "embargo",
                    &case,
                    "--until",
                    &seconds_from_now(3600),
                    "--reason",
                    "plugin needs another hour",
                ])
                .assert()
                .success();
            let show = w.show(&case);
            assert_eq!(show["embargo"]["state"], "active");
            assert!(show["embargo"]["overdue"].is_null(), "{show}");
            assert!(show["alerts"].as_array().unwrap().is_empty(), "{show}");
        } else {
            assert_eq!(show["embargo"]["exit"]["cause"], "deadline", "{policy}");
            assert_eq!(
                core, "published",
                "publish-ready publishes what has its fix"
            );
            assert_eq!(plugin, "draft", "and reports the rest");
            assert!(
                show["blockers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["repo"] == "org/plugin")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leak_mid_embargo_releases_every_fixed_advisory() {
    let w = World::new().await;
    let case = w.open(&[]);
    w.run_once();
    // A package the workflow does not list for the repository is refused.
    one_line_error(
        w.as_("bob").args([
            "fix-ready",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.1",
            "--package",
            "core-typo",
        ]),
        1,
        "has no package \"core-typo\"",
    );
    // Only one of org/core's two packages is affected.
    w.as_("bob")
        .args([
            "fix-ready",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.1",
            "--package",
            "core",
        ])
        .assert()
        .success();
    w.run_once();
    // Someone presses "publish" on the plugin's draft in GitHub's UI.
    let show = w.show(&case);
    let ghsa = repo_state(&show, "org/plugin")["ghsa_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.sim.publish_as("alice", "org/plugin", &ghsa).unwrap();
    w.run_once();
    let show = w.show(&case);
    assert_eq!(show["embargo"]["exit"]["cause"], "leak");
    assert_eq!(
        repo_state(&show, "org/core")["advisory_state"],
        "published",
        "the fixed SDK publishes at once"
    );
    let core = &w.sim.advisories("org/core").unwrap()[0];
    let packages: Vec<&str> = core["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["package"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(packages, ["core"]);
    assert_eq!(
        repo_state(&show, "org/extra")["advisory_state"],
        "draft",
        "no fix: stays private"
    );
    assert!(
        show["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alert"] == "published_elsewhere")
    );
    w.as_("alice")
        .args(["case", "show", &case])
        .assert()
        .success()
        .stdout(predicate::str::contains("leaked"));
}

fn serve(w: &World, secret: &str) -> Service {
    serve_logging(w, secret, "info")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journeys_over_http_with_webhooks() {
    let w = World::new().await;
    let service = serve(&w, "whsec");
    w.sim
        .set_webhook(&format!("{}/webhooks/github", service.url), Some("whsec"));
    let http = reqwest::Client::new();
    let post = |who: &str, path: &str, body: Value| {
        http.post(format!("{}{path}", service.url))
            .bearer_auth(format!("tok-{who}"))
            .json(&body)
            .send()
    };
    let opened = post("alice", "/api/cases", serde_json::json!({
        "workflow_name": "w", "summary": "DNS rebinding", "description": "Host headers are not validated.",
        "severity": "high", "cwe": ["CWE-350"]
    }))
    .await
    .unwrap();
    assert_eq!(opened.status(), 201);
    let case = opened.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |path: String| {
        http.get(format!("{}{path}", service.url))
            .bearer_auth("tok-alice")
            .send()
    };
    // The service's runtime opens the drafts without being asked.
    let mut drafts = 0;
    for _ in 0..100 {
        let show: Value = get(format!("/api/cases/{case}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        drafts = show["repos"].as_array().map_or(0, |r| {
            r.iter().filter(|x| x["advisory_state"] == "draft").count()
        });
        if drafts == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(drafts, 3);
    // A maintainer on someone else's repository is refused; maintainers on their own are not.
    let r = post(
        "bob",
        &format!("/api/cases/{case}/assess"),
        serde_json::json!({"repo": "org/plugin", "verdict": "affected", "reason": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    for (who, repo, verdict) in [
        ("bob", "org/core", "affected"),
        ("alice", "org/extra", "not_affected"),
        ("dave", "org/plugin", "affected"),
    ] {
        let r = post(
            who,
            &format!("/api/cases/{case}/assess"),
            serde_json::json!({"repo": repo, "verdict": verdict, "reason": "checked"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{who} {repo}");
    }
    let r = post(
        "bob",
        &format!("/api/cases/{case}/fix-ready"),
        serde_json::json!({"repo": "org/core", "patched_versions": "2.0.1"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // The plugin's fix is prepared; its release on GitHub (a signed webhook) marks it released.
    let r = post(
        "dave",
        &format!("/api/cases/{case}/fix-ready"),
        serde_json::json!({"repo": "org/plugin", "patched_versions": "0.9.1", "stage": "prepared"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let plan: Value = get(format!("/api/cases/{case}/plan"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["gate_open"], false);
    w.sim.emit_release("org/plugin", "v0.9.1").unwrap();
    w.sim.flush_webhooks().await;
    // The last fix releases the embargo: the service publishes both, core's wave first.
    let mut published = Vec::new();
    for _ in 0..100 {
        published = w
            .sim
            .ledger()
            .iter()
            .filter(|e| e.is_publish() && e.applied)
            .filter_map(|e| e.repo.clone())
            .collect();
        if published.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        published,
        vec!["org/core".to_owned(), "org/plugin".to_owned()]
    );
    // Lockstep's own publications came back as webhooks too: not leaks.
    let show: Value = get(format!("/api/cases/{case}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["embargo"]["exit"]["cause"], "all_fixes_ready");
    assert!(
        show["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["alert"] != "published_elsewhere")
    );
    // A forged webhook is refused.
    let forged = http
        .post(format!("{}/webhooks/github", service.url))
        .header("x-github-event", "ping")
        .header("x-github-delivery", "forged-1")
        .header("x-hub-signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    drop(service);
    w.as_("alice").args(["audit", "verify"]).assert().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_that_needs_a_person_is_loud_until_a_person_retries_it() {
    let w = World::new().await;
    // The service's identity (alice) cannot write advisories in org/extra: GitHub refuses
    // the draft for good.
    w.sim.revoke("org/extra", "alice").unwrap();
    let case = w.open(&[]);
    let failed = |w: &World| {
        let out = w
            .as_("alice")
            .args(["run", "--once"])
            .assert()
            .code(1)
            .get_output()
            .clone();
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = failed(&w);
    // (The runtime's ERROR log lines go to stderr too; the error itself is one line.)
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        stderr.contains("1 effect(s) failed and need a person"),
        "{stderr}"
    );
    assert!(stderr.contains("org/extra"), "{stderr}");
    // A later pass with nothing new to do is just as loud.
    assert!(failed(&w).contains("need a person"));
    let show = w.show(&case);
    let extra = repo_state(&show, "org/extra");
    assert_eq!(extra["failures"].as_object().unwrap().len(), 1);
    assert!(
        show["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alert"] == "failure_needs_person" && a["repo"] == "org/extra"),
        "{show}"
    );
    w.as_("alice")
        .args(["case", "show", &case])
        .assert()
        .success()
        .stdout(predicate::str::contains("needs a person"));

    // bob maintains org/core only: he may not retry org/extra's writes.
    one_line_error(
        w.as_("bob")
            .args(["retry", &case, "--repo", "org/extra", "--reason", "fixed"]),
        3,
        "does not maintain org/extra",
    );
    // Nothing failed in org/core: nothing to retry.
    one_line_error(
        w.as_("bob")
            .args(["retry", &case, "--repo", "org/core", "--reason", "fixed"]),
        1,
        "no failed effect to retry",
    );
    // The coordinator restores the permission and retries; the draft opens, once.
    w.sim
        .grant("org/extra", "alice", Permission::Admin)
        .unwrap();
    w.as_("alice")
        .args([
            "retry",
            &case,
            "--repo",
            "org/extra",
            "--reason",
            "granted the service advisory write",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "1 failed effect(s) of org/extra due again",
        ));
    w.run_once();
    let show = w.show(&case);
    let extra = repo_state(&show, "org/extra");
    assert_eq!(extra["advisory_state"], "draft");
    assert!(extra["failures"].as_object().unwrap().is_empty());
    assert_eq!(w.sim.advisories("org/extra").unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leak_reported_by_webhook_releases_the_fixed_advisories() {
    let w = World::new().await;
    let service = serve(&w, "whsec");
    w.sim
        .set_webhook(&format!("{}/webhooks/github", service.url), Some("whsec"));
    let http = reqwest::Client::new();
    let opened: Value = http
        .post(format!("{}/api/cases", service.url))
        .bearer_auth("tok-alice")
        .json(&serde_json::json!({
            "workflow_name": "w", "summary": "DNS rebinding",
            "description": "Host headers are not validated.", "severity": "high"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let case = opened["case_id"].as_str().unwrap().to_owned();
    let show = || async {
        http.get(format!("{}/api/cases/{case}", service.url))
            .bearer_auth("tok-alice")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let mut plugin_ghsa = None;
    for _ in 0..100 {
        let v = show().await;
        let drafts = v["repos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["advisory_state"] == "draft")
            .count();
        if drafts == 3 {
            plugin_ghsa = repo_state(&v, "org/plugin")["ghsa_id"]
                .as_str()
                .map(str::to_owned);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let plugin_ghsa = plugin_ghsa.expect("the drafts opened");
    let r = http
        .post(format!("{}/api/cases/{case}/fix-ready", service.url))
        .bearer_auth("tok-bob")
        .json(&serde_json::json!({"repo": "org/core", "patched_versions": "2.0.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "the embargo holds"
    );
    // Someone presses "publish" on the plugin's draft in GitHub's UI; GitHub's signed webhook
    // tells the service, which treats it as a leak and publishes the fixed core at once.
    w.sim
        .publish_as("alice", "org/plugin", &plugin_ghsa)
        .unwrap();
    w.sim.flush_webhooks().await;
    let mut v = Value::Null;
    for _ in 0..100 {
        v = show().await;
        if repo_state(&v, "org/core")["advisory_state"] == "published" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(v["embargo"]["exit"]["cause"], "leak", "{v}");
    assert_eq!(repo_state(&v, "org/core")["advisory_state"], "published");
    assert_eq!(
        repo_state(&v, "org/extra")["advisory_state"],
        "draft",
        "no fix: stays private"
    );
    let core_publishes = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.is_publish() && e.applied && e.repo.as_deref() == Some("org/core"))
        .count();
    assert_eq!(core_publishes, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_log_and_no_embargoed_text_above_debug() {
    let w = World::new().await;
    let service = serve_logging(&w, "whsec-very-secret-value", "trace");
    w.sim.set_webhook(
        &format!("{}/webhooks/github", service.url),
        Some("whsec-very-secret-value"),
    );
    let http = reqwest::Client::new();
    let summary = "Embargoed summary: rebinding via Host";
    let description = "Embargoed detail: the Host header is never compared.";
    let opened = http
        .post(format!("{}/api/cases", service.url))
        .bearer_auth("tok-alice")
        .json(&serde_json::json!({
            "workflow_name": "w", "summary": summary, "description": description,
            "severity": "high"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 201);
    let case = opened.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, repo, verdict) in [
        ("bob", "org/core", "affected"),
        ("alice", "org/extra", "not_affected"),
        ("dave", "org/plugin", "affected"),
    ] {
        let r = http
            .post(format!("{}/api/cases/{case}/assess", service.url))
            .bearer_auth(format!("tok-{who}"))
            .json(&serde_json::json!({"repo": repo, "verdict": verdict, "reason": "checked"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for (who, repo) in [("bob", "org/core"), ("dave", "org/plugin")] {
        let r = http
            .post(format!("{}/api/cases/{case}/fix-ready", service.url))
            .bearer_auth(format!("tok-{who}"))
            .json(&serde_json::json!({"repo": repo, "patched_versions": "2.0.1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..100 {
        if w.sim
            .ledger()
            .iter()
            .filter(|e| e.is_publish() && e.applied)
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        w.sim
            .ledger()
            .iter()
            .filter(|e| e.is_publish() && e.applied)
            .count(),
        2,
        "the release ran"
    );
    w.sim.flush_webhooks().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = service.logs.lock().unwrap().clone();
    assert!(
        logs.len() > 50,
        "TRACE logging produced {} lines",
        logs.len()
    );
    for line in &logs {
        for secret in [
            "tok-alice",
            "tok-bob",
            "tok-dave",
            "whsec-very-secret-value",
        ] {
            assert!(!line.contains(secret), "a secret in the logs: {line}");
        }
        let level = serde_json::from_str::<Value>(line).unwrap_or(Value::Null)["level"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if matches!(level.as_str(), "INFO" | "WARN" | "ERROR") {
            for text in [summary, description, "rebinding via Host", "never compared"] {
                assert!(!line.contains(text), "embargoed text at {level}: {line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_github_app_the_service_acts_as_the_app_and_people_as_themselves() {
    let w = World::new().await;
    w.sim
        .add_app(
            lockstep_sim::seed::DEMO_APP_ID,
            lockstep_sim::seed::DEMO_APP_SLUG,
            lockstep_sim::seed::DEMO_APP_PUBLIC_KEY_PEM,
        )
        .unwrap();
    w.sim
        .add_installation(
            lockstep_sim::seed::DEMO_INSTALLATION_ID,
            lockstep_sim::seed::DEMO_APP_ID,
            "org",
            &[],
            Permission::Admin,
        )
        .unwrap();
    let key =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/lockstep-sim/demo/demo-app-key.pem");
    let with_app = |who: Option<&str>| {
        let mut c = w.as_(who.unwrap_or("nobody"));
        c.env(
            "LOCKSTEP_GITHUB_APP_ID",
            lockstep_sim::seed::DEMO_APP_ID.to_string(),
        )
        .env(
            "LOCKSTEP_GITHUB_APP_INSTALLATION_ID",
            lockstep_sim::seed::DEMO_INSTALLATION_ID.to_string(),
        )
        .env("LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE", &key);
        if who.is_none() {
            c.env_remove("GITHUB_TOKEN");
        }
        c
    };
    let case = w.open(&[]);
    // The runtime writes as the App's bot.
    with_app(None).args(["run", "--once"]).assert().success();
    let creators: std::collections::BTreeSet<String> = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.is_creation() && e.applied)
        .filter_map(|e| e.actor.clone())
        .collect();
    assert_eq!(
        creators.into_iter().collect::<Vec<_>>(),
        [format!("{}[bot]", lockstep_sim::seed::DEMO_APP_SLUG)]
    );
    // A person still acts as themselves, by their own token: bob by the workflow, dave by
    // the GitHub permission the App looks up.
    with_app(Some("bob"))
        .args([
            "assess",
            &case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "yes",
        ])
        .assert()
        .success();
    with_app(Some("dave"))
        .args([
            "assess",
            &case,
            "--repo",
            "org/plugin",
            "--affected",
            "--reason",
            "yes",
        ])
        .assert()
        .success();
    one_line_error(
        with_app(Some("eve")).args([
            "assess",
            &case,
            "--repo",
            "org/plugin",
            "--affected",
            "--reason",
            "yes",
        ]),
        3,
        "does not maintain org/plugin",
    );
    // Without the caller's own token, a command cannot say who is acting.
    one_line_error(
        with_app(None).args([
            "assess",
            &case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "yes",
        ]),
        1,
        "GITHUB_TOKEN is unset",
    );
    let show = w.show(&case);
    assert_eq!(
        repo_state(&show, "org/core")["assessment"]["status"],
        "affected"
    );
    assert_eq!(
        repo_state(&show, "org/plugin")["assessment"]["status"],
        "affected"
    );
}
