//! GitHub Apps: registered apps (id, slug, the public key their JWTs are checked against),
//! installations, and installation tokens (`POST /app/installations/{id}/access_tokens`).
//!
//! An App authenticates to the `/app/*` routes (and `GET /repos/{o}/{r}/installation`)
//! with an RS256 JWT signed by its private key: `iss` is the App id, `iat` at most 60 s in
//! the future, `exp` in the future and at most ten minutes after now (plus 60 s of clock
//! skew). A minted installation token (`ghs_…`) acts as the App's bot account
//! (`{slug}[bot]`) with the permission the installation grants on its repositories, and
//! stops working at `expires_at` (one hour by default).

use std::collections::BTreeSet;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::{AccountKind, Permission, render_user};
use crate::state::{OpOk, State};

const APP_DOCS: &str = "https://docs.github.com/rest/apps/apps";
/// GitHub refuses JWTs whose `exp` is more than ten minutes ahead.
const MAX_JWT_LIFETIME_SECS: i64 = 600;
/// Clock skew GitHub tolerates on `iat` and `exp`.
const SKEW_SECS: i64 = 60;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A registered GitHub App.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) id: u64,
    pub(crate) slug: String,
    /// Lower-cased login of the App's bot account (`{slug}[bot]`).
    pub(crate) bot: String,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

/// An installation of an App on an account.
#[derive(Clone, Debug)]
pub(crate) struct Installation {
    pub(crate) id: u64,
    pub(crate) app_id: u64,
    /// Lower-cased login of the account the App is installed on.
    pub(crate) account: String,
    /// Lower-cased `owner/name` keys; empty means every repository of the account.
    pub(crate) repos: BTreeSet<String>,
    pub(crate) permission: Permission,
    pub(crate) created_at: DateTime<Utc>,
}

/// What the simulator knows about a token beyond its account.
#[derive(Clone, Debug)]
pub(crate) struct TokenMeta {
    /// When it stops working (installation tokens).
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// The installation it was minted for.
    pub(crate) installation: Option<u64>,
}

/// The verified caller of an `/app` route.
pub(crate) struct AppCaller {
    pub(crate) app_id: u64,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::basic(401, message, APP_DOCS)
}

fn jwt_claim(payload: &Value, name: &str) -> Option<i64> {
    payload.get(name).and_then(Value::as_i64)
}

