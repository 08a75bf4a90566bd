#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod backend;
mod changes;
mod error;
mod types;
mod worker;

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use lockstep_core::event::EventKind;
use lockstep_core::input::Principal;
use lockstep_core::{Case, CaseId, Decision, Event, Input, OpenCase, Rejection, Timestamp};
use serde::Serialize;
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use audit::{
    CHECKPOINT_ORIGIN, Checkpoint, CheckpointInfo, KEY_NAME, VerifyFailure, VerifyReport,
    generate_key_file, load_key_file, parse_key_text, parse_verifier_key, verifier_key,
};
pub use changes::Changes;
pub use ed25519_dalek::{SigningKey as AuditSigningKey, VerifyingKey as AuditVerifyingKey};
pub use error::Error;
pub use types::{
    CaseStatus, CaseSummary, Claim, Committed, Completion, EffectResult, OutboxEntry, OutboxState,
    StoreOptions,
};

pub use worker::Worker;

use backend::{CaseCache, OutboxInsert, Plan, Written};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The highest schema version this binary knows.
pub fn schema_version() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// How a store opens its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create a missing SQLite file, migrate, read and write.
    ReadWrite,
    /// An existing database at this binary's schema; read only.
    ReadOnly,
}

enum Backend {
    /// Writes go through a one-connection pool (SQLite has one writer; `BEGIN IMMEDIATE`
    /// takes the write lock up front, so a transaction never fails to upgrade); reads use
    /// their own pool and see committed data through WAL. (Read-only: one pool for both.)
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        /// An in-memory database: nothing outside this pool to watch for changes.
        in_memory: bool,
        /// The database file (`None` in memory): workers' lock files live beside it.
        path: Option<std::path::PathBuf>,
    },
    Postgres(PgPool),
}

struct Inner {
    backend: Backend,
    cache: CaseCache,
    opts: StoreOptions,
    /// PostgreSQL workers whose lock this store found free, and since when (their claims move
    /// on once it stayed free for the grace; see `worker::POSTGRES_GRACE`).
    free_since: std::sync::Mutex<std::collections::BTreeMap<i64, std::time::Instant>>,
}

/// Lockstep's durable store, on SQLite (`sqlite://PATH`) or PostgreSQL (`postgres://…`).
/// Cheap to clone; clones share the pools.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

/// Runs `$body` with `$w`/`$r` bound to the write and read pools and `be` to the backend
/// module (`backend::sqlite` or `::postgres`; with a module name first, that module's).
macro_rules! dispatch {
    ($store:expr, |$w:ident, $r:ident| $body:expr) => {
        dispatch!($store, backend, |$w, $r| $body)
    };
    ($store:expr, $module:ident, |$w:ident, $r:ident| $body:expr) => {
        match &$store.inner.backend {
            Backend::Sqlite { write, read, .. } => {
                #[allow(unused_variables)]
                let ($w, $r) = (write, read);
                #[allow(unused_imports)]
                use crate::$module::sqlite as be;
                $body
            }
            Backend::Postgres(pool) => {
                #[allow(unused_variables)]
                let ($w, $r) = (pool, pool);
                #[allow(unused_imports)]
                use crate::$module::postgres as be;
                $body
            }
        }
    };
}

mod reports;
pub use reports::{ReportSeen, StoredReport};

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How an existing SQLite file keeps its journal (bytes 18 and 19 of its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Journal {
    /// An empty file, or a rollback journal.
    Rollback,
    /// Write-ahead log.
    Wal,
}

/// Refuses an existing file that is not an SQLite database, before SQLite touches it.
/// `None`: there is no file.
fn check_sqlite_file(path: &Path) -> Result<Option<Journal>, Error> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: shown,
                source,
            });
        }
    };
    if f.metadata()
        .map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?
        .is_dir()
    {
        return Err(Error::NotADatabase {
            path: shown,
            why: "it is a directory".into(),
        });
    }
    let mut header = Vec::with_capacity(20);
    (&mut f)
        .take(20)
        .read_to_end(&mut header)
        .map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
    if header.is_empty() {
        return Ok(Some(Journal::Rollback));
    }
    if header.get(..16) != Some(SQLITE_HEADER.as_slice()) {
        return Err(Error::NotADatabase {
            path: shown,
            why: "it does not start with the SQLite header (corrupt, or another kind of file)"
                .into(),
        });
    }
    Ok(Some(if header.get(18..20) == Some([2, 2].as_slice()) {
        Journal::Wal
    } else {
        Journal::Rollback
    }))
}

