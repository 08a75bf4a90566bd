//! The GitHub client: transport (pacing, rate limits, redirects, ETags) and operations.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use http::header::{ACCEPT, ETAG, IF_NONE_MATCH, LINK, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use octocrab::Octocrab;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{ApiBase, Credentials, GithubConfig, RetryConfig};
use crate::error::{Error, FieldError, Result};
use crate::pacer::Pacer;

mod global;
use crate::types::{
    Advisory, AdvisoryState, AdvisoryUpdate, Attempt, Credit, CveRequest, DraftOrigin, FieldUpdate,
    ListQuery, NewAdvisory, PullRequest, RepoName, RepoPermission, RepoRef, TargetState, User,
    check_ghsa, check_login,
};
pub use global::{GlobalAdvisory, GlobalIdentifier, GlobalPackage, GlobalVulnerability};

const MAX_REDIRECTS: u32 = 5;
const MAX_PAGES: u32 = 1_000;
const MAX_ETAG_ENTRIES: usize = 4_096;
const MAX_MESSAGE: usize = 400;
/// The REST API version every request asks for (github-api.md §1).
pub(crate) const API_VERSION: &str = "2022-11-28";
const API_VERSION_HEADER: HeaderName = HeaderName::from_static("x-github-api-version");

/// Request counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt, every page, every redirect hop).
    pub requests: u64,
    /// Content-creating requests sent (POST/PATCH/PUT/DELETE).
    pub writes: u64,
    /// GETs answered `304 Not Modified` (free against the primary limit).
    pub not_modified: u64,
    /// Automatic retries (GET after 5xx/transport, any request after a rate limit).
    pub retries: u64,
}

/// A polled value and whether it changed since the previous poll of the same URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled<T> {
    /// The value (from the cache on a 304).
    pub value: T,
    /// False when GitHub answered `304 Not Modified`.
    pub changed: bool,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// Items.
    pub items: Vec<T>,
    /// The next page, from the `Link` header (`None`: last page).
    pub next: Option<PageCursor>,
}

/// An opaque pointer to the next page (a path relative to the API base, taken from a
/// same-origin `Link` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(String);

/// One advisory of a release wave.
#[derive(Debug, Clone)]
pub struct WaveItem {
    /// Repository.
    pub repo: RepoName,
    /// Advisory.
    pub ghsa: String,
    /// Final content to set in the publishing PATCH (its `state` is ignored).
    pub content: Option<AdvisoryUpdate>,
    /// `Retry` if an earlier attempt may have published it already.
    pub attempt: Attempt,
}

/// A cached `200` for a conditional GET: what a `304` stands for. The `Link` header is
/// part of it: GitHub need not repeat it on the `304`, and a page without its `next` link
/// would end a listing early (and a retried create would then miss its draft).
#[derive(Clone)]
struct CachedGet {
    etag: HeaderValue,
    body: String,
    links: Vec<HeaderValue>,
}

/// How a write gets its pacer slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// One write in flight per token: every attempt takes the serial permit.
    Serial,
    /// Part of a burst whose permit the caller holds: the first attempt's slot is
    /// reserved already; a retry after a rate-limit refusal takes one more slot of the
    /// burst (never the serial permit, which the burst holds).
    Burst,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: String,
    from_cache: bool,
}

