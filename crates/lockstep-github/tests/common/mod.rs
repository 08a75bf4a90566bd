//! Shared fixtures: a seeded simulator whose every response is checked, clients, a GitHub
//! App registered in the simulator, and a capturing proxy.
//!
//! **Every response is checked.** [`serve`] (and so [`start`]) installs an observer on the
//! simulator that checks each response it produces, on a background thread: the
//! `x-ratelimit-*` headers are present; the status and body validate against the schema
//! GitHub's OpenAPI description gives for the operation (`basic-error` for an error status
//! the operation does not list, no body for a 304); and answers of endpoints outside the
//! description (`/user`, collaborator permissions, `/rate_limit`, the App routes)
//! deserialise into octocrab's models. The [`Served`] handle fails the test when it is
//! dropped (or [`Served::finish`]ed) if any response did not pass.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use lockstep_github::{
    ApiBase, Credentials, Credit, CreditType, Ecosystem, GithubClient, GithubConfig, NewAdvisory,
    PacingConfig, Rating, RepoName, RetryConfig, SecretString, Severity, Vulnerability,
};
use lockstep_sim::oracle::{Oracle, Verdict};
use lockstep_sim::{
    Observed, Permission, RunningSim, SecondaryLimits, SimConfig, Simulator, spawn_local,
};
use serde_json::Value;

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
    // Generous: the tests share two cores with other builds, and a debug build signs App
    // JWTs slowly. (A timed-out write would be an "outcome unknown" and fail a test.)
    c.connect_timeout = Duration::from_secs(10);
    c.read_timeout = Duration::from_secs(30);
    c
}

pub fn client(base: &str, token: &str) -> GithubClient {
    GithubClient::new(config(base, token)).unwrap()
}

pub async fn start() -> (Simulator, Served, GithubClient) {
    let sim = seeded(quiet_config());
    let running = serve(&sim).await;
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

// ------------------------------------------------------------------ checked serving

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| Oracle::load().unwrap())
}

const RATE_HEADERS: [&str; 5] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
];

fn octocrab_reads<T: serde::de::DeserializeOwned>(o: &Observed) -> Result<(), String> {
    let body = o.body.clone().unwrap_or(Value::Null);
    serde_json::from_value::<T>(body)
        .map(|_| ())
        .map_err(|e| format!("octocrab cannot read {} {}: {e}", o.op, o.path))
}

/// Checks one response; `Err` says what is wrong.
pub fn check(o: &Observed) -> Result<(), String> {
    for h in RATE_HEADERS {
        if o.header(h).is_none() {
            return Err(format!("{} {} ({}): no {h}", o.method, o.path, o.status));
        }
    }
    match oracle().check_response(o)? {
        Verdict::Valid => Ok(()),
        Verdict::NotInOracle => match o.op.as_str() {
            "get_user" | "get_user_by_login" => octocrab_reads::<octocrab::models::Author>(o),
            "rate_limit" => octocrab_reads::<octocrab::models::RateLimit>(o),
            "get_repo" => octocrab_reads::<octocrab::models::Repository>(o),
            "create_installation_token" => octocrab_reads::<octocrab::models::InstallationToken>(o),
            "list_installations" => octocrab_reads::<Vec<octocrab::models::Installation>>(o),
            "get_installation" | "get_repo_installation" => {
                octocrab_reads::<octocrab::models::Installation>(o)
            }
            "get_app" => octocrab_reads::<octocrab::models::App>(o),
            // Pull requests are outside the OpenAPI subset: octocrab's model checks them.
            "list_fork_pulls" => octocrab_reads::<Vec<octocrab::models::pulls::PullRequest>>(o),
            "get_collaborator_permission" => {
                // octocrab's model takes `permission` as pull/push/…; GitHub sends its
                // legacy admin/write/read/none (octocrab reads only "admin"; see the
                // simulator's octocrab test). Check the rest with octocrab's types.
                let body = o.body.clone().unwrap_or(Value::Null);
                let permission = body["permission"].as_str().unwrap_or_default();
                if !["admin", "write", "read", "none"].contains(&permission) {
                    return Err(format!("permission {permission:?} is not GitHub's"));
                }
                if !body["role_name"].is_string() {
                    return Err("no role_name".into());
                }
                serde_json::from_value::<octocrab::models::Collaborator>(body["user"].clone())
                    .map_err(|e| format!("octocrab cannot read the permission's user: {e}"))?;
                if permission == "admin" {
                    octocrab_reads::<octocrab::models::repos::RepoPermission>(o)?;
                }
                Ok(())
            }
            other => Err(format!("no check for operation {other}")),
        },
    }
}

/// What the checker thread found.
#[derive(Default)]
struct Findings {
    checked: u64,
    violations: Vec<String>,
}

/// A served simulator whose responses are all checked (see the module docs).
pub struct Served {
    running: Option<RunningSim>,
    sim: Simulator,
    tx: Option<mpsc::Sender<Observed>>,
    worker: Option<std::thread::JoinHandle<Findings>>,
    done: Option<Findings>,
}

