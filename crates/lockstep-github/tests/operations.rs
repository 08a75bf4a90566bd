//! Every adapter operation against the simulator, with its error paths.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use lockstep_github::{
    AdvisoryState, AdvisoryUpdate, ApiBase, Attempt, Credentials, Credit, CreditType, CveRequest,
    DraftOrigin, Error, FieldUpdate, GithubClient, GithubConfig, ListQuery, Rating, SecretString,
    Severity, TargetState,
};
use lockstep_sim::{FaultKind, InjectedFault, LedgerEntry, PrimaryLimits};

fn writes(ledger: &[LedgerEntry], method: &str) -> usize {
    ledger
        .iter()
        .filter(|e| e.method == method && e.via == lockstep_sim::Via::Http)
        .count()
}

#[tokio::test]
async fn identity_and_permissions() {
    let (_sim, running, c) = start().await;
    let me = c.authenticated_user().await.unwrap();
    assert_eq!(me.login, "alice");
    let p = c.repo_permission(&repo(REPO), "alice").await.unwrap();
    assert!(p.is_admin() && p.can_write());
    let p = c.repo_permission(&repo(REPO), "bob").await.unwrap();
    assert!(!p.is_admin() && p.can_write());
    let p = c.repo_permission(&repo(REPO), "mallory").await.unwrap();
    assert_eq!(p.permission, "read");
    assert!(matches!(
        c.repo_permission(&repo(REPO), "../x").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        c.repo_permission(&repo("acme/nope"), "alice").await,
        Err(Error::NotFound { .. })
    ));
    // Any account by login (what a credit must name); an unknown login is a 404.
    assert_eq!(c.user("BOB").await.unwrap().login, "bob");
    assert!(matches!(
        c.user("no-such-user").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(c.user("a/b").await, Err(Error::InvalidInput(_))));
    let bad = client(&running.base_url, "ghp_wrong");
    let e = bad.authenticated_user().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn create_get_list_with_cursor_pagination() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = marker(&format!("case-{i}"), REPO);
        let (a, origin) = c
            .create_draft(&r, &draft(&format!("bug {i}"), &m), &m, Attempt::First)
            .await
            .unwrap();
        assert_eq!(origin, DraftOrigin::Created);
        assert_eq!(a.state, AdvisoryState::Draft);
        assert!(a.has_marker(&m));
        assert_eq!(a.severity.as_deref(), Some("high"));
        assert_eq!(a.credits[0].login, "monalisa");
        ids.push(a.ghsa_id);
    }
    let got = c.get_advisory(&r, &ids[2]).await.unwrap();
    assert_eq!(got.summary, "bug 2");
    let before = sim.ledger().len();
    let q = ListQuery {
        per_page: Some(2),
        ..ListQuery::default()
    };
    let all = c.list_advisories(&r, &q).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.ghsa_id.clone()).collect::<Vec<_>>(),
        ids
    );
    let lists: Vec<_> = sim.ledger()[before..]
        .iter()
        .filter(|e| e.op == "list")
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists[1].contains("after="), "{lists:?}");
    // State filter.
    let drafts = c
        .list_advisories(
            &r,
            &ListQuery {
                state: Some(AdvisoryState::Published),
                per_page: None,
            },
        )
        .await
        .unwrap();
    assert!(drafts.is_empty());
    // Page API.
    let p = c.list_page(&r, &q, None).await.unwrap();
    assert_eq!(p.items.len(), 2);
    let p2 = c.list_page(&r, &q, p.next.as_ref()).await.unwrap();
    assert_eq!(p2.items[0].ghsa_id, ids[2]);
}

