//! The engine: inputs in, events and effects out.
//!
//! [`Case::open`] and [`Case::handle`] validate an input, authorize it, turn it into events,
//! apply them, and then *reconcile*: derive, from the state alone, the further events that are
//! due (effects to request, an embargo to end, a release to start). Because effects are derived
//! from state and recorded as `EffectRequested` events with deterministic keys, replaying the
//! log never asks for an effect twice.

use std::collections::{BTreeMap, BTreeSet};

mod amend;
mod propagation;

use serde::{Deserialize, Serialize};

use crate::auth::{self, Authority};
use crate::effect::{Action, AdvisoryContent, AdvisoryPackage, Effect, effect_key};
use crate::event::{Event, EventKind, ExitReason, ReleaseMode};
use crate::ids::{GhsaId, RepoId, Timestamp};
use crate::input::{
    Actor, Command, FixStage, Input, Observation, OpenCase, Outcome, Principal, Threat, Verdict,
};
use crate::machines::{EmState, EmSymbol, RmState};
use crate::model::{Assessment, Case, EffectStatus, Fix, RemoteState};
use crate::reject::{Denial, Rejection};
use crate::vuln::{MAX_DESCRIPTION, MAX_SUMMARY, PackageFix};
use crate::workflow::{CvePolicy, DeadlinePolicy};

mod embargo;
pub mod intake;
pub mod lines;
pub mod preflight;

pub(crate) mod extension;

/// The result of an accepted input: the events to persist (in order) and the authority that
/// allowed it, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The events, already applied to the case.
    pub events: Vec<Event>,
    /// Who acted, and under which role.
    pub authority: Authority,
}

impl Decision {
    /// The effects requested by these events, for the outbox.
    pub fn effects(&self) -> impl Iterator<Item = &Effect> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::EffectRequested { effect } => Some(effect),
            _ => None,
        })
    }
}

/// Why the engine wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineReason {
    /// The embargo ends.
    EmbargoEnds,
}

/// The next time the engine has something to do without any input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: DeadlineReason,
}

/// Why a repository holds the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum BlockReason {
    /// Nobody has assessed it. `flagged_by` lists affected upstreams.
    Unassessed {
        /// Upstream repositories assessed affected.
        flagged_by: BTreeSet<RepoId>,
    },
    /// Its maintainers are still investigating.
    Investigating,
    /// Affected, and its fix is not released (perhaps prepared).
    FixNotReleased {
        /// Whether a fix is prepared.
        prepared: bool,
        /// The patched versions of the prepared release lines still waiting for their
        /// release, when some lines are released already.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines_waiting: Vec<String>,
    },
    /// It must publish after a repository that is itself blocked.
    WaitingFor {
        /// The blocked upstream.
        upstream: RepoId,
    },
}

/// A repository that holds the release, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// The repository.
    pub repo: RepoId,
    /// Why.
    #[serde(flatten)]
    pub reason: BlockReason,
}

/// Why the store must not run an effect now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// True if the effect must never run (superseded or unknown); false if it may later.
    pub obsolete: bool,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// Upper bound on reconcile rounds per input; each round makes progress, and a case has few
/// repositories, so this is never reached in practice.
const MAX_ROUNDS: usize = 64;

struct Tx<'a> {
    case: &'a mut Case,
    now: Timestamp,
    by: Actor,
    events: Vec<Event>,
}

impl Tx<'_> {
    fn emit(&mut self, kind: EventKind) -> Result<(), Rejection> {
        let event = Event {
            seq: self.case.version + 1,
            at: self.now,
            by: self.by.clone(),
            kind,
        };
        self.case
            .apply(&event)
            .map_err(|e| Rejection::Internal(e.to_string()))?;
        self.events.push(event);
        Ok(())
    }

    /// Moves a participant's RM state to `target` along Vultron's edges, one event per edge.
    /// An unreachable target leaves it where it is.
    fn rm_to(&mut self, repo: &RepoId, target: RmState) -> Result<(), Rejection> {
        let Some(from) = self.case.participants.get(repo).map(|p| p.rm) else {
            return Ok(());
        };
        let Some(path) = from.path_to(target) else {
            return Ok(());
        };
        let mut state = from;
        for symbol in path {
            let to = state.step(symbol).ok_or_else(|| {
                Rejection::Internal(format!("RM path from {state:?} has no edge {symbol:?}"))
            })?;
            self.emit(EventKind::RmMoved {
                repo: repo.clone(),
                from: state,
                symbol,
                to,
            })?;
            state = to;
        }
        Ok(())
    }

    fn em(
        &mut self,
        symbol: EmSymbol,
        until: Option<Timestamp>,
        reason: Option<String>,
        exit: Option<ExitReason>,
    ) -> Result<(), Rejection> {
        let from = self.case.embargo.state;
        let to = from.step(symbol).ok_or_else(|| {
            Rejection::Internal(format!("no EM edge from {from:?} on {symbol:?}"))
        })?;
        self.emit(EventKind::EmMoved {
            from,
            symbol,
            to,
            until,
            reason,
            exit,
        })
    }

    fn end_embargo(&mut self, exit: ExitReason) -> Result<(), Rejection> {
        if self.case.embargo.state.in_force() {
            self.em(EmSymbol::Terminate, None, None, Some(exit))?;
        }
        Ok(())
    }

    /// The key `repo`'s current generation gives an action.
    fn key(&self, repo: &RepoId, action_key: &str) -> String {
        let generation = self.case.participants.get(repo).map_or(1, |p| p.generation);
        effect_key(&self.case.id, repo, generation, action_key)
    }

    fn request(
        &mut self,
        repo: &RepoId,
        action_key: &str,
        action: Action,
    ) -> Result<(), Rejection> {
        let key = self.key(repo, action_key);
        if self.case.effects.contains_key(&key) {
            return Ok(());
        }
        self.emit(EventKind::EffectRequested {
            effect: Effect {
                key,
                case: self.case.id.clone(),
                repo: repo.clone(),
                action,
            },
        })
    }
}

fn reason_of(field: &'static str, reason: &str) -> Result<String, Rejection> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Rejection::Invalid {
            field,
            why: "a reason is required".into(),
        });
    }
    if reason.len() > 4096 {
        return Err(Rejection::Invalid {
            field,
            why: "is longer than 4,096 bytes".into(),
        });
    }
    Ok(reason.to_owned())
}

/// A text a person must fill in: not blank, and at most `max` bytes.
fn text_field(field: &'static str, text: &str, max: usize) -> Result<(), Rejection> {
    let why = if text.trim().is_empty() {
        "must not be blank".to_owned()
    } else if text.len() > max {
        format!("is longer than {max} bytes")
    } else {
        return Ok(());
    };
    Err(Rejection::Invalid { field, why })
}

