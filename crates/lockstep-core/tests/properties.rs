//! Property tests: random sequences of commands, observations and clock jumps, with the
//! lifecycle invariants (lifecycle-anchors §13.3) checked after every step.
//!
//! `PROPTEST_CASES` raises the number of cases (CI runs 256).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lockstep_core::effect::Action;
use lockstep_core::event::{ExitReason, ReleaseMode};
use lockstep_core::input::{FixStage, Outcome, Threat, Verdict};
use lockstep_core::machines::{EM_EDGES, RM_EDGES};
use lockstep_core::model::{Assessment, RemoteState};
use lockstep_core::workflow::DeadlinePolicy;
use lockstep_core::*;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const REPOS: [&str; 4] = ["org/core", "org/extra", "org/plugin", "org/unknown"];
const PACKAGES: [&str; 4] = ["core", "extra", "plugin", "nope"];

#[derive(Debug, Clone)]
enum Who {
    Alice,
    Bob,
    Carol,
    /// GitHub says dave maintains org/plugin (which names no maintainers in the workflow).
    Dave,
    Mallory,
    Automation,
}

#[derive(Debug, Clone)]
enum Step {
    Command(Who, u8, u8, u8),
    /// Answer the pending effect at this index: 0 success, 1 retryable failure, 2 permanent
    /// failure, 3 the same success twice.
    Answer(usize, u8),
    /// Someone publishes this repository's draft on GitHub.
    Leak(u8),
    Cve(u8),
    Fork(u8),
    Clock(u8),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        3 => Just(Who::Alice),
        2 => Just(Who::Bob),
        2 => Just(Who::Carol),
        2 => Just(Who::Dave),
        1 => Just(Who::Mallory),
        1 => Just(Who::Automation),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (who(), command_kind(), 0u8..4, any::<u8>()).prop_map(|(w, c, r, x)| Step::Command(w, c, r, x)),
        8 => (any::<usize>(), answer_kind()).prop_map(|(i, k)| Step::Answer(i, k)),
        1 => (0u8..3).prop_map(Step::Leak),
        1 => (0u8..3).prop_map(Step::Cve),
        1 => (0u8..3).prop_map(Step::Fork),
        2 => any::<u8>().prop_map(Step::Clock),
    ]
}

/// Which command (see `command`), weighted towards the assessments and fixes that move a case
/// to its release, so that random runs reach it as well as the leaks and deadlines.
fn command_kind() -> impl Strategy<Value = u8> {
    prop_oneof![
        5 => 0u8..2,
        1 => Just(2u8),
        5 => Just(3u8),
        1 => Just(4u8),
        1 => Just(5u8),
        1 => Just(6u8),
        1 => 7u8..9,
        1 => 9u8..13,
        1 => Just(13u8),
    ]
}

/// How an effect is answered (see `Step::Answer`); permanent failures are rarer than the rest.
fn answer_kind() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 2 => Just(3u8)]
}

fn principal(w: &Who) -> Principal {
    match w {
        Who::Alice => user("alice"),
        Who::Bob => user("bob"),
        Who::Carol => user("carol"),
        Who::Dave => {
            let mut p = user("dave");
            p.github_maintains.insert(r("org/plugin"));
            p
        }
        Who::Mallory => user("mallory"),
        Who::Automation => Principal::automation(),
    }
}

fn command(c: u8, repo: u8, x: u8, now: Timestamp) -> Command {
    let repo_index = usize::from(repo) % REPOS.len();
    let repo = r(REPOS[repo_index]);
    // Mostly the repository's own package; one time in four another one, which is refused.
    let package = if x % 4 == 3 {
        PACKAGES[(repo_index + 1) % PACKAGES.len()]
    } else {
        PACKAGES[repo_index]
    };
    let reason = if x.is_multiple_of(7) {
        " ".to_owned()
    } else {
        format!("reason {x}")
    };
    match c {
        0 => Command::Assess {
            repo,
            verdict: Verdict::Affected,
            reason,
        },
        1 => Command::Assess {
            repo,
            verdict: Verdict::NotAffected,
            reason,
        },
        2 => Command::Assess {
            repo,
            verdict: Verdict::Investigating,
            reason,
        },
        3 | 4 => Command::MarkFix {
            repo,
            stage: if c == 3 {
                FixStage::Released
            } else {
                FixStage::Prepared
            },
            packages: vec![fix(package, &format!("1.{x}.0"))],
        },
        5 => Command::RevokeFix { repo, reason },
        6 => Command::SetEmbargo {
            until: now.plus_millis((i64::from(x) - 40) * 86_400_000),
            reason,
        },
        7 => Command::DiscloseNow { reason },
        8 => Command::RecordThreat {
            threat: [
                Threat::PublicAwareness,
                Threat::ExploitPublic,
                Threat::AttacksObserved,
            ][usize::from(x) % 3],
            reason,
        },
        9 => Command::AddRepo { repo },
        10 => Command::RemoveRepo { repo, reason },
        12 => Command::Retry { repo, reason },
        13 => Command::MergeReport {
            repo,
            ghsa: format!("GHSA-aaaa-bbbb-{:04}", x % 4).parse().unwrap(),
            reporter: "sam".parse().unwrap(),
            reason: Some(reason),
        },
        _ => {
            if x.is_multiple_of(8) {
                Command::Close { reason }
            } else {
                Command::Assess {
                    repo,
                    verdict: Verdict::Affected,
                    reason,
                }
            }
        }
    }
}

