//! Scenario tests of the engine: the journeys, the release gate, the embargo policy, and every
//! rejection path.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::effect::Action;
use lockstep_core::event::{ExitReason, ReleaseMode};
use lockstep_core::input::{FixStage, Outcome, Threat, Verdict};
use lockstep_core::machines::{EmState, RmState};
use lockstep_core::model::{Assessment, RemoteState};
use lockstep_core::*;

fn opened(policy: &str) -> (Case, Ledger) {
    let (mut case, d) = open_with(policy, &[]);
    let ledger = settle_decision(&mut case, &d, t(0));
    (case, ledger)
}

#[test]
fn opening_creates_linked_drafts_with_n_minus_one_link_updates() {
    let (case, ledger) = opened("hold-all");
    assert_eq!(ledger.count("open-draft"), 3);
    assert_eq!(
        ledger.count("link-siblings"),
        2,
        "N-1 link updates for N drafts"
    );
    assert_eq!(
        ledger.count("request-cve"),
        0,
        "no CVE before a repository is assessed affected"
    );
    assert_eq!(ledger.count("publish"), 0);
    // The last draft opened with every sibling linked already.
    let last = ledger
        .effects
        .iter()
        .rfind(|e| e.action.name() == "open-draft")
        .unwrap();
    let Action::OpenDraft {
        content, marker, ..
    } = &last.action
    else {
        panic!()
    };
    assert_eq!(last.repo, r("org/plugin"));
    assert!(
        content
            .description
            .contains(ghsa_for(&r("org/core")).as_str())
    );
    assert!(
        content
            .description
            .contains(ghsa_for(&r("org/extra")).as_str())
    );
    assert!(content.description.ends_with(marker.as_str()));
    assert!(marker.starts_with("<!--") && marker.ends_with("-->"));
    for (_, p) in case.scope() {
        assert_eq!(p.advisory.state, RemoteState::Draft);
        assert_eq!(p.advisory.linked.len(), 2);
        assert_eq!(p.rm, RmState::Received);
    }
    assert_eq!(case.embargo.state, EmState::Active);
    assert_eq!(case.embargo.until, Some(t(30)));
    let deadline = case.next_deadline().unwrap();
    assert_eq!(deadline.at, t(30));
}

/// The repositories whose CVE was requested, in order.
fn cve_requests(ledger: &Ledger) -> Vec<RepoId> {
    ledger
        .effects
        .iter()
        .filter(|e| e.action.name() == "request-cve")
        .map(|e| e.repo.clone())
        .collect()
}

#[test]
fn cves_are_requested_only_for_affected_repositories_by_default() {
    let (mut case, mut ledger) = opened("hold-all");
    assert_eq!(case.workflow.cve, workflow::CvePolicy::OnAffected);
    // Investigating asks for nothing yet; not affected never does.
    run(
        &mut case,
        &user("bob"),
        assess("org/core", Verdict::Investigating),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("carol"),
        assess("org/extra", Verdict::NotAffected),
        t(1),
        &mut ledger,
    );
    assert!(cve_requests(&ledger).is_empty());
    // Affected: one request.
    run(
        &mut case,
        &user("bob"),
        assess("org/core", Verdict::Affected),
        t(2),
        &mut ledger,
    );
    assert_eq!(cve_requests(&ledger), vec![r("org/core")]);
    // A fix marked on an unassessed repository assesses it affected: one request.
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(3),
        &mut ledger,
    );
    assert_eq!(cve_requests(&ledger), vec![r("org/core"), r("org/plugin")]);
    // Re-assessing asks for nothing again.
    let again = Input::Command(Command::Assess {
        repo: r("org/core"),
        verdict: Verdict::Affected,
        reason: "confirmed with a PoC".into(),
    });
    run(&mut case, &user("bob"), again, t(4), &mut ledger);
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(5),
        &mut ledger,
    );
    assert_eq!(cve_requests(&ledger), vec![r("org/core"), r("org/plugin")]);
    // The release closes extra's draft without a CVE ever requested for it.
    assert_eq!(ledger.published(), vec![r("org/core"), r("org/plugin")]);
    assert_eq!(
        case.participants[&r("org/extra")].advisory.state,
        RemoteState::Closed
    );
    assert!(!case.participants[&r("org/extra")].advisory.cve_requested);
}

#[test]
fn the_cve_setting_can_request_at_open_or_never() {
    let with = |setting: &str| {
        let text = WORKFLOW.replace(
            "coordinators = [\"alice\"]",
            &format!("coordinators = [\"alice\"]\ncve = \"{setting}\""),
        );
        let (mut case, d) = Case::open(
            &user("alice"),
            OpenCase {
                case_id: "LS-3".parse().unwrap(),
                workflow: Workflow::parse("w", &text).unwrap(),
                scope: Default::default(),
                vulnerability: vulnerability(),
                embargo_until: None,
            },
            t(0),
        )
        .unwrap();
        let ledger = settle_decision(&mut case, &d, t(0));
        (case, ledger)
    };
    let (_, ledger) = with("at-open");
    assert_eq!(
        cve_requests(&ledger),
        vec![r("org/core"), r("org/extra"), r("org/plugin")]
    );
    let (mut case, mut ledger) = with("never");
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    assert!(cve_requests(&ledger).is_empty(), "its own CNA: never");
}

#[test]
fn collaborators_ride_on_the_link_update() {
    let (case, ledger) = opened("hold-all");
    // core and extra are linked after creation: their collaborators come in the same write.
    let core = ledger
        .effects
        .iter()
        .find(|e| e.action.name() == "link-siblings" && e.repo == r("org/core"))
        .unwrap();
    let Action::LinkSiblings { collaborators, .. } = &core.action else {
        panic!()
    };
    let names: Vec<&str> = collaborators.iter().map(|l| l.as_str()).collect();
    assert_eq!(
        names,
        ["alice", "bob"],
        "coordinators and the named maintainer"
    );
    // plugin was created with every link: it alone needs a write for its collaborators.
    let adds: Vec<&Effect> = ledger
        .effects
        .iter()
        .filter(|e| e.action.name() == "add-collaborators")
        .collect();
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0].repo, r("org/plugin"));
    assert!(case.scope().all(|(_, p)| p.advisory.collaborators_set));
    // Writes so far: N creates, N-1 links, 1 collaborator update; no CVE request before an
    // assessment.
    assert_eq!(ledger.effects.len(), 3 + 2 + 1);
}

#[test]
fn gate_holds_until_every_affected_fix_is_released_then_publishes_in_waves() {
    let (mut case, mut ledger) = opened("hold-all");
    let bob = user("bob");
    let carol = user("carol");
    let alice = user("alice");
    run(
        &mut case,
        &bob,
        assess("org/core", Verdict::Affected),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &carol,
        assess("org/extra", Verdict::NotAffected),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &bob,
        released("org/core", "core"),
        t(2),
        &mut ledger,
    );
    assert_eq!(ledger.count("publish"), 0, "plugin is unassessed: hold");
    assert!(!case.gate_open());
    let blockers = case.blockers();
    assert_eq!(blockers.len(), 1);
    assert_eq!(blockers[0].repo, r("org/plugin"));

    // The last fix opens the gate: the embargo ends and wave 0 (core) publishes; plugin, which
    // publishes after core, follows once core is confirmed.
    let d = case
        .handle(&alice, released("org/plugin", "plugin"), t(3))
        .unwrap();
    let first: Vec<&Effect> = d.effects().filter(|e| e.action.is_publish()).collect();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].repo, r("org/core"));
    assert_eq!(case.release.unwrap().1, ReleaseMode::Gate);
    assert_eq!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::AllFixesReady
    );
    let closes: Vec<&Effect> = d
        .effects()
        .filter(|e| e.action.name() == "close-draft")
        .collect();
    assert_eq!(closes.len(), 1, "the not-affected draft is closed");
    assert_eq!(closes[0].repo, r("org/extra"));

    ledger.record(&d);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let done = settle(&mut case, &mut pending, t(3));
    ledger
        .effects
        .extend(done.into_iter().skip(d.effects().count()));
    assert_eq!(ledger.published(), vec![r("org/core"), r("org/plugin")]);
    let Action::Publish { wave, content, .. } = &ledger
        .effects
        .iter()
        .rev()
        .find(|e| e.action.is_publish())
        .unwrap()
        .action
    else {
        panic!()
    };
    assert_eq!(*wave, 1);
    // The published description links only advisories that are public too.
    assert!(
        content
            .description
            .contains(ghsa_for(&r("org/core")).as_str())
    );
    assert!(
        !content
            .description
            .contains(ghsa_for(&r("org/extra")).as_str())
    );
    assert_eq!(
        content.vulnerabilities[0].patched_versions.as_deref(),
        Some("2.0.1")
    );
    assert!(case.latches.public.is_some());
    assert_eq!(
        case.participants[&r("org/extra")].advisory.state,
        RemoteState::Closed
    );
}

