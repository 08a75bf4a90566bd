//! The `lockstep` binary's contract: exit codes, one-line errors, and output.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use lockstep_e2e::cli::{World, one_line_error};
use predicates::prelude::*;

fn lockstep() -> Command {
    Command::new(lockstep_e2e::serve::lockstep_bin())
}

fn workflows() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")
}

#[test]
fn demo_prints_the_timeline_and_exits_zero() {
    lockstep()
        .arg("demo")
        .assert()
        .success()
        // It begins with a researcher's private report to one SDK, which the case adopts.
        .stdout(predicate::str::contains(
            "security-researcher reports privately to python-sdk",
        ))
        .stdout(predicate::str::contains(
            "opens case LS-DEMO-1 from the report",
        ))
        .stdout(predicate::str::contains(
            "python-sdk's draft is the report itself",
        ))
        .stdout(predicate::str::contains(
            "credited on 10 advisories and follows the other 9",
        ))
        .stdout(predicate::str::contains(
            "marks the last fix released: the embargo ends",
        ))
        .stdout(predicate::str::contains("audit trail verifies"))
        .stdout(predicate::str::contains(
            "9 advisories published together in",
        ))
        .stdout(
            predicate::str::is_match(r"swift-sdk +not affected +- +GHSA-\S+ +- +closed").unwrap(),
        )
        .stdout(predicate::str::contains(
            "9 CVE requests, one per affected SDK; none for swift-sdk",
        ));
}

#[test]
fn every_shipped_workflow_checks() {
    for entry in std::fs::read_dir(workflows()).unwrap() {
        let path = entry.unwrap().path();
        lockstep()
            .args(["workflow", "check"])
            .arg(&path)
            .assert()
            .success()
            .stdout(predicate::str::contains(": ok: workflow"));
    }
}

#[test]
fn a_malformed_workflow_is_one_line_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(workflows().join("mcp-sdks.toml"))
        .unwrap()
        .replace("ecosystem = \"pip\"", "ecosystem = \"pypi\"");
    std::fs::write(&file, text).unwrap();
    let stderr = one_line_error(lockstep().args(["workflow", "check"]).arg(&file), 1, "");
    assert!(
        stderr.contains("bad.toml:30:13: invalid ecosystem \"pypi\""),
        "{stderr}"
    );
    lockstep()
        .args(["workflow", "check", "/nonexistent/w.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: /nonexistent/w.toml: cannot read",
        ));
}

#[test]
fn usage_errors_exit_two_and_completions_print() {
    // Usage errors are one line too, naming what is missing, without clap's usage block.
    for (args, needle) in [
        (
            &["no-such-command"][..],
            "unrecognized subcommand 'no-such-command'",
        ),
        (&["workflow", "check"][..], "<FILES>..."),
        (
            &["assess", "LS-1", "--repo", "o/r", "--reason", "x"][..],
            "<--affected|--not-affected|--investigating>",
        ),
        (
            &[
                "assess",
                "LS-1",
                "--repo",
                "o/r",
                "--affected",
                "--not-affected",
                "--reason",
                "x",
            ][..],
            "cannot be used with",
        ),
        (
            &["case"][..],
            "a subcommand is required: open, list, show, close (",
        ),
        (
            &["completions", "nosh"][..],
            "a similar value exists: 'zsh' (see --help)",
        ),
    ] {
        let stderr = one_line_error(lockstep().args(args), 2, "");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert!(!stderr.contains("For more information"), "{stderr}");
    }
    lockstep()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("demo"));
    lockstep()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_lockstep"));
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_lockstep_toml_and_the_environment_wins() {
    // Every case command identifies its caller (as the API does): a simulator answers.
    let w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = lockstep();
        c.current_dir(dir.path())
            .env_remove("LOCKSTEP_DATABASE_URL")
            .env_remove("LOCKSTEP_LISTEN")
            .env_remove("LOCKSTEP_SERVER_URL")
            .env("LOCKSTEP_GITHUB_API_URL", &w.base)
            .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
            .env("GITHUB_TOKEN", "tok-alice")
            .env("RUST_LOG", "off")
            .args(args);
        c
    };
    std::fs::write(
        dir.path().join("lockstep.toml"),
        "database_url = \"sqlite://from-toml.db\"\n",
    )
    .unwrap();
    run(&["case", "list", "--json"]).assert().success();
    assert!(dir.path().join("from-toml.db").exists());
    run(&["case", "list", "--json"])
        .env("LOCKSTEP_DATABASE_URL", "sqlite://from-env.db")
        .assert()
        .success();
    assert!(dir.path().join("from-env.db").exists());
    // --config names another file.
    std::fs::write(
        dir.path().join("other.toml"),
        "database_url = \"sqlite://from-other.db\"\n",
    )
    .unwrap();
    run(&["case", "list", "--config", "other.toml"])
        .assert()
        .success();
    assert!(dir.path().join("from-other.db").exists());
    // A --config file that is not there is an error, not a silent fall-back.
    let stderr = one_line_error(&mut run(&["case", "list", "--config", "gone.toml"]), 1, "");
    assert!(stderr.contains("gone.toml: cannot read"), "{stderr}");
    // An unknown key is one line, and nothing is created.
    std::fs::write(dir.path().join("bad.toml"), "databse_url = \"x\"\n").unwrap();
    let stderr = one_line_error(&mut run(&["case", "list", "--config", "bad.toml"]), 1, "");
    assert!(
        stderr.contains("unknown setting \"databse_url\""),
        "{stderr}"
    );
    // serve's address: a bad `listen` in the file is reported; the environment overrides it.
    std::fs::write(
        dir.path().join("listen.toml"),
        "database_url = \"sqlite://serve.db\"\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = run(&["serve", "--config", "listen.toml"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("LOCKSTEP_LISTEN: \"nowhere\" is not an address"),
        "{stderr}"
    );
    let mut child = std::process::Command::new(lockstep_e2e::serve::lockstep_bin())
        .current_dir(dir.path())
        .args(["serve", "--config", "listen.toml"])
        .env("GITHUB_TOKEN", "tok-nobody")
        .env("LOCKSTEP_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead as _;
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .map_while(Result::ok)
        .find(|l| l.contains("\"listening\""));
    let _ = child.kill();
    let _ = child.wait();
    let line = listening.expect("serve listened");
    assert!(line.contains("127.0.0.1:"), "{line}");
}

