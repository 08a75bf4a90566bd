//! Intake without webhooks: the runtime lists the private vulnerability reports awaiting
//! triage (`?state=triage`, conditional GETs through the adapter's read pacing) of every
//! repository of the workflows it was given, no more often than its interval, and records
//! each once (the store ignores a report it knows, whichever path saw it first). It also
//! closes on GitHub the advisories of rejected reports.

use std::time::Duration;

use lockstep_core::engine::intake::Report;
use lockstep_core::vuln::{Credit, Rating, Severity};
use lockstep_core::{CweId, GhsaId, Login, RepoId, Timestamp};
use lockstep_github as gh;
use lockstep_store::{ReportSeen, Store};

/// What the runtime polls for reports, and how often.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// The repositories of the workflows.
    pub repos: Vec<RepoId>,
    /// The least time between two polls of `serve` (default 5 minutes). `run --once` polls
    /// every time.
    pub interval: Duration,
}

impl IntakeOptions {
    /// The default interval between polls.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
}

/// The report a `triage` advisory of `repo` is, as first seen at `now`; `None` if it is not
/// in triage or names no reporter.
pub fn report_from_advisory(repo: &RepoId, a: &gh::Advisory, now: Timestamp) -> Option<Report> {
    if a.state != gh::AdvisoryState::Triage {
        return None;
    }
    let ghsa: GhsaId = a.ghsa_id.parse().ok()?;
    let credits: Vec<Credit> = a
        .credits
        .iter()
        .filter_map(|c| format!("{}:{}", c.login, c.credit_type).parse().ok())
        .collect();
    let reporter: Login = a
        .author
        .as_deref()
        .and_then(|l| l.parse().ok())
        .or_else(|| {
            credits
                .iter()
                .find(|c| c.kind == lockstep_core::vuln::CreditType::Reporter)
                .map(|c| c.login.clone())
        })?;
    let rating = match (&a.cvss_vector_string, &a.severity) {
        (Some(v), _) if v.parse::<lockstep_core::vuln::CvssVector>().is_ok() => {
            v.parse().ok().map(Rating::Cvss)
        }
        (_, Some(s)) => s.parse::<Severity>().ok().map(Rating::Severity),
        _ => None,
    };
    let cwes = a
        .cwe_ids
        .iter()
        .filter_map(|c| c.parse::<CweId>().ok())
        .collect();
    Some(Report::received(
        repo.clone(),
        ghsa,
        a.summary.clone(),
        a.description.clone().unwrap_or_default(),
        rating,
        cwes,
        credits,
        reporter,
        now,
    ))
}

/// Lists the reports awaiting triage on each repository and records the new ones. A
/// repository that cannot be read is logged and skipped. Returns how many were new.
pub(crate) async fn poll(
    store: &Store,
    github: &gh::GithubClient,
    repos: &[RepoId],
) -> Result<usize, lockstep_store::Error> {
    let mut new = 0;
    for repo in repos {
        let Ok(name) = gh::RepoName::parse(repo.as_str()) else {
            continue;
        };
        let listed = match github.list_triage(&name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%repo, error = %e, "cannot list the reports awaiting triage");
                continue;
            }
        };
        if !listed.changed {
            continue;
        }
        let now = store.now().await?;
        for a in &listed.value {
            let Some(report) = report_from_advisory(repo, a, now) else {
                continue;
            };
            if store.record_report(&report, None).await? == ReportSeen::New {
                tracing::info!(%repo, ghsa = %report.ghsa, "recorded a private vulnerability report");
                new += 1;
            }
        }
    }
    Ok(new)
}

/// Closes on GitHub the advisories of rejected reports, recording each result (a failure
/// shows in `report list --all` with its error).
pub(crate) async fn close_rejected(
    store: &Store,
    github: &gh::GithubClient,
) -> Result<usize, lockstep_store::Error> {
    let mut done = 0;
    for r in store.reports_to_close().await? {
        let report = &r.report;
        let Ok(name) = gh::RepoName::parse(report.repo.as_str()) else {
            continue;
        };
        let attempt = gh::Attempt::Retry; // reads first: closed already is success
        match github
            .ensure_closed(&name, report.ghsa.as_str(), attempt)
            .await
        {
            Ok(_) => {
                store
                    .report_closed(&report.repo, &report.ghsa, None)
                    .await?;
                done += 1;
            }
            Err(e) if e.is_retryable() || e.write_outcome_unknown() => {
                tracing::warn!(repo = %report.repo, ghsa = %report.ghsa, error = %e, "closing a rejected report failed; will retry");
            }
            Err(e) => {
                tracing::warn!(repo = %report.repo, ghsa = %report.ghsa, error = %e, "closing a rejected report failed");
                store
                    .report_closed(&report.repo, &report.ghsa, Some(&e.to_string()))
                    .await?;
            }
        }
    }
    Ok(done)
}
