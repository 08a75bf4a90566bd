//! Amending a published advisory: a fix found incomplete (the Go SDK's case, where one
//! transport was not fixed) changes the packages of an advisory that is already public.
//!
//! The amendment is a command like any other: authorised (a coordinator or the repository's
//! maintainer), audited, and carried out by an effect that the runtime reconciles with GitHub
//! before it retries. The fix becomes the amended packages, which the exports show (OSV
//! `modified`, a CSAF revision).

use std::collections::BTreeMap;

use super::{Tx, text_field};
use crate::effect::Action;
use crate::event::EventKind;
use crate::ids::RepoId;
use crate::model::{EffectStatus, RemoteState};
use crate::reject::Rejection;
use crate::vuln::PackageFix;

/// The action key prefix of amendments; the n-th of a repository is `amend-{n}`.
const ACTION: &str = "amend-advisory";

impl Tx<'_> {
    /// Amends `repo`'s published advisory: the packages named (none: every package of the
    /// fix) take the range and patched versions given.
    pub(super) fn amend(
        &mut self,
        repo: &RepoId,
        names: &[String],
        vulnerable_range: Option<String>,
        patched_versions: Option<String>,
        reason: String,
    ) -> Result<(), Rejection> {
        self.in_scope(repo)?;
        let p = &self.case.participants[repo];
        let state = p.advisory.state;
        let ghsa = match (&p.advisory.ghsa, state) {
            (Some(g), RemoteState::Published) => g.clone(),
            _ => {
                let state = match state {
                    RemoteState::None => "not opened yet",
                    RemoteState::Draft => "still a draft",
                    RemoteState::Closed => "closed",
                    RemoteState::Published => "published without an id",
                };
                return Err(Rejection::Contradiction {
                    repo: repo.clone(),
                    why: format!(
                        "its advisory is {state}: only a published advisory can be amended \
                         (before publication, mark the fix with fix-ready)"
                    ),
                });
            }
        };
        let trimmed = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let range = trimmed(vulnerable_range);
        let patched = trimmed(patched_versions);
        if let Some(v) = &patched {
            text_field("patched_versions", v, 256)?;
        }
        if range.is_none() && patched.is_none() {
            return Err(Rejection::Invalid {
                field: "patched_versions",
                why: "an amendment needs new patched versions or a new vulnerable range".into(),
            });
        }
        let current = p.fix.packages().to_vec();
        let mut packages = current.clone();
        let selected: Vec<String> = if names.is_empty() {
            packages.iter().map(|f| f.package.clone()).collect()
        } else {
            names.iter().map(|n| n.trim().to_owned()).collect()
        };
        if selected.is_empty() {
            return Err(Rejection::Invalid {
                field: "packages",
                why: "the advisory names no fixed package; name the packages to amend".into(),
            });
        }
        for name in selected {
            match packages.iter_mut().find(|f| f.package == name) {
                Some(f) => {
                    if let Some(r) = &range {
                        f.vulnerable_range = Some(r.clone());
                    }
                    if let Some(v) = &patched {
                        f.patched_versions = v.clone();
                    }
                }
                None => {
                    let Some(v) = &patched else {
                        return Err(Rejection::Invalid {
                            field: "patched_versions",
                            why: format!(
                                "{name:?} is not in the advisory yet: adding it needs its patched versions"
                            ),
                        });
                    };
                    packages.push(PackageFix {
                        package: name,
                        vulnerable_range: range.clone(),
                        patched_versions: v.clone(),
                    });
                }
            }
        }
        let packages = self.validate_packages(repo, packages)?;
        if packages == current {
            return Ok(()); // the advisory says this already
        }
        // An earlier amendment not yet carried out would write stale packages: it never runs.
        let stale: Vec<String> = self
            .case
            .effects
            .iter()
            .filter(|(_, r)| {
                r.repo == *repo
                    && r.action == ACTION
                    && matches!(
                        r.status,
                        EffectStatus::Pending | EffectStatus::Failed { .. }
                    )
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.emit(EventKind::EffectSuperseded {
                key,
                reason: "a newer amendment replaces it".into(),
            })?;
        }
        let n = 1 + self
            .case
            .effects
            .values()
            .filter(|r| r.repo == *repo && r.action == ACTION)
            .count();
        self.emit(EventKind::AdvisoryAmended {
            repo: repo.clone(),
            packages: packages.clone(),
            reason,
        })?;
        let vulnerabilities = self
            .case
            .content(repo, &BTreeMap::new(), &packages)
            .vulnerabilities;
        self.request(
            repo,
            &format!("amend-{n}"),
            Action::AmendAdvisory {
                ghsa,
                vulnerabilities,
            },
        )
    }
}