#[tokio::test]
async fn create_requires_marker_and_checks_names() {
    let (_sim, _running, c) = start().await;
    let m = marker("c", REPO);
    let mut d = draft("x", &m);
    d.description = "no marker here".into();
    assert!(matches!(
        c.create_draft(&repo(REPO), &d, &m, Attempt::First).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(lockstep_github::RepoName::parse("acme/../x").is_err());
    assert!(lockstep_github::RepoName::parse("acme").is_err());
    assert!(matches!(
        c.get_advisory(&repo(REPO), "GHSA-../../x").await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn error_paths_403_404_422() {
    let (_sim, running, c) = start().await;
    let m = marker("c", REPO);
    // 403: a writer cannot create advisories.
    let bob = client(&running.base_url, WRITER_TOKEN);
    let e = bob
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
    assert!(!e.is_retryable() && !e.write_outcome_unknown());
    // 404: unknown advisory; private repository invisible to an outsider.
    let e = c
        .get_advisory(&repo(REPO), "GHSA-aaaa-bbbb-cccc")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let mallory = client(&running.base_url, OUTSIDER_TOKEN);
    let e = mallory
        .list_advisories(&repo(PRIVATE_REPO), &ListQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    // 422: an invalid CWE id.
    let mut d = draft("x", &m);
    d.cwe_ids = vec!["not-a-cwe".into()];
    let e = c
        .create_draft(&repo(REPO), &d, &m, Attempt::First)
        .await
        .unwrap_err();
    match &e {
        Error::Validation {
            status: 422,
            errors,
            ..
        } => assert_eq!(errors[0].field.as_deref(), Some("cwe_ids")),
        other => panic!("{other:?}"),
    }
    // 422: invalid state transition (published -> draft).
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("y", &m), &m, Attempt::First)
        .await
        .unwrap();
    c.publish(&repo(REPO), &a.ghsa_id, None, Attempt::First)
        .await
        .unwrap();
    let e = c
        .update_advisory(
            &repo(REPO),
            &a.ghsa_id,
            &AdvisoryUpdate {
                state: Some(TargetState::Draft),
                ..AdvisoryUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Validation { .. }), "{e:?}");
}

#[tokio::test]
async fn reset_after_apply_then_retry_adopts() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("case-reset", REPO);
    sim.inject(InjectedFault::ResetAfterApply, 1);
    let e = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.write_outcome_unknown() && e.is_retryable());
    let posts_before = writes(&sim.ledger(), "POST");
    let (a, origin) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(origin, DraftOrigin::Adopted);
    assert_eq!(
        writes(&sim.ledger(), "POST"),
        posts_before,
        "no second POST"
    );
    let states = sim.advisory_states(REPO).unwrap();
    assert_eq!(
        states,
        vec![(a.ghsa_id.clone(), lockstep_sim::AdvisoryState::Draft)]
    );
    // Retry when nothing exists yet: it creates.
    let m2 = marker("case-other", REPO);
    let (_, origin) = c
        .create_draft(&r, &draft("y", &m2), &m2, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(origin, DraftOrigin::Created);
}

#[tokio::test]
async fn write_5xx_is_not_retried_blindly_but_ensure_draft_recovers() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("case-5xx", REPO);
    sim.inject(InjectedFault::Error5xx, 1);
    let e = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server { .. }), "{e:?}");
    assert!(e.write_outcome_unknown());
    assert_eq!(
        writes(&sim.ledger(), "POST"),
        1,
        "one POST, no automatic retry"
    );
    // ensure_draft through a 5xx and a reset.
    sim.inject(InjectedFault::Error5xx, 1);
    let (a, _) = c
        .ensure_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    let m3 = marker("case-reset-ensure", REPO);
    sim.inject(InjectedFault::ResetAfterApply, 1);
    let (b, origin) = c
        .ensure_draft(&r, &draft("z", &m3), &m3, Attempt::First)
        .await
        .unwrap();
    assert_eq!(origin, DraftOrigin::Adopted);
    let states = sim.advisory_states(REPO).unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].0, a.ghsa_id);
    assert_eq!(states[1].0, b.ghsa_id);
}

#[tokio::test]
async fn reads_retry_after_5xx() {
    let (sim, _running, c) = start().await;
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    sim.inject(InjectedFault::Error5xx, 2);
    let got = c.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    assert_eq!(got.ghsa_id, a.ghsa_id);
    let gets: Vec<_> = sim.ledger().into_iter().filter(|e| e.op == "get").collect();
    assert_eq!(gets.len(), 3);
    assert_eq!(gets[0].fault, Some(FaultKind::Error5xx));
    assert!(c.stats().retries >= 2);
}

