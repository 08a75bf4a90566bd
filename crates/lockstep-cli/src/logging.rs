//! Logs: tracing, human-readable on a terminal, JSON otherwise. `RUST_LOG` filters; the
//! default shows INFO from Lockstep's crates. Embargoed details are logged at DEBUG at most.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,lockstep=info,lockstep_runtime=info,lockstep_server=info,lockstep_store=info,lockstep_github=info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

/// Logs for the client commands (case commands): none unless `RUST_LOG` asks, since their
/// output is the answer and an error is one line; `RUST_LOG=lockstep=debug` shows, for
/// example, which token is used.
pub(crate) fn init_client() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
