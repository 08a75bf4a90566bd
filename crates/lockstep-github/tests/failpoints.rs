//! The adapter's fail point `github.after_send_before_response` (reliability §5.4: GitHub
//! applies the request, then the answer is lost). It fires after the response has arrived
//! and before it is read, so the write is applied; the adapter must report the outcome as
//! unknown and reconcile before writing again. Fail points are process-global: the
//! scenarios run in one test, one after another.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_github::{AdvisoryState, Attempt, DraftOrigin, Error};
use lockstep_sim::AdvisoryState as SimState;

const POINT: &str = "github.after_send_before_response";

#[tokio::test]
async fn after_send_before_response_loses_the_answer_of_an_applied_request() {
    let scenario = fail::FailScenario::setup();
    let (sim, _running, c) = start().await;
    let r = repo(REPO);
    let writes = |method: &str| sim.ledger().iter().filter(|e| e.method == method).count();

    // A create: applied by GitHub, answer lost.
    let m = marker("case-fp", REPO);
    fail::cfg(POINT, "1*return").unwrap();
    let e = c
        .create_draft(&r, &draft("x", &m), &m, Attempt::First)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { outcome_unknown: true, message } if message.contains(POINT)),
        "{e:?}"
    );
    assert!(e.is_retryable() && e.write_outcome_unknown());
    let created = sim.ledger().into_iter().find(|e| e.is_creation()).unwrap();
    assert!(
        created.delivered,
        "the simulator did answer: the adapter dropped it"
    );
    // The retry reconciles: it adopts the draft instead of creating a second one.
    let (a, origin) = c
        .ensure_draft(&r, &draft("x", &m), &m, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(origin, DraftOrigin::Adopted);
    assert_eq!(Some(a.ghsa_id.as_str()), created.ghsa_id.as_deref());
    assert_eq!(writes("POST"), 1);

    // A publish: applied, answer lost; the retry reads first and sends no second PATCH.
    fail::cfg(POINT, "1*return").unwrap();
    let e = c
        .publish(&r, &a.ghsa_id, None, Attempt::First)
        .await
        .unwrap_err();
    assert!(e.write_outcome_unknown(), "{e:?}");
    assert_eq!(
        sim.advisory_states(REPO).unwrap(),
        vec![(a.ghsa_id.clone(), SimState::Published)]
    );
    let patches = writes("PATCH");
    let p = c
        .ensure_published(&r, &a.ghsa_id, None, Attempt::Retry)
        .await
        .unwrap();
    assert_eq!(p.state, AdvisoryState::Published);
    assert_eq!(writes("PATCH"), patches);
    assert_eq!(sim.ledger().iter().filter(|e| e.is_publish()).count(), 1);

    // A read: its outcome is known (nothing changed), so it is simply read again.
    fail::cfg(POINT, "1*return").unwrap();
    let retries = c.stats().retries;
    c.get_advisory(&r, &a.ghsa_id).await.unwrap();
    assert_eq!(c.stats().retries, retries + 1);

    // Off: nothing fires.
    fail::cfg(POINT, "off").unwrap();
    c.get_advisory(&r, &a.ghsa_id).await.unwrap();
    assert_eq!(c.stats().retries, retries + 1);
    scenario.teardown();
}
