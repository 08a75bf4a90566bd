//! Intake: private vulnerability reports, and the decisions taken on them.
//!
//! A reporter files a private vulnerability report on one repository: an advisory in state
//! `triage`, written by them. Lockstep records it as a [`Report`] (from the `reported`
//! webhook or a poll of `?state=triage`), and the people with authority decide:
//!
//! - **accept**: a case opens from it ([`Case::open_from_report`]); the report's advisory is
//!   *adopted* as the case's advisory for its repository (accepted `triage` → `draft`,
//!   linked to its siblings and given its collaborators in one PATCH), never duplicated;
//! - **merge**: a second report of a known vulnerability joins a case
//!   ([`Command::MergeReport`]): adopted if the case has no advisory in that repository yet,
//!   otherwise closed on GitHub as a duplicate; either way its reporter is credited;
//! - **reject**: closed on GitHub, under one of the workflow's out-of-scope rules or not.
//!
//! In Vultron's RM, accepting or merging moves the report Received → Valid, rejecting it
//! Received → Invalid → Closed.
//!
//! Authority ([`authorize_report`]): coordinators of a workflow that lists the report's
//! repository may do everything; the repository's maintainers (named in the workflow, or by
//! GitHub's admin or maintain permission where it names none) may list, show and reject,
//! since they receive the report first; anyone else is refused.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Tx;
use crate::auth::{Authority, MaintainerSource, Role};
use crate::effect::Action;
use crate::event::EventKind;
use crate::ids::{CaseId, CweId, GhsaId, Login, RepoId, Timestamp};
use crate::input::{Actor, OpenCase, Principal};
use crate::machines::{RmState, RmSymbol};
use crate::model::Case;
use crate::reject::{Denial, Rejection};
use crate::vuln::{Credit, CreditType, Rating, Severity, Vulnerability};
use crate::workflow::{OutOfScopeRule, Workflow};

/// The report a case adopts: the reporter's advisory, in its repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportOrigin {
    /// The repository it was filed on.
    pub repo: RepoId,
    /// The reporter's advisory.
    pub ghsa: GhsaId,
    /// Who filed it.
    pub reporter: Login,
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Awaiting triage.
    New,
    /// A case opened from it.
    Accepted,
    /// Joined a case as a second report of its vulnerability.
    Merged,
    /// Closed without a case.
    Rejected,
}

impl ReportState {
    /// The name used in the CLI, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Accepted => "accepted",
            Self::Merged => "merged",
            Self::Rejected => "rejected",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "new" => Self::New,
            "accepted" => Self::Accepted,
            "merged" => Self::Merged,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// What was decided about a report, by whom, and under which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDecision {
    /// Who decided.
    pub by: Login,
    /// The role that allowed it.
    #[serde(flatten)]
    pub role: Role,
    /// When (the database's clock).
    pub at: Timestamp,
    /// Why, if given.
    pub reason: Option<String>,
    /// The out-of-scope rule a rejection was made under.
    pub rule: Option<OutOfScopeRule>,
}

/// A private vulnerability report, as Lockstep recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The repository it was filed on.
    pub repo: RepoId,
    /// Its advisory.
    pub ghsa: GhsaId,
    /// The reporter's summary.
    pub summary: String,
    /// The reporter's description.
    pub description: String,
    /// The reporter's severity or CVSS vector, if they gave one.
    pub rating: Option<Rating>,
    /// The reporter's CWE ids.
    pub cwes: BTreeSet<CweId>,
    /// The credits on the report (GitHub credits the reporter as `reporter`).
    pub credits: Vec<Credit>,
    /// Who filed it.
    pub reporter: Login,
    /// When Lockstep first saw it.
    pub received_at: Timestamp,
    /// Where it stands.
    pub state: ReportState,
    /// The case it opened or joined.
    pub case_id: Option<CaseId>,
    /// Its Vultron RM state.
    pub rm: RmState,
    /// The decision, once taken.
    pub decision: Option<ReportDecision>,
}

/// What a person does with a report; [`authorize_report`] decides who may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportAction {
    /// List or show it.
    View,
    /// Reject it.
    Reject,
    /// Open a case from it.
    Accept,
    /// Merge it into a case.
    Merge,
}

