//! The runtime's named fail points, in process: for each point and each phase (the drafts
//! phase, and the release), the runtime panics there once; a new runtime (new store handle,
//! new worker name) takes over once the crashed claims' leases expire; the test then checks
//! the converged end state and the ledger (I1–I6: one advisory per repository, every affected
//! one published once, after the gate and its upstream, the audit trail whole).
//!
//! Fail points are process-global, so the scenarios run one at a time (a lock).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use lockstep_e2e::*;
use lockstep_github::PacingConfig;
use lockstep_sim::{RunningSim, SimConfig, Simulator};
use lockstep_store::OutboxState;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The point is armed from the start: it fires on the first draft effects.
    Drafts,
    /// The point is armed just before the mark that opens the gate: it fires on the
    /// release's effects (publications, the not-affected draft's close).
    Release,
}

struct World {
    sim: Simulator,
    _running: RunningSim,
    db: PathBuf,
    rt: CrashingRuntime,
    workflow: lockstep_core::Workflow,
    expect: Expect,
    _dir: tempfile::TempDir,
}

fn options(worker: &str) -> lockstep_runtime::RuntimeOptions {
    lockstep_runtime::RuntimeOptions {
        lease: Duration::from_millis(800),
        ..fast_runtime_options(worker)
    }
}

impl World {
    async fn new() -> World {
        let workflow = small_workflow();
        let sim = simulator(SimConfig::default(), &workflow);
        let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
        let github = github(&running.base_url, PacingConfig::unlimited());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lockstep.db");
        let rt = CrashingRuntime::new(&db, github, options).await;
        let expect = open_case(&rt.store, "LS-FP-1", &workflow).await;
        World {
            sim,
            _running: running,
            db,
            rt,
            workflow,
            expect,
            _dir: dir,
        }
    }
}

async fn scenario(point: &str, phase: Phase) {
    let _serial = SERIAL.lock().await;
    fail::remove(point);
    let mut w = World::new().await;
    if phase == Phase::Drafts {
        fail::cfg(point, "1*panic").unwrap();
    }
    w.rt.drive().await;
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "nothing is public yet"
    );

    // org/extra is not affected; org/plugin publishes after org/core.
    let not_affected: BTreeSet<_> = [repo("org/extra")].into();
    let marks = release_marks(&w.workflow, &not_affected);
    let (last, rest) = marks.split_last().unwrap();
    for m in rest {
        commit_mark(&w.rt.store, &w.workflow, &mut w.expect, m.clone()).await;
    }
    w.rt.drive().await;
    assert!(
        w.sim.ledger().iter().all(|e| !e.is_publish()),
        "the gate holds"
    );
    if phase == Phase::Release {
        fail::cfg(point, "1*panic").unwrap();
    }
    commit_mark(&w.rt.store, &w.workflow, &mut w.expect, last.clone()).await;
    w.rt.drive().await;
    fail::remove(point);

    assert_eq!(w.rt.crashes, 1, "{point} fired once");
    let report = invariants::check(&w.sim, &w.rt.store, &w.db, &w.expect)
        .await
        .unwrap_or_else(|v| panic!("{point} ({phase:?}):\n  {}", v.join("\n  ")));
    let writes = &report.writes;
    assert_eq!(writes.creates, 3, "one advisory per repository");
    assert_eq!(
        writes.publishes, 2,
        "org/core and org/plugin published once each"
    );
    assert_eq!(writes.closes, 1, "org/extra's draft closed");
    println!("{point} ({phase:?}): converged after 1 crash; {writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_claim_after_commit_drafts() {
    scenario("outbox.claim.after_commit", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_claim_after_commit_release() {
    scenario("outbox.claim.after_commit", Phase::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_before_send_drafts() {
    scenario("github.before_send", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_before_send_release() {
    scenario("github.before_send", Phase::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_after_response_before_record_drafts() {
    scenario("github.after_response_before_record", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_after_response_before_record_release() {
    scenario("github.after_response_before_record", Phase::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_after_send_before_response_drafts() {
    scenario("github.after_send_before_response", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_after_send_before_response_release() {
    scenario("github.after_send_before_response", Phase::Release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_after_commit_before_ack_drafts() {
    scenario("record.after_commit_before_ack", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_after_commit_before_ack_release() {
    scenario("record.after_commit_before_ack", Phase::Release).await;
}

/// `github.before_send` configured to return (rather than panic) injects an error before
/// the request leaves: nothing was sent, so it is retried like any failure to reach GitHub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_before_send_error_is_retried() {
    let _serial = SERIAL.lock().await;
    let point = "github.before_send";
    let mut w = World::new().await;
    fail::cfg(point, "1*return").unwrap();
    w.rt.drive().await;
    fail::remove(point);
    let failed: Vec<String> =
        w.rt.store
            .outbox(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.state == OutboxState::Failed)
            .map(|e| format!("{} ({:?})", e.key, e.last_error))
            .collect();
    assert!(
        failed.is_empty(),
        "failed for good after one injected error: {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_before_commit_drafts() {
    scenario("record.before_commit", Phase::Drafts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_before_commit_release() {
    scenario("record.before_commit", Phase::Release).await;
}

/// A crash just before a transition commits (the store's `transition.fix_ready.before_commit`
/// and `audit.append.before_commit`) leaves nothing half-written: no event without its audit
/// entry, no outbox row without its event. The same input then commits normally, and the
/// audit chain verifies throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_a_transition_commits_loses_nothing_and_writes_nothing() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("l.db")).await;
    let workflow = small_workflow();
    let mut expect = open_case(&store, "LS-FP-1", &workflow).await;
    let repo = workflow.repos.keys().next().unwrap().clone();
    for (point, mark) in [
        (
            "transition.fix_ready.before_commit",
            Mark {
                repo: repo.clone(),
                kind: MarkKind::FixReleased,
            },
        ),
        (
            "audit.append.before_commit",
            Mark {
                repo: repo.clone(),
                kind: MarkKind::Assess(lockstep_core::input::Verdict::Affected),
            },
        ),
    ] {
        let before_case = store.case(&expect.case).await.unwrap();
        let before_outbox = store.outbox(None).await.unwrap().len();
        let before_audit = store.verify(None).await.unwrap().entries;
        fail::cfg(point, "1*panic").unwrap();
        let (s, w, m) = (store.clone(), workflow.clone(), mark.clone());
        let mut e = expect.clone();
        let crashed = tokio::spawn(async move { commit_mark(&s, &w, &mut e, m).await }).await;
        fail::remove(point);
        assert!(crashed.is_err(), "{point}: the commit should have crashed");
        let after = store.case(&expect.case).await.unwrap();
        assert_eq!(
            after.version, before_case.version,
            "{point}: no event committed"
        );
        assert_eq!(
            store.outbox(None).await.unwrap().len(),
            before_outbox,
            "{point}: no outbox row"
        );
        assert_eq!(
            store.verify(None).await.unwrap().entries,
            before_audit,
            "{point}: no audit entry"
        );
        // Retried, the same input commits.
        let committed = commit_mark(&store, &workflow, &mut expect, mark).await;
        assert!(!committed.events.is_empty(), "{point}: the retry committed");
        assert_eq!(store.verify(None).await.unwrap().entries, before_audit + 1);
    }
}
