//! Release benchmark: the ten-repository MCP SDK case (`workflows/mcp-sdks.toml`) against the
//! simulator with an injected round trip, the runtime in process (`Runtime::serve`, woken
//! after each command).
//!
//! The drafts phase runs with no latency (it is not what is measured): the drafts open and
//! the maintainers assess, which requests the CVEs of the affected (the workflow's default
//! `cve = "on-affected"`), as it happens days before any fix. Then the latency is set, the
//! maintainers mark their fixes released in random order through the store, and the
//! benchmark measures from the commit of the last fix to the last publication in the
//! simulator's ledger:
//!
//! * release latency / (waves × RTT), target < 1.5;
//! * spread (first to last publication) / RTT, target < 1.5 within a wave;
//! * API writes against 3N + A − 1, A the affected (N creates, N − 1 link updates, A CVE
//!   requests, A publications, N − A draft closes), collaborator PATCHes counted apart.
//!
//! RTT is measured in the same run (median of timed GETs through the same client).
//!
//! ```sh
//! cargo bench -p lockstep-e2e --bench release                 # 3 runs per pacing, release build
//! cargo bench -p lockstep-e2e --bench release -- --runs 1 --rtt-ms 100
//! cargo test  -p lockstep-e2e --bench release                 # quick: 1 run, debug build
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lockstep_core::RepoId;
use lockstep_e2e::*;
use lockstep_github::{PacingConfig, RepoName};
use lockstep_runtime::RuntimeOptions;
use lockstep_sim::{FaultConfig, SimConfig};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

