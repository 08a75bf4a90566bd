//! After publication: following each advisory into GitHub's global advisory database.
//!
//! Reviewed copies lag for weeks, some ecosystems are never reviewed, and copies have lost
//! their CVE alias (github/advisory-database #8098, #9251, #9582). The runtime reads each
//! published advisory's global copy and reports what it found ([`GlobalRead`]); the core
//! judges it against the case ([`GlobalCopy`]) and records a change as an event. Lag is
//! judged at the observation's time (the database's clock): no clock is read here.

use serde::{Deserialize, Serialize};

use crate::ids::{GhsaId, RepoId, Timestamp};
use crate::model::{Assessment, Case, Participant, RemoteState};
use crate::vuln::Ecosystem;

/// The workflow's `[propagation]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropagationPolicy {
    /// Alert when a published advisory has no reviewed global copy this many hours after
    /// publication (default 72).
    pub alert_after_hours: u32,
    /// Close the case once every advisory is published and has propagated.
    pub auto_close: bool,
}

impl Default for PropagationPolicy {
    fn default() -> Self {
        Self {
            alert_after_hours: 72,
            auto_close: false,
        }
    }
}

/// What one read of `GET /advisories/{ghsa_id}` found, as the runtime saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalRead {
    /// When GitHub's curators reviewed it (`None`: an unreviewed copy).
    pub reviewed_at: Option<Timestamp>,
    /// When it was withdrawn.
    pub withdrawn_at: Option<Timestamp>,
    /// Its CVE aliases.
    pub cves: Vec<String>,
    /// Its packages: (name, first patched version).
    pub packages: Vec<(String, Option<String>)>,
}

/// The state of an advisory's global copy, as the case last judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum GlobalCopy {
    /// No reviewed copy yet, within the workflow's `alert_after_hours`.
    Pending,
    /// No reviewed copy past `alert_after_hours`.
    Lagging,
    /// GitHub does not review the advisory's ecosystem: no global copy will come.
    NotReviewed,
    /// A reviewed copy that matches the advisory.
    Reviewed {
        /// When it was reviewed.
        reviewed_at: Timestamp,
    },
    /// A copy that differs from the advisory (a lost CVE alias, other patched versions).
    Differs {
        /// When it was reviewed, if it was.
        reviewed_at: Option<Timestamp>,
        /// What differs, one line each.
        differences: Vec<String>,
    },
    /// The global copy was withdrawn.
    Withdrawn {
        /// When.
        at: Timestamp,
    },
}

impl GlobalCopy {
    /// Whether nothing more is expected: reviewed and matching, or never reviewed.
    pub fn settled(&self) -> bool {
        matches!(self, Self::Reviewed { .. } | Self::NotReviewed)
    }

    /// Whether it needs a person: lagging past the alert, differing, or withdrawn.
    pub fn alarming(&self) -> bool {
        matches!(
            self,
            Self::Lagging | Self::Differs { .. } | Self::Withdrawn { .. }
        )
    }
}

/// One repository's propagation, for `case show`, `plan` and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoPropagation {
    /// The repository.
    pub repo: RepoId,
    /// The last judgement.
    pub copy: GlobalCopy,
    /// In words: "reviewed at T", "pending for N h", what differs.
    pub summary: String,
}

/// Whether GitHub reviews packages of this ecosystem into its global database.
pub fn reviewed_ecosystem(e: Ecosystem) -> bool {
    e != Ecosystem::Other
}

impl Case {
    /// Judges a read of `repo`'s global copy at `now`.
    pub fn judge_global(
        &self,
        repo: &RepoId,
        read: Option<&GlobalRead>,
        now: Timestamp,
    ) -> GlobalCopy {
        let Some(p) = self.participants.get(repo) else {
            return GlobalCopy::Pending;
        };
        let ecosystem = self
            .workflow
            .repos
            .get(repo)
            .map_or(Ecosystem::Other, |s| s.ecosystem);
        let Some(read) = read.filter(|r| r.reviewed_at.is_some() || r.withdrawn_at.is_some())
        else {
            if !reviewed_ecosystem(ecosystem) {
                return GlobalCopy::NotReviewed;
            }
            let hours = i64::from(self.workflow.propagation.alert_after_hours);
            let since = p.advisory.published_at.unwrap_or(now);
            return if now.millis() - since.millis() >= hours * 3_600_000 {
                GlobalCopy::Lagging
            } else {
                GlobalCopy::Pending
            };
        };
        if let Some(at) = read.withdrawn_at {
            return GlobalCopy::Withdrawn { at };
        }
        let differences = differences(p, read);
        match (read.reviewed_at, differences.is_empty()) {
            (Some(reviewed_at), true) => GlobalCopy::Reviewed { reviewed_at },
            (reviewed_at, _) => GlobalCopy::Differs {
                reviewed_at,
                differences,
            },
        }
    }