fn outcome(e: &Effect) -> Outcome {
    match &e.action {
        Action::OpenDraft { .. } => Outcome::DraftOpened {
            ghsa: ghsa_for(&e.repo),
        },
        Action::LinkSiblings { .. } => Outcome::SiblingsLinked,
        Action::AddCollaborators { .. } => Outcome::CollaboratorsAdded,
        Action::RequestCve { .. } => Outcome::CveRequested,
        Action::Publish { .. } => Outcome::Published,
        Action::CloseDraft { .. } => Outcome::DraftClosed,
        Action::AmendAdvisory { .. } => Outcome::Amended,
        Action::AdoptReport { ghsa, .. } => Outcome::DraftOpened { ghsa: ghsa.clone() },
        Action::CloseReport { .. } => Outcome::ReportClosed,
    }
}

struct World {
    /// A calm run has no leaks, disclosure orders or threats, so that it reaches the gate.
    calm: bool,
    case: Case,
    log: Vec<Event>,
    pending: Vec<Effect>,
    now: Timestamp,
    policy: DeadlinePolicy,
}

/// The gate, computed independently of the engine.
fn gate_open(case: &Case) -> bool {
    case.participants
        .values()
        .filter(|p| p.in_scope)
        .all(|p| match p.assessment {
            Assessment::NotAffected { .. } => true,
            Assessment::Affected { .. } => p.fix.is_released(),
            _ => false,
        })
}

