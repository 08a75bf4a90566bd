//! Reports in the store, on both backends: recorded once whichever path saw them, deduplicated
//! by webhook delivery in the same transaction; decisions commit with what they cause, and a
//! rejection is in the verified audit trail.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::*;
use lockstep_core::engine::intake::{Report, ReportState};
use lockstep_core::machines::RmState;
use lockstep_core::*;
use lockstep_store::{Error, ReportSeen};

conformance!(
    a_report_is_recorded_once_whichever_path_saw_it,
    opening_a_case_from_a_report_accepts_it_in_the_same_commit,
    a_rejection_is_audited_and_leaves_a_close_for_the_runtime,
    merging_updates_the_report_and_the_case_together,
);

fn report(repo: &str, ghsa: &str) -> Report {
    Report::received(
        r(repo),
        ghsa.parse().unwrap(),
        "Host header not validated".into(),
        "Reporter's text".into(),
        None,
        BTreeSet::new(),
        vec![],
        "rita".parse().unwrap(),
        Timestamp::from_millis(1_767_225_600_000).unwrap(),
    )
}

async fn a_report_is_recorded_once_whichever_path_saw_it(db: &TestDb) {
    let s = &db.store;
    let rep = report("org/core", "GHSA-aaaa-bbbb-0001");
    assert_eq!(
        s.record_report(&rep, Some("d-1")).await.unwrap(),
        ReportSeen::New
    );
    // The same delivery again: nothing.
    assert_eq!(
        s.record_report(&rep, Some("d-1")).await.unwrap(),
        ReportSeen::DuplicateDelivery
    );
    assert!(s.delivery_seen("d-1").await.unwrap());
    // The poll sees it too: known.
    assert_eq!(
        s.record_report(&rep, None).await.unwrap(),
        ReportSeen::Known
    );
    // A redelivery under a new id: known, and its delivery recorded.
    assert_eq!(
        s.record_report(&rep, Some("d-2")).await.unwrap(),
        ReportSeen::Known
    );
    assert_eq!(s.reports(false).await.unwrap().len(), 1);
    let got = s
        .report(&r("org/core"), &"GHSA-AAAA-BBBB-0001".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.report, rep);
}

async fn opening_a_case_from_a_report_accepts_it_in_the_same_commit(db: &TestDb) {
    let s = &db.store;
    let rep = report("org/extra", "GHSA-aaaa-bbbb-0002");
    s.record_report(&rep, None).await.unwrap();
    let c = s
        .open_case_from_report(&user("alice"), open_case("LS-1"), &rep)
        .await
        .unwrap();
    assert_eq!(c.case.adoption(&r("org/extra")).unwrap().ghsa, rep.ghsa);
    let stored = s.report(&rep.repo, &rep.ghsa).await.unwrap().unwrap();
    assert_eq!(stored.report.state, ReportState::Accepted);
    assert_eq!(stored.report.rm, RmState::Valid);
    assert_eq!(stored.report.case_id, Some(cid("LS-1")));
    assert!(s.reports(false).await.unwrap().is_empty());
    assert_eq!(s.reports(true).await.unwrap().len(), 1);
    // A second open from the same (now stale) report is refused, and no case is created.
    let err = s
        .open_case_from_report(&user("alice"), open_case("LS-2"), &rep)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
    assert!(matches!(
        s.case(&cid("LS-2")).await,
        Err(Error::NotFound { .. })
    ));
    s.verify(None).await.unwrap();
}

async fn a_rejection_is_audited_and_leaves_a_close_for_the_runtime(db: &TestDb) {
    let s = &db.store;
    let wf = Workflow::parse(
        "fixture.toml",
        &format!(
            "{WORKFLOW}\n[[triage.out_of_scope]]\nid = \"stdio-dos\"\nsummary = \"s\"\nguidance = \"file a regular issue\"\n"
        ),
    )
    .unwrap();
    // A case first, so that the audit trail interleaves both kinds of entry.
    s.open_case(&user("alice"), open_case("LS-1"))
        .await
        .unwrap();
    let rep = report("org/core", "GHSA-aaaa-bbbb-0003");
    s.record_report(&rep, None).await.unwrap();
    let now = s.now().await.unwrap();
    let out = rep
        .reject(&user("bob"), &[&wf], "stdio only", Some("stdio-dos"), now)
        .unwrap();
    s.reject_report(&out, &serde_json::json!({"reason": "stdio only"}))
        .await
        .unwrap();
    // Deciding twice is refused by the store too (a stale outcome).
    assert!(s.reject_report(&out, &"again").await.is_err());
    let closing = s.reports_to_close().await.unwrap();
    assert_eq!(closing.len(), 1);
    assert_eq!(closing[0].report.rm, RmState::Closed);
    s.report_closed(&rep.repo, &rep.ghsa, None).await.unwrap();
    assert!(s.reports_to_close().await.unwrap().is_empty());
    let stored = s.report(&rep.repo, &rep.ghsa).await.unwrap().unwrap();
    assert_eq!(stored.close_state.as_deref(), Some("done"));
    // The chain verifies, and a case commit after the rejection still chains.
    s.handle(
        &cid("LS-1"),
        &user("bob"),
        assess("org/core", input::Verdict::Investigating, "looking"),
    )
    .await
    .unwrap();
    let report = s.verify(None).await.unwrap();
    assert!(report.entries >= 3, "{report:?}");
    let rule = db
        .text(
            "SELECT input FROM audit WHERE case_id = 'report:org/core/GHSA-aaaa-bbbb-0003'",
            &[],
        )
        .await;
    assert!(
        rule.contains("stdio-dos") && rule.contains("file a regular issue"),
        "{rule}"
    );
}

async fn merging_updates_the_report_and_the_case_together(db: &TestDb) {
    let s = &db.store;
    let mut open = open_case("LS-1");
    open.scope = BTreeSet::from([r("org/core")]);
    s.open_case(&user("alice"), open).await.unwrap();
    let rep = report("org/plugin", "GHSA-aaaa-bbbb-0004");
    s.record_report(&rep, None).await.unwrap();
    // A maintainer may not merge; nothing changes.
    assert!(
        s.merge_report(&cid("LS-1"), &user("bob"), &rep, None)
            .await
            .is_err()
    );
    let c = s
        .merge_report(&cid("LS-1"), &user("alice"), &rep, Some("same flaw"))
        .await
        .unwrap();
    assert!(c.case.participants[&r("org/plugin")].in_scope);
    assert!(c.case.adoption(&r("org/plugin")).is_some());
    let stored = s.report(&rep.repo, &rep.ghsa).await.unwrap().unwrap();
    assert_eq!(stored.report.state, ReportState::Merged);
    assert_eq!(stored.report.case_id, Some(cid("LS-1")));
    s.verify(None).await.unwrap();
}
