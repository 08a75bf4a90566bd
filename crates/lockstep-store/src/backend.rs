//! The two backends. The SQL is written once, in [`backend!`], and expanded for SQLite and for
//! PostgreSQL; the few statements that differ (the clock, row locks, `SKIP LOCKED`, id lists)
//! are parameters of the macro.

use std::collections::HashMap;
use std::sync::Mutex;

use lockstep_core::{Case, CaseId, Event};

use crate::error::Error;

/// An outbox row to insert.
pub(crate) struct OutboxInsert {
    pub(crate) key: String,
    pub(crate) repo: String,
    pub(crate) action: String,
    pub(crate) is_publish: bool,
    pub(crate) effect: String,
}

/// Everything one commit writes: the case row, events, outbox rows, the audit entry and,
/// optionally, the webhook delivery it consumed.
/// The store's fail points before a transition commits (compiled in with the `failpoints`
/// feature): every commit appends an audit entry, and a fix mark is the transition a crash
/// must never lose.
fn fail_before_commit(plan: &Plan) {
    fail::fail_point!("audit.append.before_commit");
    if plan
        .events
        .iter()
        .any(|(_, body)| body.contains("\"event\":\"fix_marked\""))
    {
        fail::fail_point!("transition.fix_ready.before_commit");
    }
}

pub(crate) struct Plan {
    pub(crate) case_id: String,
    /// `None`: the case is new.
    pub(crate) expected: Option<i64>,
    pub(crate) version: i64,
    pub(crate) opened_at: i64,
    pub(crate) at: i64,
    pub(crate) title: String,
    pub(crate) status: &'static str,
    pub(crate) embargo_state: String,
    pub(crate) embargo_until: Option<i64>,
    pub(crate) repos: i64,
    pub(crate) events: Vec<(i64, String)>,
    pub(crate) outbox: Vec<OutboxInsert>,
    /// Keys of effects that failed for good and a person put back in line.
    pub(crate) retried: Vec<String>,
    pub(crate) actor: String,
    pub(crate) authority: String,
    pub(crate) input: String,
    pub(crate) delivery: Option<String>,
    /// The report this commit decides (opening a case from it, merging it), updated in the
    /// same transaction; refused if it was decided meanwhile.
    pub(crate) report: Option<crate::reports::ReportWrite>,
}

/// The schema a database holds, as far as it is consistent with this binary.
pub(crate) enum Schema {
    /// No tables at all: a new database.
    Empty,
    /// Lockstep's, with these migrations applied (all known to this binary, none newer).
    Lockstep { applied: Vec<i64> },
}

impl Schema {
    /// Refuses anything but a database at exactly this binary's schema (for a store that
    /// must not migrate).
    pub(crate) fn require_current(
        self,
        migrator: &sqlx::migrate::Migrator,
        path: &str,
    ) -> Result<(), Error> {
        let applied = match self {
            Schema::Empty => {
                return Err(Error::NotADatabase {
                    path: path.to_owned(),
                    why: "it holds no Lockstep schema".into(),
                });
            }
            Schema::Lockstep { applied } => applied,
        };
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let found = applied.iter().copied().max().unwrap_or(0);
        if found < known {
            return Err(Error::SchemaTooOld { found, known });
        }
        if let Some(m) = migrator.iter().find(|m| !applied.contains(&m.version)) {
            return Err(Error::SchemaMismatch {
                why: format!("migration {} was never applied", m.version),
            });
        }
        Ok(())
    }
}

/// What a commit did.
pub(crate) enum Written {
    Committed {
        audit_id: i64,
        effects_inserted: u64,
        /// The new audit head's hash.
        head: String,
    },
    /// The webhook delivery had been processed already: nothing was written.
    DuplicateDelivery,
}

/// Folded cases by id. Entries are only inserted after a successful commit or a replay, and
/// a stale one only costs a version conflict.
pub(crate) struct CaseCache {
    max: usize,
    cases: Mutex<HashMap<CaseId, Case>>,
    /// The audit head as of this process's last commit: a hint that saves reading it; a stale
    /// hint only costs a read (the head row is updated conditionally on it).
    head: Mutex<Option<(i64, String)>>,
}

impl CaseCache {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            cases: Mutex::new(HashMap::new()),
            head: Mutex::new(None),
        }
    }

    pub(crate) fn head(&self) -> Option<(i64, String)> {
        self.head.lock().ok()?.clone()
    }

    pub(crate) fn set_head(&self, head: Option<(i64, String)>) {
        if let Ok(mut h) = self.head.lock() {
            *h = head;
        }
    }

    pub(crate) fn get(&self, id: &CaseId, version: Option<u64>) -> Option<Case> {
        let map = self.cases.lock().ok()?;
        map.get(id)
            .filter(|c| version.is_none_or(|v| c.version == v))
            .cloned()
    }

    /// Takes the case out of the cache (no clone); the caller puts it back after its commit.
    pub(crate) fn take(&self, id: &CaseId) -> Option<Case> {
        self.cases.lock().ok()?.remove(id)
    }

    pub(crate) fn put(&self, case: &Case) {
        if self.max == 0 {
            return;
        }
        if let Ok(mut map) = self.cases.lock() {
            if map.len() >= self.max && !map.contains_key(&case.id) {
                map.clear();
            }
            map.insert(case.id.clone(), case.clone());
        }
    }

    pub(crate) fn remove(&self, id: &CaseId) {
        if let Ok(mut map) = self.cases.lock() {
            map.remove(id);
        }
    }
}

pub(crate) fn parse_case_id(s: &str) -> Result<CaseId, Error> {
    s.parse()
        .map_err(|e| Error::corrupt(format!("case id {s:?}: {e}")))
}

