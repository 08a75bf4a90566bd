//! Remote-mode overhead: the median wall time of `lockstep case show CASE` through a shared
//! `lockstep serve` (remote mode) against the same command over the database (local mode), in
//! one run, on the same machine, the same case and the same binary. Target: at most 2×.
//!
//! Each sample is a whole process, as a person runs it: start, settings, token, one request
//! (remote) or opening the database and resolving the caller (local), output.
//!
//! ```sh
//! cargo bench -p lockstep-e2e --bench remote                  # release build
//! cargo test  -p lockstep-e2e --bench remote                  # quick: debug build
//! LOCKSTEP_BENCH_SAMPLES=101 cargo bench -p lockstep-e2e --bench remote
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lockstep_e2e::cli::{Mode, World, serve_with};

/// The bound on remote / local.
const BOUND: f64 = 2.0;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn sample(w: &World, case: &str, n: usize) -> Duration {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = w.as_("bob");
        c.args(["case", "show", case]);
        let started = Instant::now();
        c.assert().success();
        times.push(started.elapsed());
    }
    median(times)
}

fn main() {
    let samples: usize = std::env::var("LOCKSTEP_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(World::new());
    let case = w.open(&[]);
    w.run_once();
    // One warm-up each, so that neither side pays for a cold page cache alone.
    let local = {
        sample(&w, &case, 1);
        sample(&w, &case, samples)
    };
    w.service = Some(serve_with(&w, "whsec", "info", true));
    w.mode = Mode::Remote;
    let remote = {
        sample(&w, &case, 1);
        sample(&w, &case, samples)
    };
    let ratio = remote.as_secs_f64() / local.as_secs_f64();
    println!(
        "case show, median of {samples}: local {:.1} ms, remote {:.1} ms; remote/local {ratio:.2} (bound {BOUND:.2}): {}",
        local.as_secs_f64() * 1e3,
        remote.as_secs_f64() * 1e3,
        if ratio <= BOUND { "within" } else { "OVER" }
    );
}
