//! Shared fixtures: a three-repository workflow and a driver that plays GitHub's part.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeSet;

use lockstep_core::effect::Action;
use lockstep_core::input::{FixStage, Outcome, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;

pub const WORKFLOW: &str = r#"
name = "fixture"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core", "core-extras"]
maintainers = ["bob"]

[[repo]]
name = "org/extra"
ecosystem = "rust"
packages = ["extra"]
maintainers = ["carol"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
publish_after = ["org/core"]
"#;

pub fn r(s: &str) -> RepoId {
    s.parse().unwrap()
}

pub fn t(day: i64) -> Timestamp {
    // 2026-01-01T00:00:00Z plus `day` days.
    Timestamp::from_millis(1_767_225_600_000 + day * 86_400_000).unwrap()
}

pub fn user(login: &str) -> Principal {
    Principal::user(login.parse().unwrap())
}

pub fn workflow(policy: &str) -> Workflow {
    Workflow::parse("fixture.toml", &WORKFLOW.replace("hold-all", policy)).unwrap()
}

pub fn vulnerability() -> Vulnerability {
    Vulnerability {
        summary: "DNS rebinding in the HTTP transport".into(),
        description: "Servers do not validate the Host header.".into(),
        rating: Rating::Severity(Severity::High),
        cwes: BTreeSet::from(["CWE-350".parse().unwrap()]),
        credits: vec!["finder1:finder".parse().unwrap()],
    }
}

pub fn open_with(policy: &str, scope: &[&str]) -> (Case, Decision) {
    Case::open(
        &user("alice"),
        OpenCase {
            case_id: "LS-1".parse().unwrap(),
            workflow: workflow(policy),
            scope: scope.iter().map(|s| r(s)).collect(),
            vulnerability: vulnerability(),
            embargo_until: None,
        },
        t(0),
    )
    .unwrap()
}

pub fn fix(package: &str, patched: &str) -> PackageFix {
    PackageFix {
        package: package.into(),
        vulnerable_range: Some(format!("< {patched}")),
        patched_versions: patched.into(),
    }
}

pub fn assess(repo: &str, verdict: Verdict) -> Input {
    Input::Command(Command::Assess {
        repo: r(repo),
        verdict,
        reason: "checked the transport".into(),
    })
}

pub fn released(repo: &str, package: &str) -> Input {
    Input::Command(Command::MarkFix {
        repo: r(repo),
        stage: FixStage::Released,
        packages: vec![fix(package, "2.0.1")],
    })
}

/// A GHSA id derived from the repository name, so tests are deterministic.
pub fn ghsa_for(repo: &RepoId) -> GhsaId {
    let n = repo.name().len() as u32 + repo.name().bytes().map(u32::from).sum::<u32>();
    format!(
        "GHSA-{:04x}-{:04x}-{:04x}",
        n,
        n * 7 % 65536,
        n * 13 % 65536
    )
    .parse()
    .unwrap()
}

/// Every effect requested so far, in order, across decisions.
#[derive(Default)]
pub struct Ledger {
    pub effects: Vec<Effect>,
}

impl Ledger {
    pub fn record(&mut self, d: &Decision) {
        self.effects.extend(d.effects().cloned());
    }

    pub fn count(&self, action: &str) -> usize {
        self.effects
            .iter()
            .filter(|e| e.action.name() == action)
            .count()
    }

    pub fn published(&self) -> Vec<RepoId> {
        self.effects
            .iter()
            .filter(|e| e.action.is_publish())
            .map(|e| e.repo.clone())
            .collect()
    }
}

/// Answers every pending effect with success, as GitHub would, until none is pending.
/// Returns the effects answered.
pub fn settle(case: &mut Case, pending: &mut Vec<Effect>, now: Timestamp) -> Vec<Effect> {
    let mut done = Vec::new();
    while let Some(e) = (!pending.is_empty()).then(|| pending.remove(0)) {
        let outcome = match &e.action {
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
        };
        let d = case
            .handle(
                &Principal::automation(),
                Input::Observation(Observation::EffectSucceeded {
                    key: e.key.clone(),
                    outcome,
                }),
                now,
            )
            .unwrap();
        pending.extend(d.effects().cloned());
        done.push(e);
    }
    done
}

/// Settles the effects of decision `d` (and those they lead to) as GitHub would; returns
/// every effect requested, in order.
pub fn settle_decision(case: &mut Case, d: &Decision, now: Timestamp) -> Ledger {
    let mut ledger = Ledger::default();
    ledger.record(d);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let done = settle(case, &mut pending, now);
    ledger
        .effects
        .extend(done.into_iter().skip(d.effects().count()));
    ledger
}

/// Submits an input and settles its effects; panics on rejection.
pub fn run(
    case: &mut Case,
    who: &Principal,
    input: Input,
    now: Timestamp,
    ledger: &mut Ledger,
) -> Decision {
    let d = case.handle(who, input, now).unwrap();
    ledger.record(&d);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let done = settle(case, &mut pending, now);
    for e in done.iter().skip(d.effects().count()) {
        ledger.effects.push(e.clone());
    }
    d
}