pub(crate) fn parse_time(ms: i64, what: &str) -> Result<lockstep_core::Timestamp, Error> {
    lockstep_core::Timestamp::from_millis(ms)
        .ok_or_else(|| Error::corrupt(format!("{what}: {ms} is not a valid time")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::corrupt(format!("{what}: negative value {v}")))
}

/// Folds a case's rows.
pub(crate) fn replay(case_id: &str, rows: Vec<(i64, String)>) -> Result<Case, Error> {
    let mut events = Vec::with_capacity(rows.len());
    for (seq, body) in rows {
        let e: Event = serde_json::from_str(&body)
            .map_err(|err| Error::corrupt(format!("event {case_id}#{seq}: {err}")))?;
        if i64::try_from(e.seq).ok() != Some(seq) {
            return Err(Error::corrupt(format!(
                "event {case_id}#{seq}: the body says seq {}",
                e.seq
            )));
        }
        events.push(e);
    }
    if events.is_empty() {
        return Err(Error::NotFound {
            case: parse_case_id(case_id)?,
        });
    }
    let case = Case::replay(&events).map_err(|e| Error::corrupt(format!("case {case_id}: {e}")))?;
    if case.id.as_str() != case_id {
        return Err(Error::corrupt(format!(
            "case {case_id}: its log opens case {}",
            case.id
        )));
    }
    Ok(case)
}

/// Rows per multi-row INSERT.
const CHUNK: usize = 200;

/// SQLite's fast path for the common commit (an existing case, a fresh audit-head hint, no
/// delivery): the whole transaction, `BEGIN IMMEDIATE` to `COMMIT`, in one multi-statement
/// round trip to the connection's thread. Nothing in it can commit a bad write:
///
/// - the events' primary key is the compare-and-set on the version (a concurrent commit took
///   those sequence numbers), and the case row's update sets `version` to NULL, which its
///   `NOT NULL` refuses, if the version moved anyway;
/// - the audit entry's primary key refuses a stale head hint (another process appended).
///
/// A refused statement stops the batch before `COMMIT`; the transaction is rolled back, and a
/// connection whose state is unknown (the future dropped mid-way, a failed rollback) is closed,
/// which rolls back too. `Ok(None)`: not applicable, or the hint was stale; take the general
/// path. The store's before-commit fail points fire before the batch, when nothing is written.
pub(crate) mod fast {
    use sqlx::pool::PoolConnection;
    use sqlx::{QueryBuilder, Sqlite};

    use super::{CHUNK, Plan, Written, parse_case_id, to_u64};
    use crate::audit::{self, AuditRow};
    use crate::error::Error;

    /// A connection inside a transaction this code opened: closed on drop unless disarmed.
    struct Armed(PoolConnection<Sqlite>, bool);

    impl Drop for Armed {
        fn drop(&mut self) {
            if self.1 {
                self.0.close_on_drop();
            }
        }
    }

    pub(crate) async fn sqlite(
        pool: &sqlx::Pool<Sqlite>,
        plan: &Plan,
        hint: Option<(i64, String)>,
    ) -> Result<Option<Written>, Error> {
        let (Some((head_id, head_hash)), Some(expected), None, None) =
            (hint, plan.expected, &plan.delivery, &plan.report)
        else {
            return Ok(None);
        };
        if plan.events.is_empty()
            || plan.events.len() > CHUNK
            || plan.outbox.len() > CHUNK
            || !plan.retried.is_empty()
        {
            return Ok(None);
        }
        let Some(prev) = audit::parse_hash(&head_hash) else {
            return Ok(None);
        };
        let mut row = AuditRow {
            id: head_id + 1,
            at: plan.at,
            case_id: plan.case_id.clone(),
            actor: plan.actor.clone(),
            authority: plan.authority.clone(),
            input: plan.input.clone(),
            seq_from: expected + 1,
            seq_to: plan.version,
            events_hash: hex::encode(audit::events_hash(
                plan.events
                    .iter()
                    .map(|(seq, body)| (plan.case_id.as_bytes(), *seq, body.as_bytes())),
            )),
            prev_hash: head_hash,
            hash: String::new(),
        };
        row.hash = hex::encode(audit::entry_hash(&prev, &row));
        let mut q = QueryBuilder::<Sqlite>::new(
            "BEGIN IMMEDIATE; INSERT INTO events (case_id, seq, body, audit_id) ",
        );
        q.push_values(&plan.events, |mut b, (seq, body)| {
            b.push_bind(plan.case_id.clone())
                .push_bind(*seq)
                .push_bind(body.clone())
                .push_bind(row.id);
        });
        q.push("; UPDATE cases SET version = CASE WHEN version = ")
            .push_bind(expected)
            .push(" THEN ")
            .push_bind(plan.version)
            .push(" END, updated_at = ")
            .push_bind(plan.at)
            .push(", title = ")
            .push_bind(plan.title.clone())
            .push(", status = ")
            .push_bind(plan.status)
            .push(", embargo_state = ")
            .push_bind(plan.embargo_state.clone())
            .push(", embargo_until = ")
            .push_bind(plan.embargo_until)
            .push(", repos = ")
            .push_bind(plan.repos)
            .push(" WHERE case_id = ")
            .push_bind(plan.case_id.clone())
            .push("; INSERT INTO audit (id, at, case_id, actor, authority, input, seq_from, seq_to, events_hash, prev_hash, hash) ");
        q.push_values([&row], |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.at)
                .push_bind(r.case_id.clone())
                .push_bind(r.actor.clone())
                .push_bind(r.authority.clone())
                .push_bind(r.input.clone())
                .push_bind(r.seq_from)
                .push_bind(r.seq_to)
                .push_bind(r.events_hash.clone())
                .push_bind(r.prev_hash.clone())
                .push_bind(r.hash.clone());
        });
        if !plan.outbox.is_empty() {
            q.push("; INSERT INTO outbox (key, case_id, repo, action, is_publish, effect, state, next_attempt_at, created_at, updated_at) ");
            q.push_values(&plan.outbox, |mut b, o| {
                b.push_bind(o.key.clone())
                    .push_bind(plan.case_id.clone())
                    .push_bind(o.repo.clone())
                    .push_bind(o.action.clone())
                    .push_bind(o.is_publish)
                    .push_bind(o.effect.clone())
                    .push_bind("pending")
                    .push_bind(plan.at)
                    .push_bind(plan.at)
                    .push_bind(plan.at);
            });
            // One row back, not one per effect: every message from the connection's thread
            // costs a wake-up.
            q.push(" ON CONFLICT (key) DO NOTHING; SELECT changes()");
        }
        q.push("; COMMIT");
        super::fail_before_commit(plan);
        let mut conn = Armed(pool.acquire().await?, true);
        let outcome = q.build_query_scalar::<i64>().fetch_all(&mut *conn.0).await;
        let inserted = match outcome {
            Ok(rows) => {
                conn.1 = false;
                rows.first().copied().unwrap_or(0)
            }
            Err(e) => {
                // Stopped before COMMIT: roll back (a no-op error if BEGIN itself failed).
                match sqlx::query("ROLLBACK").execute(&mut *conn.0).await {
                    Ok(_) => conn.1 = false,
                    Err(sqlx::Error::Database(r)) if r.message().contains("no transaction") => {
                        conn.1 = false;
                    }
                    Err(_) => {}
                }
                return match e {
                    sqlx::Error::Database(e)
                        if e.message().contains("events.")
                            || e.message().contains("cases.version") =>
                    {
                        Err(conflict(&mut conn.0, plan, expected).await)
                    }
                    // Another process appended to the audit trail: the hint is stale.
                    sqlx::Error::Database(e) if e.is_unique_violation() => Ok(None),
                    e => Err(e.into()),
                };
            }
        };
        // Every statement wrote what it was given, or the batch stopped before COMMIT. (A case
        // row deleted behind the store's back would make its update match nothing; `verify`
        // compares each case row with its events.)
        Ok(Some(Written::Committed {
            audit_id: row.id,
            effects_inserted: to_u64(inserted, "changes()")?,
            head: row.hash,
        }))
    }

    async fn conflict(conn: &mut sqlx::SqliteConnection, plan: &Plan, expected: i64) -> Error {
        let case = match parse_case_id(&plan.case_id) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let found: Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT version FROM cases WHERE case_id = $1")
                .bind(&plan.case_id)
                .fetch_optional(&mut *conn)
                .await;
        match found {
            Ok(Some(found)) => match (to_u64(expected, "version"), to_u64(found, "version")) {
                (Ok(expected), Ok(found)) => Error::Conflict {
                    case,
                    expected,
                    found,
                },
                (Err(e), _) | (_, Err(e)) => e,
            },
            Ok(None) => Error::NotFound { case },
            Err(e) => e.into(),
        }
    }

    /// PostgreSQL has no fast path.
    pub(crate) async fn none(
        _pool: &sqlx::Pool<sqlx::Postgres>,
        _plan: &Plan,
        _hint: Option<(i64, String)>,
    ) -> Result<Option<Written>, Error> {
        Ok(None)
    }
}

/// A text column read as the exact bytes stored (SQLite may hold text that is not UTF-8).
macro_rules! sqlite_bytes {
    ($c:literal) => {
        concat!("CAST(", $c, " AS BLOB)")
    };
}
macro_rules! pg_bytes {
    ($c:literal) => {
        concat!("convert_to(", $c, ", 'UTF8')")
    };
}
/// A parameter bound as bytes, compared with a text column.
macro_rules! sqlite_text_param {
    ($p:literal) => {
        concat!("CAST(", $p, " AS TEXT)")
    };
}
macro_rules! pg_text_param {
    ($p:literal) => {
        concat!("convert_from(", $p, ", 'UTF8')")
    };
}

