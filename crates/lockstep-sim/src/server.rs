//! HTTP front end: the request pipeline (auth → primary limit → faults → secondary limit →
//! operation → ETag → reset-after-apply → ledger → webhooks), admin routes, and a TCP
//! listener whose connections can be killed from inside a handler.
//!
//! # How "reset after apply" drops a connection in axum
//!
//! [`spawn`](crate::spawn) serves the router through a custom [`axum::serve::Listener`]
//! whose IO type wraps each `TcpStream` with a shared kill flag. The flag is handed to
//! handlers as `ConnectInfo<ConnHandle>` (via `into_make_service_with_connect_info`).
//! To reset, the handler applies the change, sets the flag, sets `SO_LINGER` to zero, and
//! returns; hyper's first write of the response head then fails, hyper drops the
//! connection, and the kernel sends a TCP RST. The client sees a connection error and
//! no status line. When the router is mounted some other way (no `ConnHandle`), the
//! fallback is a 200 whose body stream fails immediately, which aborts the connection
//! after the status line.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::Simulator;
use crate::app::AppCaller;
use crate::config::{FaultConfig, InjectedFault};
use crate::error::ApiError;
use crate::ledger::{FaultKind, LedgerEntry, Via};
use crate::observe::Observed;
use crate::state::{Ctx, ListQuery, OpOk, State as SimState};
use crate::validate::{self, BodyKind};

const MAX_BODY: usize = 1 << 20;

// ------------------------------------------------------------------ killable connections

/// Per-connection handle given to handlers; `kill` makes the connection fail.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

/// A `TcpStream` that starts failing every IO call once killed.
#[derive(Debug)]
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
    lingered: bool,
}

impl KillableStream {
    fn check_killed(&mut self) -> bool {
        if !self.killed.load(Ordering::SeqCst) {
            return false;
        }
        if !self.lingered {
            self.lingered = true;
            // SO_LINGER = 0 turns the close into a RST. With a zero timeout the close does
            // not block, which is what tokio's deprecation warns about.
            #[allow(deprecated)]
            let _ = self.inner.set_linger(Some(Duration::ZERO));
        }
        true
    }
}

fn reset_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "lockstep-sim: reset after apply",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.check_killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.check_killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.check_killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.check_killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.check_killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// TCP listener producing [`KillableStream`]s.
#[derive(Debug)]
pub(crate) struct SimListener {
    pub(crate) inner: TcpListener,
}

impl Listener for SimListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return (
                        KillableStream {
                            inner: s,
                            killed: Arc::new(AtomicBool::new(false)),
                            lingered: false,
                        },
                        a,
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Self {
            killed: Arc::clone(&stream.io().killed),
        }
    }
}