/// Checks every event of a decision as it is applied to a copy of the state before it.
fn check_events(before: &Case, events: &[Event], policy: DeadlinePolicy, authority: &Authority) {
    let mut state = before.clone();
    for e in events {
        let prev = state.clone();
        if let EventKind::EffectRequested { effect } = &e.kind
            && effect.action.is_publish()
        {
            // Invariant: no publication while the gate is closed, unless the release started
            // with the gate open, or the embargo ended by a leak, a disclosure or a threat, or
            // by the deadline under publish-ready, or the vulnerability became public other
            // than through our own release (attacks count unless the workflow sets
            // end_on_attacks = false). Our own first publication is not such a reason.
            let exit = state.embargo.exit.as_ref().map(|(_, r)| r.clone());
            let outside = exit.as_ref().is_some_and(ExitReason::forces_release)
                || state.latches.public_elsewhere.is_some()
                || state.latches.exploit.is_some()
                || (state.latches.attacks.is_some() && state.workflow.embargo.end_on_attacks);
            let allowed = gate_open(&state)
                || state.release.is_some_and(|(_, m)| m == ReleaseMode::Gate)
                || (exit == Some(ExitReason::Deadline) && policy == DeadlinePolicy::PublishReady)
                || outside;
            assert!(
                allowed,
                "publish of {} while the gate is closed: {:?}",
                effect.repo,
                state.blockers()
            );
            // publish_after: an in-scope affected upstream is published first, unless the
            // vulnerability is public from outside the release.
            if !outside {
                for up in &state.workflow.repos[&effect.repo].publish_after {
                    if let Some(u) = state.participants.get(up).filter(|u| u.in_scope)
                        && matches!(u.assessment, Assessment::Affected { .. })
                    {
                        assert_eq!(
                            u.advisory.state,
                            RemoteState::Published,
                            "publish of {} before its upstream {up}",
                            effect.repo
                        );
                    }
                }
            }
            assert!(
                !state.embargo.state.in_force(),
                "publish during an active embargo"
            );
            let p = &state.participants[&effect.repo];
            assert!(
                p.fix.is_released(),
                "publish of {} without a released fix",
                effect.repo
            );
            // Nothing may rewrite the text after it: no link update is outstanding.
            assert!(
                !state.write_outstanding(&effect.repo, Some("link-siblings")),
                "publish of {} while a link update is outstanding",
                effect.repo
            );
        }
        if let EventKind::EffectRequested { effect } = &e.kind {
            if effect.action.name() == "link-siblings" {
                assert!(
                    state.release.is_none(),
                    "link update of {} requested during the release",
                    effect.repo
                );
            }
            if effect.action.name() == "close-draft" && effect.key.ends_with("/close-draft") {
                assert!(
                    !state.write_outstanding(&effect.repo, None),
                    "close of {} while its other writes are outstanding",
                    effect.repo
                );
            }
        }
        state.apply(e).unwrap();
        // Only Vultron's edges, one per event.
        for (repo, p) in &state.participants {
            let old = prev.participants.get(repo).map(|q| q.rm);
            if old.is_some_and(|o| o != p.rm) {
                match &e.kind {
                    EventKind::RmMoved {
                        repo: moved,
                        from,
                        symbol,
                        to,
                    } => {
                        assert_eq!(moved, repo);
                        assert!(RM_EDGES.contains(&(*from, *symbol, *to)));
                    }
                    // Re-adding a removed repository starts a new participant generation,
                    // at Vultron's start state; Closed stays terminal for the old one.
                    EventKind::RepoAdded { repo: added } if added == repo => {
                        assert_eq!(p.rm, machines::RmState::Start);
                        assert_eq!(p.generation, prev.participants[repo].generation + 1);
                    }
                    other => panic!("RM of {repo} changed by {other:?}"),
                }
            }
        }
        if prev.embargo.state != state.embargo.state {
            let EventKind::EmMoved {
                from, symbol, to, ..
            } = &e.kind
            else {
                panic!("EM changed by {:?}", e.kind)
            };
            assert!(EM_EDGES.contains(&(*from, *symbol, *to)));
        }
        // Latches are monotone.
        for (a, b) in [
            (prev.latches.public, state.latches.public),
            (prev.latches.exploit, state.latches.exploit),
            (prev.latches.attacks, state.latches.attacks),
            (
                prev.latches.public_elsewhere,
                state.latches.public_elsewhere,
            ),
        ] {
            assert!(a.is_none() || a == b, "a latch moved: {a:?} -> {b:?}");
        }
    }
    // A maintainer never changes another repository's assessment, fix, report state or
    // scope. (An affected verdict may flag unassessed downstream repositories for assessment,
    // and a last fix may start the release of every advisory: both are the engine's doing.)
    if let Role::Maintainer { repo, .. } = &authority.role {
        for (other, p) in &state.participants {
            if other == repo {
                continue;
            }
            let q = &before.participants[other];
            assert_eq!(
                (&p.assessment, &p.fix, p.rm, p.in_scope),
                (&q.assessment, &q.fix, q.rm, q.in_scope)
            );
        }
    }
}

fn check_state(case: &Case) {
    // An active embargo has an end time and never coexists with public awareness.
    if case.embargo.state.in_force() {
        assert!(case.embargo.until.is_some());
        assert!(case.latches.public.is_none() && case.latches.exploit.is_none());
        assert!(case.embargo.until <= Some(case.embargo.hard_limit));
    }
    for p in case.participants.values() {
        if p.advisory.state == RemoteState::Published && !p.advisory.published_elsewhere {
            assert!(!case.embargo.state.in_force());
        }
    }
}

impl World {
    /// A case opened from a report on org/extra (rita's `GHSA-rrrr-pppp-0001`), whose
    /// advisory it adopts.
    fn from_report(policy: &str, calm: bool) -> World {
        let (case, d) = Case::open_from_report(
            &user("alice"),
            OpenCase {
                case_id: "LS-1".parse().unwrap(),
                workflow: workflow(policy),
                scope: BTreeSet::new(),
                vulnerability: vulnerability(),
                embargo_until: None,
            },
            engine::intake::ReportOrigin {
                repo: r("org/extra"),
                ghsa: "GHSA-rrrr-pppp-0001".parse().unwrap(),
                reporter: "rita".parse().unwrap(),
            },
            t(0),
        )
        .unwrap();
        let pending = d.effects().cloned().collect();
        let policy = case.workflow.embargo.deadline_policy;
        World {
            calm,
            case,
            log: d.events,
            pending,
            now: t(0),
            policy,
        }
    }