impl Case {
    /// Opens a case. The principal must be a coordinator of the workflow.
    pub fn open(
        principal: &Principal,
        open: OpenCase,
        now: Timestamp,
    ) -> Result<(Case, Decision), Rejection> {
        Case::open_inner(principal, open, None, now)
    }

    fn open_inner(
        principal: &Principal,
        open: OpenCase,
        report: Option<intake::ReportOrigin>,
        now: Timestamp,
    ) -> Result<(Case, Decision), Rejection> {
        let Actor::User(login) = &principal.actor else {
            return Err(Rejection::NotAuthorized {
                actor: principal.actor.to_string(),
                action: "open a case",
                why: Denial::AutomationOnlyObserves,
            });
        };
        if !open.workflow.is_coordinator(login) {
            return Err(Rejection::NotAuthorized {
                actor: login.to_string(),
                action: "open a case",
                why: Denial::NotCoordinator {
                    login: login.clone(),
                    workflow: open.workflow.name.clone(),
                },
            });
        }
        let v = &open.vulnerability;
        text_field("summary", &v.summary, MAX_SUMMARY)?;
        if v.summary.chars().any(char::is_control) {
            return Err(Rejection::Invalid {
                field: "summary",
                why: "must be one line, without control characters".into(),
            });
        }
        text_field("description", &v.description, MAX_DESCRIPTION)?;
        let scope = if open.scope.is_empty() {
            open.workflow.repos.keys().cloned().collect()
        } else {
            open.scope.clone()
        };
        for repo in &scope {
            if !open.workflow.repos.contains_key(repo) {
                return Err(Rejection::NotInWorkflow {
                    repo: repo.clone(),
                    workflow: open.workflow.name.clone(),
                });
            }
        }
        let max_days = open.workflow.embargo.max_days;
        let limit = now.plus_days(max_days);
        let until = open
            .embargo_until
            .unwrap_or_else(|| now.plus_days(open.workflow.embargo.default_days));
        if until <= now {
            return Err(Rejection::EmbargoInPast { until, now });
        }
        if until > limit {
            return Err(Rejection::EmbargoTooLong {
                until,
                max_days,
                limit,
            });
        }
        let opening = Event {
            seq: 1,
            at: now,
            by: principal.actor.clone(),
            kind: EventKind::CaseOpened {
                case_id: open.case_id,
                workflow: open.workflow,
                scope: scope.clone(),
                vulnerability: open.vulnerability,
                report: report.clone(),
            },
        };
        let mut case =
            Case::from_opening(&opening).map_err(|e| Rejection::Internal(e.to_string()))?;
        let mut tx = Tx {
            case: &mut case,
            now,
            by: principal.actor.clone(),
            events: vec![opening],
        };
        for repo in &scope {
            tx.rm_to(repo, RmState::Received)?;
        }
        // Opening from a report accepts it: Received → Valid.
        if let Some(origin) = &report {
            tx.rm_to(&origin.repo, RmState::Valid)?;
        }
        // The workflow's default is the initial proposal, accepted at once (Vultron: a
        // published default embargo is an initial proposal; N -p-> P -a-> A).
        let why = "workflow default".to_owned();
        tx.em(EmSymbol::Propose, Some(until), Some(why.clone()), None)?;
        tx.em(EmSymbol::Accept, Some(until), Some(why), None)?;
        tx.reconcile()?;
        let events = tx.events;
        let authority = Authority {
            actor: principal.actor.clone(),
            authenticated_by: principal.authenticated_by,
            role: auth::Role::Coordinator,
        };
        Ok((case, Decision { events, authority }))
    }

    /// Handles one input at time `now`. On rejection the case is unchanged.
    pub fn handle(
        &mut self,
        principal: &Principal,
        input: Input,
        now: Timestamp,
    ) -> Result<Decision, Rejection> {
        // A closed case takes no commands, but for a retry of what its closing left failed (a
        // draft GitHub would not close).
        if self.closed.is_some()
            && matches!(input, Input::Command(ref c) if !matches!(c, Command::Retry { .. } | Command::Amend { .. }))
        {
            return Err(Rejection::CaseClosed);
        }
        let authority = auth::authorize(self, principal, &input)?;
        let mut next = self.clone();
        let mut tx = Tx {
            case: &mut next,
            // Time never runs backwards in a case's log.
            now: now.max(self.last_at),
            by: principal.actor.clone(),
            events: Vec::new(),
        };
        tx.fire_deadline()?;
        match input {
            Input::Command(cmd) => tx.command(cmd)?,
            Input::Observation(obs) => tx.observe(obs)?,
            Input::Tick => {}
        }
        tx.reconcile()?;
        let events = tx.events;
        *self = next;
        Ok(Decision { events, authority })
    }

    /// When the engine next needs to run without input, and why.
    /// An overdue embargo (its end passed under `hold-all`) has none until its end is revised.
    pub fn next_deadline(&self) -> Option<Deadline> {
        if self.closed.is_some() || !self.embargo.state.in_force() || self.embargo.overdue.is_some()
        {
            return None;
        }
        self.embargo.until.map(|at| Deadline {
            at,
            reason: DeadlineReason::EmbargoEnds,
        })
    }

    /// Whether the vulnerability is, or must be treated as, public: every advisory whose fix
    /// is released may publish, whatever the others' state.
    pub fn forced(&self) -> bool {
        self.latches.public.is_some() || self.public_beyond_release()
    }

    /// Every in-scope repository that holds the release, with its reason, sorted.
    pub fn blockers(&self) -> Vec<Blocker> {
        let mut out = Vec::new();
        let mut blocked = BTreeSet::new();
        for (repo, p) in self.scope() {
            let reason = match &p.assessment {
                Assessment::Unassessed => Some(BlockReason::Unassessed {
                    flagged_by: p.flagged_by.clone(),
                }),
                Assessment::Investigating { .. } => Some(BlockReason::Investigating),
                Assessment::Affected { .. } if !p.fix.is_released() => {
                    let mut lines_waiting: Vec<String> = Vec::new();
                    if !p.released_lines.is_empty() {
                        for l in p.fix.packages() {
                            if !p.line_released(l) && !lines_waiting.contains(&l.patched_versions) {
                                lines_waiting.push(l.patched_versions.clone());
                            }
                        }
                    }
                    Some(BlockReason::FixNotReleased {
                        prepared: matches!(p.fix, Fix::Prepared { .. }),
                        lines_waiting,
                    })
                }
                _ => None,
            };
            if let Some(reason) = reason {
                blocked.insert(repo.clone());
                out.push(Blocker {
                    repo: repo.clone(),
                    reason,
                });
            }
        }
        // A repository that must publish after a blocked one waits for it.
        if let Some(schedule) = &self.schedule {
            for (repo, p) in self.scope() {
                if blocked.contains(repo) || matches!(p.assessment, Assessment::NotAffected { .. })
                {
                    continue;
                }
                if let Some(up) = schedule.upstream(repo).intersection(&blocked).next() {
                    out.push(Blocker {
                        repo: repo.clone(),
                        reason: BlockReason::WaitingFor {
                            upstream: up.clone(),
                        },
                    });
                }
            }
        }
        out.sort_by(|a, b| a.repo.cmp(&b.repo));
        out
    }

