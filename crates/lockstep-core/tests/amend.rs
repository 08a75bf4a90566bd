//! Amending a published advisory: who may, what is refused (and changes nothing), and what
//! the amendment asks of GitHub.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::effect::Action;
use lockstep_core::input::Verdict;
use lockstep_core::model::{EffectStatus, Fix, RemoteState};
use lockstep_core::*;

/// Everything published: core and plugin affected and fixed in 2.0.1, extra not affected.
fn published() -> (Case, Ledger) {
    let (mut case, d) = open_with("hold-all", &[]);
    let mut ledger = Ledger::default();
    ledger.record(&d);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    settle(&mut case, &mut pending, t(0));
    let alice = user("alice");
    run(
        &mut case,
        &alice,
        assess("org/extra", Verdict::NotAffected),
        t(1),
        &mut ledger,
    );
    run(
        &mut case,
        &alice,
        released("org/core", "core"),
        t(2),
        &mut ledger,
    );
    run(
        &mut case,
        &alice,
        released("org/plugin", "plugin"),
        t(3),
        &mut ledger,
    );
    assert_eq!(
        case.participants[&r("org/core")].advisory.state,
        RemoteState::Published
    );
    (case, ledger)
}

fn amend(repo: &str, packages: &[&str], range: Option<&str>, patched: Option<&str>) -> Input {
    Input::Command(Command::Amend {
        repo: r(repo),
        packages: packages.iter().map(|p| (*p).to_owned()).collect(),
        vulnerable_range: range.map(str::to_owned),
        patched_versions: patched.map(str::to_owned),
        reason: "the SSE transport was not fixed in 2.0.1".into(),
    })
}

#[test]
fn a_maintainer_amends_a_published_advisory() {
    let (mut case, _) = published();
    let d = case
        .handle(
            &user("bob"),
            amend("org/core", &[], Some("< 2.0.2"), Some("2.0.2")),
            t(5),
        )
        .unwrap();
    let effects: Vec<&Effect> = d.effects().collect();
    assert_eq!(effects.len(), 1);
    let Action::AmendAdvisory {
        ghsa,
        vulnerabilities,
    } = &effects[0].action
    else {
        panic!("{:?}", effects[0].action)
    };
    assert_eq!(ghsa, &ghsa_for(&r("org/core")));
    assert_eq!(vulnerabilities.len(), 1);
    assert_eq!(vulnerabilities[0].name, "core");
    assert_eq!(
        vulnerabilities[0].vulnerable_version_range.as_deref(),
        Some("< 2.0.2")
    );
    assert_eq!(
        vulnerabilities[0].patched_versions.as_deref(),
        Some("2.0.2")
    );
    assert!(effects[0].key.ends_with("/amend-1"), "{}", effects[0].key);
    let Fix::Released { packages } = &case.participants[&r("org/core")].fix else {
        panic!()
    };
    assert_eq!(packages[0].patched_versions, "2.0.2");
    // Audited like any command: the amendment is an event with its reason.
    assert!(d.events.iter().any(
        |e| matches!(&e.kind, EventKind::AdvisoryAmended { reason, .. } if reason.contains("SSE"))
    ));

    // A package the fix did not name is added with its versions; the earlier amendment, not
    // yet carried out, is superseded so it never writes stale packages.
    let d = case
        .handle(
            &user("bob"),
            amend("org/core", &["core-extras"], None, Some("2.0.2")),
            t(6),
        )
        .unwrap();
    let first = effects[0].key.clone();
    assert_eq!(case.effects[&first].status, EffectStatus::Superseded);
    let second: Vec<&Effect> = d.effects().collect();
    assert!(second[0].key.ends_with("/amend-2"));
    let Action::AmendAdvisory {
        vulnerabilities, ..
    } = &second[0].action
    else {
        panic!()
    };
    let names: Vec<&str> = vulnerabilities.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["core", "core-extras"]);
}

