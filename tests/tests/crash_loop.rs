//! The crash loop: a real `lockstep serve` (built with fail points) against the simulator
//! with faults, killed with SIGKILL at random moments and sometimes crashed at a named fail
//! point, restarted, while the test commits assessments and fixes in random order through
//! the store on the same SQLite file. Once everything is done, I1–I6 are checked against
//! the simulator's ledger and the store.
//!
//! Half the cases (by seed; `LOCKSTEP_CRASH_FROM_REPORT=1` or `=0` for all or none) open
//! from a researcher's private vulnerability report on one repository, whose advisory the
//! runtime adopts into the case while it is being killed.
//!
//! `LOCKSTEP_CRASH_ITERATIONS` (default 20), `LOCKSTEP_CRASH_PARALLEL` (iterations run at
//! once, default 20), `LOCKSTEP_CRASH_SEED` (the first iteration's seed; default random).
//!
//! In half the iterations (by seed) the marks start at once, racing the drafts phase; in the
//! other half once every draft exists and its follow-ups (links, CVE request, collaborators)
//! are done, as when maintainers assess the draft they were sent.
//! `LOCKSTEP_CRASH_EARLY_MARKS=1` (or `=0`) makes every iteration race (or wait).
//!
//! `serve` notices the test's commits by itself (the store's change notifications), as it
//! would a maintainer's CLI command.
//!
//! A killed instance's claims move on through worker liveness (its `flock` or PostgreSQL
//! session is gone), not by waiting out the 60 s lease: the harness does not touch them.
//!
//! PostgreSQL: `crash_loop_postgres` runs the same loop with three `serve` instances sharing
//! one fresh database on the server named by `LOCKSTEP_TEST_POSTGRES_URL` (skipped without
//! it): SIGKILL hits a random instance, and now and then every session of the instances is
//! terminated (`pg_terminate_backend`, as a database restart would), after which they reconnect
//! and carry on. There the marks reach the case as they do in a deployment: each is a
//! maintainer's CLI command (`lockstep --server`) sent to a random instance that is up, and
//! half the fixes are marked prepared and then released by GitHub's `release` webhook, which
//! the simulator delivers (and now and then delivers twice) through a front that spreads
//! deliveries across the instances. A command or delivery that an instance dropped is
//! reconciled against the log before it is sent again, so the checker knows exactly what
//! committed; it also checks that each release took effect once. It runs 3 iterations, one at a time, by default;
//! `LOCKSTEP_CRASH_DB=postgres LOCKSTEP_CRASH_ITERATIONS=1000` runs 1,000 (and skips the
//! SQLite loop; `LOCKSTEP_CRASH_DB=sqlite` skips the PostgreSQL one).
//! `LOCKSTEP_CRASH_INSTANCES` sets the number of instances (default 3 on PostgreSQL, 1 on
//! SQLite).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lockstep_core::event::EventKind;
use lockstep_core::model::Fix;
use lockstep_core::{RepoId, Workflow};
use lockstep_e2e::fleet::{Fleet, cli_mark, committed_by, free_port};
use lockstep_e2e::serve::{Serve, ServeConfig, create_postgres_db, drop_postgres_db, lockstep_bin};
use lockstep_e2e::{invariants, *};
use lockstep_sim::{FaultConfig, SimConfig};
use lockstep_store::OutboxState;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};

/// The named fail points that fire inside `serve` (the runtime's, and the store's on the
/// commits `serve` makes). `transition.fix_ready.before_commit` fires on the harness's own
/// commits and has its own test in failpoints.rs.
const POINTS: [&str; 7] = [
    "outbox.claim.after_commit",
    "github.before_send",
    "github.after_send_before_response",
    "github.after_response_before_record",
    "record.before_commit",
    "record.after_commit_before_ack",
    "audit.append.before_commit",
];
/// SIGKILLs per iteration, at most.
const MAX_KILLS: u32 = 4;
/// Fail-point crashes per iteration, at most.
const MAX_FAILPOINT_CRASHES: u32 = 2;
/// An iteration that has not gone quiet by then fails.
const ITERATION_DEADLINE: Duration = Duration::from_secs(240);

