//! The offline checker: invariants I1–I6 (`reliability-and-performance.md` §5.2) over the
//! simulator's ledger and state, the store's log, outbox and audit trail, and the test's own
//! record of what it committed. Violations are collected, not panicked on, so a failing
//! crash-loop iteration can print all of them with its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr as _;

use lockstep_core::event::EventKind;
use lockstep_core::input::Verdict;
use lockstep_core::model::{Assessment, EffectStatus, Fix, RemoteState};
use lockstep_core::{Actor, Case, CaseId, Event, RepoId, Timestamp, Workflow};
use lockstep_sim::{AdvisoryState, LedgerEntry, Simulator, Via};
use lockstep_store::{Committed, OutboxState, Store};

use crate::{BOT, REPORTER, WriteCounts, write_counts};

/// What a test marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// An assessment.
    Assess(Verdict),
    /// A released fix.
    FixReleased,
    /// A fix prepared, not yet released: a `release` webhook releases it later.
    FixPrepared,
}

/// One mark on one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The repository.
    pub repo: RepoId,
    /// What.
    pub kind: MarkKind,
}

impl Mark {
    /// A mark.
    pub fn new(repo: RepoId, kind: MarkKind) -> Self {
        Self { repo, kind }
    }
}

/// A mark the store committed.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    /// The mark.
    pub mark: Mark,
    /// Its audit entry, where the commit returned it; else found by `first_seq`.
    pub audit_id: Option<u64>,
    /// The sequence number of its first event, for a commit made elsewhere (a `serve`
    /// instance) and read back from the log.
    pub first_seq: Option<u64>,
    /// The time of its events (database clock).
    pub at: Option<Timestamp>,
    /// How many events it appended.
    pub events: usize,
    /// Committed by automation (a webhook delivery), not by the mark's person.
    pub automation: bool,
}

/// What the test did, to check the end state against.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The case.
    pub case: CaseId,
    /// Its workflow.
    pub workflow: Workflow,
    /// The opening's audit entry.
    pub opened_audit: Option<u64>,
    /// The opening's events.
    pub opened_events: usize,
    /// Every mark committed, in commit order.
    pub commits: Vec<CommitRecord>,
}

impl Expect {
    /// Nothing committed yet but the opening.
    pub fn new(workflow: Workflow, opened: &Committed) -> Self {
        Self {
            case: opened.case.id.clone(),
            workflow,
            opened_audit: opened.audit_id,
            opened_events: opened.events.len(),
            commits: Vec::new(),
        }
    }

    /// Records a committed mark.
    pub fn record(&mut self, mark: Mark, committed: &Committed) {
        self.commits.push(CommitRecord {
            mark,
            audit_id: committed.audit_id,
            first_seq: None,
            at: committed.events.first().map(|e| e.at),
            events: committed.events.len(),
            automation: false,
        });
    }

    /// Records a mark committed by a `serve` instance (a CLI command it answered, or a
    /// webhook delivery it handled), from its events as read back from the log. Its audit
    /// entry is found by their sequence numbers when the case is checked.
    pub fn record_events(&mut self, mark: Mark, events: &[Event]) {
        self.commits.push(CommitRecord {
            mark,
            audit_id: None,
            first_seq: events.first().map(|e| e.seq),
            at: events.first().map(|e| e.at),
            events: events.len(),
            automation: events.iter().all(|e| e.by == Actor::Automation),
        });
    }

    /// The final verdict and whether a released fix was marked, per repository, as the test
    /// committed them (a fix on an unassessed repository means affected).
    pub fn marks_by_repo(&self) -> BTreeMap<RepoId, (Option<Verdict>, bool)> {
        self.marks_until(self.commits.len())
    }

