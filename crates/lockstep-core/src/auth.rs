//! Authorization. It lives in the core so that the CLI, the HTTP API and webhooks cannot
//! disagree about who may do what.
//!
//! - A coordinator of the case's workflow may do anything.
//! - A maintainer may assess, mark or revoke fixes, and retry effects that failed for good, only
//!   for the repositories they maintain (named in the workflow, or, where it names none, by
//!   GitHub's admin or maintain permission).
//! - Automation may record observations, tick the clock, and promote a prepared fix to released.
//! - Anyone else is refused with a typed reason ([`Denial`]).

use serde::{Deserialize, Serialize};

use crate::ids::RepoId;
use crate::input::{Actor, AuthMethod, Command, FixStage, Input};
use crate::model::{Case, Fix};
use crate::reject::{Denial, Rejection};

/// Where a maintainer's authority comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintainerSource {
    /// The workflow names them.
    Workflow,
    /// GitHub reports admin or maintain permission, and the workflow names nobody.
    GithubPermission,
}

/// The role under which an input was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    /// A coordinator of the workflow.
    Coordinator,
    /// A maintainer of one repository.
    Maintainer {
        /// The repository.
        repo: RepoId,
        /// Why they count as its maintainer.
        via: MaintainerSource,
    },
    /// Lockstep's automation.
    Automation,
}

/// Who acted, how they were authenticated, and the role that allowed it: what the audit
/// trail records for every committed input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// Who.
    pub actor: Actor,
    /// How they were authenticated.
    pub authenticated_by: AuthMethod,
    /// The role that allowed it.
    #[serde(flatten)]
    pub role: Role,
}

/// The repository a command acts on, if it is one of the per-repository commands.
fn repo_command(cmd: &Command) -> Option<&RepoId> {
    match cmd {
        Command::Assess { repo, .. }
        | Command::MarkFix { repo, .. }
        | Command::RevokeFix { repo, .. }
        | Command::Retry { repo, .. }
        | Command::Amend { repo, .. } => Some(repo),
        _ => None,
    }
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::AddRepo { .. } => "add a repository",
        Command::RemoveRepo { .. } => "remove a repository",
        Command::Assess { .. } => "assess",
        Command::MarkFix { .. } => "mark a fix",
        Command::RevokeFix { .. } => "revoke a fix",
        Command::Retry { .. } => "retry a failed effect",
        Command::SetEmbargo { .. } => "set the embargo",
        Command::DiscloseNow { .. } => "disclose now",
        Command::RecordThreat { .. } => "record a threat",
        Command::Close { .. } => "close the case",
        Command::RequestEmbargo { .. } => "request an embargo extension",
        Command::DeclineEmbargo { .. } => "decline an embargo request",
        Command::Amend { .. } => "amend a published advisory",
        Command::MergeReport { .. } => "merge a report",
    }
}

/// Decides whether `principal` may submit `input` to `case`.
pub fn authorize(
    case: &Case,
    principal: &crate::input::Principal,
    input: &Input,
) -> Result<Authority, Rejection> {
    let allow = |role| {
        Ok(Authority {
            actor: principal.actor.clone(),
            authenticated_by: principal.authenticated_by,
            role,
        })
    };
    match &principal.actor {
        Actor::Automation => match input {
            Input::Observation(_) | Input::Tick => allow(Role::Automation),
            Input::Command(Command::MarkFix {
                repo,
                stage: FixStage::Released,
                ..
            }) if case
                .participants
                .get(repo)
                .is_some_and(|p| matches!(p.fix, Fix::Prepared { .. })) =>
            {
                allow(Role::Automation)
            }
            Input::Command(cmd) => Err(Rejection::NotAuthorized {
                actor: principal.actor.to_string(),
                action: command_name(cmd),
                why: Denial::AutomationOnlyObserves,
            }),
        },
        Actor::User(login) => {
            if case.workflow.is_coordinator(login) {
                return allow(Role::Coordinator);
            }
            if let Input::Command(cmd @ Command::RequestEmbargo { .. }) = input {
                // Any participant may ask: a maintainer of some repository in the case.
                return match crate::engine::extension::maintained_repo(
                    case,
                    login,
                    &principal.github_maintains,
                ) {
                    Some((repo, via)) => allow(Role::Maintainer { repo, via }),
                    None => Err(Rejection::NotAuthorized {
                        actor: login.to_string(),
                        action: command_name(cmd),
                        why: Denial::NotParticipant {
                            login: login.clone(),
                        },
                    }),
                };
            }
            match input {
                Input::Command(cmd) => match repo_command(cmd) {
                    Some(repo) => {
                        match case.maintainer_source(login, repo, &principal.github_maintains) {
                            Some(via) => allow(Role::Maintainer {
                                repo: repo.clone(),
                                via,
                            }),
                            None => Err(Rejection::NotAuthorized {
                                actor: login.to_string(),
                                action: command_name(cmd),
                                why: Denial::NotMaintainer {
                                    login: login.clone(),
                                    repo: repo.clone(),
                                },
                            }),
                        }
                    }
                    None => Err(Rejection::NotAuthorized {
                        actor: login.to_string(),
                        action: command_name(cmd),
                        why: Denial::NotCoordinator {
                            login: login.clone(),
                            workflow: case.workflow.name.clone(),
                        },
                    }),
                },
                Input::Observation(_) | Input::Tick => Err(Rejection::NotAuthorized {
                    actor: login.to_string(),
                    action: "record an observation",
                    why: Denial::ObservationNeedsAutomation,
                }),
            }
        }
    }
}
