//! Settings: environment variables, optionally backed by a `lockstep.toml`. The environment
//! wins. Secrets stay in `SecretString` and are never printed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use lockstep_github::{Credentials, GithubConfig, SecretString};

/// The settings a command runs with.
pub(crate) struct Settings {
    /// `LOCKSTEP_DATABASE_URL`, default `sqlite://lockstep.db`.
    pub(crate) database_url: String,
    /// `LOCKSTEP_WEBHOOK_SECRET`.
    pub(crate) webhook_secret: Option<SecretString>,
    /// `LOCKSTEP_WORKFLOWS_DIR`, default `workflows`: where `serve` finds named workflows.
    pub(crate) workflows_dir: std::path::PathBuf,
    values: BTreeMap<String, String>,
}

/// `lockstep.toml` keys and the environment variables they stand for.
const KEYS: [(&str, &str); 15] = [
    ("database_url", "LOCKSTEP_DATABASE_URL"),
    ("github_api_url", "LOCKSTEP_GITHUB_API_URL"),
    ("github_token", "GITHUB_TOKEN"),
    ("github_app_id", "LOCKSTEP_GITHUB_APP_ID"),
    (
        "github_app_installation_id",
        "LOCKSTEP_GITHUB_APP_INSTALLATION_ID",
    ),
    (
        "github_app_private_key_file",
        "LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE",
    ),
    (
        "github_allowed_private_hosts",
        "LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS",
    ),
    ("webhook_secret", "LOCKSTEP_WEBHOOK_SECRET"),
    ("listen", "LOCKSTEP_LISTEN"),
    ("workflows_dir", "LOCKSTEP_WORKFLOWS_DIR"),
    ("server_url", "LOCKSTEP_SERVER_URL"),
    ("inline_workflows", "LOCKSTEP_INLINE_WORKFLOWS"),
    ("safety_poll_secs", "LOCKSTEP_SAFETY_POLL_SECS"),
    ("webhook_window_secs", "LOCKSTEP_WEBHOOK_WINDOW_SECS"),
    ("intake_interval_secs", "LOCKSTEP_INTAKE_INTERVAL_SECS"),
];

