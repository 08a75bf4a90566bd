//! Configuration: API base URL (validated against SSRF), credentials, timeouts, retries.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use crate::error::{Error, Result};
use crate::pacer::PacingConfig;

/// GitHub's public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Environment variable naming the API base URL.
pub const ENV_API_URL: &str = "LOCKSTEP_GITHUB_API_URL";
/// Environment variable holding a personal (or fine-grained) access token.
pub const ENV_TOKEN: &str = "GITHUB_TOKEN";
/// Environment variable holding a GitHub App's id.
pub const ENV_APP_ID: &str = "LOCKSTEP_GITHUB_APP_ID";
/// Environment variable naming the App's private key PEM file.
pub const ENV_APP_KEY_FILE: &str = "LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE";
/// Environment variable holding the App installation id.
pub const ENV_APP_INSTALLATION_ID: &str = "LOCKSTEP_GITHUB_APP_INSTALLATION_ID";
/// Environment variable listing private/loopback hosts allowed as base URL (comma separated),
/// for GitHub Enterprise Server on an internal network.
pub const ENV_ALLOWED_PRIVATE_HOSTS: &str = "LOCKSTEP_GITHUB_ALLOWED_PRIVATE_HOSTS";

/// A validated API base URL: `https` (or `http` on a loopback host, for the simulator),
/// no credentials, query or fragment, and no link-local or private address unless the
/// operator allowed that host explicitly.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiBase {
    url: Url,
}

impl fmt::Debug for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiBase").field(&self.url.as_str()).finish()
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10 (carrier-grade NAT)
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|m| is_internal_ip(IpAddr::V4(m)))
        }
    }
}

fn is_link_local(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_link_local(),
        Host::Ipv6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
        Host::Domain(_) => false,
    }
}

impl ApiBase {
    /// Parses and validates a base URL. `allowed_private_hosts` lists hosts (names or IP
    /// literals) that may be internal; loopback hosts are always allowed over `http` so
    /// the simulator works. Link-local addresses (cloud metadata) are always refused.
    pub fn parse(raw: &str, allowed_private_hosts: &[String]) -> Result<Self> {
        let url = Url::parse(raw.trim())
            .map_err(|e| Error::InvalidInput(format!("API base URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidInput(
                "API base URL must not carry credentials".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::InvalidInput(
                "API base URL must not have a query or fragment".into(),
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| Error::InvalidInput("API base URL has no host".into()))?;
        let loopback = is_loopback_host(&host);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(Error::InvalidInput(format!(
                    "API base URL scheme {other:?} refused: use https (http only for loopback)"
                )));
            }
        }
        if is_link_local(&host) {
            return Err(Error::InvalidInput(
                "API base URL points at a link-local address".into(),
            ));
        }
        let host_str = host.to_string();
        let allowed = loopback
            || allowed_private_hosts.iter().any(|h| {
                h.trim()
                    .eq_ignore_ascii_case(host_str.trim_matches(['[', ']']))
            });
        let internal = match host {
            Host::Ipv4(ip) => is_internal_ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => is_internal_ip(IpAddr::V6(ip)),
            Host::Domain(_) => false,
        };
        if internal && !allowed {
            return Err(Error::InvalidInput(format!(
                "API base URL host {host_str} is a private address; list it in {ENV_ALLOWED_PRIVATE_HOSTS} to allow it"
            )));
        }
        let mut url = url;
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// The path prefix (empty for `https://api.github.com`, `/api/v3` for GHES).
    pub(crate) fn path_prefix(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }

    /// Turns an absolute URL from GitHub (a `Link` target or a `Location`) into a path
    /// relative to the base, if and only if it has the same scheme, host and port and
    /// lies under the base path. Anything else is refused (no token leaves the host).
    pub fn relativize(&self, target: &str, current: Option<&str>) -> Option<String> {
        let base_for_join = match current {
            Some(cur) => Url::parse(&format!("{}{}", self.as_str(), cur)).ok()?,
            None => self.url.clone(),
        };
        let t = base_for_join.join(target).ok()?;
        if t.scheme() != self.url.scheme()
            || t.host_str().map(str::to_ascii_lowercase)
                != self.url.host_str().map(str::to_ascii_lowercase)
            || t.port_or_known_default() != self.url.port_or_known_default()
            || !t.username().is_empty()
            || t.password().is_some()
        {
            return None;
        }
        let rest = t.path().strip_prefix(self.path_prefix())?;
        if !rest.starts_with('/') {
            return None;
        }
        Some(match t.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        })
    }
}

/// How the adapter authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// A personal access token (classic or fine-grained) or any bearer token.
    Token(SecretString),
    /// A GitHub App installation: installation tokens are minted with a JWT signed by
    /// the App's private key and cached until shortly (30 s) before they expire.
    App {
        /// The App id.
        app_id: u64,
        /// The installation to act as.
        installation_id: u64,
        /// The private key (PEM, RSA).
        private_key_pem: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::App {
                app_id,
                installation_id,
                ..
            } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .field("private_key_pem", &"<redacted>")
                .finish(),
        }
    }
}

impl Credentials {
    /// A stable, non-secret label for the identity (used to key pacers and logs).
    pub fn label(&self) -> String {
        match self {
            Self::Token(t) => {
                use sha2::{Digest, Sha256};
                let d = Sha256::digest(t.expose_secret().as_bytes());
                format!("token:{}", hex::encode(&d[..6]))
            }
            Self::App {
                app_id,
                installation_id,
                ..
            } => format!("app:{app_id}/installation:{installation_id}"),
        }
    }
}

