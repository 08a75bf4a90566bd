//! One conformance suite for both backends: every scenario runs on SQLite always, and on
//! PostgreSQL when `LOCKSTEP_TEST_POSTGRES_URL` is set (each in a fresh database).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use lockstep_core::auth::{Authority, Role};
use lockstep_core::effect::Action;
use lockstep_core::event::EventKind;
use lockstep_core::input::{AuthMethod, Command, FixStage, Verdict};
use lockstep_core::vuln::PackageFix;
use lockstep_core::*;
use lockstep_store::{Checkpoint, EffectResult, Error, OutboxState, Store, VerifyFailure, Worker};

conformance!(
    cases_versions_and_conflicts,
    concurrent_appends_lose_nothing,
    two_processes_interleave_on_one_trail,
    concurrent_claims_are_exclusive_per_epoch,
    leases_expire_and_stale_epochs_are_fenced,
    a_dead_workers_claims_move_on_at_once,
    retryable_failures_come_back_later,
    inbox_deduplicates_deliveries,
    publication_guard_holds_and_releases,
    a_changed_fix_makes_the_pending_publication_obsolete,
    publication_guard_refuses_before_release,
    audit_detects_every_edit,
    checkpoints_detect_truncation_and_rewrites,
    unknown_newer_schema_is_refused,
    inconsistent_schemas_are_refused,
    read_only_open_neither_creates_nor_migrates,
    corrupt_rows_are_errors_not_panics,
    create_case_takes_the_database_time,
    commits_by_another_handle_wake_a_subscriber,
);

fn automation_authority() -> Authority {
    Authority {
        actor: Actor::Automation,
        authenticated_by: AuthMethod::Runtime,
        role: Role::Automation,
    }
}

async fn opened(store: &Store, id: &str) -> Case {
    store
        .open_case(&user("alice"), open_case(id))
        .await
        .unwrap()
        .case
}

async fn cases_versions_and_conflicts(db: &TestDb) {
    let store = &db.store;
    let c = store
        .open_case(&user("alice"), open_case("LS-1"))
        .await
        .unwrap();
    assert!(c.effects_inserted > 0, "opening requests the drafts");
    assert_eq!(c.audit_id, Some(1));
    let v1 = c.case.version;

    // Duplicate id.
    let err = store
        .open_case(&user("alice"), open_case("LS-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateCase { .. }), "{err}");

    // A command through transact.
    let c2 = store
        .handle(
            &cid("LS-1"),
            &user("bob"),
            assess("org/core", Verdict::Affected, "checked"),
        )
        .await
        .unwrap();
    assert!(c2.case.version > v1);
    assert_eq!(c2.audit_id, Some(2));

    // A rejected command writes nothing.
    let err = store
        .handle(
            &cid("LS-1"),
            &user("carol"),
            assess("org/core", Verdict::Affected, "mine"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(ref r) if r.is_not_authorized()),
        "{err}"
    );
    assert_eq!(
        store.case(&cid("LS-1")).await.unwrap().version,
        c2.case.version
    );

    // Optimistic concurrency on append.
    let mut stale = c.case.clone();
    let d = stale
        .handle(
            &user("bob"),
            assess("org/core", Verdict::Investigating, "again"),
            c.case.last_at,
        )
        .unwrap();
    let err = store
        .append(&cid("LS-1"), v1, &d, "test")
        .await
        .unwrap_err();
    match err {
        Error::Conflict {
            expected, found, ..
        } => {
            assert_eq!(expected, v1);
            assert_eq!(found, c2.case.version);
        }
        e => panic!("expected a conflict, got {e}"),
    }

    // Not found.
    let err = store.case(&cid("LS-404")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store
        .handle(&cid("LS-404"), &user("alice"), Input::Tick)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // The stored case folds to what the commits returned; listing.
    assert_eq!(store.case(&cid("LS-1")).await.unwrap(), c2.case);
    opened(store, "LS-2").await;
    let list = store.list_cases().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, cid("LS-1"));
    assert_eq!(list[0].version, c2.case.version);
    assert_eq!(list[0].repos, 3);
    assert_eq!(list[0].status, lockstep_store::CaseStatus::Embargoed);
    assert_eq!(list[0].title, vulnerability().summary);
    assert!(list[0].embargo_until.is_some());
    store.verify(None).await.unwrap();
}

/// Two handles with pools of their own, as two processes would have, each with a warm cache
/// (so SQLite takes its one-round-trip commit): a stale case version is a conflict that is
/// retried, a stale audit head falls back to the general path, a refused batch leaves the
/// connection usable, and nothing is lost.
async fn two_processes_interleave_on_one_trail(db: &TestDb) {
    let a = &db.store;
    let b = Store::open(&db.url).await.unwrap();
    opened(a, "LS-1").await;
    opened(a, "LS-2").await;
    let step = |store: &Store, case: &'static str, reason: String| {
        let store = store.clone();
        async move {
            store
                .handle(
                    &cid(case),
                    &user("bob"),
                    assess("org/core", Verdict::Investigating, &reason),
                )
                .await
                .unwrap()
        }
    };
    // Warm both caches on both cases.
    for (store, name) in [(a, "a"), (&b, "b")] {
        for case in ["LS-1", "LS-2"] {
            step(store, case, format!("warm {name} {case}")).await;
        }
    }
    for i in 0..10 {
        // b moves LS-1 on: a's cached LS-1 and a's audit head are now stale.
        step(&b, "LS-1", format!("b {i}")).await;
        // a on LS-1: the events' key refuses the stale version; a re-reads and commits.
        let c = step(a, "LS-1", format!("a {i}")).await;
        assert_eq!(c.events.len(), 1, "{:?}", c.events);
        // a on LS-2 (its cache is current, its audit head is not): the general path.
        step(a, "LS-2", format!("a2 {i}")).await;
    }
    for case in ["LS-1", "LS-2"] {
        let events = a.events(&cid(case)).await.unwrap();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "{case}: contiguous seqs");
        }
    }
    let reasons: BTreeSet<String> = a
        .events(&cid("LS-1"))
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Assessed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    for i in 0..10 {
        assert!(reasons.contains(&format!("a {i}")) && reasons.contains(&format!("b {i}")));
    }
    let report = b.verify(None).await.unwrap();
    assert_eq!(report.entries, 2 + 4 + 30);
    b.close().await;
}

async fn concurrent_appends_lose_nothing(db: &TestDb) {
    let store = &db.store;
    let case = opened(store, "LS-1").await;

    // Two writers from the same version: exactly one wins.
    let mut a = case.clone();
    let mut b = case.clone();
    let da = a
        .handle(
            &user("bob"),
            assess("org/core", Verdict::Investigating, "a"),
            case.last_at,
        )
        .unwrap();
    let db_ = b
        .handle(
            &user("bob"),
            assess("org/core", Verdict::Investigating, "b"),
            case.last_at,
        )
        .unwrap();
    let (ra, rb) = tokio::join!(
        store.append(&case.id, case.version, &da, "a"),
        store.append(&case.id, case.version, &db_, "b")
    );
    let loser = match (ra, rb) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        _ => panic!("exactly one of two appends from the same version must win"),
    };
    assert!(loser.is_conflict(), "{loser}");

    // Many writers through transact: every command lands (conflicts are retried).
    let writers = 6;
    let each = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                store
                    .handle(
                        &cid("LS-1"),
                        &user("bob"),
                        assess(
                            "org/core",
                            Verdict::Investigating,
                            &format!("writer {w} step {i}"),
                        ),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.events(&cid("LS-1")).await.unwrap();
    let reasons: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Assessed { reason, .. } if reason.starts_with("writer") => {
                Some(reason.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), writers * each, "no command lost");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "contiguous seqs");
    }
    let report = store.verify(None).await.unwrap();
    assert_eq!(report.entries, 1 + 1 + (writers * each) as u64);
}

