//! Lockstep's release runtime: the IO shell around the sans-IO core.
//!
//! It claims due effects from the store's outbox (with a lease and a fencing epoch), executes
//! them against GitHub with bounded concurrency, and records each result as an observation in
//! one transaction fenced on the epoch. It also fires the core's deadlines.
//!
//! **Invariant:** the runtime never decides anything about a case. What to do comes from the
//! core (as effects); whether a publication may go out is re-checked by the store when it
//! claims the effect. The runtime only turns effects into GitHub calls.
//!
//! **Invariant:** every write to GitHub is reconciled before it is retried: a claim with more
//! than one attempt calls the adapter's `Attempt::Retry` path, which reads GitHub first (adopts
//! a draft carrying the case's marker, counts an already published advisory as success).
//!
//! Named fail points (compiled in with the `failpoints` feature): `outbox.claim.after_commit`,
//! `github.before_send`, `github.after_response_before_record`, `record.after_commit_before_ack`.
#![forbid(unsafe_code)]

mod execute;
pub mod identity;
pub mod intake;
mod preflight;
mod propagation;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use lockstep_core::{Input, Principal, Timestamp};
use lockstep_github::GithubClient;
use lockstep_store::{Claim, EffectResult, OutboxState, Store, Worker};
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use execute::execute;

/// A result and what recording it did.
type Recorded = (
    Claim,
    EffectResult,
    Result<lockstep_store::Completion, lockstep_store::Error>,
);

/// The `github.before_send` fail point, for the wave path.
fn fail_before_send() -> Option<lockstep_github::Error> {
    fail::fail_point!("github.before_send", |_| Some(
        lockstep_github::Error::Transport {
            message: "fail point github.before_send".into(),
            outcome_unknown: false,
        }
    ));
    None
}

/// How soon `serve` tries again after a pass failed (the database away).
const RETRY_PASS: Duration = Duration::from_secs(1);

/// What can go wrong in the runtime itself (failures of effects are recorded, not returned).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] lockstep_store::Error),
    /// A worker task failed to join.
    #[error("a worker task failed: {0}")]
    Join(String),
}

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// This worker's name, recorded as the lease owner.
    pub worker: String,
    /// Effects claimed at once. A release wave is claimed together and issued as one burst
    /// (the adapter splits it only where the content-creation budget requires), so this should
    /// be at least the number of repositories in a wave. Claims waiting in the adapter's pacer
    /// keep their leases alive.
    pub concurrency: usize,
    /// How long a claim holds an effect before another worker may take it.
    pub lease: Duration,
    /// First retry delay after a retryable failure; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Longest sleep of `serve` when nothing is scheduled.
    pub idle_wake: Duration,
    /// While another worker holds claims, how often `serve` checks whether it is still alive
    /// (its database session or lock file; see `lockstep_store::Worker`), so that a dead
    /// worker's claims move on within this, not when their lease lapses.
    pub liveness_poll: Duration,
    /// How recent the last verified webhook delivery must be for webhooks to count as
    /// healthy (see [`Runtime::webhook_received`]).
    pub webhook_window: Duration,
    /// While webhooks are healthy, how often a pass still reads GitHub (the safety poll for a
    /// delivery GitHub dropped). Without healthy webhooks, every pass reads GitHub, at the
    /// latest every `idle_wake`.
    pub safety_poll: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            worker: format!("lockstep-{}", std::process::id()),
            concurrency: 128,
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            idle_wake: Duration::from_secs(300),
            liveness_poll: Duration::from_millis(250),
            webhook_window: Duration::from_secs(3600),
            safety_poll: Duration::from_secs(3600),
        }
    }
}

/// What one pass of [`Runtime::run_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Facts observed on GitHub (CVE assigned, fork created, published elsewhere).
    pub observed: usize,
    /// Deadlines fired.
    pub ticks: usize,
    /// Effects executed.
    pub executed: usize,
    /// Of those, succeeded.
    pub succeeded: usize,
    /// Of those, failed and to be retried.
    pub retrying: usize,
    /// Of those, failed for good (they show in the case's status).
    pub failed: usize,
    /// Results discarded because another worker had taken the effect over.
    pub stale: usize,
}

