//! The GitHub read budget in the steady state: requests per open draft per hour, counted from
//! the simulator's request ledger over a fixed simulated window (six hours), with and without
//! healthy webhooks.
//!
//! One case with ten repositories, its ten drafts created, waits out its embargo. The runtime
//! makes a pass every `idle_wake` (what `serve` does with nothing due) on a clock the
//! benchmark advances (`Runtime::with_clock`). Without webhooks every pass reads the drafts
//! (conditional GETs: a 304 is free against the rate limit but still a request, counted here).
//! With webhooks, a verified delivery arrives every ten simulated minutes
//! (`Runtime::webhook_received`, what the server calls), and passes read GitHub only every
//! `safety_poll`. Prints both figures and their ratio, and the requests of an instance with no
//! open case (target: none).
//!
//! Run: `cargo bench -p lockstep-runtime --bench read_budget`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lockstep_core::vuln::{Rating, Severity, Vulnerability};
use lockstep_core::*;
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_sim::{Permission, SimConfig, Simulator};
use lockstep_store::Store;

const REPOS: usize = 10;
const WINDOW: Duration = Duration::from_secs(6 * 3600);
const DELIVERY_EVERY: Duration = Duration::from_secs(600);

fn workflow() -> String {
    let mut w = String::from(
        "name = \"budget\"\ncoordinators = [\"alice\"]\n\n[embargo]\ndefault_days = 30\nmax_days = 60\ndeadline_policy = \"hold-all\"\n",
    );
    for i in 0..REPOS {
        w.push_str(&format!(
            "\n[[repo]]\nname = \"org/r{i:02}\"\necosystem = \"npm\"\npackages = [\"p{i}\"]\nmaintainers = [\"bob\"]\n"
        ));
    }
    w
}

struct Run {
    requests: usize,
    not_modified: usize,
    drafts: usize,
}

/// Requests made over `WINDOW` of simulated passes, with `cases` open cases.
async fn steady_state(cases: usize, webhooks: bool) -> Run {
    let sim = Simulator::new(SimConfig::default());
    sim.add_user("lockstep-bot", "tok-bot");
    sim.add_user("alice", "tok-alice");
    sim.add_user("bob", "tok-bob");
    for i in 0..REPOS {
        let repo = format!("org/r{i:02}");
        sim.add_repo(&repo).unwrap();
        sim.grant(&repo, "lockstep-bot", Permission::Admin).unwrap();
    }
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let base = ApiBase::parse(&running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    let github = Arc::new(GithubClient::new(config).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    let millis = Arc::new(AtomicU64::new(0));
    let clock = {
        let millis = Arc::clone(&millis);
        Arc::new(move || Duration::from_millis(millis.load(Ordering::SeqCst)))
    };
    let opts = RuntimeOptions {
        worker: "budget".into(),
        ..RuntimeOptions::default()
    };
    let step = opts.idle_wake;
    let runtime = Runtime::new(store.clone(), github, opts).with_clock(clock);
    let alice = Principal::user("alice".parse().unwrap());
    for c in 0..cases {
        let open = OpenCase {
            case_id: format!("LS-B-{c}").parse().unwrap(),
            workflow: Workflow::parse("budget.toml", &workflow()).unwrap(),
            scope: Default::default(),
            vulnerability: Vulnerability {
                summary: "Host header not validated".into(),
                description: "DNS rebinding against local servers.".into(),
                rating: Rating::Severity(Severity::High),
                cwes: ["CWE-350".parse().unwrap()].into(),
                credits: vec![],
            },
            embargo_until: None,
        };
        store.open_case(&alice, open).await.unwrap();
    }
    // The drafts are created, and a first read of each primes the ETags.
    for _ in 0..5 {
        runtime.run_once().await.unwrap();
    }
    let drafts: usize = (0..REPOS)
        .map(|i| sim.advisories(&format!("org/r{i:02}")).unwrap().len())
        .sum();
    if webhooks {
        runtime.webhook_received();
    }
    let start = sim.ledger().len() as u64;
    let mut now = Duration::ZERO;
    let mut last_delivery = Duration::ZERO;
    while now < WINDOW {
        now += step;
        millis.store(u64::try_from(now.as_millis()).unwrap(), Ordering::SeqCst);
        if webhooks && now - last_delivery >= DELIVERY_EVERY {
            runtime.webhook_received();
            last_delivery = now;
        }
        runtime.run_once().await.unwrap();
    }
    let ledger = sim.ledger_since(start);
    Run {
        requests: ledger.len(),
        not_modified: ledger.iter().filter(|e| e.status == 304).count(),
        drafts,
    }
}

fn per_draft_hour(run: &Run) -> f64 {
    run.requests as f64 / run.drafts.max(1) as f64 / (WINDOW.as_secs_f64() / 3600.0)
}

#[tokio::main]
async fn main() {
    let hours = WINDOW.as_secs() / 3600;
    let idle = steady_state(0, false).await;
    println!(
        "read_budget: no open case: {} GitHub requests in {hours} simulated hours (target 0)",
        idle.requests
    );
    let polling = steady_state(1, false).await;
    let hooked = steady_state(1, true).await;
    let (p, h) = (per_draft_hour(&polling), per_draft_hour(&hooked));
    println!(
        "read_budget: without webhooks: {} requests ({} answered 304) for {} open drafts in {hours} simulated hours = {p:.2} per draft per hour",
        polling.requests, polling.not_modified, polling.drafts
    );
    println!(
        "read_budget: with healthy webhooks: {} requests ({} answered 304) for {} open drafts in {hours} simulated hours = {h:.2} per draft per hour",
        hooked.requests, hooked.not_modified, hooked.drafts
    );
    println!(
        "read_budget: ratio without/with webhooks: {:.1}",
        p / h.max(f64::MIN_POSITIVE)
    );
    assert_eq!(
        idle.requests, 0,
        "an instance with no open case read GitHub"
    );
    assert!(
        polling.drafts == REPOS && hooked.drafts == REPOS,
        "drafts missing"
    );
    assert!(h < p, "healthy webhooks did not reduce polling");
}
