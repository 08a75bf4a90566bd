//! Embargo extension requests: a maintainer asks, a coordinator grants (by setting the
//! embargo) or declines; the request shows in the plan while it is pending, and replays.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::reject::Denial;
use lockstep_core::*;

fn request(until: Timestamp, reason: &str) -> Input {
    Input::Command(Command::RequestEmbargo {
        until,
        reason: reason.into(),
    })
}

#[test]
fn a_maintainer_asks_and_a_coordinator_grants_or_declines() {
    let (mut case, opening) = open_with("hold-all", &[]);
    let mut log = opening.events.clone();
    assert_eq!(case.embargo.until, Some(t(30)));

    // bob maintains org/core: he may ask; the embargo does not move.
    let d = case
        .handle(
            &user("bob"),
            request(t(45), "the backport needs two weeks"),
            t(1),
        )
        .unwrap();
    log.extend(d.events);
    assert_eq!(case.embargo.until, Some(t(30)));
    let pending = case.plan().embargo_request.unwrap();
    assert_eq!(pending.until, t(45));
    assert_eq!(pending.reason, "the backport needs two weeks");
    assert_eq!(pending.by, Actor::User("bob".parse().unwrap()));

    // A maintainer may not grant it, nor decline it.
    for input in [
        Input::Command(Command::SetEmbargo {
            until: t(45),
            reason: "x".into(),
        }),
        Input::Command(Command::DeclineEmbargo { reason: "x".into() }),
    ] {
        assert!(
            case.handle(&user("bob"), input, t(1))
                .unwrap_err()
                .is_not_authorized()
        );
    }

    // The coordinator declines: the request is gone, the embargo unchanged.
    let d = case
        .handle(
            &user("alice"),
            Input::Command(Command::DeclineEmbargo {
                reason: "the other vendors are ready".into(),
            }),
            t(2),
        )
        .unwrap();
    log.extend(d.events);
    assert!(case.plan().embargo_request.is_none());
    assert_eq!(case.embargo.until, Some(t(30)));
    assert_eq!(
        case.handle(
            &user("alice"),
            Input::Command(Command::DeclineEmbargo { reason: "x".into() }),
            t(2)
        )
        .unwrap_err(),
        Rejection::NoEmbargoRequest
    );

    // Asked again, then granted by setting the embargo.
    let d = case
        .handle(&user("carol"), request(t(40), "release train"), t(3))
        .unwrap();
    log.extend(d.events);
    let d = case
        .handle(
            &user("alice"),
            Input::Command(Command::SetEmbargo {
                until: t(40),
                reason: "granted".into(),
            }),
            t(4),
        )
        .unwrap();
    assert!(d.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::EmbargoExtensionAnswered { granted: true, .. }
    )));
    log.extend(d.events);
    assert_eq!(case.embargo.until, Some(t(40)));
    assert!(case.plan().embargo_request.is_none());

    // The log replays to the same case.
    let replayed = Case::replay(&log).unwrap();
    assert_eq!(replayed, case);
}

#[test]
fn requests_that_do_not_fit_are_refused() {
    let (mut case, _) = open_with("hold-all", &[]);
    // Someone who maintains nothing in the case.
    let e = case
        .handle(&user("mallory"), request(t(45), "x"), t(1))
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Rejection::NotAuthorized {
                why: Denial::NotParticipant { .. },
                ..
            }
        ),
        "{e}"
    );
    // No later than the current end, past the limit, in the past, without a reason.
    assert!(matches!(
        case.handle(&user("bob"), request(t(20), "x"), t(1))
            .unwrap_err(),
        Rejection::Invalid { field: "until", .. }
    ));
    assert!(matches!(
        case.handle(&user("bob"), request(t(61), "x"), t(1))
            .unwrap_err(),
        Rejection::EmbargoTooLong { .. }
    ));
    assert!(matches!(
        case.handle(&user("bob"), request(t(45), "  "), t(1))
            .unwrap_err(),
        Rejection::Invalid {
            field: "reason",
            ..
        }
    ));
    // Once the embargo has ended, there is nothing to extend.
    case.handle(
        &user("alice"),
        Input::Command(Command::DiscloseNow {
            reason: "leak".into(),
        }),
        t(2),
    )
    .unwrap();
    assert_eq!(
        case.handle(&user("bob"), request(t(45), "x"), t(3))
            .unwrap_err(),
        Rejection::EmbargoEnded
    );
}