/// Reads the schema of an existing SQLite file on a read-only connection that sets no
/// journal mode, so nothing is written. A WAL database with no `-wal` file is read as
/// immutable: a read-only connection would otherwise create `-wal` and `-shm` files.
async fn inspect_sqlite(
    base: &SqliteConnectOptions,
    path: &Path,
    journal: Journal,
    shown: &str,
) -> Result<backend::Schema, Error> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let immutable = journal == Journal::Wal && !Path::new(&wal).exists();
    let options = base
        .clone()
        .read_only(true)
        .create_if_missing(false)
        .immutable(immutable);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| sqlite_error(shown, e))?;
    let schema = backend::sqlite::check_schema(&mut conn, &SQLITE_MIGRATIONS, shown)
        .await
        .map_err(|e| match e {
            Error::Database(d) => sqlite_error(shown, d),
            e => e,
        });
    let _ = conn.close().await;
    schema
}

fn sqlite_error(path: &str, e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && (d.code().as_deref() == Some("26") || d.message().contains("not a database"))
    {
        return Error::NotADatabase {
            path: path.to_owned(),
            why: d.message().to_owned(),
        };
    }
    Error::Database(e)
}

/// Builds the write plan for a decision taken on a case at `expected` (`None`: a new case).
pub(crate) fn plan(
    expected: Option<u64>,
    after: &Case,
    decision: &Decision,
    input: &str,
    at: i64,
    delivery: Option<String>,
) -> Result<Plan, Error> {
    let bad = |why: String| Error::InvalidDecision {
        case: after.id.to_string(),
        why,
    };
    let base = expected.unwrap_or(0);
    for (i, e) in decision.events.iter().enumerate() {
        if e.seq != base + 1 + i as u64 {
            return Err(bad(format!(
                "event {} should have seq {}",
                e.seq,
                base + 1 + i as u64
            )));
        }
    }
    let last = base + decision.events.len() as u64;
    if after.version != last {
        return Err(bad(format!(
            "the case is at version {} after {} events on version {base}",
            after.version,
            decision.events.len()
        )));
    }
    let to_i64 = |v: u64| i64::try_from(v).map_err(|_| bad(format!("version {v} out of range")));
    let mut events = Vec::with_capacity(decision.events.len());
    for e in &decision.events {
        let body = serde_json::to_string(e)
            .map_err(|err| bad(format!("event {} does not serialise: {err}", e.seq)))?;
        events.push((to_i64(e.seq)?, body));
    }
    let mut outbox = Vec::new();
    let mut retried = Vec::new();
    for e in &decision.events {
        if let EventKind::EffectRetried { key, .. } = &e.kind {
            retried.push(key.clone());
        }
        if let EventKind::EffectRequested { effect } = &e.kind {
            outbox.push(OutboxInsert {
                key: effect.key.clone(),
                repo: effect.repo.to_string(),
                action: effect.action.name().to_owned(),
                is_publish: effect.action.is_publish(),
                effect: serde_json::to_string(effect).map_err(|err| {
                    bad(format!("effect {} does not serialise: {err}", effect.key))
                })?,
            });
        }
    }
    let authority = serde_json::to_string(&decision.authority)
        .map_err(|err| bad(format!("authority: {err}")))?;
    Ok(Plan {
        case_id: after.id.to_string(),
        expected: expected.map(to_i64).transpose()?,
        version: to_i64(last)?,
        opened_at: after.opened_at.millis(),
        at,
        title: after.vulnerability.summary.clone(),
        status: CaseStatus::of(after).as_str(),
        // An overdue embargo (hold-all) stays in force with nothing left to fire: listed as
        // `overdue`, it is out of the deadline indexes, which hold only `active` and `revise`.
        embargo_state: if after.embargo.overdue.is_some() {
            "overdue".to_owned()
        } else {
            types::em_state_name(after.embargo.state)
        },
        embargo_until: after.embargo.until.map(Timestamp::millis),
        repos: after.scope().count() as i64,
        events,
        outbox,
        retried,
        actor: decision.authority.actor.to_string(),
        authority,
        input: input.to_owned(),
        delivery,
        report: None,
    })
}