async fn concurrent_claims_are_exclusive_per_epoch(db: &TestDb) {
    let store = &db.store;
    let mut case = opened(store, "LS-1").await;
    // Drafts first (the bulk effects are not publishes, so no guard is involved).
    drain(store).await;
    case = store.case(&case.id).await.unwrap();
    let ghsa = ghsa_for(&r("org/core"));
    let total = 10_000;
    let batch = 1_000;
    let mut keys = BTreeSet::new();
    for b in 0..total / batch {
        let expected = case.version;
        let mut events = Vec::new();
        for i in 0..batch {
            let n = b * batch + i;
            let key = format!("LS-1/org/core/1/bulk-{n}");
            keys.insert(key.clone());
            let e = Event {
                seq: case.version + 1,
                at: case.last_at,
                by: Actor::Automation,
                kind: EventKind::EffectRequested {
                    effect: Effect {
                        key,
                        case: case.id.clone(),
                        repo: r("org/core"),
                        action: Action::RequestCve { ghsa: ghsa.clone() },
                    },
                },
            };
            case.apply(&e).unwrap();
            events.push(e);
        }
        let d = Decision {
            events,
            authority: automation_authority(),
        };
        let c = store.append(&case.id, expected, &d, "bulk").await.unwrap();
        assert_eq!(c.effects_inserted, batch as u64);
    }

    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claims = store
                    .claim(&format!("w{w}"), Duration::from_secs(600), 64)
                    .await
                    .unwrap();
                if claims.is_empty() {
                    return got;
                }
                got.extend(claims.into_iter().map(|c| (c.effect.key, c.epoch)));
            }
        }));
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut per_worker = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        per_worker.push(got.len());
        for (key, epoch) in got {
            assert_eq!(epoch, 1, "first claim of {key} is epoch 1");
            assert!(
                seen.insert(key.clone(), epoch).is_none(),
                "{key} claimed twice"
            );
        }
    }
    let bulk: BTreeSet<String> = seen
        .keys()
        .filter(|k| k.contains("bulk-"))
        .cloned()
        .collect();
    assert_eq!(bulk, keys, "every intent claimed exactly once");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() >= 2,
        "work spread over workers: {per_worker:?}"
    );
    // Nothing is claimable while the leases run.
    assert!(
        store
            .claim("late", Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // An effect requested again under a key the outbox holds inserts nothing (unique on the
    // key): the claimed row keeps its case, action, state and epoch. (The core refuses a key
    // twice within a case, so the repeat comes from another case's log.)
    let before = store
        .outbox_entry("LS-1/org/core/1/bulk-0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((before.state, before.epoch), (OutboxState::Claimed, 1));
    let mut other = opened(store, "LS-2").await;
    let rows = store.outbox(None).await.unwrap().len();
    let e = Event {
        seq: other.version + 1,
        at: other.last_at,
        by: Actor::Automation,
        kind: EventKind::EffectRequested {
            effect: Effect {
                key: "LS-1/org/core/1/bulk-0".into(),
                case: other.id.clone(),
                repo: r("org/extra"),
                action: Action::CloseDraft { ghsa: ghsa.clone() },
            },
        },
    };
    let expected = other.version;
    other.apply(&e).unwrap();
    let d = Decision {
        events: vec![e],
        authority: automation_authority(),
    };
    let c = store
        .append(&other.id, expected, &d, "repeat")
        .await
        .unwrap();
    assert_eq!(c.effects_inserted, 0, "nothing inserted");
    assert_eq!(c.case.version, expected + 1, "the event itself is recorded");
    assert_eq!(store.outbox(None).await.unwrap().len(), rows);
    let after = store
        .outbox_entry("LS-1/org/core/1/bulk-0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before, "the existing row is untouched");
    assert_eq!(after.case, cid("LS-1"));
    assert_eq!(after.action, "request-cve");
}

/// Lease time is the database's: a lease ends at the database time of its claim or renewal
/// plus its length. The scenario never waits on the wall clock (a loaded machine must not
/// make it fail): leases meant to hold are hours long, and a lease is made to lapse by
/// renewing it for zero, which ends it at the database's present.
async fn leases_expire_and_stale_epochs_are_fenced(db: &TestDb) {
    let store = &db.store;
    let case = opened(store, "LS-1").await;
    opened(store, "LS-2").await;
    let hour = Duration::from_secs(3600);
    let n = store.outbox(None).await.unwrap().len();
    assert!(n >= 3, "the scenario needs three effects, found {n}");
    let before = store.now().await.unwrap().millis();
    let a = store.claim("a", hour, 10).await.unwrap();
    let after = store.now().await.unwrap().millis();
    assert_eq!(a.len(), n, "every requested effect");
    assert!(a.iter().all(|c| c.epoch == 1 && c.attempts == 1));
    for c in &a {
        let until = c.lease_until.millis();
        assert!(
            (before + 3_600_000..=after + 3_600_000).contains(&until),
            "the lease ends an hour after the claim, by the database's clock: {before} {until} {after}"
        );
    }
    assert!(
        store.claim("b", hour, 10).await.unwrap().is_empty(),
        "leased"
    );
    let raw = |key: String| async move {
        db.text(
            "SELECT state || '/' || COALESCE(lease_owner, '-') || '/' || CAST(epoch AS TEXT) FROM outbox WHERE key = $1",
            &[Bind::Text(key)],
        )
        .await
    };

    // A heartbeat extends a[0]'s lease past the first lease's end.
    let renewed = store.renew(&a[0].effect.key, 1, 2 * hour).await.unwrap();
    assert!(renewed > a[0].lease_until, "{renewed:?}");
    // The other leases end now (a renewal for zero ends a lease at the database's present).
    for c in &a[1..] {
        let ended = store.renew(&c.effect.key, 1, Duration::ZERO).await.unwrap();
        assert!(ended <= store.now().await.unwrap(), "{ended:?}");
    }

    // The other leases lapsed: they read as pending with no owner at once, while the rows wait
    // for the next claim to write them back.
    let lapsed = store.outbox_entry(&a[1].effect.key).await.unwrap().unwrap();
    assert_eq!(
        (lapsed.state, lapsed.lease_owner, lapsed.lease_until),
        (OutboxState::Pending, None, None)
    );
    assert_eq!(raw(a[1].effect.key.clone()).await, "claimed/a/1");
    let kept = store.outbox_entry(&a[0].effect.key).await.unwrap().unwrap();
    assert_eq!(
        (kept.state, kept.lease_owner.as_deref()),
        (OutboxState::Claimed, Some("a"))
    );

    // A claim of one effect returns every lapsed lease's work to pending: owner cleared, and
    // the epoch moved on, so the worker whose lease lapsed is fenced off.
    let b = store.claim("b", Duration::from_secs(60), 1).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_ne!(b[0].effect.key, a[0].effect.key, "the renewed lease holds");
    assert_eq!((b[0].epoch, b[0].attempts), (3, 2), "1, 2 at expiry, 3 now");
    let mut back = 0;
    for c in &a[1..] {
        if c.effect.key == b[0].effect.key {
            continue;
        }
        assert_eq!(
            raw(c.effect.key.clone()).await,
            "pending/-/2",
            "{}",
            c.effect.key
        );
        let err = store
            .complete(
                &c.effect.key,
                c.epoch,
                EffectResult::Succeeded(success_for(&c.effect)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::StaleEpoch {
                    held: 1,
                    current: 2,
                    ..
                }
            ),
            "{err}"
        );
        back += 1;
    }
    assert_eq!(back, n - 2);
    // The renewed lease still holds: nobody else gets a[0].
    let rest = store.claim("b", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(rest.len(), n - 2);
    assert!(rest.iter().all(|c| c.effect.key != a[0].effect.key));
    assert_eq!(raw(a[0].effect.key.clone()).await, "claimed/a/1");

    // Once the renewed lease lapses too, a[0] goes to the next claim, with a new epoch.
    store
        .renew(&a[0].effect.key, 1, Duration::ZERO)
        .await
        .unwrap();
    let late = store.claim("b", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].effect.key, a[0].effect.key);
    assert_eq!((late[0].epoch, late[0].attempts), (3, 2));
    let b: Vec<_> = late;

    // The first worker's results are fenced off: nothing is written.
    let c0 = &a[0];
    let err = store
        .complete(
            &c0.effect.key,
            c0.epoch,
            EffectResult::Succeeded(success_for(&c0.effect)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleEpoch {
                held: 1,
                current: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = store.renew(&c0.effect.key, 1, hour).await.unwrap_err();
    assert!(matches!(err, Error::StaleEpoch { .. }), "{err}");
    assert_eq!(store.case(&case.id).await.unwrap().version, case.version);
    let row = store.outbox_entry(&c0.effect.key).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.lease_owner.as_deref()),
        (OutboxState::Claimed, Some("b"))
    );

    // The current holder records its result in one transaction with the core's events.
    let b0 = b.iter().find(|c| c.effect.key == c0.effect.key).unwrap();
    let done = store
        .complete(
            &b0.effect.key,
            b0.epoch,
            EffectResult::Succeeded(success_for(&b0.effect)),
        )
        .await
        .unwrap();
    assert_eq!(done.state, OutboxState::Done);
    let committed = done.committed.unwrap();
    assert!(committed.events.iter().any(
        |e| matches!(&e.kind, EventKind::EffectSucceeded { key, .. } if *key == b0.effect.key)
    ));
    assert!(committed.case.version > case.version);
    // Twice: not claimed any more; with the old epoch: stale.
    let err = store
        .complete(
            &b0.effect.key,
            b0.epoch,
            EffectResult::Succeeded(success_for(&b0.effect)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotClaimed { .. }), "{err}");
    let err = store
        .complete(
            "no/such/key",
            1,
            EffectResult::Succeeded(success_for(&b0.effect)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEffect { .. }), "{err}");
    store.verify(None).await.unwrap();
}

/// Ends a registered worker's life as a crash would: on PostgreSQL its lock's session is
/// terminated (its connection dropped; the server waits until the session is gone), on SQLite
/// its lock file is closed (what the kernel does when the process dies).
async fn kill_worker(db: &TestDb, worker: Worker) -> Option<Worker> {
    let id = worker.id().unwrap();
    if db.is_postgres() {
        let killed = db
            .text(
                "SELECT CAST(pg_terminate_backend(pid, 10000) AS TEXT) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1280004948 AND objid::bigint = $1 AND objsubid = 2 AND granted",
                &[Bind::Int(id)],
            )
            .await;
        assert_eq!(killed, "true", "the worker's session ended");
        Some(worker)
    } else {
        drop(worker);
        None
    }
}

async fn a_dead_workers_claims_move_on_at_once(db: &TestDb) {
    let store = &db.store;
    let case = opened(store, "LS-1").await;
    let hour = Duration::from_secs(3600);
    let one = store.register_worker("one").await.unwrap();
    let two = store.register_worker("two").await.unwrap();
    assert_ne!(one.id(), two.id());
    assert!(one.alive().await && two.alive().await);
    let claimed = store.claim_as(&one, hour, 10).await.unwrap();
    assert!(claimed.len() >= 2, "{claimed:?}");
    assert!(claimed.iter().all(|c| c.epoch == 1));
    assert!(store.others_claiming(Some(&two)).await.unwrap());
    assert!(!store.others_claiming(Some(&one)).await.unwrap());
    // While the first worker lives, its claims hold for their hour-long lease.
    assert!(store.claim_as(&two, hour, 10).await.unwrap().is_empty());
    assert!(store.claim("plain", hour, 10).await.unwrap().is_empty());

    // It dies: its work moves on at once (SQLite: the kernel released its flock), or once its
    // lock stayed free for the grace of a second (PostgreSQL: a live process whose connection
    // dropped drops its unsent work within it), a new epoch fencing the old one.
    let one = kill_worker(db, one).await;
    let first_look = std::time::Instant::now();
    let mut taken = store.claim_as(&two, hour, 10).await.unwrap();
    if db.is_postgres() {
        while taken.is_empty() {
            assert!(
                first_look.elapsed() < Duration::from_secs(30),
                "the claims never moved on"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            taken = store.claim_as(&two, hour, 10).await.unwrap();
        }
        assert!(
            first_look.elapsed() >= Duration::from_secs(1),
            "not before the grace: {:?}",
            first_look.elapsed()
        );
    }
    let mut keys: Vec<_> = taken.iter().map(|c| c.effect.key.clone()).collect();
    let mut expected: Vec<_> = claimed.iter().map(|c| c.effect.key.clone()).collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected, "every claim of the dead worker moved on");
    assert!(
        taken.iter().all(|c| (c.epoch, c.attempts) == (3, 2)),
        "{taken:?}"
    );
    assert!(!store.others_claiming(Some(&two)).await.unwrap());
    // Its late results and heartbeats are refused, and nothing is written.
    for c in &claimed {
        let err = store
            .complete(
                &c.effect.key,
                c.epoch,
                EffectResult::Succeeded(success_for(&c.effect)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::StaleEpoch {
                    held: 1,
                    current: 3,
                    ..
                }
            ),
            "{err}"
        );
        let err = store.renew(&c.effect.key, c.epoch, hour).await.unwrap_err();
        assert!(matches!(err, Error::StaleEpoch { .. }), "{err}");
    }
    assert_eq!(store.case(&case.id).await.unwrap().version, case.version);
    for c in &taken {
        let row = store.outbox_entry(&c.effect.key).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.lease_owner.as_deref()),
            (OutboxState::Claimed, Some("two"))
        );
    }
    // A worker whose lock connection dropped knows it, and registers again.
    if let Some(one) = one {
        tokio::time::timeout(Duration::from_secs(10), one.lost())
            .await
            .expect("the worker noticed its lock was lost");
        assert!(!one.alive().await, "the lock's connection is gone");
    }
    let again = store.register_worker("one").await.unwrap();
    assert!(again.id() > two.id(), "ids are never reused");
    // The dead worker was forgotten; the live ones are listed.
    let listed = db
        .text("SELECT CAST(COUNT(*) AS TEXT) FROM workers", &[])
        .await;
    assert_eq!(listed, "2");
    // The current holder records its results.
    for c in &taken {
        store
            .complete(
                &c.effect.key,
                c.epoch,
                EffectResult::Succeeded(success_for(&c.effect)),
            )
            .await
            .unwrap();
    }
    store.verify(None).await.unwrap();
}

async fn retryable_failures_come_back_later(db: &TestDb) {
    let store = &db.store;
    opened(store, "LS-1").await;
    let claims = store.claim("a", Duration::from_secs(60), 1).await.unwrap();
    let c = &claims[0];
    let done = store
        .complete(
            &c.effect.key,
            c.epoch,
            EffectResult::Failed {
                error: "502 from GitHub".into(),
                retry_after: Some(Duration::from_millis(400)),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.state, OutboxState::Pending);
    let row = store.outbox_entry(&c.effect.key).await.unwrap().unwrap();
    assert_eq!(row.last_error.as_deref(), Some("502 from GitHub"));
    let later: Vec<_> = store.claim("a", Duration::from_secs(60), 10).await.unwrap();
    assert!(
        later.iter().all(|x| x.effect.key != c.effect.key),
        "backing off"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = store.claim("b", Duration::from_secs(60), 10).await.unwrap();
    let again = again.iter().find(|x| x.effect.key == c.effect.key).unwrap();
    assert_eq!((again.epoch, again.attempts), (2, 2));

    // A permanent failure.
    let done = store
        .complete(
            &again.effect.key,
            again.epoch,
            EffectResult::Failed {
                error: "422".into(),
                retry_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.state, OutboxState::Failed);
    let case = store.case(&cid("LS-1")).await.unwrap();
    assert!(case.participants.values().any(|p| !p.attention.is_empty()));
    assert!(
        store
            .claim("b", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .iter()
            .all(|x| x.effect.key != c.effect.key),
        "a permanent failure is not claimed again by itself"
    );

    // A person deals with the cause and retries: the same row is due again, its attempts kept
    // (so the next attempt reconciles with GitHub first), and the alert is gone.
    let retried = store
        .handle(
            &cid("LS-1"),
            &user("alice"),
            Input::Command(Command::Retry {
                repo: c.effect.repo.clone(),
                reason: "fixed the app's permission".into(),
            }),
        )
        .await
        .unwrap();
    assert!(
        retried
            .case
            .participants
            .values()
            .all(|p| p.attention.is_empty())
    );
    let row = store.outbox_entry(&c.effect.key).await.unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Pending);
    assert_eq!(row.last_error, None);
    let third = store.claim("c", Duration::from_secs(60), 10).await.unwrap();
    let third = third.iter().find(|x| x.effect.key == c.effect.key).unwrap();
    assert_eq!((third.epoch, third.attempts), (3, 3));
    store.verify(None).await.unwrap();
}

async fn inbox_deduplicates_deliveries(db: &TestDb) {
    let store = &db.store;
    assert!(store.record_delivery("d-1").await.unwrap());
    assert!(!store.record_delivery("d-1").await.unwrap());
    assert!(store.delivery_seen("d-1").await.unwrap());
    assert!(!store.delivery_seen("d-2").await.unwrap());

    // Racing redeliveries: exactly one is first.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_delivery("d-race").await.unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1);

    // In the same transaction as what the delivery caused.
    let case = opened(store, "LS-1").await;
    let input = Input::Command(Command::RecordThreat {
        threat: input::Threat::AttacksObserved,
        reason: "seen in the wild".into(),
    });
    let run = |store: Store, input: Input| async move {
        store
            .transact_delivery("gh-delivery-7", &cid("LS-1"), &input, |case, now| {
                case.handle(&user("alice"), input.clone(), now)
            })
            .await
            .unwrap()
    };
    let first = run(store.clone(), input.clone()).await;
    assert!(first.is_some());
    let second = run(store.clone(), input.clone()).await;
    assert!(second.is_none(), "redelivery commits nothing");
    let after = store.case(&case.id).await.unwrap();
    assert_eq!(after.version, first.unwrap().case.version);
    store.verify(None).await.unwrap();
}

/// Opens a case and brings it to the point where core's publication is requested.
async fn to_release(store: &Store) -> Case {
    opened(store, "LS-1").await;
    drain(store).await;
    let id = cid("LS-1");
    store
        .handle(
            &id,
            &user("bob"),
            assess("org/core", Verdict::Affected, "yes"),
        )
        .await
        .unwrap();
    store
        .handle(
            &id,
            &user("carol"),
            assess("org/extra", Verdict::NotAffected, "no"),
        )
        .await
        .unwrap();
    store
        .handle(&id, &user("alice"), released("org/plugin", "plugin"))
        .await
        .unwrap();
    drain_non_publish(store).await;
    let c = store
        .handle(&id, &user("bob"), released("org/core", "core"))
        .await
        .unwrap();
    assert!(
        c.events.iter().any(|e| matches!(&e.kind, EventKind::EffectRequested { effect } if effect.action.is_publish())),
        "the gate opened and core's publication was requested"
    );
    c.case
}

async fn drain_non_publish(store: &Store) {
    // Nothing publishable is pending here, so draining only runs the other effects.
    let done = drain(store).await;
    assert!(done.iter().all(|e| !e.action.is_publish()));
}

async fn publication_guard_holds_and_releases(db: &TestDb) {
    let store = &db.store;
    let id = cid("LS-1");
    to_release(store).await;
    let publish_key = store
        .outbox(Some(&id))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "publish")
        .unwrap()
        .key;

    // Another repository's fix is withdrawn after core's publication was requested: the gate
    // closes, and the claim's guard holds core's publication (its content is still right).
    store
        .handle(
            &id,
            &user("alice"),
            Input::Command(Command::RevokeFix {
                repo: r("org/plugin"),
                reason: "the fix is incomplete".into(),
            }),
        )
        .await
        .unwrap();
    let claims = store
        .claim("w", Duration::from_secs(60), 100)
        .await
        .unwrap();
    assert!(
        claims.iter().all(|c| !c.effect.action.is_publish()),
        "guard refused"
    );
    let row = store.outbox_entry(&publish_key).await.unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Held);
    assert!(
        row.held_reason
            .as_deref()
            .unwrap()
            .contains("gate is closed"),
        "{:?}",
        row.held_reason
    );
    assert_eq!(row.epoch, 0, "never claimed");
    for c in claims {
        store
            .complete(
                &c.effect.key,
                c.epoch,
                EffectResult::Succeeded(success_for(&c.effect)),
            )
            .await
            .unwrap();
    }
    // Held rows are not offered again until the case changes (or the recheck interval).
    let again = store
        .claim("w", Duration::from_secs(60), 100)
        .await
        .unwrap();
    assert!(again.iter().all(|c| c.effect.key != publish_key));
    for c in again {
        store
            .complete(
                &c.effect.key,
                c.epoch,
                EffectResult::Succeeded(success_for(&c.effect)),
            )
            .await
            .unwrap();
    }

    // The fix is released again: the held publication is claimable, and core publishes first.
    store
        .handle(&id, &user("alice"), released("org/plugin", "plugin"))
        .await
        .unwrap();
    let published = drain(store).await;
    let publishes: Vec<&Effect> = published.iter().filter(|e| e.action.is_publish()).collect();
    let order: Vec<RepoId> = publishes.iter().map(|e| e.repo.clone()).collect();
    assert_eq!(order, vec![r("org/core"), r("org/plugin")]);
    assert_eq!(publishes[0].key, publish_key, "the held request itself ran");
    let case = store.case(&id).await.unwrap();
    assert!(
        case.participants[&r("org/core")]
            .advisory
            .published_at
            .is_some()
    );
    store.verify(None).await.unwrap();
}

async fn a_changed_fix_makes_the_pending_publication_obsolete(db: &TestDb) {
    let store = &db.store;
    let id = cid("LS-1");
    to_release(store).await;
    let first = store
        .outbox(Some(&id))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "publish")
        .unwrap()
        .key;
    // core's own fix changes before the publication ran: that request would publish stale
    // versions, so it is finalised as obsolete and a fresh one carries the new content.
    let new_fix = Input::Command(Command::MarkFix {
        repo: r("org/core"),
        stage: FixStage::Released,
        packages: vec![PackageFix {
            package: "core".into(),
            vulnerable_range: None,
            patched_versions: "9.9.9".into(),
        }],
    });
    store.handle(&id, &user("bob"), new_fix).await.unwrap();
    let published = drain(store).await;
    let core = published
        .iter()
        .find(|e| e.action.is_publish() && e.repo == r("org/core"))
        .unwrap();
    assert_eq!(core.key, format!("{first}-2"));
    let Action::Publish { content, .. } = &core.action else {
        panic!()
    };
    assert_eq!(
        content.vulnerabilities[0].patched_versions.as_deref(),
        Some("9.9.9")
    );
    let old = store.outbox_entry(&first).await.unwrap().unwrap();
    assert_eq!(old.state, OutboxState::Failed);
    assert_eq!(old.epoch, 0, "the stale request never ran");
    assert!(old.last_error.unwrap().starts_with("obsolete"));
    store.verify(None).await.unwrap();
}

async fn publication_guard_refuses_before_release(db: &TestDb) {
    let store = &db.store;
    let mut case = opened(store, "LS-1").await;
    drain(store).await;
    case = store.case(&case.id).await.unwrap();
    // A forged publish intent (the release has not started, the embargo is in force).
    let ghsa = case.participants[&r("org/core")]
        .advisory
        .ghsa
        .clone()
        .unwrap();
    let effect = Effect {
        key: "LS-1/org/core/1/publish".into(),
        case: case.id.clone(),
        repo: r("org/core"),
        action: Action::Publish {
            ghsa,
            content: effect::AdvisoryContent {
                summary: "x".into(),
                description: "y".into(),
                rating: vulnerability().rating,
                cwe_ids: BTreeSet::new(),
                credits: vec![],
                vulnerabilities: vec![],
            },
            wave: 0,
        },
    };
    let e = Event {
        seq: case.version + 1,
        at: case.last_at,
        by: Actor::Automation,
        kind: EventKind::EffectRequested { effect },
    };
    let d = Decision {
        events: vec![e],
        authority: automation_authority(),
    };
    store
        .append(&case.id, case.version, &d, "forged")
        .await
        .unwrap();
    for _ in 0..3 {
        let claims = store.claim("w", Duration::from_secs(60), 10).await.unwrap();
        assert!(claims.is_empty(), "an early publish is never claimed");
    }
    let row = store
        .outbox_entry("LS-1/org/core/1/publish")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, OutboxState::Held);
    assert_eq!(
        row.held_reason.as_deref(),
        Some("the release has not started")
    );
}

async fn history(store: &Store) {
    opened(store, "LS-1").await;
    drain(store).await;
    let id = cid("LS-1");
    store
        .handle(
            &id,
            &user("bob"),
            assess("org/core", Verdict::Affected, "yes"),
        )
        .await
        .unwrap();
    opened(store, "LS-2").await;
    store
        .handle(
            &id,
            &user("carol"),
            assess("org/extra", Verdict::Investigating, "looking"),
        )
        .await
        .unwrap();
}

fn tampered_entry(err: &Error) -> Option<u64> {
    match err {
        Error::Tampered(VerifyFailure::Entry { id, .. }) => Some(*id),
        _ => None,
    }
}

async fn audit_detects_every_edit(db: &TestDb) {
    let store = &db.store;
    history(store).await;
    let clean = store.verify(None).await.unwrap();
    assert!(clean.entries >= 8, "{clean:?}");
    db.drop_guards().await;

    // Which entry covers LS-1#3, and a middle entry to edit.
    let target: i64 = db
        .text(
            "SELECT CAST(audit_id AS TEXT) FROM events WHERE case_id = 'LS-1' AND seq = 3",
            &[],
        )
        .await
        .parse()
        .unwrap();
    let mid: i64 = 4;

    async fn expect_tamper(db: &TestDb, what: &str, entry: Option<u64>) {
        let err = db.store.verify(None).await.expect_err(what);
        assert!(matches!(err, Error::Tampered(_)), "{what}: {err}");
        if let Some(id) = entry {
            assert_eq!(tampered_entry(&err), Some(id), "{what}: {err}");
        }
        eprintln!("{what}: {err}");
    }

    // --- each column of an event row ---
    let ev = "WHERE case_id = 'LS-1' AND seq = 3";
    db.exec(&format!("UPDATE events SET case_id = 'LS-9' {ev}"), &[])
        .await;
    expect_tamper(db, "event case_id", Some(target as u64)).await;
    db.exec(
        "UPDATE events SET case_id = 'LS-1' WHERE case_id = 'LS-9' AND seq = 3",
        &[],
    )
    .await;
    store.verify(None).await.unwrap();

    db.exec(&format!("UPDATE events SET seq = seq + 1000 {ev}"), &[])
        .await;
    expect_tamper(db, "event seq", Some(target as u64)).await;
    db.exec(
        "UPDATE events SET seq = 3 WHERE case_id = 'LS-1' AND seq = 1003",
        &[],
    )
    .await;
    store.verify(None).await.unwrap();

    let body = db.text(&format!("SELECT body FROM events {ev}"), &[]).await;
    let mut edited = body.clone().into_bytes();
    let pos = body.find("\"by\"").unwrap() + 6; // one byte inside the actor
    edited[pos] = if edited[pos] == b'a' { b'b' } else { b'a' };
    let edited = String::from_utf8(edited).unwrap();
    db.exec(
        &format!("UPDATE events SET body = $1 {ev}"),
        &[Bind::Text(edited)],
    )
    .await;
    expect_tamper(db, "event body (one byte)", Some(target as u64)).await;
    db.exec(
        &format!("UPDATE events SET body = $1 {ev}"),
        &[Bind::Text(body.clone())],
    )
    .await;
    store.verify(None).await.unwrap();

    db.exec(
        &format!("UPDATE events SET audit_id = audit_id + 1 {ev}"),
        &[],
    )
    .await;
    // The entry loses an event row that named it.
    expect_tamper(db, "event audit_id", Some(target as u64)).await;
    db.exec(
        &format!("UPDATE events SET audit_id = $1 {ev}"),
        &[Bind::Int(target)],
    )
    .await;
    store.verify(None).await.unwrap();

    // --- each column of an audit row ---
    let text_columns = [
        "case_id",
        "actor",
        "authority",
        "input",
        "events_hash",
        "prev_hash",
        "hash",
    ];
    for col in text_columns {
        let orig = db
            .text(
                &format!("SELECT {col} FROM audit WHERE id = $1"),
                &[Bind::Int(mid)],
            )
            .await;
        let mut bytes = orig.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'1' { b'2' } else { b'1' };
        let edited = String::from_utf8(bytes).unwrap();
        db.exec(
            &format!("UPDATE audit SET {col} = $1 WHERE id = $2"),
            &[Bind::Text(edited), Bind::Int(mid)],
        )
        .await;
        expect_tamper(db, &format!("audit {col}"), Some(mid as u64)).await;
        db.exec(
            &format!("UPDATE audit SET {col} = $1 WHERE id = $2"),
            &[Bind::Text(orig), Bind::Int(mid)],
        )
        .await;
        store.verify(None).await.unwrap();
    }
    for col in ["at", "seq_from", "seq_to"] {
        db.exec(
            &format!("UPDATE audit SET {col} = {col} + 1 WHERE id = $1"),
            &[Bind::Int(mid)],
        )
        .await;
        expect_tamper(db, &format!("audit {col}"), Some(mid as u64)).await;
        db.exec(
            &format!("UPDATE audit SET {col} = {col} - 1 WHERE id = $1"),
            &[Bind::Int(mid)],
        )
        .await;
        store.verify(None).await.unwrap();
    }
    db.exec(
        "UPDATE audit SET id = 1000 WHERE id = $1",
        &[Bind::Int(mid)],
    )
    .await;
    expect_tamper(db, "audit id", Some(mid as u64)).await;
    db.exec(
        "UPDATE audit SET id = $1 WHERE id = 1000",
        &[Bind::Int(mid)],
    )
    .await;
    store.verify(None).await.unwrap();

    // --- reorder: swap two entries ---
    db.exec("UPDATE audit SET id = -1 WHERE id = 2", &[]).await;
    db.exec("UPDATE audit SET id = 2 WHERE id = 3", &[]).await;
    db.exec("UPDATE audit SET id = 3 WHERE id = -1", &[]).await;
    expect_tamper(db, "entries 2 and 3 swapped", Some(2)).await;
    db.exec("UPDATE audit SET id = -1 WHERE id = 2", &[]).await;
    db.exec("UPDATE audit SET id = 2 WHERE id = 3", &[]).await;
    db.exec("UPDATE audit SET id = 3 WHERE id = -1", &[]).await;
    store.verify(None).await.unwrap();

    // --- reorder: swap two events' bodies ---
    let b2 = db
        .text(
            "SELECT body FROM events WHERE case_id = 'LS-1' AND seq = 2",
            &[],
        )
        .await;
    db.exec(
        "UPDATE events SET body = $1 WHERE case_id = 'LS-1' AND seq = 2",
        &[Bind::Text(body.clone())],
    )
    .await;
    db.exec(
        "UPDATE events SET body = $1 WHERE case_id = 'LS-1' AND seq = 3",
        &[Bind::Text(b2.clone())],
    )
    .await;
    // The first entry covering either event no longer matches its events_hash.
    let covering: i64 = db
        .text(
            "SELECT CAST(MIN(audit_id) AS TEXT) FROM events WHERE case_id = 'LS-1' AND seq IN (2, 3)",
            &[],
        )
        .await
        .parse()
        .unwrap();
    expect_tamper(db, "events 2 and 3 swapped", Some(covering as u64)).await;
    db.exec(
        "UPDATE events SET body = $1 WHERE case_id = 'LS-1' AND seq = 2",
        &[Bind::Text(b2)],
    )
    .await;
    db.exec(
        "UPDATE events SET body = $1 WHERE case_id = 'LS-1' AND seq = 3",
        &[Bind::Text(body.clone())],
    )
    .await;
    store.verify(None).await.unwrap();

    // --- delete an event row; delete an audit row ---
    db.exec(&format!("DELETE FROM events {ev}"), &[]).await;
    expect_tamper(db, "event deleted", Some(target as u64)).await;
    db.exec(
        "INSERT INTO events (case_id, seq, body, audit_id) VALUES ('LS-1', 3, $1, $2)",
        &[Bind::Text(body), Bind::Int(target)],
    )
    .await;
    store.verify(None).await.unwrap();

    db.exec(&format!("DELETE FROM audit WHERE id = {mid}"), &[])
        .await;
    expect_tamper(db, "audit entry deleted", Some(mid as u64)).await;
}

async fn checkpoints_detect_truncation_and_rewrites(db: &TestDb) {
    let store = &db.store;
    history(store).await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("audit.key");
    let key = lockstep_store::generate_key_file(&key_path).unwrap();
    let cp = store.checkpoint(&key).await.unwrap();
    let text = cp.to_string();
    let cp = Checkpoint::parse(&text).unwrap();
    cp.check_key(
        &lockstep_store::load_key_file(&key_path)
            .unwrap()
            .verifying_key(),
    )
    .unwrap();
    let report = store.verify(Some(&cp)).await.unwrap();
    assert_eq!(report.entries, cp.size);
    assert_eq!(report.head, cp.head_hex());

    // Growth is fine.
    store
        .handle(
            &cid("LS-2"),
            &user("bob"),
            assess("org/core", Verdict::Affected, "yes"),
        )
        .await
        .unwrap();
    store.verify(Some(&cp)).await.unwrap();
    let cp2 = Checkpoint::parse(&store.checkpoint(&key).await.unwrap().to_string()).unwrap();

    // Truncation that leaves a consistent chain: only the checkpoint notices.
    db.drop_guards().await;
    let last = cp2.size as i64;
    let (case, from, prev_hash) = {
        let case = db
            .text(
                "SELECT case_id FROM audit WHERE id = $1",
                &[Bind::Int(last)],
            )
            .await;
        let from: i64 = db
            .text(
                "SELECT CAST(seq_from AS TEXT) FROM audit WHERE id = $1",
                &[Bind::Int(last)],
            )
            .await
            .parse()
            .unwrap();
        let prev = db
            .text(
                "SELECT prev_hash FROM audit WHERE id = $1",
                &[Bind::Int(last)],
            )
            .await;
        (case, from, prev)
    };
    db.exec("DELETE FROM events WHERE audit_id = $1", &[Bind::Int(last)])
        .await;
    db.exec("DELETE FROM audit WHERE id = $1", &[Bind::Int(last)])
        .await;
    let _ = prev_hash;
    db.exec(
        "UPDATE cases SET version = $1 WHERE case_id = $2",
        &[Bind::Int(from - 1), Bind::Text(case)],
    )
    .await;
    // A fresh store (no cached state) sees a self-consistent, shorter trail…
    let reopened = Store::open(&db.url).await.unwrap();
    reopened.verify(None).await.unwrap();
    // …which the checkpoint exposes.
    let err = reopened.verify(Some(&cp2)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tampered(VerifyFailure::Checkpoint { problem }) if problem.contains("truncated")),
        "{err}"
    );
    reopened.verify(Some(&cp)).await.unwrap();

    // Rewritten history: a different entry takes the truncated one's place.
    reopened
        .handle(
            &cid("LS-2"),
            &user("bob"),
            assess("org/core", Verdict::Affected, "rewritten"),
        )
        .await
        .unwrap();
    reopened.verify(None).await.unwrap();
    let err = reopened.verify(Some(&cp2)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tampered(VerifyFailure::Checkpoint { problem }) if problem.contains("rewritten")),
        "{err}"
    );
    reopened.close().await;

    // An altered checkpoint does not parse.
    let forged = text.replacen(
        &format!("\n{}\n", cp.size),
        &format!("\n{}\n", cp.size - 1),
        1,
    );
    assert!(matches!(
        Checkpoint::parse(&forged),
        Err(Error::Checkpoint(_))
    ));
}

