//! # lockstep-server — Lockstep's HTTP API
//!
//! [`router`] builds the axum router that `lockstep serve` mounts:
//!
//! * JSON endpoints for the case commands (`/api/cases…`), the same actions as the CLI.
//!   Callers authenticate with their GitHub token (`Authorization: Bearer <token>`); the token
//!   is resolved to a login (and, where the workflow names no maintainers, GitHub's
//!   admin/maintain permissions) by `lockstep_runtime::identity::principal`, exactly as the CLI
//!   does, and the core decides.
//! * `POST /webhooks/github`: `X-Hub-Signature-256` verified over the raw body before
//!   anything is parsed, deliveries deduplicated through the store's inbox, and
//!   `repository_advisory`/`published` and `release`/`published` turned into inputs.
//! * `/healthz`, `/readyz` (the database answers) and `/metrics` (Prometheus text).
//!
//! Every error is `{"error": "<one line>"}` with a meaningful status, and changes nothing.
//! See the crate README for every endpoint and the webhook rules.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod auth;
mod error;
mod export;
mod metrics;
pub mod openapi;
mod reports;
pub mod surface;
pub mod web;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lockstep_github::{GithubClient, GithubConfig};
use lockstep_store::Store;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::Identities;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Largest request body of the JSON API (a workflow file and a 60,000-byte description fit).
pub const API_BODY_LIMIT: usize = 1024 * 1024;

/// How long a resolved caller is reused before GitHub is asked again, by default.
pub const DEFAULT_PRINCIPAL_TTL: Duration = Duration::from_secs(60);

/// Called after every commit that appended events, to wake the release runtime.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Everything the handlers share. Build it with [`AppState::new`] and the `with_*` methods,
/// then pass it to [`router`].
pub struct AppState {
    store: Store,
    identities: Identities,
    webhook_secret: Option<SecretString>,
    waker: Option<Waker>,
    on_delivery: Option<Waker>,
    workflows_dir: Option<PathBuf>,
    inline_workflows: bool,
    metrics: Metrics,
    web: web::Web,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("waker", &self.waker.is_some())
            .field("workflows_dir", &self.workflows_dir)
            .field("inline_workflows", &self.inline_workflows)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The store, the service's own GitHub client (used to look up callers' repository
    /// permissions), and the configuration it was built from: callers' clients are built from
    /// the same configuration (the same, statically configured API base) with the caller's
    /// token in place of the service's credentials.
    ///
    /// Defaults: no webhook secret (the webhook endpoint refuses every delivery), no waker,
    /// no workflows directory, inline workflows refused, principals cached for
    /// [`DEFAULT_PRINCIPAL_TTL`].
    pub fn new(store: Store, github: Arc<GithubClient>, github_config: GithubConfig) -> Self {
        Self {
            store,
            identities: Identities::new(github, github_config, DEFAULT_PRINCIPAL_TTL),
            webhook_secret: None,
            waker: None,
            on_delivery: None,
            workflows_dir: None,
            inline_workflows: false,
            metrics: Metrics::default(),
            web: web::Web::new(None),
        }
    }

    /// The web dashboard's sign-in (GitHub's OAuth web flow) and session key. Without it
    /// the pages are served but say that sign-in is not configured.
    pub fn with_web(mut self, config: Option<web::WebConfig>) -> Self {
        self.web = web::Web::new(config);
        self
    }

    /// The webhook secret. `None` (or an empty secret) makes `POST /webhooks/github` refuse
    /// every delivery with 503.
    pub fn with_webhook_secret(mut self, secret: Option<SecretString>) -> Self {
        self.webhook_secret = secret.filter(|s| !s.expose_secret().is_empty());
        self
    }

    /// Wakes `runtime` after every commit that appended events, and tells it of every
    /// verified webhook delivery (healthy webhooks let it read GitHub less often).
    pub fn with_runtime(mut self, runtime: lockstep_runtime::Runtime) -> Self {
        let delivered = runtime.clone();
        self.on_delivery = Some(Arc::new(move || delivered.webhook_received()));
        self.with_waker(Arc::new(move || runtime.wake()))
    }

    /// Calls `waker` after every commit that appended events.
    pub fn with_waker(mut self, waker: Waker) -> Self {
        self.waker = Some(waker);
        self
    }

    /// The directory `POST /api/cases` resolves `"workflow_name": "NAME"` in, as
    /// `DIR/NAME.toml`.
    pub fn with_workflows_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workflows_dir = Some(dir.into());
        self
    }

    /// Whether `POST /api/cases` accepts a workflow's TOML text in `"workflow"`. Off by
    /// default: whoever writes a workflow names its coordinators and repositories, and the
    /// service's GitHub identity then opens drafts in them, so only operators' files (the
    /// workflows directory) should define workflows on a shared server.
    pub fn with_inline_workflows(mut self, allow: bool) -> Self {
        self.inline_workflows = allow;
        self
    }

    /// How long a resolved caller (login and GitHub permissions) is reused, keyed by a hash
    /// of the token. Zero disables the cache; at most an hour.
    pub fn with_principal_ttl(mut self, ttl: Duration) -> Self {
        self.identities.set_ttl(ttl);
        self
    }

    /// A webhook delivery's signature verified.
    pub(crate) fn delivered(&self) {
        if let Some(f) = &self.on_delivery {
            f();
        }
    }

    pub(crate) fn wake(&self) {
        if let Some(w) = &self.waker {
            w();
        }
    }
}