#[tokio::test]
async fn secondary_limit_with_retry_after_is_waited_out() {
    let (sim, _running, c) = start().await;
    let m = marker("c", REPO);
    sim.inject(InjectedFault::SecondaryLimit, 1);
    let t0 = Instant::now();
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    let posts: Vec<_> = sim
        .ledger()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].fault, Some(FaultKind::SecondaryLimit));
    assert!(!posts[0].applied);
    assert!(posts[1].is_creation());
    assert_eq!(posts[1].ghsa_id.as_deref(), Some(a.ghsa_id.as_str()));
}

#[tokio::test]
async fn rate_limit_longer_than_max_wait_is_returned() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.max_wait = Duration::from_millis(100);
    let c = GithubClient::new(cfg).unwrap();
    sim.inject(InjectedFault::SecondaryLimit, 1);
    let m = marker("c", REPO);
    let e = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    match e {
        Error::SecondaryRateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.advisory_states(REPO).unwrap().is_empty());
}

#[tokio::test]
async fn primary_limit_waits_for_reset() {
    let (sim, running, _c) = start().await;
    let mut cfg = config(&running.base_url, ADMIN_TOKEN);
    cfg.retry.rate_limit_retries = 30;
    cfg.retry.secondary_backoff = Duration::from_millis(100);
    let c = GithubClient::new(cfg).unwrap();
    sim.set_primary_limits(PrimaryLimits {
        authenticated: 2,
        window: Duration::from_secs(1),
        ..PrimaryLimits::default()
    });
    // Distinct URLs: a 304 would not be charged against the primary limit.
    for login in ["alice", "bob", "mallory", "monalisa"] {
        c.repo_permission(&repo(REPO), login).await.unwrap();
    }
    let limited = sim
        .ledger()
        .iter()
        .filter(|e| e.fault == Some(FaultKind::PrimaryLimit))
        .count();
    assert!(limited >= 1, "the primary limit was hit and waited out");
    assert!(c.stats().retries >= 1);
}

#[tokio::test]
async fn updates_send_explicit_nulls() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("c", REPO);
    let mut d = draft("x", &m);
    d.cve_id = Some("CVE-2024-12345".into());
    let (a, _) = c.create_draft(&r, &d, &m, Attempt::First).await.unwrap();
    assert_eq!(a.cve_id.as_deref(), Some("CVE-2024-12345"));
    let vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    let upd = AdvisoryUpdate {
        cve_id: FieldUpdate::Clear,
        rating: Some(Rating::Cvss(vector.into())),
        cwe_ids: FieldUpdate::Clear,
        ..AdvisoryUpdate::default()
    };
    let a2 = c.update_advisory(&r, &a.ghsa_id, &upd).await.unwrap();
    assert_eq!(a2.cve_id, None);
    assert_eq!(a2.cvss_vector_string.as_deref(), Some(vector));
    assert_eq!(a2.severity.as_deref(), Some("critical"));
    assert!(a2.cwe_ids.is_empty());
    // Back to a plain severity: needs `cvss_vector_string: null`.
    let a3 = c
        .update_advisory(
            &r,
            &a.ghsa_id,
            &AdvisoryUpdate {
                rating: Some(Rating::Severity(Severity::Low)),
                ..AdvisoryUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a3.severity.as_deref(), Some("low"));
    assert_eq!(a3.cvss_vector_string, None);
    // Collaborators and credits.
    let a4 = c
        .set_collaborators(&r, &a.ghsa_id, &["bob".to_owned()])
        .await
        .unwrap();
    assert_eq!(a4.collaborating_users, vec!["bob".to_owned()]);
    let a5 = c.set_collaborators(&r, &a.ghsa_id, &[]).await.unwrap();
    assert!(a5.collaborating_users.is_empty());
    let a6 = c
        .set_credits(
            &r,
            &a.ghsa_id,
            &[Credit {
                login: "bob".into(),
                credit_type: CreditType::RemediationDeveloper,
            }],
        )
        .await
        .unwrap();
    assert_eq!(a6.credits[0].credit_type, "remediation_developer");
    assert!(matches!(
        c.update_advisory(&r, &a.ghsa_id, &AdvisoryUpdate::default())
            .await,
        Err(Error::InvalidInput(_))
    ));
    // Links and collaborators in one PATCH.
    let before = writes(&sim.ledger(), "PATCH");
    let new_desc = format!("See also GHSA-xxxx in acme/gadget.\n\n{m}");
    let a7 = c
        .link_siblings(&r, &a.ghsa_id, &new_desc, Some(&["bob".to_owned()]))
        .await
        .unwrap();
    assert_eq!(writes(&sim.ledger(), "PATCH"), before + 1);
    assert_eq!(a7.description.as_deref(), Some(new_desc.as_str()));
    assert_eq!(a7.collaborating_users, vec!["bob".to_owned()]);
}

