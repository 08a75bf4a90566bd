//! The web dashboard that `lockstep serve` serves at `/`: server-rendered pages (maud), sign-in
//! with GitHub (the GitHub App's OAuth web flow, with `state` and PKCE), a signed and encrypted
//! session cookie, the case actions as forms with CSRF tokens, and live updates through
//! server-sent events fed by the store's change notifications.
//!
//! - [`session`]: the session cookie, its CSRF token, the flash message.
//! - [`oauth`]: `/login`, `/oauth/callback`, `/logout`.
//! - [`pages`]: the case list and the case page.
//! - [`graph`]: the dependency graph and its waves as SVG.
//! - [`actions`]: every [`CaseAction`](crate::surface::CaseAction) as a form post, decoded into
//!   the same request type and run by the same [`api::perform`](crate::api::perform) as the
//!   JSON API; the core authorizes.
//! - [`sse`]: `GET /cases/{id}/events`.
//!
//! Every page answers with a Content-Security-Policy without inline script and with
//! `frame-ancestors 'none'`, and with `Cache-Control: no-store` (pages carry embargoed text).
//! A case the user may not read answers exactly as a case that does not exist.

mod actions;
mod graph;
mod oauth;
mod pages;
mod session;
mod sse;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};

use crate::Shared;
use crate::surface;

pub(crate) use session::SessionKeys;

/// How long a session lasts by default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The web sign-in's settings.
#[derive(Clone)]
pub struct WebConfig {
    /// The GitHub App's OAuth client id (`LOCKSTEP_GITHUB_CLIENT_ID`).
    pub client_id: String,
    /// Its client secret (`LOCKSTEP_GITHUB_CLIENT_SECRET`).
    pub client_secret: SecretString,
    /// GitHub's web address (`LOCKSTEP_GITHUB_WEB_URL`, default `https://github.com`): where
    /// `/login/oauth/authorize` and `/login/oauth/access_token` are, and advisory links point.
    pub web_url: String,
    /// The address users reach this server at (`LOCKSTEP_PUBLIC_URL`): the callback is
    /// `{public_url}/oauth/callback`. Cookies are `Secure` unless it is a loopback address.
    pub public_url: String,
    /// The key material of the session cookie and CSRF tokens (at least 32 bytes;
    /// `LOCKSTEP_SESSION_KEY`). Instances behind one address must share it.
    pub session_secret: SecretString,
    /// How long a session lasts.
    pub session_ttl: Duration,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("client_id", &self.client_id)
            .field("web_url", &self.web_url)
            .field("public_url", &self.public_url)
            .field("session_ttl", &self.session_ttl)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// From `LOCKSTEP_GITHUB_CLIENT_ID`, `LOCKSTEP_GITHUB_CLIENT_SECRET`,
    /// `LOCKSTEP_GITHUB_WEB_URL`, `LOCKSTEP_PUBLIC_URL` and `LOCKSTEP_SESSION_KEY`. `Ok(None)`
    /// when no client id is set (the pages then say that sign-in is not configured); an error
    /// names the variable that is missing or wrong. Without `LOCKSTEP_SESSION_KEY` a random
    /// key is drawn: sessions end when the process does.
    pub fn from_env() -> Result<Option<WebConfig>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(client_id) = var("LOCKSTEP_GITHUB_CLIENT_ID") else {
            return Ok(None);
        };
        let client_secret = var("LOCKSTEP_GITHUB_CLIENT_SECRET")
            .ok_or("LOCKSTEP_GITHUB_CLIENT_SECRET must be set with LOCKSTEP_GITHUB_CLIENT_ID")?;
        let public_url = var("LOCKSTEP_PUBLIC_URL").ok_or(
            "LOCKSTEP_PUBLIC_URL must be set with LOCKSTEP_GITHUB_CLIENT_ID (the sign-in callback is LOCKSTEP_PUBLIC_URL/oauth/callback)",
        )?;
        let web_url = var("LOCKSTEP_GITHUB_WEB_URL").unwrap_or_else(|| "https://github.com".into());
        let session_secret = match var("LOCKSTEP_SESSION_KEY") {
            Some(k) if k.len() >= 32 => SecretString::from(k),
            Some(_) => return Err("LOCKSTEP_SESSION_KEY must be at least 32 characters".into()),
            None => {
                tracing::warn!(
                    "LOCKSTEP_SESSION_KEY is not set: a random session key is used, and web sessions end with this process"
                );
                random_secret()
            }
        };
        WebConfig::new(
            client_id,
            client_secret.into(),
            web_url,
            public_url,
            session_secret,
        )
        .map(Some)
    }

    /// Checks and normalises the URLs (no trailing slash).
    pub fn new(
        client_id: String,
        client_secret: SecretString,
        web_url: String,
        public_url: String,
        session_secret: SecretString,
    ) -> Result<WebConfig, String> {
        let check = |name: &str, u: &str| -> Result<String, String> {
            let parsed = url_parse(u).ok_or_else(|| format!("{name} must be an http(s) URL"))?;
            Ok(parsed)
        };
        if session_secret.expose_secret().len() < 32 {
            return Err("the session key must be at least 32 characters".into());
        }
        Ok(WebConfig {
            client_id,
            client_secret,
            web_url: check("LOCKSTEP_GITHUB_WEB_URL", &web_url)?,
            public_url: check("LOCKSTEP_PUBLIC_URL", &public_url)?,
            session_secret,
            session_ttl: DEFAULT_SESSION_TTL,
        })
    }

    /// Whether cookies may go without `Secure`: the public address is a loopback one.
    fn loopback(&self) -> bool {
        let rest = self
            .public_url
            .strip_prefix("http://")
            .or_else(|| self.public_url.strip_prefix("https://"))
            .unwrap_or("");
        let host = rest.split('/').next().unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        matches!(host, "localhost" | "[::1]") || host.starts_with("127.")
    }
}