impl ReportAction {
    fn name(self) -> &'static str {
        match self {
            Self::View => "read reports",
            Self::Reject => "reject a report",
            Self::Accept => "open a case from a report",
            Self::Merge => "merge a report",
        }
    }
}

/// A report decision, ready for the store: the report as it now is, the RM edges it moved
/// along, and the authority that allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The report after the decision.
    pub report: Report,
    /// The RM edges, in order.
    pub rm_moves: Vec<(RmState, RmSymbol, RmState)>,
    /// Who decided, under which role.
    pub authority: Authority,
    /// Whether the report's advisory must be closed on GitHub.
    pub close_on_github: bool,
}

fn report_error(why: String) -> Rejection {
    Rejection::Invalid {
        field: "report",
        why,
    }
}

/// Whether `principal` may do `action` with a report filed on `repo`, given the workflows
/// (`workflows`) that list it. A repository no workflow lists is bad input, not a refusal.
pub fn authorize_report(
    principal: &Principal,
    repo: &RepoId,
    workflows: &[&Workflow],
    action: ReportAction,
) -> Result<Authority, Rejection> {
    let listing: Vec<&Workflow> = workflows
        .iter()
        .copied()
        .filter(|w| w.repos.contains_key(repo))
        .collect();
    if listing.is_empty() {
        return Err(report_error(format!(
            "{repo} is not a repository of any workflow"
        )));
    }
    let Actor::User(login) = &principal.actor else {
        return Err(Rejection::NotAuthorized {
            actor: principal.actor.to_string(),
            action: action.name(),
            why: Denial::AutomationOnlyObserves,
        });
    };
    let allow = |role| {
        Ok(Authority {
            actor: principal.actor.clone(),
            authenticated_by: principal.authenticated_by,
            role,
        })
    };
    if listing.iter().any(|w| w.is_coordinator(login)) {
        return allow(Role::Coordinator);
    }
    let via =
        listing.iter().find_map(
            |w| match w.repos.get(repo).and_then(|s| s.maintainers.as_ref()) {
                Some(list) => list.contains(login).then_some(MaintainerSource::Workflow),
                None => principal
                    .github_maintains
                    .contains(repo)
                    .then_some(MaintainerSource::GithubPermission),
            },
        );
    match (via, action) {
        (Some(via), ReportAction::View | ReportAction::Reject) => allow(Role::Maintainer {
            repo: repo.clone(),
            via,
        }),
        (Some(_), _) => Err(Rejection::NotAuthorized {
            actor: login.to_string(),
            action: action.name(),
            why: Denial::NotCoordinator {
                login: login.clone(),
                workflow: listing[0].name.clone(),
            },
        }),
        (None, _) => Err(Rejection::NotAuthorized {
            actor: login.to_string(),
            action: action.name(),
            why: Denial::NotMaintainer {
                login: login.clone(),
                repo: repo.clone(),
            },
        }),
    }
}

impl Report {
    /// A report just seen: RM Received (Start → Received).
    #[allow(clippy::too_many_arguments)]
    pub fn received(
        repo: RepoId,
        ghsa: GhsaId,
        summary: String,
        description: String,
        rating: Option<Rating>,
        cwes: BTreeSet<CweId>,
        credits: Vec<Credit>,
        reporter: Login,
        received_at: Timestamp,
    ) -> Report {
        Report {
            repo,
            ghsa,
            summary,
            description,
            rating,
            cwes,
            credits,
            reporter,
            received_at,
            state: ReportState::New,
            case_id: None,
            rm: RmState::Received,
            decision: None,
        }
    }

