//! `lockstep demo`: the whole journey through the ten-SDK MCP workflow, on the real engine.
//! It begins where a real case begins: a researcher's private vulnerability report to one
//! SDK, which the case adopts.
//!
//! It runs the store (a temporary SQLite database), the runtime and the GitHub adapter against
//! the in-process GitHub simulator, with a little injected latency. Every person acts with
//! their own GitHub token, resolved through `GET /user` like the CLI does; the coordinator is
//! `mcp-security-coordinator` and each SDK has a maintainer with GitHub's maintain
//! permission (the workflow names no maintainers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::model::{Assessment, Fix, RemoteState};
use lockstep_core::vuln::PackageFix;
use lockstep_core::*;
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_sim::{FaultConfig, Permission, SimConfig, Simulator};
use lockstep_store::Store;

use crate::output::{paint, state, table};

pub(crate) const WORKFLOW: &str = include_str!("../../../workflows/mcp-sdks.toml");
pub(crate) const COORDINATOR: &str = "mcp-security-coordinator";
pub(crate) const BOT: &str = "lockstep-bot";

struct Demo {
    sim: Simulator,
    base: String,
    store: Store,
    runtime: Runtime,
    started: Instant,
    case: CaseId,
}

impl Demo {
    fn say(&self, what: &str) {
        let t = self.started.elapsed().as_secs_f64();
        println!("  {}  {what}", paint(&format!("{t:>6.2}s"), "2"));
    }

    fn client(&self, login: &str) -> anyhow::Result<GithubClient> {
        let base = ApiBase::parse(&self.base, &["127.0.0.1".to_owned()])?;
        let mut config = GithubConfig::new(base, Credentials::Token(format!("tok-{login}").into()));
        config.pacing = PacingConfig::unlimited();
        Ok(GithubClient::new(config)?)
    }

    /// Submits `input` as `login`, authorised exactly like the CLI.
    async fn act(&self, login: &str, repo: Option<&RepoId>, input: Input) -> anyhow::Result<()> {
        let case = self.store.case(&self.case).await?;
        let caller = self.client(login)?;
        let service = self.client(BOT)?;
        let repos: Vec<RepoId> = repo.into_iter().cloned().collect();
        let principal =
            lockstep_runtime::identity::principal(&caller, &service, Some(&case.workflow), &repos)
                .await?;
        self.store.handle(&self.case, &principal, input).await?;
        Ok(())
    }

    fn writes(&self, what: fn(&lockstep_sim::LedgerEntry) -> bool) -> usize {
        self.sim
            .ledger()
            .iter()
            .filter(|e| e.applied && what(e))
            .count()
    }
}

pub(crate) fn maintainer(repo: &RepoId) -> String {
    format!("{}-maintainer", repo.name())
}

pub(crate) fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(journey())
}