    /// Whether the publication gate is open: every in-scope repository is assessed, and every
    /// affected one has its fix released.
    pub fn gate_open(&self) -> bool {
        self.closed.is_none()
            && self.scope().all(|(_, p)| match p.assessment {
                Assessment::NotAffected { .. } => true,
                Assessment::Affected { .. } => p.fix.is_released(),
                _ => false,
            })
    }

    /// The repositories that may publish now that the release has started (or would, once it
    /// starts), and the waves they publish in. Already published repositories are included,
    /// so that waves stay stable as publications are confirmed.
    pub fn release_plan(&self) -> Vec<Vec<RepoId>> {
        let set = self.publishable();
        match &self.schedule {
            Some(s) => s.waves(&set),
            None => vec![set.into_iter().collect()],
        }
    }

    /// Whether the vulnerability is public for a reason other than Lockstep's own release (a
    /// leak, a disclosure order, a reported threat). Only then is `publish_after` dropped:
    /// holding a fixed advisory back no longer hides anything from attackers.
    fn public_beyond_release(&self) -> bool {
        let l = &self.latches;
        l.public_elsewhere.is_some()
            || l.exploit.is_some()
            || (l.attacks.is_some() && self.workflow.embargo.end_on_attacks)
            || self
                .embargo
                .exit
                .as_ref()
                .is_some_and(|(_, r)| r.forces_release())
    }

    /// Affected in-scope repositories with a released fix whose affected upstreams may publish
    /// too. The upstream condition is dropped only when the vulnerability is public beyond
    /// Lockstep's own release: under `publish-ready`, a dependent still waits for its
    /// upstream's fix after the first advisories are out.
    fn publishable(&self) -> BTreeSet<RepoId> {
        let fixed: BTreeSet<RepoId> = self
            .scope()
            .filter(|(_, p)| {
                matches!(p.assessment, Assessment::Affected { .. })
                    && (p.fix.is_released() || p.advisory.state == RemoteState::Published)
            })
            .map(|(r, _)| r.clone())
            .collect();
        let Some(schedule) = &self.schedule else {
            return fixed;
        };
        if self.public_beyond_release() {
            return fixed;
        }
        fixed
            .iter()
            .filter(|r| {
                schedule.upstream(r).iter().all(|u| {
                    self.participants.get(u).is_none_or(|p| {
                        !p.in_scope
                            || matches!(p.assessment, Assessment::NotAffected { .. })
                            || fixed.contains(u)
                    })
                })
            })
            .cloned()
            .collect()
    }

    /// The publication guard: whether `repo`'s advisory may be published at `now`.
    ///
    /// True only when the release has started, the case is open, no embargo is in force, the
    /// repository is affected with a released fix and in the release plan, every upstream in
    /// the plan is confirmed published, and one of these holds: the gate is open, the
    /// vulnerability is public (a leak, a disclosure order or a threat), or the deadline has
    /// passed (by `now`) under `publish-ready`. The engine requests a publication only when
    /// this holds, and the store re-checks it, with the database's clock, inside the
    /// transaction that claims the publish effect.
    pub fn publication_allowed(&self, repo: &RepoId, now: Timestamp) -> Result<(), String> {
        let Some((_, mode)) = self.release else {
            return Err("the release has not started".into());
        };
        if self.closed.is_some() {
            return Err("the case is closed".into());
        }
        if self.embargo.state.in_force() {
            return Err("the embargo is in force".into());
        }
        let p = self
            .participants
            .get(repo)
            .filter(|p| p.in_scope)
            .ok_or_else(|| format!("{repo} is not in the case"))?;
        if !matches!(p.assessment, Assessment::Affected { .. }) || !p.fix.is_released() {
            return Err(format!("{repo} is not affected with a released fix"));
        }
        let deadline_passed = self.embargo.until.is_some_and(|u| now >= u);
        let permitted = self.forced()
            || self.gate_open()
            || (mode == ReleaseMode::DeadlinePublishReady && deadline_passed);
        if !permitted {
            return Err(
                "the gate is closed and the embargo did not end by a leak or the deadline policy"
                    .into(),
            );
        }
        let plan: BTreeSet<RepoId> = self.release_plan().into_iter().flatten().collect();
        if !plan.contains(repo) {
            return Err(format!(
                "{repo} waits for an upstream that has no released fix"
            ));
        }
        // A preflight blocker anywhere in the plan holds the whole wave, never half of it.
        if let Some((r, f)) = self.preflight_blocker(&plan) {
            return Err(format!("preflight: {r}: {}", f.describe()));
        }
        if let Some(s) = &self.schedule
            && let Some(u) = s
                .upstream(repo)
                .iter()
                .filter(|u| plan.contains(*u))
                .find(|u| {
                    self.participants
                        .get(*u)
                        .is_none_or(|p| p.advisory.state != RemoteState::Published)
                })
        {
            return Err(format!(
                "{repo} publishes after {u}, which is not yet published"
            ));
        }
        Ok(())
    }

    /// The guard the store applies when it claims an effect at `now` (the database's clock).
    /// Publications must pass [`Case::publication_allowed`]; a superseded effect is obsolete
    /// and must never run.
    pub fn effect_allowed(&self, key: &str, now: Timestamp) -> Result<(), Refusal> {
        let record = self.effects.get(key).ok_or_else(|| Refusal {
            obsolete: true,
            why: format!("no effect {key} in this case"),
        })?;
        if record.status == EffectStatus::Superseded {
            return Err(Refusal {
                obsolete: true,
                why: "superseded by a newer request".into(),
            });
        }
        if record.action == "publish" {
            self.publication_allowed(&record.repo, now)
                .map_err(|why| Refusal {
                    obsolete: false,
                    why,
                })?;
        }
        Ok(())
    }

    /// Whether `repo` has a write of this kind (`None`: any) requested and not yet settled
    /// (pending, or failed in a way that will be retried).
    pub fn write_outstanding(&self, repo: &RepoId, action: Option<&str>) -> bool {
        self.effects.values().any(|r| {
            r.repo == *repo
                && action.is_none_or(|a| r.action == a)
                && matches!(
                    r.status,
                    EffectStatus::Pending | EffectStatus::Failed { retryable: true }
                )
        })
    }

