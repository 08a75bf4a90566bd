//! Smoke test of the simulator as an exactly-once oracle: a reconcile-before-write client
//! under 20% 5xx and 30% reset-after-apply must end with exactly one advisory per
//! (run, repository), each published once, and the ledger must prove it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_sim::{FaultKind, spawn_local};
use reqwest::Method;
use serde_json::{Value, json};

/// Finds the advisory carrying `marker` in its description (reconcile before write).
async fn find(api: &Api, repo: &str, marker: &str) -> Option<(String, String)> {
    loop {
        let Ok(r) = api
            .try_send(
                Method::GET,
                &format!("/repos/{repo}/security-advisories?per_page=100"),
                Some(ADMIN),
                None,
                &[],
            )
            .await
        else {
            continue;
        };
        if !r.status.is_success() {
            continue;
        }
        return r
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["description"].as_str().unwrap().contains(marker))
            .map(|a| {
                (
                    a["ghsa_id"].as_str().unwrap().to_owned(),
                    a["state"].as_str().unwrap().to_owned(),
                )
            });
    }
}

#[tokio::test]
async fn create_then_publish_exactly_once_under_faults() {
    let sim = seeded(quiet_config());
    sim.update_faults(|f| {
        f.error_5xx = 0.2;
        f.reset_after_apply = 0.3;
    });
    let running = spawn_local(sim.clone()).await.unwrap();
    let api = Api::new(&running.base_url);
    let runs = 25;
    for run in 0..runs {
        for repo in [REPO, REPO2] {
            let marker = format!("[lockstep:run-{run}]");
            let ghsa = loop {
                if let Some((g, _)) = find(&api, repo, &marker).await {
                    break g;
                }
                let mut body = create_body("exactly once");
                body["description"] = Value::String(format!("details {marker}"));
                let _ = api
                    .try_send(
                        Method::POST,
                        &format!("/repos/{repo}/security-advisories"),
                        Some(ADMIN),
                        Some(&body),
                        &[],
                    )
                    .await;
            };
            loop {
                if find(&api, repo, &marker)
                    .await
                    .is_some_and(|(_, s)| s == "published")
                {
                    break;
                }
                let _ = api
                    .try_send(
                        Method::PATCH,
                        &adv_path(repo, &ghsa),
                        Some(ADMIN),
                        Some(&json!({"state": "published"})),
                        &[],
                    )
                    .await;
            }
        }
    }
    let ledger = sim.ledger();
    for repo in [REPO, REPO2] {
        let creations = ledger
            .iter()
            .filter(|e| e.repo.as_deref() == Some(repo) && e.is_creation())
            .count();
        assert_eq!(creations, runs);
        let publishes = ledger
            .iter()
            .filter(|e| e.repo.as_deref() == Some(repo) && e.is_publish())
            .count();
        assert_eq!(publishes, runs);
        assert_eq!(sim.advisories(repo).unwrap().len(), runs);
    }
    // Every publish comes after the creation of the same advisory.
    for p in ledger.iter().filter(|e| e.is_publish()) {
        let c = ledger
            .iter()
            .find(|e| e.is_creation() && e.ghsa_id == p.ghsa_id)
            .unwrap();
        assert!(c.seq < p.seq);
    }
    assert!(
        ledger
            .iter()
            .any(|e| e.fault == Some(FaultKind::ResetAfterApply))
    );
    assert!(ledger.iter().any(|e| e.fault == Some(FaultKind::Error5xx)));
}