    fn new(policy: &str, calm: bool) -> World {
        let (case, d) = open_with(policy, &[]);
        let pending = d.effects().cloned().collect();
        let policy = case.workflow.embargo.deadline_policy;
        World {
            calm,
            case,
            log: d.events,
            pending,
            now: t(0),
            policy,
        }
    }

    fn submit(&mut self, who: &Principal, input: Input) -> Result<Decision, Rejection> {
        let before = self.case.clone();
        match self.case.handle(who, input, self.now) {
            Ok(d) => {
                check_events(&before, &d.events, self.policy, &d.authority);
                self.log.extend(d.events.iter().cloned());
                self.pending.extend(d.effects().cloned());
                check_state(&self.case);
                Ok(d)
            }
            Err(e) => {
                // A rejected input changes nothing, and no input finds an internal error (an
                // edge Vultron lacks, a reconcile that does not settle).
                assert!(!matches!(e, Rejection::Internal(_)), "internal error: {e}");
                assert_eq!(self.case, before, "rejected input changed the case: {e}");
                Err(e)
            }
        }
    }

    fn step(&mut self, step: Step) {
        let auto = Principal::automation();
        match step {
            Step::Command(_, 7 | 8, ..) | Step::Leak(_) if self.calm => {}
            Step::Command(w, c, repo, x) => {
                let _ = self.submit(
                    &principal(&w),
                    Input::Command(command(c, repo, x, self.now)),
                );
            }
            Step::Answer(i, kind) => {
                if self.pending.is_empty() {
                    return;
                }
                let i = i % self.pending.len();
                let effect = self.pending[i].clone();
                let obs = match kind {
                    1 => Observation::EffectFailed {
                        key: effect.key.clone(),
                        retryable: true,
                        error: "502".into(),
                    },
                    2 => Observation::EffectFailed {
                        key: effect.key.clone(),
                        retryable: false,
                        error: "422".into(),
                    },
                    _ => Observation::EffectSucceeded {
                        key: effect.key.clone(),
                        outcome: outcome(&effect),
                    },
                };
                let ok = self.submit(&auto, Input::Observation(obs.clone())).is_ok();
                if kind == 0 || kind == 3 {
                    self.pending.remove(i);
                }
                if ok && kind == 3 {
                    // Applying a duplicate observation changes nothing.
                    let before = self.case.clone();
                    let d = self.submit(&auto, Input::Observation(obs)).unwrap();
                    assert!(d.events.is_empty(), "duplicate produced {:?}", d.events);
                    assert_eq!(self.case, before);
                }
            }
            Step::Leak(repo) => {
                let repo = r(REPOS[usize::from(repo)]);
                if let Some(ghsa) = self
                    .case
                    .participants
                    .get(&repo)
                    .and_then(|p| p.advisory.ghsa.clone())
                {
                    let _ = self.submit(
                        &auto,
                        Input::Observation(Observation::AdvisoryPublished { repo, ghsa }),
                    );
                    if self
                        .case
                        .participants
                        .values()
                        .any(|p| p.advisory.published_elsewhere)
                    {
                        assert!(!self.case.embargo.state.in_force() || self.case.closed.is_some());
                    }
                }
            }
            Step::Cve(repo) => {
                let repo = r(REPOS[usize::from(repo)]);
                let cve = format!("CVE-2026-{:05}", 10000 + u32::from(repo.name().len() as u8));
                self.observe_twice(Observation::CveAssigned {
                    repo,
                    cve: cve.parse().unwrap(),
                });
            }
            Step::Fork(repo) => {
                let repo = r(REPOS[usize::from(repo)]);
                let fork = r(&format!("org/{}-ghsa-fork", repo.name()));
                self.observe_twice(Observation::PrivateForkCreated { repo, fork });
            }
            Step::Clock(days) => {
                self.now = self.now.plus_millis(i64::from(days % 40) * 86_400_000 / 4);
                let _ = self.submit(&auto, Input::Tick);
                // The deadline ends the embargo under publish-ready; under hold-all it stays in
                // force, marked overdue, with nothing left to wake the engine for.
                if let Some(until) = self.case.embargo.until
                    && self.now >= until
                    && self.case.embargo.state.in_force()
                {
                    assert_eq!(
                        self.case.workflow.embargo.deadline_policy,
                        DeadlinePolicy::HoldAll
                    );
                    assert!(self.case.embargo.overdue.is_some());
                    assert!(self.case.next_deadline().is_none());
                }
            }
        }
    }

