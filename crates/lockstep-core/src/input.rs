//! What comes into the engine: who is acting, and the commands and observations they submit.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{CaseId, CveId, GhsaId, Login, RepoId, Timestamp};
use crate::vuln::{PackageFix, Vulnerability};
use crate::workflow::Workflow;

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A GitHub user.
    User(Login),
    /// Lockstep's own automation: the release runtime and verified webhooks.
    Automation,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(l) => write!(f, "{l}"),
            Self::Automation => f.write_str("automation"),
        }
    }
}

/// How the actor was authenticated, as recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A GitHub token resolved to a login through `GET /user`.
    GithubToken,
    /// A webhook delivery whose signature verified.
    WebhookSignature,
    /// The runtime itself.
    Runtime,
}

/// An authenticated actor, with the facts about them that the caller gathered from GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// How they were authenticated.
    pub authenticated_by: AuthMethod,
    /// Repositories where GitHub reports them with admin or maintain permission. Consulted
    /// only for repositories whose workflow entry names no maintainers.
    pub github_maintains: BTreeSet<RepoId>,
}

impl Principal {
    /// A user authenticated by token, with no GitHub permissions gathered.
    pub fn user(login: Login) -> Self {
        Self {
            actor: Actor::User(login),
            authenticated_by: AuthMethod::GithubToken,
            github_maintains: BTreeSet::new(),
        }
    }

    /// Lockstep's runtime.
    pub fn automation() -> Self {
        Self {
            actor: Actor::Automation,
            authenticated_by: AuthMethod::Runtime,
            github_maintains: BTreeSet::new(),
        }
    }
}

/// Opens a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCase {
    /// The new case's id, chosen by the caller.
    pub case_id: CaseId,
    /// The workflow, parsed; it is copied into the case so that replay needs nothing else.
    pub workflow: Workflow,
    /// The repositories in scope; empty means every repository of the workflow.
    pub scope: BTreeSet<RepoId>,
    /// The vulnerability.
    pub vulnerability: Vulnerability,
    /// The embargo's end; default `default_days` after opening.
    pub embargo_until: Option<Timestamp>,
}

/// A participant's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Still looking.
    Investigating,
    /// Affected: a fix is needed before publication.
    Affected,
    /// Not affected: skipped at release, its draft closed.
    NotAffected,
}

/// How far a fix has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixStage {
    /// Ready in private (for example merged in the temporary private fork).
    Prepared,
    /// Released in a version users can install: the gate counts only these.
    Released,
}

/// Something known to be public, which ends the embargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threat {
    /// The public knows (Vultron P).
    PublicAwareness,
    /// An exploit is public (Vultron X; implies P).
    ExploitPublic,
    /// Attacks are observed (Vultron A).
    AttacksObserved,
}

