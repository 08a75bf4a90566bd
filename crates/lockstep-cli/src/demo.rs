//! `lockstep demo`: the whole journey through the ten-SDK MCP workflow.
//!
//! It drives the real lifecycle core. GitHub's part is played in memory: every effect the
//! engine requests succeeds at once, with deterministic advisory ids.

use std::collections::BTreeMap;

use lockstep_core::effect::Action;
use lockstep_core::input::{FixStage, Outcome, Verdict};
use lockstep_core::model::{Assessment, Fix, RemoteState};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;

const WORKFLOW: &str = include_str!("../../../workflows/mcp-sdks.toml");

struct Demo {
    case: Case,
    now: Timestamp,
    start: Timestamp,
    writes: BTreeMap<&'static str, usize>,
    ghsa_seq: u32,
}

impl Demo {
    fn say(&self, what: &str) {
        let hours = (self.now.millis() - self.start.millis()) / 3_600_000;
        println!("  day {:>2} {:>2}h  {what}", hours / 24, hours % 24);
    }

    fn ghsa(&mut self) -> anyhow::Result<GhsaId> {
        // GitHub's alphabet for GHSA ids.
        const ALPHABET: &[u8] = b"23456789cfghjmpqrvwx";
        self.ghsa_seq += 1;
        let mut n = self.ghsa_seq.wrapping_mul(2_654_435_761);
        let mut group = || -> String {
            (0..4)
                .map(|_| {
                    let c = ALPHABET[(n % 20) as usize] as char;
                    n /= 20;
                    c
                })
                .collect()
        };
        let (a, b) = (group(), group());
        let c = format!("{:04}", self.ghsa_seq % 10_000);
        Ok(format!("GHSA-{a}-{b}-{c}").parse()?)
    }

    /// Applies a decision's effects as GitHub would, until nothing is pending; returns the
    /// publications it made.
    fn settle(&mut self, decision: Decision) -> anyhow::Result<Vec<RepoId>> {
        let mut pending: Vec<Effect> = decision.effects().cloned().collect();
        let mut published = Vec::new();
        while !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            for e in batch {
                *self.writes.entry(e.action.name()).or_default() += 1;
                let outcome = match &e.action {
                    Action::OpenDraft { .. } => Outcome::DraftOpened { ghsa: self.ghsa()? },
                    Action::LinkSiblings { .. } => Outcome::SiblingsLinked,
                    Action::AddCollaborators { .. } => Outcome::CollaboratorsAdded,
                    Action::RequestCve { .. } => Outcome::CveRequested,
                    Action::Publish { .. } => {
                        published.push(e.repo.clone());
                        Outcome::Published
                    }
                    Action::CloseDraft { .. } => Outcome::DraftClosed,
                };
                let d = self.case.handle(
                    &Principal::automation(),
                    Input::Observation(Observation::EffectSucceeded {
                        key: e.key,
                        outcome,
                    }),
                    self.now,
                )?;
                pending.extend(d.effects().cloned());
            }
        }
        Ok(published)
    }

    fn act(&mut self, who: &Principal, input: Input) -> anyhow::Result<Vec<RepoId>> {
        let d = self.case.handle(who, input, self.now)?;
        self.settle(d)
    }
}

/// A maintainer of `repo`: the MCP workflow names none, so GitHub's permission counts.
fn maintainer(repo: &RepoId) -> anyhow::Result<Principal> {
    let mut p = Principal::user(format!("{}-maintainer", repo.name()).parse()?);
    p.github_maintains.insert(repo.clone());
    Ok(p)
}