/// Retry and backoff knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Extra attempts for a GET after a 5xx or transport error.
    pub read_retries: u32,
    /// First backoff for GET retries (doubles each time).
    pub read_backoff: Duration,
    /// Extra attempts after a rate-limit refusal (reads and writes: refused before apply).
    pub rate_limit_retries: u32,
    /// First backoff for a secondary limit without `retry-after` (GitHub: at least a
    /// minute; doubles each time).
    pub secondary_backoff: Duration,
    /// Longest single wait the adapter accepts; a longer one is returned as the error.
    pub max_wait: Duration,
    /// Attempts of the reconciling `ensure_*` helpers (create, publish, close), and
    /// rounds of a release wave. Default 12; see [`RetryConfig::default`] for why.
    pub write_attempts: u32,
    /// First backoff between reconciling write attempts (doubles, capped at 30 s).
    pub write_backoff: Duration,
}

/// The defaults. `write_attempts` is 12, sized for a bad hour of GitHub, not a good one:
///
/// One attempt of a reconciling write (a create or a publish, each retry reading first)
/// fails when its write fails before being applied (a 5xx, probability `p`), or when it
/// is applied and the answer is lost (`r`; the next attempt then adopts it, unless its
/// read fails after `read_retries` retries, `q = p^(read_retries + 1)`). A chain of `n`
/// attempts fails only if nearly every attempt fails *before applying*: about
/// `(p + q)^(n-1) · (p + r)`. Under the chaos test's 20 % 5xx and 30 % lost answers
/// (`p = 0.2`, `r = 0.24`, `q = 0.2^4`), exactly (a two-state Markov chain, see
/// `tests/chaos.rs`):
///
/// | attempts | one chain fails | a 1,000-case run (6,000 chains) fails |
/// |---|---|---|
/// | 6 (the old default) | 1.5e-4 | 58 % |
/// | 8 | 5.9e-6 | 3.5 % |
/// | 10 | 2.4e-7 | 0.14 % |
/// | **12** | **9.7e-9** | **0.006 %** |
///
/// The cost is paid only when writes keep failing: the backoff doubles from 1 s and is
/// capped at 30 s, so twelve failing attempts give up after about 3.5 minutes instead of
/// 31 s; a first attempt that succeeds costs nothing more. Rate-limit refusals do not
/// spend attempts early (they wait GitHub's advertised time, or are returned).
impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            read_retries: 3,
            read_backoff: Duration::from_millis(250),
            rate_limit_retries: 5,
            secondary_backoff: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            write_attempts: 12,
            write_backoff: Duration::from_secs(1),
        }
    }
}

/// Everything needed to build a [`GithubClient`](crate::GithubClient).
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// API base URL.
    pub api_base: ApiBase,
    /// Identity.
    pub credentials: Credentials,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout (per read on the socket).
    pub read_timeout: Duration,
    /// Pacing of content-creating requests.
    pub pacing: PacingConfig,
    /// Retries.
    pub retry: RetryConfig,
}

impl GithubConfig {
    /// A configuration with defaults for everything but the base URL and credentials.
    pub fn new(api_base: ApiBase, credentials: Credentials) -> Self {
        Self {
            api_base,
            credentials,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            pacing: PacingConfig::default(),
            retry: RetryConfig::default(),
        }
    }

    /// Reads the configuration from the process environment (see [`Self::from_lookup`]).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (testable without touching the
    /// environment). `LOCKSTEP_GITHUB_API_URL` (default `https://api.github.com`); then
    /// either `LOCKSTEP_GITHUB_APP_ID` + `LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE` +
    /// `LOCKSTEP_GITHUB_APP_INSTALLATION_ID` (preferred when set) or `GITHUB_TOKEN`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let allowed: Vec<String> = lookup(ENV_ALLOWED_PRIVATE_HOSTS)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let raw = lookup(ENV_API_URL)
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let api_base = ApiBase::parse(&raw, &allowed)?;
        let non_empty = |k: &str| lookup(k).filter(|s| !s.trim().is_empty());
        let credentials = if let Some(app_id) = non_empty(ENV_APP_ID) {
            let app_id = app_id
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::InvalidInput(format!("{ENV_APP_ID} is not a number")))?;
            let installation_id = non_empty(ENV_APP_INSTALLATION_ID)
                .ok_or_else(|| Error::InvalidInput(format!("{ENV_APP_INSTALLATION_ID} is unset")))?
                .trim()
                .parse::<u64>()
                .map_err(|_| {
                    Error::InvalidInput(format!("{ENV_APP_INSTALLATION_ID} is not a number"))
                })?;
            let path = non_empty(ENV_APP_KEY_FILE)
                .ok_or_else(|| Error::InvalidInput(format!("{ENV_APP_KEY_FILE} is unset")))?;
            let pem = std::fs::read_to_string(path.trim()).map_err(|e| {
                Error::InvalidInput(format!("cannot read {ENV_APP_KEY_FILE}: {}", e.kind()))
            })?;
            Credentials::App {
                app_id,
                installation_id,
                private_key_pem: SecretString::from(pem),
            }
        } else if let Some(tok) = non_empty(ENV_TOKEN) {
            Credentials::Token(SecretString::from(tok.trim().to_owned()))
        } else {
            return Err(Error::InvalidInput(format!(
                "no credentials: set {ENV_TOKEN} or {ENV_APP_ID}/{ENV_APP_KEY_FILE}/{ENV_APP_INSTALLATION_ID}"
            )));
        };
        Ok(Self::new(api_base, credentials))
    }
}
