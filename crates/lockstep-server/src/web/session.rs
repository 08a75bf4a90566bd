//! The session: a cookie encrypted and authenticated with AES-256-GCM (the `cookie` crate's
//! private jar), holding the user's login, a random session id and the expiry. It never holds
//! the GitHub token: the token is used once at sign-in, to learn the login, and dropped.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/` and `Secure` unless the public address is a
//! loopback one. The CSRF token of a session is an HMAC of its id under a key of its own;
//! every form carries it, and every post is checked against it (and against `Origin`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key, SameSite};
use hmac::{Hmac, Mac};
use lockstep_core::Login;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Shared;

/// The session cookie's name.
pub(crate) const SESSION: &str = "lockstep_session";
/// The sign-in's pending `state` and PKCE verifier.
pub(crate) const OAUTH: &str = "lockstep_oauth";
/// The result of the last action, shown once.
pub(crate) const FLASH: &str = "lockstep_flash";

/// The keys, derived from the configured secret.
pub(crate) struct SessionKeys {
    cookie: Key,
    csrf: [u8; 32],
    secure: bool,
}

impl SessionKeys {
    pub(crate) fn new(secret: &SecretString, secure: bool) -> SessionKeys {
        let master = Sha256::digest(secret.expose_secret().as_bytes());
        let csrf = Sha256::digest([b"lockstep-csrf-v1\0".as_slice(), &master].concat());
        SessionKeys {
            cookie: Key::derive_from(&master),
            csrf: csrf.into(),
            secure,
        }
    }

    /// A `Set-Cookie` value for `name` holding `value`, encrypted, for `max_age`.
    pub(crate) fn set<T: Serialize>(
        &self,
        name: &'static str,
        value: &T,
        max_age: Duration,
    ) -> HeaderValue {
        let json = serde_json::to_string(value).unwrap_or_default();
        let mut jar = CookieJar::new();
        let cookie = Cookie::build((name, json))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        jar.private_mut(&self.cookie).add(cookie);
        jar.get(name)
            .and_then(|c| HeaderValue::from_str(&c.encoded().to_string()).ok())
            .unwrap_or_else(|| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that removes `name`.
    pub(crate) fn clear(&self, name: &'static str) -> HeaderValue {
        let cookie = Cookie::build((name, ""))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build();
        HeaderValue::from_str(&cookie.encoded().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The decrypted value of cookie `name`, if it is there, authentic and well-formed.
    pub(crate) fn get<T: DeserializeOwned>(&self, headers: &HeaderMap, name: &str) -> Option<T> {
        let mut jar = CookieJar::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for c in Cookie::split_parse_encoded(text.to_owned()).flatten() {
                if c.name() == name {
                    jar.add_original(c.into_owned());
                }
            }
        }
        let c = jar.private(&self.cookie).get(name)?;
        serde_json::from_str(c.value()).ok()
    }

    /// The CSRF token of a session id.
    pub(crate) fn csrf(&self, sid: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.csrf)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(sid.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is the CSRF token of `sid`.
    pub(crate) fn csrf_ok(&self, sid: &str, token: &str) -> bool {
        self.csrf(sid).as_bytes().ct_eq(token.as_bytes()).into()
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random URL-safe string of 32 bytes of entropy.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signed-in user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// Their GitHub login.
    pub(crate) login: String,
    /// A random id: what the CSRF token is bound to.
    pub(crate) sid: String,
    /// When the session ends (Unix seconds).
    pub(crate) exp: u64,
}

impl Session {
    pub(crate) fn login(&self) -> Option<Login> {
        self.login.parse().ok()
    }

    /// What the store keeps of a signed-out session: a hash of its id.
    pub(crate) fn hash(&self) -> String {
        Sha256::digest(self.sid.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The session, if the request carries a valid one that has not expired and was not signed
/// out.
pub(crate) struct MaybeSession(pub(crate) Option<Session>);

impl FromRequestParts<Shared> for MaybeSession {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Self::Rejection> {
        let session: Option<Session> = app.web.keys.get(&parts.headers, SESSION);
        let Some(session) = session.filter(|s| s.exp > unix_now() && s.login().is_some()) else {
            return Ok(MaybeSession(None));
        };
        match app.store.session_signed_out(&session.hash()).await {
            Ok(false) => Ok(MaybeSession(Some(session))),
            Ok(true) => Ok(MaybeSession(None)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check whether a session was signed out");
                Ok(MaybeSession(None))
            }
        }
    }
}

/// A message shown once on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    pub(crate) ok: bool,
    pub(crate) text: String,
}
