//! Lockstep's end-to-end harness: the simulator, the store, the runtime (in-process or as a
//! real `lockstep serve` process) wired together, and an offline checker of the invariants
//! I1–I6 of `reliability-and-performance.md` §5.2 over the simulator's ledger and the store.
//!
//! The tests live in `tests/` and the release benchmark in `benches/`; see the README.
#![forbid(unsafe_code)]

pub mod cli;
pub mod fleet;
pub mod invariants;
pub mod pacing;
pub mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lockstep_core::engine::intake::Report;
use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::{Command, Input, Login, OpenCase, Principal, RepoId, Workflow};
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{Runtime, RuntimeOptions};
use lockstep_sim::{OrgRole, Permission, SimConfig, Simulator};
use lockstep_store::{Committed, OutboxState, Store};

pub use invariants::{Expect, Mark, MarkKind};

/// The service account Lockstep acts as on the simulator.
pub const BOT: &str = "lockstep-bot";
/// Its token. Distinctive, so that a test can look for it in captured logs (I7).
pub const BOT_TOKEN: &str = "ghp_e2eBotTokenMustNeverBeLogged0000000";
/// The coordinator who opens cases (every generated workflow names them).
pub const COORDINATOR: &str = "alice";
/// The credited finder.
pub const FINDER: &str = "finder1";
/// A maintainer of every repository whose workflow entry names nobody (authority through
/// GitHub's maintain permission).
pub const GITHUB_MAINTAINER: &str = "sdk-maintainer";

/// One repository of a generated workflow.
#[derive(Debug, Clone)]
pub struct RepoDef {
    /// `owner/name`.
    pub name: String,
    /// Its only package (ecosystem npm).
    pub package: String,
    /// Its maintainer, named in the workflow.
    pub maintainer: Option<String>,
    /// Repositories that must publish first.
    pub publish_after: Vec<String>,
}

/// A workflow file's text for these repositories, coordinated by [`COORDINATOR`].
pub fn workflow_toml(name: &str, repos: &[RepoDef]) -> String {
    let mut s = format!(
        "name = \"{name}\"\ncoordinators = [\"{COORDINATOR}\"]\n\n[embargo]\ndefault_days = 30\nmax_days = 60\ndeadline_policy = \"hold-all\"\n"
    );
    for r in repos {
        s.push_str(&format!(
            "\n[[repo]]\nname = \"{}\"\necosystem = \"npm\"\npackages = [\"{}\"]\n",
            r.name, r.package
        ));
        if let Some(m) = &r.maintainer {
            s.push_str(&format!("maintainers = [\"{m}\"]\n"));
        }
        if !r.publish_after.is_empty() {
            let list: Vec<String> = r.publish_after.iter().map(|u| format!("\"{u}\"")).collect();
            s.push_str(&format!("publish_after = [{}]\n", list.join(", ")));
        }
    }
    s
}

/// Parses a workflow (panics with the parser's message on a bad fixture).
pub fn parse_workflow(name: &str, text: &str) -> Workflow {
    Workflow::parse(name, text).unwrap_or_else(|e| panic!("fixture workflow: {e}"))
}

/// Three repositories, one of which publishes after another: two release waves.
pub fn small_workflow() -> Workflow {
    let repos = vec![
        RepoDef {
            name: "org/core".into(),
            package: "core".into(),
            maintainer: Some("bob".into()),
            publish_after: vec![],
        },
        RepoDef {
            name: "org/extra".into(),
            package: "extra".into(),
            maintainer: Some("carol".into()),
            publish_after: vec![],
        },
        RepoDef {
            name: "org/plugin".into(),
            package: "plugin".into(),
            maintainer: Some("dave".into()),
            publish_after: vec!["org/core".into()],
        },
    ];
    parse_workflow("small.toml", &workflow_toml("small", &repos))
}

/// `n` independent repositories `org/repo-000`…, no maintainers named, one wave.
pub fn wide_workflow(n: usize) -> Workflow {
    let repos: Vec<RepoDef> = (0..n)
        .map(|i| RepoDef {
            name: format!("org/repo-{i:03}"),
            package: format!("pkg-{i:03}"),
            maintainer: None,
            publish_after: vec![],
        })
        .collect();
    parse_workflow("wide.toml", &workflow_toml("wide", &repos))
}

