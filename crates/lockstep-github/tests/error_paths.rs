//! Every adapter operation × every way GitHub says no, as a table: an identity without the
//! right (403, or the 404 GitHub answers when the identity may not even see the thing), an
//! unknown repository/advisory/user (404), refused content (422, where the operation takes
//! content), a secondary rate limit with `retry-after` as 403 and as 429, and a write
//! whose answer is lost after GitHub applied it. Each cell asserts the typed error users
//! match on, or the reconciled outcome (and what the ledger shows was sent).
//!
//! Cells that cannot occur are listed in `NOT_APPLICABLE` with the reason. Each row runs
//! on its own simulator, all rows at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::future::join_all;
use lockstep_github::{
    AdvisoryState, AdvisoryUpdate, Attempt, Credit, CreditType, CveRequest, DraftOrigin, Error,
    FieldUpdate, GithubClient, ListQuery,
};
use lockstep_sim::{
    FaultKind, InjectedFault, LedgerEntry, LimitStatus, Permission, SecondaryLimits, Simulator,
};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Get,
    List,
    Update,
    Publish,
    Close,
    RequestCve,
    Fork,
    SetCollaborators,
    SetCredits,
    GetUser,
    Permission,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// An identity without the right.
    Forbidden,
    /// Unknown repository, advisory or user.
    NotFound,
    /// Content GitHub refuses.
    Unprocessable,
    /// A secondary rate limit with `retry-after`.
    RateLimited(LimitStatus),
    /// GitHub applies the write, the answer is lost.
    ResetAfterApply,
}

const OPS: [Op; 12] = [
    Op::Create,
    Op::Get,
    Op::List,
    Op::Update,
    Op::Publish,
    Op::Close,
    Op::RequestCve,
    Op::Fork,
    Op::SetCollaborators,
    Op::SetCredits,
    Op::GetUser,
    Op::Permission,
];

const CASES: [Case; 6] = [
    Case::Forbidden,
    Case::NotFound,
    Case::Unprocessable,
    Case::RateLimited(LimitStatus::Forbidden),
    Case::RateLimited(LimitStatus::TooManyRequests),
    Case::ResetAfterApply,
];

/// Cells that do not exist, and why.
const NOT_APPLICABLE: &[(Op, Case, &str)] = &[
    (Op::Get, Case::Unprocessable, "a GET carries no content"),
    (
        Op::List,
        Case::Unprocessable,
        "the adapter only sends valid list parameters",
    ),
    (Op::GetUser, Case::Unprocessable, "no content"),
    (Op::Permission, Case::Unprocessable, "no content"),
    (
        Op::GetUser,
        Case::NotFound,
        "the authenticated user always exists",
    ),
    (
        Op::Get,
        Case::ResetAfterApply,
        "reads change nothing (a lost read is read again)",
    ),
    (Op::List, Case::ResetAfterApply, "reads change nothing"),
    (Op::GetUser, Case::ResetAfterApply, "reads change nothing"),
    (
        Op::Permission,
        Case::ResetAfterApply,
        "reads change nothing",
    ),
];

struct World {
    sim: Simulator,
    running: Served,
    admin: GithubClient,
    draft: String,
}

const UNKNOWN_GHSA: &str = "GHSA-2222-3333-4444";

async fn world() -> World {
    let sim = seeded(quiet_config());
    sim.add_user("carol", "tok-carol-reader");
    sim.grant(REPO, "carol", Permission::Read).unwrap();
    let running = serve(&sim).await;
    let admin = client(&running.base_url, ADMIN_TOKEN);
    let m = marker("case-errors", REPO);
    let d = sim
        .create_as(
            "alice",
            REPO,
            &json!({
                "summary": "s",
                "description": format!("Embargoed.\n{m}"),
                "severity": "high",
                "vulnerabilities": [{"package": {"ecosystem": "npm", "name": "widget"}}],
            }),
        )
        .unwrap();
    World {
        sim,
        running,
        admin,
        draft: d["ghsa_id"].as_str().unwrap().to_owned(),
    }
}

fn credit(login: &str) -> Credit {
    Credit {
        login: login.to_owned(),
        credit_type: CreditType::Finder,
    }
}