/// The adapter. Cheap to share (`Arc`); all methods take `&self`.
pub struct GithubClient {
    crab: Octocrab,
    api_base: ApiBase,
    identity: String,
    retry: RetryConfig,
    pacer: Arc<Pacer>,
    etags: Mutex<HashMap<String, CachedGet>>,
    stats: Mutex<ClientStats>,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("api_base", &self.api_base)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn parse_retry_after(h: &HeaderMap) -> Option<Duration> {
    header_str(h, RETRY_AFTER.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn parse_reset(h: &HeaderMap) -> Option<DateTime<Utc>> {
    header_str(h, "x-ratelimit-reset")
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
}

fn field_errors(v: &Value) -> Vec<FieldError> {
    let Some(arr) = v.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(truncate);
    arr.iter()
        .map(|e| match e {
            Value::String(m) => FieldError {
                message: Some(truncate(m)),
                ..FieldError::default()
            },
            other => FieldError {
                resource: s(other, "resource"),
                field: s(other, "field"),
                code: s(other, "code"),
                message: s(other, "message"),
            },
        })
        .collect()
}

/// Maps a non-2xx response to the typed error.
fn classify(status: u16, headers: &HeaderMap, body: &str, write: bool) -> Error {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(truncate)
        .unwrap_or_else(|| {
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_owned()
        });
    match status {
        401 => Error::Unauthorized { message },
        403 | 429 => {
            let lower = message.to_ascii_lowercase();
            let retry_after = parse_retry_after(headers);
            let remaining_zero = header_str(headers, "x-ratelimit-remaining") == Some("0");
            let secondary_msg = lower.contains("secondary rate limit");
            if remaining_zero && !secondary_msg {
                Error::RateLimited {
                    retry_after,
                    reset: parse_reset(headers),
                }
            } else if retry_after.is_some()
                || secondary_msg
                || lower.contains("rate limit")
                || status == 429
            {
                Error::SecondaryRateLimited { retry_after }
            } else {
                Error::Forbidden { message }
            }
        }
        404 => Error::NotFound { message },
        400 | 422 => Error::Validation {
            status,
            message,
            errors: parsed.as_ref().map(field_errors).unwrap_or_default(),
        },
        500..=599 => Error::Server {
            status,
            message,
            outcome_unknown: write,
        },
        _ => Error::Other {
            status: Some(status),
            message,
        },
    }
}

/// True if an io::Error "connection refused" is in the chain: nothing was sent.
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn transport(e: &octocrab::Error, write: bool) -> Error {
    // octocrab maps some responses itself (e.g. the App installation-token request).
    if let octocrab::Error::GitHub { source, .. } = e {
        let headers = source.headers.clone().unwrap_or_default();
        let body = json!({"message": source.message, "errors": source.errors}).to_string();
        return classify(source.status_code.as_u16(), &headers, &body, write);
    }
    let mut message = e.to_string();
    // Snafu displays may append a backtrace; keep the first line.
    if let Some((first, _)) = message.split_once('\n') {
        message = first.to_owned();
    }
    Error::Transport {
        message: truncate(&message),
        outcome_unknown: write && !refused(e),
    }
}

/// The `next` target of a response's `Link` headers.
fn link_next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(next_link)
        .map(str::to_owned)
}

/// Parses one `Link: <url>; rel="next", <url>; rel="last"` value and returns the `next`
/// target, as written (relative or absolute; [`ApiBase::relativize`] decides whether it may
/// be followed).
///
/// [`ApiBase::relativize`]: crate::ApiBase::relativize
pub fn next_link(value: &str) -> Option<&str> {
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let url = &after[..end];
        let tail = &after[end + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        let params = &tail[..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=")
                .map(|r| r.trim_matches('"'))
                .is_some_and(|r| r.split_whitespace().any(|x| x == "next"))
        });
        if is_next {
            return Some(url);
        }
        rest = &tail[params_end..];
    }
    None
}

fn decode<T: DeserializeOwned>(resp: &Resp, what: &str) -> Result<T> {
    serde_json::from_str(&resp.body).map_err(|e| Error::Other {
        status: Some(resp.status),
        message: format!("undecodable {what} response: {e}"),
    })
}

impl GithubClient {
    /// Builds a client with its own pacer. Must be called inside a Tokio runtime.
    pub fn new(config: GithubConfig) -> Result<Self> {
        let pacer = Arc::new(Pacer::new(config.pacing.clone()));
        Self::with_pacer(config, pacer)
    }

    /// Builds a client that shares `pacer` (use one pacer per token across clients).
    pub fn with_pacer(config: GithubConfig, pacer: Arc<Pacer>) -> Result<Self> {
        let cfg_err = |e: octocrab::Error| Error::InvalidInput(format!("octocrab: {e}"));
        let builder = Octocrab::builder()
            .base_uri(config.api_base.as_str())
            .map_err(cfg_err)?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            // On every request octocrab sends, the App's token mint included.
            .add_header(API_VERSION_HEADER, API_VERSION.to_owned())
            .set_connect_timeout(Some(config.connect_timeout))
            .set_read_timeout(Some(config.read_timeout))
            .set_write_timeout(Some(config.read_timeout));
        let identity = config.credentials.label();
        let crab = match &config.credentials {
            Credentials::Token(t) => builder
                .personal_token(t.expose_secret().to_owned())
                .build()
                .map_err(cfg_err)?,
            Credentials::App {
                app_id,
                installation_id,
                private_key_pem,
            } => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(
                    private_key_pem.expose_secret().as_bytes(),
                )
                .map_err(|_| Error::InvalidInput("App private key is not an RSA PEM".into()))?;
                builder
                    .app((*app_id).into(), key)
                    .build()
                    .map_err(cfg_err)?
                    .installation((*installation_id).into())
                    .map_err(cfg_err)?
            }
        };
        Ok(Self {
            crab,
            api_base: config.api_base,
            identity,
            retry: config.retry,
            pacer,
            etags: Mutex::new(HashMap::new()),
            stats: Mutex::new(ClientStats::default()),
        })
    }

    /// The pacer used for writes.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// The API base.
    pub fn api_base(&self) -> &ApiBase {
        &self.api_base
    }

