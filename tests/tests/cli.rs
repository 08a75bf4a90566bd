//! The `lockstep` binary's contract: exit codes, one-line errors, and output.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
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
        .stdout(predicate::str::contains(
            "marks the last fix released: the embargo ends",
        ))
        .stdout(predicate::str::contains("audit trail verifies"))
        .stdout(predicate::str::contains(
            "9 advisories published together in",
        ))
        .stdout(
            predicate::str::is_match(r"swift-sdk +not affected +- +GHSA-\S+ +CVE-\S+ +closed")
                .unwrap(),
        );
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
    let out = lockstep()
        .args(["workflow", "check"])
        .arg(&file)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.toml:27:13: invalid ecosystem \"pypi\""),
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
    ] {
        let out = lockstep().args(args).assert().code(2).get_output().clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
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
