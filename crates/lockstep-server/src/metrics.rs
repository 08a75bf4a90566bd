//! Prometheus metrics, hand-rolled: a few counters and a latency histogram kept in memory,
//! and gauges read from the store when `/metrics` is scraped. Labels never carry case ids,
//! logins, tokens or advisory text: routes are templates (`/api/cases/{id}`), webhook events
//! are one of a fixed set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use lockstep_store::{CaseStatus, OutboxState, Store};

/// Upper bounds of the request-latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    webhooks: BTreeMap<(&'static str, &'static str), u64>,
    commands: BTreeMap<(&'static str, &'static str), u64>,
}

/// The server's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

/// What became of a command (HTTP or derived from a webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandOutcome {
    /// Events were committed.
    Committed,
    /// Accepted, but it changed nothing.
    Unchanged,
    /// The core refused it as not authorized.
    Refused,
    /// The core refused it for another reason.
    Rejected,
    /// The store or GitHub failed.
    Error,
}

impl CommandOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }
}

/// The webhook events counted by name; anything else counts as `other`.
pub(crate) fn event_label(event: &str) -> &'static str {
    match event {
        "repository_advisory" => "repository_advisory",
        "release" => "release",
        "ping" => "ping",
        "security_advisory" => "security_advisory",
        _ => "other",
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut m = self.lock();
        *m.requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let h = m.latency.entry(route.to_owned()).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub(crate) fn webhook(&self, event: &'static str, outcome: &'static str) {
        *self.lock().webhooks.entry((event, outcome)).or_default() += 1;
    }

    pub(crate) fn command(&self, command: &'static str, outcome: CommandOutcome) {
        *self
            .lock()
            .commands
            .entry((command, outcome.as_str()))
            .or_default() += 1;
    }

    /// The exposition text, with the store's gauges read now.
    pub(crate) async fn render(&self, store: &Store, identity_lookups: u64) -> String {
        let mut out = String::new();
        {
            let m = self.lock();
            out.push_str(
                "# HELP lockstep_http_requests_total HTTP requests by route template, method and status.\n\
                 # TYPE lockstep_http_requests_total counter\n",
            );
            for ((route, method, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "lockstep_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
            out.push_str(
                "# HELP lockstep_http_request_duration_seconds HTTP request latency by route template.\n\
                 # TYPE lockstep_http_request_duration_seconds histogram\n",
            );
            for (route, h) in &m.latency {
                let route = escape(route);
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "lockstep_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "lockstep_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     lockstep_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     lockstep_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
            out.push_str(
                "# HELP lockstep_webhook_deliveries_total Webhook deliveries by event and outcome.\n\
                 # TYPE lockstep_webhook_deliveries_total counter\n",
            );
            for ((event, outcome), n) in &m.webhooks {
                let _ = writeln!(
                    out,
                    "lockstep_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
                );
            }
            out.push_str(
                "# HELP lockstep_commands_total Commands submitted to the core, by command and outcome.\n\
                 # TYPE lockstep_commands_total counter\n",
            );
            for ((command, outcome), n) in &m.commands {
                let _ = writeln!(
                    out,
                    "lockstep_commands_total{{command=\"{command}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP lockstep_identity_lookups_total Callers resolved through GitHub (principal cache misses).\n\
             # TYPE lockstep_identity_lookups_total counter\n\
             lockstep_identity_lookups_total {identity_lookups}"
        );

        // Gauges from the store, computed on scrape.
        let cases = store.list_cases().await;
        let outbox = store.outbox(None).await;
        let up = cases.is_ok() && outbox.is_ok();
        let _ = writeln!(
            out,
            "# HELP lockstep_store_up Whether the store answered this scrape.\n\
             # TYPE lockstep_store_up gauge\n\
             lockstep_store_up {}",
            u8::from(up)
        );
        if let Ok(cases) = cases {
            let mut by_status: BTreeMap<&'static str, u64> = [
                CaseStatus::Embargoed,
                CaseStatus::Open,
                CaseStatus::Releasing,
                CaseStatus::Closed,
            ]
            .into_iter()
            .map(|s| (s.as_str(), 0))
            .collect();
            for c in &cases {
                *by_status.entry(c.status.as_str()).or_default() += 1;
            }
            let open = cases
                .iter()
                .filter(|c| c.status != CaseStatus::Closed)
                .count();
            out.push_str("# HELP lockstep_cases Cases by status.\n# TYPE lockstep_cases gauge\n");
            for (status, n) in by_status {
                let _ = writeln!(out, "lockstep_cases{{status=\"{status}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP lockstep_open_cases Cases not closed.\n\
                 # TYPE lockstep_open_cases gauge\n\
                 lockstep_open_cases {open}"
            );
            // Published advisories with no reviewed global copy past the workflow's
            // alert_after_hours (as the propagation watch last judged them).
            let mut lagging = 0u64;
            for c in cases.iter().filter(|c| c.status != CaseStatus::Closed) {
                if let Ok(case) = store.case(&c.id).await {
                    lagging += case
                        .scope()
                        .filter(|(_, p)| {
                            matches!(
                                p.global,
                                Some(lockstep_core::propagation::GlobalCopy::Lagging)
                            )
                        })
                        .count() as u64;
                }
            }
            let _ = writeln!(
                out,
                "# HELP lockstep_advisories_lagging_global Published advisories with no reviewed copy in GitHub's global database past alert_after_hours.\n\
                 # TYPE lockstep_advisories_lagging_global gauge\n\
                 lockstep_advisories_lagging_global {lagging}"
            );
        }
        if let Ok(rows) = outbox {
            let mut by_state: BTreeMap<&'static str, u64> = [
                OutboxState::Pending,
                OutboxState::Held,
                OutboxState::Claimed,
                OutboxState::Done,
                OutboxState::Failed,
            ]
            .into_iter()
            .map(|s| (s.as_str(), 0))
            .collect();
            for r in &rows {
                *by_state.entry(r.state.as_str()).or_default() += 1;
            }
            out.push_str(
                "# HELP lockstep_outbox_rows Outbox rows by state.\n# TYPE lockstep_outbox_rows gauge\n",
            );
            for (state, n) in by_state {
                let _ = writeln!(out, "lockstep_outbox_rows{{state=\"{state}\"}} {n}");
            }
        }
        out
    }
}