/// Runs `op` as `c` against advisory `ghsa` in `repo_name`, with a first attempt.
async fn call(c: &GithubClient, op: Op, repo_name: &str, ghsa: &str) -> Result<String, Error> {
    let r = repo(repo_name);
    let m = marker("case-op", repo_name);
    Ok(match op {
        Op::Create => {
            c.create_draft(&r, &draft("x", &m), &m, Attempt::First)
                .await?
                .0
                .ghsa_id
        }
        Op::Get => c.get_advisory(&r, ghsa).await?.ghsa_id,
        Op::List => format!(
            "{}",
            c.list_advisories(&r, &ListQuery::default()).await?.len()
        ),
        Op::Update => {
            let u = AdvisoryUpdate {
                summary: Some("new summary".into()),
                ..AdvisoryUpdate::default()
            };
            c.update_advisory(&r, ghsa, &u).await?.summary
        }
        Op::Publish => c
            .publish(&r, ghsa, None, Attempt::First)
            .await?
            .state
            .as_str()
            .into(),
        Op::Close => c
            .close(&r, ghsa, Attempt::First)
            .await?
            .state
            .as_str()
            .into(),
        Op::RequestCve => format!("{:?}", c.request_cve(&r, ghsa).await?),
        Op::Fork => c.create_private_fork(&r, ghsa).await?.full_name,
        Op::SetCollaborators => c
            .set_collaborators(&r, ghsa, &["bob".to_owned()])
            .await?
            .collaborating_users
            .join(","),
        Op::SetCredits => format!(
            "{:?}",
            c.set_credits(&r, ghsa, &[credit("monalisa")])
                .await?
                .credits
        ),
        Op::GetUser => c.authenticated_user().await?.login,
        Op::Permission => c.repo_permission(&r, "alice").await?.permission,
    })
}

fn sent(ledger: &[LedgerEntry]) -> Vec<&LedgerEntry> {
    ledger
        .iter()
        .filter(|e| e.via == lockstep_sim::Via::Http)
        .collect()
}

#[track_caller]
fn expect(label: &str, got: Result<String, Error>, ok: impl Fn(&Error) -> bool) -> Error {
    match got {
        Ok(v) => panic!("{label}: expected an error, got Ok({v})"),
        Err(e) => {
            assert!(ok(&e), "{label}: unexpected {e:?}");
            e
        }
    }
}

