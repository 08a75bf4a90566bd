//! Callers: the bearer token, its resolution to a principal through GitHub (the same
//! `lockstep_runtime::identity::principal` the CLI uses), and a short-lived cache of resolved
//! principals keyed by a hash of the token and of what was asked.
//!
//! The token itself is kept only in a `SecretString` for the length of the request; the cache
//! holds SHA-256 digests, never tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use lockstep_core::input::Principal;
use lockstep_core::vuln::Credit;
use lockstep_core::{Case, RepoId, Workflow};
use lockstep_github::{Credentials, GithubClient, GithubConfig};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Longest token accepted (GitHub's are well under 300 characters).
const MAX_TOKEN: usize = 1024;

/// Longest time a resolved caller is reused: GitHub permissions that were revoked stop
/// counting within this time.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3600);

/// Entries kept in the principal cache before it is pruned.
const MAX_CACHED: usize = 4096;

/// The caller's GitHub token, from `Authorization: Bearer <token>` (or GitHub's own
/// `token <token>` form). Missing or malformed → 401.
pub(crate) struct Bearer(SecretString);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let missing = || ApiError::unauthorized("missing Authorization: Bearer <GitHub token>");
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(missing)?
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
            return Err(ApiError::unauthorized(
                "the Authorization scheme must be Bearer",
            ));
        }
        let token = token.trim();
        if token.is_empty()
            || token.len() > MAX_TOKEN
            || !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::unauthorized("malformed bearer token"));
        }
        Ok(Bearer(SecretString::from(token.to_owned())))
    }
}

/// Who is asking: a bearer token (the JSON API and the CLI), or a login a web session
/// vouches for (it was resolved through `GET /user` at sign-in; the token was then dropped).
/// Either way the same principal lookup and the core decide.
pub(crate) enum Caller {
    /// `Authorization: Bearer <token>`.
    Token(Bearer),
    /// A signed-in web session's login.
    Session(lockstep_core::Login),
}

impl From<Bearer> for Caller {
    fn from(b: Bearer) -> Self {
        Caller::Token(b)
    }
}

/// Resolves callers, caching the result per (token, workflow, repositories) for a short time.
pub(crate) struct Identities {
    service: std::sync::Arc<GithubClient>,
    config: GithubConfig,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, Principal)>>,
    /// `GET /user` lookups made (cache misses), for tests and metrics.
    lookups: std::sync::atomic::AtomicU64,
}

