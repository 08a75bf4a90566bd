//! Rate limits are honoured, not retried early: a refusal holds every write of the token
//! until the time GitHub advertised; a wait beyond `max_wait` comes back to the caller at
//! once (and later writes are refused without being sent); the reconciling `ensure_*`
//! loops and release waves wait out the advertised time before trying again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use lockstep_github::{Attempt, Error, GithubClient, WaveItem};
use lockstep_sim::{FaultConfig, FaultKind, InjectedFault, LedgerEntry, Simulator};

fn posts(sim: &Simulator) -> Vec<LedgerEntry> {
    sim.ledger()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect()
}

fn retry_after(sim: &Simulator, d: Duration) {
    sim.set_faults(FaultConfig {
        retry_after: d,
        ..FaultConfig::default()
    });
}

#[tokio::test]
async fn a_refusal_beyond_max_wait_is_returned_and_holds_the_token() {
    let (sim, running, _c) = start().await;
    retry_after(&sim, Duration::from_secs(3));
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.max_wait = Duration::from_millis(500);
    let c = GithubClient::new(cfg).unwrap();
    sim.inject(InjectedFault::SecondaryLimit, 1);
    let m = marker("case-rl", REPO);
    let t0 = Instant::now();
    // ensure_draft gives the refusal back instead of retrying after its short backoff.
    let e = c
        .ensure_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        matches!(e, Error::SecondaryRateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)),
        "{e:?}"
    );
    assert_eq!(
        posts(&sim).len(),
        1,
        "one POST, refused; nothing sent after it"
    );
    assert_eq!(sim.ledger().len(), 1, "not even the reconciling list");
    // The token's writes are held until GitHub's time: the next write is refused
    // without being sent, with what is left of the wait.
    let held = c.pacer().blocked_for().unwrap();
    assert!(held > Duration::from_millis(2_500), "{held:?}");
    let m2 = marker("case-rl-2", REPO);
    let e = c
        .create_draft(&repo(REPO), &draft("y", &m2), &m2, Attempt::First)
        .await
        .unwrap_err();
    match e {
        Error::SecondaryRateLimited {
            retry_after: Some(d),
        } => {
            assert!(
                d <= Duration::from_secs(3) && d > Duration::from_secs(2),
                "{d:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.ledger().len(), 1, "nothing was sent");
    // Reads are not content creation: they still go out.
    c.list_advisories(&repo(REPO), &Default::default())
        .await
        .unwrap();
    assert!(sim.advisory_states(REPO).unwrap().is_empty());
}

#[tokio::test]
async fn ensure_waits_the_advertised_time_after_send_gave_up() {
    let (sim, running, _c) = start().await;
    // No retries inside `send`: every refusal reaches the reconciling loop.
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.rate_limit_retries = 0;
    let c = GithubClient::new(cfg).unwrap();
    sim.inject(InjectedFault::SecondaryLimit, 2);
    let m = marker("case-wait", REPO);
    let t0 = Instant::now();
    let (a, _) = c
        .ensure_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    let ledger = sim.ledger();
    let refused: Vec<&LedgerEntry> = ledger
        .iter()
        .filter(|e| e.fault == Some(FaultKind::SecondaryLimit))
        .collect();
    assert_eq!(refused.len(), 2);
    // Nothing at all (no reconciling read, no POST) within `retry-after` (1 s) of a refusal.
    for r in &refused {
        for later in ledger.iter().filter(|e| e.seq > r.seq) {
            let gap = (later.at - r.at).to_std().unwrap();
            assert!(
                gap >= Duration::from_millis(990),
                "#{} {} {} only {gap:?} after refusal #{}",
                later.seq,
                later.method,
                later.path,
                r.seq
            );
        }
    }
    let created: Vec<_> = ledger.iter().filter(|e| e.is_creation()).collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].ghsa_id.as_deref(), Some(a.ghsa_id.as_str()));
}

#[tokio::test]
async fn a_wave_write_refused_inside_its_burst_is_retried_after_the_wait() {
    let (sim, running, _c) = start().await;
    let c = client(&running.base_url, ADMIN_TOKEN);
    let mut items = Vec::new();
    for i in 0..3 {
        let m = marker(&format!("case-w{i}"), REPO);
        let (a, _) = c
            .create_draft(&repo(REPO), &draft("w", &m), &m, Attempt::First)
            .await
            .unwrap();
        items.push(WaveItem {
            repo: repo(REPO),
            ghsa: a.ghsa_id,
            content: None,
            attempt: Attempt::First,
        });
    }
    sim.inject(InjectedFault::SecondaryLimit, 1);
    let t0 = Instant::now();
    // The retry takes a slot of the burst (the burst holds the serial permit): no deadlock.
    let results = tokio::time::timeout(Duration::from_secs(10), c.publish_wave(&items))
        .await
        .expect("the wave finishes");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let ledger = sim.ledger();
    let refusal = ledger
        .iter()
        .find(|e| e.fault == Some(FaultKind::SecondaryLimit))
        .unwrap();
    let last_publish = ledger.iter().rfind(|e| e.is_publish()).unwrap();
    assert!((last_publish.at - refusal.at).to_std().unwrap() >= Duration::from_millis(990));
    assert_eq!(ledger.iter().filter(|e| e.is_publish()).count(), 3);
}

#[tokio::test]
async fn a_wave_refused_beyond_max_wait_is_returned_not_retried() {
    let (sim, running, _c) = start().await;
    retry_after(&sim, Duration::from_secs(30));
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.max_wait = Duration::from_secs(1);
    let c = GithubClient::new(cfg).unwrap();
    let m = marker("case-wl", REPO);
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("w", &m), &m, Attempt::First)
        .await
        .unwrap();
    sim.inject(InjectedFault::SecondaryLimit, 1);
    let t0 = Instant::now();
    let results = c
        .publish_wave(&[WaveItem {
            repo: repo(REPO),
            ghsa: a.ghsa_id.clone(),
            content: None,
            attempt: Attempt::First,
        }])
        .await;
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert!(
        matches!(&results[0], Err(Error::SecondaryRateLimited { retry_after: Some(d) }) if *d == Duration::from_secs(30)),
        "{results:?}"
    );
    let patches = sim.ledger().iter().filter(|e| e.method == "PATCH").count();
    assert_eq!(
        patches, 1,
        "no second publish attempt, and no re-check read either"
    );
    assert_eq!(sim.ledger().iter().filter(|e| e.method == "GET").count(), 0);
}