/// `workflows/mcp-sdks.toml` from the checkout.
pub fn mcp_workflow() -> Workflow {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/mcp-sdks.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_workflow("mcp-sdks.toml", &text)
}

/// A repository id.
pub fn repo(s: &str) -> RepoId {
    s.parse().unwrap_or_else(|e| panic!("repo {s:?}: {e}"))
}

fn login(s: &str) -> Login {
    s.parse().unwrap_or_else(|e| panic!("login {s:?}: {e}"))
}

/// The vulnerability every test case is about.
pub fn vulnerability() -> Vulnerability {
    Vulnerability {
        summary: "Host header not validated".into(),
        description: "DNS rebinding against local servers.".into(),
        rating: Rating::Severity(Severity::High),
        cwes: ["CWE-350".parse().unwrap_or_else(|e| panic!("cwe: {e}"))].into(),
        credits: vec![
            format!("{FINDER}:finder")
                .parse()
                .unwrap_or_else(|e| panic!("credit: {e}")),
        ],
    }
}

/// A simulator holding every repository of `workflow`, with [`BOT`] as admin and security
/// manager, and every login the workflow names as a user.
pub fn simulator(config: SimConfig, workflow: &Workflow) -> Simulator {
    let sim = Simulator::new(config);
    sim.add_user(BOT, BOT_TOKEN);
    let mut users: BTreeSet<String> = [COORDINATOR, FINDER, GITHUB_MAINTAINER, REPORTER]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    users.extend(workflow.coordinators.iter().map(ToString::to_string));
    for spec in workflow.repos.values() {
        if let Some(m) = &spec.maintainers {
            users.extend(m.iter().map(ToString::to_string));
        }
    }
    for u in &users {
        sim.add_user(u, &format!("tok-{u}"));
    }
    let mut orgs = BTreeSet::new();
    for r in workflow.repos.keys() {
        let name = r.as_str();
        sim.add_repo(name)
            .unwrap_or_else(|e| panic!("add repo {name}: {e}"));
        sim.grant(name, BOT, Permission::Admin)
            .unwrap_or_else(|e| panic!("grant {name}: {e}"));
        sim.grant(name, GITHUB_MAINTAINER, Permission::Maintain)
            .unwrap_or_else(|e| panic!("grant {name}: {e}"));
        if let Some((org, _)) = name.split_once('/') {
            orgs.insert(org.to_owned());
        }
    }
    for org in orgs {
        sim.set_org_role(&org, BOT, OrgRole::SecurityManager)
            .unwrap_or_else(|e| panic!("org role {org}: {e}"));
    }
    sim
}

/// A GitHub client for the simulator at `base_url`, acting as [`BOT`].
pub fn github(base_url: &str, pacing: PacingConfig) -> Arc<GithubClient> {
    let base = ApiBase::parse(base_url, &["127.0.0.1".to_owned()])
        .unwrap_or_else(|e| panic!("api base: {e}"));
    let mut config = GithubConfig::new(base, Credentials::Token(BOT_TOKEN.to_owned().into()));
    config.pacing = pacing;
    config.retry.write_backoff = Duration::from_millis(20);
    config.retry.read_backoff = Duration::from_millis(10);
    Arc::new(GithubClient::new(config).unwrap_or_else(|e| panic!("github client: {e}")))
}

/// `sqlite://PATH`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Opens (creating) the SQLite store at `path`.
pub async fn open_store(path: &Path) -> Store {
    Store::open(&sqlite_url(path))
        .await
        .unwrap_or_else(|e| panic!("open store {}: {e}", path.display()))
}

/// Runtime options for in-process tests: short leases and backoffs.
pub fn fast_runtime_options(worker: &str) -> RuntimeOptions {
    RuntimeOptions {
        worker: worker.to_owned(),
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        idle_wake: Duration::from_millis(500),
        ..RuntimeOptions::default()
    }
}

/// A runtime over `store` and `github`.
pub fn runtime(store: &Store, github: &Arc<GithubClient>, opts: RuntimeOptions) -> Runtime {
    Runtime::new(store.clone(), Arc::clone(github), opts)
}

