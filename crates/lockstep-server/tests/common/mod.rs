//! A world for the server's tests: the GitHub simulator in-process (users, tokens,
//! permissions), a SQLite store in a temporary directory, a workflows directory, the runtime
//! (to open drafts), and the router.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::intake::IntakeOptions;
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_server::AppState;
use lockstep_sim::{Permission, SimConfig, Simulator};
use lockstep_store::{OutboxState, Store};
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const WORKFLOW: &str = r#"
name = "fixture"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]
maintainers = ["bob"]

[[repo]]
name = "org/extra"
ecosystem = "rust"
packages = ["extra", "extra-macros"]
maintainers = ["carol"]

# No maintainers: GitHub's admin and maintain permissions decide.
[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
publish_after = ["org/core"]

[[repo]]
name = "org/spare"
ecosystem = "go"
packages = ["spare"]
maintainers = ["carol"]
"#;

pub const SECRET: &str = "It's a Secret to Everybody";
pub const SUMMARY: &str = "Host header not validated in the SSE transport";
pub const DESCRIPTION: &str =
    "DNS rebinding lets a web page reach local servers (embargoed detail).";

pub struct World {
    pub sim: Simulator,
    pub running: lockstep_sim::RunningSim,
    pub store: Store,
    pub router: Router,
    pub runtime: Runtime,
    pub wakes: Arc<AtomicUsize>,
    pub dir: tempfile::TempDir,
    /// With `Options::web`: where the router is served over TCP (`http://127.0.0.1:PORT`),
    /// with sign-in through the simulator's OAuth flow.
    pub web_url: Option<String>,
}

pub struct Options {
    pub secret: Option<&'static str>,
    pub inline_workflows: bool,
    /// Serve the router over TCP with the web sign-in configured against the simulator.
    pub web: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secret: Some(SECRET),
            inline_workflows: false,
            web: false,
        }
    }
}

/// The web sign-in's OAuth client, registered in the simulator.
pub const CLIENT_ID: &str = "Iv1.lockstep-test";
pub const CLIENT_SECRET: &str = "client-secret-for-tests";

pub async fn world() -> World {
    world_with(Options::default()).await
}

