//! GitHub's OAuth web application flow, as a GitHub App's "user-to-server" sign-in uses it:
//!
//! - `GET /login/oauth/authorize?client_id&redirect_uri&state&code_challenge&code_challenge_method`:
//!   a consent page. GitHub knows who is signed in to github.com; the simulator asks: the page
//!   has a `login` field (any user account the simulator knows) and an "Authorize" button.
//! - `POST /login/oauth/authorize` (the consent form): redirects to `redirect_uri` with
//!   `code` and the caller's `state`.
//! - `POST /login/oauth/access_token` (`client_id`, `client_secret`, `code`, `redirect_uri`,
//!   `code_verifier`; form-encoded, JSON or query): exchanges a code, once, for a user token
//!   (`gho_…`) that `GET /user` resolves to the user who consented. PKCE S256 is checked when
//!   the authorize request carried a `code_challenge`. Answers JSON when `Accept` asks for it,
//!   form-encoded otherwise, and errors the way GitHub does (200 with `error`).
//!
//! Register a client with [`Simulator::add_oauth_client`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Simulator;
use crate::model::AccountKind;

/// How long an authorization code may be exchanged (GitHub: ten minutes).
const CODE_TTL: Duration = Duration::from_secs(600);

/// Registered OAuth clients and outstanding authorization codes.
#[derive(Debug, Default)]
pub(crate) struct OAuthState {
    clients: HashMap<String, String>,
    codes: HashMap<String, Code>,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: Option<String>,
    account: String,
    challenge: Option<String>,
    expires: Instant,
}

impl Simulator {
    /// Registers an OAuth client (a GitHub App's client id and secret) for the web flow.
    pub fn add_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.lock()
            .oauth
            .clients
            .insert(client_id.to_owned(), client_secret.to_owned());
    }
}

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/login/oauth/authorize", get(consent).post(authorize))
        .route("/login/oauth/access_token", post(access_token))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Only on the consent form's post.
    login: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn bad(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!("<p>{}</p>", escape(message))),
    )
        .into_response()
}

fn check(sim: &Simulator, q: &AuthorizeQuery) -> Result<(), &'static str> {
    let Some(client_id) = &q.client_id else {
        return Err("client_id is required");
    };
    if !sim.lock().oauth.clients.contains_key(client_id) {
        return Err("no OAuth application has this client_id");
    }
    if let Some(uri) = &q.redirect_uri
        && !(uri.starts_with("http://") || uri.starts_with("https://"))
    {
        return Err("redirect_uri must be an http(s) URL");
    }
    match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (None, _) | (Some(_), Some("S256")) => Ok(()),
        (Some(_), _) => Err("code_challenge_method must be S256"),
    }
}

/// The consent page.
async fn consent(State(sim): State<Simulator>, Query(q): Query<AuthorizeQuery>) -> Response {
    if let Err(e) = check(&sim, &q) {
        return bad(e);
    }
    let users: Vec<String> = {
        let st = sim.lock();
        let mut with_token: Vec<&String> = st.tokens.values().collect();
        with_token.sort();
        with_token.dedup();
        with_token
            .into_iter()
            .filter_map(|k| st.accounts.get(k))
            .filter(|a| a.kind == AccountKind::User)
            .map(|a| a.login.clone())
            .collect()
    };
    let hidden = |name: &str, v: &Option<String>| match v {
        Some(v) => format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(v)
        ),
        None => String::new(),
    };
    let options: String = users
        .iter()
        .map(|u| format!("<option value=\"{}\">", escape(u)))
        .collect();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorize application · GitHub simulator</title></head>\
         <body><h1>Authorize application</h1>\
         <p>The application <code>{client}</code> asks to know who you are.</p>\
         <form method=\"post\" action=\"/login/oauth/authorize\">{h1}{h2}{h3}{h4}{h5}\
         <label>Sign in to the simulator as <input id=\"login\" name=\"login\" list=\"users\" required autocomplete=\"off\"></label>\
         <datalist id=\"users\">{options}</datalist>\
         <button id=\"authorize\" type=\"submit\">Authorize</button></form>\
         <p>Known users: {known}</p></body></html>",
        client = escape(q.client_id.as_deref().unwrap_or_default()),
        h1 = hidden("client_id", &q.client_id),
        h2 = hidden("redirect_uri", &q.redirect_uri),
        h3 = hidden("state", &q.state),
        h4 = hidden("code_challenge", &q.code_challenge),
        h5 = hidden("code_challenge_method", &q.code_challenge_method),
        known = escape(&users.join(", ")),
    );
    Html(page).into_response()
}