#[tokio::test]
async fn publish_reconciles_on_retry() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    // Lost response on publish: the retry reads, sees it published, sends no PATCH.
    sim.inject(InjectedFault::ResetAfterApply, 1);
    let content = AdvisoryUpdate {
        vulnerabilities: Some(vec![lockstep_github::Vulnerability {
            ecosystem: lockstep_github::Ecosystem::Npm,
            name: "widget".into(),
            vulnerable_version_range: Some("< 1.2.3".into()),
            patched_versions: Some("1.2.3".into()),
            vulnerable_functions: vec![],
        }]),
        ..AdvisoryUpdate::default()
    };
    let e = c
        .publish(&r, &a.ghsa_id, Some(&content), Attempt::First)
        .await
        .unwrap_err();
    assert!(e.write_outcome_unknown(), "{e:?}");
    let patches = writes(&sim.ledger(), "PATCH");
    let p = c
        .publish(&r, &a.ghsa_id, Some(&content), Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(p.state, AdvisoryState::Published);
    assert_eq!(
        p.vulnerabilities[0].patched_versions.as_deref(),
        Some("1.2.3")
    );
    assert_eq!(writes(&sim.ledger(), "PATCH"), patches, "no second PATCH");
    assert_eq!(sim.ledger().iter().filter(|e| e.is_publish()).count(), 1);
    // ensure_published on an already published advisory: success, no write.
    c.ensure_published(&r, &a.ghsa_id, None, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(writes(&sim.ledger(), "PATCH"), patches);
    // A closed advisory is never published by a retry.
    let m2 = marker("c2", REPO);
    let (b, _) = c
        .create_draft(&r, &draft("y", &m2), &m2, Attempt::First)
        .await
        .unwrap();
    c.close(&r, &b.ghsa_id, Attempt::First).await.unwrap();
    let e = c
        .publish(&r, &b.ghsa_id, None, Attempt::Retry)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Other { .. }), "{e:?}");
}

#[tokio::test]
async fn close_reconciles_on_retry() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    sim.inject(InjectedFault::ResetAfterApply, 1);
    assert!(c.close(&r, &a.ghsa_id, Attempt::First).await.is_err());
    let patches = writes(&sim.ledger(), "PATCH");
    let closed = c
        .ensure_closed(&r, &a.ghsa_id, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(closed.state, AdvisoryState::Closed);
    assert_eq!(writes(&sim.ledger(), "PATCH"), patches);
    // Closing a published advisory on retry is refused without a write.
    let (b, _) = c
        .create_draft(&r, &draft("y", &m), &m, Attempt::First)
        .await
        .unwrap();
    c.publish(&r, &b.ghsa_id, None, Attempt::First)
        .await
        .unwrap();
    assert!(c.close(&r, &b.ghsa_id, Attempt::Retry).await.is_err());
}

