//! Reads GitHub for what happens there without Lockstep asking: a CVE assigned by GitHub's
//! CNA, the temporary private fork appearing, and an advisory published by someone pressing
//! the button (drift). Each becomes an observation; the core decides what it means (a
//! publication Lockstep did not request is a leak). Reads are conditional GETs, so an
//! unchanged advisory costs nothing against the rate limit.

use std::collections::BTreeMap;

use lockstep_core::input::{Observation, Principal};
use lockstep_core::model::RemoteState;
use lockstep_core::{Case, Input, RepoId};
use lockstep_github::{AdvisoryState, GithubClient, RepoName};
use lockstep_store::Store;

/// What one advisory read says that the case does not know yet.
fn news(case: &Case, repo: &RepoId, remote: &lockstep_github::Advisory) -> Vec<Observation> {
    let Some(p) = case.participants.get(repo) else {
        return Vec::new();
    };
    let Some(ghsa) = p.advisory.ghsa.clone() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if p.advisory.cve.is_none()
        && let Some(cve) = remote.cve_id.as_deref().and_then(|c| c.parse().ok())
    {
        out.push(Observation::CveAssigned {
            repo: repo.clone(),
            cve,
        });
    }
    if p.advisory.private_fork.is_none()
        && let Some(fork) = remote
            .private_fork
            .as_ref()
            .and_then(|f| f.full_name.parse().ok())
    {
        out.push(Observation::PrivateForkCreated {
            repo: repo.clone(),
            fork,
        });
    }
    if remote.state == AdvisoryState::Published && p.advisory.state != RemoteState::Published {
        out.push(Observation::AdvisoryPublished {
            repo: repo.clone(),
            ghsa,
        });
    }
    out
}

/// Polls every unfinished advisory of every open case; returns how many facts it recorded.
pub(crate) async fn sync(
    store: &Store,
    github: &GithubClient,
) -> Result<usize, lockstep_store::Error> {
    let mut observed = 0;
    // Who Lockstep acts as, for the preflight's permission check (once per pass).
    let mut me: Option<Option<String>> = None;
    for summary in store.list_open_cases().await? {
        let case = store.case(&summary.id).await?;
        let watched: Vec<(RepoId, String)> = case
            .participants
            .iter()
            .filter(|(_, p)| {
                p.advisory.state == RemoteState::Draft
                    || (p.advisory.state == RemoteState::Published && p.advisory.cve.is_none())
            })
            .filter_map(|(r, p)| p.advisory.ghsa.as_ref().map(|g| (r.clone(), g.to_string())))
            .collect();
        // Read them all at once; record what changed one by one.
        let reads = futures::future::join_all(watched.into_iter().map(|(repo, ghsa)| async move {
            let name = RepoName::parse(repo.as_str()).ok()?;
            match github.poll_advisory(&name, &ghsa).await {
                Ok(polled) => Some((repo, polled.value)),
                Err(e) => {
                    tracing::debug!(%repo, error = %e, "cannot read the advisory now");
                    None
                }
            }
        }))
        .await;
        let mut drafts: BTreeMap<RepoId, lockstep_github::Advisory> = BTreeMap::new();
        for (repo, remote) in reads.into_iter().flatten() {
            let case = store.case(&summary.id).await?;
            let observations = news(&case, &repo, &remote);
            drafts.insert(repo.clone(), remote.clone());
            for obs in observations {
                match store
                    .handle(&case.id, &Principal::automation(), Input::Observation(obs))
                    .await
                {
                    Ok(c) if !c.events.is_empty() => observed += 1,
                    Ok(_) => {}
                    Err(lockstep_store::Error::Rejected(r)) => {
                        tracing::warn!(case = %case.id, %repo, rejection = %r, "an observation was refused");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // The preflight, for every draft: a blocker found while embargoed holds the wave;
        // checked again after, it clears once its cause is gone.
        let case = store.case(&summary.id).await?;
        if case.closed.is_none() {
            if me.is_none() {
                me = Some(github.authenticated_user().await.ok().map(|u| u.login));
            }
            let login = me.as_ref().and_then(|m| m.as_deref());
            for obs in crate::preflight::observations(github, login, &case, &drafts).await {
                match store
                    .handle(&case.id, &Principal::automation(), Input::Observation(obs))
                    .await
                {
                    Ok(c) if !c.events.is_empty() => observed += 1,
                    Ok(_) => {}
                    Err(lockstep_store::Error::Rejected(r)) => {
                        tracing::warn!(case = %case.id, rejection = %r, "a preflight finding was refused");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(observed)
}