impl State {
    /// Verifies an App JWT (`Authorization: Bearer <jwt>`) as GitHub does.
    pub(crate) fn verify_app_jwt(
        &self,
        jwt: Option<&str>,
        wall: DateTime<Utc>,
    ) -> Result<AppCaller, ApiError> {
        let undecodable = || unauthorized("A JSON web token could not be decoded");
        let jwt = jwt.ok_or_else(undecodable)?;
        // The issuer names the key to check the signature with.
        let payload_b64 = jwt.split('.').nth(1).ok_or_else(undecodable)?;
        let payload: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload_b64.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(undecodable)?;
        let iss = match payload.get("iss") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| unauthorized("'Issuer' claim ('iss') must be an Integer"))?;
        let app = self
            .apps
            .get(&iss)
            .ok_or_else(|| unauthorized("Integration not found"))?;
        let mut v = Validation::new(Algorithm::RS256);
        // `iss` is a number (the App id), which the library only takes as a string: it is
        // checked above, and `iat` below.
        v.set_required_spec_claims(&["exp"]);
        v.validate_exp = false;
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(jwt, &app.key, &v).map_err(|_| undecodable())?;
        let now = wall.timestamp();
        let iat = jwt_claim(&payload, "iat").ok_or_else(|| {
            unauthorized(
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            )
        })?;
        let exp = jwt_claim(&payload, "exp").ok_or_else(|| {
            unauthorized(
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            )
        })?;
        if iat > now + SKEW_SECS {
            return Err(unauthorized(
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            ));
        }
        if exp <= now - SKEW_SECS {
            return Err(unauthorized(
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            ));
        }
        if exp > now + MAX_JWT_LIFETIME_SECS + SKEW_SECS {
            return Err(unauthorized(
                "'Expiration time' claim ('exp') is too far in the future",
            ));
        }
        Ok(AppCaller { app_id: app.id })
    }

    fn installation_for(&self, caller: &AppCaller, id: u64) -> Result<&Installation, ApiError> {
        self.installations
            .get(&id)
            .filter(|i| i.app_id == caller.app_id)
            .ok_or_else(ApiError::not_found)
    }

    fn installation_repos(&self, inst: &Installation) -> Vec<String> {
        if inst.repos.is_empty() {
            self.repos
                .iter()
                .filter(|(_, r)| r.owner.eq_ignore_ascii_case(&inst.account))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            inst.repos.iter().cloned().collect()
        }
    }

    pub(crate) fn render_installation(&self, inst: &Installation) -> Value {
        let urls = self.urls();
        let account = self
            .accounts
            .get(&inst.account)
            .map_or(Value::Null, |a| render_user(a, &urls));
        let target_type = self
            .accounts
            .get(&inst.account)
            .map_or("Organization", |a| match a.kind {
                AccountKind::User | AccountKind::Bot => "User",
                AccountKind::Organization => "Organization",
            });
        let slug = self
            .apps
            .get(&inst.app_id)
            .map_or_else(String::new, |a| a.slug.clone());
        json!({
            "id": inst.id,
            "account": account,
            "access_tokens_url": format!("{}/app/installations/{}/access_tokens", self.api_base, inst.id),
            "repositories_url": format!("{}/installation/repositories", self.api_base),
            "html_url": format!("{}/settings/installations/{}", self.config.html_base_url, inst.id),
            "app_id": inst.app_id,
            "app_slug": slug,
            "target_id": account.get("id").cloned().unwrap_or(Value::Null),
            "target_type": target_type,
            "permissions": {
                "metadata": "read",
                "repository_advisories": if inst.permission >= Permission::Write { "write" } else { "read" },
            },
            "events": ["repository_advisory"],
            "single_file_name": Value::Null,
            "repository_selection": if inst.repos.is_empty() { "all" } else { "selected" },
            "created_at": crate::model::ts(&inst.created_at),
            "updated_at": crate::model::ts(&inst.created_at),
            "suspended_at": Value::Null,
            "suspended_by": Value::Null,
        })
    }

    /// `GET /app`.
    pub(crate) fn op_get_app(&self, caller: &AppCaller) -> Result<OpOk, ApiError> {
        let app = self
            .apps
            .get(&caller.app_id)
            .ok_or_else(ApiError::not_found)?;
        let owner = self
            .installations
            .values()
            .find(|i| i.app_id == app.id)
            .and_then(|i| self.accounts.get(&i.account))
            .map_or(Value::Null, |a| render_user(a, &self.urls()));
        Ok(OpOk {
            status: 200,
            body: json!({
                "id": app.id,
                "slug": app.slug,
                "node_id": format!("A_kwDO{:08}", app.id),
                "client_id": format!("Iv1.{:016x}", app.id),
                "owner": owner,
                "name": app.slug,
                "description": "",
                "external_url": self.config.html_base_url,
                "html_url": format!("{}/apps/{}", self.config.html_base_url, app.slug),
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": {"metadata": "read", "repository_advisories": "write"},
                "events": ["repository_advisory"],
                "installations_count": self.installations.values().filter(|i| i.app_id == app.id).count(),
            }),
            ..OpOk::default()
        })
    }

    /// `GET /app/installations`.
    pub(crate) fn op_list_installations(&self, caller: &AppCaller) -> Result<OpOk, ApiError> {
        let list: Vec<Value> = self
            .installations
            .values()
            .filter(|i| i.app_id == caller.app_id)
            .map(|i| self.render_installation(i))
            .collect();
        Ok(OpOk {
            status: 200,
            body: Value::Array(list),
            ..OpOk::default()
        })
    }

    /// `GET /app/installations/{id}`.
    pub(crate) fn op_get_installation(
        &self,
        caller: &AppCaller,
        id: &str,
    ) -> Result<OpOk, ApiError> {
        let id: u64 = id.parse().map_err(|_| ApiError::not_found())?;
        let inst = self.installation_for(caller, id)?;
        Ok(OpOk {
            status: 200,
            body: self.render_installation(inst),
            ..OpOk::default()
        })
    }

    /// `GET /repos/{o}/{r}/installation`.
    pub(crate) fn op_repo_installation(
        &self,
        caller: &AppCaller,
        owner: &str,
        name: &str,
    ) -> Result<OpOk, ApiError> {
        let key = format!("{owner}/{name}").to_ascii_lowercase();
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let inst = self
            .installations
            .values()
            .filter(|i| i.app_id == caller.app_id)
            .find(|i| self.installation_repos(i).contains(&key))
            .ok_or_else(ApiError::not_found)?;
        Ok(OpOk {
            status: 200,
            body: self.render_installation(inst),
            repo: Some(repo.full_name()),
            ..OpOk::default()
        })
    }

    /// `POST /app/installations/{id}/access_tokens`: mints a token for the
    /// installation's bot. The body may name `repositories`, `repository_ids` and
    /// `permissions`; named repositories must be covered by the installation (422
    /// otherwise). The token is not down-scoped further (a documented simplification).
    pub(crate) fn op_mint_token(
        &mut self,
        caller: &AppCaller,
        id: &str,
        body: &[u8],
        wall: DateTime<Utc>,
    ) -> Result<OpOk, ApiError> {
        let id: u64 = id.parse().map_err(|_| ApiError::not_found())?;
        let inst = self.installation_for(caller, id)?.clone();
        let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|_| ApiError::bad_request("Problems parsing JSON"))?
        };
        let Value::Object(fields) = &req else {
            return Err(ApiError::bad_request("Problems parsing JSON"));
        };
        let covered = self.installation_repos(&inst);
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("repositories", Value::Array(names)) => {
                    for n in names {
                        let key = n
                            .as_str()
                            .map(|n| format!("{}/{n}", inst.account).to_ascii_lowercase());
                        if key.is_none_or(|k| !covered.contains(&k)) {
                            return Err(ApiError::validation(
                                "There is at least one repository that does not exist or is not accessible to the parent installation.",
                                Some("repositories"),
                                "invalid",
                            ));
                        }
                    }
                }
                ("repository_ids", Value::Array(ids)) => {
                    for i in ids {
                        let ok = i.as_u64().is_some_and(|i| {
                            covered
                                .iter()
                                .any(|k| self.repos.get(k).is_some_and(|r| r.id == i))
                        });
                        if !ok {
                            return Err(ApiError::validation(
                                "There is at least one repository that does not exist or is not accessible to the parent installation.",
                                Some("repository_ids"),
                                "invalid",
                            ));
                        }
                    }
                }
                ("permissions", Value::Object(_))
                | ("repositories" | "repository_ids" | "permissions", Value::Null) => {}
                _ => {
                    return Err(ApiError::validation(
                        &format!("{k:?} is not a permitted key."),
                        Some(k),
                        "invalid",
                    ));
                }
            }
        }
        let bot = self
            .apps
            .get(&inst.app_id)
            .map(|a| a.bot.clone())
            .ok_or_else(ApiError::not_found)?;
        let mut token = String::from("ghs_");
        for _ in 0..36 {
            let i = self.id_rng.random_range(0..TOKEN_ALPHABET.len());
            token.push(char::from(TOKEN_ALPHABET[i]));
        }
        let ttl = chrono::Duration::from_std(self.config.installation_token_ttl)
            .unwrap_or(chrono::Duration::hours(1));
        let expires_at = wall + ttl;
        self.tokens.insert(token.clone(), bot);
        self.token_meta.insert(
            token.clone(),
            TokenMeta {
                expires_at: Some(expires_at),
                installation: Some(inst.id),
            },
        );
        self.tokens_minted += 1;
        Ok(OpOk {
            status: 201,
            body: json!({
                "token": token,
                "expires_at": crate::model::ts(&expires_at),
                "permissions": {
                    "metadata": "read",
                    "repository_advisories": if inst.permission >= Permission::Write { "write" } else { "read" },
                },
                "repository_selection": if inst.repos.is_empty() { "all" } else { "selected" },
            }),
            applied: true,
            ..OpOk::default()
        })
    }
}