#[tokio::test]
async fn cve_requests_and_private_fork() {
    let (sim, _running, c) = start().await;
    sim.set_cve_policy(lockstep_sim::CvePolicy::Manual);
    let r = repo(REPO);
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    assert_eq!(
        c.request_cve(&r, &a.ghsa_id).await.unwrap(),
        CveRequest::Requested
    );
    assert_eq!(
        c.request_cve(&r, &a.ghsa_id).await.unwrap(),
        CveRequest::AlreadyRequested
    );
    // Private repositories cannot request CVEs.
    let pr = repo(PRIVATE_REPO);
    let mp = marker("c", PRIVATE_REPO);
    let (p, _) = c
        .create_draft(&pr, &draft("p", &mp), &mp, Attempt::First)
        .await
        .unwrap();
    let e = c.request_cve(&pr, &p.ghsa_id).await.unwrap_err();
    assert!(matches!(e, Error::Validation { status: 422, .. }), "{e:?}");
    // Fork (idempotent).
    let f1 = c.create_private_fork(&r, &a.ghsa_id).await.unwrap();
    let f2 = c.create_private_fork(&r, &a.ghsa_id).await.unwrap();
    assert_eq!(f1.full_name, f2.full_name);
    assert!(f1.full_name.starts_with("acme/widget-"), "{}", f1.full_name);
    let got = c.get_advisory(&r, &a.ghsa_id).await.unwrap();
    assert_eq!(got.private_fork.unwrap().full_name, f1.full_name);
}

#[tokio::test]
async fn conditional_gets_use_etags() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    let p1 = c.poll_advisory(&r, &a.ghsa_id).await.unwrap();
    assert!(p1.changed);
    let p2 = c.poll_advisory(&r, &a.ghsa_id).await.unwrap();
    assert!(!p2.changed);
    assert_eq!(p1.value, p2.value);
    assert_eq!(c.stats().not_modified, 1);
    let last = sim.ledger().last().cloned().unwrap();
    assert_eq!(last.status, 304);
    c.set_collaborators(&r, &a.ghsa_id, &["bob".into()])
        .await
        .unwrap();
    let p3 = c.poll_advisory(&r, &a.ghsa_id).await.unwrap();
    assert!(p3.changed);
    assert_eq!(p3.value.collaborating_users, vec!["bob".to_owned()]);
    // Lists are conditional too.
    c.list_advisories(&r, &ListQuery::default()).await.unwrap();
    c.list_advisories(&r, &ListQuery::default()).await.unwrap();
    assert_eq!(c.stats().not_modified, 2);
}

#[tokio::test]
async fn connection_refused_is_a_known_outcome() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}"), ADMIN_TOKEN);
    let m = marker("c", REPO);
    let e = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(!e.write_outcome_unknown(), "{e:?}");
}

#[tokio::test]
async fn github_app_installation_tokens_are_minted_by_the_simulator_and_cached() {
    let (sim, running, _c) = start().await;
    install_app(&sim);
    let cfg = app_config(&running.base_url);
    assert!(!format!("{cfg:?}").contains("PRIVATE KEY"));
    let c = GithubClient::new(cfg.clone()).unwrap();
    assert!(c.identity().starts_with("app:4242"));
    // An installation token is not a user: GitHub refuses GET /user for it.
    let e = c.authenticated_user().await.unwrap_err();
    assert!(
        matches!(&e, Error::Forbidden { message } if message == "Resource not accessible by integration"),
        "{e:?}"
    );
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    assert_eq!(
        sim.advisory(REPO, &a.ghsa_id).unwrap()["author"]["login"],
        APP_BOT
    );
    for _ in 0..3 {
        c.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    }
    let p = c.repo_permission(&repo(REPO), "alice").await.unwrap();
    assert!(p.is_admin());
    assert_eq!(
        sim.installation_tokens_minted(),
        1,
        "one installation token, cached"
    );
    // The mint went through the pipeline with the App's JWT, not a token.
    let mints: Vec<_> = sim
        .ledger()
        .into_iter()
        .filter(|e| e.op == "create_installation_token")
        .collect();
    assert_eq!(mints.len(), 1);
    assert_eq!(mints[0].status, 201);
    assert_eq!(
        mints[0].path,
        format!("/app/installations/{INSTALLATION_ID}/access_tokens")
    );
    // Tokens that expire within octocrab's 30 s refresh margin are minted again.
    sim.set_installation_token_ttl(Duration::from_secs(20));
    let c2 = GithubClient::new(cfg).unwrap();
    c2.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    c2.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    assert_eq!(sim.installation_tokens_minted(), 3);
    // Another key, or another App id: the simulator refuses the JWT (401), nothing is
    // minted, nothing is read.
    let other_key = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if let Some(pem) = other_key {
        let mut bad = app_config(&running.base_url);
        bad.credentials = Credentials::App {
            app_id: APP_ID,
            installation_id: INSTALLATION_ID,
            private_key_pem: SecretString::from(pem),
        };
        let e = GithubClient::new(bad)
            .unwrap()
            .get_advisory(&repo(REPO), &a.ghsa_id)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    }
    let mut wrong_app = app_config(&running.base_url);
    wrong_app.credentials = Credentials::App {
        app_id: 1,
        installation_id: INSTALLATION_ID,
        private_key_pem: SecretString::from(app_key_pem()),
    };
    let e = GithubClient::new(wrong_app)
        .unwrap()
        .get_advisory(&repo(REPO), &a.ghsa_id)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_eq!(sim.installation_tokens_minted(), 3);
}

