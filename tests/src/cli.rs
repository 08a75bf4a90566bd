//! The `lockstep` binary against an in-process simulator, for the journey, CLI and audit
//! tests: a three-repository workflow (`org/core` maintained by bob by name, `org/plugin` by
//! dave through GitHub's maintain permission, `org/extra` by nobody; alice coordinates and is
//! the service's identity), users with tokens `tok-LOGIN`, and a working directory.
//!
//! A world runs in one of two [`Mode`]s: `Local`, where every command opens the SQLite file
//! itself, or `Remote`, where a real `lockstep serve` owns the file and case commands reach it
//! through `LOCKSTEP_SERVER_URL`, with no database of their own.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::time::Duration;

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

/// Where the case commands go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each command opens the database.
    Local,
    /// Each case command goes to a shared `lockstep serve` over HTTP.
    Remote,
}

pub struct World {
    /// The mode.
    pub mode: Mode,
    /// The shared server, in remote mode.
    pub service: Option<Service>,
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
            mode: Mode::Local,
            service: None,
            base: running.base_url.clone(),
            _running: running,
            sim,
            dir,
        }
    }

    /// A world in `mode`: in remote mode, with a `lockstep serve` (accepting inline
    /// workflows, its workflows directory the working directory) that owns the database.
    pub async fn in_mode(mode: Mode) -> World {
        let mut w = World::new().await;
        if mode == Mode::Remote {
            w.service = Some(serve_with(&w, "whsec", "info", true));
            w.mode = Mode::Remote;
        }
        w
    }

    /// The server's URL, in remote mode.
    pub fn server_url(&self) -> Option<&str> {
        self.service.as_ref().map(|s| s.url.as_str())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SQLite database the commands use.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("l.db").display())
    }

    /// The binary, acting with `who`'s token: in remote mode through the server, with no
    /// database named.
    pub fn as_(&self, who: &str) -> Command {
        let mut c = self.operator_as(who);
        if let Some(url) = self.server_url() {
            c.env_remove("LOCKSTEP_DATABASE_URL")
                .env("LOCKSTEP_SERVER_URL", url);
        }
        c
    }

    /// The binary over the database, as an operator on the server's side (`run`, `audit`),
    /// acting with `who`'s token, in either mode.
    pub fn operator_as(&self, who: &str) -> Command {
        let mut c = Command::new(crate::serve::lockstep_bin());
        c.current_dir(self.dir.path())
            .env("LOCKSTEP_DATABASE_URL", self.db_url())
            .env("GITHUB_TOKEN", format!("tok-{who}"))
            .env("LOCKSTEP_GITHUB_API_URL", &self.base)
            .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "error")
            .env_remove("LOCKSTEP_SERVER_URL")
            .env_remove("GH_TOKEN");
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

    /// Opens a case, marks every repository's fix released in 2.0.1 (vulnerable `range`, if
    /// given) and does the due work until the advisories are published; returns the case id.
    pub fn publish_all(&self, range: Option<&str>) -> String {
        let case = self.open(&[]);
        self.run_once();
        for repo in ["org/core", "org/plugin", "org/extra"] {
            let mut c = self.as_("alice");
            c.args([
                "fix-ready",
                &case,
                "--repo",
                repo,
                "--patched-versions",
                "2.0.1",
            ]);
            if let Some(range) = range {
                c.args(["--vulnerable-range", range]);
            }
            c.assert().success();
        }
        self.run_once();
        self.run_once();
        case
    }

    /// Does the due work: `lockstep run --once` in local mode; in remote mode, waits until
    /// the server's runtime has nothing due (no pending or claimed effect).
    pub fn run_once(&self) {
        match self.mode {
            Mode::Local => {
                self.operator_as("alice")
                    .args(["run", "--once"])
                    .assert()
                    .success();
            }
            Mode::Remote => self.wait_idle(),
        }
    }

    /// Waits (bounded) until no effect is pending and due, or claimed.
    pub fn wait_idle(&self) {
        let url = self.db_url();
        let busy = move || {
            let url = url.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                        let n: i64 = sqlx::query_scalar(
                            "SELECT count(*) FROM outbox WHERE state = 'claimed' OR (state = 'pending' AND next_attempt_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                        )
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                        conn.close().await.unwrap();
                        n
                    })
            })
            .join()
            .unwrap()
        };
        for _ in 0..600 {
            if busy() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server's runtime did not settle");
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

    /// `lockstep audit ARGS` as the coordinator (an operator command: over the database).
    pub fn audit(&self, args: &[&str]) -> Command {
        let mut c = self.operator_as("alice");
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

/// A running `lockstep serve`, killed when dropped, with every log line it wrote.
pub struct Service {
    child: std::process::Child,
    /// `http://ADDR`.
    pub url: String,
    /// Its log lines so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lockstep serve` over the world's database, with this webhook secret and `RUST_LOG`.
pub fn serve_logging(w: &World, secret: &str, rust_log: &str) -> Service {
    serve_with(w, secret, rust_log, false)
}

/// `lockstep serve` over the world's database; `inline` lets `POST /api/cases` take a
/// workflow's text.
pub fn serve_with(w: &World, secret: &str, rust_log: &str, inline: bool) -> Service {
    use std::io::BufRead;
    let bin = crate::serve::lockstep_bin().to_path_buf();
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(w.dir.path())
        .env("LOCKSTEP_DATABASE_URL", w.db_url())
        .env("GITHUB_TOKEN", "tok-alice")
        .env("LOCKSTEP_GITHUB_API_URL", &w.base)
        .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
        .env("LOCKSTEP_WEBHOOK_SECRET", secret)
        .env("LOCKSTEP_WORKFLOWS_DIR", w.dir.path())
        .env("LOCKSTEP_INLINE_WORKFLOWS", inline.to_string())
        .env("RUST_LOG", rust_log)
        .env_remove("LOCKSTEP_SERVER_URL")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        logs.lock().unwrap().push(line);
        if v["message"] == "listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the logs so the pipe never fills.
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Service {
        child,
        url: format!("http://{addr}"),
        logs,
    }
}

/// Replaces what differs between two runs of the same script (case and advisory ids, times,
/// case versions) with placeholders, so that outputs of the two modes compare equal.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let starts = |i: usize, p: &str| chars[i..].iter().take(p.len()).copied().eq(p.chars());
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    while i < chars.len() {
        let boundary = i == 0 || !word(chars[i - 1]);
        if boundary && (starts(i, "LS-") || starts(i, "GHSA-") || starts(i, "CVE-")) {
            let prefix: String = chars[i..].iter().take_while(|c| **c != '-').collect();
            let mut j = i;
            while j < chars.len() && word(chars[j]) {
                j += 1;
            }
            out.push_str(&format!("{prefix}-<id>"));
            i = j;
            continue;
        }
        // An RFC 3339 time: 4 digits, '-', …, 'T', …, ending in 'Z' or an offset.
        if boundary
            && i + 20 <= chars.len()
            && chars[i..i + 4].iter().all(char::is_ascii_digit)
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T'
        {
            let mut j = i + 11;
            while j < chars.len() && (chars[j].is_ascii_digit() || ":.+-Z".contains(chars[j])) {
                j += 1;
            }
            out.push_str("<time>");
            i = j;
            continue;
        }
        if starts(i, "\"version\":") {
            let mut j = i + 10;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            out.push_str("\"version\":<n>");
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `now` plus `secs` seconds (negative: before), as RFC 3339: an embargo end or deadline.
pub fn seconds_from_now(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    lockstep_core::Timestamp::from_millis(now + secs * 1000)
        .unwrap()
        .to_string()
}

/// `now` plus whole days, as RFC 3339.
pub fn days_from_now(days: i64) -> String {
    seconds_from_now(days * 86_400)
}