pub(crate) fn run() -> anyhow::Result<()> {
    let workflow = Workflow::parse("workflows/mcp-sdks.toml", WORKFLOW)?;
    let coordinator = Principal::user("mcp-security-coordinator".parse()?);
    let start: Timestamp = "2026-11-02T09:00:00Z".parse()?;
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();
    println!("Lockstep demo: one vulnerability across the ten official MCP SDKs\n");
    let (case, opened) = Case::open(
        &coordinator,
        OpenCase {
            case_id: "LS-DEMO-1".parse()?,
            workflow: workflow.clone(),
            scope: Default::default(),
            vulnerability: Vulnerability {
                summary: "DNS rebinding: HTTP transports do not validate the Host header".into(),
                description: "Servers using the streamable HTTP transport on localhost accept requests whose Host header names another origin.".into(),
                rating: Rating::Severity(Severity::High),
                cwes: ["CWE-350".parse()?, "CWE-1188".parse()?].into(),
                credits: vec!["security-researcher:finder".parse()?],
            },
            embargo_until: None,
        },
        start,
    )?;
    let mut demo = Demo {
        case,
        now: start,
        start,
        writes: BTreeMap::new(),
        ghsa_seq: 0,
    };
    let until = demo
        .case
        .embargo
        .until
        .map(|u| u.to_string())
        .unwrap_or_default();
    demo.say(&format!(
        "case LS-DEMO-1 opened by mcp-security-coordinator: {} repositories, embargo until {until}",
        repos.len()
    ));
    demo.settle(opened)?;
    let cves = demo
        .case
        .participants
        .values()
        .filter(|p| p.advisory.cve_requested)
        .count();
    demo.say(&format!(
        "{} draft advisories open, each linking its {} siblings; {cves} CVEs requested",
        demo.case
            .participants
            .values()
            .filter(|p| p.advisory.state == RemoteState::Draft)
            .count(),
        repos.len() - 1
    ));

    // Maintainers assess: Swift's transport never listened on HTTP, so it is not affected.
    let not_affected: RepoId = "modelcontextprotocol/swift-sdk".parse()?;
    demo.now = demo.now.plus_millis(20 * 3_600_000);
    for repo in &repos {
        let (verdict, reason) = if *repo == not_affected {
            (Verdict::NotAffected, "the SDK has no HTTP server transport")
        } else {
            (
                Verdict::Affected,
                "the HTTP transport accepts any Host header",
            )
        };
        demo.act(
            &maintainer(repo)?,
            Input::Command(Command::Assess {
                repo: repo.clone(),
                verdict,
                reason: reason.into(),
            }),
        )?;
    }
    demo.say("every SDK assessed: 9 affected, swift-sdk not affected");

    // Fixes arrive in turn; publication holds until the last.
    let order = [7, 1, 4, 0, 8, 2, 5, 3, 9, 6];
    for (step, i) in order.iter().enumerate() {
        let repo = &repos[*i % repos.len()];
        if *repo == not_affected {
            continue;
        }
        demo.now = demo
            .now
            .plus_millis(((step as i64 % 3) + 1) * 26 * 3_600_000);
        let spec = &workflow.repos[repo];
        let packages = vec![PackageFix {
            package: spec.packages[0].clone(),
            vulnerable_range: Some("< 1.9.0".into()),
            patched_versions: "1.9.0".into(),
        }];
        let published = demo.act(
            &maintainer(repo)?,
            Input::Command(Command::MarkFix {
                repo: repo.clone(),
                stage: FixStage::Released,
                packages,
            }),
        )?;
        let waiting = demo.case.blockers().len();
        if published.is_empty() {
            demo.say(&format!(
                "{} marks its fix released; holding for {waiting} more",
                repo.name()
            ));
        } else {
            demo.say(&format!(
                "{} marks the last fix released: the embargo ends",
                repo.name()
            ));
            demo.say(&format!(
                "{} advisories published together, in one wave",
                published.len()
            ));
        }
    }

    println!(
        "\n  {:<36} {:<13} {:<9} {:<22} state",
        "repository", "assessment", "fix", "advisory"
    );
    for (repo, p) in demo.case.scope() {
        let assessment = match p.assessment {
            Assessment::Affected { .. } => "affected",
            Assessment::NotAffected { .. } => "not affected",
            _ => "unassessed",
        };
        let fix = match &p.fix {
            Fix::Released { packages } => {
                packages.first().map_or("", |f| f.patched_versions.as_str())
            }
            _ => "-",
        };
        let state = match p.advisory.state {
            RemoteState::Published => "published",
            RemoteState::Closed => "closed",
            RemoteState::Draft => "draft",
            RemoteState::None => "-",
        };
        let ghsa = p.advisory.ghsa.as_ref().map_or("-", |g| g.as_str());
        println!(
            "  {:<36} {assessment:<13} {fix:<9} {ghsa:<22} {state}",
            repo.as_str()
        );
    }
    let count = |a: &str| demo.writes.get(a).copied().unwrap_or(0);
    let counted =
        count("open-draft") + count("link-siblings") + count("request-cve") + count("publish");
    let n = repos.len();
    println!(
        "\n  GitHub writes: {counted} creates, links, CVE requests and publishes (lower bound 4N-1 = {} with all {n} published; one SDK was not affected)",
        4 * n - 1
    );
    println!(
        "  plus {} collaborator updates and {} draft closed; {} events in the case log",
        count("add-collaborators"),
        count("close-draft"),
        demo.case.version
    );
    let published = demo
        .case
        .scope()
        .filter(|(_, p)| p.advisory.state == RemoteState::Published)
        .count();
    anyhow::ensure!(
        published == n - 1,
        "expected {} publications, saw {published}",
        n - 1
    );
    Ok(())
}
