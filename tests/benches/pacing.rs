//! Pacing benchmark: the hundred-repository case of `src/pacing.rs` against the simulator's
//! content-creation limit (80 per window, 500 per 60 windows, the window scaled down from
//! GitHub's minute). Prints the time from opening to the last write over the least time the
//! limit allows for the writes sent, against the target of 1.2, and the refusals (target 0).
//!
//! ```sh
//! cargo bench -p lockstep-e2e --bench pacing                # release build, 6 s window
//! LOCKSTEP_PACING_WINDOW_MS=20000 cargo bench -p lockstep-e2e --bench pacing
//! ```
#![allow(clippy::unwrap_used)]

use lockstep_e2e::pacing::{self, PacingSetup};

fn main() {
    let setup = PacingSetup::from_env(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "pacing benchmark: {} repositories, {} build",
        setup.n,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let run = rt.block_on(pacing::run(&setup));
    pacing::print(&setup, &run, 1.2);
    if !run.violations.is_empty() {
        println!("invariants violated:\n  {}", run.violations.join("\n  "));
        std::process::exit(1);
    }
}