impl Settings {
    /// Reads `lockstep.toml` from `file` (if it exists) and the environment.
    pub(crate) fn load(file: &Path) -> anyhow::Result<Settings> {
        let mut values = BTreeMap::new();
        if file.exists() {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message().trim()))?;
            for (key, value) in table {
                let env = KEYS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, e)| *e)
                    .with_context(|| format!("{}: unknown setting {key:?}", file.display()))?;
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => anyhow::bail!(
                        "{}: {key} must be a string, a number or a boolean",
                        file.display()
                    ),
                };
                values.insert(env.to_owned(), value);
            }
        }
        for (_, env) in KEYS {
            if let Ok(v) = std::env::var(env) {
                values.insert(env.to_owned(), v);
            }
        }
        let database_url = values
            .get("LOCKSTEP_DATABASE_URL")
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "sqlite://lockstep.db".to_owned());
        let webhook_secret = values
            .get("LOCKSTEP_WEBHOOK_SECRET")
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.clone()));
        let workflows_dir = values
            .get("LOCKSTEP_WORKFLOWS_DIR")
            .filter(|v| !v.trim().is_empty())
            .map_or_else(|| "workflows".into(), std::path::PathBuf::from);
        Ok(Settings {
            database_url,
            webhook_secret,
            workflows_dir,
            values,
        })
    }

    /// `serve`'s address: `LOCKSTEP_LISTEN`, default `127.0.0.1:8080`.
    pub(crate) fn listen(&self) -> anyhow::Result<std::net::SocketAddr> {
        match self
            .values
            .get("LOCKSTEP_LISTEN")
            .filter(|v| !v.trim().is_empty())
        {
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow::anyhow!("LOCKSTEP_LISTEN: {v:?} is not an address like 127.0.0.1:8080")
            }),
            None => Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 8080))),
        }
    }

    /// The GitHub client's configuration: the service's identity, a GitHub App where one is
    /// configured, else `GITHUB_TOKEN`.
    pub(crate) fn github(&self) -> anyhow::Result<GithubConfig> {
        Ok(GithubConfig::from_lookup(|k| self.values.get(k).cloned())?)
    }

    /// The configuration for identifying the person at the terminal: always `GITHUB_TOKEN`, the
    /// caller's own token, since an App's installation token belongs to no user.
    pub(crate) fn caller_github(&self) -> anyhow::Result<GithubConfig> {
        let has_token = self
            .values
            .get("GITHUB_TOKEN")
            .is_some_and(|t| !t.trim().is_empty());
        let app_configured = self.values.contains_key(lockstep_github::ENV_APP_ID);
        if !has_token && !app_configured {
            anyhow::bail!(
                "GITHUB_TOKEN is unset: commands act as the GitHub user whose own token it holds"
            );
        }
        let mut config = self.github()?;
        if let Credentials::App { .. } = config.credentials {
            let token = self
                .values
                .get("GITHUB_TOKEN")
                .filter(|t| !t.trim().is_empty())
                .context(
                    "GITHUB_TOKEN is unset: a GitHub App is configured for the service, and \
                     commands act as the user whose own token is in GITHUB_TOKEN",
                )?;
            config.credentials = Credentials::Token(SecretString::from(token.trim().to_owned()));
        }
        Ok(config)
    }

    /// The server named by `LOCKSTEP_SERVER_URL` or `server_url` (the `--server` flag wins
    /// over both): case commands then go through its HTTP API.
    pub(crate) fn server_url(&self) -> Option<&str> {
        self.values
            .get("LOCKSTEP_SERVER_URL")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether `serve` accepts a workflow's text in `POST /api/cases`
    /// (`LOCKSTEP_INLINE_WORKFLOWS`, default false).
    pub(crate) fn inline_workflows(&self) -> anyhow::Result<bool> {
        match self
            .values
            .get("LOCKSTEP_INLINE_WORKFLOWS")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => {
                anyhow::bail!("LOCKSTEP_INLINE_WORKFLOWS: {other:?} is not true or false")
            }
        }
    }

    /// A number of seconds from `key` (1 to 86,400), or `default`.
    fn seconds(&self, key: &str, default: u64) -> anyhow::Result<std::time::Duration> {
        match self.values.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(std::time::Duration::from_secs(default)),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Ok(std::time::Duration::from_secs(n)),
                _ => anyhow::bail!("{key}: {v:?} is not a number of seconds from 1 to 86400"),
            },
        }
    }

    /// `serve`'s read budget: while a verified webhook delivery arrived within
    /// `LOCKSTEP_WEBHOOK_WINDOW_SECS` (default 3600), GitHub is read only every
    /// `LOCKSTEP_SAFETY_POLL_SECS` (default 3600).
    pub(crate) fn runtime_options(&self) -> anyhow::Result<lockstep_runtime::RuntimeOptions> {
        Ok(lockstep_runtime::RuntimeOptions {
            safety_poll: self.seconds("LOCKSTEP_SAFETY_POLL_SECS", 3600)?,
            webhook_window: self.seconds("LOCKSTEP_WEBHOOK_WINDOW_SECS", 3600)?,
            ..Default::default()
        })
    }

    /// What the runtime polls for private vulnerability reports: every repository of the
    /// workflows in `LOCKSTEP_WORKFLOWS_DIR` (a file that does not parse is skipped with a
    /// warning), no more often than `LOCKSTEP_INTAKE_INTERVAL_SECS` (default 300) in `serve`.
    pub(crate) fn intake(&self) -> anyhow::Result<lockstep_runtime::intake::IntakeOptions> {
        let interval = self.seconds("LOCKSTEP_INTAKE_INTERVAL_SECS", 300)?;
        let mut repos = std::collections::BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(&self.workflows_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                    continue;
                }
                let name = path.display().to_string();
                match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        lockstep_core::Workflow::parse(&name, &t).map_err(|e| e.to_string())
                    }) {
                    Ok(w) => repos.extend(w.repos.into_keys()),
                    Err(e) => tracing::warn!(error = %e, "a workflow file is skipped for intake"),
                }
            }
        }
        Ok(lockstep_runtime::intake::IntakeOptions {
            repos: repos.into_iter().collect(),
            interval,
        })
    }

    /// The caller's token in local mode: `GITHUB_TOKEN`, which commands act as.
    pub(crate) fn local_token(&self) -> anyhow::Result<SecretString> {
        match &self.caller_github()?.credentials {
            Credentials::Token(t) => Ok(t.clone()),
            // caller_github always puts the caller's own token in place of an App.
            _ => anyhow::bail!(
                "GITHUB_TOKEN is unset: commands act as the GitHub user whose own token it holds"
            ),
        }
    }

    /// The caller's token in remote mode: `GITHUB_TOKEN` (or `github_token`), else
    /// `GH_TOKEN`, else what `gh auth token` prints. Which one is logged at DEBUG; the token
    /// never is.
    pub(crate) fn remote_token(&self) -> anyhow::Result<SecretString> {
        let usable = |v: &str| !v.trim().is_empty();
        if let Some(t) = self.values.get("GITHUB_TOKEN").filter(|t| usable(t)) {
            tracing::debug!(
                source = "GITHUB_TOKEN",
                "using the GitHub token from GITHUB_TOKEN"
            );
            return Ok(SecretString::from(t.trim().to_owned()));
        }
        if let Some(t) = std::env::var("GH_TOKEN").ok().filter(|t| usable(t)) {
            tracing::debug!(source = "GH_TOKEN", "using the GitHub token from GH_TOKEN");
            return Ok(SecretString::from(t.trim().to_owned()));
        }
        let none = "no GitHub token: set GITHUB_TOKEN or GH_TOKEN, or sign in with `gh auth login`";
        let out = match std::process::Command::new("gh")
            .args(["auth", "token"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                tracing::debug!(error = %e, "`gh auth token` could not run");
                anyhow::bail!("{none}");
            }
        };
        let token = String::from_utf8(out.stdout).unwrap_or_default();
        if !out.status.success() || !usable(&token) {
            tracing::debug!(status = %out.status, "`gh auth token` gave no token");
            anyhow::bail!("{none}");
        }
        tracing::debug!(
            source = "gh auth token",
            "using the GitHub token from `gh auth token`"
        );
        Ok(SecretString::from(token.trim().to_owned()))
    }
}
