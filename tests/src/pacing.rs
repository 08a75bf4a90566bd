//! The hundred-repository pacing scenario, shared by the `pacing_100` test (which asserts its
//! behaviour) and the `pacing` benchmark (which measures its time against the limit).
//!
//! A generated N-repository workflow (one wave) runs against the simulator enforcing GitHub's
//! content-creation limit scaled down: `per_window` writes per window and `per_long_window`
//! per 60 windows. The adapter's pacer has the same budget plus a margin on its windows (the
//! pacer counts a write from the moment it grants the slot, the simulator, like GitHub, from
//! its arrival; the arrivals of a burst spread over tens of milliseconds). All assessments and
//! fixes but the last go in while the drafts open; the last (opening the gate) once they exist.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lockstep_github::{PacerStats, PacingConfig};
use lockstep_runtime::RuntimeOptions;
use lockstep_sim::{SecondaryLimits, SimConfig};

use crate::*;

/// The scenario's settings.
#[derive(Debug, Clone)]
pub struct PacingSetup {
    /// Repositories.
    pub n: usize,
    /// The short window (GitHub's is a minute).
    pub window: Duration,
    /// Writes per short window (GitHub: 80).
    pub per_window: u32,
    /// Writes per 60 short windows (GitHub: 500 per hour).
    pub per_long_window: u32,
    /// Added to the pacer's windows.
    pub margin: Duration,
}