/// A database that is not Lockstep's, or a server that cannot be reached, is one line that says
/// so, exit 1, and the file is left as it was.
#[test]
fn a_broken_or_unreachable_database_is_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let file = dir.path().join("junk.db");
    std::fs::write(&file, &junk).unwrap();
    let fails = |url: &str| {
        let mut list = lockstep();
        list.current_dir(dir.path())
            .env("LOCKSTEP_DATABASE_URL", url)
            .env("GITHUB_TOKEN", "tok-nobody")
            .env("RUST_LOG", "off")
            .args(["case", "list"]);
        one_line_error(&mut list, 1, "")
    };
    let stderr = fails("sqlite://junk.db");
    assert!(
        stderr.contains("junk.db is not a Lockstep database"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), junk);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Nothing listens on port 1: the refusal itself is reported, with the password hidden.
    let stderr = fails("postgres://lockstep:hunter2@127.0.0.1:1/lockstep");
    assert!(
        stderr.starts_with("error: cannot connect to the database postgres://***@127.0.0.1:1/"),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    // `script` gives the command a terminal; a simulator identifies the caller.
    let w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let bin = lockstep_e2e::serve::lockstep_bin().display().to_string();
    let on_terminal = |no_color: bool| {
        let mut c = std::process::Command::new("script");
        c.current_dir(dir.path())
            .args(["-qec", &format!("{bin} case list"), "/dev/null"])
            .env("LOCKSTEP_DATABASE_URL", "sqlite://colour.db")
            .env("LOCKSTEP_GITHUB_API_URL", &w.base)
            .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
            .env("GITHUB_TOKEN", "tok-alice")
            .env("RUST_LOG", "off")
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().expect("script(1) from util-linux runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let coloured = on_terminal(false);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    let plain = on_terminal(true);
    assert!(
        plain.contains("CASE") || plain.contains("case"),
        "{plain:?}"
    );
    assert!(!plain.contains("\x1b["), "{plain:?}");
    // Not a terminal: no colour either.
    let piped = lockstep()
        .current_dir(dir.path())
        .args(["case", "list"])
        .env("LOCKSTEP_DATABASE_URL", "sqlite://colour.db")
        .env("LOCKSTEP_GITHUB_API_URL", &w.base)
        .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
        .env("GITHUB_TOKEN", "tok-alice")
        .env_remove("NO_COLOR")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8(piped).unwrap().contains("\x1b["));
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_serve_runs_the_simulator_on_its_own() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(lockstep_e2e::serve::lockstep_bin())
        .args([
            "sim",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-token",
            "sim-admin",
        ])
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed even if an assertion fails.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Reap(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http
            .get(format!("{base}{path}"))
            .header("user-agent", "lockstep-test");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let mut user = None;
    for _ in 0..100 {
        if let Ok(r) = get("/user", Some(lockstep_sim::seed::DEMO_ADMIN_TOKEN)).await {
            user = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let user = user.expect("the simulator answered");
    assert_eq!(user["login"], lockstep_sim::seed::DEMO_ADMIN);
    // Seeded with the MCP SDKs, whose advisories the demo admin may list.
    let r = get(
        "/repos/modelcontextprotocol/python-sdk/security-advisories",
        Some(lockstep_sim::seed::DEMO_ADMIN_TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );
    // The admin routes want the admin token.
    let ledger = |token: &'static str| {
        http.get(format!("{base}/_sim/ledger"))
            .header("x-sim-admin-token", token)
            .send()
    };
    assert_eq!(ledger("wrong").await.unwrap().status(), 401);
    assert_eq!(ledger("sim-admin").await.unwrap().status(), 200);
}
