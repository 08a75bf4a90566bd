//! Adopting a private vulnerability report is crash-safe like every other effect: for each
//! crash window of the runtime (claim committed, before the request, after GitHub applied the
//! PATCH but before its answer, after the answer but before the record, after the record but
//! before the acknowledgement), the runtime panics there once while adopting the report; a new
//! runtime takes over; the report's repository still has exactly one advisory, the reporter's,
//! accepted, carrying the case's marker, and the case records it. The release then publishes
//! it once.
//!
//! Fail points are process-global, so the scenarios run one at a time (a lock). The case is
//! scoped to the report's repository alone, so that the adoption is the first GitHub write and
//! the fail point fires in it.
//!
//! The same with real `lockstep serve` processes: one is killed once its fail point stopped it
//! recording the PATCH GitHub applied, and a case over the whole workflow survives `serve` killed
//! (SIGKILL) again and again while its drafts open and the report is adopted.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use lockstep_core::GhsaId;
use lockstep_core::input::{Command, FixStage, Input, Principal};
use lockstep_e2e::serve::{Serve, ServeConfig};
use lockstep_e2e::*;
use lockstep_github::PacingConfig;
use lockstep_sim::{RunningSim, SimConfig, Simulator};
use lockstep_store::{OutboxState, Store};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct World {
    sim: Simulator,
    _running: RunningSim,
    rt: CrashingRuntime,
    _dir: tempfile::TempDir,
}

fn options(worker: &str) -> lockstep_runtime::RuntimeOptions {
    lockstep_runtime::RuntimeOptions {
        lease: Duration::from_millis(800),
        ..fast_runtime_options(worker)
    }
}

