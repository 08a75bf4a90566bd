//! Oracle test: every request body the adapter sends validates against the request schema
//! of GitHub's OpenAPI description (`repository-advisory-create` / `-update`). Bodies are
//! captured by a proxy in front of the simulator and cross-checked against the
//! simulator's ledger (SHA-256 of the raw body).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_github::{
    AdvisoryUpdate, Attempt, Credit, CreditType, Ecosystem, FieldUpdate, NewAdvisory, Rating,
    Severity, TargetState, Vulnerability, WaveItem,
};
use lockstep_sim::oracle::Validator;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A validator for `#/components/schemas/{name}` of GitHub's OpenAPI description.
fn validator(name: &str) -> Validator {
    lockstep_sim::oracle::Oracle::load()
        .unwrap()
        .component(name)
        .unwrap()
}

fn check(v: &Validator, body: &Value, what: &str) {
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {body}\n{errors:#?}");
}

#[test]
fn the_oracle_has_teeth() {
    let create = validator("repository-advisory-create");
    let update = validator("repository-advisory-update");
    assert!(!create.is_valid(&json!({"summary": "s", "description": "d"})));
    assert!(
        !create.is_valid(
            &json!({"summary": "s", "description": "d", "vulnerabilities": [], "bogus": 1})
        )
    );
    assert!(!update.is_valid(&json!({"severity": "urgent"})));
    assert!(!update.is_valid(&json!({"state": "withdrawn"})));
    assert!(
        update.is_valid(&json!({"severity": null, "cve_id": null, "collaborating_users": null}))
    );
    assert!(!update.is_valid(&json!({"summary": null})));
}

fn rich_draft(m: &str, rating: Option<Rating>) -> NewAdvisory {
    NewAdvisory {
        summary: "Prototype pollution in widget".into(),
        description: format!("Details.\n\n{m}"),
        rating,
        cve_id: Some("CVE-2024-99999".into()),
        cwe_ids: vec!["CWE-1321".into(), "CWE-20".into()],
        credits: vec![
            Credit {
                login: "monalisa".into(),
                credit_type: CreditType::Finder,
            },
            Credit {
                login: "bob".into(),
                credit_type: CreditType::RemediationDeveloper,
            },
        ],
        vulnerabilities: vec![
            Vulnerability {
                ecosystem: Ecosystem::Npm,
                name: "widget".into(),
                vulnerable_version_range: Some("< 2.0.1".into()),
                patched_versions: None,
                vulnerable_functions: vec!["merge".into()],
            },
            Vulnerability {
                ecosystem: Ecosystem::Rust,
                name: "widget-rs".into(),
                vulnerable_version_range: None,
                patched_versions: Some("0.3.2".into()),
                vulnerable_functions: vec![],
            },
        ],
        start_private_fork: true,
    }
}

#[tokio::test]
async fn every_request_body_validates_against_the_openapi_request_schema() {
    let (sim, running, _c) = start().await;
    sim.set_cve_policy(lockstep_sim::CvePolicy::Manual);
    let px = proxy(&running).await;
    let c = client(&px.base_url, ADMIN_TOKEN);
    let r = repo(REPO);
    let r2 = repo(REPO2);

    // Creates: severity, CVSS, no rating, minimal, and a retried one (adopted).
    let m1 = marker("case-o", REPO);
    let (a, _) = c
        .create_draft(
            &r,
            &rich_draft(&m1, Some(Rating::Severity(Severity::Critical))),
            &m1,
            Attempt::First,
        )
        .await
        .unwrap();
    let m2 = marker("case-o", REPO2);
    let vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    let (b, _) = c
        .create_draft(
            &r2,
            &rich_draft(&m2, Some(Rating::Cvss(vector.into()))),
            &m2,
            Attempt::First,
        )
        .await
        .unwrap();
    let m3 = marker("case-min", REPO);
    let mut minimal = draft("minimal", &m3);
    minimal.rating = None;
    minimal.cwe_ids.clear();
    minimal.credits.clear();
    minimal.vulnerabilities.clear();
    let (m_adv, _) = c
        .create_draft(&r, &minimal, &m3, Attempt::First)
        .await
        .unwrap();
    c.ensure_draft(&r, &minimal, &m3, Attempt::Retry)
        .await
        .unwrap();

    // Updates with every kind of field, explicit nulls included.
    c.update_advisory(
        &r,
        &a.ghsa_id,
        &AdvisoryUpdate {
            summary: Some("New summary".into()),
            rating: Some(Rating::Cvss(vector.into())),
            cve_id: FieldUpdate::Clear,
            cwe_ids: FieldUpdate::Set(vec!["CWE-79".into()]),
            credits: FieldUpdate::Clear,
            collaborating_users: FieldUpdate::Set(vec!["bob".into()]),
            collaborating_teams: FieldUpdate::Clear,
            ..AdvisoryUpdate::default()
        },
    )
    .await
    .unwrap();
    c.update_advisory(
        &r,
        &a.ghsa_id,
        &AdvisoryUpdate {
            rating: Some(Rating::Severity(Severity::Medium)),
            cwe_ids: FieldUpdate::Clear,
            ..AdvisoryUpdate::default()
        },
    )
    .await
    .unwrap();
    c.set_collaborators(&r, &a.ghsa_id, &[]).await.unwrap();
    c.set_credits(
        &r,
        &a.ghsa_id,
        &[Credit {
            login: "monalisa".into(),
            credit_type: CreditType::Reporter,
        }],
    )
    .await
    .unwrap();
    c.link_siblings(
        &r,
        &a.ghsa_id,
        &format!("Links {}\n{m1}", b.ghsa_id),
        Some(&["bob".into()]),
    )
    .await
    .unwrap();
    c.request_cve(&r, &a.ghsa_id).await.unwrap();
    c.create_private_fork(&r, &m_adv.ghsa_id).await.unwrap();
    c.close(&r, &m_adv.ghsa_id, Attempt::Retry).await.unwrap();
    c.update_advisory(
        &r,
        &m_adv.ghsa_id,
        &AdvisoryUpdate {
            state: Some(TargetState::Draft),
            ..AdvisoryUpdate::default()
        },
    )
    .await
    .unwrap();
    // Publish: single, with final content, and a wave.
    let final_content = AdvisoryUpdate {
        vulnerabilities: Some(vec![Vulnerability {
            ecosystem: Ecosystem::Npm,
            name: "widget".into(),
            vulnerable_version_range: Some("< 2.0.1".into()),
            patched_versions: Some("2.0.1".into()),
            vulnerable_functions: vec![],
        }]),
        cve_id: FieldUpdate::Set("CVE-2024-12121".into()),
        ..AdvisoryUpdate::default()
    };
    c.publish(&r2, &b.ghsa_id, Some(&final_content), Attempt::First)
        .await
        .unwrap();
    let results = c
        .publish_wave(&[WaveItem {
            repo: r.clone(),
            ghsa: a.ghsa_id.clone(),
            content: Some(final_content.clone()),
            attempt: Attempt::Retry,
        }])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Validate everything the adapter sent.
    let create = validator("repository-advisory-create");
    let update = validator("repository-advisory-update");
    let captured = px.captured();
    let ledger = sim.ledger();
    let (mut creates, mut updates, mut empties) = (0, 0, 0);
    for cap in &captured {
        let path = cap.path.split('?').next().unwrap_or_default();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (cap.method.as_str(), segs.as_slice()) {
            ("POST", ["repos", _, _, "security-advisories"]) => {
                let body: Value = serde_json::from_slice(&cap.body).unwrap();
                check(&create, &body, "create");
                creates += 1;
            }
            ("PATCH", ["repos", _, _, "security-advisories", _]) => {
                let body: Value = serde_json::from_slice(&cap.body).unwrap();
                check(&update, &body, "update");
                updates += 1;
            }
            ("POST", ["repos", _, _, "security-advisories", _, "cve" | "forks"]) => {
                assert!(cap.body.is_empty(), "no body for {path}");
                empties += 1;
            }
            ("GET", _) => assert!(cap.body.is_empty()),
            other => panic!("unexpected request {other:?}"),
        }
        // The simulator saw exactly these bytes.
        if !cap.body.is_empty() {
            let digest = hex::encode(Sha256::digest(&cap.body));
            assert!(
                ledger
                    .iter()
                    .any(|e| e.body_sha256.as_deref() == Some(digest.as_str())),
                "body of {} {} not in the ledger",
                cap.method,
                cap.path
            );
        }
    }
    assert_eq!(creates, 3, "three POSTs (the retried create was adopted)");
    assert!(updates >= 9, "{updates}");
    assert_eq!(empties, 2);
}

/// Every request, the App's token requests included, names the API version (§1).
#[tokio::test]
async fn every_request_names_the_api_version() {
    let (sim, running, _c) = start().await;
    install_app(&sim);
    let px = proxy(&running).await;
    let pat = client(&px.base_url, ADMIN_TOKEN);
    let app = lockstep_github::GithubClient::new(app_config(&px.base_url)).unwrap();
    for c in [&pat, &app] {
        let m = marker("case-version", REPO);
        let r = repo(REPO);
        let (a, _) = c
            .ensure_draft(&r, &draft("v", &m), &m, Attempt::Retry)
            .await
            .unwrap();
        c.get_advisory(&r, &a.ghsa_id).await.unwrap();
        c.request_cve(&r, &a.ghsa_id).await.unwrap();
        c.publish(&r, &a.ghsa_id, None, Attempt::Retry)
            .await
            .unwrap();
    }
    pat.authenticated_user().await.unwrap();
    let captured = px.captured();
    assert!(
        captured.iter().any(|c| c.path.ends_with("/access_tokens")),
        "the token request went through the proxy"
    );
    for c in &captured {
        assert_eq!(
            c.api_version.as_deref(),
            Some("2022-11-28"),
            "{} {}",
            c.method,
            c.path
        );
    }
    assert!(captured.len() >= 12, "{}", captured.len());
}