async fn unknown_newer_schema_is_refused(db: &TestDb) {
    opened(&db.store, "LS-1").await;
    let checksum = match db.kind {
        Kind::Sqlite { .. } => "X'00'",
        Kind::Postgres { .. } => "'\\x00'::bytea",
    };
    db.exec(
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20991231000000, 'from the future', TRUE, {checksum}, 0)"
        ),
        &[],
    )
    .await;
    let err = Store::open(&db.url).await.unwrap_err();
    match &err {
        Error::SchemaTooNew { found, known } => {
            assert_eq!(*found, 20991231000000);
            assert_eq!(*known, lockstep_store::schema_version());
        }
        e => panic!("expected SchemaTooNew, got {e}"),
    }
    let msg = err.to_string();
    assert!(!msg.contains('\n') && msg.contains("newer"), "{msg}");
    // Nothing was touched: the current store still works.
    db.store.verify(None).await.unwrap();
}

async fn corrupt_rows_are_errors_not_panics(db: &TestDb) {
    let store = &db.store;
    opened(store, "LS-1").await;
    db.drop_guards().await;
    let n = store.outbox(None).await.unwrap().len();
    db.exec(
        "UPDATE outbox SET effect = '{not json' WHERE id = (SELECT MIN(id) FROM outbox)",
        &[],
    )
    .await;
    let claims = store.claim("w", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(
        claims.len(),
        n - 1,
        "the corrupt row is set aside, the others claimed"
    );
    let rows = store.outbox(None).await.unwrap();
    assert_eq!(rows[0].state, OutboxState::Failed);
    assert!(rows[0].last_error.as_deref().unwrap().contains("corrupt"));

    db.exec(
        "UPDATE events SET body = '{\"seq\": 2' WHERE case_id = 'LS-1' AND seq = 2",
        &[],
    )
    .await;
    let fresh = Store::open(&db.url).await.unwrap();
    let err = fresh.case(&cid("LS-1")).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let err = fresh.verify(None).await.unwrap_err();
    assert!(matches!(err, Error::Tampered(_)), "{err}");
    let err = fresh
        .handle(&cid("LS-1"), &user("alice"), Input::Tick)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    fresh.close().await;
}

/// The applied migration `version`'s checksum, hex.
async fn checksum_hex(db: &TestDb, version: i64) -> String {
    let hex = match db.kind {
        Kind::Sqlite { .. } => "lower(hex(checksum))",
        Kind::Postgres { .. } => "encode(checksum, 'hex')",
    };
    db.text(
        &format!("SELECT {hex} FROM _sqlx_migrations WHERE version = {version}"),
        &[],
    )
    .await
}

/// A SQL literal of the bytes `hex`.
fn bytes_sql(db: &TestDb, hex: &str) -> String {
    match db.kind {
        Kind::Sqlite { .. } => format!("X'{hex}'"),
        Kind::Postgres { .. } => format!("decode('{hex}', 'hex')"),
    }
}

/// `_sqlx_migrations` as text, to show it was not touched.
async fn migrations_table(db: &TestDb) -> String {
    let hex = match db.kind {
        Kind::Sqlite { .. } => "lower(hex(checksum))",
        Kind::Postgres { .. } => "encode(checksum, 'hex')",
    };
    let concat = match db.kind {
        Kind::Sqlite { .. } => "group_concat",
        Kind::Postgres { .. } => "string_agg",
    };
    db.text(
        &format!(
            "SELECT COALESCE({concat}(CAST(version AS TEXT) || ':' || description || ':' || CASE WHEN success THEN 'ok' ELSE 'dirty' END || ':' || {hex}, ','), '') FROM (SELECT * FROM _sqlx_migrations ORDER BY version) m"
        ),
        &[],
    )
    .await
}

async fn inconsistent_schemas_are_refused(db: &TestDb) {
    opened(&db.store, "LS-1").await;
    let v = lockstep_store::schema_version();
    let sum = checksum_hex(db, v).await;

    /// Both ways of opening refuse, with one line, and leave the migrations table alone.
    async fn refused(db: &TestDb, what: &str) -> String {
        let table = migrations_table(db).await;
        let mut why = String::new();
        for read_only in [false, true] {
            let err = if read_only {
                Store::open_read_only(&db.url).await.unwrap_err()
            } else {
                Store::open(&db.url).await.unwrap_err()
            };
            match &err {
                Error::SchemaMismatch { why: w } => why = w.clone(),
                e => panic!("{what}: expected SchemaMismatch, got {e}"),
            }
            let msg = err.to_string();
            assert!(
                !msg.contains('\n') && msg.contains("nothing was changed"),
                "{msg}"
            );
            assert_eq!(migrations_table(db).await, table, "{what}: untouched");
        }
        why
    }

    // An edited migration: the applied checksum is not the one this binary embeds.
    db.exec(
        &format!(
            "UPDATE _sqlx_migrations SET checksum = {} WHERE version = {v}",
            bytes_sql(db, "00")
        ),
        &[],
    )
    .await;
    let why = refused(db, "edited").await;
    assert!(why.contains(&format!("migration {v} differs")), "{why}");
    db.exec(
        &format!(
            "UPDATE _sqlx_migrations SET checksum = {} WHERE version = {v}",
            bytes_sql(db, &sum)
        ),
        &[],
    )
    .await;
    Store::open(&db.url).await.unwrap().close().await;

    // A half-applied migration.
    db.exec(
        &format!("UPDATE _sqlx_migrations SET success = FALSE WHERE version = {v}"),
        &[],
    )
    .await;
    let why = refused(db, "half-applied").await;
    assert!(why.contains("half-applied"), "{why}");
    db.exec(
        &format!("UPDATE _sqlx_migrations SET success = TRUE WHERE version = {v}"),
        &[],
    )
    .await;

    // An older migration this binary does not know.
    db.exec(
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (0, 'not ours', TRUE, {}, 0)",
            bytes_sql(db, "00")
        ),
        &[],
    )
    .await;
    let why = refused(db, "unknown").await;
    assert!(why.contains("migration 0 is applied but unknown"), "{why}");
    db.exec("DELETE FROM _sqlx_migrations WHERE version = 0", &[])
        .await;

    let again = Store::open(&db.url).await.unwrap();
    again.verify(None).await.unwrap();
    again.close().await;
}