async fn row(op: Op, case: Case) {
    let label = format!("{op:?} × {case:?}");
    let w = world().await;
    let (sim, admin, d) = (&w.sim, &w.admin, w.draft.as_str());
    let base = w.running.base_url.clone();
    match case {
        Case::Forbidden => {
            // bob may write code but is no advisory admin; as a collaborator on the draft
            // he sees it, but may not change its state or request a CVE.
            sim.update_as("alice", REPO, d, &json!({"collaborating_users": ["bob"]}))
                .unwrap();
            let bob = client(&base, WRITER_TOKEN);
            let mallory = client(&base, OUTSIDER_TOKEN);
            let carol = client(&base, "tok-carol-reader");
            let forbidden = |e: &Error| matches!(e, Error::Forbidden { .. }) && !e.is_retryable();
            let hidden = |e: &Error| matches!(e, Error::NotFound { .. }) && !e.is_retryable();
            match op {
                Op::Create => {
                    expect(&label, call(&bob, op, REPO, d).await, forbidden);
                }
                Op::Publish | Op::Close | Op::RequestCve => {
                    expect(&label, call(&bob, op, REPO, d).await, forbidden);
                    assert_eq!(
                        sim.advisory_states(REPO).unwrap()[0].1,
                        lockstep_sim::AdvisoryState::Draft,
                        "{label}"
                    );
                }
                // GitHub hides an unpublished advisory from whoever may not act on it:
                // the outsider gets 404, not 403.
                Op::Get | Op::Update | Op::Fork | Op::SetCollaborators | Op::SetCredits => {
                    expect(&label, call(&mallory, op, REPO, d).await, hidden);
                }
                Op::List => {
                    expect(&label, call(&mallory, op, PRIVATE_REPO, d).await, hidden);
                    // On a public repository the outsider sees only what is published.
                    assert_eq!(call(&mallory, op, REPO, d).await.unwrap(), "0", "{label}");
                }
                Op::GetUser => {
                    install_app(sim);
                    let app = GithubClient::new(app_config(&base)).unwrap();
                    let e = expect(&label, call(&app, op, REPO, d).await, forbidden);
                    assert!(e.to_string().contains("not accessible by integration"));
                }
                Op::Permission => {
                    for who in [&carol, &mallory] {
                        let e = expect(&label, call(who, op, REPO, d).await, forbidden);
                        assert!(e.to_string().contains("push access"), "{label}: {e}");
                    }
                }
            }
        }
        Case::NotFound => {
            let not_found = |e: &Error| matches!(e, Error::NotFound { .. }) && !e.is_retryable();
            let got = match op {
                Op::Create | Op::List => call(admin, op, "acme/nope", d).await,
                Op::Permission => admin
                    .repo_permission(&repo(REPO), "nobody")
                    .await
                    .map(|p| p.permission),
                _ => call(admin, op, REPO, UNKNOWN_GHSA).await,
            };
            expect(&label, got, not_found);
        }
        Case::Unprocessable => {
            let invalid = |e: &Error| {
                matches!(e, Error::Validation { status: 422, .. })
                    && !e.is_retryable()
                    && !e.is_already_exists()
            };
            let r = repo(REPO);
            let got = match op {
                Op::Create => {
                    let m = marker("case-422", REPO);
                    let mut bad = draft("x", &m);
                    bad.cwe_ids = vec!["not-a-cwe".into()];
                    admin
                        .create_draft(&r, &bad, &m, Attempt::First)
                        .await
                        .map(|a| a.0.ghsa_id)
                }
                Op::Update => admin
                    .update_advisory(
                        &r,
                        d,
                        &AdvisoryUpdate {
                            cve_id: FieldUpdate::Set("CVE-1-2".into()),
                            ..AdvisoryUpdate::default()
                        },
                    )
                    .await
                    .map(|a| a.summary),
                Op::Publish => {
                    // Nothing affected: GitHub refuses to publish it.
                    sim.update_as("alice", REPO, d, &json!({"vulnerabilities": []}))
                        .unwrap();
                    call(admin, op, REPO, d).await
                }
                Op::Close | Op::Fork => {
                    sim.publish_as("alice", REPO, d).unwrap();
                    call(admin, op, REPO, d).await
                }
                Op::RequestCve => {
                    let m = marker("case-private", PRIVATE_REPO);
                    let p = admin
                        .create_draft(&repo(PRIVATE_REPO), &draft("p", &m), &m, Attempt::First)
                        .await
                        .unwrap()
                        .0;
                    call(admin, op, PRIVATE_REPO, &p.ghsa_id).await
                }
                Op::SetCollaborators => admin
                    .set_collaborators(&r, d, &["nobody".to_owned()])
                    .await
                    .map(|a| a.summary),
                Op::SetCredits => admin
                    .set_credits(&r, d, &[credit("nobody")])
                    .await
                    .map(|a| a.summary),
                _ => unreachable!("{label}"),
            };
            expect(&label, got, invalid);
        }
        Case::RateLimited(status) => {
            sim.set_secondary_limits(SecondaryLimits {
                status,
                ..SecondaryLimits::unlimited()
            });
            // A wait beyond max_wait: the typed refusal, at once, nothing sent again.
            let mut cfg = config(&base, ADMIN_TOKEN);
            cfg.retry.max_wait = Duration::from_millis(100);
            let impatient = GithubClient::new(cfg).unwrap();
            let before = sent(&sim.ledger()).len();
            sim.inject(InjectedFault::SecondaryLimitAny, 1);
            let e = expect(
                &label,
                call(&impatient, op, REPO, d).await,
                |e| matches!(e, Error::SecondaryRateLimited { retry_after: Some(s) } if *s == Duration::from_secs(1)),
            );
            assert!(e.is_rate_limit() && !e.write_outcome_unknown(), "{label}");
            let ledger = sim.ledger();
            let after = &sent(&ledger)[before..];
            assert_eq!(after.len(), 1, "{label}: one request, refused, not retried");
            assert_eq!(after[0].status, status.code_for_tests(), "{label}");
            assert!(!after[0].applied, "{label}");
            // A wait within max_wait: waited out, then the operation succeeds.
            let patient = client(&base, ADMIN_TOKEN);
            sim.inject(InjectedFault::SecondaryLimitAny, 1);
            let t0 = std::time::Instant::now();
            let out = call(&patient, op, REPO, d).await;
            assert!(out.is_ok(), "{label}: {out:?}");
            assert!(
                t0.elapsed() >= Duration::from_millis(950),
                "{label}: waited"
            );
            let refusals = sim
                .ledger()
                .iter()
                .filter(|e| e.fault == Some(FaultKind::SecondaryLimit))
                .count();
            assert_eq!(refusals, 2, "{label}");
        }
        Case::ResetAfterApply => {
            let r = repo(REPO);
            sim.inject(InjectedFault::ResetAfterApply, 1);
            let e = expect(&label, call(admin, op, REPO, d).await, |e| {
                matches!(
                    e,
                    Error::Transport {
                        outcome_unknown: true,
                        ..
                    }
                ) && e.is_retryable()
            });
            assert!(e.write_outcome_unknown(), "{label}");
            let lost = sim
                .ledger()
                .into_iter()
                .find(|e| e.fault == Some(FaultKind::ResetAfterApply))
                .unwrap();
            assert!(lost.applied, "{label}: GitHub applied it");
            let writes = || sent(&sim.ledger()).iter().filter(|e| e.write).count();
            let before = writes();
            // The reconciled outcome.
            match op {
                Op::Create => {
                    let m = marker("case-op", REPO);
                    let (a, origin) = admin
                        .ensure_draft(&r, &draft("x", &m), &m, Attempt::Retry)
                        .await
                        .unwrap();
                    assert_eq!(origin, DraftOrigin::Adopted, "{label}");
                    assert_eq!(lost.ghsa_id.as_deref(), Some(a.ghsa_id.as_str()));
                    assert_eq!(writes(), before, "{label}: no second POST");
                }
                Op::Publish => {
                    let a = admin
                        .ensure_published(&r, d, None, Attempt::Retry)
                        .await
                        .unwrap();
                    assert_eq!(a.state, AdvisoryState::Published);
                    assert_eq!(writes(), before, "{label}: no second PATCH");
                    assert_eq!(sim.ledger().iter().filter(|e| e.is_publish()).count(), 1);
                }
                Op::Close => {
                    let a = admin.ensure_closed(&r, d, Attempt::Retry).await.unwrap();
                    assert_eq!(a.state, AdvisoryState::Closed);
                    assert_eq!(writes(), before, "{label}: no second PATCH");
                }
                Op::RequestCve => {
                    assert_eq!(
                        admin.request_cve(&r, d).await.unwrap(),
                        CveRequest::AlreadyRequested,
                        "{label}"
                    );
                }
                Op::Fork => {
                    let again = admin.create_private_fork(&r, d).await.unwrap();
                    let fork = sim.advisory(REPO, d).unwrap()["private_fork"]["full_name"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    assert_eq!(again.full_name, fork, "{label}: the same fork");
                }
                // Whole-field replacements: the change is there, and sending it again
                // changes nothing more.
                Op::Update | Op::SetCollaborators | Op::SetCredits => {
                    let state = sim.advisory(REPO, d).unwrap();
                    call(admin, op, REPO, d).await.unwrap();
                    let again = sim.advisory(REPO, d).unwrap();
                    assert_eq!(state["updated_at"], again["updated_at"], "{label}");
                    assert_eq!(state, again, "{label}");
                    let applied_again = sim.ledger().last().unwrap().applied;
                    assert!(!applied_again, "{label}: the repeat was a no-op");
                }
                _ => unreachable!("{label}"),
            }
        }
    }
}

trait Code {
    fn code_for_tests(self) -> u16;
}

impl Code for LimitStatus {
    fn code_for_tests(self) -> u16 {
        match self {
            LimitStatus::Forbidden => 403,
            LimitStatus::TooManyRequests => 429,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_under_every_refusal() {
    let cells: Vec<(Op, Case)> = OPS
        .iter()
        .flat_map(|op| CASES.iter().map(move |c| (*op, *c)))
        .filter(|(op, c)| !NOT_APPLICABLE.iter().any(|(o, n, _)| o == op && n == c))
        .collect();
    assert_eq!(cells.len(), OPS.len() * CASES.len() - NOT_APPLICABLE.len());
    let n = cells.len();
    join_all(cells.into_iter().map(|(op, c)| row(op, c))).await;
    eprintln!(
        "{n} cells checked ({} not applicable)",
        NOT_APPLICABLE.len()
    );
}