    /// Submits an observation; if it is accepted, submitting it again changes nothing.
    fn observe_twice(&mut self, obs: Observation) {
        let auto = Principal::automation();
        if self.submit(&auto, Input::Observation(obs.clone())).is_ok() {
            let before = self.case.clone();
            let d = self.submit(&auto, Input::Observation(obs)).unwrap();
            assert!(d.events.is_empty(), "duplicate produced {:?}", d.events);
            assert_eq!(self.case, before);
        }
    }

    fn finish(mut self) {
        // Past the hard limit, any input ends the embargo under publish-ready; under hold-all
        // it stays in force, overdue, no longer revisable, until a coordinator discloses.
        self.now = self.case.embargo.hard_limit.plus_days(1);
        self.submit(&Principal::automation(), Input::Tick).unwrap();
        if self.case.embargo.state.in_force() {
            assert_eq!(self.policy, DeadlinePolicy::HoldAll);
            assert!(self.case.embargo.overdue.is_some());
            assert!(self.case.next_deadline().is_none());
            let coordinator = Principal::user("alice".parse().unwrap());
            let later = self.now.plus_days(1);
            let revise = Input::Command(Command::SetEmbargo {
                until: later,
                reason: "more time".into(),
            });
            assert!(self.submit(&coordinator, revise).is_err());
            let disclose = Input::Command(Command::DiscloseNow {
                reason: "overdue".into(),
            });
            self.submit(&coordinator, disclose).unwrap();
        }
        assert!(!self.case.embargo.state.in_force());
        // Replay is deterministic, byte for byte.
        let replayed = Case::replay(&self.log).unwrap();
        assert_eq!(
            serde_json::to_vec(&replayed).unwrap(),
            serde_json::to_vec(&self.case).unwrap()
        );
        // A repository whose report the case adopts never gets a draft of its own, and keeps
        // the report's advisory; every merged report is adopted or closed, never left aside.
        for report in &self.case.reports {
            let repo = &report.origin.repo;
            let adopted = self.case.adoption(repo) == Some(&report.origin);
            if adopted {
                let generation = self.case.participants[repo].generation;
                let own_draft = effect::effect_key(&self.case.id, repo, generation, "open-draft");
                assert!(
                    !self.case.effects.contains_key(&own_draft),
                    "{repo} got a draft"
                );
                if let Some(g) = &self.case.participants[repo].advisory.ghsa {
                    assert_eq!(*g, report.origin.ghsa, "{repo} keeps the report's id");
                }
            } else {
                assert!(
                    self.log.iter().any(|e| matches!(&e.kind,
                        EventKind::EffectRequested { effect }
                            if matches!(&effect.action, Action::CloseReport { ghsa } if *ghsa == report.origin.ghsa))),
                    "{} neither adopted nor closed",
                    report.origin.ghsa
                );
            }
            assert!(
                self.case
                    .vulnerability
                    .credits
                    .iter()
                    .any(|c| c.login == report.origin.reporter),
                "{} credited",
                report.origin.reporter
            );
        }
        // Effect keys are unique across the log.
        let mut keys = BTreeMap::new();
        for e in &self.log {
            if let EventKind::EffectRequested { effect } = &e.kind {
                assert!(
                    keys.insert(effect.key.clone(), ()).is_none(),
                    "{} requested twice",
                    effect.key
                );
            }
        }
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/properties.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lifecycle_invariants_hold_under_hold_all(calm: bool, steps in proptest::collection::vec(step(), 1..120)) {
        let mut w = World::new("hold-all", calm);
        for s in steps {
            w.step(s);
        }
        w.finish();
    }

    #[test]
    fn lifecycle_invariants_hold_for_a_case_opened_from_a_report(calm: bool, publish_ready: bool, steps in proptest::collection::vec(step(), 1..120)) {
        let mut w = World::from_report(if publish_ready { "publish-ready" } else { "hold-all" }, calm);
        for s in steps {
            w.step(s);
        }
        w.finish();
    }

    #[test]
    fn lifecycle_invariants_hold_under_publish_ready(calm: bool, steps in proptest::collection::vec(step(), 1..120)) {
        let mut w = World::new("publish-ready", calm);
        for s in steps {
            w.step(s);
        }
        w.finish();
    }

    /// Once every fix is in and every effect answered, every affected advisory is published
    /// (or has a failure waiting for a person), and none is left a draft silently.
    #[test]
    fn releases_complete(order in Just([0usize, 1, 2]).prop_shuffle(), not_affected in 0usize..4) {
        let mut w = World::new("hold-all", true);
        let pkgs = ["core", "extra", "plugin"];
        for i in order {
            let input = if i == not_affected {
                Input::Command(Command::Assess { repo: r(REPOS[i]), verdict: Verdict::NotAffected, reason: "no".into() })
            } else {
                released(REPOS[i], pkgs[i])
            };
            w.submit(&user("alice"), input).unwrap();
            while !w.pending.is_empty() {
                w.step(Step::Answer(0, 0));
            }
        }
        for (repo, p) in w.case.scope() {
            let expect = if REPOS.iter().position(|x| r(x) == *repo) == Some(not_affected) { RemoteState::Closed } else { RemoteState::Published };
            prop_assert_eq!(p.advisory.state, expect, "{}", repo);
        }
        w.finish();
    }
}

/// The random runs reach the states the invariants are about: a generator that never got past
/// the drafts would make the properties above pass without checking a single release.
#[test]
fn random_runs_reach_releases_and_leaks() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let strategy = proptest::collection::vec(step(), 1..120);
    let mut runner = TestRunner::deterministic();
    let (mut released, mut leaked, runs) = (0, 0, 256);
    for i in 0..runs {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let policy = if i % 2 == 0 {
            "hold-all"
        } else {
            "publish-ready"
        };
        let mut w = World::new(policy, i % 4 < 2);
        for s in steps {
            w.step(s);
        }
        let ours = |p: &model::Participant| {
            p.advisory.state == RemoteState::Published && !p.advisory.published_elsewhere
        };
        released += usize::from(w.case.participants.values().any(ours));
        leaked += usize::from(w.case.latches.public_elsewhere.is_some());
    }
    eprintln!("{released} of {runs} runs published an advisory; {leaked} went public elsewhere");
    assert!(
        released * 10 >= runs,
        "only {released} of {runs} runs published"
    );
    assert!(
        leaked * 10 >= runs,
        "only {leaked} of {runs} runs went public elsewhere"
    );
}