/// An effect that failed for good and waits for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    /// The case.
    pub case: lockstep_core::CaseId,
    /// The repository.
    pub repo: lockstep_core::RepoId,
    /// The effect's key.
    pub key: String,
    /// What GitHub answered.
    pub error: String,
}

/// How a release is going, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseProgress {
    /// The case.
    pub case: lockstep_core::CaseId,
    /// Advisories of the release that are public.
    pub published: usize,
    /// Advisories the release publishes (affected repositories with a released fix).
    pub total: usize,
}

impl ReleaseProgress {
    fn of(case: &lockstep_core::Case) -> Self {
        let plan: Vec<_> = case.release_plan().into_iter().flatten().collect();
        let published = plan
            .iter()
            .filter(|r| {
                case.participants.get(*r).is_some_and(|p| {
                    p.advisory.state == lockstep_core::model::RemoteState::Published
                })
            })
            .count();
        Self {
            case: case.id.clone(),
            published,
            total: plan.len(),
        }
    }
}

/// Called with each step of a release: when a wave goes out and as each publication is
/// recorded.
pub type ProgressObserver = Arc<dyn Fn(&ReleaseProgress) + Send + Sync>;

/// The runtime.
#[derive(Clone)]
pub struct Runtime {
    store: Store,
    github: Arc<GithubClient>,
    opts: RuntimeOptions,
    wake: Arc<Notify>,
    progress: Option<ProgressObserver>,
    /// This runtime's registration as a worker whose liveness the store knows (registered
    /// at the first claim, and again if its lock was lost).
    worker: Arc<tokio::sync::Mutex<Option<Arc<Worker>>>>,
    /// The read budget: when a verified webhook delivery last arrived and when GitHub was
    /// last read, on `clock`.
    reads: Arc<std::sync::Mutex<ReadSchedule>>,
    clock: Clock,
    /// Polling for private vulnerability reports (none: not polled), and when it last ran.
    intake: Option<(
        intake::IntakeOptions,
        Arc<std::sync::Mutex<Option<Duration>>>,
    )>,
}

/// A monotonic clock for the read budget: time since some fixed start.
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// When GitHub was last read and when a webhook delivery last arrived.
#[derive(Debug, Default, Clone, Copy)]
struct ReadSchedule {
    last_delivery: Option<Duration>,
    last_sync: Option<Duration>,
}

impl ReadSchedule {
    /// Whether a pass at `now` reads GitHub: always, unless webhooks are healthy (a verified
    /// delivery within `window`) and GitHub was read within `safety`.
    fn due(&self, now: Duration, window: Duration, safety: Duration) -> bool {
        let healthy = self
            .last_delivery
            .is_some_and(|d| now.saturating_sub(d) <= window);
        !healthy
            || self
                .last_sync
                .is_none_or(|s| now.saturating_sub(s) >= safety)
    }
}

impl Runtime {
    /// A runtime over a store and a GitHub client.
    pub fn new(store: Store, github: Arc<GithubClient>, opts: RuntimeOptions) -> Self {
        Self {
            store,
            github,
            opts,
            wake: Arc::new(Notify::new()),
            progress: None,
            worker: Arc::new(tokio::sync::Mutex::new(None)),
            reads: Arc::new(std::sync::Mutex::new(ReadSchedule::default())),
            clock: {
                let start = std::time::Instant::now();
                Arc::new(move || start.elapsed())
            },
            intake: None,
        }
    }

    /// Polls these repositories for private vulnerability reports awaiting triage, no more
    /// often than `opts.interval` (the first pass always polls; while webhooks are healthy,
    /// no more often than `safety_poll` either), and closes the advisories of rejected
    /// reports.
    pub fn with_intake(mut self, opts: intake::IntakeOptions) -> Self {
        self.intake = Some((opts, Arc::new(std::sync::Mutex::new(None))));
        self
    }

