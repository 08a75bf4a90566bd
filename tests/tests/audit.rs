//! `lockstep audit` on a real database written by the binary: a tampered row is named, a
//! truncation is caught by a checkpoint, a checkpoint's key can be pinned, and a mistyped
//! database path is an error, not an empty trail that "verifies".
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use lockstep_e2e::cli::{World, one_line_error};
use predicates::prelude::*;

/// Runs `cmd`, expecting exit code 1 and one line on stderr containing `needle`.
fn fails_with(cmd: &mut Command, needle: &str) {
    one_line_error(cmd, 1, needle);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_names_tampering_and_checkpoints_catch_truncation() {
    let w = World::new().await;
    let case = w.open(&[]);
    w.as_("bob")
        .args([
            "assess",
            &case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "checked",
        ])
        .assert()
        .success();
    let entries = w.scalar("SELECT COUNT(*) FROM audit").await;
    assert!(entries >= 2, "{entries}");
    w.audit(&["verify"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "audit ok: {entries} entries"
        )));

    // A checkpoint, and its key as the checkpoint writes it.
    let cp = w
        .audit(&["checkpoint", "--key", "audit.key"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let cp = String::from_utf8(cp).unwrap();
    std::fs::write(w.path("cp.txt"), &cp).unwrap();
    let key_line = cp
        .lines()
        .find(|l| l.starts_with("key "))
        .unwrap()
        .to_owned();

    // Unpinned: it verifies, and says which key it took on the checkpoint's word.
    let out = w
        .audit(&["verify", "--checkpoint", "cp.txt"])
        .assert()
        .success()
        .stdout(predicate::str::contains("consistent with the checkpoint"))
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning:") && stderr.contains("--trusted-key"),
        "{stderr}"
    );
    // Pinned, in the form the checkpoint writes it: no warning.
    w.audit(&[
        "verify",
        "--checkpoint",
        "cp.txt",
        "--trusted-key",
        &key_line,
    ])
    .assert()
    .success()
    .stderr(predicate::str::is_empty());
    // A checkpoint re-signed with another key is refused when the key is pinned.
    let forged = w
        .audit(&["checkpoint", "--key", "other.key"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(w.path("forged.txt"), forged).unwrap();
    fails_with(
        &mut w.audit(&[
            "verify",
            "--checkpoint",
            "forged.txt",
            "--trusted-key",
            &key_line,
        ]),
        "not by the trusted key",
    );

    // One edited row: verify exits 1 and names the entry.
    let triggers = "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;";
    w.sql(triggers).await;
    w.sql("UPDATE audit SET actor = actor || 'x' WHERE id = 2")
        .await;
    fails_with(&mut w.audit(&["verify"]), "audit entry 2:");
    w.sql("UPDATE audit SET actor = substr(actor, 1, length(actor) - 1) WHERE id = 2")
        .await;
    w.audit(&["verify"]).assert().success();

    // A truncation that leaves a consistent chain: only the checkpoint notices.
    w.sql(&format!(
        "UPDATE cases SET version = (SELECT seq_from - 1 FROM audit WHERE id = {entries}) WHERE case_id = (SELECT case_id FROM audit WHERE id = {entries}); \
         DELETE FROM events WHERE audit_id = {entries}; DELETE FROM audit WHERE id = {entries};"
    ))
    .await;
    w.audit(&["verify"]).assert().success();
    fails_with(
        &mut w.audit(&[
            "verify",
            "--checkpoint",
            "cp.txt",
            "--trusted-key",
            &key_line,
        ]),
        "truncated",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_on_a_missing_database_is_an_error_and_creates_nothing() {
    let w = World::new().await;
    let typo = w.path("lockstep-typo.db");
    for args in [&["verify"][..], &["checkpoint", "--key", "audit.key"][..]] {
        fails_with(
            w.audit(args).env(
                "LOCKSTEP_DATABASE_URL",
                format!("sqlite://{}", typo.display()),
            ),
            "no Lockstep database at",
        );
        assert!(!typo.exists(), "the database was created");
    }
    // --trusted-key without a checkpoint is a usage error, not silently ignored.
    w.audit(&["verify", "--trusted-key", "lockstep+00000000+AAAA"])
        .assert()
        .code(2);
}
