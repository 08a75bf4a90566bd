//! The state of a case, and the fold that rebuilds it from events.
//!
//! `apply` is the only way state changes. It never fails for events the engine produced; for a
//! log that was tampered with or truncated it returns a typed [`ReplayError`], never panics.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::effect::Action;
use crate::event::{Event, EventKind, ExitReason, ReleaseMode};
use crate::ids::{CaseId, CveId, GhsaId, Login, RepoId, Timestamp};
use crate::input::{Actor, FixStage, Outcome, Threat, Verdict};
use crate::machines::{EmState, RmState};
use crate::schedule::Schedule;
use crate::vuln::{PackageFix, Vulnerability};
use crate::workflow::Workflow;

/// A participant's assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Assessment {
    /// Nobody has looked yet.
    Unassessed,
    /// Being looked at.
    Investigating {
        /// Notes.
        reason: String,
    },
    /// Affected.
    Affected {
        /// Why.
        reason: String,
    },
    /// Not affected.
    NotAffected {
        /// Why.
        reason: String,
    },
}

impl Assessment {
    /// The verdict, if any.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Self::Unassessed => None,
            Self::Investigating { .. } => Some(Verdict::Investigating),
            Self::Affected { .. } => Some(Verdict::Affected),
            Self::NotAffected { .. } => Some(Verdict::NotAffected),
        }
    }
}

/// A participant's fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Fix {
    /// No fix yet.
    None,
    /// Prepared, not yet released.
    Prepared {
        /// Per package.
        packages: Vec<PackageFix>,
    },
    /// Released.
    Released {
        /// Per package.
        packages: Vec<PackageFix>,
    },
}

impl Fix {
    /// Whether the fix is released.
    pub fn is_released(&self) -> bool {
        matches!(self, Self::Released { .. })
    }

    /// The packages, if any.
    pub fn packages(&self) -> &[PackageFix] {
        match self {
            Self::None => &[],
            Self::Prepared { packages } | Self::Released { packages } => packages,
        }
    }
}

/// GitHub's advisory states, as the replica last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteState {
    /// No advisory yet.
    None,
    /// A private draft.
    Draft,
    /// Public.
    Published,
    /// Closed without publication.
    Closed,
}

/// The replica of a participant's GitHub advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// Its id, once the draft exists.
    pub ghsa: Option<GhsaId>,
    /// Its state.
    pub state: RemoteState,
    /// Its CVE, once assigned.
    pub cve: Option<CveId>,
    /// Whether a CVE was requested and GitHub accepted the request.
    pub cve_requested: bool,
    /// The temporary private fork, once created.
    pub private_fork: Option<RepoId>,
    /// The siblings its description links.
    pub linked: BTreeMap<RepoId, GhsaId>,
    /// Whether its collaborators were set.
    #[serde(default)]
    pub collaborators_set: bool,
    /// When it was published.
    pub published_at: Option<Timestamp>,
    /// Whether someone other than Lockstep published it.
    pub published_elsewhere: bool,
}

/// One repository's part in the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Whether it is in scope (a removed repository stays, out of scope, for its history).
    pub in_scope: bool,
    /// Bumped each time the repository is added, so that effect keys of a re-added repository
    /// differ from the earlier ones.
    pub generation: u32,
    /// The assessment.
    pub assessment: Assessment,
    /// Vultron RM state.
    pub rm: RmState,
    /// The fix.
    pub fix: Fix,
    /// The GitHub advisory replica.
    pub advisory: Advisory,
    /// Upstream repositories assessed affected while this one was unassessed.
    pub flagged_by: BTreeSet<RepoId>,
    /// A failure that needs a person, by effect key.
    pub attention: BTreeMap<String, String>,
    /// The last retryable failure, for status displays.
    pub last_error: Option<String>,
    /// The lines of a prepared fix already released on their own (by a `release` webhook);
    /// the fix becomes released when every line is. See `engine::lines`.
    #[serde(default)]
    pub released_lines: BTreeSet<PackageFix>,
    /// What the preflight last found (see `engine::preflight`).
    #[serde(default)]
    pub preflight: Vec<crate::engine::preflight::Finding>,
    /// Its advisory's copy in GitHub's global database, once published and read.
    #[serde(default)]
    pub global: Option<crate::propagation::GlobalCopy>,
}