/// A command, from a person (or, for promoting a prepared fix, automation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    /// Brings a repository of the workflow into the case.
    AddRepo {
        /// The repository.
        repo: RepoId,
    },
    /// Takes a repository out of the case; its draft is closed.
    RemoveRepo {
        /// The repository.
        repo: RepoId,
        /// Why.
        reason: String,
    },
    /// Records an assessment.
    Assess {
        /// The repository.
        repo: RepoId,
        /// The verdict.
        verdict: Verdict,
        /// Why.
        reason: String,
    },
    /// Marks a fix prepared or released. On an unassessed repository it also records it as
    /// affected.
    MarkFix {
        /// The repository.
        repo: RepoId,
        /// How far the fix has come.
        stage: FixStage,
        /// Per package: the vulnerable range and patched versions.
        packages: Vec<PackageFix>,
    },
    /// Withdraws a fix mark.
    RevokeFix {
        /// The repository.
        repo: RepoId,
        /// Why.
        reason: String,
    },
    /// Puts a repository's effects that failed for good back in line, once a person has dealt
    /// with the cause (a permission, a rejected field). The next attempt reconciles with
    /// GitHub before it writes.
    Retry {
        /// The repository.
        repo: RepoId,
        /// What was done about the failure.
        reason: String,
    },
    /// Sets or extends (or shortens) the embargo.
    SetEmbargo {
        /// The new end.
        until: Timestamp,
        /// Why.
        reason: String,
    },
    /// Ends the embargo at once and publishes every advisory whose fix is released.
    DiscloseNow {
        /// Why (a leak, exploitation observed…).
        reason: String,
    },
    /// Records that something became public or that attacks are observed.
    RecordThreat {
        /// What.
        threat: Threat,
        /// The evidence.
        reason: String,
    },
    /// A participant asks the coordinators for a later embargo end. A coordinator grants it
    /// with `SetEmbargo` or declines it with `DeclineEmbargo`; a newer request replaces it.
    RequestEmbargo {
        /// The end asked for.
        until: Timestamp,
        /// Why more time is needed.
        reason: String,
    },
    /// A coordinator declines the pending embargo request.
    DeclineEmbargo {
        /// Why.
        reason: String,
    },
    /// Changes a published advisory's packages: a fix found incomplete. Every package named
    /// (none: every package of the fix) takes the range and patched versions given; a package
    /// the fix did not name is added, and needs patched versions.
    Amend {
        /// The repository.
        repo: RepoId,
        /// The packages concerned; empty: every package of the fix.
        #[serde(default)]
        packages: Vec<String>,
        /// The new vulnerable range.
        #[serde(default)]
        vulnerable_range: Option<String>,
        /// The new patched versions.
        #[serde(default)]
        patched_versions: Option<String>,
        /// Why (recorded in the audit trail and shown in the exports' history).
        reason: String,
    },
    /// A second report of the case's vulnerability joins it (`report merge`): adopted as its
    /// repository's advisory if the case has none there yet, otherwise closed as a duplicate.
    /// Its reporter is credited either way. Coordinators only.
    MergeReport {
        /// The report's repository.
        repo: RepoId,
        /// The report's advisory.
        ghsa: GhsaId,
        /// Who filed it.
        reporter: Login,
        /// Why, if given.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Closes the case; unpublished drafts are closed.
    Close {
        /// Why.
        reason: String,
    },
}

/// What an executed effect achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The draft exists, with this id.
    DraftOpened {
        /// Its id.
        ghsa: GhsaId,
    },
    /// The description now links the siblings.
    SiblingsLinked,
    /// The collaborators were added.
    CollaboratorsAdded,
    /// GitHub accepted the CVE request.
    CveRequested,
    /// The advisory is published.
    Published,
    /// The draft is closed.
    DraftClosed,
    /// The published advisory carries the amended packages.
    Amended,
    /// A duplicate report's advisory is closed.
    ReportClosed,
}

/// A fact from the outside world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "observation")]
pub enum Observation {
    /// An effect succeeded.
    EffectSucceeded {
        /// The effect's idempotency key.
        key: String,
        /// What it achieved.
        #[serde(flatten)]
        outcome: Outcome,
    },
    /// An effect failed.
    EffectFailed {
        /// The effect's idempotency key.
        key: String,
        /// Whether trying again may help.
        retryable: bool,
        /// What went wrong (no secrets).
        error: String,
    },
    /// GitHub assigned a CVE.
    CveAssigned {
        /// The repository.
        repo: RepoId,
        /// The CVE.
        cve: CveId,
    },
    /// GitHub created the temporary private fork.
    PrivateForkCreated {
        /// The repository.
        repo: RepoId,
        /// The fork.
        fork: RepoId,
    },
    /// A release was published on GitHub (the `release` webhook): it releases the lines of the
    /// repository's prepared fix whose patched version its tag satisfies.
    ReleasePublished {
        /// The repository.
        repo: RepoId,
        /// The release's tag.
        tag: String,
    },
    /// What the preflight found for a repository (see `engine::preflight`); an empty list
    /// clears earlier findings.
    PreflightChecked {
        /// The repository.
        repo: RepoId,
        /// The findings.
        findings: Vec<crate::engine::preflight::Finding>,
    },
    /// The runtime (or the `security_advisory` webhook) read the advisory's copy in GitHub's
    /// global database; `None`: there is none (yet).
    GlobalCopyRead {
        /// The repository.
        repo: RepoId,
        /// What the read found.
        read: Option<crate::propagation::GlobalRead>,
    },
    /// An advisory of the case was seen published (webhook or poll). If Lockstep did not ask
    /// for it, someone else pressed the button: a leak.
    AdvisoryPublished {
        /// The repository.
        repo: RepoId,
        /// The advisory.
        ghsa: GhsaId,
    },
}

/// Any input to an open case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum Input {
    /// A command.
    Command(Command),
    /// An observation.
    Observation(Observation),
    /// Time passes: fire whatever is due.
    Tick,
}
