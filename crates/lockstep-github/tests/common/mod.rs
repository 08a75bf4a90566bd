//! Shared fixtures: a seeded simulator, clients, and a capturing proxy that also plays
//! GitHub's App token endpoint.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use lockstep_github::{
    ApiBase, Credentials, Credit, CreditType, Ecosystem, GithubClient, GithubConfig, NewAdvisory,
    PacingConfig, Rating, RepoName, RetryConfig, SecretString, Severity, Vulnerability,
};
use lockstep_sim::{Permission, RunningSim, SecondaryLimits, SimConfig, Simulator, spawn_local};
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "ghp_AdminTokenLockstepTest0123456789abcd";
pub const WRITER_TOKEN: &str = "ghp_WriterTokenLockstepTest0123456789abc";
pub const OUTSIDER_TOKEN: &str = "ghp_OutsiderTokenLockstepTest012345678ab";
pub const REPO: &str = "acme/widget";
pub const REPO2: &str = "acme/gadget";
pub const PRIVATE_REPO: &str = "acme/secret";

pub fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

pub fn quiet_config() -> SimConfig {
    SimConfig {
        secondary: SecondaryLimits::unlimited(),
        ..SimConfig::default()
    }
}

/// Users: alice (admin), bob (write), mallory (no access), monalisa (credited).
pub fn seeded(config: SimConfig) -> Simulator {
    let sim = Simulator::new(config);
    sim.add_user("alice", ADMIN_TOKEN);
    sim.add_user("bob", WRITER_TOKEN);
    sim.add_user("mallory", OUTSIDER_TOKEN);
    sim.add_user("monalisa", "tok-monalisa");
    for r in [REPO, REPO2] {
        sim.add_repo(r).unwrap();
        sim.grant(r, "alice", Permission::Admin).unwrap();
        sim.grant(r, "bob", Permission::Write).unwrap();
    }
    sim.add_private_repo(PRIVATE_REPO).unwrap();
    sim.grant(PRIVATE_REPO, "alice", Permission::Admin).unwrap();
    sim
}

pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        read_retries: 4,
        read_backoff: Duration::from_millis(2),
        rate_limit_retries: 4,
        secondary_backoff: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
        write_attempts: 12,
        write_backoff: Duration::from_millis(2),
    }
}

pub fn config(base: &str, token: &str) -> GithubConfig {
    let mut c = GithubConfig::new(
        ApiBase::parse(base, &[]).unwrap(),
        Credentials::Token(SecretString::from(token.to_owned())),
    );
    c.pacing = PacingConfig::unlimited();
    c.retry = fast_retry();
    c.connect_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(5);
    c
}

pub fn client(base: &str, token: &str) -> GithubClient {
    GithubClient::new(config(base, token)).unwrap()
}

pub async fn start() -> (Simulator, RunningSim, GithubClient) {
    let sim = seeded(quiet_config());
    let running = spawn_local(sim.clone()).await.unwrap();
    let c = client(&running.base_url, ADMIN_TOKEN);
    (sim, running, c)
}

pub fn marker(case: &str, repo: &str) -> String {
    format!("<!-- lockstep:{case}:{repo} -->")
}

pub fn draft(summary: &str, marker: &str) -> NewAdvisory {
    NewAdvisory {
        summary: summary.to_owned(),
        description: format!("Embargoed details of {summary}.\n\n{marker}"),
        rating: Some(Rating::Severity(Severity::High)),
        cve_id: None,
        cwe_ids: vec!["CWE-79".into()],
        credits: vec![Credit {
            login: "monalisa".into(),
            credit_type: CreditType::Reporter,
        }],
        vulnerabilities: vec![Vulnerability {
            ecosystem: Ecosystem::Npm,
            name: "widget".into(),
            vulnerable_version_range: Some("< 1.2.3".into()),
            patched_versions: None,
            vulnerable_functions: vec![],
        }],
        start_private_fork: false,
    }
}