/// GitHub, simulated: the workflow's repositories, a bot with admin on each (Lockstep's own
/// identity), the coordinator, a researcher, and one maintainer per repository with GitHub's
/// maintain permission; every request takes `latency` ± half of it.
pub(crate) fn simulated_github(repos: &[RepoId], latency: Duration) -> anyhow::Result<Simulator> {
    let sim = Simulator::new(SimConfig {
        faults: FaultConfig {
            latency,
            jitter: latency / 2,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    });
    for login in [BOT, COORDINATOR, "security-researcher"] {
        sim.add_user(login, &format!("tok-{login}"));
    }
    for repo in repos {
        sim.add_repo(repo.as_str())?;
        sim.grant(repo.as_str(), BOT, Permission::Admin)?;
        let m = maintainer(repo);
        sim.add_user(&m, &format!("tok-{m}"));
        sim.grant(repo.as_str(), &m, Permission::Maintain)?;
    }
    Ok(sim)
}

async fn journey() -> anyhow::Result<()> {
    let workflow = Workflow::parse("workflows/mcp-sdks.toml", WORKFLOW)?;
    let repos: Vec<RepoId> = workflow.repos.keys().cloned().collect();

    // GitHub, simulated: 20 ms ± 10 ms per request.
    let sim = simulated_github(&repos, Duration::from_millis(20))?;
    let running = lockstep_sim::spawn_local(sim.clone()).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("demo.db").display()
    ))
    .await?;

    let base = running.base_url.clone();
    let bot = {
        let mut config = GithubConfig::new(
            ApiBase::parse(&base, &["127.0.0.1".to_owned()])?,
            Credentials::Token(format!("tok-{BOT}").into()),
        );
        config.pacing = PacingConfig::unlimited();
        Arc::new(GithubClient::new(config)?)
    };
    let runtime = Runtime::new(store.clone(), bot, RuntimeOptions::default()).with_intake(
        lockstep_runtime::intake::IntakeOptions {
            repos: repos.clone(),
            interval: lockstep_runtime::intake::IntakeOptions::DEFAULT_INTERVAL,
        },
    );

    println!(
        "{}\n",
        paint(
            "Lockstep demo: one vulnerability across the ten official MCP SDKs",
            "1"
        )
    );
    println!("  GitHub is simulated in-process; the database is a temporary SQLite file.\n");

    let started = Instant::now();
    let mut demo = Demo {
        sim,
        base,
        store,
        runtime,
        started,
        case: "LS-DEMO-1".parse()?,
    };
    let coordinator = lockstep_runtime::identity::principal(
        &demo.client(COORDINATOR)?,
        &demo.client(BOT)?,
        Some(&workflow),
        &[],
    )
    .await?;
    // A researcher reports privately to one SDK, as the MCP security policy asks: an
    // advisory in triage on python-sdk, announced by the `reported` webhook. Here the
    // runtime's poll of `?state=triage` finds it.
    let python: RepoId = "modelcontextprotocol/python-sdk".parse()?;
    let filed = demo.sim.report_as(
        "security-researcher",
        python.as_str(),
        &serde_json::json!({
            "summary": "DNS rebinding: the HTTP transport does not validate the Host header",
            "description": "Servers using the streamable HTTP transport on localhost accept requests whose Host header names another origin, so a web page can reach them through DNS rebinding.",
            "severity": "high",
            "cwe_ids": ["CWE-350", "CWE-1188"],
        }),
    )?;
    let report_ghsa: GhsaId = filed["ghsa_id"].as_str().unwrap_or_default().parse()?;
    demo.runtime.run_once().await?;
    let report = demo
        .store
        .report(&python, &report_ghsa)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the report was not recorded"))?
        .report;
    demo.say(&format!(
        "security-researcher reports privately to python-sdk: {report_ghsa}, in triage; Lockstep records it for the coordinators and python-sdk's maintainers"
    ));
    // The coordinator judges that every SDK shares the flaw, and opens the case from the
    // report: its text, severity, CWEs and credits; its advisory adopted, not duplicated.
    let opened = demo
        .store
        .open_case_from_report(
            &coordinator,
            OpenCase {
                case_id: demo.case.clone(),
                workflow: workflow.clone(),
                scope: Default::default(),
                vulnerability: report.vulnerability(),
                embargo_until: None,
            },
            &report,
        )
        .await?;
    demo.case = opened.case.id.clone();
    demo.say(&format!(
        "{COORDINATOR} opens case {} from the report across {} SDKs; embargo until {}",
        demo.case,
        repos.len(),
        opened
            .case
            .embargo
            .until
            .map(|u| u.to_string())
            .unwrap_or_default()
    ));

    // The runtime opens the drafts, links them and adds the collaborators; CVEs wait for the
    // assessments (the workflow's default `cve = "on-affected"`).
    demo.runtime.run_once().await?;
    demo.runtime.run_once().await?;
    let case = demo.store.case(&demo.case).await?;
    let drafts = case
        .scope()
        .filter(|(_, p)| p.advisory.state == RemoteState::Draft)
        .count();
    let cves = case
        .scope()
        .filter(|(_, p)| p.advisory.cve.is_some())
        .count();
    let linked = case
        .scope()
        .filter(|(_, p)| p.advisory.linked.len() == repos.len() - 1)
        .count();
    demo.say(&format!(
        "{drafts} draft advisories open on GitHub, {linked} of them linking all {} siblings; {cves} CVEs assigned",
        repos.len() - 1
    ));
    let adopted = demo
        .sim
        .advisories(python.as_str())?
        .into_iter()
        .filter(|a| a["ghsa_id"] == report_ghsa.as_str() && a["state"] == "draft")
        .count();
    let (mut credited, mut following) = (0, 0);
    for repo in &repos {
        for a in demo.sim.advisories(repo.as_str())? {
            let has = |key: &str| {
                a[key].as_array().is_some_and(|l| {
                    l.iter().any(|x| {
                        x["login"] == "security-researcher"
                            || x["user"]["login"] == "security-researcher"
                    })
                })
            };
            credited += usize::from(has("credits"));
            following += usize::from(has("collaborating_users"));
        }
    }
    demo.say(&format!(
        "python-sdk's draft is the report itself ({report_ghsa}, accepted in one write); the researcher is credited on {credited} advisories and follows the other {following} as a collaborator"
    ));
    anyhow::ensure!(adopted == 1, "the report's advisory is adopted");
    demo.say(&format!(
        "GitHub writes so far: {} creates (none in python-sdk), {} updates, {} CVE requests",
        demo.writes(|e| e.is_creation() && e.op == "create"),
        demo.writes(|e| e.write && e.method == "PATCH"),
        demo.writes(|e| e.write && e.path.ends_with("/cve")),
    ));

    // Each SDK's maintainer assesses; Swift has no HTTP server transport.
    let swift: RepoId = "modelcontextprotocol/swift-sdk".parse()?;
    for repo in &repos {
        let (verdict, reason) = if *repo == swift {
            (Verdict::NotAffected, "the SDK has no HTTP server transport")
        } else {
            (
                Verdict::Affected,
                "the HTTP transport accepts any Host header",
            )
        };
        let input = Input::Command(Command::Assess {
            repo: repo.clone(),
            verdict,
            reason: reason.into(),
        });
        demo.act(&maintainer(repo), Some(repo), input).await?;
    }
    let case = demo.store.case(&demo.case).await?;
    let affected = case
        .scope()
        .filter(|(_, p)| matches!(p.assessment, Assessment::Affected { .. }))
        .count();
    let not_affected: Vec<&str> = case
        .scope()
        .filter(|(_, p)| matches!(p.assessment, Assessment::NotAffected { .. }))
        .map(|(r, _)| r.name())
        .collect();
    demo.say(&format!(
        "every maintainer assesses: {affected} SDKs affected, not affected: {}",
        not_affected.join(", ")
    ));
    // The runtime requests a CVE for each affected SDK, and none for the others.
    demo.runtime.run_once().await?;
    demo.say(&format!(
        "{} CVE requests, one per affected SDK; none for {}",
        demo.writes(|e| e.write && e.path.ends_with("/cve")),
        not_affected.join(", ")
    ));

    // Fixes arrive one by one; publication holds until the last.
    let order = [7usize, 1, 4, 0, 8, 2, 5, 3, 9, 6];
    for i in order {
        let repo = &repos[i % repos.len()];
        if *repo == swift {
            continue;
        }
        let packages = vec![PackageFix {
            package: workflow.repos[repo].packages[0].clone(),
            vulnerable_range: Some("< 1.9.0".into()),
            patched_versions: "1.9.0".into(),
        }];
        let input = Input::Command(Command::MarkFix {
            repo: repo.clone(),
            stage: FixStage::Released,
            packages,
        });
        demo.act(&maintainer(repo), Some(repo), input).await?;
        let before = demo.writes(|e| e.is_publish());
        let release = Instant::now();
        demo.runtime.run_once().await?;
        let published = demo.writes(|e| e.is_publish()) - before;
        let waiting = demo.store.case(&demo.case).await?.blockers().len();
        if published == 0 {
            demo.say(&format!(
                "{} marks its fix released: still holding for {waiting}",
                repo.name()
            ));
        } else {
            demo.say(&format!(
                "{} marks the last fix released: the embargo ends",
                repo.name()
            ));
            let times: Vec<chrono::DateTime<chrono::Utc>> = demo
                .sim
                .ledger()
                .iter()
                .filter(|e| e.is_publish() && e.applied)
                .map(|e| e.at)
                .collect();
            let spread = times
                .iter()
                .max()
                .zip(times.iter().min())
                .map_or(0, |(a, b)| (*a - *b).num_milliseconds());
            let closed: Vec<String> = demo
                .store
                .case(&demo.case)
                .await?
                .scope()
                .filter(|(_, p)| p.advisory.state == RemoteState::Closed)
                .map(|(r, _)| r.name().to_owned())
                .collect();
            demo.say(&format!(
                "{published} advisories published together in {} ms (first to last: {spread} ms); drafts closed: {}",
                release.elapsed().as_millis(),
                closed.join(", ")
            ));
        }
    }

    let report = demo.store.verify(None).await?;
    demo.say(&format!(
        "audit trail verifies: {} entries, {} events, head {}…",
        report.entries,
        report.events,
        &report.head[..16]
    ));

    println!();
    let case = demo.store.case(&demo.case).await?;
    let rows: Vec<Vec<String>> = case
        .scope()
        .map(|(r, p)| {
            let assessment = match p.assessment {
                Assessment::Affected { .. } => "affected",
                Assessment::NotAffected { .. } => "not affected",
                _ => "unassessed",
            };
            let fix = match &p.fix {
                Fix::Released { packages } => packages
                    .first()
                    .map_or("-".to_owned(), |f| f.patched_versions.clone()),
                _ => "-".to_owned(),
            };
            let remote = match p.advisory.state {
                RemoteState::Published => "published",
                RemoteState::Closed => "closed",
                RemoteState::Draft => "draft",
                RemoteState::None => "-",
            };
            vec![
                r.to_string(),
                state(assessment),
                fix,
                p.advisory
                    .ghsa
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
                p.advisory
                    .cve
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
                state(remote),
            ]
        })
        .collect();
    table(
        &[
            "REPOSITORY",
            "ASSESSMENT",
            "FIX",
            "ADVISORY",
            "CVE",
            "STATE",
        ],
        &rows,
    );
    let n = repos.len();
    println!(
        "\n  GitHub writes: {} creates, {} PATCHes (the adoption, links with collaborators, publications, close), {} CVE requests; {} requests in all",
        demo.writes(|e| e.is_creation() && e.op == "create"),
        demo.writes(|e| e.write && e.method == "PATCH"),
        demo.writes(|e| e.write && e.path.ends_with("/cve")),
        demo.sim.ledger().len(),
    );
    let published = case
        .scope()
        .filter(|(_, p)| p.advisory.state == RemoteState::Published)
        .count();
    anyhow::ensure!(
        published == n - 1,
        "expected {} publications, saw {published}",
        n - 1
    );
    // The report was created by the researcher; Lockstep created the other n − 1.
    anyhow::ensure!(
        demo.writes(|e| e.is_creation() && e.op == "create") == n - 1,
        "no draft in the report's repository"
    );
    for repo in &repos {
        anyhow::ensure!(
            demo.sim.advisories(repo.as_str())?.len() == 1,
            "{repo} has exactly one advisory"
        );
    }
    anyhow::ensure!(
        demo.writes(|e| e.write && e.path.ends_with("/cve")) == n - 1,
        "one CVE request per affected repository"
    );
    running.shutdown().await?;
    Ok(())
}