/// Who submits commands for `repo`: its named maintainer, or a user GitHub reports with
/// maintain permission.
pub fn maintainer_of(workflow: &Workflow, repo: &RepoId) -> Principal {
    match workflow
        .repos
        .get(repo)
        .and_then(|s| s.maintainers.as_ref())
        .and_then(|m| m.iter().next())
    {
        Some(m) => Principal::user(m.clone()),
        None => {
            let mut p = Principal::user(login(GITHUB_MAINTAINER));
            p.github_maintains.insert(repo.clone());
            p
        }
    }
}

/// Opens a case over the whole workflow as its first coordinator, and starts the test's
/// record.
pub async fn open_case(store: &Store, id: &str, workflow: &Workflow) -> Expect {
    let open = OpenCase {
        case_id: id.parse().unwrap_or_else(|e| panic!("case id: {e}")),
        workflow: workflow.clone(),
        scope: BTreeSet::new(),
        vulnerability: vulnerability(),
        embargo_until: None,
    };
    let coordinator = workflow
        .coordinators
        .iter()
        .next()
        .cloned()
        .unwrap_or_else(|| login(COORDINATOR));
    let committed = store
        .open_case(&Principal::user(coordinator), open)
        .await
        .unwrap_or_else(|e| panic!("open case: {e}"));
    Expect::new(workflow.clone(), &committed)
}

/// The researcher who files the private vulnerability reports cases open from (a user of
/// every [`simulator`]).
pub const REPORTER: &str = "rita";

/// [`REPORTER`] files a private vulnerability report on `repo`, and Lockstep records it as
/// its runtime would on seeing it in triage. Returns the report.
pub async fn file_report(sim: &Simulator, store: &Store, repo: &RepoId) -> Report {
    let filed = sim
        .report_as(
            REPORTER,
            repo.as_str(),
            &serde_json::json!({
                "summary": "Host header not validated",
                "description": "Reporter's text.",
                "severity": "high",
            }),
        )
        .unwrap_or_else(|e| panic!("file a report on {repo}: {e}"));
    let advisory: lockstep_github::Advisory =
        serde_json::from_value(filed).unwrap_or_else(|e| panic!("the report: {e}"));
    let now = store.now().await.unwrap_or_else(|e| panic!("now: {e}"));
    let report = lockstep_runtime::intake::report_from_advisory(repo, &advisory, now)
        .unwrap_or_else(|| panic!("the report on {repo} is not in triage"));
    store
        .record_report(&report, None)
        .await
        .unwrap_or_else(|e| panic!("record the report: {e}"));
    report
}

/// Opens case `id` from `report`, as the coordinator, over `scope` (empty: every repository
/// of the workflow).
pub async fn open_case_from_report(
    store: &Store,
    id: &str,
    workflow: &Workflow,
    scope: BTreeSet<RepoId>,
    report: &Report,
) -> Expect {
    let open = OpenCase {
        case_id: id.parse().unwrap_or_else(|e| panic!("case id: {e}")),
        workflow: workflow.clone(),
        scope,
        vulnerability: report.vulnerability(),
        embargo_until: None,
    };
    let committed = store
        .open_case_from_report(&Principal::user(login(COORDINATOR)), open, report)
        .await
        .unwrap_or_else(|e| panic!("open the case from the report: {e}"));
    Expect::new(workflow.clone(), &committed)
}

/// The package fix a test marks for `repo`: its first package, patched in 2.0.1; every other
/// repository of the workflow (the second, fourth…) fixes two release lines, a backport
/// `< 1.9.3` patched in 1.9.3 and `>= 2.0.0, < 2.0.1` patched in 2.0.1, so that the crash
/// loop and the journeys publish advisories with several `vulnerabilities` entries.
pub fn package_fix(workflow: &Workflow, repo: &RepoId) -> Vec<PackageFix> {
    let spec = workflow
        .repos
        .get(repo)
        .unwrap_or_else(|| panic!("{repo} is not in the workflow"));
    let package = spec.packages[0].clone();
    let index = workflow.repos.keys().position(|r| r == repo).unwrap_or(0);
    if index % 2 == 1 {
        return vec![
            PackageFix {
                package: package.clone(),
                vulnerable_range: Some("< 1.9.3".into()),
                patched_versions: "1.9.3".into(),
            },
            PackageFix {
                package,
                vulnerable_range: Some(">= 2.0.0, < 2.0.1".into()),
                patched_versions: "2.0.1".into(),
            },
        ];
    }
    vec![PackageFix {
        package,
        vulnerable_range: Some("< 2.0.1".into()),
        patched_versions: "2.0.1".into(),
    }]
}

