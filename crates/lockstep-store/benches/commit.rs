//! Transition commits against raw single-row commits, on SQLite (WAL, `synchronous=FULL`) in a
//! temporary directory on the same disk.
//!
//! A transition is one `Store::transact`: an `Assessed` event from the core plus an
//! `EffectRequested` event, their outbox row and the audit entry, in one transaction.
//! A raw commit is `BEGIN IMMEDIATE; INSERT` (one ~370-byte row) `; COMMIT` through sqlx with
//! the same settings. Run: `cargo bench -p lockstep-store --bench commit` (optionally
//! `-- <transitions>`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lockstep_core::effect::Action;
use lockstep_core::event::EventKind;
use lockstep_core::input::{Command, Verdict};
use lockstep_core::vuln::{Rating, Severity, Vulnerability};
use lockstep_core::*;
use lockstep_store::Store;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const WORKFLOW: &str = r#"
name = "bench"
coordinators = ["alice"]
[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"
[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]
maintainers = ["bob"]
[[repo]]
name = "org/extra"
ecosystem = "rust"
packages = ["extra"]
maintainers = ["bob"]
"#;

const CASES: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut lat: Vec<Duration>, total: Duration) -> f64 {
    lat.sort();
    let rate = lat.len() as f64 / total.as_secs_f64();
    println!(
        "{name}: {} commits in {:.2} s = {rate:.0}/s (p50 {} µs, p99 {} µs)",
        lat.len(),
        total.as_secs_f64(),
        percentile(&lat, 0.5).as_micros(),
        percentile(&lat, 0.99).as_micros()
    );
    rate
}

async fn transitions(dir: &std::path::Path, n: usize) -> f64 {
    let url = format!("sqlite://{}", dir.join("lockstep.db").display());
    let store = Store::open(&url).await.unwrap();
    let workflow = Workflow::parse("bench.toml", WORKFLOW).unwrap();
    let alice = Principal::user("alice".parse().unwrap());
    let bob = Principal::user("bob".parse().unwrap());
    let core: RepoId = "org/core".parse().unwrap();
    let mut ids = Vec::new();
    for c in 0..CASES {
        let open = OpenCase {
            case_id: format!("BENCH-{c}").parse().unwrap(),
            workflow: workflow.clone(),
            scope: Default::default(),
            vulnerability: Vulnerability {
                summary: "Bench".into(),
                description: "A benchmark case.".into(),
                rating: Rating::Severity(Severity::High),
                cwes: Default::default(),
                credits: vec![],
            },
            embargo_until: None,
        };
        ids.push(store.open_case(&alice, open).await.unwrap().case.id);
    }
    let ghsa: GhsaId = "GHSA-aaaa-bbbb-cccc".parse().unwrap();
    let step = |i: usize| {
        let id = ids[i % CASES].clone();
        let input = Input::Command(Command::Assess {
            repo: core.clone(),
            verdict: Verdict::Investigating,
            reason: format!("step {i}"),
        });
        (id, input)
    };
    // Warm up the cache and the statement caches.
    for i in 0..CASES {
        let (id, input) = step(i);
        store.handle(&id, &bob, input).await.unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in CASES..CASES + n {
        let (id, input) = step(i);
        let t = Instant::now();
        let c = store
            .transact(&id, &input, |case, now| {
                let mut d = case.handle(&bob, input.clone(), now)?;
                let e = Event {
                    seq: case.version + 1,
                    at: now,
                    by: Actor::Automation,
                    kind: EventKind::EffectRequested {
                        effect: Effect {
                            key: format!("{}/org/core/1/bench-{i}", case.id),
                            case: case.id.clone(),
                            repo: core.clone(),
                            action: Action::RequestCve { ghsa: ghsa.clone() },
                        },
                    },
                };
                case.apply(&e)
                    .map_err(|e| Rejection::Internal(e.to_string()))?;
                d.events.push(e);
                Ok(d)
            })
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(c.effects_inserted, 1);
    }
    let total = start.elapsed();
    let rate = summary("transition commits", lat, total);
    let t = Instant::now();
    let report = store.verify(None).await.unwrap();
    println!(
        "verify: {} entries, {} events in {} ms",
        report.entries,
        report.events,
        t.elapsed().as_millis()
    );
    store.close().await;
    rate
}

async fn raw(dir: &std::path::Path, file: &str, n: usize) -> f64 {
    let options = SqliteConnectOptions::new()
        .filename(dir.join(file))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let payload = "x".repeat(370);
    for _ in 0..50 {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (payload) VALUES ($1)")
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (payload) VALUES ($1)")
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let rate = summary("raw single-row commits", lat, total);
    pool.close().await;
    rate
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        println!(
            "SQLite WAL, synchronous=FULL, in {} ({n} commits each)",
            dir.path().display()
        );
        // Raw commits before and after, on the same disk, averaged.
        let before = raw(dir.path(), "raw-before.db", n).await;
        let transition = transitions(dir.path(), n).await;
        let after = raw(dir.path(), "raw-after.db", n).await;
        let raw_rate = (before + after) / 2.0;
        println!(
            "transition commits: {transition:.0}/s; raw commits: {raw_rate:.0}/s; ratio: {:.2} (target >= 0.5)",
            transition / raw_rate
        );
    });
}