// ------------------------------------------------------------------ routes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    User,
    /// `GET /users/{login}`.
    UserByLogin(&'a str),
    /// `GET /rate_limit` (free: not charged).
    RateLimit,
    Repo(&'a str, &'a str),
    CollaboratorPermission(&'a str, &'a str, &'a str),
    /// `GET /repos/{o}/{fork}/pulls` on an advisory's temporary private fork.
    ForkPulls(&'a str, &'a str),
    ListRepo(&'a str, &'a str),
    Create(&'a str, &'a str),
    Report(&'a str, &'a str),
    Get(&'a str, &'a str, &'a str),
    Update(&'a str, &'a str, &'a str),
    Cve(&'a str, &'a str, &'a str),
    Fork(&'a str, &'a str, &'a str),
    ListOrg(&'a str),
    /// `GET /app` (App JWT).
    App,
    /// `GET /app/installations` (App JWT).
    AppInstallations,
    /// `GET /app/installations/{id}` (App JWT).
    AppInstallation(&'a str),
    /// `POST /app/installations/{id}/access_tokens` (App JWT).
    AppToken(&'a str),
    /// `GET /repos/{o}/{r}/installation` (App JWT).
    RepoInstallation(&'a str, &'a str),
    /// `GET /advisories/{ghsa_id}`: the global advisory database.
    Global(&'a str),
    NotFound,
}

impl<'a> Route<'a> {
    fn parse(method: &Method, path: &'a str) -> Self {
        let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Self::NotFound;
        }
        let m = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match (m, segs.as_slice()) {
            (&Method::GET, ["user"]) => Self::User,
            (&Method::GET, ["users", login]) => Self::UserByLogin(login),
            (&Method::GET, ["rate_limit"]) => Self::RateLimit,
            (&Method::GET, ["repos", o, r]) => Self::Repo(o, r),
            (&Method::GET, ["repos", o, r, "collaborators", u, "permission"]) => {
                Self::CollaboratorPermission(o, r, u)
            }
            (&Method::GET, ["repos", o, r, "pulls"]) => Self::ForkPulls(o, r),
            (&Method::GET, ["repos", o, r, "security-advisories"]) => Self::ListRepo(o, r),
            (&Method::POST, ["repos", o, r, "security-advisories"]) => Self::Create(o, r),
            (&Method::POST, ["repos", o, r, "security-advisories", "reports"]) => {
                Self::Report(o, r)
            }
            (&Method::GET, ["repos", o, r, "security-advisories", g]) => Self::Get(o, r, g),
            (&Method::PATCH, ["repos", o, r, "security-advisories", g]) => Self::Update(o, r, g),
            (&Method::POST, ["repos", o, r, "security-advisories", g, "cve"]) => Self::Cve(o, r, g),
            (&Method::POST, ["repos", o, r, "security-advisories", g, "forks"]) => {
                Self::Fork(o, r, g)
            }
            (&Method::GET, ["orgs", org, "security-advisories"]) => Self::ListOrg(org),
            (&Method::GET, ["app"]) => Self::App,
            (&Method::GET, ["app", "installations"]) => Self::AppInstallations,
            (&Method::GET, ["app", "installations", id]) => Self::AppInstallation(id),
            (&Method::POST, ["app", "installations", id, "access_tokens"]) => Self::AppToken(id),
            (&Method::GET, ["repos", o, r, "installation"]) => Self::RepoInstallation(o, r),
            (&Method::GET, ["advisories", g]) => Self::Global(g),
            _ => Self::NotFound,
        }
    }

    fn op(&self) -> &'static str {
        match self {
            Self::User => "get_user",
            Self::UserByLogin(..) => "get_user_by_login",
            Self::RateLimit => "rate_limit",
            Self::Repo(..) => "get_repo",
            Self::CollaboratorPermission(..) => "get_collaborator_permission",
            Self::ForkPulls(..) => "list_fork_pulls",
            Self::ListRepo(..) => "list",
            Self::Create(..) => "create",
            Self::Report(..) => "report",
            Self::Get(..) => "get",
            Self::Update(..) => "update",
            Self::Cve(..) => "request_cve",
            Self::Fork(..) => "fork",
            Self::ListOrg(..) => "list_org",
            Self::App => "get_app",
            Self::AppInstallations => "list_installations",
            Self::AppInstallation(..) => "get_installation",
            Self::AppToken(..) => "create_installation_token",
            Self::RepoInstallation(..) => "get_repo_installation",
            Self::Global(..) => "get_global",
            Self::NotFound => "not_found",
        }
    }

    fn repo(&self) -> Option<String> {
        match self {
            Self::Repo(o, r)
            | Self::CollaboratorPermission(o, r, _)
            | Self::ForkPulls(o, r)
            | Self::ListRepo(o, r)
            | Self::Create(o, r)
            | Self::Report(o, r)
            | Self::Get(o, r, _)
            | Self::Update(o, r, _)
            | Self::Cve(o, r, _)
            | Self::Fork(o, r, _)
            | Self::RepoInstallation(o, r) => Some(format!("{o}/{r}")),
            _ => None,
        }
    }

    /// Routes authenticated with an App JWT rather than a token.
    fn is_app(&self) -> bool {
        matches!(
            self,
            Self::App
                | Self::AppInstallations
                | Self::AppInstallation(..)
                | Self::AppToken(..)
                | Self::RepoInstallation(..)
        )
    }
}

fn dispatch_app(
    st: &mut SimState,
    route: Route<'_>,
    caller: &AppCaller,
    body: &[u8],
    ctx: &Ctx<'_>,
) -> Result<OpOk, ApiError> {
    match route {
        Route::App => st.op_get_app(caller),
        Route::AppInstallations => st.op_list_installations(caller),
        Route::AppInstallation(id) => st.op_get_installation(caller, id),
        Route::AppToken(id) => st.op_mint_token(caller, id, body, ctx.wall),
        Route::RepoInstallation(o, r) => st.op_repo_installation(caller, o, r),
        _ => Err(ApiError::not_found()),
    }
}

fn dispatch(
    st: &mut SimState,
    route: Route<'_>,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    ctx: &Ctx<'_>,
) -> Result<OpOk, ApiError> {
    match route {
        Route::User => st.op_user(ctx),
        Route::UserByLogin(login) => st.op_user_by_login(login),
        Route::Repo(o, r) => st.op_get_repo(o, r, ctx),
        Route::CollaboratorPermission(o, r, u) => st.op_collaborator_permission(o, r, u, ctx),
        Route::ForkPulls(o, r) => st.op_list_fork_pulls(o, r, query, ctx),
        Route::ListRepo(o, r) => {
            let q = ListQuery::parse(query)?;
            st.op_list_repo(o, r, &q, path, ctx)
        }
        Route::ListOrg(org) => {
            let q = ListQuery::parse(query)?;
            st.op_list_org(org, &q, path, ctx)
        }
        Route::Create(o, r) | Route::Report(o, r) => {
            let report = matches!(route, Route::Report(..));
            // Visibility and authority are checked before the body, as GitHub does.
            st.authorize_create(o, r, report, ctx)?;
            let kind = if report {
                BodyKind::Report
            } else {
                BodyKind::Create
            };
            let input = validate::parse(kind, body)?;
            st.op_create(o, r, input, report, ctx)
        }
        Route::Get(o, r, g) => st.op_get(o, r, g, ctx),
        Route::Update(o, r, g) => {
            st.authorize_update(o, r, g, ctx)?;
            let input = validate::parse(BodyKind::Update, body)?;
            st.op_update(o, r, g, input, ctx)
        }
        Route::Cve(o, r, g) => st.op_request_cve(o, r, g, ctx),
        Route::Fork(o, r, g) => st.op_fork(o, r, g, ctx),
        Route::Global(g) => st.op_get_global(g, ctx),
        _ => Err(ApiError::not_found()),
    }
}

// ------------------------------------------------------------------ pipeline

pub(crate) enum Processed {
    Respond(Response, Option<Observed>),
    Reset(Option<Observed>),
}

enum Auth<'a> {
    Anonymous,
    Token(&'a str),
    Malformed,
}

fn parse_auth(headers: &HeaderMap) -> Auth<'_> {
    let Some(v) = headers.get(http::header::AUTHORIZATION) else {
        return Auth::Anonymous;
    };
    let Ok(v) = v.to_str() else {
        return Auth::Malformed;
    };
    let mut it = v.trim().splitn(2, ' ');
    match (it.next(), it.next()) {
        (Some(scheme), Some(tok))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") =>
        {
            Auth::Token(tok.trim())
        }
        _ => Auth::Malformed,
    }
}

struct RateInfo {
    limit: u32,
    used: u32,
    reset: i64,
}

impl SimState {
    fn primary_info(&mut self, key: &str, authenticated: bool, now: Instant) -> RateInfo {
        let cfg = self.config.primary.clone();
        let limit = if authenticated {
            cfg.authenticated
        } else {
            cfg.anonymous
        };
        let wall = Utc::now().timestamp();
        let b = self
            .primary
            .entry(key.to_owned())
            .or_insert_with(|| crate::state::PrimaryBucket {
                start: now,
                start_epoch: wall,
                used: 0,
            });
        if now.duration_since(b.start) >= cfg.window {
            b.start = now;
            b.start_epoch = wall;
            b.used = 0;
        }
        let window = i64::try_from(cfg.window.as_secs()).unwrap_or(i64::MAX / 2);
        RateInfo {
            limit,
            used: b.used,
            reset: b.start_epoch.saturating_add(window.max(1)),
        }
    }

    fn primary_charge(&mut self, key: &str, delta: i32) {
        if let Some(b) = self.primary.get_mut(key) {
            b.used = if delta >= 0 {
                b.used.saturating_add(delta.unsigned_abs())
            } else {
                b.used.saturating_sub(delta.unsigned_abs())
            };
        }
    }

    /// Returns `Some(retry_after)` if the secondary budget is exhausted.
    fn secondary_check(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let cfg = self.config.secondary.clone();
        let q = self.secondary.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= cfg.long_window)
        {
            q.pop_front();
        }
        let in_short: Vec<Instant> = q
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) < cfg.short_window)
            .collect();
        let short_full = u32::try_from(in_short.len()).unwrap_or(u32::MAX) >= cfg.per_short_window;
        let long_full = u32::try_from(q.len()).unwrap_or(u32::MAX) >= cfg.per_long_window;
        if short_full {
            let oldest = in_short.first().copied().unwrap_or(now);
            return Some(cfg.short_window.saturating_sub(now.duration_since(oldest)));
        }
        if long_full {
            let oldest = q.front().copied().unwrap_or(now);
            return Some(cfg.long_window.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        None
    }

    fn push_ledger(&mut self, mut e: LedgerEntry) {
        e.seq = self.ledger.len() as u64 + 1;
        self.ledger.push(e);
    }
}

fn secondary_error(status: u16, retry: Duration) -> ApiError {
    let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
    ApiError::basic(
        status,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    )
    .with_header("retry-after", secs.max(1).to_string())
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

fn build_response(status: u16, body: Option<&Value>, headers: &[(&str, String)]) -> Response {
    let bytes = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()));
    let mut resp = Response::new(bytes.map_or_else(Body::empty, Body::from));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if body.is_some() {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (http::HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            h.append(name, val);
        }
    }
    resp
}

/// Whose primary budget a request is counted against.
struct Bucket {
    key: String,
    authenticated: bool,
}

fn rate_headers(info: &RateInfo) -> [(&'static str, String); 5] {
    [
        ("x-ratelimit-limit", info.limit.to_string()),
        (
            "x-ratelimit-remaining",
            info.limit.saturating_sub(info.used).to_string(),
        ),
        ("x-ratelimit-used", info.used.to_string()),
        ("x-ratelimit-reset", info.reset.to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ]
}

/// The response being built for one request.
struct Exchange {
    entry: LedgerEntry,
    hdrs: Vec<(&'static str, String)>,
    bucket: Bucket,
    now: Instant,
}

impl Exchange {
    /// Charges the request against its primary budget.
    fn charge(&self, st: &mut SimState) {
        st.primary_charge(&self.bucket.key, 1);
    }

    /// Records the entry and builds the response. Every response carries the
    /// `x-ratelimit-*` headers of its budget (after any charge).
    fn finish(self, st: &mut SimState, status: u16, body: Option<&Value>) -> Processed {
        let Exchange {
            mut entry,
            mut hdrs,
            bucket,
            now,
        } = self;
        if !hdrs.iter().any(|(k, _)| *k == "x-ratelimit-limit") {
            let info = st.primary_info(&bucket.key, bucket.authenticated, now);
            hdrs.extend(rate_headers(&info));
        }
        entry.status = status;
        let observed = st.observing().then(|| Observed::new(&entry, &hdrs, body));
        st.push_ledger(entry);
        Processed::Respond(build_response(status, body, &hdrs), observed)
    }
}

impl Simulator {
    /// Runs one API request through the whole pipeline (synchronously, under the lock).
    pub(crate) fn process_http(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Processed {
        let now = Instant::now();
        let wall = Utc::now();
        let mut st = self.lock();
        st.tick(now, wall);
        st.request_counter += 1;
        let request_id = format!(
            "5117:{:X}:{:X}",
            st.config.seed & 0xFFFF,
            st.request_counter
        );
        let path = uri.path();
        let query = uri.query();
        let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let route = Route::parse(method, path);
        let entry = LedgerEntry {
            seq: 0,
            at: wall,
            method: method.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| path.to_owned(), |p| p.as_str().to_owned()),
            op: route.op().to_owned(),
            actor: None,
            status: 0,
            write,
            applied: false,
            delivered: true,
            via: Via::Http,
            repo: route.repo(),
            ghsa_id: None,
            state_from: None,
            state_to: None,
            fault: None,
            body_sha256: (!body.is_empty()).then(|| hex::encode(Sha256::digest(body))),
        };
        // Until the credentials are checked, the request counts as anonymous.
        let mut x = Exchange {
            entry,
            hdrs: vec![
                ("x-github-request-id", request_id),
                ("x-github-api-version-selected", "2022-11-28".to_owned()),
                ("x-github-media-type", "github.v3; format=json".to_owned()),
                (
                    "vary",
                    "Accept, Authorization, Cookie, X-GitHub-OTP".to_owned(),
                ),
            ],
            bucket: Bucket {
                key: "anonymous".to_owned(),
                authenticated: false,
            },
            now,
        };
        let auth = parse_auth(headers);
        // A known, unexpired token is counted against its own budget from the start.
        if let Auth::Token(t) = &auth
            && let Some(login) = st.token_login(t, wall)
        {
            x.bucket = Bucket {
                key: login.to_ascii_lowercase(),
                authenticated: true,
            };
        }

        // API version.
        let drop_cvss = match headers
            .get("x-github-api-version")
            .map(|v| v.to_str().unwrap_or(""))
        {
            None | Some(crate::API_VERSION) => false,
            Some("2026-03-10") => {
                x.hdrs[1].1 = "2026-03-10".to_owned();
                true
            }
            Some(other) => {
                let e = ApiError::bad_request(&format!("API version {other:?} is not supported."));
                return x.finish(&mut st, 400, Some(&e.body));
            }
        };
        if st.config.require_user_agent && !headers.contains_key(http::header::USER_AGENT) {
            let e = ApiError::forbidden(
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
            );
            return x.finish(&mut st, 403, Some(&e.body));
        }
        // Authentication: an App JWT on the App routes, a token everywhere else.
        let mut app_caller: Option<AppCaller> = None;
        let mut integration = false;
        let actor: Option<String> = if route.is_app() {
            let jwt = match &auth {
                Auth::Token(t) => Some(*t),
                _ => None,
            };
            match st.verify_app_jwt(jwt, wall) {
                Ok(c) => {
                    x.bucket = Bucket {
                        key: format!("app:{}", c.app_id),
                        authenticated: true,
                    };
                    app_caller = Some(c);
                }
                Err(e) => return x.finish(&mut st, e.status, Some(&e.body)),
            }
            None
        } else {
            match auth {
                Auth::Anonymous => None,
                Auth::Token(t) => match st.token_login(t, wall) {
                    Some(login) => {
                        integration = st.is_installation_token(t);
                        Some(login)
                    }
                    None => {
                        let e = ApiError::unauthorized_bad_credentials();
                        return x.finish(&mut st, 401, Some(&e.body));
                    }
                },
                Auth::Malformed => {
                    let e = ApiError::unauthorized_bad_credentials();
                    return x.finish(&mut st, 401, Some(&e.body));
                }
            }
        };
        x.entry.actor = actor.clone();
        let rl_status = st.config.primary.status.code();
        // Primary limit.
        let info = st.primary_info(&x.bucket.key, x.bucket.authenticated, now);
        if info.used >= info.limit {
            x.hdrs.extend(rate_headers(&info));
            let msg = match &actor {
                Some(a) => format!("API rate limit exceeded for user {a}."),
                None => "API rate limit exceeded.".to_owned(),
            };
            let e = ApiError::basic(
                rl_status,
                &msg,
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            );
            x.entry.fault = Some(FaultKind::PrimaryLimit);
            return x.finish(&mut st, rl_status, Some(&e.body));
        }
        // 5xx before applying.
        let faults = st.config.faults.clone();
        if route != Route::NotFound && (write || !faults.error_5xx_writes_only) {
            let forced = st.take_injected(InjectedFault::Error5xx);
            if forced || st.roll(faults.error_5xx) {
                x.charge(&mut st);
                let status = [500u16, 502, 503][st.fault_rng_index(3)];
                let e = ApiError::basic(status, "Server Error", "https://docs.github.com/rest");
                x.entry.fault = Some(FaultKind::Error5xx);
                return x.finish(&mut st, status, Some(&e.body));
            }
        }
        // Secondary limits: content creation (writes), or an injected refusal of any request.
        if route != Route::NotFound && !route.is_app() {
            let any = st.take_injected(InjectedFault::SecondaryLimitAny);
            let refuse = if any {
                Some((st.config.secondary.status.code(), faults.retry_after))
            } else if write {
                let forced = st.take_injected(InjectedFault::SecondaryLimit);
                if forced || st.roll(faults.secondary_limit) {
                    Some((st.config.secondary.status.code(), faults.retry_after))
                } else {
                    st.secondary_check(&x.bucket.key, now)
                        .map(|d| (st.config.secondary.status.code(), d))
                }
            } else {
                None
            };
            if let Some((status, retry)) = refuse {
                x.charge(&mut st);
                let e = secondary_error(status, retry);
                x.hdrs.extend(e.headers.iter().cloned());
                x.entry.fault = Some(FaultKind::SecondaryLimit);
                return x.finish(&mut st, status, Some(&e.body));
            }
        }
        // The operation itself.
        let ctx = Ctx {
            actor: actor.as_deref(),
            now,
            wall,
            drop_cvss,
            integration,
        };
        if route == Route::RateLimit {
            // "Accessing this endpoint does not count against your REST API rate limit."
            let info = st.primary_info(&x.bucket.key, x.bucket.authenticated, now);
            let core = json!({
                "limit": info.limit,
                "used": info.used,
                "remaining": info.limit.saturating_sub(info.used),
                "reset": info.reset,
                "resource": "core",
            });
            let other = |limit: u32, resource: &str| json!({"limit": limit, "used": 0, "remaining": limit, "reset": info.reset, "resource": resource});
            let body = json!({
                "resources": {
                    "core": core,
                    "search": other(30, "search"),
                    "graphql": other(5_000, "graphql"),
                    "integration_manifest": other(5_000, "integration_manifest"),
                    "code_search": other(10, "code_search"),
                },
                "rate": core,
            });
            return x.finish(&mut st, 200, Some(&body));
        }
        let result = match &app_caller {
            Some(c) => dispatch_app(&mut st, route, c, body, &ctx),
            None => dispatch(&mut st, route, path, query, body, &ctx),
        };
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => {
                x.charge(&mut st);
                x.hdrs.extend(e.headers.iter().cloned());
                return x.finish(&mut st, e.status, Some(&e.body));
            }
        };
        x.entry.applied = ok.applied;
        x.entry.ghsa_id.clone_from(&ok.ghsa);
        if ok.repo.is_some() {
            x.entry.repo.clone_from(&ok.repo);
        }
        x.entry.state_from = ok.state_from;
        x.entry.state_to = ok.state_to;
        // Conditional GET. The entity tag covers the body and the page's `Link`: a page
        // that gained a next page is a different representation.
        if !write && ok.status == 200 {
            let mut digest = Sha256::new();
            digest.update(serde_json::to_vec(&ok.body).unwrap_or_default());
            for (k, v) in &ok.headers {
                if k.eq_ignore_ascii_case("link") {
                    digest.update(b"\nlink: ");
                    digest.update(v.as_bytes());
                }
            }
            let etag = format!("\"{}\"", hex::encode(digest.finalize()));
            x.hdrs.push(("etag", etag.clone()));
            if if_none_match(headers, &etag) {
                // A 304 is not charged, and (like GitHub, which need not repeat it) it
                // carries no `Link`: the client keeps the links of the page it cached.
                return x.finish(&mut st, 304, None);
            }
        }
        x.hdrs.extend(ok.headers.iter().cloned());
        x.charge(&mut st);
        let events = ok.events;
        // Reset after apply.
        if write && (200..300).contains(&ok.status) {
            let forced = st.take_injected(InjectedFault::ResetAfterApply);
            if forced || st.roll(faults.reset_after_apply) {
                x.entry.fault = Some(FaultKind::ResetAfterApply);
                x.entry.delivered = false;
                x.entry.status = ok.status;
                let info = st.primary_info(&x.bucket.key, x.bucket.authenticated, now);
                x.hdrs.extend(rate_headers(&info));
                let observed = st
                    .observing()
                    .then(|| Observed::new(&x.entry, &x.hdrs, Some(&ok.body)));
                st.push_ledger(x.entry);
                for ev in events {
                    st.emit(ev);
                }
                return Processed::Reset(observed);
            }
        }
        let status = ok.status;
        let result = x.finish(&mut st, status, Some(&ok.body));
        for ev in events {
            st.emit(ev);
        }
        result
    }
}

impl SimState {
    fn fault_rng_index(&mut self, n: usize) -> usize {
        use rand::Rng;
        self.fault_rng.random_range(0..n)
    }
}

/// The catch-all handler serving the GitHub API surface.
async fn api_entry(State(sim): State<Simulator>, req: Request) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        let e = ApiError::basic(413, "Payload too large", "https://docs.github.com/rest");
        return build_response(413, Some(&e.body), &[]);
    };
    let delay = sim.lock().latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (processed, observed) =
        match sim.process_http(&parts.method, &parts.uri, &parts.headers, &body) {
            Processed::Respond(r, o) => (Some(r), o),
            Processed::Reset(o) => (None, o),
        };
    // Observers run outside the simulator's lock.
    if let Some(o) = observed {
        sim.notify(&o);
    }
    match processed {
        Some(r) => r,
        None => match conn {
            Some(c) => {
                c.kill();
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            None => {
                let stream = futures::stream::once(async { Err::<Bytes, io::Error>(reset_err()) });
                let mut r = Response::new(Body::from_stream(stream));
                *r.status_mut() = StatusCode::OK;
                r
            }
        },
    }
}

// ------------------------------------------------------------------ admin routes

async fn admin_guard(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let expected = sim.lock().config.admin_token.clone();
    if let Some(token) = expected {
        let ok = req
            .headers()
            .get("x-sim-admin-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == token);
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "admin token required"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct SinceQuery {
    since: Option<u64>,
}

async fn admin_ledger(State(sim): State<Simulator>, Query(q): Query<SinceQuery>) -> Response {
    Json(sim.ledger_since(q.since.unwrap_or(0))).into_response()
}

async fn admin_get_faults(State(sim): State<Simulator>) -> Response {
    Json(sim.faults()).into_response()
}

async fn admin_put_faults(State(sim): State<Simulator>, Json(f): Json<FaultConfig>) -> Response {
    sim.set_faults(f.clone());
    Json(f).into_response()
}

#[derive(Deserialize)]
struct InjectBody {
    fault: InjectedFault,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn admin_inject(State(sim): State<Simulator>, Json(b): Json<InjectBody>) -> Response {
    sim.inject(b.fault, b.count);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SeedBody {
    seed: u64,
}

async fn admin_reseed(State(sim): State<Simulator>, Json(b): Json<SeedBody>) -> Response {
    sim.reseed(b.seed);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_advisories(
    State(sim): State<Simulator>,
    Path((o, r)): Path<(String, String)>,
) -> Response {
    match sim.advisories(&format!("{o}/{r}")) {
        Ok(v) => Json(v).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct PublishBody {
    login: String,
    repo: String,
    ghsa_id: String,
}

fn sim_error_response(e: &crate::SimError) -> Response {
    match e {
        crate::SimError::Api(a) => build_response(a.status, Some(&a.body), &[]),
        other => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": other.to_string()})),
        )
            .into_response(),
    }
}

async fn admin_publish(State(sim): State<Simulator>, Json(b): Json<PublishBody>) -> Response {
    match sim.publish_as(&b.login, &b.repo, &b.ghsa_id) {
        Ok(v) => Json(v).into_response(),
        Err(e) => sim_error_response(&e),
    }
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    secret: Option<String>,
}

async fn admin_webhook(State(sim): State<Simulator>, Json(b): Json<WebhookBody>) -> Response {
    sim.set_webhook(&b.url, b.secret.as_deref());
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_deliveries(State(sim): State<Simulator>) -> Response {
    Json(sim.webhook_deliveries()).into_response()
}

#[derive(Deserialize)]
struct ReleaseBody {
    repo: String,
    tag_name: String,
}

async fn admin_release(State(sim): State<Simulator>, Json(b): Json<ReleaseBody>) -> Response {
    match sim.emit_release(&b.repo, &b.tag_name) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => sim_error_response(&e),
    }
}

async fn admin_ping(State(sim): State<Simulator>) -> Response {
    sim.emit_ping();
    StatusCode::ACCEPTED.into_response()
}

async fn admin_assign_cves(State(sim): State<Simulator>) -> Response {
    Json(sim.assign_pending_cves()).into_response()
}

pub(crate) fn router(sim: Simulator) -> Router {
    let admin = Router::new()
        .route("/_sim/ledger", get(admin_ledger))
        .route("/_sim/faults", get(admin_get_faults).put(admin_put_faults))
        .route("/_sim/inject", post(admin_inject))
        .route("/_sim/reseed", post(admin_reseed))
        .route(
            "/_sim/repos/{owner}/{repo}/advisories",
            get(admin_advisories),
        )
        .route("/_sim/publish", post(admin_publish))
        .route("/_sim/webhook", put(admin_webhook))
        .route("/_sim/webhook/deliveries", get(admin_deliveries))
        .route("/_sim/events/release", post(admin_release))
        .route("/_sim/events/ping", post(admin_ping))
        .route("/_sim/cves/assign", post(admin_assign_cves))
        .route_layer(middleware::from_fn_with_state(sim.clone(), admin_guard));
    admin
        .merge(crate::oauth::routes())
        .fallback(api_entry)
        .with_state(sim)
}

/// Makes the router's service with per-connection kill handles.
pub(crate) async fn serve_listener(
    listener: SimListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
