//! Shared fixtures: cases driven through the real engine (GitHub's part played in memory),
//! the official schemas with their validators, and CSAF 2.0's mandatory tests (§6.1) as far as
//! they concern what Lockstep writes.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod csaf_tests;

use std::collections::BTreeMap;

use lockstep_core::effect::Action;
use lockstep_core::input::{FixStage, Outcome, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;
use serde_json::Value;

pub const MCP_WORKFLOW: &str = include_str!("../../../../workflows/mcp-sdks.toml");
pub const COORDINATOR: &str = "mcp-security-coordinator";

pub fn r(s: &str) -> RepoId {
    s.parse().unwrap()
}

/// 2026-03-01T00:00:00Z plus `hours`.
pub fn at(hours: i64) -> Timestamp {
    Timestamp::from_millis(1_772_323_200_000 + hours * 3_600_000).unwrap()
}

/// A case and every event it has, with GitHub's part played in memory.
pub struct Driver {
    pub case: Case,
    pub events: Vec<Event>,
    pub now: Timestamp,
    pub coordinator: Principal,
}

/// A GHSA id derived from the repository, so runs are deterministic.
pub fn ghsa_for(repo: &RepoId) -> GhsaId {
    let n = repo.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let alphabet = b"23456789cfghjmpqrvwx";
    let mut s = String::from("GHSA");
    let mut x = n;
    for _ in 0..3 {
        s.push('-');
        for _ in 0..4 {
            s.push(alphabet[(x % 20) as usize] as char);
            x = x / 20 + 7;
        }
    }
    s.parse().unwrap()
}

impl Driver {
    pub fn open(workflow: &str, vulnerability: Vulnerability) -> Driver {
        let coordinator = Principal::user(COORDINATOR.parse().unwrap());
        let workflow = Workflow::parse("mcp-sdks.toml", workflow).unwrap();
        let (case, d) = Case::open(
            &coordinator,
            OpenCase {
                case_id: "LS-2026-0042".parse().unwrap(),
                workflow,
                scope: Default::default(),
                vulnerability,
                embargo_until: None,
            },
            at(0),
        )
        .unwrap();
        let mut driver = Driver {
            case,
            events: Vec::new(),
            now: at(0),
            coordinator,
        };
        driver.absorb(d);
        driver
    }

    fn absorb(&mut self, d: Decision) {
        let mut pending: Vec<Effect> = d.effects().cloned().collect();
        self.events.extend(d.events);
        while !pending.is_empty() {
            let e = pending.remove(0);
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
            let d = self
                .case
                .handle(
                    &Principal::automation(),
                    Input::Observation(Observation::EffectSucceeded {
                        key: e.key.clone(),
                        outcome,
                    }),
                    self.now,
                )
                .unwrap();
            pending.extend(d.effects().cloned());
            self.events.extend(d.events);
        }
    }

    /// Submits `input` as the coordinator an hour later and plays GitHub's part.
    pub fn act(&mut self, input: Input) -> Result<(), Rejection> {
        self.now = self.now.plus_millis(3_600_000);
        let d = self.case.handle(&self.coordinator, input, self.now)?;
        self.absorb(d);
        Ok(())
    }

    pub fn assign_cves(&mut self) {
        let repos: Vec<RepoId> = self.case.scope().map(|(r, _)| r.clone()).collect();
        for (i, repo) in repos.into_iter().enumerate() {
            self.act(Input::Observation(Observation::CveAssigned {
                repo,
                cve: format!("CVE-2026-{}", 41_000 + i).parse().unwrap(),
            }))
            .unwrap();
        }
    }

    pub fn assess(&mut self, repo: &RepoId, verdict: Verdict, reason: &str) {
        self.act(Input::Command(Command::Assess {
            repo: repo.clone(),
            verdict,
            reason: reason.into(),
        }))
        .unwrap();
    }

    pub fn fix(&mut self, repo: &RepoId, stage: FixStage, packages: Vec<PackageFix>) {
        self.act(Input::Command(Command::MarkFix {
            repo: repo.clone(),
            stage,
            packages,
        }))
        .unwrap();
    }
}

pub fn demo_vulnerability() -> Vulnerability {
    Vulnerability {
        summary: "DNS rebinding: HTTP transports do not validate the Host header".into(),
        description: "Servers using the streamable HTTP transport on localhost accept requests whose Host header names another origin.".into(),
        rating: Rating::Severity(Severity::High),
        cwes: ["CWE-350".parse().unwrap(), "CWE-1188".parse().unwrap()].into(),
        credits: vec!["security-researcher:finder".parse().unwrap()],
    }
}

/// The case `lockstep demo` runs: the ten MCP SDKs, Swift not affected, every other SDK
/// fixed in 1.9.0 (its first package), all published together.
pub fn demo_case() -> Driver {
    let mut d = Driver::open(MCP_WORKFLOW, demo_vulnerability());
    d.assign_cves();
    let swift = r("modelcontextprotocol/swift-sdk");
    let repos: Vec<RepoId> = d.case.scope().map(|(r, _)| r.clone()).collect();
    for repo in &repos {
        if *repo == swift {
            d.assess(
                repo,
                Verdict::NotAffected,
                "the SDK has no HTTP server transport",
            );
        } else {
            d.assess(
                repo,
                Verdict::Affected,
                "the HTTP transport accepts any Host header",
            );
        }
    }
    for repo in &repos {
        if *repo == swift {
            continue;
        }
        let package = d.case.workflow.repos[repo].packages[0].clone();
        d.fix(
            repo,
            FixStage::Released,
            vec![PackageFix {
                package,
                vulnerable_range: Some("< 1.9.0".into()),
                patched_versions: "1.9.0".into(),
            }],
        );
    }
    d
}

// ----- schemas ---------------------------------------------------------------------------

pub const OSV_SCHEMA: &str = include_str!("../../schemas/osv-schema.json");
pub const CSAF_SCHEMA: &str = include_str!("../../schemas/csaf_json_schema.json");
pub const CVE_SCHEMA: &str = include_str!("../../schemas/CVE_JSON_bundled_5.1.1.json");
const CVSS: [(&str, &str); 3] = [
    (
        "https://www.first.org/cvss/cvss-v2.0.json",
        include_str!("../../schemas/cvss-v2.0.json"),
    ),
    (
        "https://www.first.org/cvss/cvss-v3.0.json",
        include_str!("../../schemas/cvss-v3.0.json"),
    ),
    (
        "https://www.first.org/cvss/cvss-v3.1.json",
        include_str!("../../schemas/cvss-v3.1.json"),
    ),
];

/// Resolves the CSAF schema's references to FIRST's CVSS schemas from the local copies,
/// under their bare URLs (their own ids carry a `?date` suffix); anything else fails.
struct LocalOnly(BTreeMap<&'static str, Value>);

impl jsonschema::Retrieve for LocalOnly {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let bare = uri.as_str().split(['?', '#']).next().unwrap_or_default();
        self.0
            .get(bare)
            .cloned()
            .ok_or_else(|| format!("no local copy of {bare}; refusing the network").into())
    }
}

pub struct Validators {
    pub osv: jsonschema::Validator,
    pub csaf: jsonschema::Validator,
    pub cve: jsonschema::Validator,
}

impl Validators {
    pub fn new() -> Validators {
        let local = || {
            LocalOnly(
                CVSS.iter()
                    .map(|(url, text)| (*url, serde_json::from_str(text).unwrap()))
                    .collect(),
            )
        };
        let build = |text: &str| {
            jsonschema::options()
                .should_validate_formats(true)
                .with_retriever(local())
                .build(&serde_json::from_str(text).unwrap())
                .unwrap()
        };
        Validators {
            osv: build(OSV_SCHEMA),
            csaf: build(CSAF_SCHEMA),
            cve: build(CVE_SCHEMA),
        }
    }

    pub fn errors(&self, format: lockstep_export::Format, doc: &Value) -> Vec<String> {
        let v = match format {
            lockstep_export::Format::Osv => &self.osv,
            lockstep_export::Format::Csaf => &self.csaf,
            lockstep_export::Format::Cve => &self.cve,
        };
        let mut errors: Vec<String> = v
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if format == lockstep_export::Format::Csaf {
            errors.extend(csaf_tests::mandatory(doc));
        }
        errors
    }
}
