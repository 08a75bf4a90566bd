//! Why the engine refuses an input. Rejections are values, never panics, and a rejected input
//! changes nothing.

use serde::Serialize;

use crate::ids::{Login, RepoId, Timestamp};

/// Why an actor may not do what they tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "denial")]
pub enum Denial {
    /// Only a coordinator or a maintainer of a repository in the case may do this.
    #[error("{login} is neither a coordinator nor a maintainer of a repository in this case")]
    NotParticipant {
        /// Who tried.
        login: Login,
    },
    /// Only a coordinator of the workflow may do this.
    #[error("{login} is not a coordinator of workflow {workflow:?}, and only a coordinator may")]
    NotCoordinator {
        /// Who tried.
        login: Login,
        /// The workflow's name.
        workflow: String,
    },
    /// A per-repository command by someone who neither coordinates nor maintains it.
    #[error("{login} is not a coordinator and does not maintain {repo}")]
    NotMaintainer {
        /// Who tried.
        login: Login,
        /// The repository.
        repo: RepoId,
    },
    /// Automation acts only on what it observes.
    #[error("automation may only record observations and promote a prepared fix to released")]
    AutomationOnlyObserves,
    /// A person tried to record an observation.
    #[error("only automation or a coordinator records observations")]
    ObservationNeedsAutomation,
}

/// A refused input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "rejection")]
pub enum Rejection {
    /// The actor may not do this.
    #[error("refused: {actor} may not {action}: {why}")]
    NotAuthorized {
        /// Who tried.
        actor: String,
        /// What they tried.
        action: &'static str,
        /// Why not.
        why: Denial,
    },
    /// The case is closed.
    #[error("the case is closed")]
    CaseClosed,
    /// The repository is not part of the case's workflow.
    #[error("{repo} is not a repository of workflow {workflow:?}")]
    NotInWorkflow {
        /// The repository.
        repo: RepoId,
        /// The workflow's name.
        workflow: String,
    },
    /// The repository is not in the case.
    #[error("{repo} is not in this case")]
    NotInCase {
        /// The repository.
        repo: RepoId,
    },
    /// The repository is in the case already.
    #[error("{repo} is in this case already")]
    AlreadyInCase {
        /// The repository.
        repo: RepoId,
    },
    /// Removing it would leave the case empty.
    #[error("a case keeps at least one repository; close the case instead")]
    LastRepository,
    /// The repository's advisory is already public; nothing about it can change.
    #[error("{repo}'s advisory is already published")]
    AlreadyPublished {
        /// The repository.
        repo: RepoId,
    },
    /// A field is missing or malformed.
    #[error("{field}: {why}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The embargo end is not in the future.
    #[error("the embargo end {until} is not after now ({now})")]
    EmbargoInPast {
        /// Requested end.
        until: Timestamp,
        /// Now.
        now: Timestamp,
    },
    /// The embargo end lies past the workflow's `max_days`.
    #[error(
        "the embargo end {until} is past the workflow's limit of {max_days} days after opening ({limit})"
    )]
    EmbargoTooLong {
        /// Requested end.
        until: Timestamp,
        /// The workflow's `max_days`.
        max_days: u32,
        /// The latest allowed end.
        limit: Timestamp,
    },
    /// No embargo request is pending.
    #[error("no embargo extension request is pending")]
    NoEmbargoRequest,
    /// The embargo has ended; it cannot be set again.
    #[error("the embargo has ended; a new one cannot start once it has")]
    EmbargoEnded,
    /// The repository has no such package in the workflow.
    #[error("{repo} has no package {package:?} in the workflow")]
    UnknownPackage {
        /// The repository.
        repo: RepoId,
        /// The package.
        package: String,
    },
    /// There is no fix to revoke.
    #[error("{repo} has no fix mark to revoke")]
    NoFix {
        /// The repository.
        repo: RepoId,
    },
    /// The input contradicts the recorded assessment.
    #[error("{repo}: {why}")]
    Contradiction {
        /// The repository.
        repo: RepoId,
        /// What contradicts what.
        why: String,
    },
    /// Nothing of the repository failed for good, so there is nothing to retry.
    #[error("{repo} has no failed effect to retry")]
    NothingToRetry {
        /// The repository.
        repo: RepoId,
    },
    /// An observation names an effect the case never requested.
    #[error("no effect {key} was requested in this case")]
    UnknownEffect {
        /// The key.
        key: String,
    },
    /// An event the engine produced did not apply: a bug, reported rather than panicking.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Rejection {
    /// Whether this is an authorization refusal (the CLI gives it its own exit code).
    pub fn is_not_authorized(&self) -> bool {
        matches!(self, Self::NotAuthorized { .. })
    }
}
