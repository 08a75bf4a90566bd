//! The store's one error type. Every variant is something a caller can act on, and every
//! message is one line.

use lockstep_core::{CaseId, Rejection};

use crate::audit::VerifyFailure;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Optimistic concurrency: the case moved on since it was read.
    #[error("conflict: case {case} was expected at version {expected} but is at version {found}")]
    Conflict {
        /// The case.
        case: CaseId,
        /// The version the writer read.
        expected: u64,
        /// The version in the store.
        found: u64,
    },
    /// No such case.
    #[error("no case {case} in the store")]
    NotFound {
        /// The case.
        case: CaseId,
    },
    /// A case with this id exists already.
    #[error("a case {case} exists already")]
    DuplicateCase {
        /// The case.
        case: CaseId,
    },
    /// No outbox entry has this key.
    #[error("no effect {key} in the outbox")]
    UnknownEffect {
        /// The effect's idempotency key.
        key: String,
    },
    /// Fencing: another worker claimed the effect since this worker's claim; its result is
    /// discarded.
    #[error(
        "stale epoch for effect {key}: this claim holds epoch {held}, the current epoch is {current}"
    )]
    StaleEpoch {
        /// The effect's idempotency key.
        key: String,
        /// The epoch the caller holds.
        held: u64,
        /// The current epoch.
        current: u64,
    },
    /// The effect is not claimed (its result was recorded already, or it was never claimed).
    #[error(
        "effect {key} is {state}, not claimed: its result was recorded already or it was never claimed"
    )]
    NotClaimed {
        /// The effect's idempotency key.
        key: String,
        /// Its state.
        state: String,
    },
    /// The database holds a migration this binary does not know: a newer Lockstep wrote it.
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}); upgrade Lockstep (nothing was changed)"
    )]
    SchemaTooNew {
        /// The highest version applied in the database.
        found: i64,
        /// The highest version this binary knows.
        known: i64,
    },
    /// The database predates this binary's schema, and the store was opened read-only
    /// ([`Store::open_read_only`](crate::Store::open_read_only)), which never migrates.
    #[error(
        "the database schema is at version {found}, older than this binary's ({known}); it is migrated when Lockstep opens it for writing (nothing was changed)"
    )]
    SchemaTooOld {
        /// The highest version applied in the database.
        found: i64,
        /// The highest version this binary knows.
        known: i64,
    },
    /// The database's schema does not match this binary's migrations (edited, or half-applied).
    #[error("the database schema is inconsistent: {why} (nothing was changed)")]
    SchemaMismatch {
        /// What is wrong.
        why: String,
    },
    /// The file is not a (Lockstep) SQLite database.
    #[error("{path} is not a Lockstep database: {why} (the file was not changed)")]
    NotADatabase {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// A read-only open found no database file (nothing was created).
    #[error("no Lockstep database at {path}: the file does not exist (nothing was created)")]
    NoDatabase {
        /// The file.
        path: String,
    },
    /// Change notifications ([`Store::subscribe`](crate::Store::subscribe)) are unavailable
    /// or stopped.
    #[error("change notifications: {why}")]
    Changes {
        /// Why.
        why: String,
    },
    /// The URL is not one the store understands.
    #[error("unsupported database URL {url:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl {
        /// The URL, with any password removed.
        url: String,
    },
    /// The core refused the input.
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// A decision does not fit the case it was made for (a caller bug).
    #[error("invalid decision for case {case}: {why}")]
    InvalidDecision {
        /// The case.
        case: String,
        /// What is wrong.
        why: String,
    },
    /// A row does not decode (corrupt JSON, a bad id or time, a log that does not fold).
    #[error("corrupt data in the store: {what}")]
    Corrupt {
        /// Which row and what is wrong.
        what: String,
    },
    /// `verify` found the audit trail or the event log altered.
    #[error("audit verification failed: {0}")]
    Tampered(VerifyFailure),
    /// A checkpoint file does not parse or its signature does not verify.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),
    /// A key file does not parse.
    #[error("bad key file {path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database clock reads a time outside 1970..=9999.
    #[error("the database clock reads {0} ms since the epoch, outside the supported range")]
    Clock(i64),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database server could not be reached or refused the connection.
    #[error("cannot connect to the database {url}: {why}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What the server or the network said.
        why: String,
    },
    /// Any other database error.
    #[error("database error: {}", describe(.0))]
    Database(sqlx::Error),
}

/// A database error as a person reads it: the server's own message, without sqlx's wrapping or
/// the line of the server's source code that raised it.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        other => other.to_string(),
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e)
    }
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt { what: what.into() }
    }

    /// Whether this is an optimistic-concurrency conflict (worth retrying from a fresh read).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}
