//! The append-only request ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::AdvisoryState;

/// How a ledger entry reached the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// An HTTP request.
    Http,
    /// A call on the Rust handle or an admin route (e.g. a maintainer acting in GitHub's UI).
    Handle,
}

/// Fault (or limit) that decided the outcome of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Injected 5xx before applying.
    Error5xx,
    /// Applied, then the connection was dropped without a response.
    ResetAfterApply,
    /// Secondary rate limit (injected or budget exhausted).
    SecondaryLimit,
    /// Primary rate limit exhausted.
    PrimaryLimit,
}

/// One request as seen by the simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Monotonic sequence number, starting at 1.
    pub seq: u64,
    /// Wall-clock time the request was processed.
    pub at: DateTime<Utc>,
    /// HTTP method (`UI` for handle actions).
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Operation name (`create`, `report`, `update`, `get`, `list`, `request_cve`, `fork`, …).
    pub op: String,
    /// Authenticated login, if any.
    pub actor: Option<String>,
    /// Status decided by the simulator (for `reset_after_apply`, the status that was never sent).
    pub status: u16,
    /// POST/PATCH/PUT/DELETE.
    pub write: bool,
    /// The request changed state.
    pub applied: bool,
    /// Whether a response reached the client (false for reset-after-apply).
    pub delivered: bool,
    /// HTTP or handle.
    pub via: Via,
    /// `owner/name`, when the request targets a repository.
    pub repo: Option<String>,
    /// The advisory concerned (for create: the new id).
    pub ghsa_id: Option<String>,
    /// State before the change (None for a creation).
    pub state_from: Option<AdvisoryState>,
    /// State after the change, when the state changed (or the initial state on creation).
    pub state_to: Option<AdvisoryState>,
    /// Fault or limit that decided the outcome.
    pub fault: Option<FaultKind>,
    /// SHA-256 (hex) of the raw request body, when non-empty.
    pub body_sha256: Option<String>,
}

impl LedgerEntry {
    /// True if this entry moved an advisory to `published`.
    pub fn is_publish(&self) -> bool {
        self.applied && self.state_to == Some(AdvisoryState::Published)
    }

    /// True if this entry created an advisory (create or report).
    pub fn is_creation(&self) -> bool {
        self.applied && self.state_from.is_none() && self.state_to.is_some()
    }
}
