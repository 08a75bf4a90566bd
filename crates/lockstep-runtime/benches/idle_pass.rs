//! What an idle pass of the runtime costs as history grows: one pass (`run_once`: deadlines,
//! claim, GitHub sync) and the computation of the next wake, on a store with no cases, against
//! the same on a store holding 10,000 closed cases with 40 finished outbox rows each (400,000
//! rows). Target: a ratio ≤ 1.5. Also times a page of 100 cases out of 10,000 (the store side
//! of `case list` and `GET /api/cases`), against 100 ms.
//!
//! The history is written as rows, the way the store leaves a closed case (`status =
//! 'closed'`, its embargo exited, every outbox row `done`), without their events: a pass must
//! not read a closed case's events, and if it tried, folding a case with no events would fail
//! the benchmark. SQLite in a temporary directory (WAL, `synchronous=FULL`).
//!
//! Run: `cargo bench -p lockstep-runtime --bench idle_pass` (optionally `-- <closed cases>`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_sim::{SimConfig, Simulator};
use lockstep_store::Store;

const ROWS_PER_CASE: usize = 40;
const PASSES: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn open(dir: &std::path::Path, base: &str) -> (Store, Runtime) {
    let url = format!("sqlite://{}", dir.join("l.db").display());
    let store = Store::open(&url).await.unwrap();
    let api = ApiBase::parse(base, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(api, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    let github = Arc::new(GithubClient::new(config).unwrap());
    let runtime = Runtime::new(
        store.clone(),
        github,
        RuntimeOptions {
            worker: "bench".into(),
            ..RuntimeOptions::default()
        },
    );
    (store, runtime)
}

/// Writes `cases` closed cases and their finished outbox rows.
async fn history(dir: &std::path::Path, cases: usize) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("l.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let last = i64::try_from(cases).unwrap() - 1;
    let per = i64::try_from(ROWS_PER_CASE).unwrap() - 1;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO cases (case_id, version, opened_at, updated_at, title, status, embargo_state, embargo_until, repos) \
         SELECT printf('LS-H-%06d', i), 120, 1700000000000 + i * 60000, 1700000000000 + i * 60000 + 3600000, 'a closed case', 'closed', 'exited', 1700000000000 + i * 60000 + 1800000, 10 FROM n",
    )
    .bind(last)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1), \
         k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < $2) \
         INSERT INTO outbox (key, case_id, repo, action, is_publish, effect, state, epoch, attempts, next_attempt_at, created_at, updated_at) \
         SELECT printf('LS-H-%06d/org/r%02d/1/a%d', i, j % 10, j), printf('LS-H-%06d', i), printf('org/r%02d', j % 10), \
         'create-draft', j >= 30, '{}', 'done', 1, 1, 1700000000000 + i * 60000, 1700000000000 + i * 60000, 1700000000000 + i * 60000 \
         FROM n, k",
    )
    .bind(last)
    .bind(per)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// One idle pass: what `serve` does each time it wakes with nothing to do.
async fn pass(runtime: &Runtime) -> Duration {
    let t = Instant::now();
    let report = runtime.run_once().await.unwrap();
    assert_eq!(report.executed + report.ticks + report.observed, 0, "idle");
    let _ = runtime.next_wake().await.unwrap();
    t.elapsed()
}

async fn passes(runtime: &Runtime) -> Duration {
    for _ in 0..10 {
        pass(runtime).await;
    }
    let mut times = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        times.push(pass(runtime).await);
    }
    median(times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cases: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let sim = Simulator::new(SimConfig::default());
    sim.add_user("lockstep-bot", "tok-bot");
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();

    let empty_dir = tempfile::tempdir().unwrap();
    let (empty_store, empty) = open(empty_dir.path(), &running.base_url).await;
    let full_dir = tempfile::tempdir().unwrap();
    let (full_store, _) = open(full_dir.path(), &running.base_url).await;
    full_store.close().await;
    let t = Instant::now();
    history(full_dir.path(), cases).await;
    println!(
        "history: {cases} closed cases, {} outbox rows, written in {:.1} s",
        cases * ROWS_PER_CASE,
        t.elapsed().as_secs_f64()
    );
    let (full_store, full) = open(full_dir.path(), &running.base_url).await;

    // Interleaved rounds, so that a noisy moment on a shared machine hits both alike.
    let mut ratios = Vec::new();
    let (mut e_all, mut f_all) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let e = passes(&empty).await;
        let f = passes(&full).await;
        ratios.push(f.as_secs_f64() / e.as_secs_f64());
        e_all.push(e);
        f_all.push(f);
    }
    let e = median(e_all);
    let f = median(f_all);
    ratios.sort_by(f64::total_cmp);
    println!(
        "idle pass (run_once + next_wake), median of {PASSES}: no cases {} µs, {cases} closed cases {} µs",
        e.as_micros(),
        f.as_micros()
    );
    println!(
        "ratio {:.2} (rounds: {}) (target <= 1.5)",
        ratios[1],
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Listing, a page at a time.
    let mut first = Vec::new();
    let mut middle = Vec::new();
    let mid = full_store.list_cases_page(None, cases / 2).await.unwrap();
    let after = mid.last().map(|c| c.id.clone());
    for _ in 0..50 {
        let t = Instant::now();
        let page = full_store.list_cases_page(None, 100).await.unwrap();
        first.push(t.elapsed());
        assert_eq!(page.len(), 100.min(cases));
        let t = Instant::now();
        let page = full_store
            .list_cases_page(after.as_ref(), 100)
            .await
            .unwrap();
        middle.push(t.elapsed());
        assert_eq!(page.len(), 100.min(cases - cases / 2));
    }
    let (p1, p2) = (median(first), median(middle));
    println!(
        "a page of 100 of {cases} cases: first {} µs, from the middle {} µs; ratio to 100 ms {:.4}",
        p1.as_micros(),
        p2.as_micros(),
        p1.max(p2).as_secs_f64() / 0.1
    );
    // For comparison: what reading everything costs (the old pass read this every time).
    let t = Instant::now();
    let all = full_store.list_cases().await.unwrap().len();
    let rows = full_store.outbox(None).await.unwrap().len();
    println!(
        "for comparison, reading every case ({all}) and outbox row ({rows}): {} ms",
        t.elapsed().as_millis()
    );
    empty_store.close().await;
    full_store.close().await;
}