fn to_json(input: &(impl Serialize + ?Sized)) -> Result<String, Error> {
    serde_json::to_string(input)
        .map_err(|e| Error::corrupt(format!("the input does not serialise: {e}")))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating a missing SQLite file) and migrates the store at `url`.
    pub async fn open(url: &str) -> Result<Store, Error> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(url: &str, opts: StoreOptions) -> Result<Store, Error> {
        Self::open_mode(url, opts, Mode::ReadWrite).await
    }

    /// Opens an existing store for reading and verifying only: nothing is created, migrated
    /// or written. A missing SQLite file → [`Error::NoDatabase`]; a database without
    /// Lockstep's schema → [`Error::NotADatabase`]; a schema older than this binary's →
    /// [`Error::SchemaTooOld`] (newer → [`Error::SchemaTooNew`]). Writes through this store
    /// fail (SQLite opens the file read-only; PostgreSQL sessions default to read-only
    /// transactions).
    pub async fn open_read_only(url: &str) -> Result<Store, Error> {
        Self::open_mode(url, StoreOptions::default(), Mode::ReadOnly).await
    }

    async fn open_mode(url: &str, opts: StoreOptions, mode: Mode) -> Result<Store, Error> {
        let backend = if url.starts_with("sqlite:") {
            Self::open_sqlite(url, &opts, mode).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let shown = redact(url);
            let mut options = PgConnectOptions::from_str(url)
                .map_err(|_| Error::UnsupportedUrl { url: shown.clone() })?;
            if mode == Mode::ReadOnly {
                options = options.options([("default_transaction_read_only", "on")]);
            }
            // One direct connection first: the pool would retry a refused connection until
            // its acquire timeout and then report only that it timed out.
            let probe = PgConnection::connect_with(&options)
                .await
                .map_err(|e| Error::Connect {
                    url: shown.clone(),
                    why: error::describe(&e),
                })?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .connect_with(options)
                .await?;
            match mode {
                Mode::ReadWrite => {
                    backend::postgres::migrate(&pool, &POSTGRES_MIGRATIONS, &shown).await?;
                }
                Mode::ReadOnly => {
                    let mut conn = pool.acquire().await?;
                    backend::postgres::check_schema(&mut conn, &POSTGRES_MIGRATIONS, &shown)
                        .await?
                        .require_current(&POSTGRES_MIGRATIONS, &shown)?;
                }
            }
            Backend::Postgres(pool)
        } else {
            return Err(Error::UnsupportedUrl { url: redact(url) });
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                cache: CaseCache::new(opts.case_cache),
                opts,
                free_since: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            }),
        })
    }

    async fn open_sqlite(url: &str, opts: &StoreOptions, mode: Mode) -> Result<Backend, Error> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|_| Error::UnsupportedUrl { url: redact(url) })?
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(false);
        let path = base.get_filename().to_owned();
        let shown = path.display().to_string();
        let in_memory = shown.is_empty() || shown.contains(":memory:");
        let mut existing = None;
        if !in_memory {
            existing = check_sqlite_file(&path)?;
        }
        if mode == Mode::ReadOnly && (in_memory || existing.is_none()) {
            return Err(Error::NoDatabase { path: shown });
        }
        // An existing file is inspected on a read-only connection first, without the
        // journal-mode pragma (which would rewrite the header of another application's
        // database and create -wal/-shm files next to it): only a database that is empty or
        // holds Lockstep's schema is opened for writing.
        if let Some(kind) = existing {
            let schema = inspect_sqlite(&base, &path, kind, &shown).await?;
            if mode == Mode::ReadOnly {
                schema.require_current(&SQLITE_MIGRATIONS, &shown)?;
            }
        }
        if mode == Mode::ReadOnly {
            let options = base.read_only(true);
            let read = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(opts.max_connections.max(1))
                .connect_with(options)
                .await
                .map_err(|e| sqlite_error(&shown, e))?;
            return Ok(Backend::Sqlite {
                write: read.clone(),
                read,
                in_memory,
                path: None,
            });
        }
        let options = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| sqlite_error(&shown, e))?;
        backend::sqlite::migrate(&write, &SQLITE_MIGRATIONS, &shown)
            .await
            .map_err(|e| match e {
                Error::Database(d) => sqlite_error(&shown, d),
                e => e,
            })?;
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(opts.max_connections.max(1))
                .connect_with(options)
                .await
                .map_err(|e| sqlite_error(&shown, e))?
        };
        Ok(Backend::Sqlite {
            write,
            read,
            in_memory,
            path: (!in_memory).then_some(path),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Subscribes to commits made by anyone to this database (this process or another):
    /// [`Changes::changed`] resolves after each. PostgreSQL: `LISTEN lockstep_changes` on a
    /// connection of its own (every commit that appends events or changes the outbox runs
    /// `pg_notify`). SQLite: `PRAGMA data_version` polled every
    /// [`StoreOptions::change_poll`] on a connection of its own that never writes; not
    /// available for an in-memory database.
    pub async fn subscribe(&self) -> Result<Changes, Error> {
        match &self.inner.backend {
            Backend::Sqlite {
                in_memory: true, ..
            } => Err(Error::Changes {
                why: "an in-memory SQLite database has no other connections to watch".into(),
            }),
            // A connection of its own, like the read pool's; it never writes.
            Backend::Sqlite { read, .. } => {
                changes::sqlite(
                    (*read.connect_options()).clone(),
                    self.inner.opts.change_poll,
                )
                .await
            }
            Backend::Postgres(pool) => changes::postgres(pool).await,
        }
    }

    /// Closes the pools.
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(p) => p.close().await,
        }
    }

    /// The database clock.
    pub async fn now(&self) -> Result<Timestamp, Error> {
        let ms = dispatch!(self, |_w, r| {
            let mut conn = r.acquire().await?;
            be::db_now(&mut conn).await?
        });
        Timestamp::from_millis(ms).ok_or(Error::Clock(ms))
    }

    // ----- cases and the event log -----------------------------------------------------------

    /// Opens a case at the database's time and commits its events, outbox rows and audit entry.
    pub async fn open_case(
        &self,
        principal: &Principal,
        open: OpenCase,
    ) -> Result<Committed, Error> {
        let now = self.now().await?;
        let input = serde_json::json!({ "input": "open_case", "open_case": &open });
        let (_, decision) = Case::open(principal, open, now)?;
        self.create_case_at(&decision, &to_json(&input)?, now.millis())
            .await
    }

    /// Commits the decision that opened a case (from [`Case::open`]): its events, outbox rows
    /// and audit entry, atomically. `input` is what the audit trail records as the command.
    /// A case with the same id → [`Error::DuplicateCase`].
    ///
    /// The audit entry's time, the case row's `updated_at` and the outbox rows' times are the
    /// database clock's, as for every other commit; the events keep the time the decision was
    /// taken at.
    pub async fn create_case(
        &self,
        decision: &Decision,
        input: &(impl Serialize + ?Sized),
    ) -> Result<Committed, Error> {
        let input = to_json(input)?;
        let at = self.now().await?.millis();
        self.create_case_at(decision, &input, at).await
    }

    async fn create_case_at(
        &self,
        decision: &Decision,
        input: &str,
        at: i64,
    ) -> Result<Committed, Error> {
        let case = Case::replay(&decision.events).map_err(|e| Error::InvalidDecision {
            case: opened_id(decision).map_or_else(|| "(none)".to_owned(), |c| c.to_string()),
            why: e.to_string(),
        })?;
        let plan = plan(None, &case, decision, input, at, None)?;
        let written = dispatch!(self, |w, _r| be::commit(w, &self.inner.cache, &plan)
            .await?);
        let Written::Committed {
            audit_id,
            effects_inserted,
            ..
        } = written
        else {
            return Err(Error::corrupt(
                "a create without a delivery reported a duplicate delivery",
            ));
        };
        self.inner.cache.put(&case);
        Ok(Committed {
            case,
            events: decision.events.clone(),
            audit_id: Some(audit_id as u64),
            effects_inserted,
        })
    }

    /// Appends a decision taken on a case at `expected_version` (optimistic concurrency: a
    /// case that moved on → [`Error::Conflict`]). The events are folded onto the stored case
    /// first, so a decision that does not apply is refused.
    pub async fn append(
        &self,
        case_id: &CaseId,
        expected_version: u64,
        decision: &Decision,
        input: &(impl Serialize + ?Sized),
    ) -> Result<Committed, Error> {
        let input = to_json(input)?;
        let (mut case, now) =
            dispatch!(self, |_w, r| be::load(r, &self.inner.cache, case_id, false)
                .await?);
        if case.version != expected_version {
            // The cache may be behind; re-read before calling it a conflict.
            let fresh = dispatch!(self, |_w, r| be::load(r, &self.inner.cache, case_id, true)
                .await?)
            .0;
            if fresh.version != expected_version {
                return Err(Error::Conflict {
                    case: case_id.clone(),
                    expected: expected_version,
                    found: fresh.version,
                });
            }
            case = fresh;
        }
        for e in &decision.events {
            case.apply(e).map_err(|err| Error::InvalidDecision {
                case: case_id.to_string(),
                why: err.to_string(),
            })?;
        }
        let plan = plan(Some(expected_version), &case, decision, &input, now, None)?;
        self.write_plan(case_id, plan, case, decision.events.clone())
            .await
    }

    async fn write_plan(
        &self,
        case_id: &CaseId,
        plan: Plan,
        case: Case,
        events: Vec<Event>,
    ) -> Result<Committed, Error> {
        match dispatch!(self, |w, _r| be::commit(w, &self.inner.cache, &plan).await) {
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
                self.inner.cache.remove(case_id);
                Err(e)
            }
        }
    }

    /// The main entry point for commands: loads the case, runs `f` on it with the database's
    /// time, and commits the decision's events, outbox rows and audit entry atomically,
    /// conditioned on the version `f` saw. On a conflict it re-reads and runs `f` again (up to
    /// [`StoreOptions::conflict_retries`] times). `input` is recorded in the audit entry.
    ///
    /// `f` must leave the case as its decision's events make it, as [`Case::handle`] does (the
    /// store checks the version). A decision with no events commits nothing and writes no
    /// audit entry.
    pub async fn transact<F>(
        &self,
        case_id: &CaseId,
        input: &(impl Serialize + ?Sized),
        f: F,
    ) -> Result<Committed, Error>
    where
        F: FnMut(&mut Case, Timestamp) -> Result<Decision, Rejection>,
    {
        let input = to_json(input)?;
        self.transact_inner(case_id, &input, None, f)
            .await?
            .ok_or_else(|| Error::corrupt("unexpected duplicate delivery"))
    }

    /// [`Store::transact`] for a webhook delivery: the delivery id is recorded in the same
    /// transaction, and a delivery seen before commits nothing and returns `None`.
    pub async fn transact_delivery<F>(
        &self,
        delivery_id: &str,
        case_id: &CaseId,
        input: &(impl Serialize + ?Sized),
        f: F,
    ) -> Result<Option<Committed>, Error>
    where
        F: FnMut(&mut Case, Timestamp) -> Result<Decision, Rejection>,
    {
        let input = to_json(input)?;
        self.transact_inner(case_id, &input, Some(delivery_id), f)
            .await
    }

    /// Submits one input from `principal` (a command, an observation, a tick).
    pub async fn handle(
        &self,
        case_id: &CaseId,
        principal: &Principal,
        input: Input,
    ) -> Result<Committed, Error> {
        let json = to_json(&input)?;
        self.transact_inner(case_id, &json, None, |case, now| {
            case.handle(principal, input.clone(), now)
        })
        .await?
        .ok_or_else(|| Error::corrupt("unexpected duplicate delivery"))
    }

    async fn transact_inner<F>(
        &self,
        case_id: &CaseId,
        input: &str,
        delivery: Option<&str>,
        mut f: F,
    ) -> Result<Option<Committed>, Error>
    where
        F: FnMut(&mut Case, Timestamp) -> Result<Decision, Rejection>,
    {
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            if attempt > self.inner.opts.conflict_retries {
                // Contended: decide under the row lock, which cannot conflict.
                let result = dispatch!(self, |w, _r| {
                    be::transact_locked(w, &self.inner.cache, case_id, input, delivery, &mut f)
                        .await
                });
                if result.is_err() {
                    self.inner.cache.remove(case_id);
                }
                return result;
            }
            let (mut case, now) =
                dispatch!(self, |_w, r| be::load(r, &self.inner.cache, case_id, fresh)
                    .await?);
            if let Some(d) = delivery
                && dispatch!(self, |_w, r| be::delivery_seen(r, d).await?)
            {
                return Ok(None);
            }
            let expected = case.version;
            let now_ts = Timestamp::from_millis(now).ok_or(Error::Clock(now))?;
            let decision = f(&mut case, now_ts)?;
            if decision.events.is_empty() {
                if let Some(d) = delivery
                    && !self.record_delivery(d).await?
                {
                    return Ok(None);
                }
                return Ok(Some(Committed {
                    case,
                    events: Vec::new(),
                    audit_id: None,
                    effects_inserted: 0,
                }));
            }
            let plan = plan(
                Some(expected),
                &case,
                &decision,
                input,
                now,
                delivery.map(str::to_owned),
            )?;
            match dispatch!(self, |w, _r| be::commit(w, &self.inner.cache, &plan).await) {
                Ok(Written::Committed {
                    audit_id,
                    effects_inserted,
                    ..
                }) => {
                    self.inner.cache.put(&case);
                    return Ok(Some(Committed {
                        case,
                        events: decision.events,
                        audit_id: Some(audit_id as u64),
                        effects_inserted,
                    }));
                }
                Ok(Written::DuplicateDelivery) => return Ok(None),
                Err(Error::Conflict {
                    expected, found, ..
                }) => {
                    self.inner.cache.remove(case_id);
                    attempt += 1;
                    tracing::debug!(case = %case_id, expected, found, attempt, "version conflict; retrying");
                    fresh = true;
                }
                Err(e) => {
                    self.inner.cache.remove(case_id);
                    return Err(e);
                }
            }
        }
    }

    /// The case, folded from its events.
    pub async fn case(&self, case_id: &CaseId) -> Result<Case, Error> {
        Ok(
            dispatch!(self, |_w, r| be::load(r, &self.inner.cache, case_id, true)
                .await?)
            .0,
        )
    }

    /// The case's events, in order.
    pub async fn events(&self, case_id: &CaseId) -> Result<Vec<Event>, Error> {
        dispatch!(self, |_w, r| be::events(r, case_id).await)
    }

    /// Who committed the case's events, under which authority: per audit entry, oldest
    /// first, the events it appended (`seq_from..=seq_to`; an entry that appended none has
    /// `seq_from > seq_to`) and the [`Authority`](lockstep_core::auth::Authority) recorded.
    pub async fn authorities(
        &self,
        case_id: &CaseId,
    ) -> Result<Vec<(u64, u64, lockstep_core::auth::Authority)>, Error> {
        let rows = dispatch!(self, |_w, r| be::authorities(r, case_id).await)?;
        rows.into_iter()
            .map(|(from, to, authority)| {
                let authority = serde_json::from_str(&authority)
                    .map_err(|e| Error::corrupt(format!("audit authority of {case_id}: {e}")))?;
                Ok((
                    u64::try_from(from).unwrap_or(0),
                    u64::try_from(to).unwrap_or(0),
                    authority,
                ))
            })
            .collect()
    }

    /// Every case, oldest first.
    pub async fn list_cases(&self) -> Result<Vec<CaseSummary>, Error> {
        dispatch!(self, |_w, r| be::list_cases(r).await)
    }

    /// The cases that are not closed, oldest first. Reads only open cases, through an index:
    /// the runtime's passes and webhooks cost what is open, not history.
    pub async fn list_open_cases(&self) -> Result<Vec<CaseSummary>, Error> {
        dispatch!(self, |_w, r| be::list_open_cases(r).await)
    }

    /// One page of [`list_cases`](Self::list_cases): up to `limit` cases opened after the case
    /// `after` (from the first if `None`), oldest first, through an index. Pass the last id of
    /// a page to get the next; a page shorter than `limit` is the last. An `after` that names
    /// no case gives an empty page.
    pub async fn list_cases_page(
        &self,
        after: Option<&CaseId>,
        limit: usize,
    ) -> Result<Vec<CaseSummary>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        dispatch!(self, |_w, r| be::list_cases_page(
            r,
            after.map(CaseId::as_str),
            limit
        )
        .await)
    }

    /// The cases whose embargo deadline has passed by the database's clock and can still fire
    /// (the embargo is active or under revision), earliest first. Reads only those cases.
    pub async fn due_deadlines(&self) -> Result<Vec<CaseId>, Error> {
        dispatch!(self, |_w, r| be::due_deadlines(r).await)
    }

    /// When there is next something to do: the earliest embargo deadline that can still fire,
    /// or the earliest time an open outbox row is due (a retry, a held publication's re-check,
    /// the end of a claim's lease). Two reads from the front of partial indexes, whatever the
    /// history.
    pub async fn next_due(&self) -> Result<Option<Timestamp>, Error> {
        let ms = dispatch!(self, |_w, r| be::next_due(r).await?);
        ms.map(|ms| Timestamp::from_millis(ms).ok_or(Error::Clock(ms)))
            .transpose()
    }

    // ----- workers ---------------------------------------------------------------------------

    /// Registers a worker whose liveness the database (PostgreSQL: a session-level advisory
    /// lock) or the kernel (SQLite: an exclusive `flock` on a lock file beside the database)
    /// knows; see [`Worker`]. Claims made with [`claim_as`](Self::claim_as) move on as soon as
    /// it dies. Also forgets workers registered earlier that have died (returning their claims
    /// to pending).
    pub async fn register_worker(&self, name: &str) -> Result<Worker, Error> {
        let worker = match &self.inner.backend {
            Backend::Sqlite { write, path, .. } => {
                worker::register_sqlite(write, path.as_deref(), name).await?
            }
            Backend::Postgres(pool) => worker::register_postgres(pool, name).await?,
        };
        if let Some(me) = worker.id() {
            let others = dispatch!(self, |_w, r| be::workers(r, me).await?);
            self.release_dead(&others).await?;
        }
        Ok(worker)
    }

    /// Whether a registered worker other than `me` holds claims (whose owner may die: worth
    /// checking on sooner than their leases end).
    pub async fn others_claiming(&self, me: Option<&Worker>) -> Result<bool, Error> {
        let me = me.and_then(Worker::id);
        Ok(!dispatch!(self, |_w, r| be::claiming_workers(r, me).await?).is_empty())
    }

    /// Of the workers `ids`, returns the claims of those whose lock is free (they died) to
    /// pending at once, and forgets them. Returns the dead.
    async fn dead_workers(&self, ids: &[i64]) -> Result<Vec<i64>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match &self.inner.backend {
            Backend::Sqlite { path: Some(db), .. } => worker::dead_sqlite(db, ids),
            Backend::Sqlite { path: None, .. } => Vec::new(),
            Backend::Postgres(pool) => {
                // A lock must stay free for the grace: a live worker that lost its connection
                // drops its unsent work within it.
                let free = worker::dead_postgres(pool, ids).await?;
                let now = std::time::Instant::now();
                let Ok(mut seen) = self.inner.free_since.lock() else {
                    return Ok(Vec::new());
                };
                seen.retain(|id, _| free.contains(id) || !ids.contains(id));
                let mut dead = Vec::new();
                for id in free {
                    let since = *seen.entry(id).or_insert(now);
                    if now.duration_since(since) >= worker::POSTGRES_GRACE {
                        dead.push(id);
                        seen.remove(&id);
                    }
                }
                dead
            }
        })
    }

    async fn release_dead(&self, ids: &[i64]) -> Result<(), Error> {
        let dead = self.dead_workers(ids).await?;
        if dead.is_empty() {
            return Ok(());
        }
        dispatch!(self, |w, _r| {
            let mut tx = w.begin_with(be::BEGIN_WRITE).await?;
            let now = be::db_now(&mut tx).await?;
            be::release_dead(&mut tx, &dead, now).await?;
            tx.commit().await?;
        });
        self.forget_lock_files(&dead);
        Ok(())
    }

    fn forget_lock_files(&self, dead: &[i64]) {
        if let Backend::Sqlite { path: Some(db), .. } = &self.inner.backend {
            worker::remove_lock_files(db, dead);
        }
    }

    // ----- the outbox ------------------------------------------------------------------------

    /// Claims up to `limit` ready effects for `worker` under a lease of `lease` (database
    /// clock). Each claim bumps the effect's fencing epoch. Publish effects are claimed only
    /// if the publication guard allows them at the database's time; others are held.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let recheck = millis(self.inner.opts.hold_recheck);
        dispatch!(self, |w, _r| be::claim(
            w,
            worker,
            None,
            &[],
            millis(lease),
            limit,
            recheck
        )
        .await)
    }

    /// [`claim`](Self::claim) for a registered [`Worker`]: the claims carry its id, so they
    /// return to pending as soon as it dies. First, the claims of every other registered
    /// worker whose lock is free (it died) return to pending, due at once, with their epoch
    /// bumped: a late result of the dead worker is refused as stale. The lease still bounds a
    /// worker that is alive but hung.
    pub async fn claim_as(
        &self,
        worker: &Worker,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let recheck = millis(self.inner.opts.hold_recheck);
        let others = dispatch!(self, |_w, r| be::claiming_workers(r, worker.id()).await?);
        let dead = self.dead_workers(&others).await?;
        let claims = dispatch!(self, |w, _r| be::claim(
            w,
            worker.name(),
            worker.id(),
            &dead,
            millis(lease),
            limit,
            recheck
        )
        .await)?;
        self.forget_lock_files(&dead);
        Ok(claims)
    }

    /// Extends the lease of a claim whose epoch is still current.
    pub async fn renew(&self, key: &str, epoch: u64, lease: Duration) -> Result<Timestamp, Error> {
        let until = dispatch!(self, |w, _r| be::renew(w, key, epoch, millis(lease))
            .await?);
        Timestamp::from_millis(until).ok_or(Error::Clock(until))
    }

    /// Records an effect's result, fenced on `epoch` (stale → [`Error::StaleEpoch`], nothing
    /// written). In one transaction: the observation goes through the core as automation; its
    /// events, new outbox rows and audit entry are appended; the row becomes done, failed, or
    /// pending again after `retry_after`.
    pub async fn complete(
        &self,
        key: &str,
        epoch: u64,
        result: EffectResult,
    ) -> Result<Completion, Error> {
        dispatch!(self, |w, _r| be::complete(
            w,
            &self.inner.cache,
            key,
            epoch,
            &result
        )
        .await)
    }

    /// Outbox rows, of one case or all, in insertion order.
    pub async fn outbox(&self, case_id: Option<&CaseId>) -> Result<Vec<OutboxEntry>, Error> {
        dispatch!(self, |_w, r| be::outbox(r, case_id).await)
    }

    /// One outbox row.
    pub async fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, Error> {
        dispatch!(self, |_w, r| be::outbox_one(r, key).await)
    }

    // ----- the inbox -------------------------------------------------------------------------

    /// Records a webhook delivery id; `true` the first time it is seen.
    pub async fn record_delivery(&self, delivery_id: &str) -> Result<bool, Error> {
        dispatch!(self, |w, _r| be::record_delivery(w, delivery_id).await)
    }

    /// Whether a delivery id was recorded.
    pub async fn delivery_seen(&self, delivery_id: &str) -> Result<bool, Error> {
        dispatch!(self, |_w, r| be::delivery_seen(r, delivery_id).await)
    }

    /// Records a web session (by a hash of its id) as signed out, until `expires` (after which
    /// its cookie is refused anyway).
    pub async fn sign_out_session(
        &self,
        session_hash: &str,
        expires: Timestamp,
    ) -> Result<(), Error> {
        dispatch!(self, |w, _r| be::sign_out(
            w,
            session_hash,
            expires.millis()
        )
        .await)
    }

    /// Whether a web session was signed out.
    pub async fn session_signed_out(&self, session_hash: &str) -> Result<bool, Error> {
        dispatch!(self, |_w, r| be::signed_out(r, session_hash).await)
    }

    // ----- the audit trail -------------------------------------------------------------------

    /// Recomputes the audit chain and the event hashes in one snapshot, and checks them
    /// against `checkpoint` if given. Returns the first problem as [`Error::Tampered`].
    pub async fn verify(&self, checkpoint: Option<&Checkpoint>) -> Result<VerifyReport, Error> {
        dispatch!(self, |_w, r| be::verify(r, checkpoint).await)
    }

    /// Verifies the trail, then signs a checkpoint of it (size and head) with `key`. Keep the
    /// checkpoint's text ([`Checkpoint`]'s `Display`) outside the database.
    pub async fn checkpoint(&self, key: &SigningKey) -> Result<Checkpoint, Error> {
        let report = self.verify(None).await?;
        let head = audit::parse_hash(&report.head)
            .ok_or_else(|| Error::corrupt("the head hash is not hex"))?;
        let now = self.now().await?;
        Ok(Checkpoint::sign(report.entries, head, now, key))
    }
}

