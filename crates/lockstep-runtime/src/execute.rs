//! Turns one core effect into GitHub calls through the adapter, and the answer into an
//! [`EffectResult`] for the store.

use std::time::Duration;

use lockstep_core::effect::{Action, AdvisoryContent, AdvisoryPackage};
use lockstep_core::input::Outcome;
use lockstep_core::vuln;
use lockstep_github as gh;
use lockstep_store::{Claim, EffectResult};

fn rating(r: &vuln::Rating) -> gh::Rating {
    match r {
        vuln::Rating::Severity(s) => gh::Rating::Severity(match s {
            vuln::Severity::Low => gh::Severity::Low,
            vuln::Severity::Medium => gh::Severity::Medium,
            vuln::Severity::High => gh::Severity::High,
            vuln::Severity::Critical => gh::Severity::Critical,
        }),
        vuln::Rating::Cvss(v) => gh::Rating::Cvss(v.as_str().to_owned()),
    }
}

fn ecosystem(e: vuln::Ecosystem) -> gh::Ecosystem {
    use vuln::Ecosystem as E;
    match e {
        E::Npm => gh::Ecosystem::Npm,
        E::Pip => gh::Ecosystem::Pip,
        E::Maven => gh::Ecosystem::Maven,
        E::Nuget => gh::Ecosystem::Nuget,
        E::Go => gh::Ecosystem::Go,
        E::Rust => gh::Ecosystem::Rust,
        E::Rubygems => gh::Ecosystem::Rubygems,
        E::Composer => gh::Ecosystem::Composer,
        E::Swift => gh::Ecosystem::Swift,
        E::Erlang => gh::Ecosystem::Erlang,
        E::Pub => gh::Ecosystem::Pub,
        E::Actions => gh::Ecosystem::Actions,
        E::Other => gh::Ecosystem::Other,
    }
}

fn packages(v: &[AdvisoryPackage]) -> Vec<gh::Vulnerability> {
    v.iter()
        .map(|p| gh::Vulnerability {
            ecosystem: ecosystem(p.ecosystem),
            name: p.name.clone(),
            vulnerable_version_range: p.vulnerable_version_range.clone(),
            patched_versions: p.patched_versions.clone(),
            vulnerable_functions: Vec::new(),
        })
        .collect()
}

fn credits(c: &AdvisoryContent) -> Vec<gh::Credit> {
    // Both sides name credit types as GitHub does; the adapter's enum reads the same names.
    c.credits
        .iter()
        .filter_map(|c| {
            let credit_type =
                serde_json::from_value(serde_json::Value::from(c.kind.as_str())).ok()?;
            Some(gh::Credit {
                login: c.login.to_string(),
                credit_type,
            })
        })
        .collect()
}

/// GitHub's `retry-after`, when the failure carried one.
fn retry_after(e: &gh::Error) -> Option<Duration> {
    match e {
        gh::Error::RateLimited { retry_after, .. }
        | gh::Error::SecondaryRateLimited { retry_after } => *retry_after,
        _ => None,
    }
}

fn new_advisory(c: &AdvisoryContent) -> gh::NewAdvisory {
    gh::NewAdvisory {
        summary: c.summary.clone(),
        description: c.description.clone(),
        rating: Some(rating(&c.rating)),
        cve_id: None,
        cwe_ids: c.cwe_ids.iter().map(ToString::to_string).collect(),
        credits: credits(c),
        vulnerabilities: packages(&c.vulnerabilities),
        start_private_fork: false,
    }
}

/// The final content sent with the publication: the description with its public links, the
/// packages with their patched versions, and the credits (a report merged after the draft
/// opened credits its reporter here).
fn publication(c: &AdvisoryContent) -> gh::AdvisoryUpdate {
    gh::AdvisoryUpdate {
        description: Some(c.description.clone()),
        vulnerabilities: Some(packages(&c.vulnerabilities)),
        credits: gh::FieldUpdate::Set(credits(c)),
        ..gh::AdvisoryUpdate::default()
    }
}