    /// The intake's share of a pass: closes rejected reports' advisories, and polls for new
    /// reports when the interval has passed.
    async fn intake_pass(&self) -> Result<usize, lockstep_store::Error> {
        let Some((opts, last)) = &self.intake else {
            return Ok(0);
        };
        let closed = intake::close_rejected(&self.store, &self.github).await?;
        let now = (self.clock)();
        // While webhooks are healthy, `reported` deliveries bring the reports: the poll backs
        // off to the safety interval, like the reads of open drafts.
        let healthy = self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_delivery
            .is_some_and(|d| now.saturating_sub(d) <= self.opts.webhook_window);
        let interval = if healthy {
            opts.interval.max(self.opts.safety_poll)
        } else {
            opts.interval
        };
        let due = {
            let mut last = last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|l| now.saturating_sub(l) >= interval);
            if due {
                *last = Some(now);
            }
            due
        };
        let polled = if due {
            intake::poll(&self.store, &self.github, &opts.repos).await?
        } else {
            0
        };
        // A closed report or a new one changes nothing a case waits for.
        let _ = (closed, polled);
        Ok(0)
    }

    /// Replaces the clock the read budget runs on (a simulation's, in benchmarks).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Notes a verified webhook delivery (called by the server once the signature checks):
    /// while one arrived within `webhook_window`, passes read GitHub only every
    /// `safety_poll`, since what changes there arrives as deliveries.
    pub fn webhook_received(&self) {
        let now = (self.clock)();
        self.reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_delivery = Some(now);
    }

    /// Whether this pass reads GitHub (see [`RuntimeOptions::safety_poll`]); if so, notes it.
    fn reading_due(&self) -> bool {
        let now = (self.clock)();
        let mut reads = self
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if reads.due(now, self.opts.webhook_window, self.opts.safety_poll) {
            reads.last_sync = Some(now);
            true
        } else {
            false
        }
    }

    /// Reports each step of a release to `observer` (the CLI's progress display).
    pub fn with_progress(mut self, observer: ProgressObserver) -> Self {
        self.progress = Some(observer);
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Wakes a sleeping [`serve`](Self::serve) loop (call after committing a command).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Does all due work, then returns: reads GitHub for what it decides on its own (CVE
    /// assignment, private forks, publications made outside Lockstep), fires due deadlines, and
    /// claims and executes effects until none is due now (retries scheduled for later and
    /// publications the guard holds are left for later).
    pub async fn run_once(&self) -> Result<RunReport, Error> {
        let mut report = RunReport::default();
        let mut synced = false;
        // Whether this pass reads the repositories' advisories (decided once per pass).
        let mut read_advisories: Option<bool> = None;
        loop {
            let ticks = self.fire_deadlines().await?;
            report.ticks += ticks;
            let claims = self.claim().await?;
            fail::fail_point!("outbox.claim.after_commit");
            if claims.is_empty() && ticks == 0 {
                // Reading GitHub comes last, so it never delays a release; what it observes
                // (a leak, say) may make more work due.
                if synced {
                    return Ok(report);
                }
                let read = *read_advisories.get_or_insert_with(|| self.reading_due());
                // A commit that wakes the runtime while it reads must not wait for the reads
                // (a round trip): drop them (they only read; an observation already recorded
                // stays recorded), do the new work, and read again once it is done.
                let observed = tokio::select! {
                    biased;
                    () = self.wake.notified() => continue,
                    observed = async {
                        let polled = if read {
                            sync::sync(&self.store, &self.github).await?
                        } else {
                            0
                        };
                        let intake = self.intake_pass().await?;
                        Ok::<usize, lockstep_store::Error>(
                            polled + intake + propagation::watch(&self.store, &self.github).await?,
                        )
                    } => observed?,
                };
                synced = true;
                report.observed += observed;
                if observed == 0 {
                    return Ok(report);
                }
                continue;
            }
            self.execute_all(claims, &mut report).await?;
        }
    }

    /// Claims due effects as this runtime's registered worker (registering first, or again
    /// if the worker's lock was lost: its claims may have moved on, and its results for them
    /// will be refused as stale). Without a registration (the database refused it), claims
    /// rely on their lease alone.
    async fn claim(&self) -> Result<Vec<Claim>, Error> {
        let mut slot = self.worker.lock().await;
        if let Some(w) = slot.as_ref()
            && !w.alive().await
        {
            tracing::warn!(
                worker = w.name(),
                "this worker lost its liveness lock; registering again"
            );
            *slot = None;
        }
        if slot.is_none() {
            match self.store.register_worker(&self.opts.worker).await {
                Ok(w) => *slot = Some(Arc::new(w)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register as a worker; claims rely on their lease");
                    return Ok(self
                        .store
                        .claim(&self.opts.worker, self.opts.lease, self.opts.concurrency)
                        .await?);
                }
            }
        }
        match slot.as_ref() {
            Some(w) => Ok(self
                .store
                .claim_as(w.as_ref(), self.opts.lease, self.opts.concurrency)
                .await?),
            None => Ok(Vec::new()),
        }
    }

    async fn execute_all(&self, claims: Vec<Claim>, report: &mut RunReport) -> Result<(), Error> {
        let mut set = JoinSet::new();
        // Publications claimed together are one wave: they go out as one burst, because every
        // moment between them is a moment in which some advisories are public and others not.
        let (wave, others): (Vec<Claim>, Vec<Claim>) = claims
            .into_iter()
            .partition(|c| c.effect.action.is_publish());
        if !wave.is_empty() {
            let this = self.clone();
            set.spawn(async move {
                let held: Vec<(String, u64)> = wave
                    .iter()
                    .map(|c| (c.effect.key.clone(), c.epoch))
                    .collect();
                // A wave larger than the burst budget waits a window between bursts: its
                // leases are kept alive (a lost one only ends that row's renewal).
                this.heartbeat(&held, false, this.publish_wave(wave))
                    .await
                    .unwrap_or_default()
            });
        }
        for claim in others {
            let this = self.clone();
            set.spawn(async move {
                let held = [(claim.effect.key.clone(), claim.epoch)];
                let backoff = this.backoff(&claim);
                let work = execute(&this.github, &claim, &backoff);
                // An effect waiting in the pacer may outlast its lease; the lease is renewed
                // while it works, and if it is lost (another worker fenced it out) the work is
                // dropped before it writes, and nothing is recorded.
                match this.heartbeat(&held, true, work).await {
                    Some(result) => vec![this.record(claim, result).await],
                    None => {
                        tracing::warn!(key = %claim.effect.key, "lost the lease while working; the effect is left to its new owner");
                        Vec::new()
                    }
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            for (claim, result, done) in joined.map_err(|e| Error::Join(e.to_string()))? {
                report.executed += 1;
                match done {
                    Err(lockstep_store::Error::StaleEpoch { .. }) => report.stale += 1,
                    Err(e) => return Err(e.into()),
                    Ok(c) => {
                        if let (Some(observer), Some(committed)) = (&self.progress, &c.committed)
                            && claim.effect.action.is_publish()
                        {
                            observer(&ReleaseProgress::of(&committed.case));
                        }
                        if let Some(r) = &c.rejection {
                            tracing::warn!(key = %claim.effect.key, rejection = %r, "the core refused an effect's result");
                        }
                        match (&result, c.state) {
                            (EffectResult::Succeeded(_), _) => report.succeeded += 1,
                            (_, OutboxState::Failed) => {
                                report.failed += 1;
                                tracing::error!(case = %claim.effect.case, repo = %claim.effect.repo, action = claim.effect.action.name(), "an effect failed for good; it needs a person");
                            }
                            _ => report.retrying += 1,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Publishes a wave through the adapter's burst, then records each result.
    async fn publish_wave(&self, claims: Vec<Claim>) -> Vec<Recorded> {
        if let Some(observer) = &self.progress {
            let cases: std::collections::BTreeSet<_> =
                claims.iter().map(|c| c.effect.case.clone()).collect();
            for id in cases {
                if let Ok(case) = self.store.case(&id).await {
                    observer(&ReleaseProgress::of(&case));
                }
            }
        }
        let mut items = Vec::new();
        let mut ready = Vec::new();
        let mut out = Vec::new();
        for claim in claims {
            match execute::wave_item(&claim) {
                Ok(item) => {
                    items.push(item);
                    ready.push(claim);
                }
                Err(e) => {
                    let result = execute::result(&claim, Err(e), self.backoff(&claim));
                    out.push(self.record(claim, result).await);
                }
            }
        }
        let answers: Vec<Result<lockstep_core::input::Outcome, lockstep_github::Error>> =
            match fail_before_send() {
                Some(e) => ready.iter().map(|_| Err(e.clone())).collect(),
                None => self
                    .github
                    .publish_wave(&items)
                    .await
                    .into_iter()
                    .map(|a| a.map(|_| lockstep_core::input::Outcome::Published))
                    .collect(),
            };
        for (claim, answer) in ready.into_iter().zip(answers) {
            let result = execute::result(&claim, answer, self.backoff(&claim));
            out.push(self.record(claim, result).await);
        }
        out
    }

    /// Runs `work` while renewing the leases `held` every third of a lease. With `fenced`, a
    /// lease found stale, or this worker's liveness lock lost (its claims are about to move
    /// on), cancels `work` (`None`) before it writes; otherwise renewal of that row just stops.
    async fn heartbeat<T>(
        &self,
        held: &[(String, u64)],
        fenced: bool,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let worker = self.worker.lock().await.clone();
        let lost = async {
            match (&worker, fenced) {
                (Some(w), true) => w.lost().await,
                _ => std::future::pending().await,
            }
        };
        let period = (self.opts.lease / 3).max(Duration::from_millis(1));
        let renew = async {
            let mut live: Vec<&(String, u64)> = held.iter().collect();
            loop {
                tokio::time::sleep(period).await;
                let mut kept = Vec::with_capacity(live.len());
                for h in live {
                    match self.store.renew(&h.0, h.1, self.opts.lease).await {
                        Err(lockstep_store::Error::StaleEpoch { .. }) if fenced => return,
                        Err(lockstep_store::Error::StaleEpoch { .. }) => {}
                        // A failed renewal (the database briefly away) is tried again next time.
                        _ => kept.push(h),
                    }
                }
                live = kept;
            }
        };
        tokio::select! {
            out = work => Some(out),
            () = renew => None,
            () = lost => None,
        }
    }

    /// Records an effect's result, fenced on the claim's epoch.
    async fn record(&self, claim: Claim, result: EffectResult) -> Recorded {
        fail::fail_point!("github.after_response_before_record");
        let done = self
            .store
            .complete(&claim.effect.key, claim.epoch, result.clone())
            .await;
        fail::fail_point!("record.after_commit_before_ack");
        (claim, result, done)
    }

    /// The retry delay after `claim`'s attempt fails.
    fn backoff(&self, claim: &Claim) -> Duration {
        let shift = u32::try_from(claim.attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        self.opts
            .backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.opts.backoff_max)
    }

    /// Ticks every open case whose deadline has passed (by the database's clock). Reads only
    /// those cases.
    async fn fire_deadlines(&self) -> Result<usize, Error> {
        let mut fired = 0;
        for id in self.store.due_deadlines().await? {
            let committed = self
                .store
                .handle(&id, &Principal::automation(), Input::Tick)
                .await?;
            if !committed.events.is_empty() {
                tracing::info!(case = %id, "the embargo deadline passed");
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Every effect that failed for good and waits for a person (`lockstep retry` puts it back
    /// in line), across all cases: case, repository, effect key and GitHub's error.
    pub async fn needing_a_person(&self) -> Result<Vec<Attention>, Error> {
        let mut out = Vec::new();
        for listed in self.store.list_cases().await? {
            let case = self.store.case(&listed.id).await?;
            for (repo, p) in &case.participants {
                for (key, error) in &p.attention {
                    out.push(Attention {
                        case: case.id.clone(),
                        repo: repo.clone(),
                        key: key.clone(),
                        error: error.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// When there is next something to do: the earliest embargo deadline, scheduled retry,
    /// re-check or lease end, or, while another worker holds claims, the next check of its
    /// liveness. Reads only open work, through indexes.
    pub async fn next_wake(&self) -> Result<Option<Timestamp>, Error> {
        let mut next = self.store.next_due().await?;
        let others = {
            let slot = self.worker.lock().await;
            self.store.others_claiming(slot.as_deref()).await?
        };
        if others {
            let now = self.store.now().await?;
            let poll = Timestamp::from_millis(now.millis().saturating_add(
                i64::try_from(self.opts.liveness_poll.as_millis()).unwrap_or(i64::MAX),
            ))
            .unwrap_or(now);
            next = Some(next.map_or(poll, |n| n.min(poll)));
        }
        Ok(next)
    }

    /// Runs until `shutdown` resolves: does the due work, then sleeps until the next deadline
    /// or retry, until [`wake`](Self::wake) is called, or until anyone commits to the store (a
    /// CLI command in another process, another instance; see `Store::subscribe`). It does
    /// not poll busily. A pass that fails (the database restarting, a dropped connection) is
    /// logged and tried again a second later: nothing is lost, every step being a transaction.
    pub async fn serve(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let mut changes = match self.store.subscribe().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "commits by other processes will be noticed only at the next timer");
                None
            }
        };
        // A subscription that worked once and was lost (the database went away) is made again.
        let resubscribe = changes.is_some();
        loop {
            if let Some(c) = &mut changes {
                c.mark_seen();
            }
            if changes.is_none() && resubscribe {
                changes = self.store.subscribe().await.ok();
            }
            let report = match self.run_once().await {
                Ok(r) => r,
                Err(e) => {
                    // The database away (restarting, a dropped connection): nothing is lost
                    // (every step is a transaction, and claims are fenced); try again shortly.
                    tracing::warn!(error = %e, "a runtime pass failed; trying again");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(RETRY_PASS) => {}
                    }
                    continue;
                }
            };
            if report.executed > 0 || report.ticks > 0 {
                tracing::info!(
                    executed = report.executed,
                    succeeded = report.succeeded,
                    retrying = report.retrying,
                    failed = report.failed,
                    ticks = report.ticks,
                    "runtime pass"
                );
            }
            let wake = async { Ok::<_, Error>((self.store.now().await?, self.next_wake().await?)) };
            let sleep = match wake.await {
                Ok((now, Some(t))) => Duration::from_millis(
                    u64::try_from(t.millis().saturating_sub(now.millis())).unwrap_or(0),
                ),
                Ok((_, None)) => self.opts.idle_wake,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next wake; trying again");
                    RETRY_PASS
                }
            }
            .min(self.opts.idle_wake)
            .max(Duration::from_millis(10));
            let committed = async {
                match &mut changes {
                    Some(c) => {
                        if let Err(e) = c.changed().await {
                            tracing::warn!(error = %e, "stopped watching for commits");
                            changes = None;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = self.wake.notified() => {}
                () = committed => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

#[cfg(test)]
mod read_budget_tests {
    use super::ReadSchedule;
    use std::time::Duration;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn without_deliveries_every_pass_reads() {
        let s = ReadSchedule {
            last_delivery: None,
            last_sync: Some(at(100)),
        };
        assert!(s.due(at(101), HOUR, HOUR));
    }

    #[test]
    fn healthy_webhooks_read_only_at_the_safety_interval() {
        let s = ReadSchedule {
            last_delivery: Some(at(1000)),
            last_sync: Some(at(900)),
        };
        assert!(!s.due(at(1200), HOUR, HOUR));
        assert!(s.due(at(900 + 3600), HOUR, HOUR));
    }

    #[test]
    fn a_stale_delivery_means_polling_again() {
        let s = ReadSchedule {
            last_delivery: Some(at(1000)),
            last_sync: Some(at(4000)),
        };
        // The last delivery is older than the window: webhooks are not healthy.
        assert!(s.due(at(1000 + 3601), HOUR, HOUR));
        assert!(!s.due(at(1000 + 3599), HOUR, HOUR));
    }
}