#[test]
fn impact_propagates_to_unassessed_downstream_repositories() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("bob"),
        assess("org/core", Verdict::Affected),
        t(1),
        &mut ledger,
    );
    let plugin = &case.participants[&r("org/plugin")];
    assert!(plugin.flagged_by.contains(&r("org/core")));
    assert!(case.blockers().iter().any(|b| b.repo == r("org/plugin")
        && matches!(&b.reason, engine::BlockReason::Unassessed { flagged_by } if flagged_by.contains(&r("org/core")))));
}

#[test]
fn deadline_under_hold_all_marks_the_embargo_overdue_and_keeps_holding() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    let d = run(
        &mut case,
        &Principal::automation(),
        Input::Tick,
        t(31),
        &mut ledger,
    );
    // The deadline does not end the embargo: it stays in force, overdue, with an alert.
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::EmbargoOverdue { until } if until == t(30)))
    );
    assert_eq!(case.embargo.state, EmState::Active);
    assert_eq!(case.embargo.exit, None);
    assert_eq!(case.embargo.overdue, Some(t(31)));
    assert!(case.release.is_none());
    assert_eq!(ledger.count("publish"), 0);
    assert!(case.next_deadline().is_none(), "no busy wake-ups");
    assert_eq!(
        case.plan().alerts,
        vec![plan::Alert::EmbargoOverdue {
            until: t(30),
            since: t(31)
        }]
    );
    // Ticking again changes nothing.
    assert!(
        case.handle(&Principal::automation(), Input::Tick, t(32))
            .unwrap()
            .events
            .is_empty()
    );
    // The coordinator revises the end (A -p-> R -a-> A), within max_days only.
    let set = |until| {
        Input::Command(Command::SetEmbargo {
            until,
            reason: "python needs another week".into(),
        })
    };
    assert!(matches!(
        case.handle(&user("alice"), set(t(61)), t(32)).unwrap_err(),
        Rejection::EmbargoTooLong { .. }
    ));
    assert!(case.embargo.overdue.is_some(), "a refusal changes nothing");
    let d = run(&mut case, &user("alice"), set(t(40)), t(32), &mut ledger);
    assert_eq!(d.events.len(), 2);
    assert_eq!(case.embargo.until, Some(t(40)));
    assert_eq!(case.embargo.overdue, None);
    assert!(case.plan().alerts.is_empty());
    assert_eq!(case.next_deadline().unwrap().at, t(40));
    // The new end passes too: overdue again, still holding.
    run(
        &mut case,
        &Principal::automation(),
        Input::Tick,
        t(41),
        &mut ledger,
    );
    assert_eq!(case.embargo.state, EmState::Active);
    assert_eq!(case.embargo.overdue, Some(t(41)));
    assert_eq!(ledger.count("publish"), 0);
    // Once the gate opens, the embargo ends and the release goes ahead.
    run(
        &mut case,
        &user("carol"),
        assess("org/extra", Verdict::NotAffected),
        t(42),
        &mut ledger,
    );
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(43),
        &mut ledger,
    );
    assert_eq!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::AllFixesReady
    );
    assert_eq!(ledger.published(), vec![r("org/core"), r("org/plugin")]);
}

#[test]
fn an_overdue_embargo_ends_only_by_disclosure_leak_threat_or_closing() {
    let overdue = || {
        let (mut case, mut ledger) = opened("hold-all");
        run(
            &mut case,
            &user("bob"),
            released("org/core", "core"),
            t(1),
            &mut ledger,
        );
        run(
            &mut case,
            &Principal::automation(),
            Input::Tick,
            t(31),
            &mut ledger,
        );
        assert!(case.embargo.overdue.is_some());
        (case, ledger)
    };
    let (mut case, mut ledger) = overdue();
    let disclose = Input::Command(Command::DiscloseNow {
        reason: "the reporter goes public".into(),
    });
    run(&mut case, &user("alice"), disclose, t(32), &mut ledger);
    assert!(matches!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::Disclosed { .. }
    ));
    assert_eq!(case.release.unwrap().1, ReleaseMode::Forced);
    assert_eq!(ledger.published(), vec![r("org/core")]);

    let (mut case, mut ledger) = overdue();
    let ghsa = ghsa_for(&r("org/extra"));
    run(
        &mut case,
        &Principal::automation(),
        Input::Observation(Observation::AdvisoryPublished {
            repo: r("org/extra"),
            ghsa,
        }),
        t(32),
        &mut ledger,
    );
    assert!(matches!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::Leak { .. }
    ));

    let (mut case, _) = overdue();
    case.handle(
        &user("alice"),
        Input::Command(Command::Close {
            reason: "withdrawn".into(),
        }),
        t(32),
    )
    .unwrap();
    assert_eq!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::CaseClosed
    );
    assert!(
        case.plan().alerts.is_empty(),
        "a closed case raises no overdue alert"
    );
}

#[test]
fn an_old_log_whose_hold_all_deadline_ended_the_embargo_still_replays() {
    // Before overdue embargoes, the hold-all deadline terminated the embargo; such logs fold
    // as they did, and the plan keeps their alert.
    let mut events: Vec<Event> = Vec::new();
    let (_, d) = open_with("hold-all", &[]);
    events.extend(d.events.iter().cloned());
    let next = Event {
        seq: events.len() as u64 + 1,
        at: t(31),
        by: Actor::Automation,
        kind: EventKind::EmMoved {
            from: EmState::Active,
            symbol: machines::EmSymbol::Terminate,
            to: EmState::Exited,
            until: None,
            reason: None,
            exit: Some(ExitReason::Deadline),
        },
    };
    events.push(next);
    let old = Case::replay(&events).unwrap();
    assert_eq!(old.embargo.state, EmState::Exited);
    assert_eq!(old.embargo.overdue, None);
    assert!(matches!(
        old.plan().alerts[..],
        [plan::Alert::DeadlinePassedHolding { .. }]
    ));
}

#[test]
fn deadline_under_publish_ready_publishes_what_is_fixed_and_holds_dependents() {
    let (mut case, mut ledger) = opened("publish-ready");
    // extra is fixed; plugin is fixed but publishes after core, which is affected and unfixed.
    run(
        &mut case,
        &user("carol"),
        released("org/extra", "extra"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("bob"),
        assess("org/core", Verdict::Affected),
        t(1),
        &mut ledger,
    );
    assert_eq!(ledger.count("publish"), 0);
    // Any input after the deadline fires it.
    run(
        &mut case,
        &Principal::automation(),
        Input::Tick,
        t(30),
        &mut ledger,
    );
    assert_eq!(case.release.unwrap().1, ReleaseMode::DeadlinePublishReady);
    // extra publishes; its publication makes the vulnerability public, but plugin still
    // publishes after core, which has no fix: publish_after holds through our own release.
    assert!(case.latches.public.is_some());
    assert!(case.latches.public_elsewhere.is_none());
    assert_eq!(ledger.published(), vec![r("org/extra")]);
    assert!(case.blockers().iter().any(|b| b.repo == r("org/core")));
    assert!(
        case.publication_allowed(&r("org/plugin"), t(31))
            .is_err_and(|why| why.contains("upstream")),
    );
    // core's fix lands: core publishes, then plugin in the next wave.
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(32),
        &mut ledger,
    );
    assert_eq!(
        ledger.published(),
        vec![r("org/extra"), r("org/core"), r("org/plugin")]
    );
}