fn opened_id(decision: &Decision) -> Option<CaseId> {
    decision.events.first().and_then(|e| match &e.kind {
        EventKind::CaseOpened { case_id, .. } => Some(case_id.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The durability settings the store promises, read back from the connections it uses.
    #[tokio::test]
    async fn sqlite_connections_run_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let opts = StoreOptions {
            busy_timeout: Duration::from_millis(4321),
            ..StoreOptions::default()
        };
        let store = Store::open_with(&url, opts).await.unwrap();
        let Backend::Sqlite { write, read, .. } = &store.inner.backend else {
            panic!("not sqlite");
        };
        assert_eq!(write.options().get_max_connections(), 1, "one writer");
        for (name, pool) in [("write", write), ("read", read)] {
            let mut conn = pool.acquire().await.unwrap();
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(synchronous, 2, "{name}: synchronous = FULL");
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(journal, "wal", "{name}");
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(busy, 4321, "{name}: busy_timeout");
        }
        store.close().await;
    }

    /// A pass of the runtime reads only open work: every statement it runs is answered from
    /// an index (SQLite's plan never scans a whole table), so its cost follows what is open,
    /// not history. (The benchmark `idle_pass` measures it with 10,000 closed cases.)
    #[tokio::test]
    async fn a_pass_reads_through_indexes() {
        use backend::sqlite as q;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let store = Store::open(&url).await.unwrap();
        let Backend::Sqlite { read, .. } = &store.inner.backend else {
            panic!("not sqlite");
        };
        for (name, sql, binds) in [
            ("due deadlines", q::DUE_DEADLINES, 1),
            ("next deadline", q::NEXT_DEADLINE, 0),
            ("next outbox row due", q::NEXT_OUTBOX_DUE, 0),
            ("workers holding claims", q::CLAIMING_WORKERS, 1),
            ("open cases", q::OPEN_CASES, 0),
            ("a page of cases", q::CASES_PAGE_AFTER, 3),
        ] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            for _ in 0..binds {
                query = query.bind(1_i64);
            }
            let plan: Vec<String> = query
                .fetch_all(read)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(!plan.is_empty(), "{name}");
            for step in &plan {
                let scans_a_table = step.starts_with("SCAN ") && !step.contains(" INDEX ");
                assert!(!scans_a_table, "{name}: {step} ({plan:?})");
            }
        }
        store.close().await;
    }

    /// The two migration folders must describe the same schema versions: a version missing
    /// on one backend would leave its databases behind.
    #[test]
    fn both_backends_have_the_same_migrations() {
        let list = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert!(!list(&SQLITE_MIGRATIONS).is_empty());
        assert_eq!(list(&SQLITE_MIGRATIONS), list(&POSTGRES_MIGRATIONS));
        let files = |dir: &str| -> Vec<String> {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(dir);
            let mut names: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(files("sqlite"), files("postgres"), "the same file names");
        assert_eq!(
            schema_version(),
            POSTGRES_MIGRATIONS.iter().map(|m| m.version).max().unwrap()
        );
    }
}
