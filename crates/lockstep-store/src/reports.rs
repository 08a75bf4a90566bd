//! Private vulnerability reports (`reports`, schema version 3).
//!
//! A report is recorded once by (repository, GHSA id), whichever path saw it first: the
//! `reported` webhook (its delivery id is recorded in the inbox in the same transaction) or
//! the runtime's poll of `?state=triage`. Decisions commit atomically with what they cause:
//! opening a case from a report, or merging it into one, updates the report row in the
//! transaction that commits the case's events (a report decided meanwhile refuses the whole
//! commit); a rejection updates the row and appends an audit entry (no events; keyed
//! `report:OWNER/REPO/GHSA-…`) together, and leaves the advisory's close on GitHub to the
//! runtime (`close_state = 'pending'`).

use lockstep_core::engine::intake::{Report, ReportOutcome, ReportState};
use lockstep_core::input::{Command, Input, Principal};
use lockstep_core::{Case, CaseId, GhsaId, OpenCase, RepoId, Timestamp};
use serde::Serialize;

use crate::backend::{self, Written};
use crate::error::Error;
use crate::{Backend, Committed, Store, plan, to_json};

/// A report as stored, with the state of its close on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredReport {
    /// The report.
    #[serde(flatten)]
    pub report: Report,
    /// `pending`, `done` or `failed` once a rejection asked for the advisory's close.
    pub close_state: Option<String>,
    /// Why the close failed, if it did.
    pub close_error: Option<String>,
}

/// What recording a report found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSeen {
    /// First seen now.
    New,
    /// Recorded before (by the other path, or an earlier poll).
    Known,
    /// This webhook delivery was processed before; nothing was written.
    DuplicateDelivery,
}

/// The report row a case commit updates in its transaction.
#[derive(Debug, Clone)]
pub(crate) struct ReportWrite {
    pub(crate) repo: String,
    pub(crate) ghsa: String,
    pub(crate) state: &'static str,
    pub(crate) case_id: Option<String>,
    pub(crate) body: String,
}

impl ReportWrite {
    fn of(report: &Report) -> Result<Self, Error> {
        Ok(Self {
            repo: report.repo.to_string(),
            ghsa: report.ghsa.to_string(),
            state: report.state.as_str(),
            case_id: report.case_id.as_ref().map(ToString::to_string),
            body: to_json(report)?,
        })
    }
}

fn decided(repo: &str, ghsa: &str) -> Error {
    Error::Rejected(lockstep_core::Rejection::Invalid {
        field: "report",
        why: format!("{repo}/{ghsa} was decided meanwhile"),
    })
}

