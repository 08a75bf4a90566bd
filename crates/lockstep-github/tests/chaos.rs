//! Headline test (issue 4's done-when): a thousand create-then-publish runs under 20%
//! injected 5xx and 30% reset-after-apply produce exactly one advisory per repository and
//! never publish early, shown on the simulator's ledger.
//!
//! Each run is a case of several repositories behind an embargo gate, as the engine runs
//! one: the case's drafts are created (concurrently; the adapter serialises the writes),
//! and only once every one of them is confirmed is the release issued, as one wave.
//! From the ledger: no PATCH on a case's repositories (a publish or any other) precedes
//! that case's last successful create; every repository has exactly one creation, and the
//! advisory published is the one created; each is published exactly once.
//!
//! The adapter runs with the shipped retry counts (`RetryConfig::default()`: the numbers
//! of attempts decide whether a run can fail; only the backoff durations are shortened, to
//! keep the test fast, which the simulator's faults do not depend on). Every simulator
//! response of the run is checked against GitHub's OpenAPI description (see `common`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use futures::future::join_all;
use lockstep_github::{Attempt, DraftOrigin, GithubClient, RetryConfig, WaveItem};
use lockstep_sim::{FaultConfig, FaultKind, LedgerEntry, Permission, Simulator, Via};

const CASES: usize = 1_000;
const REPOS_PER_CASE: usize = 3;
const CONCURRENCY: usize = 16;

/// One case's repositories and what the adapter reported for them.
struct Case {
    repos: Vec<String>,
    ghsas: Vec<String>,
    adopted: usize,
}

fn case_repos(case: usize) -> Vec<String> {
    (0..REPOS_PER_CASE)
        .map(|j| format!("org{}/case{case}-sdk{j}", case % 7))
        .collect()
}

