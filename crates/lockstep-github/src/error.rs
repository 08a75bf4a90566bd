//! The adapter's typed error.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One entry of a 422 `validation-error`'s `errors` array (every field optional: GitHub's
/// shapes vary, and `validation-error-simple` sends plain strings, kept in `message`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// `resource`, e.g. `RepositoryAdvisory`.
    pub resource: Option<String>,
    /// `field`, e.g. `cve_id`.
    pub field: Option<String>,
    /// `code`, e.g. `invalid`, `missing_field`, `already_exists`.
    pub code: Option<String>,
    /// `message`.
    pub message: Option<String>,
}

/// The messages of a 422 to a repeated `POST …/{ghsa}/cve`: a CVE requested before (by
/// an attempt whose answer was lost, say) or assigned already.
pub const CVE_ALREADY_MESSAGES: &[&str] = &[
    "This advisory already has a CVE ID.",
    "A CVE ID has already been requested for this advisory.",
];

/// Everything that can go wrong talking to GitHub.
///
/// Messages come from GitHub's error bodies (never from request bodies or tokens).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// 401: the token is missing, wrong or expired.
    #[error("unauthorized (401): {message}")]
    Unauthorized {
        /// GitHub's message.
        message: String,
    },
    /// 403 that is not a rate limit: the identity lacks a permission.
    #[error("forbidden (403): {message}")]
    Forbidden {
        /// GitHub's message.
        message: String,
    },
    /// 404: unknown, or invisible to this identity (GitHub hides private things as 404).
    #[error("not found (404): {message}")]
    NotFound {
        /// GitHub's message.
        message: String,
    },
    /// 422 (or 400): GitHub refused the request's content.
    #[error("validation failed ({status}): {message}")]
    Validation {
        /// 422 or 400.
        status: u16,
        /// GitHub's message.
        message: String,
        /// The `errors` array.
        errors: Vec<FieldError>,
    },
    /// Primary rate limit exhausted (`x-ratelimit-remaining: 0`). Refused before being
    /// applied, so even a write may be retried after the wait.
    #[error("primary rate limit exhausted (reset at {reset:?}, retry after {retry_after:?})")]
    RateLimited {
        /// `retry-after`, if sent.
        retry_after: Option<Duration>,
        /// `x-ratelimit-reset`.
        reset: Option<DateTime<Utc>>,
    },
    /// Secondary rate limit (403/429 with `retry-after` or a "secondary rate limit"
    /// message). Refused before being applied.
    #[error("secondary rate limit (retry after {retry_after:?})")]
    SecondaryRateLimited {
        /// `retry-after`, if sent.
        retry_after: Option<Duration>,
    },
    /// 5xx. For a write GitHub may have applied it before failing (a gateway timeout),
    /// so its outcome is unknown.
    #[error("server error ({status}){}", if *.outcome_unknown { " (write outcome unknown)" } else { "" })]
    Server {
        /// The status.
        status: u16,
        /// GitHub's message, if any.
        message: String,
        /// True for a write.
        outcome_unknown: bool,
    },
    /// No (complete) response: connection reset, timeout, broken body. For a write the
    /// outcome is unknown unless the connection was refused before anything was sent.
    #[error("transport error: {message}{}", if *.outcome_unknown { " (write outcome unknown)" } else { "" })]
    Transport {
        /// What failed (no secrets: octocrab/hyper error text).
        message: String,
        /// True for a write that may have reached GitHub.
        outcome_unknown: bool,
    },
    /// A caller mistake caught before anything was sent (bad repository name, missing
    /// marker, configuration).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else: an unexpected status, an undecodable body, a refused redirect.
    #[error("{message}")]
    Other {
        /// The status, if there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
}

impl Error {
    /// Whether trying again later can succeed: rate limits, 5xx and transport errors.
    ///
    /// For a write whose [`Error::write_outcome_unknown`] is true, retry only through a
    /// reconciling path ([`Attempt::Retry`](crate::Attempt::Retry)), never blindly. For a
    /// rate limit, not before its `retry_after` (the adapter holds the token's writes
    /// until then, and refuses those that would have to wait beyond `max_wait`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::SecondaryRateLimited { .. }
                | Self::Server { .. }
                | Self::Transport { .. }
        )
    }

    /// True when a write may or may not have been applied (5xx or lost response).
    pub fn write_outcome_unknown(&self) -> bool {
        match self {
            Self::Server {
                outcome_unknown, ..
            }
            | Self::Transport {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// True for primary or secondary rate limits (never applied by GitHub).
    pub fn is_rate_limit(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::SecondaryRateLimited { .. }
        )
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Validation { status, .. } | Self::Server { status, .. } => Some(*status),
            Self::Other { status, .. } => *status,
            Self::RateLimited { .. }
            | Self::SecondaryRateLimited { .. }
            | Self::Transport { .. }
            | Self::InvalidInput(_) => None,
        }
    }

    /// True for GitHub's answer to a repeated CVE request: a 422 whose `errors` carry
    /// `code: "already_exists"` (on `cve_id`, or on no field), or whose message is one of
    /// the exact texts GitHub (and the simulator) give for it: [`CVE_ALREADY_MESSAGES`].
    /// Any other 422 mentioning "already" is a refusal, not a success.
    pub fn is_already_exists(&self) -> bool {
        match self {
            Self::Validation {
                status: 422,
                errors,
                message,
            } => {
                errors.iter().any(|e| {
                    e.code.as_deref() == Some("already_exists")
                        && e.field.as_deref().is_none_or(|f| f == "cve_id")
                }) || CVE_ALREADY_MESSAGES.contains(&message.trim())
            }
            _ => false,
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::Other {
            status: None,
            message: message.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