async fn read_only_open_neither_creates_nor_migrates(db: &TestDb) {
    opened(&db.store, "LS-1").await;
    let ro = Store::open_read_only(&db.url).await.unwrap();
    assert_eq!(ro.verify(None).await.unwrap().entries, 1);
    assert_eq!(ro.list_cases().await.unwrap().len(), 1);
    // Checkpoints only read.
    let key = lockstep_store::AuditSigningKey::from_bytes(&[3; 32]);
    assert_eq!(ro.checkpoint(&key).await.unwrap().size, 1);
    // It cannot write.
    let err = ro
        .open_case(&user("alice"), open_case("LS-2"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err}");
    assert_eq!(db.store.list_cases().await.unwrap().len(), 1);
    ro.close().await;

    // A schema older than this binary's is refused, not migrated.
    let v = lockstep_store::schema_version();
    let description = db
        .text(
            &format!("SELECT description FROM _sqlx_migrations WHERE version = {v}"),
            &[],
        )
        .await;
    let sum = checksum_hex(db, v).await;
    db.exec(
        &format!("DELETE FROM _sqlx_migrations WHERE version = {v}"),
        &[],
    )
    .await;
    let older = migrations_table(db).await;
    let prev: i64 = db
        .text(
            "SELECT CAST(COALESCE(MAX(version), 0) AS TEXT) FROM _sqlx_migrations",
            &[],
        )
        .await
        .parse()
        .unwrap();
    assert!(prev < v);
    let err = Store::open_read_only(&db.url).await.unwrap_err();
    match &err {
        Error::SchemaTooOld { found, known } => assert_eq!((*found, *known), (prev, v)),
        e => panic!("expected SchemaTooOld, got {e}"),
    }
    let msg = err.to_string();
    assert!(!msg.contains('\n') && msg.contains("older"), "{msg}");
    assert_eq!(migrations_table(db).await, older, "nothing was migrated");
    db.exec(
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ({v}, $1, TRUE, {}, 0)",
            bytes_sql(db, &sum)
        ),
        &[Bind::Text(description)],
    )
    .await;

    // And a newer one.
    db.exec(
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20991231000000, 'from the future', TRUE, {}, 0)",
            bytes_sql(db, "00")
        ),
        &[],
    )
    .await;
    let err = Store::open_read_only(&db.url).await.unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
    db.exec(
        "DELETE FROM _sqlx_migrations WHERE version = 20991231000000",
        &[],
    )
    .await;
    let ro = Store::open_read_only(&db.url).await.unwrap();
    ro.verify(None).await.unwrap();
    ro.close().await;
}

