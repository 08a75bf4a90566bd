//! A hundred-repository case against the simulator enforcing GitHub's content-creation limit
//! (scaled down; see `src/pacing.rs`): the pacer must keep every write within it, so that
//! GitHub refuses none, and the case must still open, link, request and publish everything.
//!
//! This asserts behaviour. How close the time comes to what the limit allows is a performance
//! figure, measured by `cargo bench -p lockstep-e2e --bench pacing`; it is printed here too.
#![allow(clippy::unwrap_used)]

use lockstep_e2e::pacing::{self, PacingSetup};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pacing_100() {
    let setup = PacingSetup::from_env(100);
    let run = pacing::run(&setup).await;
    pacing::print(&setup, &run, 1.2);
    assert_eq!(
        run.counts.secondary_limited, 0,
        "the pacer let the simulator refuse writes"
    );
    assert_eq!(run.counts.creates, 100, "one advisory per repository");
    assert_eq!(run.counts.publishes, 100, "every advisory published");
    assert_eq!(run.counts.cve_requests, 100, "every CVE requested");
    // 3N + A writes with every repository affected (see ARCHITECTURE.md): nothing was
    // written twice.
    assert_eq!(run.counts.sent, 400, "{:?}", run.counts);
    // The pacer never waited out the long window: 400 writes fit in one.
    assert!(
        run.pacer.waited < setup.long_window(),
        "the pacer waited {:?}",
        run.pacer.waited
    );
    assert!(
        run.violations.is_empty(),
        "invariants:\n  {}",
        run.violations.join("\n  ")
    );
}