struct Args {
    runs: usize,
    rtt: Duration,
    jitter: Duration,
    seed: u64,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --bench release` does not: then run quickly.
    let bench = argv.iter().any(|a| a == "--bench");
    let mut a = Args {
        runs: if bench { 3 } else { 1 },
        rtt: Duration::from_millis(200),
        jitter: Duration::ZERO,
        seed: 0x5eed,
    };
    let mut it = argv.iter().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--runs" => a.runs = value().unwrap_or(a.runs as u64) as usize,
            "--rtt-ms" => a.rtt = Duration::from_millis(value().unwrap_or(200)),
            "--jitter-ms" => a.jitter = Duration::from_millis(value().unwrap_or(0)),
            "--seed" => a.seed = value().unwrap_or(a.seed),
            _ => {}
        }
    }
    a
}

#[derive(Debug, Clone)]
struct Figures {
    rtt_ms: f64,
    waves: usize,
    release_ms: f64,
    spread_ms: f64,
    writes: WriteCounts,
    collaborator_patches: usize,
    link_updates: usize,
    n: usize,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.release_ms / (self.waves as f64 * self.rtt_ms)
    }
    fn spread_rtts(&self) -> f64 {
        self.spread_ms / self.rtt_ms
    }
    /// Creates, link updates, CVE requests, publications and closes.
    fn core_writes(&self) -> usize {
        self.writes.creates
            + self.link_updates
            + self.writes.cve_requests
            + self.writes.publishes
            + self.writes.closes
    }
    /// The lower bound 3N + A − 1, A the affected (those published).
    fn bound(&self) -> usize {
        3 * self.n + self.writes.publishes - 1
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn one_run(pacing: PacingConfig, a: &Args, seed: u64) -> Figures {
    let workflow = mcp_workflow();
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();
    let n = repos.len();
    let sim = simulator(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        &workflow,
    );
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lockstep.db");
    let store = open_store(&db).await;
    let mut expect = open_case(&store, "LS-BENCH-1", &workflow).await;

    // Drafts phase, no latency, not measured: the drafts open and every maintainer assesses.
    let (assessments, fixes): (Vec<Mark>, Vec<Mark>) = release_marks(&workflow, &BTreeSet::new())
        .into_iter()
        .partition(|m| matches!(m.kind, MarkKind::Assess(_)));
    for m in assessments {
        commit_mark(&store, &workflow, &mut expect, m).await;
    }
    let setup = github(&running.base_url, PacingConfig::unlimited());
    settle(&runtime(&store, &setup, fast_runtime_options("setup"))).await;

    sim.update_faults(|f| {
        *f = FaultConfig {
            latency: a.rtt,
            jitter: a.jitter,
            ..FaultConfig::default()
        }
    });
    let client = github(&running.base_url, pacing);
    // The round trip, measured through the same client.
    let probe = RepoName::parse(repos[0].as_str()).unwrap();
    let ghsa = sim.advisories(repos[0].as_str()).unwrap()[0]["ghsa_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        client.get_advisory(&probe, &ghsa).await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let rtt_ms = median(samples);

    // The release: the production runtime options, `serve` in a task, woken after commits.
    let rt = runtime(
        &store,
        &client,
        RuntimeOptions {
            worker: "bench".into(),
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
    let mut rng = StdRng::seed_from_u64(seed);
    let marks = shuffle_marks(fixes, &mut rng);
    let ledger_mark = sim.ledger().len();
    let mut last_commit = None;
    for m in marks {
        let c = commit_mark(&store, &workflow, &mut expect, m).await;
        last_commit = c.events.first().map(|e| e.at);
        rt.wake();
    }
    let last_commit = last_commit.unwrap();
    wait_released(&sim, &store, n).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    let ledger = sim.ledger();
    if std::env::var("LOCKSTEP_BENCH_TRACE").is_ok_and(|v| v == "1") {
        // Every request after the last commit, as the simulator applied it (after the latency).
        for e in ledger[ledger_mark..]
            .iter()
            .filter(|e| e.at.timestamp_millis() >= last_commit.millis() - 500)
        {
            println!(
                "    {:+6} ms  {} {} {}",
                e.at.timestamp_millis() - last_commit.millis(),
                e.method,
                e.op,
                e.repo.as_deref().unwrap_or("")
            );
        }
    }
    let publishes: Vec<i64> = ledger[ledger_mark..]
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| e.at.timestamp_millis())
        .collect();
    let first = *publishes.iter().min().unwrap();
    let last = *publishes.iter().max().unwrap();
    let case = store.case(&expect.case).await.unwrap();
    let collaborator_patches = case
        .effects
        .values()
        .filter(|e| e.action == "add-collaborators")
        .count();
    let writes = write_counts(&ledger);
    let report = invariants::check(&sim, &store, &db, &expect).await;
    if let Err(v) = report {
        panic!("invariants:\n  {}", v.join("\n  "));
    }
    Figures {
        rtt_ms,
        waves: case.release_plan().len(),
        release_ms: (last - last_commit.millis()) as f64,
        spread_ms: (last - first) as f64,
        link_updates: writes.edits.saturating_sub(collaborator_patches),
        collaborator_patches,
        writes,
        n,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "release benchmark: workflows/mcp-sdks.toml, injected latency {} ms ± {} ms, {} run(s) per pacing, {} build",
        a.rtt.as_millis(),
        a.jitter.as_millis(),
        a.runs,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for (name, pacing) in [
        (
            "production pacing (80/min, 500/h, 1 s between ordinary writes)",
            PacingConfig::default(),
        ),
        (
            "no pacing budget (PacingConfig::unlimited)",
            PacingConfig::unlimited(),
        ),
    ] {
        println!("\n{name}");
        let mut all = Vec::new();
        for run in 0..a.runs {
            let f = rt.block_on(one_run(pacing.clone(), &a, a.seed.wrapping_add(run as u64)));
            println!(
                "  run {}: RTT {:.1} ms, {} wave(s); release latency {:.0} ms = {:.2} × waves×RTT (target < 1.5: {}); spread {:.0} ms = {:.2} RTT (target < 1.5: {})",
                run + 1,
                f.rtt_ms,
                f.waves,
                f.release_ms,
                f.ratio(),
                verdict(f.ratio() < 1.5),
                f.spread_ms,
                f.spread_rtts(),
                verdict(f.spread_rtts() < 1.5)
            );
            all.push(f);
        }
        let f = &all[0];
        println!(
            "  writes (N = {}, A = {}): {} creates + {} link updates + {} CVE requests + {} publications + {} closes = {} (3N+A−1 = {}: {}); plus {} collaborator PATCHes; {} write requests in all",
            f.n,
            f.writes.publishes,
            f.writes.creates,
            f.link_updates,
            f.writes.cve_requests,
            f.writes.publishes,
            f.writes.closes,
            f.core_writes(),
            f.bound(),
            verdict(f.core_writes() == f.bound()),
            f.collaborator_patches,
            f.writes.sent
        );
        if all.len() > 1 {
            println!(
                "  median of {}: release latency {:.2} × waves×RTT, spread {:.2} RTT",
                all.len(),
                median(all.iter().map(Figures::ratio).collect()),
                median(all.iter().map(Figures::spread_rtts).collect())
            );
        }
    }
}