/// The case-wide public-awareness latches (Vultron P, X, A). Once set they stay set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latches {
    /// Public awareness.
    pub public: Option<Timestamp>,
    /// Exploit public.
    pub exploit: Option<Timestamp>,
    /// Attacks observed.
    pub attacks: Option<Timestamp>,
    /// When the vulnerability became public other than through Lockstep's own release: a
    /// report of public awareness or a public exploit, a disclosure order after the embargo,
    /// or an advisory published by someone else. Only then does `publish_after` stop holding.
    #[serde(default)]
    pub public_elsewhere: Option<Timestamp>,
}

/// The case's embargo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embargo {
    /// Vultron EM state.
    pub state: EmState,
    /// The end time in force (or proposed, while Proposed).
    pub until: Option<Timestamp>,
    /// When it became active.
    pub accepted_at: Option<Timestamp>,
    /// No end time may lie past this.
    pub hard_limit: Timestamp,
    /// How and when it ended.
    pub exit: Option<(Timestamp, ExitReason)>,
    /// A participant's pending request for a later end, until a coordinator answers it.
    #[serde(default)]
    pub request: Option<EmbargoRequest>,
    /// When its end passed under `hold-all` while it stayed in force; cleared when a revision
    /// sets a new end.
    #[serde(default)]
    pub overdue: Option<Timestamp>,
}

/// A participant's request for a later embargo end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbargoRequest {
    /// Who asked.
    pub by: Actor,
    /// When.
    pub at: Timestamp,
    /// The end asked for.
    pub until: Timestamp,
    /// Why.
    pub reason: String,
}

/// The status of an effect the engine requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum EffectStatus {
    /// Waiting to run, or running.
    Pending,
    /// Done.
    Succeeded,
    /// Failed; `retryable` failures are retried by the runtime.
    Failed {
        /// Whether it may succeed on a retry.
        retryable: bool,
    },
    /// Replaced before it ran (a publication whose fix changed); it must not run.
    Superseded,
}

/// What the case remembers of a requested effect (the payload lives in the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectRecord {
    /// The repository.
    pub repo: RepoId,
    /// The action's name.
    pub action: String,
    /// The status.
    pub status: EffectStatus,
    /// For an effect that writes the description: the siblings it links.
    pub links: Option<BTreeMap<RepoId, GhsaId>>,
    /// Whether it sets the advisory's collaborators.
    #[serde(default)]
    pub sets_collaborators: bool,
}

/// A case: one vulnerability across several repositories.
///
/// It serialises (for status views) but does not deserialise: a case is only ever rebuilt
/// from its events (`Case::replay`), which also rebuilds the schedule it derives from its
/// workflow.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Its id.
    pub id: CaseId,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Who opened it.
    pub opened_by: Actor,
    /// The workflow it follows, as it was when the case opened.
    pub workflow: Workflow,
    /// What it is about.
    pub vulnerability: Vulnerability,
    /// Per repository.
    pub participants: BTreeMap<RepoId, Participant>,
    /// The embargo.
    pub embargo: Embargo,
    /// Public awareness.
    pub latches: Latches,
    /// When and how the release started.
    pub release: Option<(Timestamp, ReleaseMode)>,
    /// Effects requested, by key.
    pub effects: BTreeMap<String, EffectRecord>,
    /// When and why it was closed.
    pub closed: Option<(Timestamp, String)>,
    /// The private vulnerability reports it opened from or merged, in order.
    #[serde(default)]
    pub reports: Vec<crate::engine::intake::CaseReport>,
    /// The number of events applied; the next event's `seq` is `version + 1`.
    pub version: u64,
    /// The time of the last event.
    pub last_at: Timestamp,
    #[serde(skip)]
    pub(crate) schedule: Option<Schedule>,
}

