//! An idle `lockstep serve`: a store with no open case, against the simulator. Over a
//! measured window it must make no GitHub request at all and use under 1% of a core (user +
//! system CPU time of the process, from `/proc/<pid>/stat` in Linux's 100 Hz clock ticks,
//! over wall time).
//!
//! ```sh
//! cargo bench -p lockstep-e2e --bench idle                 # 30 s window
//! cargo bench -p lockstep-e2e --bench idle -- --seconds 120
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lockstep_e2e::serve::{Serve, ServeConfig, lockstep_bin};
use lockstep_e2e::*;
use lockstep_sim::SimConfig;

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let mut seconds = if bench { 30 } else { 5 };
    if let Some(i) = argv.iter().position(|a| a == "--seconds") {
        seconds = argv
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(seconds);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        println!("idle benchmark: binary {}", lockstep_bin().display());
        let workflow = small_workflow();
        let sim = simulator(SimConfig::default(), &workflow);
        let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lockstep.db");
        let store = open_store(&db).await;
        assert!(store.list_open_cases().await.unwrap().is_empty());
        let serve = Serve::spawn(&ServeConfig::new(&db, &running.base_url, dir.path()));
        // Let it start and settle; then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let requests_before = sim.ledger().len();
        let cpu_before = cpu_ticks(serve.pid());
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let wall = t.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(serve.pid()) - cpu_before) as f64 / 100.0;
        let requests = sim.ledger().len() - requests_before;
        let share = cpu / wall;
        println!(
            "idle serve, no open case, {wall:.0} s: {requests} GitHub requests (target 0: {}); CPU {:.3} s = {:.2}% of a core (target < 1%: {})",
            if requests == 0 { "ok" } else { "MISSED" },
            cpu,
            share * 100.0,
            if share < 0.01 { "ok" } else { "MISSED" }
        );
        drop(serve);
        running.shutdown().await.ok();
    });
}
