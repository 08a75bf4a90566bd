//! The command surface: any JSON body parses into a request or is refused, and any parsed
//! request translates into a core command (or a field error) without panicking; any answer
//! document the CLI reads decodes or is refused.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lockstep_core::vuln::{Rating, Severity, Vulnerability};
use lockstep_core::{Case, OpenCase, Principal, Timestamp, Workflow};
use lockstep_server::surface::{self, CaseAction};

const WORKFLOW: &str = r#"
name = "fuzz"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
"#;

fn case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| {
        let workflow = Workflow::parse("fuzz.toml", WORKFLOW).expect("fixture");
        let (case, _) = Case::open(
            &Principal::user("alice".parse().expect("login")),
            OpenCase {
                case_id: "LS-1".parse().expect("id"),
                workflow,
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
            Timestamp::from_millis(1_700_000_000_000).expect("time"),
        )
        .expect("opens");
        case
    })
}

fn action<A: CaseAction>(body: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<A>(body) {
        let _ = request.command(case());
    }
}

fuzz_target!(|input: (u8, &[u8])| {
    let (pick, body) = input;
    match pick % 15 {
        0 => action::<surface::Assess>(body),
        1 => action::<surface::FixReady>(body),
        2 => action::<surface::FixRevoke>(body),
        3 => action::<surface::Retry>(body),
        4 => action::<surface::SetEmbargo>(body),
        5 => action::<surface::DiscloseNow>(body),
        6 => action::<surface::Close>(body),
        7 => action::<surface::ScopeAdd>(body),
        8 => action::<surface::ScopeRemove>(body),
        9 => action::<surface::RecordThreat>(body),
        10 => action::<surface::RequestEmbargo>(body),
        11 => action::<surface::DeclineEmbargo>(body),
        12 => {
            if let Ok(open) = serde_json::from_slice::<surface::OpenRequest>(body) {
                let _ = open.fields();
            }
        }
        13 => {
            let _ = serde_json::from_slice::<surface::Acted>(body);
        }
        _ => {
            let _ = serde_json::from_slice::<surface::Opened>(body);
            let _ = serde_json::from_slice::<surface::ErrorBody>(body);
        }
    }
});