    /// The publish effect of `repo`'s current generation that still counts, if any.
    pub fn live_publication(&self, repo: &RepoId) -> Option<&str> {
        let generation = self.participants.get(repo)?.generation;
        let prefix = effect_key(&self.id, repo, generation, "publish");
        self.effects
            .iter()
            .filter(|(k, r)| {
                r.action == "publish"
                    && r.status != EffectStatus::Superseded
                    && k.starts_with(prefix.as_str())
            })
            .map(|(k, _)| k.as_str())
            .next_back()
    }

    fn marker(&self, repo: &RepoId) -> String {
        format!("<!-- lockstep:{}:{} -->", self.id, repo)
    }

    /// The advisory description for `repo`, linking `links`, ending in the Lockstep marker.
    /// The marker is an HTML comment: GitHub does not render it, so it is invisible in the
    /// published advisory, and it names only the case id and repository.
    pub fn description(&self, repo: &RepoId, links: &BTreeMap<RepoId, GhsaId>) -> String {
        let mut d = self.vulnerability.description.trim_end().to_owned();
        if !links.is_empty() {
            d.push_str("\n\n### Related advisories\n\nThe same vulnerability affects other repositories; their advisories are coordinated with this one:\n\n");
            for (r, g) in links {
                d.push_str(&format!(
                    "- {r}: [{g}](https://github.com/{r}/security/advisories/{g})\n"
                ));
            }
        }
        d.push_str("\n\n");
        d.push_str(&self.marker(repo));
        d
    }

    fn content(
        &self,
        repo: &RepoId,
        links: &BTreeMap<RepoId, GhsaId>,
        fixes: &[PackageFix],
    ) -> AdvisoryContent {
        let v = &self.vulnerability;
        let spec = self.workflow.repos.get(repo);
        let ecosystem = spec.map_or(crate::vuln::Ecosystem::Other, |s| s.ecosystem);
        let vulnerabilities = if fixes.is_empty() {
            spec.map(|s| s.packages.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|name| AdvisoryPackage {
                    ecosystem,
                    name: name.clone(),
                    vulnerable_version_range: None,
                    patched_versions: None,
                })
                .collect()
        } else {
            fixes
                .iter()
                .map(|f| AdvisoryPackage {
                    ecosystem,
                    name: f.package.clone(),
                    vulnerable_version_range: f.vulnerable_range.clone(),
                    patched_versions: Some(f.patched_versions.clone()),
                })
                .collect()
        };
        AdvisoryContent {
            summary: v.summary.clone(),
            description: self.description(repo, links),
            rating: v.rating.clone(),
            cwe_ids: v.cwes.clone(),
            credits: v.credits.clone(),
            vulnerabilities,
        }
    }
}