/// The whole content an adopted report takes in its one PATCH.
fn adoption(c: &AdvisoryContent, collaborators: &[String]) -> gh::AdvisoryUpdate {
    gh::AdvisoryUpdate {
        summary: Some(c.summary.clone()),
        description: Some(c.description.clone()),
        rating: Some(rating(&c.rating)),
        vulnerabilities: Some(packages(&c.vulnerabilities)),
        cwe_ids: gh::FieldUpdate::Set(c.cwe_ids.iter().map(ToString::to_string).collect()),
        credits: gh::FieldUpdate::Set(credits(c)),
        collaborating_users: if collaborators.is_empty() {
            gh::FieldUpdate::Keep
        } else {
            gh::FieldUpdate::Set(collaborators.to_vec())
        },
        ..gh::AdvisoryUpdate::default()
    }
}

async fn call(github: &gh::GithubClient, claim: &Claim) -> Result<Outcome, gh::Error> {
    let effect = &claim.effect;
    let repo = gh::RepoName::parse(effect.repo.as_str())?;
    // A claim taken before may have been applied: reconcile before writing again.
    let attempt = if claim.attempts > 1 {
        gh::Attempt::Retry
    } else {
        gh::Attempt::First
    };
    // Nothing was sent: a retryable failure whose outcome is known.
    fail::fail_point!("github.before_send", |_| Err(gh::Error::Transport {
        message: "fail point github.before_send".into(),
        outcome_unknown: false,
    }));
    Ok(match &effect.action {
        Action::OpenDraft {
            content, marker, ..
        } => {
            let (advisory, _) = github
                .ensure_draft(&repo, &new_advisory(content), marker, attempt)
                .await?;
            let ghsa = advisory.ghsa_id.parse().map_err(|e| {
                gh::Error::InvalidInput(format!("GitHub returned a malformed GHSA id: {e}"))
            })?;
            Outcome::DraftOpened { ghsa }
        }
        Action::AdoptReport {
            ghsa,
            content,
            marker,
            collaborators,
            ..
        } => {
            let logins: Vec<String> = collaborators.iter().map(ToString::to_string).collect();
            github
                .adopt_report(
                    &repo,
                    ghsa.as_str(),
                    &adoption(content, &logins),
                    marker,
                    attempt,
                )
                .await?;
            Outcome::DraftOpened { ghsa: ghsa.clone() }
        }
        Action::CloseReport { ghsa } => {
            github.ensure_closed(&repo, ghsa.as_str(), attempt).await?;
            Outcome::ReportClosed
        }
        Action::LinkSiblings {
            ghsa,
            description,
            collaborators,
            ..
        } => {
            // One PATCH: the description and, when the core asks, the collaborators.
            let logins: Vec<String> = collaborators.iter().map(ToString::to_string).collect();
            let logins = (!logins.is_empty()).then_some(logins.as_slice());
            github
                .link_siblings(&repo, ghsa.as_str(), description, logins)
                .await?;
            Outcome::SiblingsLinked
        }
        Action::AddCollaborators { ghsa, logins } => {
            let logins: Vec<String> = logins.iter().map(ToString::to_string).collect();
            github
                .set_collaborators(&repo, ghsa.as_str(), &logins)
                .await?;
            Outcome::CollaboratorsAdded
        }
        Action::RequestCve { ghsa } => {
            github.request_cve(&repo, ghsa.as_str()).await?;
            Outcome::CveRequested
        }
        Action::Publish { ghsa, content, .. } => {
            github
                .ensure_published(&repo, ghsa.as_str(), Some(&publication(content)), attempt)
                .await?;
            Outcome::Published
        }
        Action::CloseDraft { ghsa } => {
            github.ensure_closed(&repo, ghsa.as_str(), attempt).await?;
            Outcome::DraftClosed
        }
        Action::AmendAdvisory {
            ghsa,
            vulnerabilities,
        } => {
            amend(github, &repo, ghsa.as_str(), vulnerabilities, attempt).await?;
            Outcome::Amended
        }
    })
}