// ------------------------------------------------------------------ capturing proxy

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
}

#[derive(Clone)]
pub struct ProxyState {
    pub sim: Simulator,
    pub upstream: String,
    pub captured: Arc<Mutex<Vec<Captured>>>,
    pub mints: Arc<AtomicU64>,
    /// Lifetime of minted installation tokens.
    pub token_ttl: Arc<Mutex<chrono::Duration>>,
    pub public_key_pem: Arc<Vec<u8>>,
    pub app_id: u64,
    pub installation_id: u64,
    http: reqwest::Client,
}

pub struct Proxy {
    pub state: ProxyState,
    pub base_url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn captured(&self) -> Vec<Captured> {
        self.state.captured.lock().unwrap().clone()
    }
    pub fn mints(&self) -> u64 {
        self.state.mints.load(Ordering::SeqCst)
    }
}

pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
pub const APP_BOT: &str = "lockstep-app";

pub fn app_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .unwrap()
}

async fn mint(st: &ProxyState, req: Request) -> Response {
    use octocrab::jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let jwt = auth.strip_prefix("Bearer ").unwrap_or_default();
    let key = DecodingKey::from_rsa_pem(&st.public_key_pem).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_required_spec_claims(&["exp"]);
    v.validate_aud = false;
    let decoded = decode::<Value>(jwt, &key, &v);
    let ok = decoded
        .as_ref()
        .ok()
        .is_some_and(|d| d.claims["iss"].to_string().trim_matches('"') == st.app_id.to_string());
    if !ok {
        let why = decoded.err().map(|e| e.to_string()).unwrap_or_default();
        return (
            http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": format!("A JSON web token could not be decoded: {why}")})),
        )
            .into_response();
    }
    let n = st.mints.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ghs_MintedInstallationToken{n:010}abcdef");
    st.sim.add_user(APP_BOT, &token);
    let ttl = *st.token_ttl.lock().unwrap();
    let expires = chrono::Utc::now() + ttl;
    (
        http::StatusCode::CREATED,
        axum::Json(json!({
            "token": token,
            "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": {},
            "repository_selection": "all"
        })),
    )
        .into_response()
}

async fn forward(State(st): State<ProxyState>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if req.method() == http::Method::POST
        && path == format!("/app/installations/{}/access_tokens", st.installation_id)
    {
        return mint(&st, req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 22)
        .await
        .unwrap_or_default();
    st.captured.lock().unwrap().push(Captured {
        method: parts.method.to_string(),
        path: path.clone(),
        body: bytes.to_vec(),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let resp = st
        .http
        .request(parts.method.clone(), format!("{}{path}", st.upstream))
        .headers(headers)
        .body(bytes)
        .send()
        .await;
    match resp {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.bytes().await.unwrap_or_default();
            let mut out = Response::new(Body::from(body));
            *out.status_mut() = status;
            for (k, v) in &headers {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    out.headers_mut().append(k, v.clone());
                }
            }
            out
        }
        Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// A proxy in front of `running` that records every request and serves the App
/// installation-token endpoint (minting tokens the simulator knows).
pub async fn proxy(sim: &Simulator, running: &RunningSim) -> Proxy {
    let pub_pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pub.pem"
    ))
    .unwrap();
    sim.add_user(APP_BOT, "ghs_unused_placeholder_token_for_the_bot");
    for r in [REPO, REPO2] {
        sim.grant(r, APP_BOT, Permission::Admin).unwrap();
    }
    let state = ProxyState {
        sim: sim.clone(),
        upstream: running.base_url.clone(),
        captured: Arc::new(Mutex::new(Vec::new())),
        mints: Arc::new(AtomicU64::new(0)),
        token_ttl: Arc::new(Mutex::new(chrono::Duration::minutes(60))),
        public_key_pem: Arc::new(pub_pem),
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(forward).with_state(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Proxy {
        state,
        base_url: format!("http://{addr}"),
        _task: task,
    }
}