#[test]
fn refusals_change_nothing() {
    let (mut case, _) = published();
    let before = case.clone();
    for (what, who, input, needle) in [
        (
            "an outsider",
            "mallory",
            amend("org/core", &[], None, Some("2.0.2")),
            "not",
        ),
        (
            "another repository's maintainer",
            "carol",
            amend("org/core", &[], None, Some("2.0.2")),
            "not",
        ),
        (
            "not published",
            "alice",
            amend("org/extra", &[], None, Some("1.0.0")),
            "only a published advisory",
        ),
        (
            "nothing to change",
            "alice",
            amend("org/core", &[], None, None),
            "patched versions or a new vulnerable range",
        ),
        (
            "unknown package",
            "alice",
            amend("org/core", &["nope"], None, Some("2.0.2")),
            "nope",
        ),
        (
            "adding without versions",
            "alice",
            amend("org/core", &["core-extras"], Some("< 3"), None),
            "needs its patched versions",
        ),
        (
            "no reason",
            "alice",
            Input::Command(Command::Amend {
                repo: r("org/core"),
                packages: vec![],
                vulnerable_range: None,
                patched_versions: Some("2.0.2".into()),
                reason: " ".into(),
            }),
            "reason",
        ),
        (
            "outside the workflow",
            "alice",
            amend("else/where", &[], None, Some("1")),
            "else/where",
        ),
    ] {
        let e = case.handle(&user(who), input, t(5)).unwrap_err();
        assert!(e.to_string().contains(needle), "{what}: {e}");
        assert!(!e.to_string().contains('\n'));
        assert_eq!(case, before, "{what} changed the case");
    }
    // Saying what the advisory says already changes nothing.
    let d = case
        .handle(
            &user("alice"),
            amend("org/core", &[], Some("< 2.0.1"), Some("2.0.1")),
            t(5),
        )
        .unwrap();
    assert!(d.events.is_empty());
}

#[test]
fn a_draft_is_not_amended_and_a_closed_case_still_is() {
    let (mut case, d) = open_with("hold-all", &[]);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    settle(&mut case, &mut pending, t(0));
    let e = case
        .handle(
            &user("alice"),
            amend("org/core", &["core"], None, Some("2.0.2")),
            t(1),
        )
        .unwrap_err();
    assert!(e.to_string().contains("still a draft"), "{e}");

    let (mut case, _) = published();
    case.handle(
        &user("alice"),
        Input::Command(Command::Close {
            reason: "done".into(),
        }),
        t(6),
    )
    .unwrap();
    let d = case
        .handle(
            &user("bob"),
            amend("org/core", &[], None, Some("2.0.3")),
            t(7),
        )
        .unwrap();
    assert_eq!(
        d.effects().count(),
        1,
        "a fix found incomplete after closing is still amended"
    );
}

#[test]
fn a_refused_amendment_waits_for_a_retry() {
    let (mut case, _) = published();
    let d = case
        .handle(
            &user("bob"),
            amend("org/core", &[], None, Some("2.0.2")),
            t(5),
        )
        .unwrap();
    let key = d.effects().next().unwrap().key.clone();
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::EffectFailed {
            key: key.clone(),
            retryable: false,
            error: "403 Forbidden".into(),
        }),
        t(5),
    )
    .unwrap();
    assert!(
        case.participants[&r("org/core")]
            .attention
            .contains_key(&key),
        "an alert"
    );
    case.handle(
        &user("bob"),
        Input::Command(Command::Retry {
            repo: r("org/core"),
            reason: "permission restored".into(),
        }),
        t(6),
    )
    .unwrap();
    assert_eq!(case.effects[&key].status, EffectStatus::Pending);
    case.handle(
        &Principal::automation(),
        Input::Observation(Observation::EffectSucceeded {
            key: key.clone(),
            outcome: input::Outcome::Amended,
        }),
        t(6),
    )
    .unwrap();
    assert_eq!(case.effects[&key].status, EffectStatus::Succeeded);
    assert!(case.participants[&r("org/core")].attention.is_empty());
}
