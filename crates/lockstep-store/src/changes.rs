//! Change notifications across processes: a long-running process (`lockstep serve`) learns
//! that anyone, in any process, committed to the store, without polling its tables.
//!
//! - PostgreSQL: every write transaction that appends events or changes outbox rows runs
//!   `pg_notify('lockstep_changes', case_id)` (delivered at commit); a subscriber holds a
//!   `LISTEN lockstep_changes` connection of its own.
//! - SQLite: a subscriber polls `PRAGMA data_version` on a connection of its own, which never
//!   writes ([`StoreOptions::change_poll`](crate::StoreOptions::change_poll), 250 ms by
//!   default). The value changes only when another connection commits (in this process or
//!   another), and reading it touches no table.
//!
//! Either way a background task bumps a [`tokio::sync::watch`] counter, so any number of
//! commits between two calls of [`Changes::changed`] wake it once.

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::watch;

use crate::error::Error;

/// The PostgreSQL channel commits are announced on (the payload is the case id).
pub(crate) const CHANNEL: &str = "lockstep_changes";

/// A subscription to commits made by anyone (this process or another) to the store. From
/// [`Store::subscribe`](crate::Store::subscribe).
///
/// [`changed`](Changes::changed) resolves once something was committed after the
/// subscription was made or after the previous call returned. It may resolve spuriously (a
/// lost and re-made connection counts as a change, since notifications may have been missed;
/// on SQLite any commit counts, including one that only recorded a webhook delivery); it
/// never misses a commit that appended events or changed the outbox. Dropping it stops the
/// watcher.
#[derive(Debug)]
pub struct Changes {
    rx: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Changes {
    /// Waits until something was committed since the subscription was made or since the
    /// previous call returned. Cancel-safe (fit for `tokio::select!`).
    pub async fn changed(&mut self) -> Result<(), Error> {
        self.rx.changed().await.map_err(|_| Error::Changes {
            why: "the watcher stopped".into(),
        })
    }

    /// Forgets the commits seen so far: the next [`changed`](Changes::changed) waits for a
    /// later one. Call it before doing the work a change asks for, so that a commit made
    /// during the work still wakes the next wait.
    pub fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut *conn)
        .await
}

/// Watches `PRAGMA data_version` on a connection of its own.
pub(crate) async fn sqlite(
    options: SqliteConnectOptions,
    interval: Duration,
) -> Result<Changes, Error> {
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut last = data_version(&mut conn).await?;
    let (tx, rx) = watch::channel(0u64);
    let interval = interval.max(Duration::from_millis(1));
    let task = tokio::spawn(async move {
        let mut conn = Some(conn);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(c) = conn.as_mut() else {
                // Reconnect; the new connection's counter is a new baseline, and a commit
                // may have been missed meanwhile.
                match SqliteConnection::connect_with(&options).await {
                    Ok(mut c) => match data_version(&mut c).await {
                        Ok(v) => {
                            last = v;
                            conn = Some(c);
                            bump(&tx);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change watcher: cannot read data_version")
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "change watcher: cannot reconnect"),
                }
                continue;
            };
            match data_version(c).await {
                Ok(v) if v != last => {
                    last = v;
                    bump(&tx);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "change watcher: cannot read data_version; reconnecting");
                    conn = None;
                }
            }
        }
    });
    Ok(Changes { rx, task })
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Listens on [`CHANNEL`] through a one-connection pool of its own (the store's pool keeps
/// all its connections).
pub(crate) async fn postgres(pool: &PgPool) -> Result<Changes, Error> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let first = listen(&own).await?;
    let (tx, rx) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        const FIRST_BACKOFF: Duration = Duration::from_millis(100);
        let mut listener = Some(first);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Some(l) = listener.as_mut() else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                match listen(&own).await {
                    Ok(l) => {
                        listener = Some(l);
                        backoff = FIRST_BACKOFF;
                        // Listening again: anything committed meanwhile went unannounced.
                        bump(&tx);
                    }
                    Err(e) => tracing::warn!(error = %e, "change listener: cannot reconnect"),
                }
                continue;
            };
            match l.try_recv().await {
                Ok(Some(_)) => bump(&tx),
                // The connection was lost and re-made (listening again): notifications may
                // have been missed.
                Ok(None) => bump(&tx),
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; reconnecting");
                    listener = None;
                }
            }
        }
    });
    Ok(Changes { rx, task })
}
