//! The propagation watch through the built binary: after publication, `run --once` follows
//! each advisory into the simulator's global database; `case show` says per repository
//! whether the copy is pending, reviewed, differs or will never come, and suggests closing
//! once everything has propagated; `auto_close` closes the case itself.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lockstep_e2e::cli::{WORKFLOW, World};
use serde_json::Value;

/// The journeys' workflow with org/extra in an ecosystem GitHub does not review.
fn workflow(extra: &str) -> String {
    format!(
        "{}\n[propagation]\nalert_after_hours = 72\n{extra}",
        WORKFLOW.replace("ecosystem = \"rust\"", "ecosystem = \"other\"")
    )
}

fn show_text(w: &World, case: &str) -> String {
    let out = w
        .as_("alice")
        .args(["case", "show", case])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn published_advisories_are_followed_into_the_global_database() {
    let w = World::new().await;
    std::fs::write(w.path("w.toml"), workflow("")).unwrap();
    // Long enough that the first look after publication comes before any review, even with
    // the binary started four times on a loaded machine in between.
    let delay = Duration::from_secs(10);
    w.sim.update_global(|g| {
        g.review_delay = delay;
        g.drop_alias = true;
    });
    let case = w.publish_all(None);
    let published = Instant::now();
    w.run_once();
    let text = show_text(&w, &case);
    assert!(
        text.contains("org/core: global database: pending for 0 h"),
        "{text}"
    );
    assert!(
        text.contains("org/extra: global database: GitHub does not review this ecosystem"),
        "{text}"
    );
    assert!(!text.contains("has propagated"), "{text}");

    // Reviewed, but the copies lost their CVE alias: an alert naming it.
    let mut seen = None;
    while seen.is_none() {
        std::thread::sleep(Duration::from_millis(250));
        w.run_once();
        let show = w.show(&case);
        if show["propagation"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["copy"]["state"] != "pending")
            .count()
            == 3
        {
            seen = Some(published.elapsed());
        }
        assert!(
            published.elapsed() < delay * 4,
            "no global copy seen: {show}"
        );
    }
    let seen = seen.unwrap();
    let text = show_text(&w, &case);
    assert!(text.contains("differs: the CVE alias CVE-"), "{text}");
    assert!(text.contains("alert"), "{text}");
    println!(
        "global copies all seen {:.2} s after publication (review delay {:.2} s, ratio {:.2})",
        seen.as_secs_f64(),
        delay.as_secs_f64(),
        seen.as_secs_f64() / delay.as_secs_f64()
    );

    // GitHub restores the alias: the watch sees it and the case has propagated.
    w.sim.update_global(|g| g.drop_alias = false);
    w.run_once();
    let text = show_text(&w, &case);
    assert!(
        text.contains("org/core: global database: reviewed at"),
        "{text}"
    );
    assert!(
        text.contains("has propagated") && text.contains("case close"),
        "{text}"
    );
    let show = w.show(&case);
    assert_eq!(show["propagated"], Value::Bool(true));
    assert_eq!(
        show["closed"],
        Value::Bool(false),
        "without auto_close it stays open"
    );
    // Settled copies are not read again.
    let before = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.path.starts_with("/advisories/"))
        .count();
    w.run_once();
    let after = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.path.starts_with("/advisories/"))
        .count();
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_close_closes_the_case_once_everything_has_propagated() {
    let w = World::new().await;
    std::fs::write(w.path("w.toml"), workflow("auto_close = true\n")).unwrap();
    let case = w.publish_all(None);
    w.run_once();
    let show = w.show(&case);
    assert_eq!(show["closed"], Value::Bool(true), "{show}");
}