async fn scenario(point: &str) {
    let _serial = SERIAL.lock().await;
    fail::remove(point);
    let workflow = small_workflow();
    let sim = simulator(SimConfig::default(), &workflow);
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let github = github(&running.base_url, PacingConfig::unlimited());
    let dir = tempfile::tempdir().unwrap();
    let rt = CrashingRuntime::new(&dir.path().join("lockstep.db"), github, options).await;

    // rita reports privately on org/core; Lockstep records the report.
    let report = file_report(&sim, &rt.store, &repo("org/core")).await;
    let ghsa = report.ghsa.clone();
    let scope = BTreeSet::from([repo("org/core")]);
    let expect = open_case_from_report(&rt.store, "LS-ADOPT-1", &workflow, scope, &report).await;
    let case_id = expect.case.clone();

    let mut w = World {
        sim,
        _running: running,
        rt,
        _dir: dir,
    };
    fail::cfg(point, "1*panic").unwrap();
    w.rt.drive().await;
    fail::remove(point);
    assert_eq!(w.rt.crashes, 1, "{point} fired once, during the adoption");

    let check = |w: &World| {
        let advisories = w.sim.advisories("org/core").unwrap();
        assert_eq!(advisories.len(), 1, "{point}: one advisory in org/core");
        let a = &advisories[0];
        assert_eq!(a["ghsa_id"], ghsa.as_str(), "{point}: the reporter's");
        a.clone()
    };
    let a = check(&w);
    assert_eq!(a["state"], "draft", "{point}");
    assert_eq!(a["submission"]["accepted"], true, "{point}");
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .contains("<!-- lockstep:LS-ADOPT-1:org/core -->"),
        "{point}"
    );
    let case = w.rt.store.case(&case_id).await.unwrap();
    assert_eq!(
        case.participants[&repo("org/core")].advisory.ghsa,
        Some(ghsa.clone()),
        "{point}: the case records the adopted advisory"
    );
    let creates = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.op == "create" && e.applied)
        .count();
    assert_eq!(creates, 0, "{point}: Lockstep created no advisory");

    // The release publishes it, once.
    w.rt.store
        .handle(
            &case_id,
            &Principal::user("bob".parse().unwrap()),
            Input::Command(Command::MarkFix {
                repo: repo("org/core"),
                stage: FixStage::Released,
                packages: package_fix(&workflow, &repo("org/core")),
            }),
        )
        .await
        .unwrap();
    w.rt.drive().await;
    let a = check(&w);
    assert_eq!(a["state"], "published", "{point}");
    let publishes = w.sim.ledger().iter().filter(|e| e.is_publish()).count();
    assert_eq!(publishes, 1, "{point}: published once");
    w.rt.store.verify(None).await.unwrap();
    println!("{point}: the adoption converged after 1 crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_crash_after_the_claim() {
    scenario("outbox.claim.after_commit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_crash_before_the_request() {
    scenario("github.before_send").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_crash_after_github_applied_it() {
    scenario("github.after_send_before_response").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_crash_before_the_record() {
    scenario("github.after_response_before_record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_crash_after_the_record() {
    scenario("record.after_commit_before_ack").await;
}

/// Sets up the simulator, the database, rita's recorded report on org/core and the case opened
/// from it (over `scope`); returns the world's parts.
async fn reported_case(
    scope: BTreeSet<lockstep_core::RepoId>,
) -> (
    Simulator,
    RunningSim,
    tempfile::TempDir,
    PathBuf,
    Store,
    GhsaId,
) {
    let workflow = small_workflow();
    let sim = simulator(SimConfig::default(), &workflow);
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lockstep.db");
    let store = open_store(&db).await;
    let report = file_report(&sim, &store, &repo("org/core")).await;
    open_case_from_report(&store, "LS-ADOPT-2", &workflow, scope, &report).await;
    let ghsa = report.ghsa.clone();
    (sim, running, dir, db, store, ghsa)
}

async fn quiet(store: &Store) -> bool {
    !store
        .outbox(None)
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(e.state, OutboxState::Pending | OutboxState::Claimed))
}

fn serve_config(
    running: &RunningSim,
    dir: &tempfile::TempDir,
    db: &std::path::Path,
) -> ServeConfig {
    ServeConfig::new(db, &running.base_url, dir.path())
}

fn one_advisory_each(sim: &Simulator, repos: &[&str], ghsa: &GhsaId) {
    for r in repos {
        let advisories = sim.advisories(r).unwrap();
        assert_eq!(advisories.len(), 1, "{r}: {advisories:?}");
    }
    let core = &sim.advisories("org/core").unwrap()[0];
    assert_eq!(core["ghsa_id"], ghsa.as_str());
    assert_eq!(core["state"], "draft");
    assert_eq!(core["submission"]["accepted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_killed_after_github_applied_the_adoption_leaves_one_advisory() {
    let _serial = SERIAL.lock().await;
    let (sim, running, dir, db, store, ghsa) =
        reported_case(BTreeSet::from([repo("org/core")])).await;
    let mut cfg = serve_config(&running, &dir, &db);
    cfg.failpoints = Some("github.after_send_before_response=1*panic".into());
    let mut first = Serve::spawn(&cfg);
    // The fail point panics the adoption's task after GitHub applied the PATCH and before
    // Lockstep saw the answer: wait for GitHub's side, then kill the process (SIGKILL).
    let mut applied = false;
    for _ in 0..400 {
        if sim.advisory("org/core", ghsa.as_str()).unwrap()["state"] == "draft" {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(applied, "GitHub applied the adoption");
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.kill();
    // Lockstep has not recorded it.
    assert!(!quiet(&store).await, "the adoption is not recorded");
    let case = store.case(&"LS-ADOPT-2".parse().unwrap()).await.unwrap();
    assert_eq!(case.participants[&repo("org/core")].advisory.ghsa, None);
    cfg.failpoints = None;
    let _second = Serve::spawn(&cfg);
    for _ in 0..400 {
        if quiet(&store).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(quiet(&store).await, "the restarted serve settled");
    one_advisory_each(&sim, &["org/core"], &ghsa);
    let case = store.case(&"LS-ADOPT-2".parse().unwrap()).await.unwrap();
    assert_eq!(
        case.participants[&repo("org/core")].advisory.ghsa,
        Some(ghsa)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_serve_killed_again_and_again() {
    let _serial = SERIAL.lock().await;
    let (sim, running, dir, db, store, ghsa) = reported_case(BTreeSet::new()).await;
    let cfg = serve_config(&running, &dir, &db);
    let mut kills = 0;
    // Kill `serve` after 40, 80, … ms, until the drafts are open, linked and adopted.
    for i in 0..60u64 {
        let mut s = Serve::spawn(&cfg);
        tokio::time::sleep(Duration::from_millis(40 * (i % 8 + 1))).await;
        s.kill();
        kills += 1;
        if quiet(&store).await {
            break;
        }
    }
    if !quiet(&store).await {
        let _last = Serve::spawn(&cfg);
        for _ in 0..400 {
            if quiet(&store).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    assert!(quiet(&store).await, "settled");
    one_advisory_each(&sim, &["org/core", "org/extra", "org/plugin"], &ghsa);
    let case = store.case(&"LS-ADOPT-2".parse().unwrap()).await.unwrap();
    for (r, p) in case.scope() {
        assert_eq!(p.advisory.linked.len(), 2, "{r} links both siblings");
    }
    println!("adoption settled after {kills} SIGKILL(s)");
}