/// Whether the advisory's packages on GitHub are `wanted` (order aside).
fn carries(current: &[gh::AdvisoryVulnerability], wanted: &[gh::Vulnerability]) -> bool {
    let key =
        |eco: Option<String>, name: Option<&str>, range: Option<&str>, patched: Option<&str>| {
            (
                eco.unwrap_or_default(),
                name.unwrap_or_default().to_owned(),
                range.unwrap_or_default().trim().to_owned(),
                patched.unwrap_or_default().trim().to_owned(),
            )
        };
    let mut have: Vec<_> = current
        .iter()
        .map(|v| {
            key(
                v.ecosystem.clone(),
                v.name.as_deref(),
                v.vulnerable_version_range.as_deref(),
                v.patched_versions.as_deref(),
            )
        })
        .collect();
    let mut want: Vec<_> = wanted
        .iter()
        .map(|v| {
            let eco = serde_json::to_value(v.ecosystem)
                .ok()
                .and_then(|e| e.as_str().map(str::to_owned));
            key(
                eco,
                Some(&v.name),
                v.vulnerable_version_range.as_deref(),
                v.patched_versions.as_deref(),
            )
        })
        .collect();
    have.sort();
    want.sort();
    have == want
}

/// Rewrites a published advisory's packages. A retry reads first: already carrying them is
/// success, and an advisory that is not published is refused (for good).
async fn amend(
    github: &gh::GithubClient,
    repo: &gh::RepoName,
    ghsa: &str,
    vulnerabilities: &[AdvisoryPackage],
    attempt: gh::Attempt,
) -> Result<(), gh::Error> {
    let wanted = packages(vulnerabilities);
    if attempt == gh::Attempt::Retry {
        let current = github.get_advisory(repo, ghsa).await?;
        if current.state != gh::AdvisoryState::Published {
            return Err(gh::Error::InvalidInput(format!(
                "refusing to amend {ghsa}: it is {}, not published",
                current.state.as_str()
            )));
        }
        if carries(&current.vulnerabilities, &wanted) {
            tracing::info!(%repo, ghsa, "already amended by an earlier attempt");
            return Ok(());
        }
    }
    let update = gh::AdvisoryUpdate {
        vulnerabilities: Some(wanted),
        ..gh::AdvisoryUpdate::default()
    };
    github.update_advisory(repo, ghsa, &update).await?;
    tracing::info!(%repo, ghsa, "amended a published advisory");
    Ok(())
}

/// The adapter's item for a publication that goes out in a wave.
pub(crate) fn wave_item(claim: &Claim) -> Result<gh::WaveItem, gh::Error> {
    let Action::Publish { ghsa, content, .. } = &claim.effect.action else {
        return Err(gh::Error::InvalidInput("not a publication".into()));
    };
    Ok(gh::WaveItem {
        repo: gh::RepoName::parse(claim.effect.repo.as_str())?,
        ghsa: ghsa.to_string(),
        content: Some(publication(content)),
        attempt: if claim.attempts > 1 {
            gh::Attempt::Retry
        } else {
            gh::Attempt::First
        },
    })
}

/// What an adapter answer means for the store. A retryable failure (5xx, a rate limit, a
/// transport error whose outcome is unknown) is retried after `backoff`, or after GitHub's
/// `retry-after` when it is longer; anything else is permanent and waits for a person.
pub(crate) fn result(
    claim: &Claim,
    answer: Result<Outcome, gh::Error>,
    backoff: Duration,
) -> EffectResult {
    result_of(&claim.effect.key, claim.attempts, answer, backoff)
}

/// [`result`] for a key and attempt.
pub(crate) fn result_of(
    key: &str,
    attempt: u64,
    answer: Result<Outcome, gh::Error>,
    backoff: Duration,
) -> EffectResult {
    match answer {
        Ok(outcome) => EffectResult::Succeeded(outcome),
        Err(e) => {
            let retryable = e.is_retryable() || e.write_outcome_unknown();
            tracing::warn!(
                key,
                attempt,
                retryable,
                error = %e,
                "effect failed"
            );
            EffectResult::Failed {
                error: e.to_string(),
                retry_after: retryable.then(|| retry_after(&e).map_or(backoff, |r| r.max(backoff))),
            }
        }
    }
}

/// Executes one claimed effect.
pub async fn execute(github: &gh::GithubClient, claim: &Claim, backoff: &Duration) -> EffectResult {
    result(claim, call(github, claim).await, *backoff)
}