#[test]
fn a_leak_under_publish_ready_drops_publish_after() {
    let (mut case, mut ledger) = opened("publish-ready");
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("bob"),
        assess("org/core", Verdict::Affected),
        t(1),
        &mut ledger,
    );
    assert_eq!(ledger.count("publish"), 0);
    run(
        &mut case,
        &user("alice"),
        Input::Command(Command::DiscloseNow {
            reason: "exploit posted".into(),
        }),
        t(2),
        &mut ledger,
    );
    // The vulnerability is public: plugin's fix goes out although core, its upstream, has none.
    assert_eq!(ledger.published(), vec![r("org/plugin")]);
}

#[test]
fn a_leak_ends_the_embargo_and_publishes_every_released_fix() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("carol"),
        released("org/extra", "extra"),
        t(1),
        &mut ledger,
    );
    let ghsa = case.participants[&r("org/core")]
        .advisory
        .ghsa
        .clone()
        .unwrap();
    run(
        &mut case,
        &Principal::automation(),
        Input::Observation(Observation::AdvisoryPublished {
            repo: r("org/core"),
            ghsa,
        }),
        t(2),
        &mut ledger,
    );
    assert_eq!(case.embargo.state, EmState::Exited);
    assert!(matches!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::Leak { .. }
    ));
    assert!(case.latches.public.is_some());
    assert!(
        case.participants[&r("org/core")]
            .advisory
            .published_elsewhere
    );
    assert_eq!(case.release.unwrap().1, ReleaseMode::Forced);
    assert_eq!(ledger.published(), vec![r("org/extra")]);
    // The plugin fix arrives later and publishes at once.
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(3),
        &mut ledger,
    );
    assert_eq!(ledger.published(), vec![r("org/extra"), r("org/plugin")]);
}

#[test]
fn our_own_publication_seen_by_webhook_is_not_a_leak() {
    let (mut case, mut ledger) = opened("hold-all");
    for (who, repo, pkg) in [
        ("bob", "org/core", "core"),
        ("carol", "org/extra", "extra"),
        ("alice", "org/plugin", "plugin"),
    ] {
        let d = case.handle(&user(who), released(repo, pkg), t(1)).unwrap();
        ledger.record(&d);
    }
    let ghsa = case.participants[&r("org/core")]
        .advisory
        .ghsa
        .clone()
        .unwrap();
    // The publish response was lost; the webhook reports the publication.
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::AdvisoryPublished {
            repo: r("org/core"),
            ghsa,
        }),
        t(1),
    )
    .unwrap();
    let core = &case.participants[&r("org/core")].advisory;
    assert_eq!(core.state, RemoteState::Published);
    assert!(!core.published_elsewhere);
    assert_eq!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::AllFixesReady
    );
}

