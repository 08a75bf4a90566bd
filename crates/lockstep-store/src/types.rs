//! The store's public value types.

use std::time::Duration;

use lockstep_core::input::Outcome;
use lockstep_core::machines::EmState;
use lockstep_core::{Case, CaseId, Effect, Event, Rejection, RepoId, Timestamp};
use serde::Serialize;

/// Tuning knobs. The defaults suit both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the (reader) pool. SQLite always writes through one connection.
    pub max_connections: u32,
    /// SQLite's busy timeout (another process holding the write lock).
    pub busy_timeout: Duration,
    /// How long a publish effect that the claim guard refused stays held before a claim
    /// re-checks it. Any new event in its case releases it at once.
    pub hold_recheck: Duration,
    /// How many times [`Store::transact`](crate::Store::transact) re-reads and retries
    /// optimistically after a version conflict before it decides under the case's row lock
    /// (which cannot conflict).
    pub conflict_retries: u32,
    /// How many folded cases to keep in memory (keyed by version; a stale entry only costs a
    /// conflict and a re-read).
    pub case_cache: usize,
    /// SQLite: how often a [`Changes`](crate::Changes) subscription reads `PRAGMA
    /// data_version` (PostgreSQL pushes notifications instead).
    pub change_poll: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            hold_recheck: Duration::from_secs(5),
            conflict_retries: 2,
            case_cache: 1024,
            change_poll: Duration::from_millis(250),
        }
    }
}

/// A case's coarse status, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Open, under embargo.
    Embargoed,
    /// Open, the embargo ended (or none is in force), the release has not started.
    Open,
    /// The release started.
    Releasing,
    /// Closed.
    Closed,
}

impl CaseStatus {
    pub(crate) fn of(case: &Case) -> Self {
        if case.closed.is_some() {
            Self::Closed
        } else if case.release.is_some() {
            Self::Releasing
        } else if case.embargo.state.in_force() {
            Self::Embargoed
        } else {
            Self::Open
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embargoed => "embargoed",
            Self::Open => "open",
            Self::Releasing => "releasing",
            Self::Closed => "closed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "embargoed" => Self::Embargoed,
            "open" => Self::Open,
            "releasing" => Self::Releasing,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
}

pub(crate) fn em_state_name(s: EmState) -> String {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{s:?}"),
    }
}

/// One line of `list_cases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseSummary {
    /// The case.
    pub id: CaseId,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When it last changed (database clock).
    pub updated_at: Timestamp,
    /// Its version (the last event's seq).
    pub version: u64,
    /// The vulnerability's summary.
    pub title: String,
    /// Coarse status.
    pub status: CaseStatus,
    /// The embargo's Vultron EM state.
    pub embargo_state: String,
    /// The embargo's end, if one is set.
    pub embargo_until: Option<Timestamp>,
    /// Repositories in scope.
    pub repos: u64,
}

/// What a commit wrote.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The case after the commit.
    pub case: Case,
    /// The events appended (empty if the input changed nothing).
    pub events: Vec<Event>,
    /// The audit entry, if one was written.
    pub audit_id: Option<u64>,
    /// Outbox rows inserted (effects already present by key are not counted).
    pub effects_inserted: u64,
}

/// The state of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for a worker (possibly until `next_attempt_at`, after a retryable failure).
    Pending,
    /// A publish effect whose claim the publication guard refused; re-checked later.
    Held,
    /// A worker holds it under a lease.
    Claimed,
    /// Its success was recorded.
    Done,
    /// It failed for good.
    Failed,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, crate::Error> {
        Ok(match s {
            "pending" => Self::Pending,
            "held" => Self::Held,
            "claimed" => Self::Claimed,
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => return Err(crate::Error::corrupt(format!("outbox state {other:?}"))),
        })
    }
}

/// An effect claimed by a worker. Record its result with
/// [`Store::complete`](crate::Store::complete), passing `epoch` back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The effect.
    pub effect: Effect,
    /// The fencing epoch of this claim.
    pub epoch: u64,
    /// Claims so far, this one included.
    pub attempts: u64,
    /// The lease's end (database clock). After it, another claim may take the effect.
    pub lease_until: Timestamp,
}

/// What executing an effect achieved, as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectResult {
    /// It succeeded.
    Succeeded(Outcome),
    /// It failed.
    Failed {
        /// What went wrong (no secrets).
        error: String,
        /// `Some(delay)`: retryable, offer it to workers again after `delay` (the runtime's
        /// backoff). `None`: permanent.
        retry_after: Option<Duration>,
    },
}

/// What [`Store::complete`](crate::Store::complete) did.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The outbox row's new state.
    pub state: OutboxState,
    /// The events the observation produced, if the core accepted it.
    pub committed: Option<Committed>,
    /// Why the core refused the observation, if it did (the row is finalised regardless).
    pub rejection: Option<Rejection>,
}

/// One outbox row, for inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Idempotency key.
    pub key: String,
    /// The case.
    pub case: CaseId,
    /// The repository.
    pub repo: RepoId,
    /// The action's name.
    pub action: String,
    /// State.
    pub state: OutboxState,
    /// Fencing epoch (0 before the first claim).
    pub epoch: u64,
    /// Claims so far.
    pub attempts: u64,
    /// The worker holding the lease.
    pub lease_owner: Option<String>,
    /// The lease's end.
    pub lease_until: Option<Timestamp>,
    /// Not offered before this time.
    pub next_attempt_at: Timestamp,
    /// Why the publication guard held it.
    pub held_reason: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}