impl Identities {
    pub(crate) fn new(
        service: std::sync::Arc<GithubClient>,
        config: GithubConfig,
        ttl: Duration,
    ) -> Self {
        Self {
            service,
            config,
            ttl,
            cache: Mutex::new(HashMap::new()),
            lookups: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sets the TTL, capped at [`MAX_TTL`].
    pub(crate) fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl.min(MAX_TTL);
    }

    pub(crate) fn lookups(&self) -> u64 {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key(caller: &Caller, workflow: Option<&Workflow>, repos: &[RepoId]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"lockstep-principal-v1\0");
        match caller {
            Caller::Token(token) => h.update(Sha256::digest(token.0.expose_secret().as_bytes())),
            Caller::Session(login) => {
                h.update(b"session\0");
                h.update(login.as_str().as_bytes());
            }
        }
        match workflow {
            // The workflow decides who is a coordinator and which repositories defer to
            // GitHub's permissions, so it is part of the question.
            Some(w) => h.update(serde_json::to_vec(w).unwrap_or_default()),
            None => h.update(b"\0none"),
        }
        for r in repos {
            h.update(b"\0");
            h.update(r.as_str().as_bytes());
        }
        h.finalize().into()
    }

    /// The principal behind `token`, with GitHub's admin/maintain permissions gathered for
    /// `repos` where `workflow` names no maintainers (none when `workflow` is `None`: the
    /// login alone, which authenticates the caller).
    pub(crate) async fn principal(
        &self,
        caller: &Caller,
        workflow: Option<&Workflow>,
        repos: &[RepoId],
    ) -> Result<Principal, ApiError> {
        let key = Self::key(caller, workflow, repos);
        let now = Instant::now();
        if let Some((expires, p)) = self.lock().get(&key)
            && *expires > now
        {
            return Ok(p.clone());
        }
        // The login behind the token is asked once per TTL, whatever the question: the
        // authentication and the case's own lookup share it.
        let login_key = Self::key(caller, None, &[]);
        let token = match caller {
            Caller::Token(t) => t,
            Caller::Session(login) => {
                let principal = lockstep_runtime::identity::principal_of(
                    login.clone(),
                    &self.service,
                    workflow,
                    repos,
                )
                .await
                .map_err(ApiError::identity)?;
                self.insert(key, now, principal.clone());
                return Ok(principal);
            }
        };
        let cached_login = self
            .lock()
            .get(&login_key)
            .filter(|(expires, _)| *expires > now)
            .and_then(|(_, p)| match &p.actor {
                lockstep_core::Actor::User(l) => Some(l.clone()),
                lockstep_core::Actor::Automation => None,
            });
        let login = match cached_login {
            Some(l) => l,
            None => {
                let mut config = self.config.clone();
                config.credentials = Credentials::Token(token.0.clone());
                let caller = GithubClient::new(config).map_err(|e| {
                    tracing::error!(error = %e, "cannot build a GitHub client for the caller");
                    ApiError::internal("internal error: cannot build a GitHub client")
                })?;
                self.lookups
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let login = lockstep_runtime::identity::login(&caller)
                    .await
                    .map_err(ApiError::identity)?;
                self.insert(login_key, now, Principal::user(login.clone()));
                login
            }
        };
        let principal =
            lockstep_runtime::identity::principal_of(login, &self.service, workflow, repos)
                .await
                .map_err(ApiError::identity)?;
        self.insert(key, now, principal.clone());
        Ok(principal)
    }

    fn insert(&self, key: [u8; 32], now: Instant, principal: Principal) {
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (expires, _)| *expires > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (now + self.ttl, principal));
    }

    /// Checks that every credited login is a GitHub user (422 otherwise).
    pub(crate) async fn check_credits(&self, credits: &[Credit]) -> Result<(), ApiError> {
        use lockstep_runtime::identity::CreditError;
        match lockstep_runtime::identity::check_credits(&self.service, credits).await {
            Ok(()) => Ok(()),
            Err(e @ CreditError::Unknown(_)) => Err(ApiError::unprocessable(e)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_GATEWAY, e)),
        }
    }

    /// Authenticates the caller: their login, without any repository permission.
    pub(crate) async fn authenticate(&self, caller: &Caller) -> Result<Principal, ApiError> {
        self.principal(caller, None, &[]).await
    }

    /// The login behind a user's token (`GET /user`, with the same configured API base as
    /// every caller's), for the web sign-in. Not cached: it runs once per sign-in.
    pub(crate) async fn login_of(
        &self,
        token: SecretString,
    ) -> Result<lockstep_core::Login, ApiError> {
        let mut config = self.config.clone();
        config.credentials = Credentials::Token(token);
        let caller = GithubClient::new(config).map_err(|e| {
            tracing::error!(error = %e, "cannot build a GitHub client for the caller");
            ApiError::internal("internal error: cannot build a GitHub client")
        })?;
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lockstep_runtime::identity::login(&caller)
            .await
            .map_err(ApiError::identity)
    }

    /// The principal for acting on (or reading) `case`: permissions gathered for `repos`.
    pub(crate) async fn for_case(
        &self,
        caller: &Caller,
        case: &Case,
        repos: &[RepoId],
    ) -> Result<Principal, ApiError> {
        self.principal(caller, Some(&case.workflow), repos).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Principal)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
