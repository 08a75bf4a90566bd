//! `lockstep demo --web`: the dashboard on a simulated case a newcomer can click through.
//!
//! It runs the GitHub simulator (its OAuth consent page included), `serve`'s router and the
//! release runtime in this process over a temporary SQLite database, seeds a case across the
//! ten MCP SDKs through the JSON API (some assessed, a fix prepared, one released), prints the
//! URL and how to sign in as the coordinator or as a maintainer, and runs until Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lockstep_core::{RepoId, Workflow};
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_store::Store;
use serde_json::{Value, json};

use crate::demo::{BOT, COORDINATOR, WORKFLOW, maintainer, simulated_github};
use crate::output::paint;

const CLIENT_ID: &str = "Iv1.lockstep-demo";

pub(crate) fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(web(listen))
}

/// Posts `body` to the API as `login`.
async fn post(
    http: &reqwest::Client,
    base: &str,
    login: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(format!("tok-{login}"))
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "{path} as {login}: {status} {v}");
    Ok(v)
}

async fn web(listen: SocketAddr) -> anyhow::Result<()> {
    let workflow = Workflow::parse("workflows/mcp-sdks.toml", WORKFLOW)?;
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();
    let sim = simulated_github(&repos, Duration::from_millis(5))?;
    let client_secret = lockstep_server::web::random_secret();
    {
        use secrecy::ExposeSecret as _;
        sim.add_oauth_client(CLIENT_ID, client_secret.expose_secret());
    }
    let running = lockstep_sim::spawn_local(sim.clone()).await?;
    let dir = tempfile::tempdir()?;
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows)?;
    std::fs::write(workflows.join("mcp-sdks.toml"), WORKFLOW)?;
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("demo.db").display()
    ))
    .await?;
    let mut config = GithubConfig::new(
        ApiBase::parse(&running.base_url, &["127.0.0.1".to_owned()])?,
        Credentials::Token(format!("tok-{BOT}").into()),
    );
    config.pacing = PacingConfig::unlimited();
    let bot = Arc::new(GithubClient::new(config.clone())?);
    let runtime = Runtime::new(store.clone(), bot.clone(), RuntimeOptions::default());

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tokio::net::TcpListener::bind(SocketAddr::new(listen.ip(), 0)).await?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {listen}")),
    };
    let url = format!("http://{}", listener.local_addr()?);
    let web = lockstep_server::web::WebConfig::new(
        CLIENT_ID.to_owned(),
        client_secret,
        running.base_url.clone(),
        url.clone(),
        lockstep_server::web::random_secret(),
    )
    .map_err(anyhow::Error::msg)?;
    let state = lockstep_server::AppState::new(store.clone(), bot, config)
        .with_runtime(runtime.clone())
        .with_workflows_dir(&workflows)
        .with_web(Some(web));
    let app = lockstep_server::router(state);
    let http_task = tokio::spawn(async move { axum::serve(listener, app).await });
    let rt = runtime.clone();
    let runtime_task = tokio::spawn(async move {
        rt.serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    });

    // The case, through the same API the CLI and the pages use.
    let http = reqwest::Client::new();
    let opened = post(
        &http,
        &url,
        COORDINATOR,
        "/api/cases",
        json!({
            "workflow_name": "mcp-sdks",
            "summary": "DNS rebinding: HTTP transports do not validate the Host header",
            "description": "Servers using the streamable HTTP transport on localhost accept requests whose Host header names another origin.",
            "severity": "high",
            "cwe": ["CWE-350", "CWE-1188"],
            "credit": ["security-researcher:finder"],
        }),
    )
    .await?;
    let case = opened["case_id"].as_str().unwrap_or_default().to_owned();
    // The runtime opens the drafts.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let c = store.case(&case.parse()?).await?;
        if c.scope().all(|(_, p)| p.advisory.ghsa.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, repo) in repos.iter().enumerate().take(6) {
        let verdict = if i < 4 { "affected" } else { "not_affected" };
        let reason = if i < 4 {
            "the streamable HTTP transport binds to localhost without checking Host"
        } else {
            "no HTTP server transport"
        };
        post(
            &http,
            &url,
            &maintainer(repo),
            &format!("/api/cases/{case}/assess"),
            json!({"repo": repo.as_str(), "verdict": verdict, "reason": reason}),
        )
        .await?;
    }
    for (i, repo) in repos.iter().enumerate().take(2) {
        let stage = if i == 0 { "released" } else { "prepared" };
        post(
            &http,
            &url,
            &maintainer(repo),
            &format!("/api/cases/{case}/fix-ready"),
            json!({"repo": repo.as_str(), "patched_versions": "2.0.1", "vulnerable_range": "< 2.0.1", "stage": stage}),
        )
        .await?;
    }

    println!("{}\n", paint("Lockstep dashboard demo", "1"));
    println!(
        "  Open {} and choose \"Sign in with GitHub\".",
        paint(&format!("{url}/"), "1")
    );
    println!(
        "  GitHub is simulated at {}: its consent page asks who you are. Type",
        running.base_url
    );
    println!(
        "    {}   the coordinator: may do everything",
        paint(COORDINATOR, "1")
    );
    if let Some(first) = repos.first() {
        println!(
            "    {}   a maintainer: assesses and marks fixes for {first} only",
            paint(&maintainer(first), "1")
        );
    }
    println!("    (each SDK has one: <sdk>-maintainer, e.g. python-sdk-maintainer)");
    println!(
        "\n  Case {case}: {} SDKs, 6 assessed (4 affected), one fix released and one prepared.",
        repos.len()
    );
    println!("  Mark the remaining fixes as maintainers, or disclose now as the coordinator,");
    println!("  and watch the case page follow the release live.");
    println!("\n  Everything lives in memory and a temporary directory. Ctrl-C stops the demo.");

    let _ = tokio::signal::ctrl_c().await;
    http_task.abort();
    let _ = runtime_task.await;
    drop(running);
    Ok(())
}
