//! Live updates: `GET /cases/{id}/events`, a stream of server-sent events that says
//! `event: changed` with the case's new version whenever it changes. It carries no case
//! content: the page's script fetches the page again (same session, same checks) and swaps
//! the parts that changed.
//!
//! One subscription to the store's change notifications serves every stream of the process
//! (PostgreSQL `LISTEN lockstep_changes`, fed by `pg_notify` in every write transaction;
//! SQLite: `PRAGMA data_version` polled), so commits by anyone (this process, the CLI,
//! another instance, the release runtime) reach every open page.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use lockstep_store::Store;
use tokio::sync::{OnceCell, watch};

use super::pages;
use super::session::{MaybeSession, unix_now};
use crate::Shared;
use crate::api;
use crate::auth::Caller;

/// The process's one subscription, fanned out to every stream.
#[derive(Default)]
pub(crate) struct Hub {
    tx: OnceCell<watch::Sender<u64>>,
}

impl Hub {
    async fn receiver(&self, store: &Store) -> Result<watch::Receiver<u64>, lockstep_store::Error> {
        let tx = self
            .tx
            .get_or_try_init(|| async {
                let mut changes = store.subscribe().await?;
                let (tx, _) = watch::channel(0u64);
                let bump = tx.clone();
                let store = store.clone();
                tokio::spawn(async move {
                    loop {
                        match changes.changed().await {
                            Ok(()) => bump.send_modify(|n| *n = n.wrapping_add(1)),
                            Err(e) => {
                                tracing::warn!(error = %e, "live updates: the change watcher stopped; subscribing again");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                match store.subscribe().await {
                                    Ok(c) => {
                                        changes = c;
                                        bump.send_modify(|n| *n = n.wrapping_add(1));
                                    }
                                    Err(e) => tracing::warn!(error = %e, "live updates: cannot subscribe"),
                                }
                            }
                        }
                    }
                });
                Ok::<_, lockstep_store::Error>(tx)
            })
            .await?;
        Ok(tx.subscribe())
    }
}

/// `GET /cases/{id}/events`.
pub(crate) async fn events(
    State(app): State<Shared>,
    MaybeSession(session): MaybeSession,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = session else {
        return pages::error_page(StatusCode::UNAUTHORIZED, "Sign in again.");
    };
    let Some(login) = session.login() else {
        return pages::error_page(StatusCode::UNAUTHORIZED, "Sign in again.");
    };
    let case = match api::readable(&app, &Caller::Session(login), &id).await {
        Ok(c) => c,
        Err(e) => return pages::case_error(e),
    };
    let rx = match app.web.hub.receiver(&app.store).await {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!(error = %e, "live updates unavailable");
            return pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Live updates are unavailable.",
            );
        }
    };
    let ends =
        tokio::time::Instant::now() + Duration::from_secs(session.exp.saturating_sub(unix_now()));
    let first = Event::default()
        .event("version")
        .data(case.version.to_string());
    let state = (rx, app.clone(), case.id.clone(), case.version, Some(first));
    let stream = futures::stream::unfold(state, move |(mut rx, app, id, last, first)| async move {
        if let Some(ev) = first {
            return Some((Ok::<_, Infallible>(ev), (rx, app, id, last, None)));
        }
        loop {
            // The stream ends with the session.
            match tokio::time::timeout_at(ends, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
            if let Ok(case) = app.store.case(&id).await
                && case.version != last
            {
                let ev = Event::default()
                    .event("changed")
                    .data(case.version.to_string());
                return Some((Ok(ev), (rx, app, id, case.version, None)));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