    fn marks_until(&self, n: usize) -> BTreeMap<RepoId, (Option<Verdict>, bool)> {
        let mut m: BTreeMap<RepoId, (Option<Verdict>, bool)> = self
            .workflow
            .repos
            .keys()
            .map(|r| (r.clone(), (None, false)))
            .collect();
        for c in &self.commits[..n] {
            let e = m.entry(c.mark.repo.clone()).or_insert((None, false));
            match c.mark.kind {
                MarkKind::Assess(v) => e.0 = Some(v),
                MarkKind::FixReleased => {
                    e.1 = true;
                    if e.0.is_none() {
                        e.0 = Some(Verdict::Affected);
                    }
                }
                MarkKind::FixPrepared => {
                    if e.0.is_none() {
                        e.0 = Some(Verdict::Affected);
                    }
                }
            }
        }
        m
    }

    fn gate_open(m: &BTreeMap<RepoId, (Option<Verdict>, bool)>) -> bool {
        m.values().all(|(v, fixed)| match v {
            Some(Verdict::NotAffected) => true,
            Some(Verdict::Affected) => *fixed,
            _ => false,
        })
    }

    /// The commit time of the mark that opened the gate (every repository assessed, every
    /// affected one with a released fix), by the test's own record.
    pub fn gate_time(&self) -> Option<Timestamp> {
        (1..=self.commits.len())
            .find(|&n| Self::gate_open(&self.marks_until(n)))
            .and_then(|n| self.commits[n - 1].at)
    }

    /// Repositories the test assessed affected.
    pub fn affected(&self) -> BTreeSet<RepoId> {
        self.marks_by_repo()
            .into_iter()
            .filter(|(_, (v, _))| *v == Some(Verdict::Affected))
            .map(|(r, _)| r)
            .collect()
    }
}

/// Figures from a successful check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Writes in the ledger.
    pub writes: WriteCounts,
    /// Audit entries.
    pub audit_entries: u64,
    /// Events in the log.
    pub events: u64,
    /// First to last applied publication, milliseconds.
    pub publish_spread_ms: i64,
    /// Gate opening (test's record) to the last applied publication, milliseconds.
    pub release_ms: i64,
}

fn ms(e: &LedgerEntry) -> i64 {
    e.at.timestamp_millis()
}

fn sim_state(s: AdvisoryState) -> Option<RemoteState> {
    match s {
        AdvisoryState::Draft => Some(RemoteState::Draft),
        AdvisoryState::Published => Some(RemoteState::Published),
        AdvisoryState::Closed => Some(RemoteState::Closed),
        _ => None,
    }
}

/// The actions whose GitHub writes an applied ledger entry can stand for.
fn actions_for(e: &LedgerEntry) -> &'static [&'static str] {
    if e.is_creation() {
        &["open-draft"]
    } else if e.is_publish() {
        &["publish"]
    } else if e.state_from == Some(AdvisoryState::Triage) {
        // A private report accepted: adopted into the case, or closed as a duplicate.
        &["adopt-report", "close-report"]
    } else if e.state_to == Some(AdvisoryState::Closed) {
        &["close-draft"]
    } else if e.op == "request_cve" {
        &["request-cve"]
    } else if e.op == "update" {
        &["link-siblings", "add-collaborators"]
    } else {
        &[]
    }
}

/// One audit row: `(id, actor, seq_from, seq_to)`.
type AuditRow = (i64, String, i64, i64);

/// Reads every audit entry's id, actor and event range straight from the database
/// (`sqlite://…` or `postgres://…`).
async fn audit_rows(url: &str) -> Result<Vec<AuditRow>, String> {
    const SQL: &str = "SELECT id, actor, seq_from, seq_to FROM audit ORDER BY id";
    if url.starts_with("sqlite:") {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| e.to_string())?
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<AuditRow> = sqlx::query_as(SQL)
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string())?;
        pool.close().await;
        Ok(rows)
    } else {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<AuditRow> = sqlx::query_as(SQL)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(rows)
    }
}

