//! The preflight: what GitHub would refuse, or silently drop, when the release wave publishes.
//!
//! An embargoed release must not stop halfway, with some advisories public and GitHub
//! refusing the rest. While the case is embargoed the runtime checks each repository against
//! GitHub's rules (GitHub's documentation, "Permission levels for repository security
//! advisories" and "Publishing a repository security advisory") and reports what it found as
//! the observation `PreflightChecked`; the core records it (`preflight_checked`, only when it
//! changed) and:
//!
//! - shows each finding in `case show` and `plan`, as a blocker or a warning;
//! - holds the whole release wave while any repository of the plan has a blocker (the
//!   publication guard, [`Case::publication_allowed`], which the store re-checks inside the
//!   transaction that claims a publication), and releases it once every blocker clears.
//!
//! Blockers: Lockstep's identity lacks the admin (or security-manager) permission that
//! publishing needs; the draft lacks a package, an ecosystem or patched versions for an
//! affected repository; the advisory's temporary private fork has unmerged pull requests (the
//! fix is not on the public branch yet). Warning: a credited user has not accepted the credit
//! (GitHub drops unaccepted credits at publication, `credits_detailed[].state`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Tx;
use crate::event::EventKind;
use crate::ids::RepoId;
use crate::model::Case;
use crate::reject::Rejection;

/// What a preflight check found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "check")]
pub enum Finding {
    /// Lockstep's identity cannot publish: it lacks admin (or security manager) permission.
    MissingPublishPermission {
        /// The permission it has.
        permission: String,
    },
    /// The draft lacks what publication needs for an affected repository.
    DraftIncomplete {
        /// What is missing: `package`, `ecosystem` or `patched versions`.
        missing: String,
    },
    /// The temporary private fork has pull requests not merged yet.
    UnmergedForkPullRequests {
        /// How many.
        count: u32,
    },
    /// A credited user has not accepted the credit; GitHub drops it at publication.
    CreditNotAccepted {
        /// The login.
        login: String,
    },
}

impl Finding {
    /// Whether it holds the release wave (otherwise it is a warning).
    pub fn is_blocker(&self) -> bool {
        !matches!(self, Self::CreditNotAccepted { .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::MissingPublishPermission { permission } => format!(
                "Lockstep's identity has {permission} permission; publishing needs admin or security manager"
            ),
            Self::DraftIncomplete { missing } => {
                format!("the draft lacks {missing}, which publication needs")
            }
            Self::UnmergedForkPullRequests { count } => format!(
                "the temporary private fork has {count} unmerged pull request(s): the fix is not on the public branch yet"
            ),
            Self::CreditNotAccepted { login } => {
                format!("{login} has not accepted the credit; GitHub drops it at publication")
            }
        }
    }
}

/// One repository's finding, as `plan` and `case show` list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFinding {
    /// The repository.
    pub repo: RepoId,
    /// Whether it holds the wave.
    pub blocker: bool,
    /// What was found.
    #[serde(flatten)]
    pub finding: Finding,
    /// In words.
    pub text: String,
}

impl Case {
    /// Every recorded preflight finding of the repositories in scope, blockers first.
    pub fn preflight(&self) -> Vec<RepoFinding> {
        let mut out: Vec<RepoFinding> = self
            .scope()
            .flat_map(|(repo, p)| {
                p.preflight.iter().map(move |f| RepoFinding {
                    repo: repo.clone(),
                    blocker: f.is_blocker(),
                    finding: f.clone(),
                    text: f.describe(),
                })
            })
            .collect();
        out.sort_by(|a, b| (!a.blocker, &a.repo).cmp(&(!b.blocker, &b.repo)));
        out
    }

    /// The first repository of `plan` with a preflight blocker, if any: the whole wave holds.
    pub(crate) fn preflight_blocker<'a>(
        &'a self,
        plan: &'a BTreeSet<RepoId>,
    ) -> Option<(&'a RepoId, &'a Finding)> {
        plan.iter().find_map(|r| {
            self.participants
                .get(r)
                .filter(|p| p.advisory.state != crate::model::RemoteState::Published)
                .and_then(|p| p.preflight.iter().find(|f| f.is_blocker()))
                .map(|f| (r, f))
        })
    }
}

impl Tx<'_> {
    /// Records what the preflight found for `repo` (nothing when it is unchanged).
    pub(super) fn preflight_checked(
        &mut self,
        repo: RepoId,
        mut findings: Vec<Finding>,
    ) -> Result<(), Rejection> {
        let p = self
            .case
            .participants
            .get(&repo)
            .filter(|p| p.in_scope)
            .ok_or_else(|| Rejection::NotInCase { repo: repo.clone() })?;
        if findings.len() > 100 {
            return Err(Rejection::Invalid {
                field: "findings",
                why: "more than 100 findings".into(),
            });
        }
        findings.sort();
        findings.dedup();
        if p.preflight == findings {
            return Ok(());
        }
        self.emit(EventKind::PreflightChecked { repo, findings })
    }
}
