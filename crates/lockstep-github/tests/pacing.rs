//! Pacing against the simulator: ordinary writes are serialised (never two in flight,
//! shown by ledger timestamps under injected latency) and spaced; a release wave goes out
//! at once within the budget and keeps ordinary writes out until it is done; a wave larger
//! than the budget is split into bursts (the remainder first); a wave's failures are
//! re-read and re-published concurrently, not one by one.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lockstep_github::{Attempt, GithubClient, PacingConfig, RetryConfig, WaveItem};
use lockstep_sim::{
    FaultConfig, FaultKind, InjectedFault, LedgerEntry, Permission, SecondaryLimits,
};

/// Injected latency: every request waits this long in the simulator before it is
/// processed (and stamped in the ledger), so a request's arrival is `at - LATENCY`.
const LATENCY: Duration = Duration::from_millis(60);

fn with_latency(sim: &lockstep_sim::Simulator) {
    sim.set_faults(FaultConfig {
        latency: LATENCY,
        ..FaultConfig::default()
    });
}

fn gap(a: &LedgerEntry, b: &LedgerEntry) -> Duration {
    (b.at - a.at).to_std().unwrap_or_default()
}

/// Drafts made through the handle (no HTTP, no pacer), ready to publish.
fn drafts(sim: &lockstep_sim::Simulator, n: usize, case: &str) -> Vec<WaveItem> {
    (0..n)
        .map(|i| {
            let m = marker(&format!("{case}-{i}"), REPO);
            let body = serde_json::json!({
                "summary": format!("w{i}"),
                "description": format!("d\n{m}"),
                "severity": "high",
                "vulnerabilities": [{"package": {"ecosystem": "npm", "name": "widget"}}],
            });
            let a = sim.create_as("alice", REPO, &body).unwrap();
            WaveItem {
                repo: repo(REPO),
                ghsa: a["ghsa_id"].as_str().unwrap().to_owned(),
                content: None,
                attempt: Attempt::First,
            }
        })
        .collect()
}