/// The command for a mark.
pub fn mark_command(workflow: &Workflow, mark: &Mark) -> Command {
    match mark.kind {
        MarkKind::Assess(verdict) => Command::Assess {
            repo: mark.repo.clone(),
            verdict,
            reason: match verdict {
                Verdict::NotAffected => "the vulnerable code path does not exist here".into(),
                _ => "reproduced".into(),
            },
        },
        MarkKind::FixReleased | MarkKind::FixPrepared => Command::MarkFix {
            repo: mark.repo.clone(),
            stage: if mark.kind == MarkKind::FixPrepared {
                FixStage::Prepared
            } else {
                FixStage::Released
            },
            packages: package_fix(workflow, &mark.repo),
        },
    }
}

/// The marks that take a case to its release: for each repository an assessment, and for the
/// affected ones a released fix after it. `not_affected` repositories are assessed so.
pub fn release_marks(workflow: &Workflow, not_affected: &BTreeSet<RepoId>) -> Vec<Mark> {
    let mut marks = Vec::new();
    for r in workflow.repos.keys() {
        if not_affected.contains(r) {
            marks.push(Mark::new(r.clone(), MarkKind::Assess(Verdict::NotAffected)));
        } else {
            marks.push(Mark::new(r.clone(), MarkKind::Assess(Verdict::Affected)));
            marks.push(Mark::new(r.clone(), MarkKind::FixReleased));
        }
    }
    marks
}

/// Shuffles marks, keeping each repository's assessment before its fix.
pub fn shuffle_marks(marks: Vec<Mark>, rng: &mut impl rand::Rng) -> Vec<Mark> {
    use rand::seq::SliceRandom as _;
    let mut order = marks;
    order.shuffle(rng);
    // Stable fix-up: a fix that comes before its repository's assessment swaps with it.
    let mut out: Vec<Mark> = Vec::with_capacity(order.len());
    for m in order {
        if let MarkKind::Assess(_) = m.kind
            && let Some(i) = out
                .iter()
                .position(|o| o.repo == m.repo && o.kind == MarkKind::FixReleased)
        {
            let fix = std::mem::replace(&mut out[i], m);
            out.push(fix);
            continue;
        }
        out.push(m);
    }
    out
}

/// Commits a mark through the store, as the repository's maintainer, and records it in
/// `expect`. Panics if the store refuses it.
pub async fn commit_mark(
    store: &Store,
    workflow: &Workflow,
    expect: &mut Expect,
    mark: Mark,
) -> Committed {
    let who = maintainer_of(workflow, &mark.repo);
    let command = mark_command(workflow, &mark);
    let committed = store
        .handle(&expect.case, &who, Input::Command(command))
        .await
        .unwrap_or_else(|e| panic!("commit {mark:?}: {e}"));
    expect.record(mark, &committed);
    committed
}

/// Whether every outbox row is finished (done or failed for good), none held.
pub async fn outbox_finished(store: &Store) -> bool {
    store
        .outbox(None)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"))
        .iter()
        .all(|e| matches!(e.state, OutboxState::Done | OutboxState::Failed))
}

