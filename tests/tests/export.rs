//! `lockstep export`: the built binary writes a published case's OSV, CSAF and CVE documents,
//! and refuses an unknown format and a caller who may not read the case with one line.
#![allow(clippy::unwrap_used)]

use lockstep_e2e::cli::{World, one_line_error};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_published_case_exports_every_format() {
    let w = World::new().await;
    let case = w.open(&[]);
    w.run_once();
    for repo in ["org/core", "org/plugin", "org/extra"] {
        w.as_("alice")
            .args([
                "fix-ready",
                &case,
                "--repo",
                repo,
                "--patched-versions",
                "2.0.1",
                "--vulnerable-range",
                ">= 1.0.0, < 2.0.1",
            ])
            .assert()
            .success();
    }
    w.run_once();
    w.run_once();

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