/// The consent form's post: issues a code and sends the browser back.
async fn authorize(State(sim): State<Simulator>, body: Bytes) -> Response {
    let Ok(q) = serde_urlencoded_from(&body) else {
        return bad("malformed form");
    };
    if let Err(e) = check(&sim, &q) {
        return bad(e);
    }
    let Some(redirect) = q.redirect_uri.clone() else {
        return bad("redirect_uri is required by the simulator");
    };
    let login = q.login.clone().unwrap_or_default();
    let code = format!("{:032x}", rand::random::<u128>());
    {
        let mut st = sim.lock();
        let key = login.to_ascii_lowercase();
        match st.accounts.get(&key) {
            Some(a) if a.kind == AccountKind::User => {}
            _ => {
                drop(st);
                return bad("no such user");
            }
        }
        let now = Instant::now();
        st.oauth.codes.retain(|_, c| c.expires > now);
        st.oauth.codes.insert(
            code.clone(),
            Code {
                client_id: q.client_id.clone().unwrap_or_default(),
                redirect_uri: Some(redirect.clone()),
                account: key,
                challenge: q.code_challenge.clone(),
                expires: now + CODE_TTL,
            },
        );
    }
    let mut target = url_with(&redirect, "code", &code);
    if let Some(state) = &q.state {
        target = url_with(&target, "state", state);
    }
    Redirect::to(&target).into_response()
}

/// `base` with `key=value` appended to its query.
fn url_with(base: &str, key: &str, value: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{key}={}", form_encode(value))
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn serde_urlencoded_from<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ()> {
    // Through JSON, so that unknown fields and repeated ones are tolerated alike.
    let pairs: Vec<(String, String)> = form_pairs(body);
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|_| ())
}

/// Decodes `application/x-www-form-urlencoded` (malformed: nothing).
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// `POST /login/oauth/access_token`.
async fn access_token(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let is_json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut req: TokenRequest = if is_json_body {
        serde_json::from_slice(&body).unwrap_or_default()
    } else {
        serde_urlencoded_from(&body).unwrap_or_default()
    };
    if let Some(q) = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<TokenRequest>(q).ok())
    {
        req.client_id = req.client_id.or(q.client_id);
        req.client_secret = req.client_secret.or(q.client_secret);
        req.code = req.code.or(q.code);
        req.redirect_uri = req.redirect_uri.or(q.redirect_uri);
        req.code_verifier = req.code_verifier.or(q.code_verifier);
    }
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let answer = |pairs: Vec<(&str, String)>| -> Response {
        if json {
            let map: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect();
            axum::Json(serde_json::Value::Object(map)).into_response()
        } else {
            let text: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={}", form_encode(&v)))
                .collect();
            (
                [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
                text.join("&"),
            )
                .into_response()
        }
    };
    let error = |code: &str, description: &str| {
        answer(vec![
            ("error", code.to_owned()),
            ("error_description", description.to_owned()),
        ])
    };
    let mut st = sim.lock();
    let client_ok = match (&req.client_id, &req.client_secret) {
        (Some(id), Some(secret)) => st.oauth.clients.get(id).is_some_and(|s| s == secret),
        _ => false,
    };
    if !client_ok {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    // A code is good for one attempt, right or wrong.
    let code = req.code.as_deref().and_then(|c| st.oauth.codes.remove(c));
    let bad_code = || {
        error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        )
    };
    let Some(code) = code else {
        return bad_code();
    };
    if code.expires <= Instant::now() || Some(&code.client_id) != req.client_id.as_ref() {
        return bad_code();
    }
    if let (Some(given), Some(expected)) = (&req.redirect_uri, &code.redirect_uri)
        && given != expected
    {
        return error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &code.challenge {
        let ok = req.code_verifier.as_deref().is_some_and(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
                == *challenge
        });
        if !ok {
            return error(
                "invalid_grant",
                "The code_verifier does not match the code_challenge.",
            );
        }
    }
    let token = format!("gho_{:032x}", rand::random::<u128>());
    st.tokens.insert(token.clone(), code.account);
    drop(st);
    answer(vec![
        ("access_token", token),
        ("token_type", "bearer".to_owned()),
        ("scope", String::new()),
    ])
}

#[cfg(test)]
mod tests {
    use super::form_pairs;

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_pairs(b"a=1+2&b=%3Cx%3E&c"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "<x>".into()),
                ("c".into(), String::new())
            ]
        );
    }
}
