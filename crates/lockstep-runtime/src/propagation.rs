//! The propagation watch: follows each published advisory into GitHub's global advisory
//! database (`GET /advisories/{ghsa_id}`, conditional) until its reviewed copy matches, and
//! reports each read to the core, which judges it (reviewed, pending, lagging, differing,
//! withdrawn) and records what changed. Advisories whose copy is settled are not read again.

use chrono::{DateTime, Utc};
use lockstep_core::input::{Observation, Principal};
use lockstep_core::propagation::GlobalRead;
use lockstep_core::{Input, Timestamp};
use lockstep_github::{GithubClient, GlobalAdvisory};
use lockstep_store::{CaseStatus, Store};

fn ts(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.and_then(|t| Timestamp::from_millis(t.timestamp_millis()))
}

/// What the core needs of a global advisory.
pub(crate) fn read_of(g: &GlobalAdvisory) -> GlobalRead {
    let mut cves: Vec<String> = g.cve_id.iter().cloned().collect();
    for i in g.identifiers.iter().flatten() {
        if i.kind.eq_ignore_ascii_case("CVE") && !cves.contains(&i.value) {
            cves.push(i.value.clone());
        }
    }
    GlobalRead {
        reviewed_at: if g.kind == "reviewed" {
            ts(g.github_reviewed_at)
        } else {
            None
        },
        withdrawn_at: ts(g.withdrawn_at),
        cves,
        packages: g
            .vulnerabilities
            .iter()
            .flatten()
            .filter_map(|v| {
                let name = v.package.as_ref()?.name.clone()?;
                Some((name, v.first_patched_version.clone()))
            })
            .collect(),
    }
}

/// Reads every followed advisory's global copy once; returns how many judgements changed.
pub(crate) async fn watch(
    store: &Store,
    github: &GithubClient,
) -> Result<usize, lockstep_store::Error> {
    let mut changed = 0;
    for summary in store.list_cases().await? {
        if summary.status == CaseStatus::Closed {
            continue;
        }
        let case = store.case(&summary.id).await?;
        for (repo, ghsa) in case.watched_globally() {
            let read = match github.poll_global_advisory(ghsa.as_str()).await {
                // Unchanged since the last read, which the case has judged already.
                Ok(Some(polled))
                    if !polled.changed && case.participants[&repo].global.is_some() =>
                {
                    continue;
                }
                Ok(found) => found.map(|p| read_of(&p.value)),
                Err(e) => {
                    tracing::debug!(%repo, error = %e, "cannot read the global advisory now");
                    continue;
                }
            };
            match store
                .handle(
                    &case.id,
                    &Principal::automation(),
                    Input::Observation(Observation::GlobalCopyRead {
                        repo: repo.clone(),
                        read,
                    }),
                )
                .await
            {
                Ok(c) if !c.events.is_empty() => changed += 1,
                Ok(_) => {}
                Err(lockstep_store::Error::Rejected(r)) => {
                    tracing::warn!(case = %case.id, %repo, rejection = %r, "a global read was refused");
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}