    /// The reference `OWNER/REPO/GHSA-…`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.repo, self.ghsa)
    }

    /// The adoption a case records for it.
    pub fn origin(&self) -> ReportOrigin {
        ReportOrigin {
            repo: self.repo.clone(),
            ghsa: self.ghsa.clone(),
            reporter: self.reporter.clone(),
        }
    }

    /// The vulnerability as the report tells it: its text, rating (medium when the reporter
    /// gave none), CWEs and credits, with the reporter credited as `reporter` unless the
    /// report credits them otherwise.
    pub fn vulnerability(&self) -> Vulnerability {
        let mut credits = self.credits.clone();
        credit_reporter(&mut credits, &self.reporter);
        Vulnerability {
            summary: self.summary.clone(),
            description: self.description.clone(),
            rating: self
                .rating
                .clone()
                .unwrap_or(Rating::Severity(Severity::Medium)),
            cwes: self.cwes.clone(),
            credits,
        }
    }

    fn undecided(&self) -> Result<(), Rejection> {
        if self.state != ReportState::New {
            return Err(report_error(format!(
                "{} was already decided ({})",
                self.reference(),
                self.state.as_str()
            )));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        authority: Authority,
        state: ReportState,
        path: &[RmSymbol],
        reason: Option<String>,
        rule: Option<OutOfScopeRule>,
        case_id: Option<CaseId>,
        now: Timestamp,
    ) -> Result<ReportOutcome, Rejection> {
        let mut report = self.clone();
        let mut rm_moves = Vec::new();
        for symbol in path {
            let to = report.rm.step(*symbol).ok_or_else(|| {
                Rejection::Internal(format!("RM has no edge {symbol:?} from {:?}", report.rm))
            })?;
            rm_moves.push((report.rm, *symbol, to));
            report.rm = to;
        }
        let Actor::User(by) = &authority.actor else {
            return Err(Rejection::Internal(
                "a report decision without a person".into(),
            ));
        };
        report.decision = Some(ReportDecision {
            by: by.clone(),
            role: authority.role.clone(),
            at: now,
            reason,
            rule,
        });
        report.state = state;
        report.case_id = case_id;
        Ok(ReportOutcome {
            close_on_github: state == ReportState::Rejected,
            report,
            rm_moves,
            authority,
        })
    }

    /// Rejects the report, under the rule `rule` of a workflow that lists its repository if
    /// given. The report's advisory is to be closed on GitHub.
    pub fn reject(
        &self,
        principal: &Principal,
        workflows: &[&Workflow],
        reason: &str,
        rule: Option<&str>,
        now: Timestamp,
    ) -> Result<ReportOutcome, Rejection> {
        let authority = authorize_report(principal, &self.repo, workflows, ReportAction::Reject)?;
        self.undecided()?;
        let reason = super::reason_of("reason", reason)?;
        let rule = match rule {
            None => None,
            Some(id) => Some(
                workflows
                    .iter()
                    .filter(|w| w.repos.contains_key(&self.repo))
                    .find_map(|w| w.triage.rule(id))
                    .cloned()
                    .ok_or_else(|| Rejection::Invalid {
                        field: "rule",
                        why: format!("no out-of-scope rule {id:?} in the report's workflows"),
                    })?,
            ),
        };
        self.decide(
            authority,
            ReportState::Rejected,
            &[RmSymbol::Invalidate, RmSymbol::Close],
            Some(reason),
            rule,
            None,
            now,
        )
    }

    /// Accepts the report: a case (`case_id`, of `workflow`) opens from it.
    pub fn accept(
        &self,
        principal: &Principal,
        workflow: &Workflow,
        case_id: &CaseId,
        now: Timestamp,
    ) -> Result<ReportOutcome, Rejection> {
        if !workflow.repos.contains_key(&self.repo) {
            return Err(Rejection::NotInWorkflow {
                repo: self.repo.clone(),
                workflow: workflow.name.clone(),
            });
        }
        let authority = authorize_report(principal, &self.repo, &[workflow], ReportAction::Accept)?;
        self.undecided()?;
        self.decide(
            authority,
            ReportState::Accepted,
            &[RmSymbol::Validate],
            None,
            None,
            Some(case_id.clone()),
            now,
        )
    }

    /// Merges the report into `case` as a second report of its vulnerability.
    pub fn merge(
        &self,
        principal: &Principal,
        case: &Case,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ReportOutcome, Rejection> {
        if !case.workflow.repos.contains_key(&self.repo) {
            return Err(Rejection::NotInWorkflow {
                repo: self.repo.clone(),
                workflow: case.workflow.name.clone(),
            });
        }
        let authority = authorize_report(
            principal,
            &self.repo,
            &[&case.workflow],
            ReportAction::Merge,
        )?;
        self.undecided()?;
        if case.closed.is_some() {
            return Err(Rejection::CaseClosed);
        }
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => Some(super::reason_of("reason", r)?),
            None => None,
        };
        self.decide(
            authority,
            ReportState::Merged,
            &[RmSymbol::Validate],
            reason,
            None,
            Some(case.id.clone()),
            now,
        )
    }
}