#[derive(Debug, Default, Clone)]
struct Stats {
    kills: u32,
    failpoint_runs: u32,
    self_exits: u32,
    /// Times every session of the instances was terminated (PostgreSQL).
    disconnects: u32,
    /// Marks sent as CLI commands to an instance, and fixes released by a webhook delivery.
    cli_marks: u32,
    webhook_releases: u32,
    /// Webhook deliveries each instance received.
    forwarded: Vec<u64>,
    elapsed: Duration,
    report: invariants::Report,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Which database an iteration runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Db {
    Sqlite,
    /// The server's URL (a fresh database is created on it per iteration).
    Postgres(String),
}

fn crash_db() -> Option<String> {
    std::env::var("LOCKSTEP_CRASH_DB")
        .ok()
        .filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_loop() {
    if crash_db().is_some_and(|d| d != "sqlite") {
        eprintln!("skipped: LOCKSTEP_CRASH_DB selects another database");
        return;
    }
    let iterations = env_u64("LOCKSTEP_CRASH_ITERATIONS").unwrap_or(20);
    let parallel = env_u64("LOCKSTEP_CRASH_PARALLEL").unwrap_or(20).max(1) as usize;
    let instances = env_u64("LOCKSTEP_CRASH_INSTANCES").unwrap_or(1).max(1) as usize;
    run_loop(Db::Sqlite, iterations, parallel, instances).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_loop_postgres() {
    let chosen = crash_db();
    if chosen.as_deref().is_some_and(|d| d != "postgres") {
        eprintln!("skipped: LOCKSTEP_CRASH_DB selects another database");
        return;
    }
    let Some(url) = std::env::var("LOCKSTEP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            chosen.is_none(),
            "LOCKSTEP_CRASH_DB=postgres needs LOCKSTEP_TEST_POSTGRES_URL"
        );
        eprintln!("skipped: set LOCKSTEP_TEST_POSTGRES_URL to run the PostgreSQL crash loop");
        return;
    };
    // A few by default (CI); the server is shared, so one at a time unless told otherwise.
    let iterations = match chosen {
        Some(_) => env_u64("LOCKSTEP_CRASH_ITERATIONS").unwrap_or(20),
        None => 3,
    };
    let parallel = env_u64("LOCKSTEP_CRASH_PARALLEL").unwrap_or(1).max(1) as usize;
    let instances = env_u64("LOCKSTEP_CRASH_INSTANCES").unwrap_or(3).max(1) as usize;
    run_loop(Db::Postgres(url), iterations, parallel, instances).await;
}

async fn run_loop(db: Db, iterations: u64, parallel: usize, instances: usize) {
    let base = env_u64("LOCKSTEP_CRASH_SEED").unwrap_or_else(|| rand::rng().random::<u32>().into());
    println!(
        "crash_loop ({}): {iterations} iterations, {parallel} at once, {instances} instances, first seed {base:#x}",
        match db {
            Db::Sqlite => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    );
    // Build (or find) the binary before the clock of any iteration starts.
    let bin = tokio::task::spawn_blocking(lockstep_bin).await.unwrap();
    println!("crash_loop: binary {}", bin.display());

    let started = Instant::now();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..iterations {
        let seed = base.wrapping_add(i);
        let gate = gate.clone();
        let db = db.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let handle = tokio::spawn(iteration(seed, db, instances));
            match handle.await {
                Ok(r) => (seed, r),
                Err(e) => (seed, Err(format!("the iteration panicked: {e}"))),
            }
        });
    }
    let mut failures = Vec::new();
    let mut done: Vec<Stats> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (seed, result) = joined.unwrap();
        match result {
            Ok(stats) => {
                let w = &stats.report.writes;
                println!(
                    "  seed {seed:#x}: quiet after {:>5.1} s; {} SIGKILLs, {} fail-point runs ({} crashed), {} disconnects; {} writes sent ({} 5xx, {} resets after apply), {} audit entries; {} CLI marks, {} fixes released by webhook, deliveries per instance {:?}",
                    stats.elapsed.as_secs_f64(),
                    stats.kills,
                    stats.failpoint_runs,
                    stats.self_exits,
                    stats.disconnects,
                    w.sent,
                    w.errors_5xx,
                    w.resets,
                    stats.report.audit_entries,
                    stats.cli_marks,
                    stats.webhook_releases,
                    stats.forwarded
                );
                done.push(stats);
            }
            Err(why) => {
                println!("  seed {seed:#x}: FAILED\n{why}");
                failures.push((seed, why));
            }
        }
    }
    let kills: u32 = done.iter().map(|s| s.kills).sum();
    let fps: u32 = done.iter().map(|s| s.self_exits).sum();
    let slowest = done.iter().map(|s| s.elapsed).max().unwrap_or_default();
    println!(
        "crash_loop: {} of {iterations} iterations passed in {:.1} s ({kills} SIGKILLs, {fps} fail-point crashes; slowest iteration {:.1} s)",
        done.len(),
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    if !failures.is_empty() {
        let seeds: Vec<String> = failures.iter().map(|(s, _)| format!("{s:#x}")).collect();
        panic!(
            "{} crash-loop iterations failed, seeds {}; rerun one with LOCKSTEP_CRASH_SEED=<seed> LOCKSTEP_CRASH_ITERATIONS=1\n{}",
            failures.len(),
            seeds.join(", "),
            failures
                .iter()
                .map(|(s, w)| format!("seed {s:#x}:\n{w}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The webhook secret the simulator signs with and the instances check.
const WEBHOOK_SECRET: &str = "crash-loop-webhook-secret";

/// How one mark reaches the case.
#[derive(Debug, Clone)]
enum Step {
    /// Committed by the harness through the store, as a command on the database's machine
    /// would be (SQLite).
    Store(Mark),
    /// The maintainer's CLI command, sent to a random instance that is up.
    Cli(Mark),
    /// The repository's fix, marked prepared, is released on GitHub: the simulator's `release`
    /// webhook for each tag in turn, until the fix counts as released.
    Release(RepoId, Vec<String>),
}

/// The steps that make `marks`: through the store, or (`spread`) through the instances, a
/// released fix there being either one command or a prepared fix and its release.
fn steps_for(marks: Vec<Mark>, spread: bool, workflow: &Workflow, rng: &mut StdRng) -> Vec<Step> {
    let mut steps = Vec::new();
    for mark in marks {
        if !spread {
            steps.push(Step::Store(mark));
        } else if mark.kind == MarkKind::FixReleased && rng.random_bool(0.5) {
            let tags = package_fix(workflow, &mark.repo)
                .into_iter()
                .map(|l| format!("v{}", l.patched_versions))
                .collect();
            steps.push(Step::Cli(Mark::new(
                mark.repo.clone(),
                MarkKind::FixPrepared,
            )));
            steps.push(Step::Release(mark.repo, tags));
        } else {
            steps.push(Step::Cli(mark));
        }
    }
    steps
}

/// What a step needs to reach the case and to read back what it did.
struct StepCtx<'a> {
    store: &'a lockstep_store::Store,
    sim: &'a lockstep_sim::Simulator,
    fleet: &'a Fleet,
    workflow: &'a Workflow,
}

/// The outcome of a step that did not fail the iteration.
enum Taken {
    Done,
    /// Nothing committed (no instance was up, or the one that got it died): send it again
    /// later, as its user would; with the reason, if an instance gave one.
    Again(Step, Option<String>),
}

async fn take_step(
    ctx: &StepCtx<'_>,
    step: Step,
    expect: &mut Expect,
    stats: &mut Stats,
) -> Result<Taken, String> {
    let case_id = expect.case.clone();
    let read = |what: &'static str| {
        let case_id = case_id.clone();
        async move {
            let case = ctx.store.case(&case_id).await;
            let events = ctx.store.events(&case_id).await;
            match (case, events) {
                (Ok(c), Ok(e)) => Ok((c, e)),
                (Err(e), _) | (_, Err(e)) => Err(format!("{what}: cannot read the case: {e}")),
            }
        }
    };
    match step {
        Step::Store(mark) => {
            commit_mark(ctx.store, ctx.workflow, expect, mark).await;
            Ok(Taken::Done)
        }
        Step::Cli(mark) => {
            let Some(server) = ctx.fleet.pick() else {
                return Ok(Taken::Again(Step::Cli(mark), None));
            };
            let who = maintainer_of(ctx.workflow, &mark.repo).actor.to_string();
            let (before, _) = read("before the command").await?;
            let sent = cli_mark(&server, ctx.workflow, &case_id, &mark).await;
            // Reconciled against the log: the instance may have committed and died before
            // answering, or answered and committed nothing.
            let (_, events) = read("after the command").await?;
            let mine = committed_by(&events, before.version, &who);
            match (mine.is_empty(), sent) {
                (false, _) => {
                    expect.record_events(mark, &mine);
                    stats.cli_marks += 1;
                    Ok(Taken::Done)
                }
                (true, Ok(())) => Err(format!(
                    "{server} answered {mark:?} with success, yet the log has no event of {who}'s"
                )),
                (true, Err(why)) => Ok(Taken::Again(Step::Cli(mark), Some(why))),
            }
        }
        Step::Release(repo, mut tags) => {
            let Some(tag) = tags.first().cloned() else {
                return Err(format!(
                    "every release of {repo} was delivered, yet its fix is not released"
                ));
            };
            ctx.sim
                .emit_release(repo.as_str(), &tag)
                .map_err(|e| format!("emit the release {tag} of {repo}: {e}"))?;
            ctx.sim.flush_webhooks().await;
            let (case, events) = read("after the release").await?;
            let lines_released = |t: Option<&str>| {
                events.iter().rev().find(|e| {
                    matches!(&e.kind, EventKind::LinesReleased { repo: r, tag: et, .. }
                        if *r == repo && t.is_none_or(|t| t == et))
                })
            };
            let released = case
                .participants
                .get(&repo)
                .is_some_and(|p| matches!(p.fix, Fix::Released { .. }));
            if released {
                // The delivery whose lines completed the fix opened this repository's gate.
                let Some(last) = lines_released(None) else {
                    return Err(format!(
                        "{repo}'s fix is released, but no release webhook released it"
                    ));
                };
                expect.record_events(
                    Mark::new(repo, MarkKind::FixReleased),
                    std::slice::from_ref(last),
                );
                stats.webhook_releases += 1;
                return Ok(Taken::Done);
            }
            if lines_released(Some(&tag)).is_some() {
                tags.remove(0);
                return Ok(Taken::Again(Step::Release(repo, tags), None));
            }
            // No instance took the delivery: GitHub's "redeliver", later.
            let why = format!("the release {tag} of {repo} was not delivered");
            Ok(Taken::Again(Step::Release(repo, tags), Some(why)))
        }
    }
}

async fn dump(store: &lockstep_store::Store) -> String {
    let mut out = String::new();
    for row in store.outbox(None).await.unwrap_or_default() {
        out.push_str(&format!(
            "    {} {:?} epoch {} attempts {} next {} held {:?} error {:?}\n",
            row.key,
            row.state,
            row.epoch,
            row.attempts,
            row.next_attempt_at,
            row.held_reason,
            row.last_error
        ));
    }
    out
}

/// The harness's own sessions carry this name, so that terminating the instances' sessions
/// spares them.
const HARNESS_APP: &str = "lockstep-crash-harness";

/// Terminates every session of the instances on database `name` (what a database restart
/// does to them); returns how many.
async fn disconnect_all(admin: &str, name: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2) t",
    )
    .bind(name)
    .bind(HARNESS_APP)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    n
}

async fn iteration(seed: u64, db_kind: Db, instances: usize) -> Result<Stats, String> {
    let pg = match &db_kind {
        Db::Sqlite => None,
        Db::Postgres(admin) => {
            let name = format!("lockstep_crash_{}_{seed:x}", std::process::id());
            let url = create_postgres_db(admin, &name).await;
            Some((admin.clone(), (name, url)))
        }
    };
    let result = iteration_on(
        seed,
        pg.as_ref()
            .map(|(a, (n, u))| (a.as_str(), n.as_str(), u.as_str())),
        instances,
    )
    .await;
    if let Some((admin, (name, _))) = &pg
        && result.is_ok()
    {
        drop_postgres_db(admin, name).await;
    }
    result
}

async fn iteration_on(
    seed: u64,
    pg: Option<(&str, &str, &str)>,
    instances: usize,
) -> Result<Stats, String> {
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stats = Stats::default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lockstep.db");
    let url = match pg {
        Some((_, _, url)) => url.to_owned(),
        None => sqlite_url(&db),
    };
    let workflow = small_workflow();
    // On PostgreSQL the marks go through the instances (see the module's docs).
    let spread = pg.is_some();
    let faults = FaultConfig {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        error_5xx: 0.10,
        reset_after_apply: 0.20,
        webhook_duplicate: if spread { 0.3 } else { 0.0 },
        ..FaultConfig::default()
    };
    let sim = simulator(
        SimConfig {
            seed,
            faults,
            ..SimConfig::default()
        },
        &workflow,
    );
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let store = match pg {
        Some(_) => lockstep_store::Store::open(&format!("{url}?application_name={HARNESS_APP}"))
            .await
            .unwrap_or_else(|e| panic!("open the store: {e}")),
        None => open_store(&db).await,
    };
    // Each repository is not affected with probability 0.3; at least one is affected.
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();
    // Half the cases (by seed) open from a researcher's private report on one repository,
    // whose advisory the runtime then adopts into the case while it is being killed.
    let from_report = match std::env::var("LOCKSTEP_CRASH_FROM_REPORT").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => rng.random_bool(0.5),
    };
    let mut expect = if from_report {
        let on = &repos[rng.random_range(0..repos.len())];
        let report = file_report(&sim, &store, on).await;
        open_case_from_report(&store, "LS-CRASH-1", &workflow, BTreeSet::new(), &report).await
    } else {
        open_case(&store, "LS-CRASH-1", &workflow).await
    };
    let mut not_affected: BTreeSet<RepoId> = repos
        .iter()
        .filter(|_| rng.random_bool(0.3))
        .cloned()
        .collect();
    if not_affected.len() == repos.len() {
        not_affected.remove(&repos[rng.random_range(0..repos.len())]);
    }
    let marks = shuffle_marks(release_marks(&workflow, &not_affected), &mut rng);
    let mut steps = steps_for(marks, spread, &workflow, &mut rng);
    steps.reverse(); // popped from the end
    let fleet = Fleet::new(instances, seed);
    let ports: Vec<u16> = (0..instances).map(|_| free_port()).collect();
    if spread {
        sim.set_webhook(&fleet.webhook_front().await, Some(WEBHOOK_SECRET));
    }

    let base_cfg = ServeConfig {
        database_url: pg.map(|(_, _, u)| u.to_owned()),
        webhook_secret: spread.then(|| WEBHOOK_SECRET.to_owned()),
        ..ServeConfig::new(&db, &running.base_url, dir.path())
    };
    let mut serves: Vec<Option<Serve>> = (0..instances).map(|_| None).collect();
    let mut kill_at: Option<(usize, Instant)> = None;
    let mut next_disconnect =
        pg.map(|_| Instant::now() + Duration::from_millis(rng.random_range(500..4_000)));
    let mut next_mark = Instant::now() + Duration::from_millis(rng.random_range(100..2_000));
    let deadline = Instant::now() + ITERATION_DEADLINE;
    let mut last_refusal: Option<String> = None;
    let mut drafts_done = match std::env::var("LOCKSTEP_CRASH_EARLY_MARKS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => rng.random_bool(0.5),
    };
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "    did not go quiet within {ITERATION_DEADLINE:?} ({} marks left; last refusal: {})\n{}",
                steps.len(),
                last_refusal.as_deref().unwrap_or("none"),
                dump(&store).await
            ));
        }
        for (i, slot) in serves.iter_mut().enumerate() {
            if slot.is_none() {
                let mut cfg = base_cfg.clone();
                if stats.self_exits < MAX_FAILPOINT_CRASHES && rng.random_bool(0.25) {
                    let point = POINTS.choose(&mut rng).unwrap();
                    cfg.failpoints = Some(format!("{point}=1*panic"));
                    stats.failpoint_runs += 1;
                }
                if spread {
                    cfg.port = Some(ports[i]);
                    fleet.set(i, Some(format!("http://127.0.0.1:{}", ports[i])));
                }
                *slot = Some(Serve::spawn(&cfg));
            }
        }
        if kill_at.is_none() && stats.kills < MAX_KILLS && rng.random_bool(0.02) {
            kill_at = Some((
                rng.random_range(0..instances),
                Instant::now() + Duration::from_millis(rng.random_range(30..3_000)),
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        for (i, slot) in serves.iter_mut().enumerate() {
            if let Some(s) = slot
                && s.exited().is_some()
            {
                // A fail point fired.
                stats.self_exits += 1;
                s.kill();
                *slot = None;
                fleet.set(i, None);
            }
        }
        if let Some((i, t)) = kill_at
            && Instant::now() >= t
        {
            kill_at = None;
            if let Some(mut s) = serves[i].take() {
                stats.kills += 1;
                s.kill();
                fleet.set(i, None);
            }
            continue;
        }
        if let (Some((admin, name, _)), Some(t)) = (pg, next_disconnect)
            && Instant::now() >= t
        {
            disconnect_all(admin, name).await;
            stats.disconnects += 1;
            next_disconnect = (stats.disconnects < 2)
                .then(|| Instant::now() + Duration::from_millis(rng.random_range(1_000..6_000)));
        }
        if !drafts_done {
            let case = store.case(&expect.case).await.unwrap();
            if case.scope().all(|(_, p)| p.advisory.ghsa.is_some()) && outbox_finished(&store).await
            {
                drafts_done = true;
                next_mark = Instant::now() + Duration::from_millis(rng.random_range(0..1_000));
            }
        }
        if drafts_done
            && Instant::now() >= next_mark
            && let Some(step) = steps.pop()
        {
            let ctx = StepCtx {
                store: &store,
                sim: &sim,
                fleet: &fleet,
                workflow: &workflow,
            };
            let (took, what) = (Instant::now(), format!("{step:?}"));
            let taken = take_step(&ctx, step, &mut expect, &mut stats).await;
            if took.elapsed() > Duration::from_secs(2) {
                eprintln!(
                    "  seed {seed:#x}: slow step ({:.1} s): {what}",
                    took.elapsed().as_secs_f64()
                );
            }
            match taken {
                Ok(Taken::Done) => {}
                Ok(Taken::Again(step, why)) => {
                    last_refusal = why.or(last_refusal);
                    steps.push(step);
                }
                Err(why) => return Err(format!("    {why}\n{}", dump(&store).await)),
            }
            next_mark = Instant::now() + Duration::from_millis(rng.random_range(100..2_500));
        }
        if steps.is_empty() {
            let rows = store.outbox(None).await.unwrap();
            if rows.iter().any(|r| r.state == OutboxState::Failed) {
                return Err(format!(
                    "    an effect failed for good\n{}",
                    dump(&store).await
                ));
            }
            if rows.iter().all(|r| r.state == OutboxState::Done) {
                break;
            }
        }
    }
    for slot in serves.iter_mut() {
        if let Some(mut s) = slot.take() {
            s.kill();
        }
    }
    stats.elapsed = t0.elapsed();
    stats.forwarded = fleet.forwarded();
    let result = invariants::check_url(&sim, &store, &url, &expect).await;
    // I7 (as far as this test can see): the token never reaches the logs.
    let logs = std::fs::read_to_string(&base_cfg.log).unwrap_or_default();
    let mut violations = match result {
        Ok(report) => {
            stats.report = report;
            Vec::new()
        }
        Err(v) => v,
    };
    if logs.contains(BOT_TOKEN) {
        violations.push("I7: the GitHub token appears in serve's logs".into());
    }
    running.shutdown().await.ok();
    if violations.is_empty() {
        Ok(stats)
    } else {
        Err(format!(
            "    {}\n    marks committed: {:?}\n{}",
            violations.join("\n    "),
            expect
                .commits
                .iter()
                .map(|c| (&c.mark, c.automation))
                .collect::<Vec<_>>(),
            dump(&store).await
        ))
    }
}
