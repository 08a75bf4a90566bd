//! Headline test: a thousand create-then-publish runs under 20% injected 5xx and 30%
//! reset-after-apply produce exactly one advisory per repository, and no publication
//! before the create was confirmed. Checked on the simulator's ledger.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use futures::StreamExt;
use lockstep_github::{Attempt, DraftOrigin, GithubClient};
use lockstep_sim::{FaultConfig, FaultKind, Permission, Simulator, Via, spawn_local};

const REPOS: usize = 1_000;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_runs_under_faults_create_exactly_once_and_never_publish_early() {
    let sim = Simulator::new(quiet_config());
    sim.add_user("alice", ADMIN_TOKEN);
    sim.add_user("monalisa", "tok-monalisa");
    let names: Vec<String> = (0..REPOS)
        .map(|i| format!("org{}/repo{i}", i % 7))
        .collect();
    for n in &names {
        sim.add_repo(n).unwrap();
        sim.grant(n, "alice", Permission::Admin).unwrap();
    }
    let running = spawn_local(sim.clone()).await.unwrap();
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.write_attempts = 60;
    let c = Arc::new(GithubClient::new(cfg).unwrap());
    sim.set_faults(FaultConfig {
        error_5xx: 0.20,
        reset_after_apply: 0.30,
        ..FaultConfig::default()
    });

    let t0 = Instant::now();
    let outcomes: Vec<(String, String, u64, DraftOrigin)> = futures::stream::iter(names.clone())
        .map(|name| {
            let c = Arc::clone(&c);
            let sim = sim.clone();
            async move {
                let r = repo(&name);
                let m = marker("case-chaos", &name);
                let (adv, origin) = c
                    .ensure_draft(&r, &draft("chaos", &m), &m, Attempt::First)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: create: {e}"));
                // The create is confirmed: everything after this point in the ledger.
                let confirmed_at = sim.ledger().len() as u64;
                let p = c
                    .ensure_published(&r, &adv.ghsa_id, None, Attempt::First)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: publish: {e}"));
                assert_eq!(p.ghsa_id, adv.ghsa_id);
                (name, adv.ghsa_id, confirmed_at, origin)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = t0.elapsed();
    sim.set_faults(FaultConfig::default());

    let ledger = sim.ledger();
    let mut by_repo: HashMap<String, Vec<&lockstep_sim::LedgerEntry>> = HashMap::new();
    for e in &ledger {
        if let Some(r) = &e.repo {
            by_repo.entry(r.to_ascii_lowercase()).or_default().push(e);
        }
    }
    for (name, ghsa, confirmed_at, _) in &outcomes {
        let entries = &by_repo[&name.to_ascii_lowercase()];
        let creations: Vec<_> = entries.iter().filter(|e| e.is_creation()).collect();
        assert_eq!(creations.len(), 1, "{name}: exactly one creation");
        assert_eq!(creations[0].ghsa_id.as_deref(), Some(ghsa.as_str()));
        assert!(creations[0].seq <= *confirmed_at);
        let publishes: Vec<_> = entries.iter().filter(|e| e.is_publish()).collect();
        assert_eq!(publishes.len(), 1, "{name}: exactly one publication");
        assert_eq!(publishes[0].ghsa_id.as_deref(), Some(ghsa.as_str()));
        // No PATCH at all (let alone a publish) before the create was confirmed.
        for e in entries.iter().filter(|e| e.method == "PATCH") {
            assert!(
                e.seq > *confirmed_at,
                "{name}: PATCH #{} before confirmation",
                e.seq
            );
        }
        let states = sim.advisory_states(name).unwrap();
        assert_eq!(
            states,
            vec![(ghsa.clone(), lockstep_sim::AdvisoryState::Published)],
            "{name}"
        );
    }
    assert_eq!(outcomes.len(), REPOS);
    assert!(ledger.iter().all(|e| e.via == Via::Http));
    let resets = ledger
        .iter()
        .filter(|e| e.fault == Some(FaultKind::ResetAfterApply))
        .count();
    let five = ledger
        .iter()
        .filter(|e| e.fault == Some(FaultKind::Error5xx))
        .count();
    let adopted = outcomes
        .iter()
        .filter(|o| o.3 == DraftOrigin::Adopted)
        .count();
    let posts = ledger.iter().filter(|e| e.method == "POST").count();
    let patches = ledger.iter().filter(|e| e.method == "PATCH").count();
    eprintln!(
        "{REPOS} runs in {elapsed:?}: {} requests ({posts} POST, {patches} PATCH), \
         {five} injected 5xx, {resets} resets after apply, {adopted} drafts adopted",
        ledger.len()
    );
    assert!(
        resets > 200 && five > 200 && adopted > 100,
        "faults really fired"
    );
}