    /// A non-secret label of the identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Request counters so far.
    pub fn stats(&self) -> ClientStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, f: impl FnOnce(&mut ClientStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    // -------------------------------------------------------------- transport

    async fn send_once(&self, method: &Method, path: &str, body: Option<&Value>) -> Result<Resp> {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(ACCEPT, "application/vnd.github+json");
        let cached = if write {
            None
        } else {
            self.etags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(path)
                .cloned()
        };
        if let Some(c) = &cached {
            builder = builder.header(IF_NONE_MATCH, c.etag.clone());
        }
        let request = self
            .crab
            .build_request(builder, body)
            .map_err(|e| Error::InvalidInput(format!("cannot build request: {e}")))?;
        self.bump(|s| {
            s.requests += 1;
            if write {
                s.writes += 1;
            }
        });
        let response = self
            .crab
            .execute(request)
            .await
            .map_err(|e| transport(&e, write))?;
        // The server has answered (a write is applied); the answer is lost before it is read.
        fail::fail_point!("github.after_send_before_response", |_| Err(
            Error::Transport {
                message: "fail point github.after_send_before_response".into(),
                outcome_unknown: write,
            }
        ));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = match self.crab.body_to_string(response).await {
            Ok(t) => t,
            Err(octocrab::Error::InvalidUtf8 { .. }) => {
                return Err(Error::Other {
                    status: Some(status),
                    message: "response body is not UTF-8".into(),
                });
            }
            Err(e) => return Err(transport(&e, write)),
        };
        tracing::debug!(%method, path, status, "github request");
        if status == 304
            && let Some(c) = cached
        {
            self.bump(|s| s.not_modified += 1);
            let mut headers = headers;
            if !headers.contains_key(LINK) {
                for l in c.links {
                    headers.append(LINK, l);
                }
            }
            return Ok(Resp {
                status: 200,
                headers,
                body: c.body,
                from_cache: true,
            });
        }
        if !write
            && status == 200
            && let Some(etag) = headers.get(ETAG)
        {
            let mut cache = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= MAX_ETAG_ENTRIES {
                cache.clear();
            }
            cache.insert(
                path.to_owned(),
                CachedGet {
                    etag: etag.clone(),
                    body: text.clone(),
                    links: headers.get_all(LINK).iter().cloned().collect(),
                },
            );
        }
        Ok(Resp {
            status,
            headers,
            body: text,
            from_cache: false,
        })
    }

    fn rate_limit_wait(&self, err: &Error, tries: u32) -> Duration {
        let backoff = || {
            self.retry
                .secondary_backoff
                .saturating_mul(1u32 << tries.min(16))
        };
        match err {
            Error::RateLimited { retry_after, reset } => retry_after.unwrap_or_else(|| {
                reset
                    .and_then(|r| (r - Utc::now()).to_std().ok())
                    .map_or_else(backoff, |d| d + Duration::from_millis(50))
            }),
            Error::SecondaryRateLimited { retry_after } => retry_after.unwrap_or_else(backoff),
            _ => backoff(),
        }
    }

    /// Sends one logical request: paces writes, follows same-origin redirects (GET
    /// only), honours rate limits, retries GETs after 5xx/transport errors, and never
    /// retries a write whose outcome is unknown.
    ///
    /// A rate-limit refusal (GitHub refuses before applying) holds every write of the
    /// token until the advertised time ([`Pacer::block_until`]). The request is sent
    /// again after that time while the wait is within `max_wait` and `rate_limit_retries`
    /// are left; otherwise the refusal is returned, and later writes that would have to
    /// wait beyond `max_wait` are refused without being sent.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        slot: Slot,
    ) -> Result<Resp> {
        let write = !matches!(method, Method::GET | Method::HEAD);
        let mut path = path.to_owned();
        let (mut redirects, mut rl_tries, mut read_tries) = (0u32, 0u32, 0u32);
        let mut first = true;
        loop {
            let permit = match (write, slot) {
                (false, _) => None,
                (true, Slot::Serial) => Some(self.pacer.acquire_within(self.retry.max_wait).await?),
                (true, Slot::Burst) => {
                    if !first {
                        self.pacer.reserve_in_burst(self.retry.max_wait).await?;
                    }
                    None
                }
            };
            first = false;
            let outcome = self.send_once(&method, &path, body).await;
            drop(permit);
            let err = match outcome {
                Ok(r) if (200..300).contains(&r.status) => return Ok(r),
                Ok(r) if !write && matches!(r.status, 301 | 302 | 303 | 307 | 308) => {
                    let loc = header_str(&r.headers, LOCATION.as_str()).unwrap_or_default();
                    let Some(next) = self.api_base.relativize(loc, Some(&path)) else {
                        return Err(Error::Other {
                            status: Some(r.status),
                            message: "refused a redirect that leaves the API host".into(),
                        });
                    };
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(Error::Other {
                            status: Some(r.status),
                            message: "too many redirects".into(),
                        });
                    }
                    tracing::debug!(from = %path, to = %next, "following same-origin redirect");
                    path = next;
                    continue;
                }
                Ok(r) => classify(r.status, &r.headers, &r.body, write),
                Err(e) => e,
            };
            if err.is_rate_limit() {
                let wait = self.rate_limit_wait(&err, rl_tries);
                // Whatever happens next, no write of this token goes out before then.
                self.pacer
                    .hold(tokio::time::Instant::now() + wait, err.clone());
                if rl_tries < self.retry.rate_limit_retries && wait <= self.retry.max_wait {
                    tracing::warn!(
                        %method, path, wait_ms = wait.as_millis() as u64,
                        "rate limited by GitHub; waiting before retrying (not applied)"
                    );
                    rl_tries += 1;
                    self.bump(|s| s.retries += 1);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                tracing::warn!(
                    %method, path, wait_ms = wait.as_millis() as u64,
                    "rate limited by GitHub; returning the refusal (not applied)"
                );
                return Err(err);
            }
            let read_retryable = matches!(err, Error::Server { .. } | Error::Transport { .. });
            if !write && read_retryable && read_tries < self.retry.read_retries {
                let wait = self
                    .retry
                    .read_backoff
                    .saturating_mul(1u32 << read_tries.min(16));
                read_tries += 1;
                self.bump(|s| s.retries += 1);
                tracing::debug!(%method, path, error = %err, "retrying read");
                tokio::time::sleep(wait).await;
                continue;
            }
            if err.write_outcome_unknown() {
                tracing::warn!(%method, path, error = %err, "write outcome unknown");
            }
            return Err(err);
        }
    }

    /// The wait before trying again after a rate-limit refusal that [`Self::send`] gave
    /// back (it had used `rate_limit_retries` already): GitHub's advertised time, or the
    /// backoff continued from there.
    fn wait_after_refusal(&self, err: &Error, refusals: u32) -> Duration {
        self.rate_limit_wait(err, self.retry.rate_limit_retries.saturating_add(refusals))
    }