macro_rules! backend {
    (
        mod $m:ident;
        db = $Db:ty;
        begin_write = $begin_write:literal;
        begin_read = $begin_read:literal;
        now = $now:literal;
        local_clock = $local_clock:literal;
        head_lock = $head_lock:literal;
        use_hint = $use_hint:literal;
        fast_write = $fast_write:path;
        lock = $lock:literal;
        share = $share:literal;
        skip_locked = $skip_locked:literal;
        ids_in = $ids_in:literal;
        migrations_table = $migrations_table:literal;
        foreign_tables = $foreign_tables:literal;
        bytes = $bytes:ident;
        text_param = $text_param:ident;
        notify = $notify:literal;
    ) => {
        pub(crate) mod $m {
            use std::collections::{HashMap, VecDeque};

            use lockstep_core::input::{Input, Observation, Principal};
            use lockstep_core::{Case, CaseId, Effect};
            use sqlx::migrate::Migrator;
            use sqlx::{Pool, QueryBuilder, Row as _};

            use super::{parse_case_id, parse_time, replay, to_u64, CaseCache, Plan, Schema, Written, CHUNK};
            use crate::audit::{self, AuditRow, EventRow, Verifier, VerifyReport};
            use crate::error::Error;
            use crate::types::{
                CaseStatus, CaseSummary, Claim, Completion, EffectResult, OutboxEntry, OutboxState,
            };

            type Db = $Db;
            type Conn = <Db as sqlx::Database>::Connection;

            /// How a write transaction begins.
            pub(crate) const BEGIN_WRITE: &str = $begin_write;

            pub(crate) async fn db_now(conn: &mut Conn) -> Result<i64, Error> {
                let ms: i64 = sqlx::query_scalar($now).fetch_one(&mut *conn).await?;
                lockstep_core::Timestamp::from_millis(ms).ok_or(Error::Clock(ms))?;
                Ok(ms)
            }

            /// Reads what schema the database holds, refusing an unknown (newer), inconsistent
            /// or foreign one. Only reads.
            pub(crate) async fn check_schema(conn: &mut Conn, migrator: &Migrator, path: &str) -> Result<Schema, Error> {
                let exists: bool = sqlx::query_scalar($migrations_table).fetch_one(&mut *conn).await?;
                if !exists {
                    let foreign: i64 = sqlx::query_scalar($foreign_tables).fetch_one(&mut *conn).await?;
                    if foreign > 0 {
                        return Err(Error::NotADatabase {
                            path: path.to_owned(),
                            why: "it holds tables but no Lockstep schema".into(),
                        });
                    }
                    return Ok(Schema::Empty);
                }
                let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
                let rows = sqlx::query("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(&mut *conn)
                    .await?;
                let mut applied = Vec::new();
                for r in &rows {
                    let version: i64 = r.try_get(0)?;
                    let success: bool = r.try_get(1)?;
                    let checksum: Vec<u8> = r.try_get(2)?;
                    applied.push((version, success, checksum));
                }
                let found = applied.iter().map(|a| a.0).max().unwrap_or(0);
                if found > known {
                    return Err(Error::SchemaTooNew { found, known });
                }
                for (version, success, checksum) in &applied {
                    let Some(m) = migrator.iter().find(|m| m.version == *version) else {
                        return Err(Error::SchemaMismatch {
                            why: format!("migration {version} is applied but unknown to this binary"),
                        });
                    };
                    if !success {
                        return Err(Error::SchemaMismatch {
                            why: format!("migration {version} was left half-applied"),
                        });
                    }
                    if m.checksum.as_ref() != checksum.as_slice() {
                        return Err(Error::SchemaMismatch {
                            why: format!("migration {version} differs from the one that was applied"),
                        });
                    }
                }
                Ok(Schema::Lockstep {
                    applied: applied.into_iter().map(|a| a.0).collect(),
                })
            }

            /// Refuses an unknown (newer), inconsistent or foreign schema, then applies
            /// migrations.
            pub(crate) async fn migrate(pool: &Pool<Db>, migrator: &Migrator, path: &str) -> Result<(), Error> {
                let mut conn = pool.acquire().await?;
                check_schema(&mut conn, migrator, path).await?;
                drop(conn);
                migrator.run(pool).await.map_err(Error::Migrate)
            }

            pub(crate) async fn load_rows(conn: &mut Conn, case_id: &str) -> Result<Vec<(i64, String)>, Error> {
                Ok(sqlx::query_as("SELECT seq, body FROM events WHERE case_id = $1 ORDER BY seq")
                    .bind(case_id)
                    .fetch_all(&mut *conn)
                    .await?)
            }

            /// The case, from the cache or folded from its events, and the database time.
            pub(crate) async fn load(
                read: &Pool<Db>,
                cache: &CaseCache,
                case_id: &CaseId,
                fresh: bool,
            ) -> Result<(Case, i64), Error> {
                let now = if $local_clock {
                    // SQLite reads the host's clock (its VFS's xCurrentTime): the same clock,
                    // without a round trip to the connection's thread.
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                    lockstep_core::Timestamp::from_millis(ms).ok_or(Error::Clock(ms))?;
                    ms
                } else {
                    let mut conn = read.acquire().await?;
                    db_now(&mut conn).await?
                };
                if !fresh && let Some(c) = cache.take(case_id) {
                    return Ok((c, now));
                }
                let mut conn = read.acquire().await?;
                let rows = load_rows(&mut conn, case_id.as_str()).await?;
                let case = replay(case_id.as_str(), rows)?;
                cache.put(&case);
                Ok((case, now))
            }

            pub(crate) async fn events(read: &Pool<Db>, case_id: &CaseId) -> Result<Vec<lockstep_core::Event>, Error> {
                let mut conn = read.acquire().await?;
                let rows = load_rows(&mut conn, case_id.as_str()).await?;
                let mut out = Vec::with_capacity(rows.len());
                for (seq, body) in rows {
                    out.push(
                        serde_json::from_str(&body)
                            .map_err(|e| Error::corrupt(format!("event {case_id}#{seq}: {e}")))?,
                    );
                }
                Ok(out)
            }

            /// The case's audit entries, oldest first: the events each one committed
            /// (`seq_from..=seq_to`) and the authority (JSON) that allowed them.
            pub(crate) async fn authorities(read: &Pool<Db>, case_id: &CaseId) -> Result<Vec<(i64, i64, String)>, Error> {
                let mut conn = read.acquire().await?;
                Ok(sqlx::query_as("SELECT seq_from, seq_to, authority FROM audit WHERE case_id = $1 ORDER BY id")
                    .bind(case_id.as_str())
                    .fetch_all(&mut *conn)
                    .await?)
            }

            pub(crate) async fn insert_audit(
                conn: &mut Conn,
                row: &AuditRow,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO audit (id, at, case_id, actor, authority, input, seq_from, seq_to, events_hash, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(row.id)
                .bind(row.at)
                .bind(&row.case_id)
                .bind(&row.actor)
                .bind(&row.authority)
                .bind(&row.input)
                .bind(row.seq_from)
                .bind(row.seq_to)
                .bind(&row.events_hash)
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Writes a plan inside an open transaction.
            pub(crate) async fn write(conn: &mut Conn, plan: &Plan, hint: Option<(i64, String)>) -> Result<Written, Error> {
                if let Some(delivery) = &plan.delivery {
                    let n = sqlx::query(
                        "INSERT INTO inbox (delivery_id, received_at, case_id) VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING",
                    )
                    .bind(delivery)
                    .bind(plan.at)
                    .bind(&plan.case_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Ok(Written::DuplicateDelivery);
                    }
                }
                let case = || parse_case_id(&plan.case_id);
                match plan.expected {
                    Some(expected) => {
                        let n = sqlx::query(
                            "UPDATE cases SET version = $2, updated_at = $3, title = $4, status = $5, embargo_state = $6, embargo_until = $7, repos = $8 WHERE case_id = $1 AND version = $9",
                        )
                        .bind(&plan.case_id)
                        .bind(plan.version)
                        .bind(plan.at)
                        .bind(&plan.title)
                        .bind(plan.status)
                        .bind(&plan.embargo_state)
                        .bind(plan.embargo_until)
                        .bind(plan.repos)
                        .bind(expected)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            let found: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE case_id = $1")
                                .bind(&plan.case_id)
                                .fetch_optional(&mut *conn)
                                .await?;
                            return Err(match found {
                                Some(found) => Error::Conflict {
                                    case: case()?,
                                    expected: to_u64(expected, "expected version")?,
                                    found: to_u64(found, "case version")?,
                                },
                                None => Error::NotFound { case: case()? },
                            });
                        }
                    }
                    None => {
                        let n = sqlx::query(
                            "INSERT INTO cases (case_id, version, opened_at, updated_at, title, status, embargo_state, embargo_until, repos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (case_id) DO NOTHING",
                        )
                        .bind(&plan.case_id)
                        .bind(plan.version)
                        .bind(plan.opened_at)
                        .bind(plan.at)
                        .bind(&plan.title)
                        .bind(plan.status)
                        .bind(&plan.embargo_state)
                        .bind(plan.embargo_until)
                        .bind(plan.repos)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Err(Error::DuplicateCase { case: case()? });
                        }
                    }
                }
                if let Some(report) = &plan.report {
                    crate::reports::$m::decide_in(&mut *conn, report, plan.at, false).await?;
                }
                // The audit entry, chained to the last one. Appends are serialised by SQLite's
                // single writer, or by a transaction-level advisory lock on PostgreSQL.
                let seq_from = plan.expected.unwrap_or(0) + 1;
                let events_hash = hex::encode(audit::events_hash(
                    plan.events.iter().map(|(seq, body)| (plan.case_id.as_bytes(), *seq, body.as_bytes())),
                ));
                let entry = |head_id: i64, prev_hash: String| -> Result<AuditRow, Error> {
                    let prev = audit::parse_hash(&prev_hash)
                        .ok_or_else(|| Error::corrupt("the audit head's hash is not a SHA-256 hex string"))?;
                    let mut row = AuditRow {
                        id: head_id + 1,
                        at: plan.at,
                        case_id: plan.case_id.clone(),
                        actor: plan.actor.clone(),
                        authority: plan.authority.clone(),
                        input: plan.input.clone(),
                        seq_from,
                        seq_to: plan.version,
                        events_hash: events_hash.clone(),
                        prev_hash,
                        hash: String::new(),
                    };
                    row.hash = hex::encode(audit::entry_hash(&prev, &row));
                    Ok(row)
                };
                if !$head_lock.is_empty() {
                    sqlx::query($head_lock).execute(&mut *conn).await?;
                }
                let hint = if $use_hint { hint } else { None };
                let mut row = None;
                if let Some((head_id, head_hash)) = hint {
                    // The hinted head is this process's last commit. If another process appended
                    // since, entry head_id+1 exists and the insert fails: read the head instead.
                    let candidate = entry(head_id, head_hash)?;
                    match insert_audit(&mut *conn, &candidate).await {
                        Ok(()) => row = Some(candidate),
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                let row = match row {
                    Some(row) => row,
                    None => {
                        let head: Option<(i64, String)> =
                            sqlx::query_as("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
                                .fetch_optional(&mut *conn)
                                .await?;
                        let (head_id, head_hash) = head.unwrap_or_else(|| (0, hex::encode(audit::ZERO_HASH)));
                        let row = entry(head_id, head_hash)?;
                        insert_audit(&mut *conn, &row).await?;
                        row
                    }
                };
                for chunk in plan.events.chunks(CHUNK) {
                    QueryBuilder::<Db>::new("INSERT INTO events (case_id, seq, body, audit_id) ")
                        .push_values(chunk, |mut b, (seq, body)| {
                            b.push_bind(plan.case_id.clone())
                                .push_bind(*seq)
                                .push_bind(body.clone())
                                .push_bind(row.id);
                        })
                        .build()
                        .execute(&mut *conn)
                        .await?;
                }
                let mut effects_inserted = 0;
                for chunk in plan.outbox.chunks(CHUNK) {
                    effects_inserted += QueryBuilder::<Db>::new(
                        "INSERT INTO outbox (key, case_id, repo, action, is_publish, effect, state, next_attempt_at, created_at, updated_at) ",
                    )
                    .push_values(chunk, |mut b, o| {
                        b.push_bind(o.key.clone())
                            .push_bind(plan.case_id.clone())
                            .push_bind(o.repo.clone())
                            .push_bind(o.action.clone())
                            .push_bind(o.is_publish)
                            .push_bind(o.effect.clone())
                            .push_bind("pending")
                            .push_bind(plan.at)
                            .push_bind(plan.at)
                            .push_bind(plan.at);
                    })
                    .push(" ON CONFLICT (key) DO NOTHING")
                    .build()
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                }
                // A retried effect is due again under its own key; its attempts stay counted, so
                // the next one reconciles with GitHub before it writes.
                for key in &plan.retried {
                    sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_at = $2, last_error = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE key = $1 AND state = 'failed'")
                        .bind(key)
                        .bind(plan.at)
                        .execute(&mut *conn)
                        .await?;
                }
                notify(&mut *conn, &plan.case_id).await?;
                Ok(Written::Committed {
                    audit_id: row.id,
                    effects_inserted,
                    head: row.hash,
                })
            }

            /// Tells subscribers (PostgreSQL `LISTEN lockstep_changes`) that the case's events
            /// or outbox rows changed; delivered when the transaction commits. SQLite's
            /// subscribers watch `PRAGMA data_version` instead, so this is a no-op there.
            async fn notify(conn: &mut Conn, case_id: &str) -> Result<(), Error> {
                if !$notify.is_empty() {
                    sqlx::query($notify).bind(case_id).execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Writes a plan in its own transaction.
            pub(crate) async fn commit(write_pool: &Pool<Db>, cache: &CaseCache, plan: &Plan) -> Result<Written, Error> {
                let result = async {
                    let hint = cache.head();
                    if hint.is_some()
                        && let Some(written) = $fast_write(write_pool, plan, hint.clone()).await?
                    {
                        return Ok(written);
                    }
                    let mut tx = write_pool.begin_with($begin_write).await?;
                    let written = write(&mut tx, plan, hint).await?;
                    if matches!(written, Written::Committed { .. }) {
                        super::fail_before_commit(plan);
                        tx.commit().await?;
                    }
                    Ok(written)
                }
                .await;
                match &result {
                    Ok(Written::Committed { audit_id, head, .. }) => cache.set_head(Some((*audit_id, head.clone()))),
                    Ok(Written::DuplicateDelivery) => {}
                    Err(_) => cache.set_head(None),
                }
                result
            }

            pub(crate) async fn record_delivery(write_pool: &Pool<Db>, id: &str) -> Result<bool, Error> {
                let mut tx = write_pool.begin_with($begin_write).await?;
                let now = db_now(&mut tx).await?;
                let n = sqlx::query(
                    "INSERT INTO inbox (delivery_id, received_at) VALUES ($1, $2) ON CONFLICT (delivery_id) DO NOTHING",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            /// Records a dashboard session as signed out until `expires_at`; prunes the
            /// records of sessions that have expired anyway.
            pub(crate) async fn sign_out(write_pool: &Pool<Db>, hash: &str, expires_at: i64) -> Result<(), Error> {
                let mut tx = write_pool.begin_with($begin_write).await?;
                let now = db_now(&mut tx).await?;
                sqlx::query("DELETE FROM signed_out WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO signed_out (session_hash, expires_at) VALUES ($1, $2) ON CONFLICT (session_hash) DO NOTHING",
                )
                .bind(hash)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn signed_out(read: &Pool<Db>, hash: &str) -> Result<bool, Error> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signed_out WHERE session_hash = $1")
                    .bind(hash)
                    .fetch_one(read)
                    .await?;
                Ok(n > 0)
            }

            pub(crate) async fn delivery_seen(read: &Pool<Db>, id: &str) -> Result<bool, Error> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE delivery_id = $1")
                    .bind(id)
                    .fetch_one(read)
                    .await?;
                Ok(n > 0)
            }

            fn summaries(rows: Vec<<Db as sqlx::Database>::Row>) -> Result<Vec<CaseSummary>, Error> {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let id: String = r.try_get(0)?;
                    let status: String = r.try_get(5)?;
                    let until: Option<i64> = r.try_get(7)?;
                    out.push(CaseSummary {
                        id: parse_case_id(&id)?,
                        opened_at: parse_time(r.try_get(1)?, "opened_at")?,
                        updated_at: parse_time(r.try_get(2)?, "updated_at")?,
                        version: to_u64(r.try_get(3)?, "version")?,
                        title: r.try_get(4)?,
                        status: CaseStatus::parse(&status)
                            .ok_or_else(|| Error::corrupt(format!("case {id}: status {status:?}")))?,
                        embargo_state: r.try_get(6)?,
                        embargo_until: until.map(|u| parse_time(u, "embargo_until")).transpose()?,
                        repos: to_u64(r.try_get(8)?, "repos")?,
                    });
                }
                Ok(out)
            }

            /// The statements a pass runs, each through an index (a unit test reads SQLite's
            /// plans of them).
            pub(crate) const DUE_DEADLINES: &str = "SELECT case_id FROM cases WHERE embargo_state IN ('active', 'revise') AND embargo_until <= $1 ORDER BY embargo_until";
            pub(crate) const NEXT_DEADLINE: &str = "SELECT embargo_until FROM cases WHERE embargo_state IN ('active', 'revise') AND embargo_until IS NOT NULL ORDER BY embargo_until LIMIT 1";
            pub(crate) const NEXT_OUTBOX_DUE: &str = "SELECT next_attempt_at FROM outbox WHERE state IN ('pending', 'held', 'claimed') ORDER BY next_attempt_at LIMIT 1";
            pub(crate) const CLAIMING_WORKERS: &str = "SELECT DISTINCT lease_worker FROM outbox WHERE state IN ('pending', 'held', 'claimed') AND state = 'claimed' AND lease_worker IS NOT NULL AND lease_worker <> COALESCE($1, -1)";
            pub(crate) const OPEN_CASES: &str = "SELECT case_id, opened_at, updated_at, version, title, status, embargo_state, embargo_until, repos FROM cases WHERE status <> 'closed' ORDER BY opened_at, case_id";
            pub(crate) const CASES_PAGE_AFTER: &str = "SELECT case_id, opened_at, updated_at, version, title, status, embargo_state, embargo_until, repos FROM cases WHERE opened_at >= $1 AND (opened_at > $1 OR case_id > $2) ORDER BY opened_at, case_id LIMIT $3";

            const SUMMARY_COLUMNS: &str = "case_id, opened_at, updated_at, version, title, status, embargo_state, embargo_until, repos";

            pub(crate) async fn list_cases(read: &Pool<Db>) -> Result<Vec<CaseSummary>, Error> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM cases ORDER BY opened_at, case_id"
                )))
                .fetch_all(read)
                .await?;
                summaries(rows)
            }

            /// Cases that are not closed, oldest first (index `cases_open`).
            pub(crate) async fn list_open_cases(read: &Pool<Db>) -> Result<Vec<CaseSummary>, Error> {
                let rows = sqlx::query(OPEN_CASES)
                .fetch_all(read)
                .await?;
                summaries(rows)
            }

            /// Up to `limit` cases after the case `after` (in the order opened), through the
            /// index `cases_by_opened`. An unknown `after` → an empty page.
            pub(crate) async fn list_cases_page(read: &Pool<Db>, after: Option<&str>, limit: i64) -> Result<Vec<CaseSummary>, Error> {
                let rows = match after {
                    None => sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SUMMARY_COLUMNS} FROM cases ORDER BY opened_at, case_id LIMIT $1"
                    )))
                    .bind(limit)
                    .fetch_all(read)
                    .await?,
                    Some(after) => {
                        let opened: Option<i64> = sqlx::query_scalar("SELECT opened_at FROM cases WHERE case_id = $1")
                            .bind(after)
                            .fetch_optional(read)
                            .await?;
                        let Some(opened) = opened else {
                            return Ok(Vec::new());
                        };
                        sqlx::query(CASES_PAGE_AFTER)
                        .bind(opened)
                        .bind(after)
                        .bind(limit)
                        .fetch_all(read)
                        .await?
                    }
                };
                summaries(rows)
            }

            /// Open cases whose embargo deadline has passed by the database's clock (index
            /// `cases_deadline`).
            pub(crate) async fn due_deadlines(read: &Pool<Db>) -> Result<Vec<CaseId>, Error> {
                let mut conn = read.acquire().await?;
                let now = db_now(&mut conn).await?;
                let ids: Vec<String> = sqlx::query_scalar(DUE_DEADLINES)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
                ids.iter().map(|id| parse_case_id(id)).collect()
            }

            /// The earliest embargo deadline that can still fire and the earliest time an open
            /// outbox row is due (a retry, a held publication's re-check, a lease's end), each
            /// read from the front of its partial index.
            pub(crate) async fn next_due(read: &Pool<Db>) -> Result<Option<i64>, Error> {
                let deadline: Option<i64> = sqlx::query_scalar(NEXT_DEADLINE)
                .fetch_optional(read)
                .await?;
                let due: Option<i64> = sqlx::query_scalar(NEXT_OUTBOX_DUE)
                .fetch_optional(read)
                .await?;
                Ok(match (deadline, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                })
            }

            /// Registered workers, other than `me`, that hold claims (through the partial
            /// index `outbox_due`: open rows only).
            pub(crate) async fn claiming_workers(read: &Pool<Db>, me: Option<i64>) -> Result<Vec<i64>, Error> {
                Ok(sqlx::query_scalar(CLAIMING_WORKERS)
                .bind(me)
                .fetch_all(read)
                .await?)
            }

            /// Registered workers other than `me`.
            pub(crate) async fn workers(read: &Pool<Db>, me: i64) -> Result<Vec<i64>, Error> {
                Ok(sqlx::query_scalar("SELECT id FROM workers WHERE id <> $1 ORDER BY id")
                    .bind(me)
                    .fetch_all(read)
                    .await?)
            }

            /// Returns the claims of workers that died to pending at once, due now, with their
            /// epoch bumped (so a late result of theirs is refused as stale), and forgets the
            /// workers. Returns the cases touched.
            pub(crate) async fn release_dead(conn: &mut Conn, dead: &[i64], now: i64) -> Result<Vec<String>, Error> {
                let mut touched = Vec::new();
                for w in dead {
                    let released: Vec<String> = sqlx::query_scalar(concat!(
                        "UPDATE outbox SET state = 'pending', epoch = epoch + 1, lease_owner = NULL, lease_until = NULL, lease_worker = NULL, next_attempt_at = $1, updated_at = $1 ",
                        "WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'held', 'claimed') AND state = 'claimed' AND lease_worker = $2",
                        $skip_locked,
                        ") RETURNING case_id"
                    ))
                    .bind(now)
                    .bind(*w)
                    .fetch_all(&mut *conn)
                    .await?;
                    if !released.is_empty() {
                        tracing::info!(worker = w, claims = released.len(), "a worker died; its claims return to pending");
                    }
                    touched.extend(released);
                    sqlx::query("DELETE FROM workers WHERE id = $1").bind(*w).execute(&mut *conn).await?;
                }
                Ok(touched)
            }

            /// A claimed row whose lease has lapsed reads as pending, with no owner or lease:
            /// any claim takes it (and writes it back as pending first).
            const OUTBOX_COLUMNS: &str = concat!(
                "key, case_id, repo, action, ",
                "CASE WHEN state = 'claimed' AND lease_until <= (", $now, ") THEN 'pending' ELSE state END, ",
                "epoch, attempts, ",
                "CASE WHEN state = 'claimed' AND lease_until <= (", $now, ") THEN NULL ELSE lease_owner END, ",
                "CASE WHEN state = 'claimed' AND lease_until <= (", $now, ") THEN NULL ELSE lease_until END, ",
                "next_attempt_at, held_reason, last_error"
            );

            fn outbox_entry(r: &<Db as sqlx::Database>::Row) -> Result<OutboxEntry, Error> {
                let key: String = r.try_get(0)?;
                let case: String = r.try_get(1)?;
                let repo: String = r.try_get(2)?;
                let state: String = r.try_get(4)?;
                let lease_until: Option<i64> = r.try_get(8)?;
                Ok(OutboxEntry {
                    case: parse_case_id(&case)?,
                    repo: repo
                        .parse()
                        .map_err(|e| Error::corrupt(format!("outbox {key}: repo: {e}")))?,
                    action: r.try_get(3)?,
                    state: OutboxState::parse(&state)?,
                    epoch: to_u64(r.try_get(5)?, "epoch")?,
                    attempts: to_u64(r.try_get(6)?, "attempts")?,
                    lease_owner: r.try_get(7)?,
                    lease_until: lease_until.map(|l| parse_time(l, "lease_until")).transpose()?,
                    next_attempt_at: parse_time(r.try_get(9)?, "next_attempt_at")?,
                    held_reason: r.try_get(10)?,
                    last_error: r.try_get(11)?,
                    key,
                })
            }

            pub(crate) async fn outbox(read: &Pool<Db>, case_id: Option<&CaseId>) -> Result<Vec<OutboxEntry>, Error> {
                let rows = match case_id {
                    Some(c) => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE case_id = $1 ORDER BY id"
                        )))
                        .bind(c.as_str())
                        .fetch_all(read)
                        .await?
                    }
                    None => {
                        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id")))
                            .fetch_all(read)
                            .await?
                    }
                };
                rows.iter().map(outbox_entry).collect()
            }

            pub(crate) async fn outbox_one(read: &Pool<Db>, key: &str) -> Result<Option<OutboxEntry>, Error> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE key = $1")))
                    .bind(key)
                    .fetch_optional(read)
                    .await?;
                row.as_ref().map(outbox_entry).transpose()
            }

            /// Claims up to `limit` ready effects for `worker`. Publish effects pass the
            /// publication guard first, evaluated on the case folded inside this transaction
            /// at the database's time; refused ones are held, not claimed.
            pub(crate) async fn claim(
                write_pool: &Pool<Db>,
                worker: &str,
                worker_id: Option<i64>,
                dead: &[i64],
                lease_ms: i64,
                limit: i64,
                recheck_ms: i64,
            ) -> Result<Vec<Claim>, Error> {
                let mut tx = write_pool.begin_with($begin_write).await?;
                let now = db_now(&mut tx).await?;
                let now_ts = parse_time(now, "database clock")?;
                // Cases whose outbox rows this claim changes (PostgreSQL notifies them).
                let mut touched: Vec<String> = Vec::new();
                // Claims of workers known dead move on first, without waiting for their lease.
                touched.extend(release_dead(&mut tx, dead, now).await?);
                // Expired leases return their work to pending. The epoch moves on, so the
                // worker whose lease lapsed is fenced off (its result is refused as stale) from
                // now on, whether or not this claim takes the row. On PostgreSQL, rows another
                // claimer has locked are skipped, not waited for (it is releasing them too).
                // The repeated `state IN (…)` lets SQLite use the partial index.
                let released: Vec<String> = sqlx::query_scalar(concat!(
                    "UPDATE outbox SET state = 'pending', epoch = epoch + 1, lease_owner = NULL, lease_until = NULL, lease_worker = NULL, updated_at = $1 ",
                    "WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'held', 'claimed') AND state = 'claimed' AND next_attempt_at <= $1",
                    $skip_locked,
                    ") RETURNING case_id"
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                touched.extend(released);
                // Held publications whose case moved on are due again at once (on PostgreSQL,
                // skipping rows another claimer has locked: every claim runs this statement,
                // and concurrent claimers must not queue behind each other on it).
                let due_again: Vec<String> = sqlx::query_scalar(concat!(
                    "UPDATE outbox SET next_attempt_at = $1 WHERE id IN (SELECT o.id FROM outbox o WHERE o.state = 'held' AND o.next_attempt_at > $1 ",
                    "AND o.held_version < (SELECT c.version FROM cases c WHERE c.case_id = o.case_id)",
                    $skip_locked,
                    ") RETURNING case_id"
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                touched.extend(due_again);
                // Due: pending rows whose time came and held rows due for a re-check. (Claimed
                // rows with an expired lease were made pending above; the list matches the
                // partial index's.)
                let candidates: Vec<(i64, String, String, bool, String)> = sqlx::query_as(concat!(
                    "SELECT id, key, case_id, is_publish, effect FROM outbox ",
                    "WHERE state IN ('pending', 'held', 'claimed') AND next_attempt_at <= $1 ",
                    "ORDER BY next_attempt_at, id LIMIT $2",
                    $skip_locked
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let mut ids = Vec::with_capacity(candidates.len());
                let mut effects: HashMap<i64, Effect> = HashMap::with_capacity(candidates.len());
                let mut folded: HashMap<String, Result<(Case, i64), String>> = HashMap::new();
                for (id, key, case_id, is_publish, body) in candidates {
                    // Every candidate changes: failed, held, or claimed.
                    touched.push(case_id.clone());
                    let effect: Effect = match serde_json::from_str(&body) {
                        Ok(e) => e,
                        Err(err) => {
                            tracing::error!(%key, %err, "outbox row holds a corrupt effect; marking it failed");
                            sqlx::query("UPDATE outbox SET state = 'failed', last_error = $2, updated_at = $3 WHERE id = $1")
                                .bind(id)
                                .bind(format!("corrupt effect JSON: {err}"))
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }
                    };
                    if is_publish || effect.action.needs_guard() {
                        if !folded.contains_key(&case_id) {
                            let version: Option<i64> =
                                sqlx::query_scalar(concat!("SELECT version FROM cases WHERE case_id = $1", $share))
                                    .bind(&case_id)
                                    .fetch_optional(&mut *tx)
                                    .await?;
                            let rows = load_rows(&mut tx, &case_id).await?;
                            let result = match (version, replay(&case_id, rows)) {
                                (Some(v), Ok(case)) if i64::try_from(case.version).ok() == Some(v) => Ok((case, v)),
                                (Some(v), Ok(case)) => Err(format!(
                                    "the case row is at version {v} but its log at {}",
                                    case.version
                                )),
                                (None, _) => Err("the case does not exist".to_owned()),
                                (_, Err(e)) => Err(format!("the case does not fold: {e}")),
                            };
                            folded.insert(case_id.clone(), result);
                        }
                        let (verdict, version) = match folded.get(&case_id) {
                            Some(Ok((case, v))) => (case.effect_allowed(&key, now_ts), *v),
                            Some(Err(why)) => (Err(lockstep_core::Refusal { obsolete: false, why: why.clone() }), 0),
                            None => (Err(lockstep_core::Refusal { obsolete: false, why: "the case could not be read".to_owned() }), 0),
                        };
                        if let Err(lockstep_core::Refusal { obsolete: true, why }) = &verdict {
                            // Superseded (its fix changed, or its repository left): it must never
                            // run; a fresh request carries the current content.
                            tracing::info!(%key, %why, "publication is obsolete; it will not run");
                            sqlx::query("UPDATE outbox SET state = 'failed', last_error = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1")
                                .bind(id)
                                .bind(format!("obsolete: {why}"))
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }
                        if let Err(lockstep_core::Refusal { why, .. }) = verdict {
                            tracing::info!(%key, %why, "publication guard holds the effect");
                            sqlx::query(
                                "UPDATE outbox SET state = 'held', held_reason = $2, held_version = $3, next_attempt_at = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $1",
                            )
                            .bind(id)
                            .bind(why)
                            .bind(version)
                            .bind(now.saturating_add(recheck_ms))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            continue;
                        }
                    }
                    ids.push(id);
                    effects.insert(id, effect);
                }
                let mut claims = Vec::with_capacity(ids.len());
                if !ids.is_empty() {
                    let lease_until = now.saturating_add(lease_ms);
                    let list = serde_json::to_string(&ids).map_err(|e| Error::corrupt(e.to_string()))?;
                    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(concat!(
                        "UPDATE outbox SET state = 'claimed', epoch = epoch + 1, attempts = attempts + 1, ",
                        "lease_owner = $1, lease_until = $2, next_attempt_at = $2, held_reason = NULL, held_version = NULL, updated_at = $3, lease_worker = $5 ",
                        "WHERE id IN ",
                        $ids_in,
                        " RETURNING id, epoch, attempts"
                    ))
                    .bind(worker)
                    .bind(lease_until)
                    .bind(now)
                    .bind(list)
                    .bind(worker_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let lease_until = parse_time(lease_until, "lease_until")?;
                    for (id, epoch, attempts) in rows {
                        if let Some(effect) = effects.remove(&id) {
                            claims.push((
                                id,
                                Claim {
                                    effect,
                                    epoch: to_u64(epoch, "epoch")?,
                                    attempts: to_u64(attempts, "attempts")?,
                                    lease_until,
                                },
                            ));
                        }
                    }
                }
                touched.sort();
                touched.dedup();
                for case_id in &touched {
                    notify(&mut tx, case_id).await?;
                }
                tx.commit().await?;
                claims.sort_by_key(|(id, _)| *id);
                Ok(claims.into_iter().map(|(_, c)| c).collect())
            }

            /// Extends a lease, if the epoch is still current.
            pub(crate) async fn renew(write_pool: &Pool<Db>, key: &str, epoch: u64, lease_ms: i64) -> Result<i64, Error> {
                let mut tx = write_pool.begin_with($begin_write).await?;
                let now = db_now(&mut tx).await?;
                if let Err(e) = check_fence(&mut tx, key, epoch).await {
                    // Give the row lock back now, not when the pool next uses the connection:
                    // a claimer would skip the row until then.
                    let _ = tx.rollback().await;
                    return Err(e);
                }
                let until = now.saturating_add(lease_ms);
                sqlx::query("UPDATE outbox SET lease_until = $2, next_attempt_at = $2, updated_at = $3 WHERE key = $1")
                    .bind(key)
                    .bind(until)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(until)
            }

            /// Locks the outbox row and checks that `epoch` is current and the row claimed.
            /// Returns its case id.
            async fn check_fence(conn: &mut Conn, key: &str, epoch: u64) -> Result<String, Error> {
                let row: Option<(String, String, i64)> =
                    sqlx::query_as(concat!("SELECT case_id, state, epoch FROM outbox WHERE key = $1", $lock))
                        .bind(key)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((case_id, state, current)) = row else {
                    return Err(Error::UnknownEffect { key: key.to_owned() });
                };
                let current = to_u64(current, "epoch")?;
                if current != epoch {
                    return Err(Error::StaleEpoch {
                        key: key.to_owned(),
                        held: epoch,
                        current,
                    });
                }
                if state != "claimed" {
                    return Err(Error::NotClaimed { key: key.to_owned(), state });
                }
                Ok(case_id)
            }

            /// Records an effect's result: fences on the epoch, feeds the observation to the
            /// core, and commits its events, outbox rows, audit entry and the row's new state in
            /// one transaction.
            pub(crate) async fn complete(
                write_pool: &Pool<Db>,
                cache: &CaseCache,
                key: &str,
                epoch: u64,
                result: &EffectResult,
            ) -> Result<Completion, Error> {
                let mut tx = write_pool.begin_with($begin_write).await?;
                let now = db_now(&mut tx).await?;
                let case_id = match check_fence(&mut tx, key, epoch).await {
                    Ok(c) => c,
                    Err(e) => {
                        // A stale result must not keep the row locked until the pool next
                        // uses this connection: claimers skip locked rows.
                        let _ = tx.rollback().await;
                        return Err(e);
                    }
                };
                let version: Option<i64> = sqlx::query_scalar(concat!("SELECT version FROM cases WHERE case_id = $1", $lock))
                    .bind(&case_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let id = parse_case_id(&case_id)?;
                let Some(version) = version else {
                    return Err(Error::NotFound { case: id });
                };
                let version_u = to_u64(version, "case version")?;
                let mut case = match cache.get(&id, Some(version_u)) {
                    Some(c) => c,
                    None => replay(&case_id, load_rows(&mut tx, &case_id).await?)?,
                };
                if case.version != version_u {
                    return Err(Error::corrupt(format!(
                        "case {case_id}: the case row is at version {version} but its log at {}",
                        case.version
                    )));
                }
                let observation = match result {
                    EffectResult::Succeeded(outcome) => Observation::EffectSucceeded {
                        key: key.to_owned(),
                        outcome: outcome.clone(),
                    },
                    EffectResult::Failed { error, retry_after } => Observation::EffectFailed {
                        key: key.to_owned(),
                        retryable: retry_after.is_some(),
                        error: error.clone(),
                    },
                };
                let input = Input::Observation(observation);
                let now_ts = parse_time(now, "database clock")?;
                let before_version = case.version;
                let mut committed = None;
                let mut rejection = None;
                match case.handle(&Principal::automation(), input.clone(), now_ts) {
                    Ok(decision) => {
                        let plan = crate::plan(Some(before_version), &case, &decision, &input_json(&input)?, now, None)?;
                        cache.set_head(None);
                        let written = write(&mut tx, &plan, None).await?;
                        if let Written::Committed { audit_id, effects_inserted, .. } = written {
                            committed = Some(crate::types::Committed {
                                case: case.clone(),
                                events: decision.events,
                                audit_id: Some(to_u64(audit_id, "audit id")?),
                                effects_inserted,
                            });
                        }
                    }
                    Err(r) => {
                        tracing::warn!(%key, rejection = %r, "the core refused an effect's result");
                        rejection = Some(r);
                    }
                }
                let (state, next, error): (OutboxState, i64, Option<String>) = match result {
                    EffectResult::Succeeded(_) => (OutboxState::Done, 0, None),
                    EffectResult::Failed { error, retry_after: Some(after) } => (
                        OutboxState::Pending,
                        now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
                        Some(error.clone()),
                    ),
                    EffectResult::Failed { error, retry_after: None } => (OutboxState::Failed, 0, Some(error.clone())),
                };
                let error = match (&rejection, error) {
                    (Some(r), Some(e)) => Some(format!("{e} (the core refused the result: {r})")),
                    (Some(r), None) => Some(format!("the core refused the result: {r}")),
                    (None, e) => e,
                };
                sqlx::query(
                    "UPDATE outbox SET state = $2, next_attempt_at = $3, last_error = COALESCE($4, last_error), lease_owner = NULL, lease_until = NULL, lease_worker = NULL, updated_at = $5 WHERE key = $1",
                )
                .bind(key)
                .bind(state.as_str())
                .bind(next)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                notify(&mut tx, &case_id).await?;
                fail::fail_point!("record.before_commit");
                tx.commit().await?;
                match &committed {
                    Some(c) => cache.put(&c.case),
                    None => cache.remove(&id),
                }
                Ok(Completion {
                    state,
                    committed,
                    rejection,
                })
            }

            /// The pessimistic path of `transact`: the case is read, decided on and written
            /// in one write transaction holding its row (PostgreSQL: `FOR UPDATE`; SQLite: the
            /// write lock of `BEGIN IMMEDIATE`), so it cannot conflict.
            pub(crate) async fn transact_locked<F>(
                write_pool: &Pool<Db>,
                cache: &CaseCache,
                case_id: &CaseId,
                input: &str,
                delivery: Option<&str>,
                f: &mut F,
            ) -> Result<Option<crate::types::Committed>, Error>
            where
                F: FnMut(&mut Case, lockstep_core::Timestamp) -> Result<lockstep_core::Decision, lockstep_core::Rejection>,
            {
                let mut tx = write_pool.begin_with($begin_write).await?;
                if let Some(d) = delivery {
                    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE delivery_id = $1")
                        .bind(d)
                        .fetch_one(&mut *tx)
                        .await?;
                    if seen > 0 {
                        return Ok(None);
                    }
                }
                let now = db_now(&mut tx).await?;
                let version: Option<i64> = sqlx::query_scalar(concat!("SELECT version FROM cases WHERE case_id = $1", $lock))
                    .bind(case_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(version) = version else {
                    return Err(Error::NotFound { case: case_id.clone() });
                };
                let version = to_u64(version, "case version")?;
                let mut case = match cache.get(case_id, Some(version)) {
                    Some(c) => c,
                    None => replay(case_id.as_str(), load_rows(&mut tx, case_id.as_str()).await?)?,
                };
                if case.version != version {
                    return Err(Error::corrupt(format!(
                        "case {case_id}: the case row is at version {version} but its log at {}",
                        case.version
                    )));
                }
                let decision = f(&mut case, parse_time(now, "database clock")?)?;
                if decision.events.is_empty() {
                    if let Some(d) = delivery {
                        sqlx::query("INSERT INTO inbox (delivery_id, received_at, case_id) VALUES ($1, $2, $3)")
                            .bind(d)
                            .bind(now)
                            .bind(case_id.as_str())
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                    }
                    return Ok(Some(crate::types::Committed {
                        case,
                        events: Vec::new(),
                        audit_id: None,
                        effects_inserted: 0,
                    }));
                }
                let plan = crate::plan(Some(version), &case, &decision, input, now, delivery.map(str::to_owned))?;
                cache.set_head(None);
                match write(&mut tx, &plan, None).await? {
                    Written::Committed { audit_id, effects_inserted, .. } => {
                        super::fail_before_commit(&plan);
                        tx.commit().await?;
                        cache.put(&case);
                        Ok(Some(crate::types::Committed {
                            case,
                            events: decision.events,
                            audit_id: Some(to_u64(audit_id, "audit id")?),
                            effects_inserted,
                        }))
                    }
                    Written::DuplicateDelivery => Ok(None),
                }
            }

            fn input_json(input: &Input) -> Result<String, Error> {
                serde_json::to_string(input).map_err(|e| Error::corrupt(format!("input does not serialise: {e}")))
            }

            /// Reads the trail in one snapshot and recomputes it.
            pub(crate) async fn verify(read: &Pool<Db>, checkpoint: Option<&audit::Checkpoint>) -> Result<VerifyReport, Error> {
                const PAGE: i64 = 1000;
                let mut tx = read.begin_with($begin_read).await?;
                let mut verifier = Verifier::new(checkpoint);
                let mut pending: VecDeque<EventRow> = VecDeque::new();
                let mut cursor: (i64, Vec<u8>, i64) = (i64::MIN, Vec::new(), i64::MIN);
                let mut events_done = false;
                let mut last_id = i64::MIN;
                // Text columns are read as the bytes stored: an edit that leaves bytes that are
                // not UTF-8 must show as tampering, naming the entry, not as a decode error.
                type Page = Vec<(i64, i64, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64, Vec<u8>, Vec<u8>, Vec<u8>)>;
                loop {
                    let page: Page =
                        sqlx::query_as(concat!(
                            "SELECT id, at, ",
                            $bytes!("case_id"), ", ", $bytes!("actor"), ", ", $bytes!("authority"), ", ", $bytes!("input"),
                            ", seq_from, seq_to, ",
                            $bytes!("events_hash"), ", ", $bytes!("prev_hash"), ", ", $bytes!("hash"),
                            " FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                        ))
                        .bind(last_id)
                        .bind(PAGE)
                        .fetch_all(&mut *tx)
                        .await?;
                    if page.is_empty() {
                        break;
                    }
                    for (id, at, case_id, actor, authority, input, seq_from, seq_to, events_hash, prev_hash, hash) in page {
                        last_id = id;
                        let row = AuditRow {
                            id,
                            at,
                            case_id,
                            actor,
                            authority,
                            input,
                            seq_from,
                            seq_to,
                            events_hash,
                            prev_hash,
                            hash,
                        };
                        verifier.position(&row)?;
                        // Gather the event rows that name this entry.
                        let mut mine = Vec::new();
                        loop {
                            if pending.is_empty() && !events_done {
                                let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(concat!(
                                    "SELECT audit_id, ", $bytes!("case_id"), ", seq, ", $bytes!("body"),
                                    " FROM events WHERE (audit_id, case_id, seq) > ($1, ", $text_param!("$2"), ", $3) ORDER BY audit_id, case_id, seq LIMIT $4",
                                ))
                                .bind(cursor.0)
                                .bind(cursor.1.clone())
                                .bind(cursor.2)
                                .bind(PAGE)
                                .fetch_all(&mut *tx)
                                .await?;
                                if (rows.len() as i64) < PAGE {
                                    events_done = true;
                                }
                                if let Some((a, c, s, _)) = rows.last() {
                                    cursor = (*a, c.clone(), *s);
                                }
                                pending.extend(rows.into_iter().map(|(audit_id, case_id, seq, body)| EventRow {
                                    audit_id,
                                    case_id,
                                    seq,
                                    body,
                                }));
                            }
                            match pending.front() {
                                Some(e) if e.audit_id < row.id => {
                                    return Err(audit::VerifyFailure::event(
                                        e,
                                        format!("names audit entry {} which does not cover it", e.audit_id),
                                    ));
                                }
                                Some(e) if e.audit_id == row.id => {
                                    if let Some(e) = pending.pop_front() {
                                        mine.push(e);
                                    }
                                }
                                _ => break,
                            }
                        }
                        verifier.entry(&row, &mine)?;
                    }
                }
                // Events after the last entry.
                if pending.is_empty() && !events_done {
                    let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(concat!(
                        "SELECT audit_id, ", $bytes!("case_id"), ", seq, ", $bytes!("body"),
                        " FROM events WHERE (audit_id, case_id, seq) > ($1, ", $text_param!("$2"), ", $3) ORDER BY audit_id, case_id, seq LIMIT 1",
                    ))
                    .bind(cursor.0)
                    .bind(cursor.1.clone())
                    .bind(cursor.2)
                    .fetch_all(&mut *tx)
                    .await?;
                    pending.extend(rows.into_iter().map(|(audit_id, case_id, seq, body)| EventRow {
                        audit_id,
                        case_id,
                        seq,
                        body,
                    }));
                }
                if let Some(e) = pending.front() {
                    return Err(audit::VerifyFailure::event(
                        e,
                        format!("names audit entry {} which does not exist", e.audit_id),
                    ));
                }
                let cases: Vec<(Vec<u8>, i64)> = sqlx::query_as(concat!("SELECT ", $bytes!("case_id"), ", version FROM cases ORDER BY case_id"))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollback().await?;
                verifier.finish(&cases)
            }
        }
    };
}

backend! {
    mod sqlite;
    db = sqlx::Sqlite;
    begin_write = "BEGIN IMMEDIATE";
    begin_read = "BEGIN";
    now = "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
    local_clock = true;
    head_lock = "";
    use_hint = true;
    fast_write = super::fast::sqlite;
    lock = "";
    share = "";
    skip_locked = "";
    ids_in = "(SELECT value FROM json_each($4))";
    migrations_table = "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')";
    foreign_tables = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
    bytes = sqlite_bytes;
    text_param = sqlite_text_param;
    notify = "";
}

backend! {
    mod postgres;
    db = sqlx::Postgres;
    begin_write = "BEGIN";
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    now = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
    local_clock = false;
    head_lock = "SELECT pg_advisory_xact_lock(7012026161)";
    use_hint = false;
    fast_write = super::fast::none;
    lock = " FOR UPDATE";
    share = " FOR SHARE";
    skip_locked = " FOR UPDATE SKIP LOCKED";
    ids_in = "(SELECT jsonb_array_elements_text($4::jsonb)::BIGINT)";
    migrations_table = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";
    foreign_tables = "SELECT 0::BIGINT";
    bytes = pg_bytes;
    text_param = pg_text_param;
    notify = "SELECT pg_notify('lockstep_changes', $1)";
}