#[tokio::test]
async fn config_from_lookup_and_base_url_validation() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let c = GithubConfig::from_lookup(env(&[("GITHUB_TOKEN", "ghp_secretvalue")])).unwrap();
    assert_eq!(c.api_base.as_str(), "https://api.github.com");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("ghp_secretvalue"), "{dbg}");
    let c = GithubConfig::from_lookup(env(&[
        ("GITHUB_TOKEN", "t"),
        (
            "LOCKSTEP_GITHUB_API_URL",
            "https://ghes.example.com/api/v3/",
        ),
    ]))
    .unwrap();
    assert_eq!(c.api_base.as_str(), "https://ghes.example.com/api/v3");
    assert!(GithubConfig::from_lookup(env(&[])).is_err());
    let key_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    );
    let c = GithubConfig::from_lookup(move |k| match k {
        "LOCKSTEP_GITHUB_APP_ID" => Some("12".into()),
        "LOCKSTEP_GITHUB_APP_INSTALLATION_ID" => Some("34".into()),
        "LOCKSTEP_GITHUB_APP_PRIVATE_KEY_FILE" => Some(key_path.into()),
        _ => None,
    })
    .unwrap();
    assert!(matches!(
        c.credentials,
        Credentials::App {
            app_id: 12,
            installation_id: 34,
            ..
        }
    ));
    assert!(!format!("{c:?}").contains("BEGIN"));

    for bad in [
        "http://api.github.com",
        "ftp://api.github.com",
        "https://169.254.169.254",
        "http://169.254.169.254",
        "https://10.0.0.5",
        "https://[fe80::1]",
        "https://user:pw@api.github.com",
        "https://api.github.com?x=1",
        "not a url",
    ] {
        assert!(ApiBase::parse(bad, &[]).is_err(), "{bad}");
    }
    assert!(ApiBase::parse("https://10.0.0.5", &["10.0.0.5".into()]).is_ok());
    assert!(ApiBase::parse("http://127.0.0.1:8080", &[]).is_ok());
    assert!(ApiBase::parse("http://localhost:8080", &[]).is_ok());
}

#[tokio::test]
async fn pagination_survives_304s_without_link() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = marker(&format!("case-304-{i}"), REPO);
        ids.push(
            c.create_draft(&r, &draft("x", &m), &m, Attempt::First)
                .await
                .unwrap()
                .0
                .ghsa_id,
        );
    }
    let q = ListQuery {
        per_page: Some(2),
        ..ListQuery::default()
    };
    let first = c.list_advisories(&r, &q).await.unwrap();
    assert_eq!(first.len(), 5);
    let before = sim.ledger().len();
    // Every page is unchanged: three 304s, none of them repeating `Link`.
    let again = c.list_advisories(&r, &q).await.unwrap();
    let lists: Vec<_> = sim.ledger()[before..].to_vec();
    assert_eq!(lists.len(), 3, "all three pages were asked for");
    assert!(lists.iter().all(|e| e.status == 304));
    assert_eq!(c.stats().not_modified, 3);
    assert_eq!(
        again.iter().map(|a| a.ghsa_id.clone()).collect::<Vec<_>>(),
        ids,
        "the cached pages kept their next links"
    );
}

