//! Pacing against the simulator: ordinary writes are serialised and spaced; a release
//! wave goes out at once within the budget; a wave larger than the budget is chunked.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use lockstep_github::{Attempt, GithubClient, PacingConfig, WaveItem};
use lockstep_sim::Permission;

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
async fn wave_larger_than_budget_is_chunked_by_the_window() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.pacing = PacingConfig {
        per_short_window: 4,
        short_window: Duration::from_millis(400),
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    let c = GithubClient::new(cfg).unwrap();
    let mut items = Vec::new();
    for i in 0..4 {
        let m = marker(&format!("case-chunk{i}"), REPO);
        let (a, _) = c
            .create_draft(&repo(REPO), &draft("w", &m), &m, Attempt::First)
            .await
            .unwrap();
        items.push(WaveItem {
            repo: repo(REPO),
            ghsa: a.ghsa_id,
            content: None,
            attempt: Attempt::Retry,
        });
    }
    // The 4 creates used the window; the wave waits for it, then goes out at once.
    let t0 = Instant::now();
    let results = c.publish_wave(&items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    let publishes: Vec<_> = sim
        .ledger()
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| e.at)
        .collect();
    assert!(spread(&publishes) < Duration::from_millis(100));
    assert_eq!(c.pacer().stats().granted, 8);
}
