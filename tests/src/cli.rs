//! The `lockstep` binary against an in-process simulator, for the journey, CLI and audit
//! tests: a three-repository workflow (`org/core` maintained by bob by name, `org/plugin` by
//! dave through GitHub's maintain permission, `org/extra` by nobody; alice coordinates and is
//! the service's identity), users with tokens `tok-LOGIN`, and a working directory.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::PathBuf;

use assert_cmd::Command;
use lockstep_sim::{Permission, SimConfig, Simulator};
use serde_json::Value;
use sqlx::{Connection as _, Executor as _};

/// The workflow every journey world starts with, as `w.toml`.
pub const WORKFLOW: &str = r#"
name = "journeys"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core", "core-extras"]
maintainers = ["bob"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
publish_after = ["org/core"]

[[repo]]
name = "org/extra"
ecosystem = "rust"
packages = ["extra"]
"#;

pub struct World {
    _running: lockstep_sim::RunningSim,
    /// The simulator, to inspect its ledger and advisories or act on GitHub's side.
    pub sim: Simulator,
    /// Its base URL.
    pub base: String,
    /// The working directory of every command.
    pub dir: tempfile::TempDir,
}

impl World {
    /// A simulator with the workflow's users and repositories, and a working directory with
    /// the workflow (`w.toml`) and a description (`desc.md`).
    pub async fn new() -> World {
        // Built (once) before any test reads the clock: a test's deadline seconds ahead must
        // not be spent compiling.
        crate::serve::lockstep_bin();
        let sim = Simulator::new(SimConfig::default());
        for login in ["alice", "bob", "dave", "eve", "finder1"] {
            sim.add_user(login, &format!("tok-{login}"));
        }
        for repo in ["org/core", "org/plugin", "org/extra"] {
            sim.add_repo(repo).unwrap();
            sim.grant(repo, "alice", Permission::Admin).unwrap();
        }
        // dave may maintain org/plugin (the workflow names nobody there); eve only writes.
        sim.grant("org/plugin", "dave", Permission::Maintain)
            .unwrap();
        sim.grant("org/plugin", "eve", Permission::Write).unwrap();
        let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.toml"), WORKFLOW).unwrap();
        std::fs::write(
            dir.path().join("desc.md"),
            "Host headers are not validated.",
        )
        .unwrap();
        World {
            base: running.base_url.clone(),
            _running: running,
            sim,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SQLite database the commands use.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("l.db").display())
    }

    /// The binary, acting with `who`'s token.
    pub fn as_(&self, who: &str) -> Command {
        let mut c = Command::new(crate::serve::lockstep_bin());
        c.current_dir(self.dir.path())
            .env("LOCKSTEP_DATABASE_URL", self.db_url())
            .env("GITHUB_TOKEN", format!("tok-{who}"))
            .env("LOCKSTEP_GITHUB_API_URL", &self.base)
            .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "error");
        c
    }

    pub fn open(&self, extra: &[&str]) -> String {
        // The service's own identity runs the effects: alice is a repository admin here.
        let out = self
            .as_("alice")
            .args([
                "case",
                "open",
                "--workflow",
                "w.toml",
                "--summary",
                "DNS rebinding",
                "--description-file",
                "desc.md",
                "--severity",
                "high",
                "--cwe",
                "CWE-350",
                "--credit",
                "finder1:finder",
                "--json",
            ])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).unwrap();
        v["case_id"].as_str().unwrap().to_owned()
    }

    pub fn run_once(&self) {
        self.as_("alice").args(["run", "--once"]).assert().success();
    }

    pub fn show(&self, case: &str) -> Value {
        let out = self
            .as_("alice")
            .args(["case", "show", case, "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    }

    /// `lockstep audit ARGS` as the coordinator.
    pub fn audit(&self, args: &[&str]) -> Command {
        let mut c = self.as_("alice");
        c.arg("audit").args(args);
        c
    }

    /// Runs SQL on the database directly, as someone with access to the file would.
    pub async fn sql(&self, statements: &str) {
        let mut conn = sqlx::SqliteConnection::connect(&self.db_url())
            .await
            .unwrap();
        conn.execute(sqlx::AssertSqlSafe(statements.to_owned()))
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    /// One integer from the database directly.
    pub async fn scalar(&self, query: &str) -> i64 {
        let mut conn = sqlx::SqliteConnection::connect(&self.db_url())
            .await
            .unwrap();
        let v = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        v
    }
}

/// Runs `cmd`, expecting exit `code` and one line on stderr containing `needle`; returns it.
pub fn one_line_error(cmd: &mut Command, code: i32, needle: &str) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    stderr
}

/// One repository's row of `case show --json`.
pub fn repo_state<'a>(show: &'a Value, repo: &str) -> &'a Value {
    show["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == repo)
        .unwrap()
}
