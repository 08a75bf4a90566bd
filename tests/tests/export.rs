//! `lockstep export`: the built binary writes a published case's OSV, CSAF and CVE documents,
//! and refuses an unknown format and a caller who may not read the case with one line.
#![allow(clippy::unwrap_used)]

use lockstep_e2e::cli::{World, one_line_error};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_published_case_exports_every_format() {
    let w = World::new().await;
    let case = w.publish_all(Some(">= 1.0.0, < 2.0.1"));

    let out = w.path("out");
    for format in ["osv", "csaf", "cve"] {
        w.as_("bob")
            .args(["export", &case, "--format", format, "-o"])
            .arg(&out)
            .assert()
            .success();
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("GHSA-")).count(),
        3,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("CVE-")).count(),
        3,
        "{names:?}"
    );
    let csaf_name = format!("{}.json", case.to_ascii_lowercase());
    assert!(names.contains(&csaf_name), "{names:?}");
    let csaf: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&csaf_name)).unwrap()).unwrap();
    assert_eq!(csaf["document"]["tracking"]["status"], "final");
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "WHITE");

    // One repository's record on stdout.
    let stdout = w
        .as_("alice")
        .args(["export", &case, "--format", "osv", "--repo", "org/extra"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let osv: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(osv["affected"][0]["package"]["ecosystem"], "crates.io");
    assert_eq!(
        osv["affected"][0]["ranges"][0]["events"],
        serde_json::json!([{ "introduced": "1.0.0" }, { "fixed": "2.0.1" }])
    );
    assert!(osv["published"].is_string());

    one_line_error(
        w.as_("alice").args(["export", &case, "--format", "xml"]),
        2,
        "xml",
    );
    one_line_error(
        w.as_("eve").args(["export", &case, "--format", "csaf"]),
        3,
        "refused",
    );
    one_line_error(
        w.as_("alice")
            .args(["export", &case, "--format", "csaf", "--repo", "org/core"]),
        1,
        "whole case",
    );
}

fn osv_of(w: &World, case: &str, repo: &str) -> Value {
    let out = w
        .as_("alice")
        .args(["export", case, "--format", "osv", "--repo", repo])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_advisory_is_amended_on_github_and_in_the_exports() {
    let w = World::new().await;
    let case = w.publish_all(Some("< 2.0.1"));
    let before = osv_of(&w, &case, "org/core");
    let ghsa = before["id"].as_str().unwrap().to_owned();

    // bob maintains org/core: the Go case, a fix found incomplete.
    w.as_("bob")
        .args([
            "amend",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.2",
            "--vulnerable-range",
            "< 2.0.2",
            "--reason",
            "the SSE transport was not fixed in 2.0.1",
        ])
        .assert()
        .success();
    w.run_once();
    let adv = w.sim.advisory("org/core", &ghsa).unwrap();
    assert_eq!(adv["state"], "published");
    let patched: Vec<&str> = adv["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["patched_versions"].as_str().unwrap())
        .collect();
    assert!(patched.iter().all(|p| *p == "2.0.2"), "{adv}");

    let after = osv_of(&w, &case, "org/core");
    assert!(after["modified"].as_str().unwrap() > before["modified"].as_str().unwrap());
    assert_eq!(
        after["affected"][0]["ranges"][0]["events"][1]["fixed"],
        "2.0.2"
    );
    let out = w
        .as_("alice")
        .args(["export", &case, "--format", "csaf"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let csaf: Value = serde_json::from_slice(&out).unwrap();
    let last = csaf["document"]["tracking"]["revision_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["summary"]
            .as_str()
            .unwrap()
            .contains("amended: the SSE transport"),
        "{last}"
    );

    // Refusals: one line, nothing changes.
    one_line_error(
        w.as_("dave").args([
            "amend",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "9",
            "--reason",
            "r",
        ]),
        3,
        "refused",
    );
    one_line_error(
        w.as_("alice")
            .args(["amend", &case, "--repo", "org/core", "--reason", "r"]),
        2,
        "required",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_amendment_is_refused_before_publication_and_a_github_refusal_waits_for_a_retry() {
    let w = World::new().await;
    let case = w.open(&[]);
    w.run_once();
    one_line_error(
        w.as_("alice").args([
            "amend",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.2",
            "--reason",
            "r",
        ]),
        1,
        "only a published advisory",
    );

    let w = World::new().await;
    let case = w.publish_all(Some("< 2.0.1"));
    // GitHub refuses: someone withdrew the advisory on GitHub, which takes no more edits.
    let ghsa = osv_of(&w, &case, "org/core")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.sim.withdraw("org/core", &ghsa).unwrap();
    w.as_("alice")
        .args([
            "amend",
            &case,
            "--repo",
            "org/core",
            "--patched-versions",
            "2.0.2",
            "--reason",
            "incomplete",
        ])
        .assert()
        .success();
    run_needs_a_person(&w);
    let show = w.show(&case);
    assert!(
        show.to_string().contains("amend"),
        "the alert names the amendment: {show}"
    );

    // A retry reads first: still withdrawn, so it is refused again without a write.
    w.as_("alice")
        .args([
            "retry",
            &case,
            "--repo",
            "org/core",
            "--reason",
            "asked GitHub to restore it",
        ])
        .assert()
        .success();
    let writes = w.sim.ledger().iter().filter(|e| e.write).count();
    run_needs_a_person(&w);
    assert_eq!(
        w.sim.ledger().iter().filter(|e| e.write).count(),
        writes,
        "no blind write"
    );
}

/// `run --once` exits 1 and says a failure waits for a person.
fn run_needs_a_person(w: &World) {
    let out = w
        .as_("alice")
        .args(["run", "--once"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("need a person") && stderr.contains("amend"),
        "{stderr}"
    );
}
