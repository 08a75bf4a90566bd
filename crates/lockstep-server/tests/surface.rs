//! Property tests of the command surface's parsing (the proptest counterpart of the fuzz
//! target `requests`): any body parses or is refused, a parsed request translates into a
//! command or a field error without panicking, and what the CLI sends is what the server
//! reads back.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use lockstep_core::input::{FixStage, Threat, Verdict};
use lockstep_core::vuln::{Rating, Severity, Vulnerability};
use lockstep_core::{Case, Command, OpenCase, Principal, Timestamp, Workflow};
use lockstep_server::surface::{self, CaseAction, OneOrMany};
use proptest::prelude::*;

const WORKFLOW: &str = r#"
name = "props"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core", "core-extras"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
"#;

fn case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| {
        Case::open(
            &Principal::user("alice".parse().unwrap()),
            OpenCase {
                case_id: "LS-1".parse().unwrap(),
                workflow: Workflow::parse("props.toml", WORKFLOW).unwrap(),
                scope: Default::default(),
                vulnerability: Vulnerability {
                    summary: "s".into(),
                    description: "d".into(),
                    rating: Rating::Severity(Severity::High),
                    cwes: Default::default(),
                    credits: Vec::new(),
                },
                embargo_until: None,
            },
            Timestamp::from_millis(1_700_000_000_000).unwrap(),
        )
        .unwrap()
        .0
    })
}

/// What a request translates into.
type Translated = Result<(Command, Vec<lockstep_core::RepoId>), surface::FieldError>;

fn any_action<A: CaseAction>(body: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<A>(body) {
        let _ = request.command(case());
    }
}

/// Repository-like strings, valid and not.
fn repo() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("org/core".to_owned()),
        Just("org/plugin".to_owned()),
        "[a-z]{1,8}/[a-z.-]{1,8}",
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_body_parses_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        any_action::<surface::Assess>(&body);
        any_action::<surface::FixReady>(&body);
        any_action::<surface::ScopeAdd>(&body);
        any_action::<surface::ScopeRemove>(&body);
        any_action::<surface::RecordThreat>(&body);
        any_action::<surface::RequestEmbargo>(&body);
        if let Ok(open) = serde_json::from_slice::<surface::OpenRequest>(&body) {
            let _ = open.fields();
        }
    }

    #[test]
    fn what_the_cli_sends_the_server_reads(
        repo in repo(),
        reason in ".{0,40}",
        versions in "[0-9.]{1,8}",
        packages in proptest::collection::vec("[a-z-]{1,8}", 0..3),
        prepared in any::<bool>(),
        verdict in prop_oneof![Just(Verdict::Affected), Just(Verdict::NotAffected), Just(Verdict::Investigating)],
        threat in prop_oneof![Just(Threat::PublicAwareness), Just(Threat::ExploitPublic), Just(Threat::AttacksObserved)],
    ) {
        // Through JSON and back, each request builds the command it built before.
        fn round<A: CaseAction + Clone>(a: A) -> (Translated, Translated) {
            let back: A = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
            (a.command(case()), back.command(case()))
        }
        let (a, b) = round(surface::Assess { repo: repo.clone(), verdict, reason: reason.clone() });
        prop_assert_eq!(a, b);
        let fix = surface::FixReady {
            repo: repo.clone(),
            patched_versions: Some(versions),
            vulnerable_range: None,
            lines: None,
            package: (!packages.is_empty()).then_some(OneOrMany::Many(packages)),
            stage: Some(if prepared { FixStage::Prepared } else { FixStage::Released }),
        };
        let (a, b) = round(fix);
        prop_assert_eq!(a, b);
        let (a, b) = round(surface::RecordThreat { threat, reason: reason.clone() });
        prop_assert_eq!(a, b);
        let (a, b) = round(surface::ScopeRemove { repo, reason });
        prop_assert_eq!(a, b);
    }
}