macro_rules! reports_backend {
    (mod $m:ident; db = $Db:ty; begin_write = $begin:literal; head_lock = $head_lock:literal;) => {
        pub(crate) mod $m {
            use sqlx::{Pool, Row as _};

            use super::{ReportSeen, ReportWrite, StoredReport};
            use crate::audit::{self, AuditRow};
            use crate::error::Error;

            type Db = $Db;
            type Conn = <Db as sqlx::Database>::Connection;

            fn stored(r: &<Db as sqlx::Database>::Row) -> Result<StoredReport, Error> {
                let body: String = r.try_get(0)?;
                Ok(StoredReport {
                    report: serde_json::from_str(&body)
                        .map_err(|e| Error::corrupt(format!("a stored report does not decode: {e}")))?,
                    close_state: r.try_get(1)?,
                    close_error: r.try_get(2)?,
                })
            }

            pub(crate) async fn record(
                write: &Pool<Db>,
                repo: &str,
                ghsa: &str,
                received_at: i64,
                body: &str,
                delivery: Option<&str>,
            ) -> Result<ReportSeen, Error> {
                let mut tx = write.begin_with($begin).await?;
                if let Some(d) = delivery {
                    let n = sqlx::query(
                        "INSERT INTO inbox (delivery_id, received_at) VALUES ($1, $2) ON CONFLICT (delivery_id) DO NOTHING",
                    )
                    .bind(d)
                    .bind(received_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Ok(ReportSeen::DuplicateDelivery);
                    }
                }
                let n = sqlx::query(
                    "INSERT INTO reports (repo, ghsa_id, received_at, updated_at, state, body) VALUES ($1, $2, $3, $3, 'new', $4) ON CONFLICT (repo, ghsa_id) DO NOTHING",
                )
                .bind(repo)
                .bind(ghsa)
                .bind(received_at)
                .bind(body)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(if n == 1 { ReportSeen::New } else { ReportSeen::Known })
            }

            pub(crate) async fn list(read: &Pool<Db>, all: bool) -> Result<Vec<StoredReport>, Error> {
                let sql = if all {
                    "SELECT body, close_state, close_error FROM reports ORDER BY received_at, repo, ghsa_id"
                } else {
                    "SELECT body, close_state, close_error FROM reports WHERE state = 'new' ORDER BY received_at, repo, ghsa_id"
                };
                let rows = sqlx::query(sql).fetch_all(read).await?;
                rows.iter().map(stored).collect()
            }

            pub(crate) async fn one(read: &Pool<Db>, repo: &str, ghsa: &str) -> Result<Option<StoredReport>, Error> {
                let row = sqlx::query(
                    "SELECT body, close_state, close_error FROM reports WHERE repo = $1 AND UPPER(ghsa_id) = UPPER($2)",
                )
                .bind(repo)
                .bind(ghsa)
                .fetch_optional(read)
                .await?;
                row.as_ref().map(stored).transpose()
            }

            pub(crate) async fn closing(read: &Pool<Db>) -> Result<Vec<StoredReport>, Error> {
                let rows = sqlx::query(
                    "SELECT body, close_state, close_error FROM reports WHERE close_state = 'pending' ORDER BY updated_at",
                )
                .fetch_all(read)
                .await?;
                rows.iter().map(stored).collect()
            }

            pub(crate) async fn closed(
                write: &Pool<Db>,
                repo: &str,
                ghsa: &str,
                at: i64,
                error: Option<&str>,
            ) -> Result<(), Error> {
                let mut tx = write.begin_with($begin).await?;
                sqlx::query(
                    "UPDATE reports SET close_state = $3, close_error = $4, updated_at = $5 WHERE repo = $1 AND ghsa_id = $2 AND close_state = 'pending'",
                )
                .bind(repo)
                .bind(ghsa)
                .bind(if error.is_some() { "failed" } else { "done" })
                .bind(error)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Updates an undecided report row inside a case commit's transaction.
            pub(crate) async fn decide_in(conn: &mut Conn, w: &ReportWrite, at: i64, close: bool) -> Result<(), Error> {
                let n = sqlx::query(
                    "UPDATE reports SET state = $3, case_id = $4, body = $5, updated_at = $6, close_state = $7 WHERE repo = $1 AND ghsa_id = $2 AND state = 'new'",
                )
                .bind(&w.repo)
                .bind(&w.ghsa)
                .bind(w.state)
                .bind(&w.case_id)
                .bind(&w.body)
                .bind(at)
                .bind(close.then_some("pending"))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(super::decided(&w.repo, &w.ghsa));
                }
                Ok(())
            }

            /// A rejection: the row and an audit entry without events, in one transaction.
            pub(crate) async fn reject(
                write: &Pool<Db>,
                w: &ReportWrite,
                at: i64,
                actor: &str,
                authority: &str,
                input: &str,
            ) -> Result<(), Error> {
                let mut tx = write.begin_with($begin).await?;
                decide_in(&mut tx, w, at, true).await?;
                if !$head_lock.is_empty() {
                    sqlx::query($head_lock).execute(&mut *tx).await?;
                }
                let head: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                let (head_id, head_hash) = head.unwrap_or_else(|| (0, hex::encode(audit::ZERO_HASH)));
                let prev = audit::parse_hash(&head_hash)
                    .ok_or_else(|| Error::corrupt("the audit head's hash is not a SHA-256 hex string"))?;
                let mut row = AuditRow {
                    id: head_id + 1,
                    at,
                    case_id: format!("report:{}/{}", w.repo, w.ghsa),
                    actor: actor.to_owned(),
                    authority: authority.to_owned(),
                    input: input.to_owned(),
                    // No events: the entry covers the empty range after none.
                    seq_from: 1,
                    seq_to: 0,
                    events_hash: hex::encode(audit::events_hash(std::iter::empty())),
                    prev_hash: head_hash,
                    hash: String::new(),
                };
                row.hash = hex::encode(audit::entry_hash(&prev, &row));
                crate::backend::$m::insert_audit(&mut tx, &row).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

reports_backend! {
    mod sqlite;
    db = sqlx::Sqlite;
    begin_write = "BEGIN IMMEDIATE";
    head_lock = "";
}

reports_backend! {
    mod postgres;
    db = sqlx::Postgres;
    begin_write = "BEGIN";
    head_lock = "SELECT pg_advisory_xact_lock(7012026161)";
}

impl Store {
    /// Records a report seen by a webhook delivery (`delivery`, deduplicated in the same
    /// transaction) or a poll (`None`). A report recorded before is left as it is.
    pub async fn record_report(
        &self,
        report: &Report,
        delivery: Option<&str>,
    ) -> Result<ReportSeen, Error> {
        let body = to_json(report)?;
        let at = report.received_at.millis();
        let (repo, ghsa) = (report.repo.to_string(), report.ghsa.to_string());
        dispatch!(self, reports, |w, _r| be::record(
            w, &repo, &ghsa, at, &body, delivery
        )
        .await)
    }

    /// The reports awaiting triage, oldest first; with `all`, decided ones too.
    pub async fn reports(&self, all: bool) -> Result<Vec<StoredReport>, Error> {
        dispatch!(self, reports, |_w, r| be::list(r, all).await)
    }

    /// One report.
    pub async fn report(
        &self,
        repo: &RepoId,
        ghsa: &GhsaId,
    ) -> Result<Option<StoredReport>, Error> {
        dispatch!(self, reports, |_w, r| be::one(
            r,
            repo.as_str(),
            ghsa.as_str()
        )
        .await)
    }

    /// Rejected reports whose advisory the runtime still has to close on GitHub.
    pub async fn reports_to_close(&self) -> Result<Vec<StoredReport>, Error> {
        dispatch!(self, reports, |_w, r| be::closing(r).await)
    }

    /// Records the runtime's close of a rejected report's advisory (`error`: it failed).
    pub async fn report_closed(
        &self,
        repo: &RepoId,
        ghsa: &GhsaId,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let at = self.now().await?.millis();
        dispatch!(self, reports, |w, _r| be::closed(
            w,
            repo.as_str(),
            ghsa.as_str(),
            at,
            error
        )
        .await)
    }

    /// Commits a rejection ([`Report::reject`]): the report row, asking the runtime to close
    /// its advisory, and an audit entry recording the decision (and the rule), atomically.
    pub async fn reject_report(
        &self,
        outcome: &ReportOutcome,
        input: &(impl Serialize + ?Sized),
    ) -> Result<(), Error> {
        if outcome.report.state != ReportState::Rejected {
            return Err(Error::corrupt("reject_report takes a rejection"));
        }
        let w = ReportWrite::of(&outcome.report)?;
        let input = to_json(&serde_json::json!({
            "input": "reject_report",
            "request": input,
            "decision": outcome.report.decision,
            "rm": outcome.rm_moves,
        }))?;
        let authority = to_json(&outcome.authority)?;
        let actor = outcome.authority.actor.to_string();
        let at = self.now().await?.millis();
        let result = dispatch!(self, reports, |w_pool, _r| be::reject(
            w_pool, &w, at, &actor, &authority, &input
        )
        .await);
        // The audit head moved outside the case commits' hint.
        self.inner.cache.set_head(None);
        result
    }

    /// Opens a case from a report ([`Case::open_from_report`]): the case's events, outbox
    /// rows and audit entry, and the report accepted, in one transaction.
    pub async fn open_case_from_report(
        &self,
        principal: &Principal,
        open: OpenCase,
        report: &Report,
    ) -> Result<Committed, Error> {
        let now = self.now().await?;
        let outcome = report.accept(principal, &open.workflow, &open.case_id, now)?;
        let input = serde_json::json!({
            "input": "open_case",
            "open_case": &open,
            "from_report": report.reference(),
            "rm": outcome.rm_moves,
        });
        let (case, decision) = Case::open_from_report(principal, open, report.origin(), now)?;
        let mut plan = plan(
            None,
            &case,
            &decision,
            &to_json(&input)?,
            now.millis(),
            None,
        )?;
        plan.report = Some(ReportWrite::of(&outcome.report)?);
        self.commit_plan(plan, case, decision.events).await
    }

    /// Merges a report into a case ([`Report::merge`] and `Command::MergeReport`): the case's
    /// events and the report row in one transaction.
    pub async fn merge_report(
        &self,
        case_id: &CaseId,
        principal: &Principal,
        report: &Report,
        reason: Option<&str>,
    ) -> Result<Committed, Error> {
        for _ in 0..=self.inner.opts.conflict_retries {
            let case = self.case(case_id).await?;
            let now: Timestamp = self.now().await?;
            let outcome = report.merge(principal, &case, reason, now)?;
            let input = Input::Command(Command::MergeReport {
                repo: report.repo.clone(),
                ghsa: report.ghsa.clone(),
                reporter: report.reporter.clone(),
                reason: reason.map(str::to_owned),
            });
            let mut next = case.clone();
            let decision = next.handle(principal, input.clone(), now)?;
            let audit_input = serde_json::json!({
                "input": input,
                "rm": outcome.rm_moves,
            });
            let mut plan = plan(
                Some(case.version),
                &next,
                &decision,
                &to_json(&audit_input)?,
                now.millis(),
                None,
            )?;
            plan.report = Some(ReportWrite::of(&outcome.report)?);
            match self.commit_plan(plan, next, decision.events).await {
                Err(Error::Conflict { .. }) => {
                    self.inner.cache.remove(case_id);
                    continue;
                }
                other => return other,
            }
        }
        Err(Error::Conflict {
            case: case_id.clone(),
            expected: 0,
            found: 0,
        })
    }

    async fn commit_plan(
        &self,
        plan: backend::Plan,
        case: Case,
        events: Vec<lockstep_core::Event>,
    ) -> Result<Committed, Error> {
        let written = dispatch!(self, |w, _r| be::commit(w, &self.inner.cache, &plan).await);
        match written {
            Ok(Written::Committed {
                audit_id,
                effects_inserted,
                ..
            }) => {
                self.inner.cache.put(&case);
                Ok(Committed {
                    case,
                    events,
                    audit_id: Some(audit_id as u64),
                    effects_inserted,
                })
            }
            Ok(Written::DuplicateDelivery) => Err(Error::corrupt("unexpected duplicate delivery")),
            Err(e) => {
                self.inner.cache.remove(&case.id);
                Err(e)
            }
        }
    }
}