impl Deref for Served {
    type Target = RunningSim;
    fn deref(&self) -> &RunningSim {
        self.running.as_ref().unwrap()
    }
}

impl Served {
    /// Stops checking, waits for the checks queued so far, and returns how many responses
    /// were checked; panics listing the responses that failed.
    pub fn finish(&mut self) -> u64 {
        if self.done.is_none() {
            self.sim.clear_observer();
            drop(self.tx.take());
            let worker = self.worker.take();
            let join = move || worker.map(|w| w.join().unwrap()).unwrap_or_default();
            // Waiting for the checker blocks: on a multi-threaded runtime, hand this
            // worker's other tasks (other simulators' servers) to another thread first.
            let multi = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            let findings = if multi {
                tokio::task::block_in_place(join)
            } else {
                join()
            };
            self.done = Some(findings);
        }
        let f = self.done.as_ref().unwrap();
        assert!(
            f.violations.is_empty(),
            "{} of {} simulator responses failed their checks:\n{}",
            f.violations.len(),
            f.checked,
            f.violations.join("\n")
        );
        f.checked
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.finish();
        }
    }
}

/// Serves `sim` with every response checked.
pub async fn serve(sim: &Simulator) -> Served {
    let (tx, rx) = mpsc::channel::<Observed>();
    let worker = std::thread::spawn(move || {
        let mut f = Findings::default();
        for o in rx {
            f.checked += 1;
            if let Err(e) = check(&o) {
                f.violations.push(e);
            }
        }
        f
    });
    let sink = Mutex::new(tx.clone());
    sim.observe(move |o| {
        let _ = sink.lock().unwrap().send(o.clone());
    });
    let running = spawn_local(sim.clone()).await.unwrap();
    Served {
        running: Some(running),
        sim: sim.clone(),
        tx: Some(tx),
        worker: Some(worker),
        done: None,
    }
}

/// Checks the simulator's `repository_advisory` deliveries against the oracle's webhook
/// schemas (`webhook-repository-advisory-{published,reported}`); returns how many were
/// checked. Other events (`ping`, `release`) are not in the oracle.
pub fn check_advisory_webhooks(sim: &Simulator) -> usize {
    let mut n = 0;
    for d in sim.webhook_deliveries() {
        if d.event != "repository_advisory" {
            continue;
        }
        let action = d.action.clone().unwrap_or_default();
        let v = oracle()
            .component(&format!("webhook-repository-advisory-{action}"))
            .unwrap_or_else(|e| panic!("no schema for repository_advisory/{action}: {e}"));
        let body: Value = serde_json::from_str(&d.body).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "repository_advisory/{action} delivery does not match the oracle: {errors:#?}"
        );
        n += 1;
    }
    n
}

// ------------------------------------------------------------------ a GitHub App

pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
pub const APP_SLUG: &str = "lockstep";
/// The bot installation tokens act as.
pub const APP_BOT: &str = "lockstep[bot]";

pub fn app_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .unwrap()
}

/// Registers the test App (its public key) and installs it on `acme` for the two public
/// repositories, as admin.
pub fn install_app(sim: &Simulator) {
    let public = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pub.pem"
    ))
    .unwrap();
    sim.add_app(APP_ID, APP_SLUG, &public).unwrap();
    sim.add_installation(
        INSTALLATION_ID,
        APP_ID,
        "acme",
        &[REPO, REPO2],
        Permission::Admin,
    )
    .unwrap();
}

/// A client configured as the test App.
pub fn app_config(base: &str) -> GithubConfig {
    let mut c = config(base, "unused");
    c.credentials = Credentials::App {
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        private_key_pem: SecretString::from(app_key_pem()),
    };
    c
}

// ------------------------------------------------------------------ capturing proxy

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
    pub api_version: Option<String>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    captured: Arc<Mutex<Vec<Captured>>>,
    seen: Arc<AtomicU64>,
    http: reqwest::Client,
}

/// A proxy in front of the simulator that records every request (the App's token
/// requests included) and forwards it unchanged.
pub struct Proxy {
    state: ProxyState,
    pub base_url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn captured(&self) -> Vec<Captured> {
        self.state.captured.lock().unwrap().clone()
    }
    pub fn requests(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }
}

async fn forward(State(st): State<ProxyState>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 22)
        .await
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    st.seen.fetch_add(1, Ordering::SeqCst);
    st.captured.lock().unwrap().push(Captured {
        method: parts.method.to_string(),
        path: path.clone(),
        body: bytes.to_vec(),
        authorization: header("authorization"),
        api_version: header("x-github-api-version"),
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

/// A recording proxy in front of `running`.
pub async fn proxy(running: &RunningSim) -> Proxy {
    let state = ProxyState {
        upstream: running.base_url.clone(),
        captured: Arc::new(Mutex::new(Vec::new())),
        seen: Arc::new(AtomicU64::new(0)),
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
