//! Worker liveness that the database or the kernel knows.
//!
//! A runtime registers a [`Worker`] (a row in `workers`, with an id never reused) and holds a
//! lock that is released when it dies:
//!
//! - PostgreSQL: a session-level advisory lock on `(LOCK_CLASS, id)`, held by a connection of
//!   the worker's own. The server releases it when the session ends (the process died, the
//!   connection dropped).
//! - SQLite: an exclusive `flock` on `<database>.worker-<id>.lock` beside the database. The
//!   kernel releases it when the process dies.
//!
//! Claims made through [`Store::claim_as`](crate::Store::claim_as) carry the worker's id. Before
//! each such claim the store asks, for every other worker holding claims, whether its lock is
//! still held (PostgreSQL: `pg_try_advisory_xact_lock`; SQLite: a non-blocking `flock`); the
//! claims of a worker whose lock is free return to pending at once, due now, with their epoch
//! bumped, so its late results are refused as stale. A dead worker never comes back: a
//! process whose lock was lost registers again under a new id.
//!
//! The lease stays as the fallback for a worker that is alive (its lock held) but hung, and
//! for claims made without a registered worker.

use std::path::{Path, PathBuf};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::SqlitePool;

use crate::error::Error;

/// The first key of the advisory locks that mark live workers (0x4C4B5354, `LKST`).
pub(crate) const LOCK_CLASS: i32 = 1_280_004_948;

/// How often a PostgreSQL worker checks its lock's connection, and how long a check may take.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
const WATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a PostgreSQL worker's lock must be seen free before its claims move on. A process
/// that is alive but lost its lock's connection (the database restarted, the connection was
/// dropped) notices within `WATCH_EVERY + WATCH_TIMEOUT` and drops its unsent work first, so
/// no write of its lands after another worker took its claims over. (An SQLite worker's
/// `flock` cannot be lost while its process lives: no grace is needed there.)
pub(crate) const POSTGRES_GRACE: std::time::Duration = std::time::Duration::from_millis(1000);

enum Lock {
    /// The session holding the advisory lock is watched by a task that flips `lost` (for good)
    /// when the connection fails; the task owns the connection and ends with the worker.
    Postgres {
        lost: tokio::sync::watch::Receiver<bool>,
        task: tokio::task::JoinHandle<()>,
    },
    /// The open lock file (the lock lives as long as it is open).
    File { _file: std::fs::File },
    /// An in-memory database: nothing outside this process can take over its work.
    None,
}