    /// Per published advisory in scope: its global copy, judged, and in words at `now`.
    pub fn propagation(&self, now: Timestamp) -> Vec<RepoPropagation> {
        self.scope()
            .filter(|(_, p)| p.advisory.state == RemoteState::Published)
            .map(|(repo, p)| {
                let copy = p.global.clone().unwrap_or(GlobalCopy::Pending);
                let summary = match &copy {
                    GlobalCopy::Pending | GlobalCopy::Lagging => {
                        let hours = p
                            .advisory
                            .published_at
                            .map_or(0, |at| (now.millis() - at.millis()).max(0) / 3_600_000);
                        let late = if matches!(copy, GlobalCopy::Lagging) {
                            format!(
                                " (past the {} h alert)",
                                self.workflow.propagation.alert_after_hours
                            )
                        } else {
                            String::new()
                        };
                        format!("global database: pending for {hours} h{late}")
                    }
                    GlobalCopy::NotReviewed => {
                        "global database: GitHub does not review this ecosystem; no global copy"
                            .to_owned()
                    }
                    GlobalCopy::Reviewed { reviewed_at } => {
                        format!("global database: reviewed at {reviewed_at}")
                    }
                    GlobalCopy::Differs { differences, .. } => {
                        format!("global database: differs: {}", differences.join("; "))
                    }
                    GlobalCopy::Withdrawn { at } => {
                        format!("global database: withdrawn at {at}")
                    }
                };
                RepoPropagation {
                    repo: repo.clone(),
                    copy,
                    summary,
                }
            })
            .collect()
    }

    /// Whether every advisory is out and has propagated: each repository in scope is
    /// published with a settled global copy, or has no advisory to publish (not affected).
    pub fn propagated(&self) -> bool {
        let mut any = false;
        for (_, p) in self.scope() {
            match p.advisory.state {
                RemoteState::Published => {
                    if !p.global.as_ref().is_some_and(GlobalCopy::settled) {
                        return false;
                    }
                    any = true;
                }
                RemoteState::Closed => {}
                RemoteState::None | RemoteState::Draft => {
                    if !matches!(p.assessment, Assessment::NotAffected { .. }) {
                        return false;
                    }
                }
            }
        }
        any
    }

    /// The published advisories the runtime still follows: those whose copy is not settled.
    pub fn watched_globally(&self) -> Vec<(RepoId, GhsaId)> {
        self.scope()
            .filter(|(_, p)| {
                p.advisory.state == RemoteState::Published
                    && !p.global.as_ref().is_some_and(GlobalCopy::settled)
            })
            .filter_map(|(r, p)| p.advisory.ghsa.clone().map(|g| (r.clone(), g)))
            .collect()
    }
}

/// What differs between the advisory and its global copy.
fn differences(p: &Participant, read: &GlobalRead) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(cve) = &p.advisory.cve
        && !read
            .cves
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cve.as_str()))
    {
        out.push(format!("the CVE alias {cve} is missing"));
    }
    for f in p.fix.packages() {
        match read.packages.iter().find(|(name, _)| *name == f.package) {
            None => out.push(format!("package {} is missing", f.package)),
            Some((_, patched)) => {
                let want = f.patched_versions.trim();
                if patched.as_deref().map(str::trim) != Some(want) {
                    out.push(format!(
                        "{} is patched in {} globally, {want} here",
                        f.package,
                        patched.as_deref().unwrap_or("nothing")
                    ));
                }
            }
        }
    }
    out
}