#[tokio::test]
async fn a_retried_create_finds_its_draft_past_a_cached_first_page() {
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    // 100 advisories fill the first page of the adapter's listing (per_page = 100).
    for i in 0..100 {
        let m = marker(&format!("case-filler-{i}"), REPO);
        sim.create_as(
            "alice",
            REPO,
            &serde_json::json!({
                "summary": "filler",
                "description": format!("d\n{m}"),
                "vulnerabilities": [],
            }),
        )
        .unwrap();
    }
    // The draft of an earlier attempt, 101st: on page two.
    let target = marker("case-target", REPO);
    let earlier = sim
        .create_as(
            "alice",
            REPO,
            &serde_json::json!({
                "summary": "x",
                "description": format!("Embargoed details of x.\n\n{target}"),
                "vulnerabilities": [],
            }),
        )
        .unwrap();
    // A listing caches both pages…
    assert!(
        c.find_by_marker(&r, "<!-- nothing -->")
            .await
            .unwrap()
            .is_none()
    );
    let before = sim.ledger().len();
    // …so the retried create's listing is answered 304, 304 (no Link on either).
    let (a, origin) = c
        .create_draft(&r, &draft("x", &target), &target, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(origin, DraftOrigin::Adopted);
    assert_eq!(a.ghsa_id, earlier["ghsa_id"].as_str().unwrap());
    let after = sim.ledger()[before..].to_vec();
    assert_eq!(after.iter().filter(|e| e.status == 304).count(), 2);
    assert_eq!(writes(&sim.ledger(), "POST"), 0, "no duplicate draft");
    assert_eq!(sim.advisory_states(REPO).unwrap().len(), 101);
}

#[tokio::test]
async fn the_preflight_reads_a_drafts_products_and_its_forks_open_pull_requests() {
    let (sim, _running, c) = start().await;
    let m = marker("c", REPO);
    let (a, _) = c
        .create_draft(&repo(REPO), &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap();
    // The draft's products, as GitHub returns them.
    let got = c.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    assert_eq!(got.vulnerabilities.len(), 1);
    assert_eq!(got.vulnerabilities[0].ecosystem.as_deref(), Some("npm"));
    assert_eq!(got.vulnerabilities[0].name.as_deref(), Some("widget"));
    assert_eq!(got.vulnerabilities[0].patched_versions, None);
    sim.update_as(
        "alice",
        REPO,
        &a.ghsa_id,
        &serde_json::json!({"vulnerabilities": []}),
    )
    .unwrap();
    let got = c.get_advisory(&repo(REPO), &a.ghsa_id).await.unwrap();
    assert!(got.vulnerabilities.is_empty());
    // The temporary private fork's open pull requests.
    let forked = sim.fork_as("alice", REPO, &a.ghsa_id).unwrap();
    let fork = forked["full_name"].as_str().unwrap().to_owned();
    assert!(c.open_pull_requests(&repo(&fork)).await.unwrap().is_empty());
    let one = sim.open_fork_pull(&fork, "Fix").unwrap();
    let two = sim.open_fork_pull(&fork, "Backport").unwrap();
    let open = c.open_pull_requests(&repo(&fork)).await.unwrap();
    assert_eq!(
        open.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![one, two]
    );
    assert!(open.iter().all(|p| p.state == "open"));
    // Unchanged: the conditional request is answered 304 and the cached list returned.
    let again = c.open_pull_requests(&repo(&fork)).await.unwrap();
    assert_eq!(again, open);
    let last = sim
        .ledger()
        .into_iter()
        .rfind(|e| e.op == "list_fork_pulls")
        .unwrap();
    assert_eq!(last.status, 304);
    sim.merge_fork_pull(&fork, one).unwrap();
    let open = c.open_pull_requests(&repo(&fork)).await.unwrap();
    assert_eq!(open.iter().map(|p| p.number).collect::<Vec<_>>(), vec![two]);
    // Private: someone without access to the advisory sees no fork at all.
    let outsider = client(&_running.base_url, OUTSIDER_TOKEN);
    assert!(matches!(
        outsider.open_pull_requests(&repo(&fork)).await,
        Err(Error::NotFound { .. })
    ));
}