impl PartialEq for Case {
    fn eq(&self, other: &Self) -> bool {
        // The schedule is derived from the workflow.
        self.id == other.id
            && self.opened_at == other.opened_at
            && self.opened_by == other.opened_by
            && self.workflow == other.workflow
            && self.vulnerability == other.vulnerability
            && self.participants == other.participants
            && self.embargo == other.embargo
            && self.latches == other.latches
            && self.release == other.release
            && self.effects == other.effects
            && self.closed == other.closed
            && self.reports == other.reports
            && self.version == other.version
            && self.last_at == other.last_at
    }
}

/// A log that does not fold into a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The log is empty.
    #[error("the event log is empty")]
    Empty,
    /// The first event does not open a case.
    #[error("event 1 does not open a case")]
    NotOpened,
    /// A gap or repetition in sequence numbers.
    #[error("event {found} follows event {after}: the log has a gap or is out of order")]
    Sequence {
        /// Expected predecessor.
        after: u64,
        /// Found.
        found: u64,
    },
    /// An event that does not fit the state.
    #[error("event {seq} does not apply: {why}")]
    Inconsistent {
        /// Its sequence number.
        seq: u64,
        /// Why.
        why: String,
    },
}

impl Case {
    /// Rebuilds a case from its log.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Case, ReplayError> {
        let mut events = events.into_iter();
        let first = events.next().ok_or(ReplayError::Empty)?;
        let mut case = Case::from_opening(first)?;
        for e in events {
            case.apply(e)?;
        }
        Ok(case)
    }

    pub(crate) fn from_opening(e: &Event) -> Result<Case, ReplayError> {
        let EventKind::CaseOpened {
            case_id,
            workflow,
            scope,
            vulnerability,
            report,
        } = &e.kind
        else {
            return Err(ReplayError::NotOpened);
        };
        if e.seq != 1 {
            return Err(ReplayError::Sequence {
                after: 0,
                found: e.seq,
            });
        }
        let schedule = Schedule::for_workflow(workflow).map_err(|c| ReplayError::Inconsistent {
            seq: 1,
            why: c.to_string(),
        })?;
        let mut participants = BTreeMap::new();
        for repo in scope {
            if !workflow.repos.contains_key(repo) {
                return Err(ReplayError::Inconsistent {
                    seq: 1,
                    why: format!("{repo} is not in the workflow"),
                });
            }
            participants.insert(repo.clone(), Participant::new(1));
        }
        Ok(Case {
            id: case_id.clone(),
            opened_at: e.at,
            opened_by: e.by.clone(),
            vulnerability: vulnerability.clone(),
            participants,
            embargo: Embargo {
                state: EmState::None,
                until: None,
                accepted_at: None,
                hard_limit: e.at.plus_days(workflow.embargo.max_days),
                exit: None,
                request: None,
                overdue: None,
            },
            workflow: workflow.clone(),
            latches: Latches::default(),
            release: None,
            effects: BTreeMap::new(),
            closed: None,
            reports: report
                .iter()
                .map(|origin| crate::engine::intake::CaseReport {
                    origin: origin.clone(),
                    adopted: true,
                })
                .collect(),
            version: 1,
            last_at: e.at,
            schedule: Some(schedule),
        })
    }

    /// The publication schedule.
    pub fn schedule(&mut self) -> &Schedule {
        let workflow = &self.workflow;
        // A case is only ever built from a workflow that validated, which is acyclic; a cyclic
        // one (a tampered log) gets no ordering rather than a panic.
        self.schedule.get_or_insert_with(|| {
            Schedule::for_workflow(workflow).unwrap_or_else(|_| Schedule::empty())
        })
    }

    /// Repositories in scope, sorted.
    pub fn scope(&self) -> impl Iterator<Item = (&RepoId, &Participant)> {
        self.participants.iter().filter(|(_, p)| p.in_scope)
    }

    /// Applies one event. Fails, without changing anything that matters, on an event that does
    /// not fit.
    pub fn apply(&mut self, e: &Event) -> Result<(), ReplayError> {
        if e.seq != self.version + 1 {
            return Err(ReplayError::Sequence {
                after: self.version,
                found: e.seq,
            });
        }
        let bad = |why: String| ReplayError::Inconsistent { seq: e.seq, why };
        match &e.kind {
            EventKind::CaseOpened { .. } => return Err(bad("the case is already open".into())),
            EventKind::RepoAdded { repo } => {
                if !self.workflow.repos.contains_key(repo) {
                    return Err(bad(format!("{repo} is not in the workflow")));
                }
                let generation = self.participants.get(repo).map_or(1, |p| p.generation + 1);
                self.participants
                    .insert(repo.clone(), Participant::new(generation));
            }
            EventKind::RepoRemoved { repo, .. } => {
                self.participant_mut(repo, e.seq)?.in_scope = false;
            }
            EventKind::RmMoved {
                repo,
                from,
                symbol,
                to,
            } => {
                let p = self.participant_mut(repo, e.seq)?;
                if p.rm != *from || from.step(*symbol) != Some(*to) {
                    return Err(bad(format!(
                        "{repo}: no RM edge {from:?} -{symbol:?}-> {to:?}"
                    )));
                }
                p.rm = *to;
            }
            EventKind::Assessed {
                repo,
                verdict,
                reason,
            } => {
                let p = self.participant_mut(repo, e.seq)?;
                let reason = reason.clone();
                p.assessment = match verdict {
                    Verdict::Investigating => Assessment::Investigating { reason },
                    Verdict::Affected => Assessment::Affected { reason },
                    Verdict::NotAffected => Assessment::NotAffected { reason },
                };
                if *verdict != Verdict::Investigating {
                    p.flagged_by.clear();
                }
            }
            EventKind::FlaggedForAssessment { repo, because } => {
                self.participant_mut(repo, e.seq)?
                    .flagged_by
                    .insert(because.clone());
            }
            EventKind::FixMarked {
                repo,
                stage,
                packages,
            } => {
                let p = self.participant_mut(repo, e.seq)?;
                let packages = packages.clone();
                // A line released on its own stays released while the fix still names it.
                p.released_lines.retain(|l| packages.contains(l));
                p.fix = match stage {
                    FixStage::Prepared => Fix::Prepared { packages },
                    FixStage::Released => {
                        p.released_lines.clear();
                        Fix::Released { packages }
                    }
                };
            }
            EventKind::FixRevoked { repo, .. } => {
                let p = self.participant_mut(repo, e.seq)?;
                p.fix = Fix::None;
                p.released_lines.clear();
            }
            EventKind::PreflightChecked { repo, findings } => {
                self.participant_mut(repo, e.seq)?.preflight = findings.clone();
            }
            EventKind::LinesReleased { repo, lines, .. } => {
                let p = self.participant_mut(repo, e.seq)?;
                let Fix::Prepared { packages } = &p.fix else {
                    return Err(bad(format!("{repo} has no prepared fix")));
                };
                if lines.is_empty() || lines.iter().any(|l| !packages.contains(l)) {
                    return Err(bad(format!(
                        "{repo}: a released line is not a line of its fix"
                    )));
                }
                p.released_lines.extend(lines.iter().cloned());
                if packages.iter().all(|l| p.released_lines.contains(l)) {
                    let packages = packages.clone();
                    p.released_lines.clear();
                    p.fix = Fix::Released { packages };
                }
            }
            EventKind::EmMoved {
                from,
                symbol,
                to,
                until,
                exit,
                ..
            } => {
                if self.embargo.state != *from || from.step(*symbol) != Some(*to) {
                    return Err(bad(format!("no EM edge {from:?} -{symbol:?}-> {to:?}")));
                }
                if *to == EmState::Active && until.is_none() {
                    return Err(bad("an active embargo needs an end time".into()));
                }
                self.embargo.state = *to;
                match to {
                    EmState::Active => {
                        if self.embargo.until != *until {
                            self.embargo.overdue = None;
                        }
                        self.embargo.until = *until;
                        if *from == EmState::Proposed {
                            self.embargo.accepted_at = Some(e.at);
                        }
                    }
                    EmState::Proposed => self.embargo.until = *until,
                    EmState::Exited => {
                        let reason = exit.clone().unwrap_or(ExitReason::CaseClosed);
                        self.embargo.exit = Some((e.at, reason));
                    }
                    EmState::None | EmState::Revise => {}
                }
            }
            EventKind::EmbargoOverdue { until } => {
                if !self.embargo.state.in_force() || self.embargo.until != Some(*until) {
                    return Err(bad(format!(
                        "no embargo in force ending at {until} to mark overdue"
                    )));
                }
                self.embargo.overdue = Some(e.at);
            }
            EventKind::ThreatRecorded { threat, .. } => self.latch(*threat, e.at, false),
            EventKind::ReleaseStarted { mode } => {
                if self.release.is_some() {
                    return Err(bad("the release already started".into()));
                }
                self.release = Some((e.at, *mode));
            }
            EventKind::EffectRequested { effect } => {
                if self.effects.contains_key(&effect.key) {
                    return Err(bad(format!("effect {} requested twice", effect.key)));
                }
                let links = match &effect.action {
                    Action::OpenDraft { links, .. }
                    | Action::AdoptReport { links, .. }
                    | Action::LinkSiblings {
                        siblings: links, ..
                    } => Some(links.clone()),
                    _ => None,
                };
                let sets_collaborators = match &effect.action {
                    Action::AddCollaborators { .. } => true,
                    Action::AdoptReport { collaborators, .. } => !collaborators.is_empty(),
                    Action::LinkSiblings { collaborators, .. } => !collaborators.is_empty(),
                    _ => false,
                };
                self.effects.insert(
                    effect.key.clone(),
                    EffectRecord {
                        repo: effect.repo.clone(),
                        action: effect.action.name().to_owned(),
                        status: EffectStatus::Pending,
                        links,
                        sets_collaborators,
                    },
                );
            }
            EventKind::EffectSucceeded { key, outcome } => {
                let record = self
                    .effects
                    .get_mut(key)
                    .ok_or_else(|| bad(format!("unknown effect {key}")))?;
                record.status = EffectStatus::Succeeded;
                let repo = record.repo.clone();
                let links = record.links.clone();
                let sets_collaborators = record.sets_collaborators;
                let at = e.at;
                let p = self.participant_mut(&repo, e.seq)?;
                p.attention.remove(key);
                p.last_error = None;
                if let Some(links) = links {
                    p.advisory.linked = links;
                }
                if sets_collaborators {
                    p.advisory.collaborators_set = true;
                }
                match outcome {
                    Outcome::DraftOpened { ghsa } => {
                        p.advisory.ghsa = Some(ghsa.clone());
                        p.advisory.state = RemoteState::Draft;
                    }
                    Outcome::SiblingsLinked | Outcome::CollaboratorsAdded => {}
                    Outcome::CveRequested => p.advisory.cve_requested = true,
                    Outcome::Published => {
                        p.advisory.state = RemoteState::Published;
                        p.advisory.published_at.get_or_insert(at);
                        self.latch(Threat::PublicAwareness, at, true);
                    }
                    Outcome::DraftClosed => p.advisory.state = RemoteState::Closed,
                    Outcome::Amended | Outcome::ReportClosed => {}
                }
            }
            EventKind::EffectRetried { key, .. } => {
                let record = self
                    .effects
                    .get_mut(key)
                    .ok_or_else(|| bad(format!("unknown effect {key}")))?;
                if record.status != (EffectStatus::Failed { retryable: false }) {
                    return Err(bad(format!("{key} did not fail for good")));
                }
                record.status = EffectStatus::Pending;
                let repo = record.repo.clone();
                self.participant_mut(&repo, e.seq)?.attention.remove(key);
            }
            EventKind::EffectSuperseded { key, .. } => {
                let record = self
                    .effects
                    .get_mut(key)
                    .ok_or_else(|| bad(format!("unknown effect {key}")))?;
                record.status = EffectStatus::Superseded;
                let repo = record.repo.clone();
                // A superseded failure needs nobody any more.
                self.participant_mut(&repo, e.seq)?.attention.remove(key);
            }
            EventKind::EffectFailed {
                key,
                retryable,
                error,
            } => {
                let record = self
                    .effects
                    .get_mut(key)
                    .ok_or_else(|| bad(format!("unknown effect {key}")))?;
                record.status = EffectStatus::Failed {
                    retryable: *retryable,
                };
                let repo = record.repo.clone();
                let p = self.participant_mut(&repo, e.seq)?;
                if *retryable {
                    p.last_error = Some(error.clone());
                } else {
                    p.attention.insert(key.clone(), error.clone());
                }
            }
            EventKind::CveAssigned { repo, cve } => {
                self.participant_mut(repo, e.seq)?.advisory.cve = Some(cve.clone());
            }
            EventKind::PrivateForkCreated { repo, fork } => {
                self.participant_mut(repo, e.seq)?.advisory.private_fork = Some(fork.clone());
            }
            EventKind::PublishedElsewhere { repo, ghsa } => {
                let at = e.at;
                let p = self.participant_mut(repo, e.seq)?;
                if p.advisory.ghsa.is_none() {
                    p.advisory.ghsa = Some(ghsa.clone());
                }
                p.advisory.state = RemoteState::Published;
                p.advisory.published_at.get_or_insert(at);
                p.advisory.published_elsewhere = true;
                self.latch(Threat::PublicAwareness, at, false);
            }
            EventKind::EmbargoExtensionRequested { until, reason } => {
                self.embargo.request = Some(EmbargoRequest {
                    by: e.by.clone(),
                    at: e.at,
                    until: *until,
                    reason: reason.clone(),
                });
            }
            EventKind::EmbargoExtensionAnswered { .. } => {
                if self.embargo.request.take().is_none() {
                    return Err(bad("an answer to no embargo request".into()));
                }
            }
            EventKind::GlobalCopyObserved { repo, copy } => {
                self.participant_mut(repo, e.seq)?.global = Some(copy.clone());
            }
            EventKind::AdvisoryAmended { repo, packages, .. } => {
                let p = self.participant_mut(repo, e.seq)?;
                // The global copy is judged again against the amended packages.
                p.global = None;
                if p.advisory.state != RemoteState::Published {
                    return Err(bad(format!("{repo}'s advisory is not published")));
                }
                p.fix = Fix::Released {
                    packages: packages.clone(),
                };
            }
            EventKind::ReportMerged { origin, adopt, .. } => {
                if self.reports.iter().any(|r| r.origin.ghsa == origin.ghsa) {
                    return Err(bad(format!("report {} merged twice", origin.ghsa)));
                }
                if !self
                    .participants
                    .get(&origin.repo)
                    .is_some_and(|p| p.in_scope)
                {
                    return Err(bad(format!("{} is not in the case", origin.repo)));
                }
                crate::engine::intake::credit_reporter(
                    &mut self.vulnerability.credits,
                    &origin.reporter,
                );
                self.reports.push(crate::engine::intake::CaseReport {
                    origin: origin.clone(),
                    adopted: *adopt,
                });
            }
            EventKind::CaseClosed { reason } => {
                if self.closed.is_some() {
                    return Err(bad("the case is already closed".into()));
                }
                self.closed = Some((e.at, reason.clone()));
            }
        }
        self.version = e.seq;
        self.last_at = self.last_at.max(e.at);
        Ok(())
    }

    /// Sets a latch; `ours` when Lockstep's own publication made the vulnerability public.
    fn latch(&mut self, threat: Threat, at: Timestamp, ours: bool) {
        let l = &mut self.latches;
        if !ours && threat != Threat::AttacksObserved {
            l.public_elsewhere.get_or_insert(at);
        }
        match threat {
            Threat::PublicAwareness => {
                l.public.get_or_insert(at);
            }
            Threat::ExploitPublic => {
                // A public exploit is public awareness (Vultron: pX is ephemeral).
                l.exploit.get_or_insert(at);
                l.public.get_or_insert(at);
            }
            Threat::AttacksObserved => {
                l.attacks.get_or_insert(at);
            }
        }
    }

    fn participant_mut(
        &mut self,
        repo: &RepoId,
        seq: u64,
    ) -> Result<&mut Participant, ReplayError> {
        self.participants
            .get_mut(repo)
            .ok_or_else(|| ReplayError::Inconsistent {
                seq,
                why: format!("{repo} is not a participant"),
            })
    }

    /// Who may read the case (its embargoed details): a coordinator of its workflow, or a
    /// maintainer (named in the workflow, or by GitHub's admin/maintain permission where it
    /// names none) of one of its repositories. Automation reads nothing through this door.
    pub fn may_view(&self, principal: &crate::input::Principal) -> bool {
        match &principal.actor {
            Actor::User(login) => {
                self.workflow.is_coordinator(login)
                    || self.participants.keys().any(|repo| {
                        self.maintainer_source(login, repo, &principal.github_maintains)
                            .is_some()
                    })
            }
            Actor::Automation => false,
        }
    }

    /// Why [`Case::may_view`] refuses `principal`: one message for the CLI and the HTTP API.
    pub fn view_refusal(&self, principal: &crate::input::Principal) -> String {
        format!(
            "refused: {} is neither a coordinator of workflow {:?} nor a maintainer of a repository in case {}",
            principal.actor, self.workflow.name, self.id
        )
    }

    /// Every repository of the case, in scope or not: those whose permissions decide
    /// [`Case::may_view`].
    pub fn repos(&self) -> Vec<RepoId> {
        self.participants.keys().cloned().collect()
    }

    /// Whether `login` may act for `repo` as its maintainer, and on what grounds.
    pub fn maintainer_source(
        &self,
        login: &Login,
        repo: &RepoId,
        github_maintains: &BTreeSet<RepoId>,
    ) -> Option<crate::auth::MaintainerSource> {
        let spec = self.workflow.repos.get(repo)?;
        match &spec.maintainers {
            Some(list) => list
                .contains(login)
                .then_some(crate::auth::MaintainerSource::Workflow),
            None => github_maintains
                .contains(repo)
                .then_some(crate::auth::MaintainerSource::GithubPermission),
        }
    }
}

impl Participant {
    fn new(generation: u32) -> Self {
        Participant {
            in_scope: true,
            generation,
            assessment: Assessment::Unassessed,
            rm: RmState::Start,
            fix: Fix::None,
            advisory: Advisory {
                ghsa: None,
                state: RemoteState::None,
                cve: None,
                cve_requested: false,
                private_fork: None,
                linked: BTreeMap::new(),
                collaborators_set: false,
                published_at: None,
                published_elsewhere: false,
            },
            flagged_by: BTreeSet::new(),
            attention: BTreeMap::new(),
            last_error: None,
            released_lines: BTreeSet::new(),
            preflight: Vec::new(),
            global: None,
        }
    }
}
