//! Events: past-tense facts, the only thing persisted. A case's state is a fold over them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::effect::Effect;
use crate::ids::{CaseId, CveId, GhsaId, RepoId, Timestamp};
use crate::input::{Actor, FixStage, Outcome, Threat, Verdict};
use crate::machines::{EmState, EmSymbol, RmState, RmSymbol};
use crate::vuln::{PackageFix, Vulnerability};
use crate::workflow::Workflow;

/// Why an embargo ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum ExitReason {
    /// Every affected repository had its fix released.
    AllFixesReady,
    /// The deadline passed.
    Deadline,
    /// A coordinator disclosed now.
    Disclosed {
        /// Their reason.
        reason: String,
    },
    /// Someone else published an advisory of the case.
    Leak {
        /// Where.
        repo: RepoId,
    },
    /// A threat was recorded.
    Threat {
        /// Which.
        threat: Threat,
    },
    /// The case was closed.
    CaseClosed,
}

impl ExitReason {
    /// Whether the embargo ended because the vulnerability is (or must be treated as) public,
    /// which releases every advisory whose fix is released, whatever the others' state.
    pub fn forces_release(&self) -> bool {
        matches!(
            self,
            Self::Disclosed { .. } | Self::Leak { .. } | Self::Threat { .. }
        )
    }
}

/// How the release was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseMode {
    /// The gate opened: every affected repository had its fix released.
    Gate,
    /// The deadline passed under `publish-ready`.
    DeadlinePublishReady,
    /// The vulnerability is public: publish every released fix now.
    Forced,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
#[allow(missing_docs)]
pub enum EventKind {
    CaseOpened {
        case_id: CaseId,
        workflow: Workflow,
        scope: BTreeSet<RepoId>,
        vulnerability: Vulnerability,
        /// The report the case opened from, whose advisory it adopts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<crate::engine::intake::ReportOrigin>,
    },
    /// A second report of the case's vulnerability joined it: adopted as its repository's
    /// advisory, or closed as a duplicate. Its reporter is credited.
    ReportMerged {
        origin: crate::engine::intake::ReportOrigin,
        adopt: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    RepoAdded {
        repo: RepoId,
    },
    RepoRemoved {
        repo: RepoId,
        reason: String,
    },
    /// One Vultron RM edge.
    RmMoved {
        repo: RepoId,
        from: RmState,
        symbol: RmSymbol,
        to: RmState,
    },
    Assessed {
        repo: RepoId,
        verdict: Verdict,
        reason: String,
    },
    /// Impact propagation: an upstream was assessed affected.
    FlaggedForAssessment {
        repo: RepoId,
        because: RepoId,
    },
    FixMarked {
        repo: RepoId,
        stage: FixStage,
        packages: Vec<PackageFix>,
    },
    FixRevoked {
        repo: RepoId,
        reason: String,
    },
    /// What the preflight found for a repository (replacing earlier findings).
    PreflightChecked {
        repo: RepoId,
        findings: Vec<crate::engine::preflight::Finding>,
    },
    /// A published release (`tag`) released these lines of a prepared fix; when every line is
    /// released, the fix is.
    LinesReleased {
        repo: RepoId,
        tag: String,
        lines: Vec<PackageFix>,
    },
    /// One Vultron EM edge. `until` is the end time a propose or accept concerns; `exit` says
    /// why a terminate happened.
    EmMoved {
        from: EmState,
        symbol: EmSymbol,
        to: EmState,
        until: Option<Timestamp>,
        reason: Option<String>,
        exit: Option<ExitReason>,
    },
    /// The embargo's end passed under `hold-all`: it stays in force, marked overdue, until
    /// a coordinator revises its end, discloses, or the gate opens. `until` is the end that
    /// passed.
    EmbargoOverdue {
        until: Timestamp,
    },
    ThreatRecorded {
        threat: Threat,
        reason: String,
    },
    ReleaseStarted {
        mode: ReleaseMode,
    },
    EffectRequested {
        effect: Effect,
    },
    EffectSucceeded {
        key: String,
        outcome: Outcome,
    },
    EffectFailed {
        key: String,
        retryable: bool,
        error: String,
    },
    /// A requested effect that must no longer run: a publication whose fix changed (its content
    /// would be stale), or whose repository left the case.
    EffectSuperseded {
        key: String,
        reason: String,
    },
    /// An effect that failed for good is due again, by a person's decision.
    EffectRetried {
        key: String,
        reason: String,
    },
    CveAssigned {
        repo: RepoId,
        cve: CveId,
    },
    PrivateForkCreated {
        repo: RepoId,
        fork: RepoId,
    },
    /// An advisory was published that Lockstep had not asked to publish.
    PublishedElsewhere {
        repo: RepoId,
        ghsa: GhsaId,
    },
    CaseClosed {
        reason: String,
    },
    /// A participant asked for a later embargo end.
    EmbargoExtensionRequested {
        until: Timestamp,
        reason: String,
    },
    /// A coordinator answered the pending request: granted (the embargo was set) or declined.
    EmbargoExtensionAnswered {
        granted: bool,
        reason: String,
    },
    /// The advisory's copy in GitHub's global database was judged anew.
    GlobalCopyObserved {
        repo: RepoId,
        copy: crate::propagation::GlobalCopy,
    },
    /// A published advisory's packages changed: the fix is now `packages`.
    AdvisoryAmended {
        repo: RepoId,
        packages: Vec<PackageFix>,
        reason: String,
    },
}

/// One persisted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the case's log, from 1.
    pub seq: u64,
    /// When it was decided.
    pub at: Timestamp,
    /// Who caused it.
    pub by: Actor,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}