fn spread(ts: &[chrono::DateTime<chrono::Utc>]) -> Duration {
    let min = ts.iter().min().unwrap();
    let max = ts.iter().max().unwrap();
    (*max - *min).to_std().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_is_concurrent_and_ordinary_writes_are_spaced() {
    let (sim, running, _c) = start().await;
    let names: Vec<String> = (0..10).map(|i| format!("acme/sdk{i}")).collect();
    for n in &names {
        sim.add_repo(n).unwrap();
        sim.grant(n, "alice", Permission::Admin).unwrap();
    }
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.pacing = PacingConfig {
        min_spacing: Duration::from_millis(120),
        ..PacingConfig::default()
    };
    let c = GithubClient::new(cfg).unwrap();
    let mut items = Vec::new();
    let t0 = Instant::now();
    for n in &names {
        let m = marker("case-wave", n);
        let (a, _) = c
            .create_draft(&repo(n), &draft("w", &m), &m, Attempt::First)
            .await
            .unwrap();
        items.push(WaveItem {
            repo: repo(n),
            ghsa: a.ghsa_id,
            content: None,
            attempt: Attempt::First,
        });
    }
    let creates_took = t0.elapsed();
    assert!(
        creates_took >= Duration::from_millis(9 * 120),
        "{creates_took:?}"
    );
    let posts: Vec<_> = sim
        .ledger()
        .iter()
        .filter(|e| e.method == "POST")
        .map(|e| e.at)
        .collect();
    let gaps: Vec<_> = posts
        .windows(2)
        .map(|w| (w[1] - w[0]).to_std().unwrap())
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(110)),
        "{gaps:?}"
    );

    let t1 = Instant::now();
    let results = c.publish_wave(&items).await;
    let wave_took = t1.elapsed();
    assert!(results.iter().all(Result::is_ok));
    let publishes: Vec<_> = sim
        .ledger()
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| e.at)
        .collect();
    assert_eq!(publishes.len(), 10);
    let leak_window = spread(&publishes);
    eprintln!(
        "10 creates spaced in {creates_took:?}; wave of 10 in {wave_took:?}, leak window {leak_window:?}"
    );
    assert!(leak_window < Duration::from_millis(100), "{leak_window:?}");
    assert!(wave_took < Duration::from_millis(500), "{wave_took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_are_serialised() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.pacing = PacingConfig {
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    let c = Arc::new(GithubClient::new(cfg).unwrap());
    with_latency(&sim);
    let calls = (0..5).map(|i| {
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            let m = marker(&format!("case-par{i}"), REPO);
            c.create_draft(&repo(REPO), &draft("p", &m), &m, Attempt::First)
                .await
                .unwrap();
        })
    });
    for h in futures::future::join_all(calls).await {
        h.unwrap();
    }
    let posts: Vec<LedgerEntry> = sim
        .ledger()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert_eq!(posts.len(), 5);
    // Each POST arrived (at - LATENCY) only after the previous one had been answered (at):
    // no two were ever in flight together.
    for w in posts.windows(2) {
        let g = gap(&w[0], &w[1]);
        assert!(
            g + Duration::from_millis(2) >= LATENCY,
            "POST #{} overlapped POST #{} ({g:?} apart)",
            w[1].seq,
            w[0].seq
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_write_waits_for_the_wave_in_flight() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.pacing = PacingConfig {
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    let c = Arc::new(GithubClient::new(cfg).unwrap());
    let items = drafts(&sim, 3, "case-inflight");
    with_latency(&sim);
    let wave = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.publish_wave(&items).await })
    };
    // Let the wave take its burst, then try an ordinary write.
    tokio::time::sleep(Duration::from_millis(15)).await;
    let m = marker("case-ordinary", REPO);
    c.create_draft(&repo(REPO), &draft("o", &m), &m, Attempt::First)
        .await
        .unwrap();
    assert!(wave.await.unwrap().iter().all(Result::is_ok));
    let ledger = sim.ledger();
    let post = ledger.iter().find(|e| e.method == "POST").unwrap();
    let last_patch = ledger.iter().rfind(|e| e.method == "PATCH").unwrap();
    assert_eq!(ledger.iter().filter(|e| e.is_publish()).count(), 3);
    // The POST left only after the wave's last answer: it arrived at least LATENCY after it.
    assert!(post.seq > last_patch.seq);
    let g = gap(last_patch, post);
    assert!(
        g + Duration::from_millis(2) >= LATENCY,
        "the POST overlapped the wave ({g:?} after its last PATCH)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_larger_than_the_budget_is_split_remainder_first() {
    // The simulator enforces the same budget (4 per 400 ms): a burst over it would be
    // refused and show in the ledger.
    let sim = seeded(lockstep_sim::SimConfig {
        secondary: SecondaryLimits {
            per_short_window: 4,
            short_window: Duration::from_millis(400),
            ..SecondaryLimits::default()
        },
        ..quiet_config()
    });
    let running = serve(&sim).await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.pacing = PacingConfig {
        per_short_window: 4,
        // A margin over the simulator's window (the pacer counts from the grant, the
        // simulator from the arrival).
        short_window: Duration::from_millis(450),
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    let c = GithubClient::new(cfg).unwrap();
    let items = drafts(&sim, 6, "case-chunk");
    let t0 = Instant::now();
    let results = c.publish_wave(&items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let elapsed = t0.elapsed();
    let ledger = sim.ledger();
    assert!(
        ledger.iter().all(|e| e.fault.is_none()),
        "the simulator refused nothing"
    );
    let publishes: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.is_publish()).collect();
    assert_eq!(publishes.len(), 6);
    // Two bursts: the remainder (2) at once, the full burst (4) a window later.
    let split = publishes
        .windows(2)
        .position(|w| gap(w[0], w[1]) >= Duration::from_millis(300))
        .expect("two bursts a window apart");
    assert_eq!(split + 1, 2, "the remainder goes first");
    let (first, second) = publishes.split_at(2);
    for burst in [first, second] {
        let spread = gap(burst[0], burst[burst.len() - 1]);
        assert!(
            spread < Duration::from_millis(100),
            "a burst is concurrent: {spread:?}"
        );
    }
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert_eq!(c.pacer().stats().granted, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waves_failures_are_reread_and_republished_concurrently() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    // The shipped backoff between reconciling attempts (1 s): the first re-check of a
    // wave must not wait for it.
    cfg.retry = RetryConfig::default();
    cfg.pacing = PacingConfig {
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    let c = GithubClient::new(cfg).unwrap();
    let items = drafts(&sim, 6, "case-retry");
    with_latency(&sim);
    // The first three PATCHes of the burst fail before being applied.
    sim.inject(InjectedFault::Error5xx, 3);
    let t0 = Instant::now();
    let results = c.publish_wave(&items).await;
    let took = t0.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let ledger = sim.ledger();
    let failed: Vec<&LedgerEntry> = ledger
        .iter()
        .filter(|e| e.fault == Some(FaultKind::Error5xx))
        .collect();
    assert_eq!(failed.len(), 3);
    // What happened to the failed ones afterwards.
    let after: Vec<&LedgerEntry> = ledger
        .iter()
        .filter(|e| e.seq > failed.iter().map(|f| f.seq).max().unwrap())
        .filter(|e| failed.iter().any(|f| f.path == e.path))
        .collect();
    let rereads: Vec<&&LedgerEntry> = after.iter().filter(|e| e.method == "GET").collect();
    let republished: Vec<&&LedgerEntry> = after.iter().filter(|e| e.is_publish()).collect();
    assert_eq!(rereads.len(), 3, "each failure is read first");
    assert_eq!(republished.len(), 3);
    // Read first, all of them, before any is published again (not GET, PATCH, GET, …).
    let last_read = rereads.iter().map(|e| e.seq).max().unwrap();
    assert!(republished.iter().all(|e| e.seq > last_read));
    // Both rounds are concurrent: each is one round trip wide.
    let spread = |es: &[&&LedgerEntry]| gap(es[0], es[es.len() - 1]);
    assert!(spread(&rereads) < LATENCY / 2, "{:?}", spread(&rereads));
    assert!(
        spread(&republished) < LATENCY / 2,
        "{:?}",
        spread(&republished)
    );
    // Leak window: first to last publication, about two round trips (serially it would be
    // six: a read and a write for each failure), and no 1 s backoff before the re-check.
    let publishes: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.is_publish()).collect();
    let leak = gap(publishes[0], publishes[publishes.len() - 1]);
    assert!(leak < LATENCY * 3, "leak window {leak:?}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    eprintln!("wave of 6 with 3 failures: leak window {leak:?}, {took:?} in all");
}