type Shared = Arc<AppState>;

/// The router: the JSON API, the webhook receiver, health, readiness, metrics, and the web
/// dashboard (its pages are not part of the API's OpenAPI description). Unknown routes, wrong
/// methods and oversized bodies answer in the same JSON error shape.
pub fn router(state: AppState) -> Router {
    let state: Shared = Arc::new(state);
    let Tables { api, rest } = tables();
    let api = api.router.layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    Router::new()
        .merge(api)
        .merge(rest.router)
        .merge(web::router().layer(DefaultBodyLimit::max(API_BODY_LIMIT)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Every route [`router`] serves, as `(METHOD, path)`: what the OpenAPI description must
/// describe (a test checks that it does).
pub fn routes() -> Vec<(&'static str, String)> {
    let Tables { api, rest } = tables();
    api.routes.into_iter().chain(rest.routes).collect()
}

/// A router that remembers the routes it was given.
struct Table {
    router: Router<Shared>,
    routes: Vec<(&'static str, String)>,
}

impl Table {
    fn new() -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn route(
        mut self,
        method: &'static str,
        path: &str,
        handler: axum::routing::MethodRouter<Shared>,
    ) -> Self {
        self.routes.push((method, path.to_owned()));
        self.router = self.router.route(path, handler);
        self
    }
}

struct Tables {
    /// The JSON API, under its body limit.
    api: Table,
    /// The webhook receiver (under its own body limit), health, readiness and metrics.
    rest: Table,
}

fn tables() -> Tables {
    let api = Table::new()
        .route("GET", "/api/cases", get(api::list))
        .route("POST", "/api/cases", post(api::open))
        .route("GET", "/api/cases/{id}", get(api::show))
        .route("GET", "/api/cases/{id}/plan", get(api::plan))
        .route(
            "GET",
            "/api/cases/{id}/export/{format}",
            get(export::export),
        )
        .route("GET", "/api/openapi.json", get(openapi::serve))
        .route("GET", "/api/reports", get(reports::list))
        .route(
            "GET",
            "/api/reports/{owner}/{repo}/{ghsa}",
            get(reports::show),
        )
        .route(
            "POST",
            "/api/reports/{owner}/{repo}/{ghsa}/reject",
            post(reports::reject),
        )
        .route(
            "POST",
            "/api/reports/{owner}/{repo}/{ghsa}/merge",
            post(reports::merge),
        );
    // Every action of the command surface, at `/api/cases/{id}/{PATH}`.
    struct Mount(Option<Table>);
    impl surface::ActionVisitor for Mount {
        fn visit<A: surface::CaseAction>(&mut self) {
            if let Some(t) = self.0.take() {
                self.0 = Some(t.route(
                    "POST",
                    &format!("/api/cases/{{id}}/{}", A::PATH),
                    post(api::act::<A>),
                ));
            }
        }
    }
    let mut mount = Mount(Some(api));
    surface::each_action(&mut mount);
    let api = mount.0.unwrap_or_else(Table::new);
    let mut rest = Table::new().route("POST", "/webhooks/github", post(webhook::receive));
    rest.router = rest.router.layer(DefaultBodyLimit::max(
        lockstep_github::webhook::MAX_WEBHOOK_BODY,
    ));
    let rest = rest
        .route("GET", "/healthz", get(healthz))
        .route("GET", "/readyz", get(readyz))
        .route("GET", "/metrics", get(metrics_text));
    Tables { api, rest }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(app): State<Shared>) -> Response {
    match app.store.now().await {
        Ok(_) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
            .into_response()
        }
    }
}

async fn metrics_text(State(app): State<Shared>) -> Response {
    let text = app
        .metrics
        .render(&app.store, app.identities.lookups())
        .await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Largest error body of axum's own rejections that is carried into the JSON shape.
const MAX_REJECTION_BODY: usize = 4096;

/// Logs and counts every request, and turns any error answer that is not JSON yet (axum's
/// own rejections: a bad path, an oversized body) into `{"error": "..."}`.
async fn observe(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    let status = response.status();
    // JSON errors, and the web pages' own HTML error pages, stay as they are.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let body = std::mem::replace(response.body_mut(), Body::empty());
        let text = axum::body::to_bytes(body, MAX_REJECTION_BODY)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        let mut converted = ApiError::new(status, text).into_response();
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                converted.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response = converted;
    }
    let elapsed = started.elapsed();
    app.metrics
        .request(&route, &method, status.as_u16(), elapsed);
    tracing::info!(
        method = %method,
        route = %route,
        status = status.as_u16(),
        latency_ms = elapsed.as_millis() as u64,
        "request"
    );
    response
}
