//! Response observers: a callback that sees every API response the simulator produces
//! (including the ones a reset-after-apply never delivers), so a test harness can check
//! each one, for example against GitHub's OpenAPI description.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::ledger::LedgerEntry;

/// One API response as the simulator produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// HTTP method.
    pub method: String,
    /// Path and query of the request.
    pub path: String,
    /// Operation name, as in the ledger (`create`, `list`, `get_user`, `not_found`, …).
    pub op: String,
    /// Status (for a reset-after-apply, the status that was never sent).
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The JSON body (`None` for a body-less response such as a 304).
    pub body: Option<Value>,
    /// False when the connection was dropped instead (reset after apply).
    pub delivered: bool,
}

impl Observed {
    pub(crate) fn new(
        entry: &LedgerEntry,
        headers: &[(&'static str, String)],
        body: Option<&Value>,
    ) -> Self {
        Self {
            method: entry.method.clone(),
            path: entry.path.clone(),
            op: entry.op.clone(),
            status: entry.status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: body.cloned(),
            delivered: entry.delivered,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A registered observer.
#[derive(Clone)]
pub(crate) struct Observer(pub(crate) Arc<dyn Fn(&Observed) + Send + Sync>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
