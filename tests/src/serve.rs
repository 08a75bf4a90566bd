//! A real `lockstep serve` process: building the binary (with the `failpoints` feature) once
//! per test run, starting it against the simulator and an SQLite file, killing it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;

/// Environment variable naming a prebuilt `lockstep` binary (built with
/// `--features failpoints`) to use instead of building one.
pub const ENV_BIN: &str = "LOCKSTEP_E2E_BIN";

static BIN: OnceLock<PathBuf> = OnceLock::new();

/// The `lockstep` binary with fail points compiled in. Built once per test process with the
/// same cargo, target directory and profile as the tests (`cargo build -p lockstep-cli
/// --features failpoints`; a no-op when up to date), then copied aside so that a concurrent
/// ordinary build cannot swap it for one without fail points.
pub fn lockstep_bin() -> &'static Path {
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os(ENV_BIN) {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--manifest-path",
            manifest,
            "-p",
            "lockstep-cli",
            "--bin",
            "lockstep",
            "--features",
            "lockstep-cli/failpoints",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        // Variables cargo sets for this test process, not for a build: left in, they change
        // the fingerprints of build scripts that read them (ring's reads CARGO_MANIFEST_DIR),
        // and this build and the test build would rebuild each other's dependencies.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CARGO_PKG_")
                || matches!(
                    k.as_str(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_BIN_NAME"
                        | "OUT_DIR"
                )
            {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build lockstep: {e}"));
        assert!(
            out.status.success(),
            "building lockstep with fail points failed"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let built = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "lockstep")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo built no lockstep executable"));
        let aside = built.with_file_name("lockstep-e2e-failpoints");
        let tmp = built.with_file_name(format!("lockstep-e2e-failpoints.{}", std::process::id()));
        std::fs::copy(&built, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &aside))
            .unwrap_or_else(|e| panic!("copy {} aside: {e}", built.display()));
        aside
    })
}

/// Settings of one `lockstep serve` run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The SQLite file.
    pub db: PathBuf,
    /// The database URL instead of `db` (a PostgreSQL database several instances share).
    pub database_url: Option<String>,
    /// The simulator's base URL.
    pub api_url: String,
    /// The bot's token.
    pub token: String,
    /// `FAILPOINTS` (the fail crate's scenario syntax), if any.
    pub failpoints: Option<String>,
    /// Where its stderr (JSON logs) is appended.
    pub log: PathBuf,
    /// Working directory (no `lockstep.toml` there).
    pub dir: PathBuf,
    /// The loopback port it listens on (`None`: any free one).
    pub port: Option<u16>,
    /// `LOCKSTEP_WEBHOOK_SECRET`, if it takes webhook deliveries.
    pub webhook_secret: Option<String>,
}

impl ServeConfig {
    /// `serve` as the bot ([`crate::BOT_TOKEN`]) over the SQLite file `db`, against the
    /// simulator at `api_url`, in `dir` (its log `dir/serve.log`): no fail points, any port,
    /// no webhooks. Change the fields for the rest.
    pub fn new(db: &Path, api_url: &str, dir: &Path) -> ServeConfig {
        ServeConfig {
            db: db.to_owned(),
            database_url: None,
            api_url: api_url.to_owned(),
            token: crate::BOT_TOKEN.to_owned(),
            failpoints: None,
            log: dir.join("serve.log"),
            dir: dir.to_owned(),
            port: None,
            webhook_secret: None,
        }
    }
}

/// A running `lockstep serve`; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Child,
}

impl Serve {
    /// Starts `lockstep serve --listen 127.0.0.1:PORT` (port 0 unless `cfg.port`).
    pub fn spawn(cfg: &ServeConfig) -> Serve {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", cfg.log.display()));
        let mut cmd = Command::new(lockstep_bin());
        // The working directory holds no lockstep.toml: settings come from the environment.
        let listen = format!("127.0.0.1:{}", cfg.port.unwrap_or(0));
        cmd.args(["serve", "--listen", &listen])
            .current_dir(&cfg.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for k in [
            "LOCKSTEP_GITHUB_APP_ID",
            "LOCKSTEP_GITHUB_APP_INSTALLATION_ID",
            "LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE",
            "LOCKSTEP_WEBHOOK_SECRET",
            "LOCKSTEP_LISTEN",
            "FAILPOINTS",
            "RUST_LOG",
        ] {
            cmd.env_remove(k);
        }
        let url = cfg
            .database_url
            .clone()
            .unwrap_or_else(|| crate::sqlite_url(&cfg.db));
        cmd.env("LOCKSTEP_DATABASE_URL", url)
            .env("GITHUB_TOKEN", &cfg.token)
            .env("LOCKSTEP_GITHUB_API_URL", &cfg.api_url)
            .env("LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
            .env("RUST_BACKTRACE", "0");
        if let Some(secret) = &cfg.webhook_secret {
            cmd.env("LOCKSTEP_WEBHOOK_SECRET", secret);
        }
        if let Some(fp) = &cfg.failpoints {
            cmd.env("FAILPOINTS", fp);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", lockstep_bin().display()));
        Serve { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The runtime's worker name (its lease owner): `lockstep-{pid}`.
    pub fn worker(&self) -> String {
        format!("lockstep-{}", self.child.id())
    }

    /// `Some(status)` once it has exited on its own.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates a fresh PostgreSQL database `name` on the server at `admin` (dropping a leftover of
/// the same name first) and returns its URL.
pub async fn create_postgres_db(admin: &str, name: &str) -> String {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin}: {e}"));
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    }
    let _ = conn.close().await;
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("the PostgreSQL URL names no database: {admin}"),
    }
}

/// Drops the database `name` (and its sessions) from the server at `admin`.
pub async fn drop_postgres_db(admin: &str, name: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}