/// Waits, at most two minutes, until `n` publications are in the simulator's ledger and every
/// outbox row is finished.
pub async fn wait_released(sim: &Simulator, store: &Store, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let published = sim.ledger().iter().filter(|e| e.is_publish()).count();
        if published == n && outbox_finished(store).await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the release did not finish ({published}/{n} published)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An in-process runtime over a SQLite file that a fail point may crash (a pass that
/// panics): each crash is a restart, as a new process would be, with a fresh store handle and
/// a new worker name. The fail-point tests drive their scenarios with it.
pub struct CrashingRuntime {
    db: std::path::PathBuf,
    github: Arc<GithubClient>,
    options: fn(&str) -> RuntimeOptions,
    /// The current store handle.
    pub store: Store,
    /// The current runtime.
    pub runtime: Runtime,
    generation: u32,
    /// Passes that crashed so far.
    pub crashes: u32,
}

impl CrashingRuntime {
    /// A runtime (worker `worker-0`, `options` given its name) over the database at `db`.
    pub async fn new(
        db: &Path,
        github: Arc<GithubClient>,
        options: fn(&str) -> RuntimeOptions,
    ) -> CrashingRuntime {
        let store = open_store(db).await;
        CrashingRuntime {
            runtime: runtime(&store, &github, options("worker-0")),
            db: db.to_owned(),
            github,
            options,
            store,
            generation: 0,
            crashes: 0,
        }
    }

    /// A new process, as far as the store and runtime can tell.
    pub async fn restart(&mut self) {
        self.generation += 1;
        self.store = open_store(&self.db).await;
        self.runtime = runtime(
            &self.store,
            &self.github,
            (self.options)(&format!("worker-{}", self.generation)),
        );
    }

    /// Runs passes until no effect is pending or claimed. A pass that panics is a crash: the
    /// runtime is replaced, and the crashed claims move on once their lease lapses.
    pub async fn drive(&mut self) {
        for _ in 0..1_000 {
            let rt = self.runtime.clone();
            let crashed = match tokio::spawn(async move { rt.run_once().await }).await {
                Ok(Ok(_)) => false,
                Ok(Err(lockstep_runtime::Error::Join(_))) | Err(_) => true,
                Ok(Err(e)) => panic!("run_once: {e}"),
            };
            if crashed {
                self.crashes += 1;
                self.restart().await;
            }
            let busy = self
                .store
                .outbox(None)
                .await
                .unwrap_or_else(|e| panic!("outbox: {e}"))
                .iter()
                .any(|e| matches!(e.state, OutboxState::Pending | OutboxState::Claimed));
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the runtime did not settle");
    }
}

/// Runs `run_once` until nothing is left to do now (held publications excepted), bounded.
pub async fn settle(runtime: &Runtime) {
    for _ in 0..2_000 {
        runtime
            .run_once()
            .await
            .unwrap_or_else(|e| panic!("run_once: {e}"));
        let busy = runtime
            .store()
            .outbox(None)
            .await
            .unwrap_or_else(|e| panic!("outbox: {e}"))
            .iter()
            .any(|e| matches!(e.state, OutboxState::Pending | OutboxState::Claimed));
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the runtime did not settle");
}

/// Counts ledger entries by kind, for the figures the tests print.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteCounts {
    /// Applied creations.
    pub creates: usize,
    /// Applied publications.
    pub publishes: usize,
    /// Applied closes.
    pub closes: usize,
    /// Applied PATCHes that change no state (links, collaborators, final content).
    pub edits: usize,
    /// Applied CVE requests.
    pub cve_requests: usize,
    /// Every write request the bot sent (applied or not).
    pub sent: usize,
    /// Refused with a secondary limit.
    pub secondary_limited: usize,
    /// Injected 5xx.
    pub errors_5xx: usize,
    /// Applied, then reset.
    pub resets: usize,
}

/// Write counts over a ledger (HTTP requests by [`BOT`] only).
pub fn write_counts(ledger: &[lockstep_sim::LedgerEntry]) -> WriteCounts {
    use lockstep_sim::{AdvisoryState, FaultKind, Via};
    let mut c = WriteCounts::default();
    for e in ledger
        .iter()
        .filter(|e| e.via == Via::Http && e.write && e.actor.as_deref() == Some(BOT))
    {
        c.sent += 1;
        match e.fault {
            Some(FaultKind::SecondaryLimit) => c.secondary_limited += 1,
            Some(FaultKind::Error5xx) => c.errors_5xx += 1,
            Some(FaultKind::ResetAfterApply) => c.resets += 1,
            _ => {}
        }
        if !e.applied {
            continue;
        }
        if e.is_creation() {
            c.creates += 1;
        } else if e.is_publish() {
            c.publishes += 1;
        } else if e.state_to == Some(AdvisoryState::Closed) {
            c.closes += 1;
        } else if e.op == "request_cve" {
            c.cve_requests += 1;
        } else {
            c.edits += 1;
        }
    }
    c
}

/// Per repository, the sorted repositories a description links (from its Markdown).
pub fn linked_in(description: &str) -> BTreeSet<String> {
    description
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split_once(": [GHSA-").map(|(r, _)| r.to_owned()))
        .collect()
}

/// Keys of a map, for messages.
pub fn keys<K: ToString, V>(m: &BTreeMap<K, V>) -> Vec<String> {
    m.keys().map(ToString::to_string).collect()
}
