//! The explanation behind `lockstep plan`: what holds the case, the waves that would run, and
//! what needs a person. Pure data, serialisable as the `--json` output.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::engine::Blocker;
use crate::event::{ExitReason, ReleaseMode};
use crate::ids::{RepoId, Timestamp};
use crate::machines::EmState;
use crate::model::{Assessment, Case, EmbargoRequest, RemoteState};
use crate::workflow::DeadlinePolicy;

/// Where one repository stands in the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveState {
    /// Published.
    Published,
    /// Publication requested, not yet confirmed.
    Publishing,
    /// Waiting for the gate, or for an earlier wave.
    Waiting,
}

/// One repository in a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveEntry {
    /// The repository.
    pub repo: RepoId,
    /// Where it stands.
    pub state: WaveState,
}

/// Something a person should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "alert")]
pub enum Alert {
    /// The embargo's end passed under `hold-all`: it stays in force, overdue, and every
    /// advisory holds; a coordinator may revise its end (within `max_days`) or disclose.
    EmbargoOverdue {
        /// The end that passed.
        until: Timestamp,
        /// When the engine marked it overdue.
        since: Timestamp,
    },
    /// The deadline passed under `hold-all` and ended the embargo (cases recorded before
    /// overdue embargoes kept holding); publication still waits for the blockers.
    DeadlinePassedHolding {
        /// When the embargo ended.
        at: Timestamp,
    },
    /// The vulnerability is public while these affected repositories have no released fix.
    PublicWithoutFix {
        /// The repositories.
        repos: Vec<RepoId>,
    },
    /// An advisory was published outside Lockstep.
    PublishedElsewhere {
        /// The repository.
        repo: RepoId,
    },
    /// A published advisory's copy in GitHub's global database lags past the workflow's
    /// `alert_after_hours`, differs from the advisory (a lost CVE alias), or was withdrawn.
    GlobalDatabase {
        /// The repository.
        repo: RepoId,
        /// The copy's state.
        copy: crate::propagation::GlobalCopy,
    },
    /// An effect failed in a way that retrying will not fix.
    FailureNeedsPerson {
        /// The repository.
        repo: RepoId,
        /// The effect's key.
        key: String,
        /// The error.
        error: String,
    },
}

/// The plan of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Whether every in-scope repository is assessed and every affected one has its fix.
    pub gate_open: bool,
    /// How the release started, if it has.
    pub release: Option<ReleaseMode>,
    /// The embargo's state.
    pub embargo: EmState,
    /// Its end, while in force (or when it ended).
    pub embargo_until: Option<Timestamp>,
    /// Why it ended.
    pub embargo_exit: Option<ExitReason>,
    /// A participant's request for a later end, while the embargo is in force and no
    /// coordinator has answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo_request: Option<EmbargoRequest>,
    /// What holds the release, per repository.
    pub blockers: Vec<Blocker>,
    /// The waves: those running, or those that would run if the gate opened now.
    pub waves: Vec<Vec<WaveEntry>>,
    /// Not-affected repositories: skipped, their drafts closed at release.
    pub skipped: Vec<RepoId>,
    /// What needs a person.
    pub alerts: Vec<Alert>,
    /// What GitHub would refuse (blockers, which hold the whole wave) or drop (warnings) at
    /// publication, as the preflight last found it.
    #[serde(default)]
    pub preflight: Vec<crate::engine::preflight::RepoFinding>,
}

impl Case {
    /// Explains the case: what holds it, and the waves that run or would run.
    pub fn plan(&self) -> Plan {
        let waves_of = |set: &BTreeSet<RepoId>| match &self.schedule {
            Some(s) => s.waves(set),
            None => vec![set.iter().cloned().collect()],
        };
        let raw_waves = if self.release.is_some() {
            self.release_plan()
        } else {
            // If the gate opened now: every in-scope repository not assessed not affected.
            let would: BTreeSet<RepoId> = self
                .scope()
                .filter(|(_, p)| !matches!(p.assessment, Assessment::NotAffected { .. }))
                .map(|(r, _)| r.clone())
                .collect();
            waves_of(&would)
        };
        let waves = raw_waves
            .into_iter()
            .map(|wave| {
                wave.into_iter()
                    .map(|repo| {
                        let state = match self.participants.get(&repo) {
                            Some(p) if p.advisory.state == RemoteState::Published => {
                                WaveState::Published
                            }
                            Some(p)
                                if self.effects.iter().any(|(_, e)| {
                                    e.repo == repo
                                        && e.action == "publish"
                                        && matches!(
                                            e.status,
                                            crate::model::EffectStatus::Pending
                                                | crate::model::EffectStatus::Failed { .. }
                                        )
                                }) && p.advisory.state == RemoteState::Draft =>
                            {
                                WaveState::Publishing
                            }
                            _ => WaveState::Waiting,
                        };
                        WaveEntry { repo, state }
                    })
                    .collect()
            })
            .collect();
        let skipped = self
            .scope()
            .filter(|(_, p)| matches!(p.assessment, Assessment::NotAffected { .. }))
            .map(|(r, _)| r.clone())
            .collect();

        let mut alerts = Vec::new();
        if let (Some(since), Some(until)) = (self.embargo.overdue, self.embargo.until)
            && self.embargo.state.in_force()
            && self.closed.is_none()
        {
            alerts.push(Alert::EmbargoOverdue { until, since });
        }
        if let Some((at, ExitReason::Deadline)) = &self.embargo.exit
            && self.release.is_none()
            && self.workflow.embargo.deadline_policy == DeadlinePolicy::HoldAll
            && self.closed.is_none()
        {
            alerts.push(Alert::DeadlinePassedHolding { at: *at });
        }
        if self.forced() && self.closed.is_none() {
            let repos: Vec<RepoId> = self
                .scope()
                .filter(|(_, p)| {
                    !matches!(p.assessment, Assessment::NotAffected { .. })
                        && !p.fix.is_released()
                        && p.advisory.state != RemoteState::Published
                })
                .map(|(r, _)| r.clone())
                .collect();
            if !repos.is_empty() {
                alerts.push(Alert::PublicWithoutFix { repos });
            }
        }
        for (repo, p) in &self.participants {
            if p.advisory.published_elsewhere {
                alerts.push(Alert::PublishedElsewhere { repo: repo.clone() });
            }
            if let Some(copy) = p.global.as_ref().filter(|c| c.alarming()) {
                alerts.push(Alert::GlobalDatabase {
                    repo: repo.clone(),
                    copy: copy.clone(),
                });
            }
            for (key, error) in &p.attention {
                alerts.push(Alert::FailureNeedsPerson {
                    repo: repo.clone(),
                    key: key.clone(),
                    error: error.clone(),
                });
            }
        }
        Plan {
            gate_open: self.gate_open(),
            release: self.release.map(|(_, m)| m),
            embargo: self.embargo.state,
            embargo_until: self.embargo.until,
            embargo_exit: self.embargo.exit.as_ref().map(|(_, r)| r.clone()),
            embargo_request: self
                .embargo
                .request
                .clone()
                .filter(|_| self.embargo.state.in_force()),
            blockers: self.blockers(),
            waves,
            skipped,
            alerts,
            preflight: self.preflight(),
        }
    }
}