async fn create_case_takes_the_database_time(db: &TestDb) {
    let store = &db.store;
    // A decision taken at a time of the caller's choosing: a day ahead.
    let then = Timestamp::from_millis(store.now().await.unwrap().millis() + 86_400_000).unwrap();
    let (_, decision) = Case::open(&user("alice"), open_case("LS-1"), then).unwrap();
    let before = store.now().await.unwrap();
    let c = store.create_case(&decision, "imported").await.unwrap();
    let after = store.now().await.unwrap();
    assert_eq!(
        c.case.opened_at, then,
        "the events keep the decision's time"
    );
    let at: i64 = db
        .text("SELECT CAST(at AS TEXT) FROM audit WHERE id = 1", &[])
        .await
        .parse()
        .unwrap();
    assert!(
        (before.millis()..=after.millis()).contains(&at),
        "the audit time {at} is the database's, not the caller's {}",
        then.millis()
    );
    let listed = &store.list_cases().await.unwrap()[0];
    assert!((before..=after).contains(&listed.updated_at), "{listed:?}");
    // Its effects are due at the database's time, not the caller's.
    let claims = store.claim("w", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(claims.len(), c.effects_inserted as usize);
    assert!(!claims.is_empty());
    store.verify(None).await.unwrap();
}

async fn commits_by_another_handle_wake_a_subscriber(db: &TestDb) {
    // A second handle with pools of its own, as another process would have.
    let other = Store::open(&db.url).await.unwrap();
    let mut changes = db.store.subscribe().await.unwrap();
    let quiet = Duration::from_millis(1000);
    let bound = Duration::from_secs(5);
    assert!(
        tokio::time::timeout(quiet, changes.changed())
            .await
            .is_err(),
        "woke with nothing committed"
    );

    // A commit (events, outbox rows, an audit entry) by the other handle.
    other
        .open_case(&user("alice"), open_case("LS-1"))
        .await
        .unwrap();
    tokio::time::timeout(bound, changes.changed())
        .await
        .expect("a commit by another handle wakes the subscriber")
        .unwrap();
    assert!(
        tokio::time::timeout(quiet, changes.changed())
            .await
            .is_err(),
        "one commit wakes it once"
    );

    // A claim only changes outbox rows.
    assert_eq!(
        other
            .claim("w", Duration::from_secs(60), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::timeout(bound, changes.changed())
        .await
        .expect("a claim wakes the subscriber")
        .unwrap();

    // Commits made while nobody waits are not lost; several wake it once.
    for i in 0..3 {
        other
            .handle(
                &cid("LS-1"),
                &user("bob"),
                assess("org/core", Verdict::Investigating, &format!("step {i}")),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(quiet).await;
    tokio::time::timeout(bound, changes.changed())
        .await
        .expect("commits made before the call wake it")
        .unwrap();
    assert!(
        tokio::time::timeout(quiet, changes.changed())
            .await
            .is_err(),
        "coalesced"
    );

    // The subscriber's own process counts too.
    db.store
        .handle(
            &cid("LS-1"),
            &user("bob"),
            assess("org/core", Verdict::Affected, "mine"),
        )
        .await
        .unwrap();
    tokio::time::timeout(bound, changes.changed())
        .await
        .expect("a commit by the subscriber's own store wakes it")
        .unwrap();
    drop(changes);
    other.close().await;
}

// ----- SQLite-only: files --------------------------------------------------------------------

#[tokio::test]
async fn sqlite_creates_a_missing_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert!(path.exists());
    store
        .open_case(&user("alice"), open_case("LS-1"))
        .await
        .unwrap();
    store.close().await;
    let db = TestDb {
        store: Store::open(&url).await.unwrap(),
        url: url.clone(),
        kind: Kind::Sqlite {
            path: path.clone(),
            dir,
        },
    };
    assert_eq!(db.text("PRAGMA journal_mode", &[]).await, "wal");
    assert_eq!(db.store.list_cases().await.unwrap().len(), 1);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lockstep.db");
    let text = "this is a text file, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file is untouched"
    );
    assert!(!dir.path().join("lockstep.db-wal").exists());

    // A file with the header but garbage after it.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB_u8, 8192));
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotADatabase { .. } | Error::Database(_)),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is untouched"
    );

    // Another application's databases, in rollback-journal and in WAL mode: refused, and left
    // byte for byte as they were, with no -wal or -shm file created next to them.
    for (name, wal) in [("other.db", false), ("other-wal.db", true)] {
        let other = dir.path().join(name);
        {
            use sqlx::{Connection as _, Executor as _};
            let mut options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&other)
                .create_if_missing(true);
            if wal {
                options = options.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            }
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            conn.execute("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')")
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let side = |ext: &str| dir.path().join(format!("{name}-{ext}"));
        assert!(!side("wal").exists() && !side("shm").exists(), "{name}");
        let bytes = std::fs::read(&other).unwrap();
        assert_eq!(bytes[18] == 2, wal, "{name}: the header's journal mode");
        for read_only in [false, true] {
            let url = format!("sqlite://{}", other.display());
            let err = if read_only {
                Store::open_read_only(&url).await.unwrap_err()
            } else {
                Store::open(&url).await.unwrap_err()
            };
            assert!(matches!(err, Error::NotADatabase { .. }), "{name}: {err}");
            assert!(err.to_string().contains("no Lockstep schema"), "{err}");
            // (Not assert_eq: a failure would print the whole file.)
            assert!(
                std::fs::read(&other).unwrap() == bytes,
                "{name} was changed"
            );
            assert!(!side("wal").exists(), "{name}: no -wal file");
            assert!(!side("shm").exists(), "{name}: no -shm file");
        }
    }

    let err = Store::open("mysql://x").await.unwrap_err();
    assert!(matches!(err, Error::UnsupportedUrl { .. }), "{err}");
}

#[tokio::test]
async fn sqlite_read_only_open_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let err = Store::open_read_only(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoDatabase { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        !msg.contains('\n') && msg.contains(&path.display().to_string()),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
    // An empty file holds no schema.
    std::fs::write(&path, b"").unwrap();
    let err = Store::open_read_only(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[tokio::test]
async fn postgres_read_only_refuses_a_database_without_the_schema() {
    use sqlx::Connection as _;
    let Some(admin) = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: set {POSTGRES_ENV} to run the PostgreSQL suite");
        return;
    };
    let name = format!("lockstep_test_empty_{}", rand::random::<u32>());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    let err = Store::open_read_only(&url).await.unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let created: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!created, "nothing was migrated");
    db.close().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_bytes_that_are_not_utf8_name_the_tampered_entry() {
    let db = TestDb::sqlite().await;
    history(&db.store).await;
    db.store.verify(None).await.unwrap();
    db.drop_guards().await;
    let target: i64 = db
        .text(
            "SELECT CAST(audit_id AS TEXT) FROM events WHERE case_id = 'LS-1' AND seq = 3",
            &[],
        )
        .await
        .parse()
        .unwrap();
    let event = format!("WHERE seq = 3 AND audit_id = {target}");
    let entry = "WHERE id = 4".to_owned();
    let mut columns = vec![
        ("events", "case_id", &event, target),
        ("events", "body", &event, target),
    ];
    for col in [
        "case_id",
        "actor",
        "authority",
        "input",
        "events_hash",
        "prev_hash",
        "hash",
    ] {
        columns.push(("audit", col, &entry, 4));
    }
    for (table, col, row, id) in columns {
        let orig = db
            .text(&format!("SELECT hex({col}) FROM {table} {row}"), &[])
            .await;
        // Byte 3 becomes 0xFF: still TEXT, no longer UTF-8.
        let n = db
            .exec(
                &format!(
                    "UPDATE {table} SET {col} = CAST(substr(CAST({col} AS BLOB), 1, 2) || x'ff' || substr(CAST({col} AS BLOB), 4) AS TEXT) {row}"
                ),
                &[],
            )
            .await;
        assert_eq!(n, 1, "{table}.{col}");
        let err = db.store.verify(None).await.unwrap_err();
        assert_eq!(
            tampered_entry(&err),
            Some(id as u64),
            "{table}.{col}: {err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
        db.exec(
            &format!("UPDATE {table} SET {col} = CAST(X'{orig}' AS TEXT) {row}"),
            &[],
        )
        .await;
        db.store.verify(None).await.unwrap();
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_skip_rows_another_claimer_has_locked() {
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set {POSTGRES_ENV} to run the PostgreSQL suite");
        return;
    };
    let store = &db.store;
    let id = cid("LS-1");
    to_release(store).await;
    let publish_key = store
        .outbox(Some(&id))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "publish")
        .unwrap()
        .key;
    // Another case's drafts, to be claimed under a lease that lapses.
    opened(store, "LS-2").await;
    store
        .handle(
            &id,
            &user("alice"),
            Input::Command(Command::RevokeFix {
                repo: r("org/plugin"),
                reason: "incomplete".into(),
            }),
        )
        .await
        .unwrap();
    let first = store
        .claim("w", Duration::from_millis(200), 100)
        .await
        .unwrap();
    let lapsing: Vec<String> = first
        .iter()
        .filter(|c| c.effect.case == cid("LS-2"))
        .map(|c| c.effect.key.clone())
        .collect();
    assert!(lapsing.len() >= 2, "{lapsing:?}");
    assert_eq!(
        store
            .outbox_entry(&publish_key)
            .await
            .unwrap()
            .unwrap()
            .state,
        OutboxState::Held
    );
    // The case moves on, so the next claim releases the held publication; the leases lapse.
    store
        .handle(&id, &user("alice"), released("org/plugin", "plugin"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Another transaction holds the held row and a lapsed one, as a concurrent claimer does
    // while it releases them.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    let locked: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM outbox WHERE key = $1 OR key = $2 FOR UPDATE")
            .bind(&publish_key)
            .bind(&lapsing[0])
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(locked.len(), 2);
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        store.claim("v", Duration::from_secs(60), 100),
    )
    .await
    .expect("a claim waited for rows another transaction holds")
    .unwrap();
    let keys: BTreeSet<String> = got.into_iter().map(|c| c.effect.key).collect();
    assert!(
        !keys.contains(&publish_key) && !keys.contains(&lapsing[0]),
        "{keys:?}"
    );
    assert!(
        keys.contains(&lapsing[1]),
        "the unlocked lapsed lease was taken: {keys:?}"
    );
    tx.rollback().await.unwrap();
    locker.close().await.unwrap();

    // Once free, the rows go to the next claim.
    let keys: BTreeSet<String> = store
        .claim("v", Duration::from_secs(60), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.effect.key)
        .collect();
    assert!(
        keys.contains(&publish_key) && keys.contains(&lapsing[0]),
        "{keys:?}"
    );
    db.cleanup().await;
}
