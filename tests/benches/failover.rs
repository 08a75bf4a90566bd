//! Failover benchmark: the ten-repository MCP SDK case (`workflows/mcp-sdks.toml`) against the
//! simulator with an injected round trip, released by real `lockstep serve` processes, one of
//! which is killed (SIGKILL) while it holds the release wave.
//!
//! The drafts phase runs in process with no latency (not measured). Then instance A starts
//! with `FAILPOINTS=github.before_send=sleep(5000)`, so that once it has claimed the wave it
//! holds the claims without sending; the fixes are marked released; once A holds every
//! publication of the wave, it is killed. The figure is the time from the SIGKILL to the last
//! publication of the wave in the simulator's ledger, against the target 2 s + one round trip,
//! and the spread from the first to the last publication.
//!
//! - SQLite: the killed instance is restarted (its `flock` is gone, so the new one takes the
//!   wave at its first claim).
//! - PostgreSQL (when `LOCKSTEP_TEST_POSTGRES_URL` is set): instance B is already running on
//!   the same database and takes the wave over (A's session is gone; B checks every 250 ms
//!   while another worker holds claims, and takes the claims once A's lock stayed free for the
//!   one-second grace).
//!
//! Before worker liveness both waited out the 60 s lease.
//!
//! ```sh
//! cargo bench -p lockstep-e2e --bench failover                 # release build, 3 runs each
//! cargo bench -p lockstep-e2e --bench failover -- --runs 1 --rtt-ms 100
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lockstep_e2e::serve::{Serve, ServeConfig, create_postgres_db, drop_postgres_db, lockstep_bin};
use lockstep_e2e::*;
use lockstep_github::PacingConfig;
use lockstep_sim::{FaultConfig, SimConfig};
use lockstep_store::OutboxState;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct Figures {
    failover_ms: i64,
    spread_ms: i64,
}

async fn one_run(postgres: Option<&str>, rtt: Duration, seed: u64) -> Figures {
    let workflow = mcp_workflow();
    let n = workflow.repos.len();
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
    let pg_name = format!("lockstep_failover_{}_{seed:x}", std::process::id());
    let url = match postgres {
        Some(admin) => create_postgres_db(admin, &pg_name).await,
        None => sqlite_url(&db),
    };
    let store = lockstep_store::Store::open(&url).await.unwrap();
    let mut expect = open_case(&store, "LS-FAILOVER-1", &workflow).await;

    // Drafts phase, no latency, not measured.
    let setup = github(&running.base_url, PacingConfig::unlimited());
    settle(&runtime(&store, &setup, fast_runtime_options("setup"))).await;
    sim.update_faults(|f| {
        *f = FaultConfig {
            latency: rtt,
            ..FaultConfig::default()
        }
    });

    let cfg = ServeConfig {
        database_url: postgres.map(|_| url.clone()),
        ..ServeConfig::new(&db, &running.base_url, dir.path())
    };
    let mut a = Serve::spawn(&ServeConfig {
        failpoints: Some("github.before_send=sleep(5000)".into()),
        ..cfg.clone()
    });
    let a_worker = a.worker();
    // Let A come up before the fixes land, so that it is the one to claim the wave.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rng = StdRng::seed_from_u64(seed);
    for m in shuffle_marks(release_marks(&workflow, &BTreeSet::new()), &mut rng) {
        commit_mark(&store, &workflow, &mut expect, m).await;
    }
    // Wait until A holds the first wave.
    let case = store.case(&expect.case).await.unwrap();
    let wave = case.release_plan().first().map_or(0, Vec::len);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = store
            .outbox(Some(&expect.case))
            .await
            .unwrap()
            .into_iter()
            .filter(|r| {
                r.action == "publish"
                    && r.state == OutboxState::Claimed
                    && r.lease_owner.as_deref() == Some(a_worker.as_str())
            })
            .count();
        if held == wave && wave > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never held the wave ({held}/{wave})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ledger_mark = sim.ledger().len();
    // PostgreSQL: B runs beside A before the kill. SQLite: B is A's restart.
    let mut b = None;
    if postgres.is_some() {
        b = Some(Serve::spawn(&cfg));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let killed_at = now_ms();
    a.kill();
    if b.is_none() {
        b = Some(Serve::spawn(&cfg));
    }
    wait_released(&sim, &store, n).await;
    drop(b);
    let ledger = sim.ledger();
    assert!(
        !ledger[..ledger_mark].iter().any(|e| e.is_publish()),
        "A published before it was killed"
    );
    let wave_at: Vec<i64> = ledger[ledger_mark..]
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| e.at.timestamp_millis())
        .take(wave)
        .collect();
    let first = *wave_at.iter().min().unwrap();
    let last = *wave_at.iter().max().unwrap();
    if let Err(v) = invariants::check_url(&sim, &store, &url, &expect).await {
        panic!("invariants:\n  {}", v.join("\n  "));
    }
    store.close().await;
    if let Some(admin) = postgres {
        drop_postgres_db(admin, &pg_name).await;
    }
    running.shutdown().await.ok();
    Figures {
        failover_ms: last - killed_at,
        spread_ms: last - first,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let mut runs = if bench { 3 } else { 1 };
    let mut rtt = Duration::from_millis(200);
    let mut it = argv.iter().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--runs" => runs = value().unwrap_or(runs as u64) as usize,
            "--rtt-ms" => rtt = Duration::from_millis(value().unwrap_or(200)),
            _ => {}
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    // Build (or find) the binary before any clock starts.
    println!("failover benchmark: binary {}", lockstep_bin().display());
    let admin = std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let bound_ms = 2000 + rtt.as_millis() as i64;
    for (name, pg) in [
        ("SQLite (the killed instance restarts)", None),
        (
            "PostgreSQL (a second instance takes over)",
            admin.as_deref(),
        ),
    ] {
        if name.starts_with("PostgreSQL") && pg.is_none() {
            println!("\n{name}: skipped (set LOCKSTEP_TEST_POSTGRES_URL)");
            continue;
        }
        println!(
            "\n{name}, injected round trip {} ms, target: last publication of the wave within 2 s + RTT = {bound_ms} ms of the SIGKILL",
            rtt.as_millis()
        );
        for run in 0..runs {
            let f = rt.block_on(one_run(pg, rtt, 0xfa11 + run as u64));
            println!(
                "  run {}: SIGKILL → last publication {} ms = {:.2} × (2 s + RTT) ({}); spread of the wave {} ms = {:.2} RTT",
                run + 1,
                f.failover_ms,
                f.failover_ms as f64 / bound_ms as f64,
                if f.failover_ms <= bound_ms {
                    "ok"
                } else {
                    "MISSED"
                },
                f.spread_ms,
                f.spread_ms as f64 / rtt.as_millis() as f64
            );
        }
    }
}