/// A random 64-character secret.
pub fn random_secret() -> SecretString {
    let bytes: [u8; 32] = rand::random();
    SecretString::from(hex_string(&bytes))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `http(s)://host[:port][/path]` without a trailing slash, or `None`.
fn url_parse(u: &str) -> Option<String> {
    let u = u.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))?;
    let host = rest.split('/').next()?;
    (!host.is_empty() && !u.contains(['?', '#', ' ', '"', '<', '>'])).then(|| u.to_owned())
}

/// The web UI's part of the shared state.
pub(crate) struct Web {
    pub(crate) config: Option<WebConfig>,
    pub(crate) keys: SessionKeys,
    pub(crate) hub: sse::Hub,
    /// For the token exchange; built on first use (the CLI's local mode builds an
    /// `AppState` per command and never signs anyone in).
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Web {
    pub(crate) fn new(config: Option<WebConfig>) -> Web {
        let secret = config
            .as_ref()
            .map_or_else(random_secret, |c| c.session_secret.clone());
        let secure = config.as_ref().is_none_or(|c| !c.loopback());
        Web {
            keys: SessionKeys::new(&secret, secure),
            config,
            hub: sse::Hub::default(),
            http: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }
}

/// The web UI's routes, with their security headers.
pub(crate) fn router() -> Router<Shared> {
    let mut r = Router::new()
        .route("/", get(pages::index))
        .route("/login", get(oauth::login))
        .route("/oauth/callback", get(oauth::callback))
        .route("/logout", post(oauth::logout))
        .route("/cases/{id}", get(pages::case))
        .route("/cases/{id}/events", get(sse::events))
        .route("/static/app.js", get(static_js))
        .route("/static/app.css", get(static_css));
    struct Mount(Option<Router<Shared>>);
    impl surface::ActionVisitor for Mount {
        fn visit<A: surface::CaseAction>(&mut self) {
            if let Some(r) = self.0.take() {
                self.0 = Some(r.route(
                    &format!("/cases/{{id}}/{}", A::PATH),
                    post(actions::act::<A>),
                ));
            }
        }
    }
    let mut mount = Mount(Some(r));
    surface::each_action(&mut mount);
    r = mount.0.unwrap_or_default();
    r.layer(middleware::from_fn_with_state((), security_headers))
}

/// The Content-Security-Policy of every page: scripts and styles from this origin only, no
/// inline script, no framing, forms post to this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(State(()): State<()>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn static_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn static_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// An HTML answer with a status.
pub(crate) fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}