/// A registered worker: its claims move on as soon as it dies. From
/// [`Store::register_worker`](crate::Store::register_worker). Dropping it releases its lock
/// (its claims then move on at the next claim by anyone).
pub struct Worker {
    id: Option<i64>,
    name: String,
    lock: Lock,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Worker {
    /// The worker's id (`None` on an in-memory database, where claims rely on their lease).
    pub fn id(&self) -> Option<i64> {
        self.id
    }

    /// The name recorded as the owner of its claims.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the worker still holds its lock. On PostgreSQL a watcher checks the lock's
    /// connection every 200 ms: once it failed, the lock is gone for good and other workers
    /// take its claims over after a grace of a second, so the runtime drops its unsent work
    /// (see [`lost`](Self::lost)) and registers again before it claims more.
    pub async fn alive(&self) -> bool {
        match &self.lock {
            Lock::Postgres { lost, .. } => !*lost.borrow(),
            Lock::File { .. } | Lock::None => true,
        }
    }

    /// Resolves once the worker has lost its lock (never on SQLite, where the lock lives as
    /// long as the process). Work not yet sent should then be dropped: its claims are about to
    /// move on.
    pub async fn lost(&self) {
        match &self.lock {
            Lock::Postgres { lost, .. } => {
                let mut rx = lost.clone();
                let _ = rx.wait_for(|l| *l).await;
                if !*rx.borrow() {
                    // The watcher ended without a verdict (the worker is being dropped).
                    std::future::pending::<()>().await;
                }
            }
            Lock::File { .. } | Lock::None => std::future::pending().await,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Lock::Postgres { task, .. } = &self.lock {
            // Dropping the task drops its connection: the session ends, the lock is free.
            task.abort();
        }
    }
}

/// Watches the lock's connection; flips `lost` when it fails or hangs.
fn watch(
    mut conn: PgConnection,
) -> (
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            match tokio::time::timeout(WATCH_TIMEOUT, conn.ping()).await {
                Ok(Ok(())) => {}
                _ => {
                    tracing::warn!("this worker's lock connection failed; its claims will move on");
                    let _ = tx.send(true);
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// Takes an exclusive `flock` on `file` without waiting: `true` if taken (until the file is
/// closed), `false` if another open file holds it.
#[cfg(unix)]
fn try_flock(file: &std::fs::File) -> std::io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without `flock`, workers cannot be registered on SQLite; claims rely on their lease.
#[cfg(not(unix))]
fn try_flock(_file: &std::fs::File) -> std::io::Result<bool> {
    Err(std::io::Error::other(
        "worker lock files need flock (a Unix system)",
    ))
}

/// The lock file of worker `id` beside the SQLite database at `db`.
pub(crate) fn lock_path(db: &Path, id: i64) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".worker-{id}.lock"));
    PathBuf::from(name)
}

pub(crate) async fn register_postgres(pool: &PgPool, name: &str) -> Result<Worker, Error> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    // The row becomes visible only with the lock already held: nobody can see the worker
    // without its lock.
    let mut tx = conn.begin().await?;
    let now = crate::backend::postgres::db_now(&mut tx).await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO workers (name, started_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("SELECT pg_advisory_lock($1, ($2 & 2147483647)::int)")
        .bind(LOCK_CLASS)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Worker {
        id: Some(id),
        name: name.to_owned(),
        lock: {
            let (lost, task) = watch(conn);
            Lock::Postgres { lost, task }
        },
    })
}

pub(crate) async fn register_sqlite(
    pool: &SqlitePool,
    db: Option<&Path>,
    name: &str,
) -> Result<Worker, Error> {
    let Some(db) = db else {
        return Ok(Worker {
            id: None,
            name: name.to_owned(),
            lock: Lock::None,
        });
    };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let now = crate::backend::sqlite::db_now(&mut tx).await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO workers (name, started_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
    // Under the write lock, so no claimer sees the row before the file is locked.
    let path = lock_path(db, id);
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    if !try_flock(&file).map_err(io)? {
        return Err(io(std::io::Error::other(
            "another process holds this new worker's lock file",
        )));
    }
    tx.commit().await?;
    Ok(Worker {
        id: Some(id),
        name: name.to_owned(),
        lock: Lock::File { _file: file },
    })
}

/// Of the workers `ids`, those whose lock is free: they died. Their PostgreSQL lock is taken
/// for an instant (a statement of its own) and given back.
pub(crate) async fn dead_postgres(pool: &PgPool, ids: &[i64]) -> Result<Vec<i64>, Error> {
    let mut dead = Vec::new();
    for id in ids {
        let free: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, ($2 & 2147483647)::int)")
                .bind(LOCK_CLASS)
                .bind(*id)
                .fetch_one(pool)
                .await?;
        if free {
            dead.push(*id);
        }
    }
    Ok(dead)
}

/// Of the workers `ids`, those whose lock file is missing or not locked: they died.
pub(crate) fn dead_sqlite(db: &Path, ids: &[i64]) -> Vec<i64> {
    let mut dead = Vec::new();
    for id in ids {
        let path = lock_path(db, *id);
        match std::fs::File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => dead.push(*id),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a worker's lock file; its claims wait for their lease");
            }
            Ok(file) => match try_flock(&file) {
                // Given back when `file` closes.
                Ok(true) => dead.push(*id),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot test a worker's lock file; its claims wait for their lease");
                }
            },
        }
    }
    dead
}

/// Removes the lock files of workers found dead (after their claims were released).
pub(crate) fn remove_lock_files(db: &Path, ids: &[i64]) {
    for id in ids {
        let _ = std::fs::remove_file(lock_path(db, *id));
    }
}