    /// Runs `f` until it succeeds. After a failure that may clear, the next call is an
    /// [`Attempt::Retry`] (which reconciles first). After a rate-limit refusal it waits
    /// GitHub's advertised time, or returns the refusal when that is beyond `max_wait`.
    async fn reconcile_loop<T, F, Fut>(&self, first: Attempt, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let attempts = self.retry.write_attempts.max(1);
        let mut attempt = first;
        let mut backoff = self.retry.write_backoff;
        let (mut i, mut refusals) = (0, 0);
        loop {
            i += 1;
            match f(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_rate_limit() => {
                    let wait = self.wait_after_refusal(&e, refusals);
                    refusals += 1;
                    if wait > self.retry.max_wait || i >= attempts {
                        return Err(e);
                    }
                    self.pacer
                        .hold(tokio::time::Instant::now() + wait, e.clone());
                    tracing::info!(
                        what,
                        attempt = i,
                        wait_ms = wait.as_millis() as u64,
                        "rate limited; retrying through reconciliation after GitHub's wait"
                    );
                    attempt = Attempt::Retry;
                    tokio::time::sleep(wait).await;
                }
                Err(e) if e.is_retryable() && i < attempts => {
                    tracing::info!(what, attempt = i, error = %e, "retrying through reconciliation");
                    attempt = Attempt::Retry;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn advisories_path(repo: &RepoName) -> String {
        format!(
            "/repos/{}/{}/security-advisories",
            repo.owner(),
            repo.name()
        )
    }

    fn advisory_path(repo: &RepoName, ghsa: &str) -> Result<String> {
        check_ghsa(ghsa)?;
        Ok(format!("{}/{ghsa}", Self::advisories_path(repo)))
    }

    // -------------------------------------------------------------- identity

    /// `GET /user`: who the credentials act as.
    pub async fn authenticated_user(&self) -> Result<User> {
        let r = self.send(Method::GET, "/user", None, Slot::Serial).await?;
        decode(&r, "user")
    }

    /// `GET /users/{login}`: the account, or [`Error::NotFound`] when GitHub knows no such
    /// login (what a credit naming it would be refused with).
    ///
    /// [`Error::NotFound`]: crate::Error::NotFound
    pub async fn user(&self, login: &str) -> Result<User> {
        check_login(login)?;
        let r = self
            .send(Method::GET, &format!("/users/{login}"), None, Slot::Serial)
            .await?;
        decode(&r, "user")
    }

    /// `GET /repos/{o}/{r}/collaborators/{u}/permission`.
    pub async fn repo_permission(&self, repo: &RepoName, login: &str) -> Result<RepoPermission> {
        check_login(login)?;
        let path = format!(
            "/repos/{}/{}/collaborators/{login}/permission",
            repo.owner(),
            repo.name()
        );
        let r = self.send(Method::GET, &path, None, Slot::Serial).await?;
        decode(&r, "permission")
    }

    /// `GET /repos/{fork}/pulls?state=open` (conditional: a 304 returns the cached copy):
    /// the pull requests still open in an advisory's temporary private fork, so the fix is
    /// not on the public branch yet. One page of up to 100 is enough to know there are some.
    pub async fn open_pull_requests(&self, fork: &RepoName) -> Result<Vec<PullRequest>> {
        let path = format!(
            "/repos/{}/{}/pulls?state=open&per_page=100",
            fork.owner(),
            fork.name()
        );
        let r = self.send(Method::GET, &path, None, Slot::Serial).await?;
        decode(&r, "pull requests")
    }

    // -------------------------------------------------------------- reads

    /// `GET …/security-advisories/{ghsa}` (conditional: a 304 returns the cached copy).
    pub async fn get_advisory(&self, repo: &RepoName, ghsa: &str) -> Result<Advisory> {
        Ok(self.poll_advisory(repo, ghsa).await?.value)
    }

    /// Like [`Self::get_advisory`], also telling whether it changed since the last poll.
    pub async fn poll_advisory(&self, repo: &RepoName, ghsa: &str) -> Result<Polled<Advisory>> {
        let path = Self::advisory_path(repo, ghsa)?;
        let r = self.send(Method::GET, &path, None, Slot::Serial).await?;
        Ok(Polled {
            value: decode(&r, "advisory")?,
            changed: !r.from_cache,
        })
    }

    /// One page of `GET /repos/{o}/{r}/security-advisories` (oldest first).
    pub async fn list_page(
        &self,
        repo: &RepoName,
        query: &ListQuery,
        cursor: Option<&PageCursor>,
    ) -> Result<Page<Advisory>> {
        let path = match cursor {
            Some(c) => c.0.clone(),
            None => {
                let per_page = query.per_page.unwrap_or(100).clamp(1, 100);
                let mut p = format!(
                    "{}?per_page={per_page}&sort=created&direction=asc",
                    Self::advisories_path(repo)
                );
                if let Some(s) = &query.state {
                    p.push_str("&state=");
                    p.push_str(s.as_str());
                }
                p
            }
        };
        let r = self.send(Method::GET, &path, None, Slot::Serial).await?;
        let items: Vec<Advisory> = decode(&r, "advisory list")?;
        let next = match link_next(&r.headers) {
            Some(url) => Some(PageCursor(
                self.api_base
                    .relativize(&url, Some(&path))
                    .ok_or_else(|| Error::Other {
                        status: Some(r.status),
                        message: "refused a pagination link that leaves the API host".into(),
                    })?,
            )),
            None => None,
        };
        Ok(Page { items, next })
    }

    /// Every advisory of a repository the identity can see (all pages, via `Link`).
    pub async fn list_advisories(
        &self,
        repo: &RepoName,
        query: &ListQuery,
    ) -> Result<Vec<Advisory>> {
        let mut out = Vec::new();
        let mut cursor: Option<PageCursor> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(repo, query, cursor.as_ref()).await?;
            out.extend(page.items);
            match page.next {
                Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
                _ => return Ok(out),
            }
        }
        Err(Error::other("pagination did not end"))
    }

    /// The advisory (any state) whose description contains `marker`: the oldest one if
    /// several do (duplicates are logged).
    pub async fn find_by_marker(&self, repo: &RepoName, marker: &str) -> Result<Option<Advisory>> {
        if marker.trim().is_empty() {
            return Err(Error::InvalidInput("empty marker".into()));
        }
        let all = self.list_advisories(repo, &ListQuery::default()).await?;
        let mut hits: Vec<Advisory> = all.into_iter().filter(|a| a.has_marker(marker)).collect();
        if hits.len() > 1 {
            tracing::warn!(%repo, count = hits.len(), "several advisories carry the same marker");
        }
        hits.sort_by_key(|a| a.created_at);
        Ok(hits.into_iter().next())
    }

    // -------------------------------------------------------------- drafts

    /// Creates a draft. With [`Attempt::Retry`] it first lists the repository's
    /// advisories (every state, every page) and adopts the one whose description contains
    /// `marker`; only if there is none does it POST. The description must contain the
    /// marker. Never retried automatically (except after a rate-limit refusal).
    pub async fn create_draft(
        &self,
        repo: &RepoName,
        draft: &NewAdvisory,
        marker: &str,
        attempt: Attempt,
    ) -> Result<(Advisory, DraftOrigin)> {
        if marker.trim().is_empty() || !draft.description.contains(marker) {
            return Err(Error::InvalidInput(
                "the draft's description must contain the marker".into(),
            ));
        }
        if attempt == Attempt::Retry
            && let Some(found) = self.find_by_marker(repo, marker).await?
        {
            tracing::info!(%repo, ghsa = %found.ghsa_id, "adopted the draft of an earlier attempt");
            return Ok((found, DraftOrigin::Adopted));
        }
        let body = draft.to_body();
        let r = self
            .send(
                Method::POST,
                &Self::advisories_path(repo),
                Some(&body),
                Slot::Serial,
            )
            .await?;
        let adv: Advisory = decode(&r, "advisory")?;
        tracing::info!(%repo, ghsa = %adv.ghsa_id, "created draft advisory");
        Ok((adv, DraftOrigin::Created))
    }

    /// [`Self::create_draft`] until it succeeds: after any retryable failure (5xx, lost
    /// response, rate limit) the next attempt reconciles first, so at most one draft
    /// exists per marker.
    pub async fn ensure_draft(
        &self,
        repo: &RepoName,
        draft: &NewAdvisory,
        marker: &str,
        first: Attempt,
    ) -> Result<(Advisory, DraftOrigin)> {
        self.reconcile_loop(first, "create", |a| {
            self.create_draft(repo, draft, marker, a)
        })
        .await
    }

    /// `PATCH …/security-advisories/{ghsa}` with any combination of fields (explicit
    /// `null`s included). Idempotent as long as nobody else edits in between, but never
    /// retried automatically after an unknown outcome.
    pub async fn update_advisory(
        &self,
        repo: &RepoName,
        ghsa: &str,
        update: &AdvisoryUpdate,
    ) -> Result<Advisory> {
        self.patch(repo, ghsa, &update.to_body(), Slot::Serial)
            .await
    }

    async fn patch(
        &self,
        repo: &RepoName,
        ghsa: &str,
        body: &Value,
        slot: Slot,
    ) -> Result<Advisory> {
        let path = Self::advisory_path(repo, ghsa)?;
        if body.as_object().is_none_or(serde_json::Map::is_empty) {
            return Err(Error::InvalidInput("empty update".into()));
        }
        let r = self.send(Method::PATCH, &path, Some(body), slot).await?;
        decode(&r, "advisory")
    }

    /// Replaces the collaborating users (whole list; empty clears with `null`).
    pub async fn set_collaborators(
        &self,
        repo: &RepoName,
        ghsa: &str,
        logins: &[String],
    ) -> Result<Advisory> {
        let update = AdvisoryUpdate {
            collaborating_users: if logins.is_empty() {
                FieldUpdate::Clear
            } else {
                FieldUpdate::Set(logins.to_vec())
            },
            ..AdvisoryUpdate::default()
        };
        self.update_advisory(repo, ghsa, &update).await
    }

    /// Replaces the credits (whole list; empty clears with `null`).
    pub async fn set_credits(
        &self,
        repo: &RepoName,
        ghsa: &str,
        credits: &[Credit],
    ) -> Result<Advisory> {
        let update = AdvisoryUpdate {
            credits: if credits.is_empty() {
                FieldUpdate::Clear
            } else {
                FieldUpdate::Set(credits.to_vec())
            },
            ..AdvisoryUpdate::default()
        };
        self.update_advisory(repo, ghsa, &update).await
    }

    /// Rewrites the description (sibling links) and, when given, the collaborating users
    /// in one PATCH: one content-creating request instead of two.
    pub async fn link_siblings(
        &self,
        repo: &RepoName,
        ghsa: &str,
        description: &str,
        collaborators: Option<&[String]>,
    ) -> Result<Advisory> {
        let update = AdvisoryUpdate {
            description: Some(description.to_owned()),
            collaborating_users: match collaborators {
                None => FieldUpdate::Keep,
                Some([]) => FieldUpdate::Clear,
                Some(l) => FieldUpdate::Set(l.to_vec()),
            },
            ..AdvisoryUpdate::default()
        };
        self.update_advisory(repo, ghsa, &update).await
    }

    /// The private vulnerability reports awaiting triage (`?state=triage`, every page; each a
    /// conditional GET, so an unchanged listing costs nothing against the rate limit), and
    /// whether any page changed since the last poll.
    pub async fn list_triage(&self, repo: &RepoName) -> Result<Polled<Vec<Advisory>>> {
        let mut out = Vec::new();
        let mut changed = false;
        let mut cursor: Option<PageCursor> = None;
        for _ in 0..MAX_PAGES {
            let path = match &cursor {
                Some(c) => c.0.clone(),
                None => format!(
                    "{}?per_page=100&sort=created&direction=asc&state=triage",
                    Self::advisories_path(repo)
                ),
            };
            let r = self.send(Method::GET, &path, None, Slot::Serial).await?;
            changed |= !r.from_cache;
            let items: Vec<Advisory> = decode(&r, "advisory list")?;
            out.extend(items);
            let next = match link_next(&r.headers) {
                Some(url) => Some(PageCursor(
                    self.api_base
                        .relativize(&url, Some(&path))
                        .ok_or_else(|| Error::Other {
                            status: Some(r.status),
                            message: "refused a pagination link that leaves the API host".into(),
                        })?,
                )),
                None => None,
            };
            match next {
                Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
                _ => {
                    return Ok(Polled {
                        value: out,
                        changed,
                    });
                }
            }
        }
        Err(Error::other("pagination did not end"))
    }

    /// Adopts a private vulnerability report as a case's draft: one PATCH that accepts it
    /// (`triage` → `draft`) and sets `update`'s content, whose description must carry
    /// `marker`. It never creates an advisory. With [`Attempt::Retry`] it reads first: a
    /// draft already carrying the marker is done; a report still in triage (or a draft
    /// without the marker) is patched; any other state is refused.
    pub async fn adopt_report(
        &self,
        repo: &RepoName,
        ghsa: &str,
        update: &AdvisoryUpdate,
        marker: &str,
        attempt: Attempt,
    ) -> Result<Advisory> {
        if marker.trim().is_empty()
            || !update
                .description
                .as_deref()
                .is_some_and(|d| d.contains(marker))
        {
            return Err(Error::InvalidInput(
                "the adopted description must contain the marker".into(),
            ));
        }
        if attempt == Attempt::Retry {
            let cur = self.get_advisory(repo, ghsa).await?;
            match cur.state {
                AdvisoryState::Draft if cur.has_marker(marker) => {
                    tracing::info!(%repo, ghsa, "already adopted by an earlier attempt");
                    return Ok(cur);
                }
                AdvisoryState::Triage | AdvisoryState::Draft => {}
                other => {
                    return Err(Error::InvalidInput(format!(
                        "refusing to adopt a report in state {}",
                        other.as_str()
                    )));
                }
            }
        }
        let mut body = update.to_body();
        if let Value::Object(m) = &mut body {
            m.insert("state".into(), json!(TargetState::Draft));
        }
        let adv = self.patch(repo, ghsa, &body, Slot::Serial).await?;
        tracing::info!(%repo, ghsa, "adopted a private vulnerability report");
        Ok(adv)
    }

    // -------------------------------------------------------------- publish / close

    fn publish_body(content: Option<&AdvisoryUpdate>) -> Value {
        let mut body = content.map_or_else(|| json!({}), AdvisoryUpdate::to_body);
        if let Value::Object(m) = &mut body {
            m.insert("state".into(), json!(TargetState::Published));
        }
        body
    }

    /// Checks before a retried publish; `Some` means already published.
    async fn publish_precheck(&self, repo: &RepoName, ghsa: &str) -> Result<Option<Advisory>> {
        let cur = self.get_advisory(repo, ghsa).await?;
        match cur.state {
            AdvisoryState::Published => Ok(Some(cur)),
            AdvisoryState::Draft => Ok(None),
            other => Err(Error::Other {
                status: None,
                message: format!(
                    "refusing to publish an advisory in state {}",
                    other.as_str()
                ),
            }),
        }
    }

    async fn publish_inner(
        &self,
        repo: &RepoName,
        ghsa: &str,
        content: Option<&AdvisoryUpdate>,
        attempt: Attempt,
        slot: Slot,
    ) -> Result<Advisory> {
        if attempt == Attempt::Retry
            && let Some(done) = self.publish_precheck(repo, ghsa).await?
        {
            tracing::info!(%repo, ghsa, "already published by an earlier attempt");
            return Ok(done);
        }
        let adv = self
            .patch(repo, ghsa, &Self::publish_body(content), slot)
            .await?;
        if adv.state != AdvisoryState::Published {
            return Err(Error::Other {
                status: Some(200),
                message: format!("publish answered state {}", adv.state.as_str()),
            });
        }
        tracing::info!(%repo, ghsa, "published advisory");
        Ok(adv)
    }

    /// Publishes a draft, setting `content` in the same PATCH. With [`Attempt::Retry`]
    /// it reads the advisory first: already published is success; any state other than
    /// draft is refused.
    pub async fn publish(
        &self,
        repo: &RepoName,
        ghsa: &str,
        content: Option<&AdvisoryUpdate>,
        attempt: Attempt,
    ) -> Result<Advisory> {
        self.publish_inner(repo, ghsa, content, attempt, Slot::Serial)
            .await
    }

    /// [`Self::publish`] until it succeeds, reconciling before every retry.
    pub async fn ensure_published(
        &self,
        repo: &RepoName,
        ghsa: &str,
        content: Option<&AdvisoryUpdate>,
        first: Attempt,
    ) -> Result<Advisory> {
        self.reconcile_loop(first, "publish", |a| self.publish(repo, ghsa, content, a))
            .await
    }

    /// Publishes a release wave. Every second between two publications is a second in
    /// which some advisories are public and others are not, so the wave goes out in rounds
    /// of concurrent requests, never one item at a time:
    ///
    /// 1. the `Retry` items are read first, concurrently (already published is success);
    /// 2. the remaining PATCHes go out **concurrently** in one pacer burst (no spacing;
    ///    a wave larger than the window budget is split into budget-sized bursts, the
    ///    remainder first);
    /// 3. items that failed in a way that may clear (5xx, lost response, rate limit) are
    ///    re-read concurrently at once, and what is still a draft is published in the next
    ///    concurrent burst. Later rounds back off (`write_backoff`, doubling), and wait out
    ///    a rate limit's advertised time; a refusal longer than `max_wait` is returned.
    ///
    /// At most `write_attempts` rounds. Results are in input order.
    pub async fn publish_wave(&self, items: &[WaveItem]) -> Vec<Result<Advisory>> {
        let mut results: Vec<Option<Result<Advisory>>> = vec![None; items.len()];
        let (mut check, mut send): (Vec<usize>, Vec<usize>) =
            (0..items.len()).partition(|&i| items[i].attempt == Attempt::Retry);
        let rounds = self.retry.write_attempts.max(1);
        let mut backoff = self.retry.write_backoff;
        let mut round = 0;
        loop {
            round += 1;
            // Read first (concurrently): an earlier attempt may have published it.
            let checks = join_all(
                check
                    .iter()
                    .map(|&i| self.publish_precheck(&items[i].repo, &items[i].ghsa)),
            )
            .await;
            for (&i, c) in check.iter().zip(checks) {
                match c {
                    Ok(Some(done)) => results[i] = Some(Ok(done)),
                    Ok(None) => send.push(i),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            send.sort_unstable();
            self.wave_bursts(items, &send, &mut results).await;
            // What may clear: retry it (reading first), unless GitHub asked for a longer wait.
            let mut wait = Duration::ZERO;
            let mut again = Vec::new();
            for (i, r) in results.iter().enumerate() {
                match r {
                    Some(Err(e)) if e.is_rate_limit() => {
                        let w = self.wait_after_refusal(e, 0);
                        if w <= self.retry.max_wait {
                            wait = wait.max(w);
                            again.push(i);
                        }
                    }
                    Some(Err(e)) if e.is_retryable() => again.push(i),
                    _ => {}
                }
            }
            if again.is_empty() || round >= rounds {
                break;
            }
            // The first re-check goes out at once; later rounds back off.
            let mut pause = wait;
            if round >= 2 {
                pause = pause.max(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            tracing::info!(
                round,
                failed = again.len(),
                pause_ms = pause.as_millis() as u64,
                "re-checking the wave's failures concurrently"
            );
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            for &i in &again {
                results[i] = None;
            }
            check = again;
            send = Vec::new();
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::other("wave item not processed"))))
            .collect()
    }

    /// Sends the publishing PATCHes of `pending` concurrently, in bursts of at most the
    /// pacing budget (the remainder first, so the full bursts that follow start windows).
    /// Each burst holds the token's serial permit until its last response has arrived.
    async fn wave_bursts(
        &self,
        items: &[WaveItem],
        pending: &[usize],
        results: &mut [Option<Result<Advisory>>],
    ) {
        let max = usize::try_from(self.pacer.config().max_burst())
            .unwrap_or(usize::MAX)
            .max(1);
        for chunk in pending.rchunks(max).rev() {
            let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let permit = match self
                .pacer
                .acquire_burst_within(n, self.retry.max_wait)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    for &i in chunk {
                        results[i] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            let outs = join_all(chunk.iter().map(|&i| {
                let it = &items[i];
                self.publish_inner(
                    &it.repo,
                    &it.ghsa,
                    it.content.as_ref(),
                    Attempt::First,
                    Slot::Burst,
                )
            }))
            .await;
            drop(permit);
            for (&i, out) in chunk.iter().zip(outs) {
                results[i] = Some(out);
            }
        }
    }

    /// Closes a draft without publishing. With [`Attempt::Retry`] it reads first:
    /// already closed is success; a published advisory is refused.
    pub async fn close(&self, repo: &RepoName, ghsa: &str, attempt: Attempt) -> Result<Advisory> {
        if attempt == Attempt::Retry {
            let cur = self.get_advisory(repo, ghsa).await?;
            match cur.state {
                AdvisoryState::Closed => return Ok(cur),
                AdvisoryState::Draft | AdvisoryState::Triage => {}
                other => {
                    return Err(Error::Other {
                        status: None,
                        message: format!(
                            "refusing to close an advisory in state {}",
                            other.as_str()
                        ),
                    });
                }
            }
        }
        let body = json!({"state": TargetState::Closed});
        self.patch(repo, ghsa, &body, Slot::Serial).await
    }

    /// [`Self::close`] until it succeeds, reconciling before every retry.
    pub async fn ensure_closed(
        &self,
        repo: &RepoName,
        ghsa: &str,
        first: Attempt,
    ) -> Result<Advisory> {
        self.reconcile_loop(first, "close", |a| self.close(repo, ghsa, a))
            .await
    }

    // -------------------------------------------------------------- CVE, fork

    /// `POST …/{ghsa}/cve`. Naturally idempotent: a 422 `already_exists` (requested or
    /// assigned before, e.g. by an attempt whose response was lost) is reported as
    /// [`CveRequest::AlreadyRequested`].
    pub async fn request_cve(&self, repo: &RepoName, ghsa: &str) -> Result<CveRequest> {
        let path = format!("{}/cve", Self::advisory_path(repo, ghsa)?);
        match self.send(Method::POST, &path, None, Slot::Serial).await {
            Ok(_) => Ok(CveRequest::Requested),
            Err(e) if e.is_already_exists() => Ok(CveRequest::AlreadyRequested),
            Err(e) => Err(e),
        }
    }

    /// `POST …/{ghsa}/forks`: the temporary private fork (GitHub returns the existing one
    /// if it was made already, so a retry is harmless). The fork appears asynchronously.
    pub async fn create_private_fork(&self, repo: &RepoName, ghsa: &str) -> Result<RepoRef> {
        let path = format!("{}/forks", Self::advisory_path(repo, ghsa)?);
        let r = self.send(Method::POST, &path, None, Slot::Serial).await?;
        decode(&r, "repository")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn link_header_next() {
        let h = hm(&[(
            "link",
            r#"<https://api.github.com/x?after=a%2Cb>; rel="next", <https://api.github.com/x?before=z>; rel="prev""#,
        )]);
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://api.github.com/x?after=a%2Cb")
        );
        let h = hm(&[("link", r#"<https://api.github.com/x?before=z>; rel="prev""#)]);
        assert_eq!(link_next(&h), None);
        let h = hm(&[("link", "garbage <no-close")]);
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn classification() {
        let e = classify(
            403,
            &hm(&[("retry-after", "7")]),
            r#"{"message":"You have exceeded a secondary rate limit."}"#,
            true,
        );
        assert!(
            matches!(e, Error::SecondaryRateLimited { retry_after: Some(d) } if d == Duration::from_secs(7))
        );
        let e = classify(
            403,
            &hm(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000000"),
            ]),
            r#"{"message":"API rate limit exceeded"}"#,
            false,
        );
        assert!(matches!(e, Error::RateLimited { reset: Some(_), .. }));
        let e = classify(
            403,
            &hm(&[("x-ratelimit-remaining", "10")]),
            r#"{"message":"Must have admin rights"}"#,
            true,
        );
        assert!(matches!(e, Error::Forbidden { .. }));
        let e = classify(429, &HeaderMap::new(), "not json", true);
        assert!(matches!(
            e,
            Error::SecondaryRateLimited { retry_after: None }
        ));
        let e = classify(
            422,
            &HeaderMap::new(),
            r#"{"message":"Validation Failed","errors":[{"code":"already_exists","field":"cve_id"}, "plain"]}"#,
            true,
        );
        assert!(e.is_already_exists());
        let e = classify(502, &HeaderMap::new(), "", true);
        assert!(e.write_outcome_unknown() && e.is_retryable());
        let e = classify(502, &HeaderMap::new(), "", false);
        assert!(!e.write_outcome_unknown() && e.is_retryable());
        assert!(matches!(
            classify(418, &HeaderMap::new(), "{}", false),
            Error::Other {
                status: Some(418),
                ..
            }
        ));
    }

    #[test]
    fn already_exists_is_only_the_cve_answers() {
        let v = |body: &str| classify(422, &HeaderMap::new(), body, true);
        for yes in [
            r#"{"message":"Validation Failed","errors":[{"code":"already_exists","field":"cve_id"}]}"#,
            r#"{"message":"Validation Failed","errors":[{"code":"already_exists"}]}"#,
            r#"{"message":"This advisory already has a CVE ID."}"#,
            r#"{"message":"A CVE ID has already been requested for this advisory.","errors":[]}"#,
        ] {
            assert!(v(yes).is_already_exists(), "{yes}");
        }
        for no in [
            // Refusals that merely mention "already" are not success.
            r#"{"message":"This advisory is already closed."}"#,
            r#"{"message":"Advisory already published; it cannot be changed."}"#,
            r#"{"message":"Validation Failed","errors":[{"code":"already_exists","field":"summary"}]}"#,
            r#"{"message":"Validation Failed","errors":[{"code":"invalid","field":"cve_id","message":"already"}]}"#,
        ] {
            assert!(!v(no).is_already_exists(), "{no}");
        }
        // Only a 422.
        let e = classify(
            400,
            &HeaderMap::new(),
            r#"{"message":"This advisory already has a CVE ID."}"#,
            true,
        );
        assert!(!e.is_already_exists());
    }
}
