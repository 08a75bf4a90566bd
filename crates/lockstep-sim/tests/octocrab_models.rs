//! octocrab 0.54.9 talks to the simulator and deserialises every advisory it returns.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use octocrab::Octocrab;
use octocrab::models::security_advisories::{
    CreateCredit, CreatePackage, CreateRepositoryAdvisory, CreateVulnerability, RepositoryAdvisory,
    UpdateRepositoryAdvisory,
};
use octocrab::service::middleware::retry::RetryConfig;
use serde_json::json;

fn client(base: &str, token: &str) -> Octocrab {
    Octocrab::builder()
        .base_uri(base)
        .unwrap()
        .personal_token(token.to_owned())
        .add_retry_config(RetryConfig::None)
        .build()
        .unwrap()
}

#[tokio::test]
async fn octocrab_round_trip() {
    let (sim, running, api) = start().await;
    let gh = client(&running.base_url, ADMIN);
    let handler = gh.repos("acme", "widget");
    let adv = handler
        .security_advisories()
        .create(&CreateRepositoryAdvisory {
            summary: "octocrab create".into(),
            description: "desc".into(),
            vulnerabilities: vec![CreateVulnerability {
                package: CreatePackage {
                    ecosystem: "rust".into(),
                    name: Some("rmcp".into()),
                },
                vulnerable_version_range: Some("< 1.2.0".into()),
                patched_versions: Some("1.2.0".into()),
                vulnerable_functions: None,
            }],
            credits: Some(vec![CreateCredit {
                login: "monalisa".into(),
                r#type: "finder".into(),
            }]),
            cvss_vector_string: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(adv.state, "draft");
    assert_eq!(adv.severity.as_deref(), Some("high"));
    let ghsa = adv.ghsa_id.clone();

    let got = handler.security_advisories().get(&ghsa).await.unwrap();
    assert_eq!(got.ghsa_id, ghsa);

    // Collaborators and teams, then typed update.
    let upd = handler
        .security_advisories()
        .update(
            &ghsa,
            &UpdateRepositoryAdvisory {
                collaborating_users: Some(vec!["bob".into()]),
                collaborating_teams: Some(vec!["security".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.collaborating_users.unwrap()[0].login, "bob");
    assert_eq!(upd.collaborating_teams.unwrap()[0].slug, "security");

    handler
        .security_advisories()
        .request_cve(&ghsa)
        .await
        .unwrap();
    let fork = handler
        .security_advisories()
        .create_fork(&ghsa)
        .await
        .unwrap();
    assert_eq!(fork.name, format!("widget-{}", ghsa.to_lowercase()));

    let published = handler
        .security_advisories()
        .update(
            &ghsa,
            &UpdateRepositoryAdvisory {
                state: Some("published".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(published.state, "published");
    assert!(published.cve_id.is_some());
    assert!(published.private_fork.is_some());
    assert_eq!(published.publisher.unwrap().login, "alice");

    // Paginated list through octocrab's Page + Link handling.
    for i in 0..4 {
        api.create(REPO, ADMIN, &format!("extra {i}")).await;
    }
    let page = handler
        .security_advisories()
        .list()
        .per_page(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let all = gh.all_pages(page).await.unwrap();
    assert_eq!(all.len(), 5);
    let org = gh.security_advisories().org("acme").send().await;
    // alice is admin on the repositories but not an org owner or security manager.
    assert!(org.is_err());
    let org = client(&running.base_url, SECMGR)
        .security_advisories()
        .org("acme")
        .send()
        .await
        .unwrap();
    assert_eq!(org.items.len(), 5);

    // A private vulnerability report (triage, submission) deserialises too.
    let rep = api
        .post(
            &format!("/repos/{REPO}/security-advisories/reports"),
            Some(OUTSIDER),
            &json!({"summary": "s", "description": "d"}),
        )
        .await;
    let rep: RepositoryAdvisory = serde_json::from_value(rep.body).unwrap();
    assert!(!rep.submission.unwrap().accepted);

    // Every advisory in every state the simulator can render deserialises.
    let closed = api.create(REPO, ADMIN, "to close").await;
    api.patch(
        &adv_path(REPO, closed["ghsa_id"].as_str().unwrap()),
        Some(ADMIN),
        &json!({"state": "closed"}),
    )
    .await;
    sim.withdraw(REPO, &ghsa).unwrap();
    for v in sim.advisories(REPO).unwrap() {
        let _: RepositoryAdvisory =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    }

    // Errors surface as GitHub errors with the status code.
    let err = handler
        .security_advisories()
        .get("GHSA-2222-2222-2222")
        .await
        .unwrap_err();
    match err {
        octocrab::Error::GitHub { source, .. } => assert_eq!(source.status_code.as_u16(), 404),
        other => panic!("unexpected {other:?}"),
    }
}

/// The answers around the advisories deserialise too: `/user`, collaborator permissions,
/// `/rate_limit`, and a rate-limit refusal (with its reset time).
#[tokio::test]
async fn octocrab_reads_identity_permissions_and_rate_limits() {
    let (sim, running, _api) = start().await;
    let gh = client(&running.base_url, ADMIN);
    let me = gh.current().user().await.unwrap();
    assert_eq!(me.login, "alice");
    let p = gh
        .repos("acme", "widget")
        .get_contributor_permission("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(p.role_name, "admin");
    assert_eq!(p.user.author.login, "alice");
    // GitHub's legacy `permission` values are admin, write, read and none; octocrab
    // 0.54.9's enum knows only admin of those (pull/push/maintain/triage otherwise), so it
    // cannot read a writer's answer. The adapter decodes this endpoint with its own type.
    // If octocrab learns the legacy values, this starts failing: then use its model.
    let writer = gh
        .repos("acme", "widget")
        .get_contributor_permission("bob")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&writer, octocrab::Error::Json { source, .. } if source.to_string().contains("unknown variant `write`")),
        "{writer:?}"
    );
    let before = gh.ratelimit().get().await.unwrap();
    assert_eq!(before.rate.limit, 5_000);
    assert_eq!(before.resources.core.remaining, before.rate.remaining);
    let after = gh.ratelimit().get().await.unwrap();
    assert_eq!(after.rate.used, before.rate.used, "/rate_limit is free");
    sim.set_primary_limits(lockstep_sim::PrimaryLimits {
        authenticated: 1,
        ..lockstep_sim::PrimaryLimits::default()
    });
    let limited = gh.current().user().await.unwrap_err();
    match limited {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code.as_u16(), 403);
            assert!(source.message.contains("rate limit"), "{}", source.message);
            assert!(source.rate_limit_reset_at().is_some());
        }
        other => panic!("{other:?}"),
    }
}
