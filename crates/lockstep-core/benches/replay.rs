//! Replay benchmark: folds a ten-repository case of 1,000 events and prints the time per
//! replay, against the 1 ms target and against deserialising the same log from JSON (the
//! step the store performs before folding), measured in the same run.
#![allow(clippy::unwrap_used)]
// A benchmark measures wall time; the ban on clocks is for the library.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use lockstep_core::effect::Action;
use lockstep_core::input::{FixStage, Outcome, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;

const TARGET_EVENTS: usize = 1_000;

fn build_log() -> Vec<Event> {
    let workflow = Workflow::parse(
        "mcp-sdks.toml",
        include_str!("../../../workflows/mcp-sdks.toml"),
    )
    .unwrap();
    let coordinator = Principal::user("mcp-security-coordinator".parse().unwrap());
    let auto = Principal::automation();
    let now = Timestamp::from_millis(1_767_225_600_000).unwrap();
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();
    let packages: Vec<String> = workflow
        .repos
        .values()
        .map(|s| s.packages[0].clone())
        .collect();
    let (mut case, d) = Case::open(
        &coordinator,
        OpenCase {
            case_id: "LS-BENCH".parse().unwrap(),
            workflow,
            scope: Default::default(),
            vulnerability: Vulnerability {
                summary: "DNS rebinding in the HTTP transports".into(),
                description: "Host headers are not validated. ".repeat(40),
                rating: Rating::Severity(Severity::High),
                cwes: ["CWE-350".parse().unwrap()].into(),
                credits: vec!["finder1:finder".parse().unwrap()],
            },
            embargo_until: None,
        },
        now,
    )
    .unwrap();
    let mut log = d.events.clone();
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let mut n = 0u32;
    let answer = |case: &mut Case, log: &mut Vec<Event>, pending: &mut Vec<Effect>| {
        while let Some(e) = pending.pop() {
            let outcome = match &e.action {
                Action::OpenDraft { .. } => Outcome::DraftOpened {
                    ghsa: format!("GHSA-{:04}-aaaa-bbbb", e.repo.name().len() * 97 % 10000)
                        .parse()
                        .unwrap(),
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
            let obs = Observation::EffectSucceeded {
                key: e.key.clone(),
                outcome,
            };
            let d = case.handle(&auto, Input::Observation(obs), now).unwrap();
            log.extend(d.events.iter().cloned());
            pending.extend(d.effects().cloned());
        }
    };
    answer(&mut case, &mut log, &mut pending);
    // Months of back and forth: investigations, prepared fixes, revisions, revocations.
    while log.len() < TARGET_EVENTS {
        n += 1;
        let i = (n as usize * 7) % repos.len();
        let repo = repos[i].clone();
        let input = match n % 5 {
            0 => Command::Assess {
                repo,
                verdict: Verdict::Investigating,
                reason: format!("round {n}"),
            },
            1 => Command::Assess {
                repo,
                verdict: Verdict::Affected,
                reason: format!("round {n}"),
            },
            2 => Command::MarkFix {
                repo,
                stage: FixStage::Prepared,
                packages: vec![PackageFix {
                    package: packages[i].clone(),
                    vulnerable_range: Some(format!("< 1.{n}.0")),
                    patched_versions: format!("1.{n}.0"),
                }],
            },
            3 => Command::RevokeFix {
                repo,
                reason: format!("regression {n}"),
            },
            _ => Command::SetEmbargo {
                until: now.plus_days(40 + n % 40),
                reason: format!("backport {n}"),
            },
        };
        if let Ok(d) = case.handle(&coordinator, Input::Command(input), now) {
            log.extend(d.events.iter().cloned());
        }
    }
    log.truncate(TARGET_EVENTS);
    log
}

fn median_micros(mut f: impl FnMut(), rounds: usize) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let log = build_log();
    let repos = Case::replay(&log).unwrap().participants.len();
    let json = serde_json::to_string(&log).unwrap();
    // Warm up, then take medians.
    for _ in 0..20 {
        black_box(Case::replay(black_box(&log)).unwrap());
    }
    let replay = median_micros(
        || drop(black_box(Case::replay(black_box(&log)).unwrap())),
        301,
    );
    let decode = median_micros(
        || {
            drop(black_box(
                serde_json::from_str::<Vec<Event>>(black_box(&json)).unwrap(),
            ))
        },
        301,
    );
    println!("replay: {repos} repositories, {} events", log.len());
    println!(
        "replay: {replay:.0} µs per case (target < 1000 µs: {:.2} of the bound)",
        replay / 1000.0
    );
    println!(
        "replay: {:.0} events per second",
        log.len() as f64 / (replay / 1e6)
    );
    println!(
        "decode: {decode:.0} µs to deserialise the same log from JSON; replay/decode = {:.2}",
        replay / decode
    );
    if replay >= 1000.0 {
        println!("replay: ABOVE TARGET");
        std::process::exit(1);
    }
}
