//! How a case command reaches the handlers of the HTTP API: in-process over the local
//! database (local mode), or over the network to a shared `lockstep serve` (remote mode).
//!
//! Both modes send the same request types (`lockstep_server::surface`) to the same handlers
//! and read the same answers, so outputs, refusals and error texts are the same in both.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lockstep_core::CaseId;
use lockstep_github::{GithubClient, SecretString};
use lockstep_server::surface::{Acted, CaseAction, ErrorBody};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::commands::Refused;
use crate::config::Settings;

enum Transport {
    /// The API's router, run in this process over the local database.
    Local(axum::Router),
    /// A `lockstep serve` at this base URL (no trailing slash).
    Remote { base: String, http: reqwest::Client },
}

/// The caller's way to the API, with their GitHub token.
pub(crate) struct Client {
    transport: Transport,
    token: SecretString,
}

impl Client {
    /// Local mode: the database of `LOCKSTEP_DATABASE_URL`, the service's GitHub identity for
    /// permission lookups, and the caller's `GITHUB_TOKEN`.
    pub(crate) async fn local(settings: &Settings) -> anyhow::Result<Client> {
        let token = settings.local_token()?;
        let store = lockstep_store::Store::open(&settings.database_url).await?;
        let config = settings.github()?;
        let github = Arc::new(GithubClient::new(config.clone())?);
        // Whoever runs the CLI against the database is an operator: workflow files are theirs.
        let state = lockstep_server::AppState::new(store, github, config)
            .with_workflows_dir(settings.workflows_dir.clone())
            .with_inline_workflows(true);
        Ok(Client {
            transport: Transport::Local(lockstep_server::router(state)),
            token,
        })
    }

    /// Remote mode: the `lockstep serve` at `url`. Opens no database.
    pub(crate) fn remote(url: &str, settings: &Settings) -> anyhow::Result<Client> {
        let base = check_server_url(url)?;
        let token = settings.remote_token()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("lockstep-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Client {
            transport: Transport::Remote { base, http },
            token,
        })
    }

    /// Sends one request; the status and the body.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(http::StatusCode, Vec<u8>)> {
        match &self.transport {
            Transport::Local(router) => {
                use tower::ServiceExt as _;
                let auth =
                    http::HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
                        .map_err(|_| {
                            anyhow::anyhow!("GITHUB_TOKEN holds characters a token cannot")
                        })?;
                let request = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header(http::header::AUTHORIZATION, auth)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(body.unwrap_or_default()))
                    .context("cannot build the request")?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .unwrap_or_else(|never| match never {});
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .context("cannot read the answer")?;
                Ok((status, bytes.to_vec()))
            }
            Transport::Remote { base, http } => {
                let url = format!("{base}{path}");
                let mut request = http
                    .request(method, &url)
                    .bearer_auth(self.token.expose_secret());
                if let Some(body) = body {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body);
                }
                let response = request.send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot reach the Lockstep server at {base}: {}",
                        root_cause(&e)
                    )
                })?;
                let status = response.status();
                let bytes = response.bytes().await.map_err(|e| {
                    anyhow::anyhow!(
                        "the Lockstep server at {base} broke off its answer: {}",
                        root_cause(&e)
                    )
                })?;
                Ok((status, bytes.to_vec()))
            }
        }
    }

    /// Where the answers come from, for messages.
    fn origin(&self) -> String {
        match &self.transport {
            Transport::Local(_) => "the local API".to_owned(),
            Transport::Remote { base, .. } => format!("the Lockstep server at {base}"),
        }
    }

    /// Decodes an answer: the document on success; the server's own one-line error otherwise
    /// (a refusal, 403, as [`Refused`]).
    fn decode<T: DeserializeOwned>(
        &self,
        status: http::StatusCode,
        body: &[u8],
    ) -> anyhow::Result<T> {
        if status.is_success() {
            return serde_json::from_slice(body).map_err(|e| {
                anyhow::anyhow!(
                    "{} answered with a document this lockstep cannot read: {e}",
                    self.origin()
                )
            });
        }
        let message = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => b.error,
            Err(_) => format!(
                "{} answered {} without an error message",
                self.origin(),
                status
            ),
        };
        if status == http::StatusCode::FORBIDDEN {
            return Err(Refused(message).into());
        }
        Err(anyhow::Error::msg(message))
    }

    /// `GET path`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let (status, body) = self.send(http::Method::GET, path, None).await?;
        self.decode(status, &body)
    }

    /// `POST path` with `body` as JSON.
    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        let (status, body) = self.send(http::Method::POST, path, Some(body)).await?;
        self.decode(status, &body)
    }

    /// Runs an action on `case`.
    pub(crate) async fn act<A: CaseAction>(
        &self,
        case: &CaseId,
        action: &A,
    ) -> anyhow::Result<Acted> {
        self.post(&action_path::<A>(case), action).await
    }
}

/// `/api/cases/{case}/{A::PATH}`.
pub(crate) fn action_path<A: CaseAction>(case: &CaseId) -> String {
    format!("/api/cases/{case}/{}", A::PATH)
}

/// The innermost cause of an error, which says what happened (connection refused, …).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Checks a server URL: `https://`, or `http://` to a loopback address only (a token sent
/// over plain HTTP crosses the network in clear). Returns it without a trailing slash.
pub(crate) fn check_server_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| anyhow::anyhow!("server URL {url:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        anyhow::bail!(
            "server URL {url:?} must not carry credentials; the GitHub token is sent instead"
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        anyhow::bail!("server URL {url:?} must not have a query or a fragment");
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                anyhow::bail!(
                    "refusing {url}: plain http:// to a host other than loopback would send your GitHub token in clear; use https://"
                );
            }
        }
        other => anyhow::bail!("server URL {url:?}: scheme {other:?} is not http or https"),
    }
    if parsed.host().is_none() {
        anyhow::bail!("server URL {url:?} names no host");
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(
            check_server_url("http://127.0.0.1:8080/").unwrap_or_default(),
            "http://127.0.0.1:8080"
        );
        assert!(check_server_url("http://localhost:1").is_ok());
        assert!(check_server_url("http://[::1]:1").is_ok());
        assert!(check_server_url("https://lockstep.example.org/base/").is_ok());
        for bad in [
            "http://lockstep.example.org",
            "http://10.0.0.1:8080",
            "http://127.0.0.1.example.org",
            "ftp://127.0.0.1",
            "https://user:pw@example.org",
            "not a url",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
        let e = check_server_url("http://lockstep.example.org")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("in clear"), "{e}");
    }
}
