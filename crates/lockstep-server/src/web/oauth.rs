//! Sign-in with GitHub: the OAuth web application flow of the GitHub App, with `state` and
//! PKCE (S256).
//!
//! 1. `GET /login?next=/cases/ID`: draws `state` and a PKCE verifier, keeps them (and where to
//!    go back) in an encrypted cookie for ten minutes, and sends the browser to
//!    `{web_url}/login/oauth/authorize`.
//! 2. `GET /oauth/callback?code&state`: checks `state` against the cookie, exchanges the code
//!    (with the client secret and the verifier) at `{web_url}/login/oauth/access_token`,
//!    asks `GET /user` who the token belongs to, drops the token, and sets the session.
//! 3. `POST /logout` (with the CSRF token): ends the session.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pages;
use super::session::{MaybeSession, OAUTH, SESSION, Session, random_token, unix_now};
use crate::Shared;

/// How long a sign-in may take between `/login` and the callback.
const PENDING_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    next: String,
    exp: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Where to go after sign-in: a path of this site only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains(['\\', '\r', '\n'])
                && n.len() <= 200 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn encode(v: &str) -> String {
    serde_urlencoded::to_string([("v", v)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// `GET /login`.
pub(crate) async fn login(State(app): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let Some(config) = &app.web.config else {
        return pages::not_configured();
    };
    let pending = Pending {
        state: random_token(),
        verifier: random_token(),
        next: safe_next(q.next.as_deref()),
        exp: unix_now() + PENDING_TTL.as_secs(),
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(pending.verifier.as_bytes()));
    let url = format!(
        "{}/login/oauth/authorize?client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256",
        config.web_url,
        encode(&config.client_id),
        encode(&format!("{}/oauth/callback", config.public_url)),
        encode(&pending.state),
        encode(&challenge),
    );
    let mut r = see_other(&url);
    r.headers_mut().append(
        header::SET_COOKIE,
        app.web.keys.set(OAUTH, &pending, PENDING_TTL),
    );
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oauth/callback`.
pub(crate) async fn callback(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(config) = &app.web.config else {
        return pages::not_configured();
    };
    let keys = &app.web.keys;
    let refuse = |status: StatusCode, why: &str| {
        let mut r = pages::sign_in_error(status, why);
        r.headers_mut()
            .append(header::SET_COOKIE, keys.clear(OAUTH));
        r
    };
    let pending: Option<Pending> = keys.get(&headers, OAUTH);
    let Some(pending) = pending.filter(|p| p.exp > unix_now()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was started in another browser; sign in again.",
        );
    };
    if let Some(e) = q.error {
        tracing::info!(error = %e, "GitHub sign-in refused");
        return refuse(
            StatusCode::FORBIDDEN,
            "GitHub did not authorize the sign-in.",
        );
    }
    let state_ok = q.state.as_deref().is_some_and(|s| {
        subtle::ConstantTimeEq::ct_eq(s.as_bytes(), pending.state.as_bytes()).into()
    });
    let (true, Some(code)) = (state_ok, q.code) else {
        tracing::warn!("GitHub sign-in callback with a wrong state");
        return refuse(
            StatusCode::BAD_REQUEST,
            "The sign-in's state does not match; sign in again.",
        );
    };
    let answer = app
        .web
        .http()
        .post(format!("{}/login/oauth/access_token", config.web_url))
        .header(header::ACCEPT, "application/json")
        .form(&[
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.expose_secret()),
            ("code", code.as_str()),
            (
                "redirect_uri",
                format!("{}/oauth/callback", config.public_url).as_str(),
            ),
            ("code_verifier", pending.verifier.as_str()),
        ])
        .send()
        .await;
    let answer: TokenAnswer = match answer {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "GitHub's token answer does not parse");
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "GitHub's answer to the sign-in was not understood.",
                );
            }
        },
        Ok(r) => {
            tracing::warn!(
                status = r.status().as_u16(),
                "GitHub refused the token exchange"
            );
            return refuse(StatusCode::BAD_GATEWAY, "GitHub refused the sign-in.");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach GitHub for the token exchange");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "GitHub could not be reached to finish the sign-in.",
            );
        }
    };
    let Some(token) = answer.access_token.map(SecretString::from) else {
        tracing::info!(
            error = answer.error.as_deref().unwrap_or("none"),
            description = answer.error_description.as_deref().unwrap_or(""),
            "GitHub refused the code"
        );
        return refuse(
            StatusCode::FORBIDDEN,
            "GitHub refused the sign-in code; sign in again.",
        );
    };
    let login = match app.identities.login_of(token).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot learn who signed in");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "GitHub could not say who signed in.",
            );
        }
    };
    tracing::info!(login = %login, "signed in");
    let session = Session {
        login: login.to_string(),
        sid: random_token(),
        exp: unix_now() + config.session_ttl.as_secs(),
    };
    let mut r = see_other(&pending.next);
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, keys.clear(OAUTH));
    h.append(
        header::SET_COOKIE,
        keys.set(SESSION, &session, config.session_ttl),
    );
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(app): State<Shared>,
    MaybeSession(session): MaybeSession,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Response {
    if let Some(s) = &session {
        if !app.web.keys.csrf_ok(&s.sid, &form.csrf) {
            return pages::error_page(StatusCode::FORBIDDEN, "The form is stale; reload the page.");
        }
        // The cookie is stateless: a copy of it stops working once this is recorded.
        let expires = lockstep_core::Timestamp::from_millis(
            i64::try_from(s.exp.saturating_mul(1000)).unwrap_or(i64::MAX),
        )
        .unwrap_or(lockstep_core::Timestamp::MAX);
        if let Err(e) = app.store.sign_out_session(&s.hash(), expires).await {
            tracing::warn!(error = %e, "cannot record a sign-out");
            return pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing out failed; try again.",
            );
        }
        tracing::info!(login = %s.login, "signed out");
    }
    let mut r = see_other("/");
    r.headers_mut()
        .append(header::SET_COOKIE, app.web.keys.clear(SESSION));
    r
}