#[test]
fn disclose_now_and_threats() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    let d = run(
        &mut case,
        &user("alice"),
        Input::Command(Command::DiscloseNow {
            reason: "exploit on social media".into(),
        }),
        t(2),
        &mut ledger,
    );
    assert!(!d.events.is_empty());
    assert!(matches!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::Disclosed { .. }
    ));
    assert_eq!(ledger.published(), vec![r("org/core")]);

    // Attacks observed end the embargo only when the workflow says so.
    let text = WORKFLOW.replace(
        "deadline_policy = \"hold-all\"",
        "deadline_policy = \"hold-all\"\nend_on_attacks = false",
    );
    let (mut case, _) = Case::open(
        &user("alice"),
        OpenCase {
            case_id: "LS-2".parse().unwrap(),
            workflow: Workflow::parse("w", &text).unwrap(),
            scope: Default::default(),
            vulnerability: vulnerability(),
            embargo_until: Some(t(10)),
        },
        t(0),
    )
    .unwrap();
    let attacks = Input::Command(Command::RecordThreat {
        threat: Threat::AttacksObserved,
        reason: "honeypot".into(),
    });
    case.handle(&user("alice"), attacks.clone(), t(1)).unwrap();
    assert_eq!(case.embargo.state, EmState::Active);
    assert!(case.latches.attacks.is_some());
    // A public exploit always ends it, and sets public awareness too.
    let exploit = Input::Command(Command::RecordThreat {
        threat: Threat::ExploitPublic,
        reason: "PoC on GitHub".into(),
    });
    case.handle(&user("alice"), exploit, t(2)).unwrap();
    assert_eq!(case.embargo.state, EmState::Exited);
    assert!(case.latches.public.is_some() && case.latches.exploit.is_some());
    // Recording it again changes nothing.
    assert!(
        case.handle(&user("alice"), attacks, t(3))
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn embargo_extensions_follow_the_policy() {
    let (mut case, _) = open_with("hold-all", &[]);
    let alice = user("alice");
    let set = |until, reason: &str| {
        Input::Command(Command::SetEmbargo {
            until,
            reason: reason.into(),
        })
    };
    let d = case
        .handle(&alice, set(t(45), "python needs a backport"), t(1))
        .unwrap();
    assert_eq!(d.events.len(), 2, "A -propose-> R -accept-> A");
    assert_eq!(case.embargo.until, Some(t(45)));
    assert_eq!(case.embargo.state, EmState::Active);
    assert_eq!(
        case.handle(&alice, set(t(61), "more"), t(1)).unwrap_err(),
        Rejection::EmbargoTooLong {
            until: t(61),
            max_days: 60,
            limit: t(60)
        }
    );
    assert!(matches!(
        case.handle(&alice, set(t(0), "past"), t(1)).unwrap_err(),
        Rejection::EmbargoInPast { .. }
    ));
    assert!(matches!(
        case.handle(&alice, set(t(40), "  "), t(1)).unwrap_err(),
        Rejection::Invalid {
            field: "reason",
            ..
        }
    ));
    assert!(
        case.handle(&alice, set(t(45), "same again"), t(1))
            .unwrap()
            .events
            .is_empty()
    );
    // A maintainer may not move the embargo.
    assert!(
        case.handle(&user("bob"), set(t(50), "mine"), t(1))
            .unwrap_err()
            .is_not_authorized()
    );
    // Once ended, it cannot be set again.
    case.handle(
        &alice,
        Input::Command(Command::DiscloseNow {
            reason: "leak".into(),
        }),
        t(2),
    )
    .unwrap();
    assert_eq!(
        case.handle(&alice, set(t(50), "again"), t(3)).unwrap_err(),
        Rejection::EmbargoEnded
    );
}

#[test]
fn opening_rejections() {
    let base = || OpenCase {
        case_id: "LS-9".parse().unwrap(),
        workflow: workflow("hold-all"),
        scope: Default::default(),
        vulnerability: vulnerability(),
        embargo_until: None,
    };
    let reject = |who: &Principal, o: OpenCase| Case::open(who, o, t(0)).unwrap_err();
    assert!(reject(&user("bob"), base()).is_not_authorized());
    assert!(reject(&Principal::automation(), base()).is_not_authorized());
    let mut o = base();
    o.scope = [r("org/elsewhere")].into();
    assert!(matches!(
        reject(&user("alice"), o),
        Rejection::NotInWorkflow { .. }
    ));
    let mut o = base();
    o.embargo_until = Some(t(61));
    assert!(matches!(
        reject(&user("alice"), o),
        Rejection::EmbargoTooLong { .. }
    ));
    let mut o = base();
    o.embargo_until = Some(t(0));
    assert!(matches!(
        reject(&user("alice"), o),
        Rejection::EmbargoInPast { .. }
    ));
    let mut o = base();
    o.vulnerability.summary = " ".into();
    assert!(matches!(
        reject(&user("alice"), o),
        Rejection::Invalid {
            field: "summary",
            ..
        }
    ));
    let mut o = base();
    o.vulnerability.description = "x".repeat(60_001);
    assert!(matches!(
        reject(&user("alice"), o),
        Rejection::Invalid {
            field: "description",
            ..
        }
    ));
    // A scope opens only the named repositories.
    let (case, d) = open_with("hold-all", &["org/core", "org/plugin"]);
    assert_eq!(case.scope().count(), 2);
    assert_eq!(
        d.effects()
            .filter(|e| e.action.name() == "open-draft")
            .count(),
        1
    );
}

#[test]
fn authorization_rules() {
    let (mut case, _) = open_with("hold-all", &[]);
    // bob maintains core (named in the workflow), not extra.
    let e = case
        .handle(&user("bob"), assess("org/extra", Verdict::Affected), t(1))
        .unwrap_err();
    assert!(e.is_not_authorized(), "{e}");
    assert!(e.to_string().contains("does not maintain org/extra"));
    let d = case
        .handle(&user("bob"), assess("org/core", Verdict::Affected), t(1))
        .unwrap();
    assert_eq!(
        d.authority.role,
        Role::Maintainer {
            repo: r("org/core"),
            via: auth::MaintainerSource::Workflow
        }
    );
    // plugin names no maintainers: GitHub's permission decides.
    let mut dave = user("dave");
    assert!(
        case.handle(&dave, assess("org/plugin", Verdict::Affected), t(1))
            .unwrap_err()
            .is_not_authorized()
    );
    dave.github_maintains.insert(r("org/plugin"));
    let d = case
        .handle(&dave, assess("org/plugin", Verdict::Affected), t(1))
        .unwrap();
    assert_eq!(
        d.authority.role,
        Role::Maintainer {
            repo: r("org/plugin"),
            via: auth::MaintainerSource::GithubPermission
        }
    );
    // GitHub permission does not override a workflow that names maintainers.
    let mut eve = user("eve");
    eve.github_maintains.insert(r("org/core"));
    assert!(
        case.handle(&eve, released("org/core", "core"), t(1))
            .unwrap_err()
            .is_not_authorized()
    );
    // Maintainers may not run case-wide commands, nor record observations.
    for input in [
        Input::Command(Command::Close {
            reason: "done".into(),
        }),
        Input::Command(Command::AddRepo {
            repo: r("org/core"),
        }),
        Input::Command(Command::DiscloseNow { reason: "x".into() }),
        Input::Tick,
    ] {
        assert!(
            case.handle(&user("bob"), input, t(1))
                .unwrap_err()
                .is_not_authorized()
        );
    }
    // Automation may not assess, but may promote a prepared fix.
    let auto = Principal::automation();
    assert!(
        case.handle(&auto, assess("org/extra", Verdict::Affected), t(1))
            .unwrap_err()
            .is_not_authorized()
    );
    assert!(
        case.handle(&auto, released("org/extra", "extra"), t(1))
            .unwrap_err()
            .is_not_authorized()
    );
    let prepared = Input::Command(Command::MarkFix {
        repo: r("org/extra"),
        stage: FixStage::Prepared,
        packages: vec![fix("extra", "1.0.1")],
    });
    case.handle(&user("carol"), prepared, t(1)).unwrap();
    let d = case
        .handle(&auto, released("org/extra", "extra"), t(2))
        .unwrap();
    assert_eq!(d.authority.role, Role::Automation);
    assert!(case.participants[&r("org/extra")].fix.is_released());
    // Marking it prepared again would hold the case for a release that already came.
    let again = Input::Command(Command::MarkFix {
        repo: r("org/extra"),
        stage: FixStage::Prepared,
        packages: vec![fix("extra", "1.0.1")],
    });
    assert!(matches!(
        case.handle(&user("carol"), again, t(3)).unwrap_err(),
        Rejection::Contradiction { .. }
    ));
    assert!(case.participants[&r("org/extra")].fix.is_released());
}

#[test]
fn per_repository_rejections() {
    let (mut case, mut ledger) = opened("hold-all");
    let alice = user("alice");
    let cmd = |c| Input::Command(c);
    // Unknown repository, and one outside the case.
    assert!(matches!(
        case.handle(&alice, assess("org/nope", Verdict::Affected), t(1))
            .unwrap_err(),
        Rejection::NotInWorkflow { .. }
    ));
    case.handle(
        &alice,
        cmd(Command::RemoveRepo {
            repo: r("org/extra"),
            reason: "dropped".into(),
        }),
        t(1),
    )
    .unwrap();
    assert_eq!(
        case.handle(&alice, assess("org/extra", Verdict::Affected), t(1))
            .unwrap_err(),
        Rejection::NotInCase {
            repo: r("org/extra")
        }
    );
    assert_eq!(
        case.handle(
            &alice,
            cmd(Command::AddRepo {
                repo: r("org/core")
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::AlreadyInCase {
            repo: r("org/core")
        }
    );
    assert!(matches!(
        case.handle(
            &alice,
            cmd(Command::AddRepo {
                repo: r("org/nope")
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::NotInWorkflow { .. }
    ));
    case.handle(
        &alice,
        cmd(Command::RemoveRepo {
            repo: r("org/plugin"),
            reason: "dropped".into(),
        }),
        t(1),
    )
    .unwrap();
    assert_eq!(
        case.handle(
            &alice,
            cmd(Command::RemoveRepo {
                repo: r("org/core"),
                reason: "x".into()
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::LastRepository
    );
    // Packages.
    let mark = |packages| {
        cmd(Command::MarkFix {
            repo: r("org/core"),
            stage: FixStage::Released,
            packages,
        })
    };
    assert!(matches!(
        case.handle(&alice, mark(vec![]), t(1)).unwrap_err(),
        Rejection::Invalid {
            field: "packages",
            ..
        }
    ));
    assert!(matches!(
        case.handle(&alice, mark(vec![fix("nope", "1")]), t(1))
            .unwrap_err(),
        Rejection::UnknownPackage { .. }
    ));
    assert!(matches!(
        case.handle(&alice, mark(vec![fix("core", " ")]), t(1))
            .unwrap_err(),
        Rejection::Invalid {
            field: "patched_versions",
            ..
        }
    ));
    let mut long = fix("core", "1");
    long.vulnerable_range = Some("<".repeat(257));
    assert!(matches!(
        case.handle(&alice, mark(vec![long]), t(1)).unwrap_err(),
        Rejection::Invalid {
            field: "vulnerable_range",
            ..
        }
    ));
    assert!(matches!(
        case.handle(&alice, mark(vec![fix("core", "1"), fix("core", "1")]), t(1))
            .unwrap_err(),
        Rejection::Invalid {
            field: "packages",
            ..
        }
    ));
    // Release lines: two that overlap, a range that does not parse, a patched version inside
    // its own range; each is refused and changes nothing.
    let before = case.clone();
    let line = |range: &str, patched: &str| vuln::PackageFix {
        package: "core".into(),
        vulnerable_range: Some(range.into()),
        patched_versions: patched.into(),
    };
    for (lines, field) in [
        (
            vec![line("< 1.1.0", "1.1.0"), line(">= 1.0.0, < 1.1.2", "1.1.2")],
            "lines",
        ),
        (vec![line("before 1.0", "1.0")], "vulnerable_range"),
        (vec![line(">= 1.0.0, < 1.0.3", "1.0.2")], "patched_versions"),
    ] {
        let e = case.handle(&alice, mark(lines), t(1)).unwrap_err();
        assert!(
            matches!(e, Rejection::Invalid { field: f, .. } if f == field),
            "{e}"
        );
    }
    assert_eq!(case, before);
    // Revoking with nothing to revoke; a fix mark contradicting "not affected".
    assert_eq!(
        case.handle(
            &alice,
            cmd(Command::RevokeFix {
                repo: r("org/core"),
                reason: "x".into()
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::NoFix {
            repo: r("org/core")
        }
    );
    case.handle(&alice, assess("org/core", Verdict::NotAffected), t(1))
        .unwrap();
    assert!(matches!(
        case.handle(&alice, mark(vec![fix("core", "1")]), t(1))
            .unwrap_err(),
        Rejection::Contradiction { .. }
    ));
    case.handle(&alice, assess("org/core", Verdict::Affected), t(1))
        .unwrap();
    case.handle(&alice, mark(vec![fix("core", "1")]), t(1))
        .unwrap();
    assert!(matches!(
        case.handle(&alice, assess("org/core", Verdict::NotAffected), t(1))
            .unwrap_err(),
        Rejection::Contradiction { .. }
    ));
    // Re-adding a repository starts a new generation with fresh effect keys.
    let d = run(
        &mut case,
        &alice,
        cmd(Command::AddRepo {
            repo: r("org/extra"),
        }),
        t(2),
        &mut ledger,
    );
    assert!(d.effects().any(|e| e.key == "LS-1/org/extra/2/open-draft"));
    // With extra and plugin out of scope, core's released fix opened the gate on day 1, but its
    // publication waited for the link update still outstanding from the drafts phase; by the
    // time that lands, extra is back and unassessed, so the gate holds again.
    assert_eq!(case.release.unwrap().1, ReleaseMode::Gate);
    assert!(case.live_publication(&r("org/core")).is_none());
    let links: Vec<String> = case
        .effects
        .iter()
        .filter(|(_, e)| e.action == "link-siblings" && e.status == model::EffectStatus::Pending)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!links.is_empty());
    for key in links {
        let obs = Observation::EffectSucceeded {
            key,
            outcome: Outcome::SiblingsLinked,
        };
        case.handle(&Principal::automation(), Input::Observation(obs), t(3))
            .unwrap();
    }
    assert!(case.live_publication(&r("org/core")).is_none());
    assert_eq!(case.blockers()[0].repo, r("org/extra"));
    // The re-added repository's fix releases both, together.
    let mut ledger = Ledger::default();
    run(
        &mut case,
        &alice,
        released("org/extra", "extra"),
        t(3),
        &mut ledger,
    );
    assert_eq!(ledger.published(), vec![r("org/core"), r("org/extra")]);
    // After publication nothing about the repository changes.
    assert_eq!(
        case.handle(&alice, assess("org/core", Verdict::Investigating), t(3))
            .unwrap_err(),
        Rejection::AlreadyPublished {
            repo: r("org/core")
        }
    );
    assert_eq!(
        case.handle(
            &alice,
            cmd(Command::RevokeFix {
                repo: r("org/core"),
                reason: "x".into()
            }),
            t(3)
        )
        .unwrap_err(),
        Rejection::AlreadyPublished {
            repo: r("org/core")
        }
    );
}

#[test]
fn observation_rejections_and_duplicates() {
    let (mut case, _) = opened("hold-all");
    let auto = Principal::automation();
    let obs = |o| Input::Observation(o);
    assert!(matches!(
        case.handle(
            &auto,
            obs(Observation::EffectSucceeded {
                key: "nope".into(),
                outcome: Outcome::Published
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::UnknownEffect { .. }
    ));
    let key = "LS-1/org/core/1/open-draft".to_owned();
    assert!(matches!(
        case.handle(
            &auto,
            obs(Observation::EffectSucceeded {
                key: key.clone(),
                outcome: Outcome::Published
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::Invalid {
            field: "outcome",
            ..
        }
    ));
    // Duplicates change nothing, including a late failure of an effect that succeeded.
    let before = case.clone();
    for o in [
        Observation::EffectSucceeded {
            key: key.clone(),
            outcome: Outcome::DraftOpened {
                ghsa: ghsa_for(&r("org/core")),
            },
        },
        Observation::EffectFailed {
            key: key.clone(),
            retryable: true,
            error: "timeout".into(),
        },
    ] {
        assert!(case.handle(&auto, obs(o), t(1)).unwrap().events.is_empty());
    }
    assert_eq!(case, before);
    let cve = Observation::CveAssigned {
        repo: r("org/core"),
        cve: "CVE-2026-12345".parse().unwrap(),
    };
    assert_eq!(
        case.handle(&auto, obs(cve.clone()), t(1))
            .unwrap()
            .events
            .len(),
        1
    );
    assert!(
        case.handle(&auto, obs(cve), t(1))
            .unwrap()
            .events
            .is_empty()
    );
    let fork = Observation::PrivateForkCreated {
        repo: r("org/core"),
        fork: r("org/core-ghsa-xxxx"),
    };
    assert_eq!(
        case.handle(&auto, obs(fork.clone()), t(1))
            .unwrap()
            .events
            .len(),
        1
    );
    assert!(
        case.handle(&auto, obs(fork), t(1))
            .unwrap()
            .events
            .is_empty()
    );
    assert!(matches!(
        case.handle(
            &auto,
            obs(Observation::AdvisoryPublished {
                repo: r("org/core"),
                ghsa: "GHSA-aaaa-bbbb-cccc".parse().unwrap()
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::Invalid { field: "ghsa", .. }
    ));
    assert!(matches!(
        case.handle(
            &auto,
            obs(Observation::CveAssigned {
                repo: r("org/nope"),
                cve: "CVE-2026-1234".parse().unwrap()
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::NotInCase { .. }
    ));
}

#[test]
fn failures_surface_and_a_second_draft_is_closed() {
    let (mut case, d) = open_with("hold-all", &[]);
    let auto = Principal::automation();
    let open_core = d
        .effects()
        .find(|e| e.repo == r("org/core"))
        .unwrap()
        .key
        .clone();
    case.handle(
        &auto,
        Input::Observation(Observation::EffectFailed {
            key: open_core.clone(),
            retryable: true,
            error: "502".into(),
        }),
        t(0),
    )
    .unwrap();
    assert_eq!(
        case.participants[&r("org/core")].last_error.as_deref(),
        Some("502")
    );
    case.handle(
        &auto,
        Input::Observation(Observation::EffectFailed {
            key: open_core.clone(),
            retryable: false,
            error: "403 forbidden".into(),
        }),
        t(0),
    )
    .unwrap();
    assert_eq!(
        case.participants[&r("org/core")]
            .attention
            .get(&open_core)
            .map(String::as_str),
        Some("403 forbidden")
    );
    let first: GhsaId = "GHSA-2222-3333-4444".parse().unwrap();
    case.handle(
        &auto,
        Input::Observation(Observation::EffectSucceeded {
            key: open_core.clone(),
            outcome: Outcome::DraftOpened {
                ghsa: first.clone(),
            },
        }),
        t(0),
    )
    .unwrap();
    assert!(case.participants[&r("org/core")].attention.is_empty());
    // A retry that missed the first draft made a second one: Lockstep keeps the first and
    // closes the other, once.
    let second: GhsaId = "GHSA-5555-6666-7777".parse().unwrap();
    let observe_second = Input::Observation(Observation::EffectSucceeded {
        key: open_core.clone(),
        outcome: Outcome::DraftOpened {
            ghsa: second.clone(),
        },
    });
    let d = case.handle(&auto, observe_second.clone(), t(0)).unwrap();
    let closes: Vec<&Effect> = d.effects().collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].action, Action::CloseDraft { ghsa: second });
    assert_eq!(
        case.participants[&r("org/core")].advisory.ghsa,
        Some(first.clone())
    );
    assert!(
        case.handle(&auto, observe_second, t(0))
            .unwrap()
            .events
            .is_empty()
    );
    let again = Input::Observation(Observation::EffectSucceeded {
        key: open_core,
        outcome: Outcome::DraftOpened { ghsa: first },
    });
    assert!(case.handle(&auto, again, t(0)).unwrap().events.is_empty());
}

#[test]
fn closing_closes_drafts_and_reports() {
    let (mut case, mut ledger) = opened("hold-all");
    let d = run(
        &mut case,
        &user("alice"),
        Input::Command(Command::Close {
            reason: "duplicate of LS-0".into(),
        }),
        t(1),
        &mut ledger,
    );
    assert_eq!(
        d.effects()
            .filter(|e| e.action.name() == "close-draft")
            .count(),
        3
    );
    assert!(
        case.scope()
            .all(|(_, p)| p.rm == RmState::Closed && p.advisory.state == RemoteState::Closed)
    );
    assert_eq!(
        case.embargo.exit.as_ref().unwrap().1,
        ExitReason::CaseClosed
    );
    assert_eq!(
        case.handle(&user("alice"), assess("org/core", Verdict::Affected), t(2))
            .unwrap_err(),
        Rejection::CaseClosed
    );
    assert!(case.next_deadline().is_none());
    assert!(matches!(
        case.participants[&r("org/core")].assessment,
        Assessment::Unassessed
    ));
}

#[test]
fn replay_rebuilds_the_same_state_byte_for_byte() {
    let (mut case, d) = open_with("publish-ready", &[]);
    let mut log = d.events.clone();
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let _ = &mut pending;
    for (who, input, day) in [
        (user("bob"), assess("org/core", Verdict::Affected), 1),
        (user("carol"), released("org/extra", "extra"), 2),
        (Principal::automation(), Input::Tick, 31),
    ] {
        log.extend(case.handle(&who, input, t(day)).unwrap().events);
    }
    let replayed = Case::replay(&log).unwrap();
    assert_eq!(
        serde_json::to_string(&replayed).unwrap(),
        serde_json::to_string(&case).unwrap()
    );
    assert_eq!(replayed, case);
    // Events survive a JSON round trip.
    let json = serde_json::to_string(&log).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, log);
    // A log with a gap, a repeated opening, or an edge Vultron lacks is refused, not panicked on.
    let mut gap = log.clone();
    gap.remove(3);
    assert!(matches!(
        Case::replay(&gap).unwrap_err(),
        model::ReplayError::Sequence { .. }
    ));
    assert!(matches!(
        Case::replay(&log[1..]).unwrap_err(),
        model::ReplayError::NotOpened
    ));
    let mut bad = log.clone();
    if let Some(EventKind::RmMoved { to, .. }) = bad
        .iter_mut()
        .map(|e| &mut e.kind)
        .find(|k| matches!(k, EventKind::RmMoved { .. }))
    {
        *to = RmState::Closed;
    }
    assert!(matches!(
        Case::replay(&bad).unwrap_err(),
        model::ReplayError::Inconsistent { .. }
    ));
    assert!(matches!(
        Case::replay(&[]).unwrap_err(),
        model::ReplayError::Empty
    ));
}

#[test]
fn lifecycle_doc_matches_the_transition_tables() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lifecycle.md");
    let want = machines::lifecycle_markdown();
    if std::env::var_os("LOCKSTEP_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/lifecycle.md is stale; run LOCKSTEP_BLESS=1 cargo test -p lockstep-core lifecycle_doc"
    );
}

#[test]
fn attacks_observed_after_a_hold_all_deadline_release_the_fixed_advisories() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &Principal::automation(),
        Input::Tick,
        t(31),
        &mut ledger,
    );
    assert_eq!(case.embargo.state, EmState::Active);
    assert!(case.embargo.overdue.is_some());
    assert!(
        ledger.published().is_empty(),
        "hold-all keeps holding at the deadline"
    );
    let attacks = Input::Command(Command::RecordThreat {
        threat: Threat::AttacksObserved,
        reason: "exploitation in the wild".into(),
    });
    run(&mut case, &user("alice"), attacks, t(32), &mut ledger);
    assert_eq!(case.release.unwrap().1, ReleaseMode::Forced);
    assert_eq!(ledger.published(), vec![r("org/core")]);
}

#[test]
fn the_plan_explains_blockers_waves_and_alerts() {
    let (mut case, mut ledger) = opened("hold-all");
    let plan = case.plan();
    assert!(!plan.gate_open);
    assert_eq!(plan.blockers.len(), 3);
    // If the gate opened now: core and extra first, plugin after core.
    let names: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| w.iter().map(|e| e.repo.as_str()).collect())
        .collect();
    assert_eq!(
        names,
        vec![vec!["org/core", "org/extra"], vec!["org/plugin"]]
    );
    run(
        &mut case,
        &user("carol"),
        assess("org/extra", Verdict::NotAffected),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("bob"),
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &Principal::automation(),
        Input::Tick,
        t(30),
        &mut ledger,
    );
    let plan = case.plan();
    assert_eq!(plan.skipped, vec![r("org/extra")]);
    assert!(matches!(
        plan.alerts[..],
        [plan::Alert::EmbargoOverdue { .. }]
    ));
    assert_eq!(plan.blockers.len(), 1);
    assert_eq!(plan.blockers[0].repo, r("org/plugin"));
    // A leak: core publishes; plugin is public without a fix.
    run(
        &mut case,
        &user("alice"),
        Input::Command(Command::DiscloseNow {
            reason: "leak".into(),
        }),
        t(31),
        &mut ledger,
    );
    let plan = case.plan();
    assert_eq!(plan.release, Some(ReleaseMode::Forced));
    assert_eq!(
        plan.waves,
        vec![vec![plan::WaveEntry {
            repo: r("org/core"),
            state: plan::WaveState::Published
        }]]
    );
    assert!(plan.alerts.contains(&plan::Alert::PublicWithoutFix {
        repos: vec![r("org/plugin")]
    }));
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["blockers"][0]["reason"], "unassessed");
}

#[test]
fn a_changed_fix_supersedes_a_pending_publication() {
    let (mut case, mut ledger) = opened("hold-all");
    run(
        &mut case,
        &user("carol"),
        assess("org/extra", Verdict::NotAffected),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &user("alice"),
        released("org/plugin", "plugin"),
        t(1),
        &mut ledger,
    );
    // core's fix opens the gate; its publication is requested but not yet run.
    let d = case
        .handle(&user("bob"), released("org/core", "core"), t(2))
        .unwrap();
    let first = d
        .effects()
        .find(|e| e.action.is_publish())
        .unwrap()
        .key
        .clone();
    assert!(case.effect_allowed(&first, t(2)).is_ok());
    // bob revokes and marks a new version before the runtime claims it.
    case.handle(
        &user("bob"),
        Input::Command(Command::RevokeFix {
            repo: r("org/core"),
            reason: "regression".into(),
        }),
        t(2),
    )
    .unwrap();
    let refusal = case.effect_allowed(&first, t(2)).unwrap_err();
    assert!(refusal.obsolete, "{refusal}");
    let again = Input::Command(Command::MarkFix {
        repo: r("org/core"),
        stage: FixStage::Released,
        packages: vec![fix("core", "2.0.2")],
    });
    let d = case.handle(&user("bob"), again, t(3)).unwrap();
    let second = d.effects().find(|e| e.action.is_publish()).unwrap();
    assert_eq!(second.key, "LS-1/org/core/1/publish-2");
    let Action::Publish { content, .. } = &second.action else {
        panic!()
    };
    assert_eq!(
        content.vulnerabilities[0].patched_versions.as_deref(),
        Some("2.0.2")
    );
    assert!(case.effect_allowed(&second.key, t(3)).is_ok());
    assert!(case.effect_allowed(&first, t(3)).unwrap_err().obsolete);
    // A late failure report of the superseded request does not revive it.
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::EffectFailed {
            key: first.clone(),
            retryable: true,
            error: "502".into(),
        }),
        t(3),
    )
    .unwrap();
    assert!(case.effect_allowed(&first, t(3)).unwrap_err().obsolete);
    // The webhook confirming the publication credits the live request.
    let ghsa = case.participants[&r("org/core")]
        .advisory
        .ghsa
        .clone()
        .unwrap();
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::AdvisoryPublished {
            repo: r("org/core"),
            ghsa,
        }),
        t(3),
    )
    .unwrap();
    assert_eq!(
        case.effects[&second.key].status,
        model::EffectStatus::Succeeded
    );
    assert!(
        !case.participants[&r("org/core")]
            .advisory
            .published_elsewhere
    );
}

#[test]
fn a_person_retries_what_failed_for_good() {
    let (mut case, d) = open_with("hold-all", &[]);
    let auto = Principal::automation();
    let open_core = d
        .effects()
        .find(|e| e.repo == r("org/core"))
        .unwrap()
        .key
        .clone();
    let retry = |repo: &str| {
        Input::Command(Command::Retry {
            repo: r(repo),
            reason: "granted the app advisory write".into(),
        })
    };
    // Nothing failed yet: nothing to retry.
    assert!(matches!(
        case.handle(&user("bob"), retry("org/core"), t(0))
            .unwrap_err(),
        Rejection::NothingToRetry { .. }
    ));
    case.handle(
        &auto,
        Input::Observation(Observation::EffectFailed {
            key: open_core.clone(),
            retryable: false,
            error: "403 forbidden".into(),
        }),
        t(0),
    )
    .unwrap();
    assert_eq!(case.plan().alerts.len(), 1);
    // carol maintains org/extra, not org/core; automation never decides to retry.
    assert!(
        case.handle(&user("carol"), retry("org/core"), t(0))
            .unwrap_err()
            .is_not_authorized()
    );
    assert!(
        case.handle(&auto, retry("org/core"), t(0))
            .unwrap_err()
            .is_not_authorized()
    );
    assert!(matches!(
        case.handle(&user("alice"), retry("org/nope"), t(0))
            .unwrap_err(),
        Rejection::NotInCase { .. }
    ));
    assert!(matches!(
        case.handle(
            &user("bob"),
            Input::Command(Command::Retry {
                repo: r("org/core"),
                reason: " ".into()
            }),
            t(0)
        )
        .unwrap_err(),
        Rejection::Invalid {
            field: "reason",
            ..
        }
    ));
    // bob maintains org/core: the same effect is due again, and the alert is gone.
    let d = case.handle(&user("bob"), retry("org/core"), t(1)).unwrap();
    assert!(matches!(
        &d.events[0].kind,
        EventKind::EffectRetried { key, .. } if *key == open_core
    ));
    assert_eq!(
        d.authority.role,
        Role::Maintainer {
            repo: r("org/core"),
            via: auth::MaintainerSource::Workflow
        }
    );
    assert_eq!(
        case.effects[&open_core].status,
        model::EffectStatus::Pending
    );
    assert!(case.plan().alerts.is_empty());
    let opened = case
        .handle(
            &auto,
            Input::Observation(Observation::EffectSucceeded {
                key: open_core.clone(),
                outcome: Outcome::DraftOpened {
                    ghsa: "GHSA-2222-3333-4444".parse().unwrap(),
                },
            }),
            t(1),
        )
        .unwrap();
    assert_eq!(
        case.participants[&r("org/core")].advisory.state,
        RemoteState::Draft
    );
    // GitHub answers everything else; then the case closes, and closing core's draft fails.
    let mut pending: Vec<Effect> = d
        .effects()
        .chain(opened.effects())
        .filter(|e| e.key != open_core)
        .cloned()
        .collect();
    settle(&mut case, &mut pending, t(1));
    let closing = case
        .handle(
            &user("alice"),
            Input::Command(Command::Close {
                reason: "duplicate".into(),
            }),
            t(2),
        )
        .unwrap();
    let close_core = closing
        .effects()
        .find(|e| e.repo == r("org/core") && e.action.name() == "close-draft")
        .unwrap()
        .key
        .clone();
    case.handle(
        &auto,
        Input::Observation(Observation::EffectFailed {
            key: close_core.clone(),
            retryable: false,
            error: "422".into(),
        }),
        t(2),
    )
    .unwrap();
    case.handle(&user("alice"), retry("org/core"), t(3))
        .unwrap();
    assert_eq!(
        case.effects[&close_core].status,
        model::EffectStatus::Pending
    );
    assert!(matches!(
        case.handle(&user("alice"), assess("org/core", Verdict::Affected), t(3))
            .unwrap_err(),
        Rejection::CaseClosed
    ));
}

#[test]
fn the_remaining_rejection_paths() {
    // Opening: an over-long summary and an empty description.
    let base = || OpenCase {
        case_id: "LS-9".parse().unwrap(),
        workflow: workflow("hold-all"),
        scope: Default::default(),
        vulnerability: vulnerability(),
        embargo_until: None,
    };
    let mut o = base();
    o.vulnerability.summary = "s".repeat(1025);
    assert!(matches!(
        Case::open(&user("alice"), o, t(0)).unwrap_err(),
        Rejection::Invalid {
            field: "summary",
            ..
        }
    ));
    let mut o = base();
    o.vulnerability.description = "\n ".into();
    assert!(matches!(
        Case::open(&user("alice"), o, t(0)).unwrap_err(),
        Rejection::Invalid {
            field: "description",
            ..
        }
    ));
    // The summary is one line: it heads every advisory and every listing.
    for summary in ["line1\nline2", "tab\tbed", "bell\u{7}"] {
        let mut o = base();
        o.vulnerability.summary = summary.into();
        let err = Case::open(&user("alice"), o, t(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            Rejection::Invalid {
                field: "summary",
                why: "must be one line, without control characters".into()
            }
            .to_string()
        );
    }

    let (mut case, _) = opened("hold-all");
    let alice = user("alice");
    let auto = Principal::automation();
    // A reason over 4,096 bytes.
    assert!(matches!(
        case.handle(
            &alice,
            Input::Command(Command::DiscloseNow {
                reason: "r".repeat(4097)
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::Invalid {
            field: "reason",
            ..
        }
    ));
    // Observations about effects and repositories the case does not have.
    assert!(matches!(
        case.handle(
            &auto,
            Input::Observation(Observation::EffectFailed {
                key: "LS-1/org/core/1/nope".into(),
                retryable: true,
                error: "502".into(),
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::UnknownEffect { .. }
    ));
    assert!(matches!(
        case.handle(
            &auto,
            Input::Observation(Observation::PrivateForkCreated {
                repo: r("org/elsewhere"),
                fork: r("org/elsewhere-fork"),
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::NotInCase { .. }
    ));
    assert!(matches!(
        case.handle(
            &auto,
            Input::Observation(Observation::AdvisoryPublished {
                repo: r("org/elsewhere"),
                ghsa: "GHSA-2222-3333-4444".parse().unwrap(),
            }),
            t(1)
        )
        .unwrap_err(),
        Rejection::NotInCase { .. }
    ));
    // Once an advisory is public, its fix and its place in the case are fixed too.
    let mut ledger = Ledger::default();
    for (who, input) in [
        (user("bob"), released("org/core", "core")),
        (user("carol"), released("org/extra", "extra")),
        (alice.clone(), released("org/plugin", "plugin")),
    ] {
        run(&mut case, &who, input, t(2), &mut ledger);
    }
    assert_eq!(ledger.published().len(), 3);
    assert_eq!(
        case.handle(&alice, released("org/core", "core"), t(3))
            .unwrap_err(),
        Rejection::AlreadyPublished {
            repo: r("org/core")
        }
    );
    assert_eq!(
        case.handle(
            &alice,
            Input::Command(Command::RemoveRepo {
                repo: r("org/core"),
                reason: "moved".into()
            }),
            t(3)
        )
        .unwrap_err(),
        Rejection::AlreadyPublished {
            repo: r("org/core")
        }
    );
}

#[test]
fn a_fix_on_two_release_lines_is_released_when_both_are() {
    let (mut case, mut ledger) = opened("hold-all");
    let line = |package: &str, range: &str, patched: &str| vuln::PackageFix {
        package: package.into(),
        vulnerable_range: Some(range.into()),
        patched_versions: patched.into(),
    };
    let two_lines = vec![
        line("core", "< 1.0.3", "1.0.3"),
        line("core", ">= 1.1.0, < 1.1.2", "1.1.2"),
    ];
    for input in [
        assess("org/extra", Verdict::NotAffected),
        released("org/plugin", "plugin"),
    ] {
        run(&mut case, &user("alice"), input, t(1), &mut ledger);
    }
    let prepared = Input::Command(Command::MarkFix {
        repo: r("org/core"),
        stage: FixStage::Prepared,
        packages: two_lines.clone(),
    });
    run(&mut case, &user("bob"), prepared, t(2), &mut ledger);
    fn case_lines(case: &Case, repo: &str) -> Vec<(String, bool)> {
        case.participants[&r(repo)].lines()["core"]
            .iter()
            .map(|l| (l.patched_version.clone(), l.released))
            .collect()
    }
    assert_eq!(
        case_lines(&case, "org/core"),
        [("1.0.3".to_owned(), false), ("1.1.2".to_owned(), false)]
    );
    let release = |tag: &str| {
        Input::Observation(Observation::ReleasePublished {
            repo: r("org/core"),
            tag: tag.into(),
        })
    };
    // A tag that satisfies no line changes nothing.
    let d = run(
        &mut case,
        &Principal::automation(),
        release("v1.0.2"),
        t(3),
        &mut ledger,
    );
    assert!(d.events.is_empty());
    // v1.0.3 releases the 1.0.x line only: the repository still holds the release.
    let d = run(
        &mut case,
        &Principal::automation(),
        release("v1.0.3"),
        t(3),
        &mut ledger,
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(
        case_lines(&case, "org/core"),
        [("1.0.3".to_owned(), true), ("1.1.2".to_owned(), false)]
    );
    assert!(!case.participants[&r("org/core")].fix.is_released());
    assert!(case.blockers().iter().any(|b| b.repo == r("org/core")));
    assert!(ledger.published().is_empty());
    // Again: nothing new.
    let d = run(
        &mut case,
        &Principal::automation(),
        release("v1.0.3"),
        t(3),
        &mut ledger,
    );
    assert!(d.events.is_empty());
    // v1.1.2 releases the other: fixed, and the release goes out.
    run(
        &mut case,
        &Principal::automation(),
        release("core@v1.1.2"),
        t(4),
        &mut ledger,
    );
    assert!(case.participants[&r("org/core")].fix.is_released());
    assert_eq!(ledger.published(), vec![r("org/core"), r("org/plugin")]);
    // Each line is its own `vulnerabilities` entry on the published advisory.
    let Action::Publish { content, .. } = &ledger
        .effects
        .iter()
        .find(|e| e.action.is_publish() && e.repo == r("org/core"))
        .unwrap()
        .action
    else {
        panic!()
    };
    let entries: Vec<(Option<&str>, Option<&str>)> = content
        .vulnerabilities
        .iter()
        .map(|v| {
            (
                v.vulnerable_version_range.as_deref(),
                v.patched_versions.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (Some("< 1.0.3"), Some("1.0.3")),
            (Some(">= 1.1.0, < 1.1.2"), Some("1.1.2"))
        ]
    );
}

#[test]
fn a_preflight_blocker_holds_the_whole_wave_until_it_clears() {
    use lockstep_core::engine::preflight::Finding;
    let blockers = [
        Finding::MissingPublishPermission {
            permission: "write".into(),
        },
        Finding::DraftIncomplete {
            missing: "patched versions".into(),
        },
        Finding::UnmergedForkPullRequests { count: 1 },
    ];
    for blocker in blockers {
        let (mut case, mut ledger) = opened("hold-all");
        let check = |repo: &str, findings: Vec<Finding>| {
            Input::Observation(Observation::PreflightChecked {
                repo: r(repo),
                findings,
            })
        };
        let auto = Principal::automation();
        // A warning and a blocker while embargoed: both shown; a repeat changes nothing.
        let warning = Finding::CreditNotAccepted {
            login: "finder1".into(),
        };
        run(
            &mut case,
            &auto,
            check("org/core", vec![warning.clone()]),
            t(1),
            &mut ledger,
        );
        run(
            &mut case,
            &auto,
            check("org/plugin", vec![blocker.clone()]),
            t(1),
            &mut ledger,
        );
        let d = run(
            &mut case,
            &auto,
            check("org/plugin", vec![blocker.clone()]),
            t(1),
            &mut ledger,
        );
        assert!(d.events.is_empty());
        let plan = case.plan();
        assert_eq!(plan.preflight.len(), 2);
        assert!(plan.preflight[0].blocker && plan.preflight[0].repo == r("org/plugin"));
        assert!(
            !plan.preflight[1].blocker,
            "an unaccepted credit is only a warning"
        );
        // Every fix released: the gate opens, the embargo ends, and nothing publishes, not even
        // core, whose own check is clean but for a warning.
        run(
            &mut case,
            &user("carol"),
            assess("org/extra", Verdict::NotAffected),
            t(2),
            &mut ledger,
        );
        run(
            &mut case,
            &user("bob"),
            released("org/core", "core"),
            t(2),
            &mut ledger,
        );
        run(
            &mut case,
            &user("alice"),
            released("org/plugin", "plugin"),
            t(2),
            &mut ledger,
        );
        assert!(case.gate_open());
        assert_eq!(case.release.unwrap().1, ReleaseMode::Gate);
        assert!(
            ledger.published().is_empty(),
            "{blocker:?} holds the whole wave"
        );
        let why = case.publication_allowed(&r("org/core"), t(2)).unwrap_err();
        assert!(why.starts_with("preflight: org/plugin"), "{why}");
        // The blocker clears: the wave goes out, core first (plugin publishes after it).
        run(
            &mut case,
            &auto,
            check("org/plugin", vec![]),
            t(3),
            &mut ledger,
        );
        assert_eq!(ledger.published(), vec![r("org/core"), r("org/plugin")]);
    }
}

/// The last draft is asked for only once every other exists. A gate that opens while a
/// sibling's draft (here one outside the plan: org/extra, not affected) is still being
/// created must wait for that last draft too, or the first wave's text would not link an
/// advisory published in the next (found by the crash loop).
#[test]
fn the_release_waits_for_a_draft_not_yet_asked_for() {
    let (mut case, d) = open_with("hold-all", &[]);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    let drafts: Vec<RepoId> = pending.iter().map(|e| e.repo.clone()).collect();
    assert_eq!(
        drafts,
        [r("org/core"), r("org/extra")],
        "org/plugin waits for these"
    );
    // org/core's draft opens; org/extra's is still on its way.
    let core = pending.remove(0);
    let d = case
        .handle(
            &Principal::automation(),
            Input::Observation(Observation::EffectSucceeded {
                key: core.key.clone(),
                outcome: Outcome::DraftOpened {
                    ghsa: ghsa_for(&core.repo),
                },
            }),
            t(0),
        )
        .unwrap();
    pending.extend(d.effects().cloned());
    let marks = [
        (user("bob"), assess("org/core", Verdict::Affected)),
        (user("carol"), assess("org/extra", Verdict::NotAffected)),
        (user("alice"), assess("org/plugin", Verdict::Affected)),
        (user("bob"), released("org/core", "core")),
        (user("alice"), released("org/plugin", "plugin")),
    ];
    for (who, input) in marks {
        let d = case.handle(&who, input, t(1)).unwrap();
        pending.extend(d.effects().cloned());
    }
    assert!(case.gate_open(), "every affected fix is released");
    assert!(
        pending.iter().all(|e| !e.action.is_publish()),
        "nothing publishes while org/plugin has no draft: {pending:?}"
    );
    let done = settle(&mut case, &mut pending, t(1));
    let core_publication = done
        .iter()
        .find_map(|e| match &e.action {
            Action::Publish { content, .. } if e.repo == r("org/core") => Some(content),
            _ => None,
        })
        .expect("org/core publishes");
    let plugin = ghsa_for(&r("org/plugin"));
    assert!(
        core_publication.description.contains(plugin.as_str()),
        "org/core's public text links org/plugin's advisory: {}",
        core_publication.description
    );
}