/// The release lines of one package: line `i` is `>= 1.{2i}.0, < 1.{2i}.{p}` patched in
/// `1.{2i}.{p}`, so no two overlap.
fn release_lines(patches: &[u8]) -> Vec<vuln::PackageFix> {
    patches
        .iter()
        .enumerate()
        .map(|(i, p)| vuln::PackageFix {
            package: "core".into(),
            vulnerable_range: Some(format!(">= 1.{}.0, < 1.{}.{}", 2 * i, 2 * i, p + 1)),
            patched_versions: format!("1.{}.{}", 2 * i, p + 1),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    /// A fix on several release lines: a release webhook marks exactly the lines whose patched
    /// version its tag satisfies, and the fix is released iff every line is.
    #[test]
    fn release_lines_are_released_one_by_one(
        patches in proptest::collection::vec(0u8..4, 1..5),
        tags in proptest::collection::vec((0usize..6, 0u8..5, any::<bool>(), 0u8..3), 0..12),
    ) {
        let (mut case, _) = open_with("hold-all", &[]);
        let lines = release_lines(&patches);
        case.handle(&user("bob"), Input::Command(Command::MarkFix {
            repo: r("org/core"),
            stage: FixStage::Prepared,
            packages: lines.clone(),
        }), t(1)).unwrap();
        let mut released: BTreeSet<String> = Default::default();
        for (line, patch, v, prefix) in tags {
            let version = format!("1.{}.{}", 2 * line, patch);
            let tag = match prefix {
                0 => version.clone(),
                1 => format!("{}{version}", if v { "v" } else { "" }),
                _ => format!("core@{version}"),
            };
            let before = case.clone();
            let d = case.handle(&Principal::automation(), Input::Observation(Observation::ReleasePublished {
                repo: r("org/core"),
                tag: tag.clone(),
            }), t(2)).unwrap();
            let satisfied: Vec<String> = lines
                .iter()
                .map(|l| l.patched_versions.clone())
                .filter(|p| *p == version && !released.contains(p))
                .collect();
            prop_assert_eq!(d.events.is_empty(), satisfied.is_empty(), "{}", tag);
            if satisfied.is_empty() {
                prop_assert_eq!(&case, &before);
            }
            released.extend(satisfied);
            let p = &case.participants[&r("org/core")];
            for l in &lines {
                prop_assert_eq!(p.line_released(l), released.contains(&l.patched_versions));
            }
            prop_assert_eq!(p.fix.is_released(), released.len() == lines.len());
        }
    }
}