impl PacingSetup {
    /// The defaults, with the window and margin from `LOCKSTEP_PACING_WINDOW_MS` (default
    /// 6,000) and `LOCKSTEP_PACING_MARGIN_MS` (default 250).
    pub fn from_env(n: usize) -> Self {
        let ms = |var: &str, default: u64| {
            Duration::from_millis(
                std::env::var(var)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default),
            )
        };
        Self {
            n,
            window: ms("LOCKSTEP_PACING_WINDOW_MS", 6_000),
            per_window: 80,
            per_long_window: 500,
            margin: ms("LOCKSTEP_PACING_MARGIN_MS", 250),
        }
    }

    /// The long window: 60 short ones.
    pub fn long_window(&self) -> Duration {
        self.window * 60
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct PacingRun {
    /// The writes in the ledger, by kind.
    pub counts: WriteCounts,
    /// From opening to the last write the simulator saw.
    pub total: Duration,
    /// From opening until every draft existed.
    pub drafts_done: Duration,
    /// From opening until every result was recorded.
    pub recorded: Duration,
    /// The least time the limit allows for the writes sent:
    /// `max((⌈W/per_window⌉ − 1) × window, (⌈W/per_long_window⌉ − 1) × long window)`.
    pub bound: Duration,
    /// The first and last publication, after opening.
    pub publications: (Duration, Duration),
    /// The pacer's own account.
    pub pacer: PacerStats,
    /// Invariant violations (I1–I6), empty when all hold.
    pub violations: Vec<String>,
}

impl PacingRun {
    /// `total / bound`.
    pub fn ratio(&self) -> f64 {
        self.total.as_secs_f64() / self.bound.as_secs_f64()
    }
}

/// Runs the scenario once. Panics if the case does not finish within 30 windows.
pub async fn run(setup: &PacingSetup) -> PacingRun {
    let n = setup.n;
    let workflow = wide_workflow(n);
    let config = SimConfig {
        secondary: SecondaryLimits {
            per_short_window: setup.per_window,
            short_window: setup.window,
            per_long_window: setup.per_long_window,
            long_window: setup.long_window(),
            ..SecondaryLimits::default()
        },
        ..SimConfig::default()
    };
    let sim = simulator(config, &workflow);
    let running = lockstep_sim::spawn_local(sim.clone())
        .await
        .unwrap_or_else(|e| panic!("simulator: {e}"));
    let pacing = PacingConfig {
        per_short_window: setup.per_window,
        short_window: setup.window + setup.margin,
        per_long_window: setup.per_long_window,
        long_window: setup.long_window() + setup.margin,
        // Spacing would bind before the window does (GitHub's advice, 1 s per write, is 60 per
        // minute): this scenario is about the window.
        min_spacing: Duration::ZERO,
    };
    let client = github(&running.base_url, pacing);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let db = dir.path().join("lockstep.db");
    let store = open_store(&db).await;

    let t0 = chrono::Utc::now();
    let started = Instant::now();
    let mut expect = open_case(&store, "LS-PACE-100", &workflow).await;
    // A wave of N publications is claimed together: the runtime's concurrency must cover it.
    let rt = runtime(
        &store,
        &client,
        RuntimeOptions {
            worker: "pacing".into(),
            concurrency: RuntimeOptions::default().concurrency.max(n),
            ..RuntimeOptions::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.serve(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let marks = release_marks(&workflow, &BTreeSet::new());
    let Some((last, rest)) = marks.split_last() else {
        panic!("no marks");
    };
    for m in rest {
        commit_mark(&store, &workflow, &mut expect, m.clone()).await;
    }
    let deadline = Instant::now() + setup.window * 30;
    loop {
        let case = store
            .case(&expect.case)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if case.scope().all(|(_, p)| p.advisory.ghsa.is_some()) && outbox_finished(&store).await {
            break;
        }
        assert!(Instant::now() < deadline, "the drafts phase did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drafts_done = started.elapsed();
    commit_mark(&store, &workflow, &mut expect, last.clone()).await;
    rt.wake();
    loop {
        let published = sim.ledger().iter().filter(|e| e.is_publish()).count();
        if published == n && outbox_finished(&store).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the release did not finish ({published}/{n}); {:?}",
            write_counts(&sim.ledger())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recorded = started.elapsed();
    let _ = stop.send(());
    if let Ok(Err(e)) = serving.await {
        panic!("serve: {e}");
    }

    let ledger = sim.ledger();
    let counts = write_counts(&ledger);
    let since = |at: chrono::DateTime<chrono::Utc>| (at - t0).to_std().unwrap_or_default();
    let last_write = ledger
        .iter()
        .filter(|e| e.write && e.actor.as_deref() == Some(BOT))
        .map(|e| since(e.at))
        .max()
        .unwrap_or_default();
    let writes = counts.sent as u32;
    let short_bound = setup.window * (writes.div_ceil(setup.per_window) - 1);
    let long_bound = setup.long_window() * (writes.div_ceil(setup.per_long_window) - 1);
    let publish_times: Vec<Duration> = ledger
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| since(e.at))
        .collect();
    let publications = (
        publish_times.iter().copied().min().unwrap_or_default(),
        publish_times.iter().copied().max().unwrap_or_default(),
    );
    let violations = invariants::check(&sim, &store, &db, &expect)
        .await
        .err()
        .unwrap_or_default();
    PacingRun {
        counts,
        total: last_write,
        drafts_done,
        recorded,
        bound: short_bound.max(long_bound),
        publications,
        pacer: client.pacer().stats(),
        violations,
    }
}

/// Prints a run's figures.
pub fn print(setup: &PacingSetup, run: &PacingRun, target: f64) {
    let c = &run.counts;
    println!(
        "pacing: {} repositories, limit {} per {:.1} s and {} per {:.0} s (pacer margin {} ms); {} writes ({} creates, {} edits, {} CVE requests, {} publications); {} secondary-limit refusals",
        setup.n,
        setup.per_window,
        setup.window.as_secs_f64(),
        setup.per_long_window,
        setup.long_window().as_secs_f64(),
        setup.margin.as_millis(),
        c.sent,
        c.creates,
        c.edits,
        c.cve_requests,
        c.publishes,
        c.secondary_limited
    );
    println!(
        "pacing: open to last write {:.2} s (drafts phase {:.2} s; publications {:.2}–{:.2} s; every result recorded at {:.2} s); the limit allows no less than {:.2} s; ratio {:.3} (target ≤ {target}: {}); pacer waited {:.1} s over {} slots",
        run.total.as_secs_f64(),
        run.drafts_done.as_secs_f64(),
        run.publications.0.as_secs_f64(),
        run.publications.1.as_secs_f64(),
        run.recorded.as_secs_f64(),
        run.bound.as_secs_f64(),
        run.ratio(),
        if run.ratio() <= target {
            "ok"
        } else {
            "MISSED"
        },
        run.pacer.waited.as_secs_f64(),
        run.pacer.granted
    );
}