pub async fn world_with(opts: Options) -> World {
    let sim = Simulator::new(SimConfig::default());
    sim.add_user("lockstep-bot", "tok-bot");
    for login in ["alice", "bob", "carol", "dave", "erin", "eve", "finder1"] {
        sim.add_user(login, &format!("tok-{login}"));
    }
    for repo in ["org/core", "org/extra", "org/plugin", "org/spare"] {
        sim.add_repo(repo).unwrap();
        sim.grant(repo, "lockstep-bot", Permission::Admin).unwrap();
    }
    // dave maintains org/plugin on GitHub; erin only pushes to it.
    sim.grant("org/plugin", "dave", Permission::Maintain)
        .unwrap();
    sim.grant("org/plugin", "erin", Permission::Write).unwrap();
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let base = ApiBase::parse(&running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    let github = Arc::new(GithubClient::new(config.clone()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::write(workflows.join("fixture.toml"), WORKFLOW).unwrap();
    std::fs::write(workflows.join("broken.toml"), "name = 1\n").unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    let runtime = Runtime::new(
        store.clone(),
        github.clone(),
        RuntimeOptions {
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            lease: Duration::from_secs(5),
            ..RuntimeOptions::default()
        },
    );
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    let listener = if opts.web {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let web_url = listener
        .as_ref()
        .map(|l| format!("http://{}", l.local_addr().unwrap()));
    let web = web_url.as_ref().map(|public| {
        sim.add_oauth_client(CLIENT_ID, CLIENT_SECRET);
        lockstep_server::web::WebConfig::new(
            CLIENT_ID.to_owned(),
            SecretString::from(CLIENT_SECRET.to_owned()),
            running.base_url.clone(),
            public.clone(),
            lockstep_server::web::random_secret(),
        )
        .unwrap()
    });
    let state = AppState::new(store.clone(), github, config)
        .with_web(web)
        .with_webhook_secret(opts.secret.map(|s| SecretString::from(s.to_owned())))
        .with_workflows_dir(&workflows)
        .with_inline_workflows(opts.inline_workflows)
        .with_waker(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
    let router = lockstep_server::router(state);
    if let Some(listener) = listener {
        let app = router.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    World {
        web_url,
        sim,
        running,
        store,
        router,
        runtime,
        wakes,
        dir,
    }
}

pub fn token(login: &str) -> String {
    format!("tok-{login}")
}

impl World {
    /// Sends one request through the router; answers the status and the JSON body (`Null`
    /// for an empty body). Panics if the body is not JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        login: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let (status, text, content_type) = self.raw(method, path, login, body).await;
        if text.is_empty() {
            return (status, Value::Null);
        }
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {status} answered {content_type:?}: {text}"
        );
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, value)
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        login: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(login) = login {
            req = req.header("authorization", format!("Bearer {}", token(login)));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, String, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            String::from_utf8(bytes.to_vec()).unwrap(),
            content_type,
        )
    }

    /// Opens a case as alice over the whole fixture workflow; returns its id.
    pub async fn open(&self) -> String {
        self.open_with(json!({})).await
    }

    /// Opens a case as alice; `extra`'s fields override the defaults.
    pub async fn open_with(&self, extra: Value) -> String {
        let mut body = json!({
            "workflow_name": "fixture",
            "summary": SUMMARY,
            "description": DESCRIPTION,
            "severity": "high",
            "cwe": ["CWE-350"],
            "credit": ["finder1:finder"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = self
            .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["case_id"].as_str().unwrap().to_owned()
    }

    /// The case's version in the store.
    pub async fn version(&self, case: &str) -> u64 {
        self.store
            .case(&case.parse().unwrap())
            .await
            .unwrap()
            .version
    }

    /// Runs the runtime until nothing is due (drafts opened, publications done).
    pub async fn settle(&self) {
        for _ in 0..200 {
            self.runtime.run_once().await.unwrap();
            let busy = self.store.outbox(None).await.unwrap().into_iter().any(|e| {
                !matches!(
                    e.state,
                    OutboxState::Done | OutboxState::Failed | OutboxState::Held
                )
            });
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the runtime did not settle");
    }

    /// GitHub `GET /user` requests the simulator saw.
    pub fn user_lookups(&self) -> usize {
        self.sim
            .ledger()
            .iter()
            .filter(|e| e.path == "/user")
            .count()
    }

    /// Serves the router on a loopback port and points the simulator's webhook at it.
    pub async fn serve_webhooks(&self, secret: Option<&str>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        self.sim
            .set_webhook(&format!("http://{addr}/webhooks/github"), secret);
        addr
    }
}

/// A runtime that also polls the fixture's repositories for reports and closes rejected ones.
pub fn intake_runtime(w: &World) -> Runtime {
    intake_runtime_every(w, Duration::from_secs(300))
}

pub fn intake_runtime_every(w: &World, interval: Duration) -> Runtime {
    let base = ApiBase::parse(&w.running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    Runtime::new(
        w.store.clone(),
        Arc::new(GithubClient::new(config).unwrap()),
        RuntimeOptions::default(),
    )
    .with_intake(IntakeOptions {
        repos: ["org/core", "org/extra", "org/plugin", "org/spare"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect(),
        interval,
    })
}

/// `who` files a private vulnerability report on `repo`; returns its GHSA id.
pub fn file_report(w: &World, who: &str, repo: &str) -> String {
    let a = w
        .sim
        .report_as(
            who,
            repo,
            &json!({
                "summary": "Host header not validated",
                "description": "A web page can reach the local server (reporter's text).",
                "severity": "high",
                "cwe_ids": ["CWE-350"],
            }),
        )
        .unwrap();
    a["ghsa_id"].as_str().unwrap().to_owned()
}