/// Credits `reporter` as `reporter` unless they are credited already.
pub(crate) fn credit_reporter(credits: &mut Vec<Credit>, reporter: &Login) {
    if !credits.iter().any(|c| c.login == *reporter) {
        credits.push(Credit {
            login: reporter.clone(),
            kind: CreditType::Reporter,
        });
    }
}

impl Case {
    /// Opens a case from a report: as [`Case::open`], with the report's repository always in
    /// scope, its reporter credited, and its advisory adopted instead of a new draft.
    pub fn open_from_report(
        principal: &Principal,
        mut open: OpenCase,
        origin: ReportOrigin,
        now: Timestamp,
    ) -> Result<(Case, super::Decision), Rejection> {
        if !open.workflow.repos.contains_key(&origin.repo) {
            return Err(Rejection::NotInWorkflow {
                repo: origin.repo.clone(),
                workflow: open.workflow.name.clone(),
            });
        }
        if !open.scope.is_empty() {
            open.scope.insert(origin.repo.clone());
        }
        credit_reporter(&mut open.vulnerability.credits, &origin.reporter);
        Case::open_inner(principal, open, Some(origin), now)
    }

    /// The reports whose advisories this case adopted, or adopts, by repository.
    pub fn adoption(&self, repo: &RepoId) -> Option<&ReportOrigin> {
        self.reports
            .iter()
            .find(|r| r.adopted && r.origin.repo == *repo)
            .map(|r| &r.origin)
    }
}

impl Tx<'_> {
    /// A second report of the case's vulnerability: adopted as the repository's advisory if
    /// the case has none there yet (and has not asked for one), otherwise closed on GitHub as
    /// a duplicate. Its reporter is credited either way.
    pub(super) fn merge_report(
        &mut self,
        origin: ReportOrigin,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
        let repo = origin.repo.clone();
        if !self.case.workflow.repos.contains_key(&repo) {
            return Err(Rejection::NotInWorkflow {
                repo,
                workflow: self.case.workflow.name.clone(),
            });
        }
        if self
            .case
            .reports
            .iter()
            .any(|r| r.origin.ghsa == origin.ghsa)
        {
            return Err(report_error(format!(
                "{repo}/{} is already part of this case",
                origin.ghsa
            )));
        }
        let p = self.case.participants.get(&repo);
        let in_scope = p.is_some_and(|p| p.in_scope);
        // Adopted where the case has no advisory there, has not asked for one, and adopts no
        // other report there; otherwise a duplicate.
        let adopt = self.case.adoption(&repo).is_none()
            && p.is_none_or(|p| p.advisory.ghsa.is_none())
            && (!in_scope
                || !self
                    .case
                    .effects
                    .contains_key(&self.key(&repo, "open-draft")));
        if !in_scope {
            self.emit(EventKind::RepoAdded { repo: repo.clone() })?;
            self.rm_to(&repo, RmState::Received)?;
        }
        self.emit(EventKind::ReportMerged {
            origin: origin.clone(),
            adopt,
            reason,
        })?;
        if adopt {
            self.rm_to(&repo, RmState::Valid)?;
        } else {
            let ghsa = origin.ghsa.clone();
            self.request(
                &repo,
                &format!("close-report-{ghsa}"),
                Action::CloseReport { ghsa },
            )?;
        }
        Ok(())
    }
}

/// A report's advisory, as the case records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The report.
    pub origin: ReportOrigin,
    /// Whether the case adopts its advisory (false: closed as a duplicate).
    pub adopted: bool,
}
