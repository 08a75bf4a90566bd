//! Following published advisories into GitHub's global database: the core's judgement of
//! each read, the alerts, and closing once everything has propagated.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::input::Verdict;
use lockstep_core::plan::Alert;
use lockstep_core::propagation::{GlobalCopy, GlobalRead};
use lockstep_core::*;

fn published(workflow_extra: &str) -> Case {
    let text = format!(
        "{}\n{workflow_extra}",
        WORKFLOW.replace("ecosystem = \"rust\"", "ecosystem = \"other\"")
    );
    let workflow = Workflow::parse("fixture.toml", &text).unwrap();
    let (mut case, d) = Case::open(
        &user("alice"),
        OpenCase {
            case_id: "LS-1".parse().unwrap(),
            workflow,
            scope: Default::default(),
            vulnerability: vulnerability(),
            embargo_until: None,
        },
        t(0),
    )
    .unwrap();
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    settle(&mut case, &mut pending, t(0));
    let mut ledger = Ledger::default();
    let alice = user("alice");
    for (i, repo) in ["org/core", "org/extra", "org/plugin"]
        .into_iter()
        .enumerate()
    {
        let cve = format!("CVE-2026-{}", 1000 + i).parse().unwrap();
        run(
            &mut case,
            &Principal::automation(),
            Input::Observation(Observation::CveAssigned { repo: r(repo), cve }),
            t(0),
            &mut ledger,
        );
    }
    run(
        &mut case,
        &alice,
        released("org/core", "core"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &alice,
        released("org/extra", "extra"),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &alice,
        released("org/plugin", "plugin"),
        t(1),
        &mut ledger,
    );
    assert!(
        case.scope()
            .all(|(_, p)| p.advisory.state == model::RemoteState::Published)
    );
    case
}

fn read(case: &Case, repo: &str, cve: bool, patched: &str) -> GlobalRead {
    let p = &case.participants[&r(repo)];
    GlobalRead {
        reviewed_at: Some(t(3)),
        withdrawn_at: None,
        cves: if cve {
            vec![p.advisory.cve.as_ref().unwrap().to_string()]
        } else {
            vec![]
        },
        packages: p
            .fix
            .packages()
            .iter()
            .map(|f| (f.package.clone(), Some(patched.to_owned())))
            .collect(),
    }
}

fn observe(case: &mut Case, repo: &str, read: Option<GlobalRead>, at: Timestamp) -> Decision {
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::GlobalCopyRead {
            repo: r(repo),
            read,
        }),
        at,
    )
    .unwrap()
}

#[test]
fn each_copy_is_judged_and_alerts_when_it_lags_or_differs() {
    let mut case = published("");
    assert!(!case.propagated());
    // No copy within 72 hours: pending; past them: lagging, an alert.
    observe(&mut case, "org/core", None, t(2));
    assert_eq!(
        case.participants[&r("org/core")].global,
        Some(GlobalCopy::Pending)
    );
    let lines = case.propagation(t(2));
    assert!(
        lines
            .iter()
            .any(|l| l.repo == r("org/core") && l.summary == "global database: pending for 24 h"),
        "{lines:?}"
    );
    assert!(case.plan().alerts.is_empty());
    observe(&mut case, "org/core", None, t(5));
    assert_eq!(
        case.participants[&r("org/core")].global,
        Some(GlobalCopy::Lagging)
    );
    assert!(case.plan().alerts.contains(&Alert::GlobalDatabase {
        repo: r("org/core"),
        copy: GlobalCopy::Lagging
    }));

    // A copy that lost its CVE alias differs: an alert naming it.
    let lost = read(&case, "org/core", false, "2.0.1");
    observe(&mut case, "org/core", Some(lost), t(5));
    let GlobalCopy::Differs { differences, .. } =
        case.participants[&r("org/core")].global.clone().unwrap()
    else {
        panic!()
    };
    assert_eq!(differences, ["the CVE alias CVE-2026-1000 is missing"]);
    // Other patched versions differ too.
    let other = read(&case, "org/plugin", true, "2.0.0");
    observe(&mut case, "org/plugin", Some(other), t(5));
    assert!(case.propagation(t(5)).iter().any(|l| {
        l.summary
            .contains("plugin is patched in 2.0.0 globally, 2.0.1 here")
    }));

    // Fixed copies settle; an ecosystem GitHub does not review has none, without an alert.
    let good = read(&case, "org/core", true, "2.0.1");
    observe(&mut case, "org/core", Some(good), t(6));
    let good = read(&case, "org/plugin", true, "2.0.1");
    observe(&mut case, "org/plugin", Some(good), t(6));
    observe(&mut case, "org/extra", None, t(6));
    assert_eq!(
        case.participants[&r("org/extra")].global,
        Some(GlobalCopy::NotReviewed)
    );
    assert!(case.plan().alerts.is_empty(), "{:?}", case.plan().alerts);
    assert!(
        case.propagation(t(6))
            .iter()
            .any(|l| l.summary == format!("global database: reviewed at {}", t(3)))
    );
    assert!(case.propagated());
    assert!(
        case.watched_globally().is_empty(),
        "settled copies are not read again"
    );
    assert!(
        case.closed.is_none(),
        "without auto_close the case stays open"
    );

    // The same read again changes nothing.
    let again = read(&case, "org/core", true, "2.0.1");
    assert!(
        observe(&mut case, "org/core", Some(again), t(7))
            .events
            .is_empty()
    );
}

#[test]
fn a_withdrawn_copy_alerts() {
    let mut case = published("");
    let mut w = read(&case, "org/core", true, "2.0.1");
    w.withdrawn_at = Some(t(4));
    observe(&mut case, "org/core", Some(w), t(4));
    assert!(matches!(
        case.plan().alerts.as_slice(),
        [Alert::GlobalDatabase {
            copy: GlobalCopy::Withdrawn { .. },
            ..
        }]
    ));
}

#[test]
fn auto_close_closes_once_everything_has_propagated() {
    let mut case = published("[propagation]\nalert_after_hours = 24\nauto_close = true\n");
    assert_eq!(case.workflow.propagation.alert_after_hours, 24);
    observe(&mut case, "org/extra", None, t(2));
    let good = read(&case, "org/core", true, "2.0.1");
    observe(&mut case, "org/core", Some(good), t(2));
    assert!(case.closed.is_none());
    let good = read(&case, "org/plugin", true, "2.0.1");
    let d = observe(&mut case, "org/plugin", Some(good), t(2));
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::CaseClosed { .. }))
    );
    assert!(case.closed.is_some());
}

#[test]
fn the_propagation_table_is_checked() {
    for (bad, needle) in [
        (
            "[propagation]\nalert_after_hours = 0\n",
            "alert_after_hours",
        ),
        (
            "[propagation]\nalert_after_hours = 9999\n",
            "alert_after_hours",
        ),
        ("[propagation]\nalert_after = 3\n", "unknown field"),
    ] {
        let e = Workflow::parse("w.toml", &format!("{WORKFLOW}\n{bad}")).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    let w = Workflow::parse("w.toml", WORKFLOW).unwrap();
    assert_eq!(w.propagation.alert_after_hours, 72);
    assert!(!w.propagation.auto_close);
    let _ = Verdict::Affected;
}