/// Checks I1–I6. `db` is the store's SQLite file (for the audit actors).
pub async fn check(
    sim: &Simulator,
    store: &Store,
    db: &Path,
    expect: &Expect,
) -> Result<Report, Vec<String>> {
    check_url(sim, store, &crate::sqlite_url(db), expect).await
}

/// [`check`] for a store at any URL (`sqlite://…`, `postgres://…`), read directly for the
/// audit actors.
pub async fn check_url(
    sim: &Simulator,
    store: &Store,
    db: &str,
    expect: &Expect,
) -> Result<Report, Vec<String>> {
    let mut v: Vec<String> = Vec::new();
    let ledger = sim.ledger();
    let case: Case = match store.case(&expect.case).await {
        Ok(c) => c,
        Err(e) => return Err(vec![format!("the case cannot be read: {e}")]),
    };
    let events: Vec<Event> = store.events(&expect.case).await.unwrap_or_default();
    let marks = expect.marks_by_repo();
    let affected = expect.affected();
    let requested_at: BTreeMap<&str, Timestamp> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::EffectRequested { effect } => Some((effect.key.as_str(), e.at)),
            _ => None,
        })
        .collect();
    let publishes: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.is_publish()).collect();

    // I1: no publication before the gate opened, none of an unfixed repository, and none
    // before the upstreams it must follow.
    let gate = expect.gate_time();
    match gate {
        None => v.push("I1: the test never opened the gate, yet the check ran".into()),
        Some(gate) => {
            for p in &publishes {
                if ms(p) < gate.millis() {
                    v.push(format!(
                        "I1: {} published at {} before the gate opened at {gate} ({} ms early)",
                        p.repo.as_deref().unwrap_or("?"),
                        p.at,
                        gate.millis() - ms(p)
                    ));
                }
            }
            let started = events.iter().find_map(|e| match e.kind {
                EventKind::ReleaseStarted { .. } => Some(e.at),
                _ => None,
            });
            match started {
                Some(s) if s < gate => v.push(format!(
                    "I1: the store started the release at {s}, before the test's gate opened at {gate}"
                )),
                None => v.push("I1: the release never started".into()),
                _ => {}
            }
        }
    }
    for p in &publishes {
        let Some(r) = p.repo.as_deref().and_then(|r| r.parse::<RepoId>().ok()) else {
            v.push(format!("I1: a publication without a repository: {p:?}"));
            continue;
        };
        if !matches!(marks.get(&r), Some((Some(Verdict::Affected), true))) {
            v.push(format!(
                "I1: {r} was published without an affected verdict and a released fix"
            ));
        }
        if let Some(spec) = expect.workflow.repos.get(&r) {
            for up in spec.publish_after.iter().filter(|u| affected.contains(*u)) {
                let up_at = publishes
                    .iter()
                    .find(|q| q.repo.as_deref() == Some(up.as_str()))
                    .map(|q| q.seq);
                if up_at.is_none_or(|s| s > p.seq) {
                    v.push(format!("I1: {r} was published before its upstream {up}"));
                }
            }
        }
    }

    // I2: exactly one advisory per repository, created once.
    let mut sim_adv: BTreeMap<RepoId, serde_json::Value> = BTreeMap::new();
    for r in expect.workflow.repos.keys() {
        let creations = ledger
            .iter()
            .filter(|e| e.is_creation() && e.repo.as_deref() == Some(r.as_str()))
            .count();
        if creations != 1 {
            v.push(format!("I2: {r}: {creations} advisories created (want 1)"));
        }
        match sim.advisories(r.as_str()) {
            Ok(list) if list.len() == 1 => {
                sim_adv.insert(r.clone(), list[0].clone());
            }
            Ok(list) => v.push(format!(
                "I2: {r}: {} advisories on GitHub (want 1)",
                list.len()
            )),
            Err(e) => v.push(format!("I2: {r}: cannot list advisories: {e}")),
        }
    }

    // I3: every affected advisory published (once), every other closed.
    for r in expect.workflow.repos.keys() {
        let n = publishes
            .iter()
            .filter(|p| p.repo.as_deref() == Some(r.as_str()))
            .count();
        let want_published = affected.contains(r);
        if n != usize::from(want_published) {
            v.push(format!(
                "I3: {r}: {n} applied publications (want {})",
                usize::from(want_published)
            ));
        }
        if let Some(a) = sim_adv.get(r) {
            let state = a["state"].as_str().unwrap_or("?");
            let want = if want_published {
                "published"
            } else {
                "closed"
            };
            if state != want {
                v.push(format!("I3: {r}: GitHub shows {state} (want {want})"));
            }
        }
    }

    // I4: no mark lost.
    for c in &expect.commits {
        let Some(p) = case.participants.get(&c.mark.repo) else {
            v.push(format!("I4: {} is missing from the case", c.mark.repo));
            continue;
        };
        let found = events.iter().any(|e| match (&e.kind, c.mark.kind) {
            (EventKind::Assessed { repo, verdict, .. }, MarkKind::Assess(want)) => {
                *repo == c.mark.repo && *verdict == want
            }
            (EventKind::FixMarked { repo, .. }, MarkKind::FixReleased | MarkKind::FixPrepared) => {
                *repo == c.mark.repo
            }
            (EventKind::LinesReleased { repo, .. }, MarkKind::FixReleased) => {
                c.automation && *repo == c.mark.repo
            }
            _ => false,
        });
        if !found {
            v.push(format!("I4: the log lacks the committed mark {:?}", c.mark));
        }
        match c.mark.kind {
            MarkKind::FixReleased => {
                let want = crate::package_fix(&expect.workflow, &c.mark.repo);
                if !matches!(&p.fix, Fix::Released { packages } if *packages == want) {
                    v.push(format!(
                        "I4: {}: the fix mark was lost: {:?}",
                        c.mark.repo, p.fix
                    ));
                }
            }
            MarkKind::Assess(_) | MarkKind::FixPrepared => {}
        }
    }
    for (r, (verdict, _)) in &marks {
        let got = case
            .participants
            .get(r)
            .and_then(|p| p.assessment.verdict());
        if got != *verdict {
            v.push(format!(
                "I4: {r}: verdict {got:?} in the case, {verdict:?} committed"
            ));
        }
        if verdict.is_some()
            && case
                .participants
                .get(r)
                .is_some_and(|p| matches!(p.assessment, Assessment::Unassessed))
        {
            v.push(format!("I4: {r}: the assessment was lost"));
        }
    }

    // I5: the audit chain verifies, with one entry per committed input.
    let mut audit_entries = 0;
    match store.verify(None).await {
        Ok(report) => {
            audit_entries = report.entries;
            if report.events != case.version {
                v.push(format!(
                    "I5: the trail covers {} events, the case has {}",
                    report.events, case.version
                ));
            }
        }
        Err(e) => v.push(format!("I5: the audit chain does not verify: {e}")),
    }
    let rows = audit_rows(db).await;
    // A commit made by a `serve` instance is found by the sequence number of its first event.
    let entry_of = |c: &CommitRecord| -> Option<i64> {
        c.audit_id.and_then(|i| i64::try_from(i).ok()).or_else(|| {
            let seq = i64::try_from(c.first_seq?).ok()?;
            rows.as_ref()
                .ok()?
                .iter()
                .find(|(_, _, from, to)| (*from..=*to).contains(&seq))
                .map(|(id, ..)| *id)
        })
    };
    let mut want_user: BTreeSet<i64> = BTreeSet::new();
    let mut ids: Vec<Option<i64>> = vec![expect.opened_audit.and_then(|i| i64::try_from(i).ok())];
    ids.extend(
        expect
            .commits
            .iter()
            .filter(|c| !c.automation)
            .map(&entry_of),
    );
    for id in &ids {
        match id {
            Some(i) => {
                if !want_user.insert(*i) {
                    v.push(format!("I5: audit entry {i} was returned for two commits"));
                }
            }
            None => v.push("I5: a committed input has no audit entry".into()),
        }
    }
    for c in expect.commits.iter().filter(|c| c.automation) {
        if entry_of(c).is_none() {
            v.push(format!(
                "I5: the delivery that made {:?} has no audit entry",
                c.mark
            ));
        }
    }
    match &rows {
        Ok(rows) => {
            let user: BTreeSet<i64> = rows
                .iter()
                .filter(|(_, actor, ..)| actor != "automation")
                .map(|(id, ..)| *id)
                .collect();
            if user != want_user {
                v.push(format!(
                    "I5: audit entries by people {user:?}, committed inputs {want_user:?}"
                ));
            }
            if u64::try_from(rows.len()).ok() != Some(audit_entries) {
                v.push(format!(
                    "I5: {} audit rows, verify counted {audit_entries}",
                    rows.len()
                ));
            }
        }
        Err(e) => v.push(format!("I5: cannot read the audit table: {e}")),
    }
    let user_events = events
        .iter()
        .filter(|e| matches!(e.by, Actor::User(_)))
        .count();
    let committed_events: usize = expect
        .commits
        .iter()
        .filter(|c| !c.automation)
        .map(|c| c.events)
        .sum();
    if user_events != expect.opened_events + committed_events {
        v.push(format!(
            "I5: {user_events} events by people in the log, {} committed",
            expect.opened_events + committed_events
        ));
    }

    // Deadlines fire once: whichever instance fired it, the embargo exits once, and each
    // end that passed is marked overdue once (several instances racing a deadline, a crash
    // between firing and recording, must not fire it again).
    let exits = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::EmMoved { exit: Some(_), .. }))
        .count();
    if exits > 1 {
        v.push(format!("deadline: the embargo exited {exits} times"));
    }
    let mut overdue: BTreeMap<Timestamp, usize> = BTreeMap::new();
    for e in &events {
        if let EventKind::EmbargoOverdue { until } = &e.kind {
            *overdue.entry(*until).or_default() += 1;
        }
    }
    for (until, n) in overdue.into_iter().filter(|(_, n)| *n > 1) {
        v.push(format!(
            "deadline: the end {until:?} was marked overdue {n} times"
        ));
    }

    // Webhook deliveries have their effect once: whichever instance received a `release`
    // delivery, or its redelivery, the lines its tag releases are released by one event.
    let mut released: BTreeMap<(&RepoId, &str), usize> = BTreeMap::new();
    for e in &events {
        if let EventKind::LinesReleased { repo, tag, .. } = &e.kind {
            *released.entry((repo, tag.as_str())).or_default() += 1;
        }
    }
    for ((r, tag), n) in released.into_iter().filter(|(_, n)| *n > 1) {
        v.push(format!(
            "webhook: the release {tag} of {r} took effect {n} times"
        ));
    }

    // I6: every applied mutation stands for a recorded effect; the replica equals GitHub.
    match store.outbox(Some(&expect.case)).await {
        Ok(rows) => {
            for row in rows.iter().filter(|r| r.state != OutboxState::Done) {
                v.push(format!(
                    "I6: outbox row {} is {:?} ({:?})",
                    row.key, row.state, row.last_error
                ));
            }
        }
        Err(e) => v.push(format!("I6: cannot read the outbox: {e}")),
    }
    for (key, rec) in &case.effects {
        if rec.status != EffectStatus::Succeeded {
            v.push(format!("I6: effect {key} is {:?}", rec.status));
        }
    }
    for e in ledger
        .iter()
        .filter(|e| e.via == Via::Http && e.write && e.applied)
    {
        if e.actor.as_deref() == Some(REPORTER) && e.op == "report" {
            // The private vulnerability report the case was opened from.
            continue;
        }
        if e.actor.as_deref() != Some(BOT) {
            v.push(format!(
                "I6: a write by {:?} nobody asked for: {} {}",
                e.actor, e.method, e.path
            ));
            continue;
        }
        let repo = e.repo.as_deref().unwrap_or("?");
        let actions = actions_for(e);
        let matching: Vec<(&String, Timestamp)> = case
            .effects
            .iter()
            .filter(|(_, rec)| rec.repo.as_str() == repo && actions.contains(&rec.action.as_str()))
            .filter_map(|(k, _)| requested_at.get(k.as_str()).map(|t| (k, *t)))
            .collect();
        if matching.is_empty() {
            v.push(format!(
                "I6: applied {} {} (seq {}) matches no recorded effect",
                e.method, e.path, e.seq
            ));
        } else if !matching.iter().any(|(_, t)| t.millis() <= ms(e)) {
            v.push(format!(
                "I6: applied {} {} (seq {}) at {} before its effect was requested",
                e.method, e.path, e.seq, e.at
            ));
        }
        if let (Some(g), Some(p)) = (
            &e.ghsa_id,
            repo.parse::<RepoId>()
                .ok()
                .and_then(|r| case.participants.get(&r)),
        ) && p.advisory.ghsa.as_ref().map(ToString::to_string).as_ref() != Some(g)
        {
            v.push(format!(
                "I6: applied {} {} on {g}, not the case's advisory",
                e.method, e.path
            ));
        }
    }
    for (r, p) in case.scope() {
        let Some(a) = sim_adv.get(r) else { continue };
        let ghsa = a["ghsa_id"].as_str().unwrap_or("?");
        if p.advisory.ghsa.as_ref().map(ToString::to_string).as_deref() != Some(ghsa) {
            v.push(format!(
                "I6: {r}: replica ghsa {:?}, GitHub {ghsa}",
                p.advisory.ghsa
            ));
        }
        let state = a["state"]
            .as_str()
            .and_then(|s| serde_json::from_value::<AdvisoryState>(serde_json::json!(s)).ok())
            .and_then(sim_state);
        if state != Some(p.advisory.state) {
            v.push(format!(
                "I6: {r}: replica {:?}, GitHub {state:?}",
                p.advisory.state
            ));
        }
        let cve_asked = ledger
            .iter()
            .any(|e| e.op == "request_cve" && e.repo.as_deref() == Some(r.as_str()) && e.applied);
        if p.advisory.cve_requested != cve_asked {
            v.push(format!(
                "I6: {r}: replica cve_requested {}, GitHub saw a request: {cve_asked}",
                p.advisory.cve_requested
            ));
        }
        if p.advisory.state == RemoteState::Published {
            // A published description links exactly the advisories published with it.
            let want: BTreeSet<String> = affected
                .iter()
                .filter(|o| *o != r)
                .map(ToString::to_string)
                .collect();
            let got = crate::linked_in(a["description"].as_str().unwrap_or(""));
            if want != got {
                v.push(format!(
                    "I6: {r}: the published description links {got:?}, want {want:?}"
                ));
            }
        } else if p.advisory.state == RemoteState::Draft {
            let want: BTreeSet<String> =
                p.advisory.linked.keys().map(ToString::to_string).collect();
            let got = crate::linked_in(a["description"].as_str().unwrap_or(""));
            if want != got {
                v.push(format!(
                    "I6: {r}: replica links {want:?}, GitHub's description {got:?}"
                ));
            }
        }
    }

    if !v.is_empty() {
        return Err(v);
    }
    let first = publishes.iter().map(|p| ms(p)).min().unwrap_or(0);
    let last = publishes.iter().map(|p| ms(p)).max().unwrap_or(0);
    Ok(Report {
        writes: write_counts(&ledger),
        audit_entries,
        events: case.version,
        publish_spread_ms: last - first,
        release_ms: gate.map_or(0, |g| last - g.millis()),
    })
}