/// Every PATCH on a case's repositories that the simulator processed before the case's
/// last successful create (the gate was not honoured), as readable lines.
fn early_patches(ledger: &[LedgerEntry], cases: &[Case]) -> Vec<String> {
    let mut by_repo: HashMap<String, Vec<&LedgerEntry>> = HashMap::new();
    for e in ledger {
        if let Some(r) = &e.repo {
            by_repo.entry(r.to_ascii_lowercase()).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    for case in cases {
        let entries: Vec<&LedgerEntry> = case
            .repos
            .iter()
            .flat_map(|r| {
                by_repo
                    .get(&r.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let Some(last_create) = entries
            .iter()
            .filter(|e| e.is_creation())
            .map(|e| e.seq)
            .max()
        else {
            out.push(format!("{:?}: nothing was created", case.repos));
            continue;
        };
        for e in entries.iter().filter(|e| e.method == "PATCH") {
            if e.seq < last_create {
                out.push(format!(
                    "{}: PATCH #{} ({}{}) before the case's last create #{last_create}",
                    e.repo.as_deref().unwrap_or("?"),
                    e.seq,
                    e.status,
                    if e.is_publish() { ", published" } else { "" },
                ));
            }
        }
    }
    out
}

/// Creates a case's drafts, then (the gate) publishes them as one wave.
async fn gated_run(c: &GithubClient, id: usize, repos: Vec<String>) -> Case {
    let case = format!("case-chaos-{id}");
    let drafts = join_all(repos.iter().map(|name| {
        let case = case.clone();
        async move {
            let m = marker(&case, name);
            c.ensure_draft(&repo(name), &draft("chaos", &m), &m, Attempt::First)
                .await
                .unwrap_or_else(|e| panic!("{name}: create: {e}"))
        }
    }))
    .await;
    // The gate: every draft is confirmed (each ensure_draft returned) before the release.
    let items: Vec<WaveItem> = repos
        .iter()
        .zip(&drafts)
        .map(|(name, (a, _))| WaveItem {
            repo: repo(name),
            ghsa: a.ghsa_id.clone(),
            content: None,
            attempt: Attempt::First,
        })
        .collect();
    for (name, r) in repos.iter().zip(c.publish_wave(&items).await) {
        r.unwrap_or_else(|e| panic!("{name}: publish: {e}"));
    }
    Case {
        ghsas: drafts.iter().map(|(a, _)| a.ghsa_id.clone()).collect(),
        adopted: drafts
            .iter()
            .filter(|(_, o)| *o == DraftOrigin::Adopted)
            .count(),
        repos,
    }
}

fn shipped_counts() -> RetryConfig {
    RetryConfig {
        read_backoff: Duration::from_millis(1),
        write_backoff: Duration::from_millis(1),
        ..RetryConfig::default()
    }
}

async fn world(repos: &[String]) -> (Simulator, Served, Arc<GithubClient>) {
    // Some 20,000 requests: beyond GitHub's 5,000 per hour, which is not under test here.
    let sim = Simulator::new(lockstep_sim::SimConfig {
        primary: lockstep_sim::PrimaryLimits {
            authenticated: 1_000_000,
            ..lockstep_sim::PrimaryLimits::default()
        },
        ..quiet_config()
    });
    sim.add_user("alice", ADMIN_TOKEN);
    sim.add_user("monalisa", "tok-monalisa");
    for n in repos {
        sim.add_repo(n).unwrap();
        sim.grant(n, "alice", Permission::Admin).unwrap();
    }
    let running = serve(&sim).await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry = shipped_counts();
    let c = Arc::new(GithubClient::new(cfg).unwrap());
    (sim, running, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_gated_cases_under_faults_create_exactly_once_and_never_publish_early() {
    let all: Vec<String> = (0..CASES).flat_map(case_repos).collect();
    let (sim, mut running, c) = world(&all).await;
    sim.set_faults(FaultConfig {
        error_5xx: 0.20,
        reset_after_apply: 0.30,
        ..FaultConfig::default()
    });

    let t0 = Instant::now();
    let cases: Vec<Case> = futures::stream::iter(0..CASES)
        .map(|id| {
            let c = Arc::clone(&c);
            async move { gated_run(&c, id, case_repos(id)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = t0.elapsed();
    sim.set_faults(FaultConfig::default());
    let checked = running.finish();

    let ledger = sim.ledger();
    assert!(ledger.iter().all(|e| e.via == Via::Http));
    // Never early: no PATCH of a case before its last create.
    let early = early_patches(&ledger, &cases);
    assert!(
        early.is_empty(),
        "{} early PATCHes:\n{}",
        early.len(),
        early.join("\n")
    );
    // Exactly once: one creation per repository, the one published, published once.
    let mut creations: BTreeMap<String, Vec<&LedgerEntry>> = BTreeMap::new();
    let mut publishes: BTreeMap<String, Vec<&LedgerEntry>> = BTreeMap::new();
    for e in &ledger {
        let key = e.repo.clone().unwrap_or_default().to_ascii_lowercase();
        if e.is_creation() {
            creations.entry(key.clone()).or_default().push(e);
        }
        if e.is_publish() {
            publishes.entry(key).or_default().push(e);
        }
    }
    for case in &cases {
        for (name, ghsa) in case.repos.iter().zip(&case.ghsas) {
            let key = name.to_ascii_lowercase();
            let created = &creations[&key];
            assert_eq!(created.len(), 1, "{name}: exactly one creation");
            assert_eq!(created[0].ghsa_id.as_deref(), Some(ghsa.as_str()), "{name}");
            let published = &publishes[&key];
            assert_eq!(published.len(), 1, "{name}: exactly one publication");
            assert_eq!(
                published[0].ghsa_id.as_deref(),
                Some(ghsa.as_str()),
                "{name}"
            );
            assert_eq!(
                sim.advisory_states(name).unwrap(),
                vec![(ghsa.clone(), lockstep_sim::AdvisoryState::Published)],
                "{name}"
            );
        }
    }
    assert_eq!(cases.len(), CASES);
    let count = |k: FaultKind| ledger.iter().filter(|e| e.fault == Some(k)).count();
    let (resets, five) = (
        count(FaultKind::ResetAfterApply),
        count(FaultKind::Error5xx),
    );
    let adopted: usize = cases.iter().map(|c| c.adopted).sum();
    let method = |m: &str| ledger.iter().filter(|e| e.method == m).count();
    eprintln!(
        "{CASES} cases x {REPOS_PER_CASE} repositories in {elapsed:?}: {} requests ({} POST, \
         {} PATCH), {five} injected 5xx, {resets} resets after apply, {adopted} drafts \
         adopted; {checked} responses checked against the oracle",
        ledger.len(),
        method("POST"),
        method("PATCH"),
    );
    assert!(
        resets > 600 && five > 600 && adopted > 300,
        "faults really fired"
    );
    assert!(
        checked as usize >= ledger.len(),
        "every response was checked"
    );
}

/// The early-publish check has teeth: a case released without waiting for all its drafts
/// (one repository published before its sibling's draft exists) is caught.
#[tokio::test]
async fn the_gate_check_catches_an_ungated_release() {
    let repos = case_repos(0);
    let (sim, _running, c) = world(&repos).await;
    let mut ghsas = Vec::new();
    for name in &repos {
        let m = marker("case-ungated", name);
        let (a, _) = c
            .ensure_draft(&repo(name), &draft("x", &m), &m, Attempt::First)
            .await
            .unwrap();
        // No gate: each repository is published as soon as its own draft exists.
        c.ensure_published(&repo(name), &a.ghsa_id, None, Attempt::First)
            .await
            .unwrap();
        ghsas.push(a.ghsa_id);
    }
    let case = Case {
        repos,
        ghsas,
        adopted: 0,
    };
    let early = early_patches(&sim.ledger(), std::slice::from_ref(&case));
    assert_eq!(early.len(), REPOS_PER_CASE - 1, "{early:#?}");
    assert!(early.iter().all(|l| l.contains("published")));
}