impl Tx<'_> {
    fn in_scope(&self, repo: &RepoId) -> Result<(), Rejection> {
        match self.case.participants.get(repo) {
            Some(p) if p.in_scope => Ok(()),
            _ if !self.case.workflow.repos.contains_key(repo) => Err(Rejection::NotInWorkflow {
                repo: repo.clone(),
                workflow: self.case.workflow.name.clone(),
            }),
            _ => Err(Rejection::NotInCase { repo: repo.clone() }),
        }
    }

    fn not_published(&self, repo: &RepoId) -> Result<(), Rejection> {
        match self.case.participants.get(repo) {
            Some(p) if p.advisory.state == RemoteState::Published => {
                Err(Rejection::AlreadyPublished { repo: repo.clone() })
            }
            _ => Ok(()),
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), Rejection> {
        match cmd {
            Command::AddRepo { repo } => {
                if !self.case.workflow.repos.contains_key(&repo) {
                    return Err(Rejection::NotInWorkflow {
                        repo,
                        workflow: self.case.workflow.name.clone(),
                    });
                }
                if self
                    .case
                    .participants
                    .get(&repo)
                    .is_some_and(|p| p.in_scope)
                {
                    return Err(Rejection::AlreadyInCase { repo });
                }
                self.emit(EventKind::RepoAdded { repo: repo.clone() })?;
                self.rm_to(&repo, RmState::Received)
            }
            Command::RemoveRepo { repo, reason } => {
                let reason = reason_of("reason", &reason)?;
                self.in_scope(&repo)?;
                self.not_published(&repo)?;
                if self.case.adoption(&repo).is_some() {
                    return Err(Rejection::Contradiction {
                        repo,
                        why: "its advisory is the report the case adopted; the report's \
                              repository stays in scope"
                            .into(),
                    });
                }
                if self.case.scope().count() <= 1 {
                    return Err(Rejection::LastRepository);
                }
                self.supersede_publication(&repo, "the repository left the case")?;
                self.emit(EventKind::RepoRemoved {
                    repo: repo.clone(),
                    reason,
                })?;
                self.rm_to(&repo, RmState::Closed)
            }
            Command::Assess {
                repo,
                verdict,
                reason,
            } => {
                let reason = reason_of("reason", &reason)?;
                self.in_scope(&repo)?;
                self.not_published(&repo)?;
                let p = &self.case.participants[&repo];
                if verdict == Verdict::NotAffected && p.fix != Fix::None {
                    return Err(Rejection::Contradiction {
                        repo,
                        why: "a fix is marked; revoke it before assessing not affected".into(),
                    });
                }
                let same = p.assessment.verdict() == Some(verdict)
                    && match &p.assessment {
                        Assessment::Investigating { reason: r }
                        | Assessment::Affected { reason: r }
                        | Assessment::NotAffected { reason: r } => *r == reason,
                        Assessment::Unassessed => false,
                    };
                if same {
                    return Ok(());
                }
                self.assess(&repo, verdict, reason)
            }
            Command::MarkFix {
                repo,
                stage,
                packages,
            } => {
                self.in_scope(&repo)?;
                self.not_published(&repo)?;
                let packages = self.validate_packages(&repo, packages)?;
                let p = &self.case.participants[&repo];
                match p.assessment {
                    Assessment::NotAffected { .. } => {
                        return Err(Rejection::Contradiction {
                            repo,
                            why: "assessed not affected; assess it affected before marking a fix"
                                .into(),
                        });
                    }
                    Assessment::Affected { .. } => {}
                    Assessment::Unassessed | Assessment::Investigating { .. } => {
                        self.assess(&repo, Verdict::Affected, "a fix was marked".into())?;
                    }
                }
                let current = &self.case.participants[&repo].fix;
                if matches!(current, Fix::Released { .. }) && stage == FixStage::Prepared {
                    // A release cannot be taken back by marking it again: a re-run script
                    // would otherwise hold the case for a release webhook that already came.
                    return Err(Rejection::Contradiction {
                        repo,
                        why: "its fix is marked released; revoke the mark first to record it \
                              as only prepared"
                            .into(),
                    });
                }
                let unchanged = match (current, stage) {
                    (Fix::Prepared { packages: p }, FixStage::Prepared)
                    | (Fix::Released { packages: p }, FixStage::Released) => *p == packages,
                    _ => false,
                };
                if unchanged {
                    return Ok(());
                }
                self.supersede_publication(&repo, "the fix mark changed")?;
                self.emit(EventKind::FixMarked {
                    repo,
                    stage,
                    packages,
                })
            }
            Command::RevokeFix { repo, reason } => {
                let reason = reason_of("reason", &reason)?;
                self.in_scope(&repo)?;
                self.not_published(&repo)?;
                if self.case.participants[&repo].fix == Fix::None {
                    return Err(Rejection::NoFix { repo });
                }
                self.supersede_publication(&repo, "the fix was revoked")?;
                self.emit(EventKind::FixRevoked { repo, reason })
            }
            Command::Retry { repo, reason } => {
                let reason = reason_of("reason", &reason)?;
                if !self.case.participants.contains_key(&repo) {
                    return Err(Rejection::NotInCase { repo });
                }
                let failed: Vec<String> = self
                    .case
                    .effects
                    .iter()
                    .filter(|(_, r)| {
                        r.repo == repo && r.status == (EffectStatus::Failed { retryable: false })
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if failed.is_empty() {
                    return Err(Rejection::NothingToRetry { repo });
                }
                for key in failed {
                    self.emit(EventKind::EffectRetried {
                        key,
                        reason: reason.clone(),
                    })?;
                }
                Ok(())
            }
            Command::SetEmbargo { until, reason } => {
                let reason = reason_of("reason", &reason)?;
                let e = &self.case.embargo;
                if e.state == EmState::Exited || self.case.forced() {
                    return Err(Rejection::EmbargoEnded);
                }
                if until <= self.now {
                    return Err(Rejection::EmbargoInPast {
                        until,
                        now: self.now,
                    });
                }
                if until > e.hard_limit {
                    return Err(Rejection::EmbargoTooLong {
                        until,
                        max_days: self.case.workflow.embargo.max_days,
                        limit: e.hard_limit,
                    });
                }
                if e.until == Some(until) && e.state == EmState::Active {
                    return Ok(());
                }
                // The engine is the single writer: a coordinator's revision is proposed and
                // accepted at once (A -p-> R -a-> A); the old terms hold until it is accepted.
                self.em(EmSymbol::Propose, Some(until), Some(reason.clone()), None)?;
                self.em(EmSymbol::Accept, Some(until), Some(reason.clone()), None)?;
                self.grant_embargo_request(reason)
            }
            Command::RequestEmbargo { until, reason } => self.request_embargo(until, reason),
            Command::DeclineEmbargo { reason } => self.decline_embargo(reason),
            Command::DiscloseNow { reason } => {
                let reason = reason_of("reason", &reason)?;
                if self
                    .case
                    .embargo
                    .exit
                    .as_ref()
                    .is_some_and(|(_, r)| r.forces_release())
                {
                    return Ok(());
                }
                if self.case.embargo.state.in_force() {
                    self.end_embargo(ExitReason::Disclosed { reason })
                } else {
                    // The embargo already ended (a deadline under hold-all, in a case recorded
                    // before overdue embargoes kept holding): record the order
                    // to disclose as public awareness, which forces the release.
                    self.emit(EventKind::ThreatRecorded {
                        threat: Threat::PublicAwareness,
                        reason,
                    })
                }
            }
            Command::RecordThreat { threat, reason } => {
                let reason = reason_of("reason", &reason)?;
                let l = &self.case.latches;
                let already = match threat {
                    Threat::PublicAwareness => l.public.is_some(),
                    Threat::ExploitPublic => l.exploit.is_some(),
                    Threat::AttacksObserved => l.attacks.is_some(),
                };
                if already {
                    return Ok(());
                }
                let ends =
                    threat != Threat::AttacksObserved || self.case.workflow.embargo.end_on_attacks;
                if ends {
                    self.end_embargo(ExitReason::Threat { threat })?;
                }
                self.emit(EventKind::ThreatRecorded { threat, reason })
            }
            Command::Amend {
                repo,
                packages,
                vulnerable_range,
                patched_versions,
                reason,
            } => {
                let reason = reason_of("reason", &reason)?;
                self.amend(&repo, &packages, vulnerable_range, patched_versions, reason)
            }
            Command::MergeReport {
                repo,
                ghsa,
                reporter,
                reason,
            } => {
                let reason = match reason.as_deref().map(str::trim) {
                    Some(r) if !r.is_empty() => Some(reason_of("reason", r)?),
                    _ => None,
                };
                self.merge_report(
                    intake::ReportOrigin {
                        repo,
                        ghsa,
                        reporter,
                    },
                    reason,
                )
            }
            Command::Close { reason } => {
                let reason = reason_of("reason", &reason)?;
                self.end_embargo(ExitReason::CaseClosed)?;
                let repos: Vec<RepoId> = self.case.participants.keys().cloned().collect();
                for repo in &repos {
                    self.supersede_publication(repo, "the case was closed")?;
                    self.rm_to(repo, RmState::Closed)?;
                }
                self.emit(EventKind::CaseClosed { reason })
            }
        }
    }

    /// Marks `repo`'s pending publication superseded, so that a fresh one, with the current
    /// content, is requested when it is due again.
    fn supersede_publication(&mut self, repo: &RepoId, reason: &str) -> Result<(), Rejection> {
        let Some(key) = self.case.live_publication(repo).map(str::to_owned) else {
            return Ok(());
        };
        if self.case.effects.get(&key).is_some_and(|r| {
            matches!(
                r.status,
                EffectStatus::Pending | EffectStatus::Failed { retryable: true }
            )
        }) {
            self.emit(EventKind::EffectSuperseded {
                key,
                reason: reason.to_owned(),
            })?;
        }
        Ok(())
    }

    fn validate_packages(
        &self,
        repo: &RepoId,
        packages: Vec<PackageFix>,
    ) -> Result<Vec<PackageFix>, Rejection> {
        if packages.is_empty() {
            return Err(Rejection::Invalid {
                field: "packages",
                why: "name at least one package and its patched versions".into(),
            });
        }
        let known = self
            .case
            .workflow
            .repos
            .get(repo)
            .map(|s| s.packages.as_slice())
            .unwrap_or_default();
        let mut out: Vec<PackageFix> = Vec::new();
        for mut f in packages {
            if !known.contains(&f.package) {
                return Err(Rejection::UnknownPackage {
                    repo: repo.clone(),
                    package: f.package,
                });
            }
            f.patched_versions = f.patched_versions.trim().to_owned();
            text_field("patched_versions", &f.patched_versions, 256)?;
            f.vulnerable_range = f
                .vulnerable_range
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty());
            if f.vulnerable_range.as_ref().is_some_and(|r| r.len() > 256) {
                return Err(Rejection::Invalid {
                    field: "vulnerable_range",
                    why: "must be at most 256 bytes".into(),
                });
            }
            if out.contains(&f) {
                return Err(Rejection::Invalid {
                    field: "packages",
                    why: format!("package {:?} names the same line twice", f.package),
                });
            }
            out.push(f);
        }
        lines::check(&out)?;
        out.sort();
        Ok(out)
    }

    fn assess(&mut self, repo: &RepoId, verdict: Verdict, reason: String) -> Result<(), Rejection> {
        self.emit(EventKind::Assessed {
            repo: repo.clone(),
            verdict,
            reason,
        })?;
        let from = self.case.participants[repo].rm;
        let target = match (verdict, from) {
            (Verdict::Investigating, RmState::Received | RmState::Invalid) => RmState::Valid,
            (Verdict::Investigating, s) => s,
            (Verdict::Affected, _) => RmState::Accepted,
            (Verdict::NotAffected, RmState::Received) => RmState::Invalid,
            (Verdict::NotAffected, RmState::Valid | RmState::Accepted) => RmState::Deferred,
            (Verdict::NotAffected, s) => s,
        };
        self.rm_to(repo, target)?;
        if verdict == Verdict::Affected {
            // Impact propagation: repositories that publish after this one and are still
            // unassessed are asked to look.
            let downstream = self
                .case
                .schedule
                .as_ref()
                .map(|s| s.downstream(repo))
                .unwrap_or_default();
            for d in downstream {
                let flag = self.case.participants.get(&d).is_some_and(|p| {
                    p.in_scope
                        && p.assessment == Assessment::Unassessed
                        && !p.flagged_by.contains(repo)
                });
                if flag {
                    self.emit(EventKind::FlaggedForAssessment {
                        repo: d,
                        because: repo.clone(),
                    })?;
                }
            }
        }
        Ok(())
    }

    fn observe(&mut self, obs: Observation) -> Result<(), Rejection> {
        match obs {
            Observation::GlobalCopyRead { repo, read } => self.global_read(&repo, read),
            Observation::EffectSucceeded { key, outcome } => {
                let record = self
                    .case
                    .effects
                    .get(&key)
                    .ok_or_else(|| Rejection::UnknownEffect { key: key.clone() })?;
                let expected = match outcome {
                    Outcome::DraftOpened { .. } if record.action == "adopt-report" => {
                        "adopt-report"
                    }
                    Outcome::DraftOpened { .. } => "open-draft",
                    Outcome::ReportClosed => "close-report",
                    Outcome::SiblingsLinked => "link-siblings",
                    Outcome::CollaboratorsAdded => "add-collaborators",
                    Outcome::CveRequested => "request-cve",
                    Outcome::Published => "publish",
                    Outcome::DraftClosed => "close-draft",
                    Outcome::Amended => "amend-advisory",
                };
                if record.action != expected {
                    return Err(Rejection::Invalid {
                        field: "outcome",
                        why: format!("effect {key} is {}, not {expected}", record.action),
                    });
                }
                let repo = record.repo.clone();
                let succeeded = record.status == EffectStatus::Succeeded;
                let superseded = record.status == EffectStatus::Superseded;
                if let Outcome::DraftOpened { ghsa } = &outcome
                    && record.action == "open-draft"
                    && self.case.adoption(&repo).is_some_and(|o| o.ghsa != *ghsa)
                {
                    // A draft asked for before the repository left the case and came back
                    // through a report it adopts: the report is its advisory; this draft is a
                    // stray, closed.
                    if !succeeded && !superseded {
                        self.emit(EventKind::EffectSuperseded {
                            key,
                            reason: "the repository adopts a report instead".into(),
                        })?;
                    }
                    let extra = ghsa.clone();
                    return self.request(
                        &repo,
                        &format!("close-draft-{extra}"),
                        Action::CloseDraft { ghsa: extra },
                    );
                }
                if let Outcome::DraftOpened { ghsa } = &outcome {
                    let existing = self
                        .case
                        .participants
                        .get(&repo)
                        .and_then(|p| p.advisory.ghsa.clone());
                    if let Some(existing) = existing.filter(|g| g != ghsa) {
                        // A second draft for the same repository (a retry that did not find
                        // the first): keep the first, close this one.
                        if !succeeded {
                            self.emit(EventKind::EffectSucceeded {
                                key,
                                outcome: Outcome::DraftOpened { ghsa: existing },
                            })?;
                        }
                        let extra = ghsa.clone();
                        return self.request(
                            &repo,
                            &format!("close-draft-{extra}"),
                            Action::CloseDraft { ghsa: extra },
                        );
                    }
                }
                if succeeded {
                    return Ok(()); // a duplicate observation changes nothing
                }
                self.emit(EventKind::EffectSucceeded { key, outcome })
            }
            Observation::EffectFailed {
                key,
                retryable,
                error,
            } => {
                let record = self
                    .case
                    .effects
                    .get(&key)
                    .ok_or_else(|| Rejection::UnknownEffect { key: key.clone() })?;
                match record.status {
                    // Stale: it succeeded meanwhile, or it no longer counts.
                    EffectStatus::Succeeded | EffectStatus::Superseded => Ok(()),
                    EffectStatus::Failed { retryable: r } if r == retryable => Ok(()),
                    _ => self.emit(EventKind::EffectFailed {
                        key,
                        retryable,
                        error: error.chars().take(1000).collect(),
                    }),
                }
            }
            Observation::CveAssigned { repo, cve } => {
                let p = self
                    .case
                    .participants
                    .get(&repo)
                    .ok_or(Rejection::NotInCase { repo: repo.clone() })?;
                if p.advisory.cve.as_ref() == Some(&cve) {
                    return Ok(());
                }
                self.emit(EventKind::CveAssigned { repo, cve })
            }
            Observation::ReleasePublished { repo, tag } => self.release_published(repo, tag),
            Observation::PreflightChecked { repo, findings } => {
                self.preflight_checked(repo, findings)
            }
            Observation::PrivateForkCreated { repo, fork } => {
                let p = self
                    .case
                    .participants
                    .get(&repo)
                    .ok_or(Rejection::NotInCase { repo: repo.clone() })?;
                if p.advisory.private_fork.as_ref() == Some(&fork) {
                    return Ok(());
                }
                self.emit(EventKind::PrivateForkCreated { repo, fork })
            }
            Observation::AdvisoryPublished { repo, ghsa } => {
                let p = self
                    .case
                    .participants
                    .get(&repo)
                    .ok_or(Rejection::NotInCase { repo: repo.clone() })?;
                if p.advisory.ghsa.as_ref() != Some(&ghsa) {
                    return Err(Rejection::Invalid {
                        field: "ghsa",
                        why: format!("{ghsa} is not this case's advisory for {repo}"),
                    });
                }
                if p.advisory.state == RemoteState::Published {
                    return Ok(());
                }
                if let Some(key) = self.case.live_publication(&repo).map(str::to_owned) {
                    // Lockstep asked for this publication; the observation confirms it.
                    return self.emit(EventKind::EffectSucceeded {
                        key,
                        outcome: Outcome::Published,
                    });
                }
                // Someone else published it: a leak.
                self.end_embargo(ExitReason::Leak { repo: repo.clone() })?;
                self.emit(EventKind::PublishedElsewhere { repo, ghsa })
            }
        }
    }

    /// Derives whatever is due from the state, until nothing more is.
    fn reconcile(&mut self) -> Result<(), Rejection> {
        for _ in 0..MAX_ROUNDS {
            let before = self.events.len();
            self.reconcile_once()?;
            if self.events.len() == before {
                return Ok(());
            }
        }
        Err(Rejection::Internal("reconcile did not settle".into()))
    }

    fn reconcile_once(&mut self) -> Result<(), Rejection> {
        // Drafts to close: out of scope, case closed, or (once releasing) not affected.
        let releasing = self.case.release.is_some();
        let closed = self.case.closed.is_some();
        let to_close: Vec<(RepoId, GhsaId)> = self
            .case
            .participants
            .iter()
            .filter(|(_, p)| p.advisory.state == RemoteState::Draft)
            .filter(|(_, p)| {
                closed
                    || !p.in_scope
                    || (releasing && matches!(p.assessment, Assessment::NotAffected { .. }))
            })
            // A draft is closed only once its other writes have settled: GitHub refuses a CVE
            // request on a closed advisory, for good.
            .filter(|(r, _)| !self.case.write_outstanding(r, None))
            .filter_map(|(r, p)| p.advisory.ghsa.clone().map(|g| (r.clone(), g)))
            .collect();
        for (repo, ghsa) in to_close {
            self.request(&repo, "close-draft", Action::CloseDraft { ghsa })?;
        }
        if closed {
            return Ok(());
        }

        // A public vulnerability ends the embargo at once.
        if self.case.embargo.state.in_force() && self.case.forced() {
            let l = &self.case.latches;
            let threat = if l.exploit.is_some() {
                Threat::ExploitPublic
            } else if l.public.is_some() {
                Threat::PublicAwareness
            } else {
                Threat::AttacksObserved
            };
            self.end_embargo(ExitReason::Threat { threat })?;
        }

        self.open_drafts()?;
        self.follow_up_drafts()?;
        self.link_siblings()?;

        // Start the release.
        if self.case.release.is_none() {
            let mode = if self.case.forced() {
                Some(ReleaseMode::Forced)
            } else if self.case.gate_open() {
                self.end_embargo(ExitReason::AllFixesReady)?;
                Some(ReleaseMode::Gate)
            } else if self
                .case
                .embargo
                .exit
                .as_ref()
                .is_some_and(|(_, r)| *r == ExitReason::Deadline)
                && self.case.workflow.embargo.deadline_policy == DeadlinePolicy::PublishReady
            {
                Some(ReleaseMode::DeadlinePublishReady)
            } else {
                None
            };
            if let Some(mode) = mode {
                self.emit(EventKind::ReleaseStarted { mode })?;
            }
        }
        if self.case.release.is_some() {
            self.publish_due()?;
        }
        Ok(())
    }

    /// Opens drafts. To need only N−1 link updates for N drafts, the last repository (in
    /// sorted order) waits until every other has its draft, then opens with every link.
    /// A repository whose report the case adopts comes last: its advisory exists already, and
    /// is accepted, linked and given its collaborators in one write once its siblings exist.
    fn open_drafts(&mut self) -> Result<(), Rejection> {
        let (adopted, mut missing): (Vec<RepoId>, Vec<RepoId>) = self
            .case
            .scope()
            .filter(|(_, p)| p.advisory.ghsa.is_none())
            .map(|(r, _)| r.clone())
            .partition(|r| self.case.adoption(r).is_some());
        missing.extend(adopted);
        let waiting_for_others = missing.len() > 1;
        for (i, repo) in missing.iter().enumerate() {
            if waiting_for_others && i + 1 == missing.len() {
                break;
            }
            let adopt = self.case.adoption(repo).cloned();
            let action_key = if adopt.is_some() {
                "adopt-report"
            } else {
                "open-draft"
            };
            // Already requested: skip building its content, on every input until it opens.
            if self.case.effects.contains_key(&self.key(repo, action_key)) {
                continue;
            }
            let links = self.sibling_links(repo);
            let content = self.case.content(repo, &links, &[]);
            let marker = self.case.marker(repo);
            if let Some(origin) = adopt {
                let collaborators = self.collaborators(repo);
                self.request(
                    repo,
                    action_key,
                    Action::AdoptReport {
                        ghsa: origin.ghsa,
                        content,
                        marker,
                        links,
                        collaborators,
                    },
                )?;
                continue;
            }
            self.request(
                repo,
                "open-draft",
                Action::OpenDraft {
                    content,
                    marker,
                    links,
                },
            )?;
        }
        Ok(())
    }

    /// Every in-scope sibling of `repo` with a draft.
    fn sibling_links(&self, repo: &RepoId) -> BTreeMap<RepoId, GhsaId> {
        self.case
            .scope()
            .filter(|(r, _)| *r != repo)
            .filter_map(|(r, p)| p.advisory.ghsa.clone().map(|g| (r.clone(), g)))
            .collect()
    }

    /// Whether the workflow's `cve` setting asks for this participant's CVE id now: at open,
    /// once it is assessed affected (a marked fix assesses it affected), or never.
    fn wants_cve(&self, p: &crate::model::Participant) -> bool {
        match self.case.workflow.cve {
            CvePolicy::AtOpen => true,
            CvePolicy::OnAffected => matches!(p.assessment, Assessment::Affected { .. }),
            CvePolicy::Never => false,
        }
    }

    /// Once a draft exists: request its CVE (per the workflow's `cve` setting) and add its
    /// collaborators.
    fn follow_up_drafts(&mut self) -> Result<(), Rejection> {
        let all_open = self.case.scope().all(|(_, p)| p.advisory.ghsa.is_some());
        let drafts: Vec<(RepoId, GhsaId, bool, bool)> = self
            .case
            .scope()
            .filter(|(_, p)| p.advisory.state == RemoteState::Draft)
            // A draft whose close was requested gets no more writes.
            .filter(|(r, _)| !self.case.write_outstanding(r, Some("close-draft")))
            .filter_map(|(r, p)| {
                p.advisory.ghsa.clone().map(|g| {
                    // Its description already links every sibling: no link update will come
                    // to carry the collaborators.
                    let linked = p.advisory.linked == self.sibling_links(r);
                    (
                        r.clone(),
                        g,
                        p.advisory.cve.is_none() && self.wants_cve(p),
                        linked,
                    )
                })
            })
            .collect();
        for (repo, ghsa, needs_cve, linked) in drafts {
            if needs_cve {
                self.request(
                    &repo,
                    "request-cve",
                    Action::RequestCve { ghsa: ghsa.clone() },
                )?;
            }
            // Collaborators cannot be set when a draft is created; they ride on the link
            // update, so only a draft that needs none gets a write of its own.
            let logins = self.collaborators(&repo);
            if !logins.is_empty() && all_open && linked {
                self.request(
                    &repo,
                    "add-collaborators",
                    Action::AddCollaborators { ghsa, logins },
                )?;
            }
        }
        Ok(())
    }

    /// Who should see `repo`'s draft: the coordinators and its named maintainers (those who
    /// hold their authority from GitHub see it already), unless that was done.
    fn collaborators(&self, repo: &RepoId) -> BTreeSet<crate::ids::Login> {
        if self
            .case
            .participants
            .get(repo)
            .is_none_or(|p| p.advisory.collaborators_set)
        {
            return BTreeSet::new();
        }
        let mut logins = self.case.workflow.coordinators.clone();
        if let Some(m) = self
            .case
            .workflow
            .repos
            .get(repo)
            .and_then(|s| s.maintainers.as_ref())
        {
            logins.extend(m.iter().cloned());
        }
        // Reporters follow every sibling of their own advisory, unless the workflow says not.
        if self.case.workflow.triage.reporter_collaborates {
            for r in &self.case.reports {
                if !(r.adopted && r.origin.repo == *repo) {
                    logins.insert(r.origin.reporter.clone());
                }
            }
        }
        logins
    }

    /// Once every in-scope repository has its draft, make each description link the others.
    fn link_siblings(&mut self) -> Result<(), Rejection> {
        // Once the release starts, each publication carries its final text; a link update
        // arriving after it would rewrite public text.
        if self.case.release.is_some() {
            return Ok(());
        }
        if self.case.scope().any(|(_, p)| p.advisory.ghsa.is_none()) {
            return Ok(());
        }
        let repos: Vec<RepoId> = self
            .case
            .scope()
            .filter(|(_, p)| p.advisory.state == RemoteState::Draft)
            .map(|(r, _)| r.clone())
            .collect();
        for repo in repos {
            let links = self.sibling_links(&repo);
            let p = &self.case.participants[&repo];
            if p.advisory.linked == links {
                continue;
            }
            // One link effect per distinct sibling set; a pending one for the same set is enough.
            let pending = self.case.effects.iter().any(|(_, rec)| {
                rec.repo == repo
                    && rec.action == "link-siblings"
                    && rec.status != EffectStatus::Succeeded
                    && rec.links.as_ref() == Some(&links)
            });
            if pending {
                continue;
            }
            let n = self
                .case
                .effects
                .values()
                .filter(|rec| rec.repo == repo && rec.action == "link-siblings")
                .count();
            let ghsa = p
                .advisory
                .ghsa
                .clone()
                .ok_or_else(|| Rejection::Internal("draft without id".into()))?;
            let description = self.case.description(&repo, &links);
            let collaborators = self.collaborators(&repo);
            self.request(
                &repo,
                &format!("link-siblings-{}", n + 1),
                Action::LinkSiblings {
                    ghsa,
                    description,
                    siblings: links,
                    collaborators,
                },
            )?;
        }
        Ok(())
    }

    /// Requests the publications that are due: publishable repositories whose upstreams in
    /// the plan are all confirmed published.
    fn publish_due(&mut self) -> Result<(), Rejection> {
        let waves = self.case.release_plan();
        let in_plan: BTreeSet<RepoId> = waves.iter().flatten().cloned().collect();
        // Each publication links the advisories published with it, so the release waits for
        // drafts of the plan that are still to come (not for ones that failed for good). A
        // draft is still to come while any draft of the case is being created: the last
        // draft is only requested once every other exists (see `open_drafts`), so a plan
        // repository with no draft request yet is waiting on a sibling's, maybe one outside
        // the plan.
        let drafts_underway = self.case.scope().any(|(r, _)| {
            self.case.write_outstanding(r, Some("open-draft"))
                || self.case.write_outstanding(r, Some("adopt-report"))
        });
        if drafts_underway
            && in_plan.iter().any(|r| {
                self.case
                    .participants
                    .get(r)
                    .is_some_and(|p| p.advisory.ghsa.is_none())
            })
        {
            return Ok(());
        }
        // Public links: the advisories that are or will be public in this release.
        for (wave, repos) in waves.iter().enumerate() {
            for repo in repos {
                let p = &self.case.participants[repo];
                if p.advisory.state != RemoteState::Draft {
                    continue;
                }
                let Some(ghsa) = p.advisory.ghsa.clone() else {
                    continue;
                };
                if self.case.publication_allowed(repo, self.now).is_err() {
                    continue;
                }
                let links: BTreeMap<RepoId, GhsaId> = in_plan
                    .iter()
                    .filter(|r| *r != repo)
                    .filter_map(|r| {
                        self.case.participants[r]
                            .advisory
                            .ghsa
                            .clone()
                            .map(|g| (r.clone(), g))
                    })
                    .collect();
                if self.case.live_publication(repo).is_some() {
                    continue;
                }
                // A link update still on its way would land after the publication and rewrite
                // its text; the publication waits for it (and then replaces the text anyway).
                if self.case.write_outstanding(repo, Some("link-siblings")) {
                    continue;
                }
                // The first request is `publish`; one that replaces a superseded request is
                // `publish-2`, `publish-3`…
                let prefix = effect_key(&self.case.id, repo, p.generation, "publish");
                let earlier = self
                    .case
                    .effects
                    .iter()
                    .filter(|(k, r)| r.action == "publish" && k.starts_with(prefix.as_str()))
                    .count();
                let name = match earlier {
                    0 => "publish".to_owned(),
                    n => format!("publish-{}", n + 1),
                };
                let content = self.case.content(repo, &links, p.fix.packages());
                self.request(
                    repo,
                    &name,
                    Action::Publish {
                        ghsa,
                        content,
                        wave,
                    },
                )?;
            }
        }
        Ok(())
    }
}
