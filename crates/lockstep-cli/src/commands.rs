//! The case commands: everything a coordinator or maintainer does from a terminal.
//!
//! Each command resolves the actor from the GitHub token in use (`GET /user`, plus GitHub
//! permissions where the workflow names no maintainers), submits one input through the store,
//! and prints the result. The core decides; a refusal exits with [`EXIT_REFUSED`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::model::{Assessment, Fix, RemoteState};
use lockstep_core::vuln::{Credit, CvssVector, PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;
use lockstep_github::GithubClient;
use lockstep_store::Store;
use serde_json::json;

use crate::config::Settings;
use crate::output::{paint, state, table};

/// Exit code for a refusal: the actor is not authorised.
pub(crate) const EXIT_REFUSED: u8 = 3;

/// A refusal by the core, carried up to `main` to pick the exit code.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

#[derive(Subcommand)]
pub(crate) enum CaseCmd {
    /// Opens a case across the workflow's repositories (or those named with --repo).
    Open(OpenArgs),
    /// Lists cases.
    List {
        /// Machine output.
        #[arg(long)]
        json: bool,
    },
    /// Shows a case: per repository, the assessment, fix and advisory; the embargo; blockers.
    Show {
        /// The case id.
        case: String,
        /// Machine output.
        #[arg(long)]
        json: bool,
    },
    /// Closes a case: it takes no more commands, and drafts not yet published are closed on
    /// GitHub. Ends the embargo first if it is still in force (a coordinator's call).
    Close {
        /// The case id.
        case: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
pub(crate) struct OpenArgs {
    /// The workflow file.
    #[arg(long)]
    workflow: PathBuf,
    /// One-line summary.
    #[arg(long)]
    summary: String,
    /// File holding the description (Markdown).
    #[arg(long)]
    description_file: PathBuf,
    /// Severity: low, medium, high or critical.
    #[arg(long, conflicts_with = "cvss", required_unless_present = "cvss")]
    severity: Option<String>,
    /// CVSS 3.x or 4.0 vector.
    #[arg(long)]
    cvss: Option<String>,
    /// CWE id, e.g. CWE-79 (repeatable).
    #[arg(long)]
    cwe: Vec<String>,
    /// Credit as LOGIN:TYPE, e.g. alice:finder (repeatable).
    #[arg(long)]
    credit: Vec<String>,
    /// A repository in scope (repeatable); default: every repository of the workflow.
    #[arg(long)]
    repo: Vec<String>,
    /// The embargo's end, RFC 3339; default: the workflow's default_days from now.
    #[arg(long)]
    embargo_until: Option<String>,
    /// Machine output.
    #[arg(long)]
    json: bool,
}

/// Everything a command needs.
pub(crate) struct Ctx {
    pub(crate) store: Store,
    /// The service's identity: asks GitHub for repository permissions.
    pub(crate) github: Arc<GithubClient>,
    /// The person at the terminal, by their own token.
    caller: GithubClient,
}

impl Ctx {
    pub(crate) async fn open(settings: &Settings) -> anyhow::Result<Ctx> {
        let caller = GithubClient::new(settings.caller_github()?)?;
        let store = Store::open(&settings.database_url).await?;
        let github = Arc::new(GithubClient::new(settings.github()?)?);
        Ok(Ctx {
            store,
            github,
            caller,
        })
    }

    async fn principal(&self, workflow: &Workflow, repos: &[RepoId]) -> anyhow::Result<Principal> {
        Ok(
            lockstep_runtime::identity::principal(
                &self.caller,
                &self.github,
                Some(workflow),
                repos,
            )
            .await?,
        )
    }

    /// Case `id`, if the token's user may read it (as the HTTP API decides); a refusal
    /// otherwise.
    pub(crate) async fn readable(&self, id: &str) -> anyhow::Result<Case> {
        let case = self.case(id).await?;
        let principal = self.principal(&case.workflow, &case.repos()).await?;
        if !case.may_view(&principal) {
            return Err(Refused(case.view_refusal(&principal)).into());
        }
        Ok(case)
    }

    async fn case(&self, id: &str) -> anyhow::Result<Case> {
        let id: CaseId = id.parse()?;
        match self.store.case(&id).await {
            Err(lockstep_store::Error::NotFound { .. }) => anyhow::bail!("unknown case {id}"),
            other => Ok(other?),
        }
    }

    /// Submits `input` to case `id` as the token's user; refusals become [`Refused`].
    pub(crate) async fn submit(
        &self,
        id: &str,
        repos: &[RepoId],
        input: Input,
    ) -> anyhow::Result<Case> {
        let case = self.case(id).await?;
        let principal = self.principal(&case.workflow, repos).await?;
        match self.store.handle(&case.id, &principal, input).await {
            Ok(c) => Ok(c.case),
            Err(lockstep_store::Error::Rejected(r)) if r.is_not_authorized() => {
                Err(Refused(r.to_string()).into())
            }
            Err(lockstep_store::Error::Rejected(r)) => Err(anyhow::anyhow!("{r}")),
            Err(e) => Err(e.into()),
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

pub(crate) async fn case(ctx: &Ctx, cmd: CaseCmd) -> anyhow::Result<()> {
    match cmd {
        CaseCmd::Open(a) => open(ctx, a).await,
        CaseCmd::List { json } => list(ctx, json).await,
        CaseCmd::Show { case, json } => show(ctx, &case, json).await,
        CaseCmd::Close { case, reason } => close(ctx, &case, reason).await,
    }
}

async fn close(ctx: &Ctx, id: &str, reason: String) -> anyhow::Result<()> {
    let case = ctx
        .submit(id, &[], Input::Command(Command::Close { reason }))
        .await?;
    let drafts = case
        .participants
        .values()
        .filter(|p| p.advisory.state == RemoteState::Draft)
        .count();
    println!(
        "{}: closed; {drafts} unpublished draft(s) close on GitHub at the next run",
        case.id
    );
    Ok(())
}

async fn open(ctx: &Ctx, a: OpenArgs) -> anyhow::Result<()> {
    let name = a.workflow.display().to_string();
    let workflow = Workflow::parse(&name, &read(&a.workflow)?)?;
    let description = read(&a.description_file)?;
    let rating = match (&a.severity, &a.cvss) {
        (Some(s), _) => Rating::Severity(s.parse::<Severity>()?),
        (None, Some(v)) => Rating::Cvss(v.parse::<CvssVector>()?),
        (None, None) => anyhow::bail!("give --severity or --cvss"),
    };
    let cwes = a
        .cwe
        .iter()
        .map(|c| c.parse())
        .collect::<Result<BTreeSet<_>, _>>()?;
    let credits = a
        .credit
        .iter()
        .map(|c| c.parse::<Credit>())
        .collect::<Result<Vec<_>, _>>()?;
    let scope = a
        .repo
        .iter()
        .map(|r| r.parse())
        .collect::<Result<BTreeSet<RepoId>, _>>()?;
    let embargo_until = a
        .embargo_until
        .as_deref()
        .map(str::parse::<Timestamp>)
        .transpose()?;
    let now = ctx.store.now().await?;
    let principal = ctx.principal(&workflow, &[]).await?;
    lockstep_runtime::identity::check_credits(&ctx.github, &credits).await?;
    let open = OpenCase {
        case_id: CaseId::generate(now, rand::random()),
        workflow,
        scope,
        vulnerability: Vulnerability {
            summary: a.summary,
            description,
            rating,
            cwes,
            credits,
        },
        embargo_until,
    };
    let committed = match ctx.store.open_case(&principal, open).await {
        Err(lockstep_store::Error::Rejected(r)) if r.is_not_authorized() => {
            return Err(Refused(r.to_string()).into());
        }
        Err(lockstep_store::Error::Rejected(r)) => anyhow::bail!("{r}"),
        other => other?,
    };
    let case = committed.case;
    let repos: Vec<&str> = case.scope().map(|(r, _)| r.as_str()).collect();
    if a.json {
        println!(
            "{}",
            json!({
                "case_id": case.id,
                "repos": repos,
                "embargo_until": case.embargo.until,
                "effects": committed.effects_inserted,
            })
        );
    } else {
        println!("{}", case.id);
        eprintln!(
            "opened {} across {} repositories; embargo until {}. Drafts open when `lockstep serve` (or `lockstep run --once`) runs.",
            case.id,
            repos.len(),
            case.embargo
                .until
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The cases the token's user may read, as the HTTP API lists them.
async fn list(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    let mut login = None;
    let mut cases = Vec::new();
    for summary in ctx.store.list_cases().await? {
        let case = ctx.store.case(&summary.id).await?;
        let login = match &login {
            Some(l) => l,
            None => login.insert(lockstep_runtime::identity::login(&ctx.caller).await?),
        };
        let principal = lockstep_runtime::identity::principal_of(
            login.clone(),
            &ctx.github,
            Some(&case.workflow),
            &case.repos(),
        )
        .await?;
        if case.may_view(&principal) {
            cases.push(summary);
        }
    }
    if json {
        println!("{}", serde_json::to_string(&cases)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                format!("{:?}", c.status).to_lowercase(),
                c.repos.to_string(),
                c.embargo_until
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.title.chars().take(60).collect(),
            ]
        })
        .collect();
    table(
        &["CASE", "STATUS", "REPOS", "EMBARGO UNTIL", "SUMMARY"],
        &rows,
    );
    Ok(())
}

fn assessment(p: &model::Participant) -> &'static str {
    match (&p.assessment, &p.fix) {
        (Assessment::Unassessed, _) => "unassessed",
        (Assessment::Investigating { .. }, _) => "investigating",
        (Assessment::NotAffected { .. }, _) => "not affected",
        (Assessment::Affected { .. }, Fix::Released { .. }) => "affected: fixed",
        (Assessment::Affected { .. }, _) => "affected",
    }
}

fn fix(p: &model::Participant) -> String {
    match &p.fix {
        Fix::None => "-".into(),
        Fix::Prepared { packages } => format!(
            "prepared {}",
            packages
                .iter()
                .map(|f| f.patched_versions.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Fix::Released { packages } => format!(
            "released {}",
            packages
                .iter()
                .map(|f| f.patched_versions.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn remote(p: &model::Participant) -> &'static str {
    match p.advisory.state {
        RemoteState::None => "-",
        RemoteState::Draft => "draft",
        RemoteState::Published if p.advisory.published_elsewhere => "leaked",
        RemoteState::Published => "published",
        RemoteState::Closed => "closed",
    }
}

async fn show(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<()> {
    let case = ctx.readable(id).await?;
    let plan = case.plan();
    if json {
        let repos: Vec<serde_json::Value> = case
            .scope()
            .map(|(r, p)| {
                json!({
                    "repo": r,
                    "assessment": p.assessment,
                    "fix": p.fix,
                    "ghsa_id": p.advisory.ghsa,
                    "advisory_state": p.advisory.state,
                    "cve_id": p.advisory.cve,
                    "private_fork": p.advisory.private_fork,
                    "failures": p.attention,
                    "last_error": p.last_error,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "case_id": case.id,
                "summary": case.vulnerability.summary,
                "workflow": case.workflow.name,
                "closed": case.closed.is_some(),
                "embargo": {"state": case.embargo.state, "until": case.embargo.until, "exit": plan.embargo_exit},
                "release": plan.release,
                "gate_open": plan.gate_open,
                "repos": repos,
                "blockers": plan.blockers,
                "alerts": plan.alerts,
                "propagation": case.propagation(ctx.store.now().await?),
                "propagated": case.propagated(),
            })
        );
        return Ok(());
    }
    println!(
        "{}  {}",
        paint(case.id.as_str(), "1"),
        case.vulnerability.summary
    );
    let embargo = match (&case.embargo.exit, case.embargo.until) {
        (Some((at, reason)), _) => format!(
            "ended {at} ({})",
            serde_json::to_value(reason)?["cause"]
                .as_str()
                .unwrap_or("?")
        ),
        (None, Some(until)) => format!("in force until {until}"),
        (None, None) => "none".into(),
    };
    println!("embargo: {embargo}");
    let rows: Vec<Vec<String>> = case
        .scope()
        .map(|(r, p)| {
            vec![
                r.to_string(),
                state(assessment(p)),
                fix(p),
                p.advisory
                    .ghsa
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
                state(remote(p)),
                p.advisory
                    .cve
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
            ]
        })
        .collect();
    table(
        &[
            "REPOSITORY",
            "ASSESSMENT",
            "FIX",
            "ADVISORY",
            "STATE",
            "CVE",
        ],
        &rows,
    );
    print_blockers_and_alerts(&plan);
    crate::propagation::print(ctx, &case).await
}

fn print_blockers_and_alerts(plan: &plan::Plan) {
    for b in &plan.blockers {
        let why = match &b.reason {
            engine::BlockReason::Unassessed { flagged_by } if flagged_by.is_empty() => {
                "not assessed yet".to_owned()
            }
            engine::BlockReason::Unassessed { flagged_by } => format!(
                "not assessed yet; flagged because {} is affected",
                flagged_by
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            engine::BlockReason::Investigating => "still investigating".to_owned(),
            engine::BlockReason::FixNotReleased { prepared: true } => {
                "fix prepared, not released".to_owned()
            }
            engine::BlockReason::FixNotReleased { prepared: false } => {
                "affected, no fix yet".to_owned()
            }
            engine::BlockReason::WaitingFor { upstream } => {
                format!("publishes after {upstream}, which is blocked")
            }
        };
        println!("{} {}: {why}", paint("blocked", "33"), b.repo);
    }
    for a in &plan.alerts {
        let text = match a {
            plan::Alert::DeadlinePassedHolding { at } => format!(
                "the deadline passed at {at}; hold-all keeps every advisory private until the blockers clear"
            ),
            plan::Alert::PublicWithoutFix { repos } => format!(
                "the vulnerability is public; no released fix yet in {}",
                repos
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            plan::Alert::PublishedElsewhere { repo } => {
                format!("{repo}'s advisory was published outside Lockstep: treated as a leak")
            }
            plan::Alert::FailureNeedsPerson { repo, key, error } => {
                format!("{repo}: {key} failed and needs a person: {error}")
            }
            plan::Alert::GlobalDatabase { repo, copy } => crate::propagation::alert(repo, copy),
        };
        println!("{} {text}", paint("alert", "31"));
    }
}

/// `lockstep plan CASE`.
pub(crate) async fn plan(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<()> {
    let case = ctx.readable(id).await?;
    let plan = case.plan();
    if json {
        println!("{}", serde_json::to_string(&plan)?);
        return Ok(());
    }
    println!(
        "{}: gate {}; release {}",
        case.id,
        if plan.gate_open {
            paint("open", "32")
        } else {
            paint("closed", "33")
        },
        plan.release
            .map_or("not started".to_owned(), |m| format!("{m:?}")
                .to_lowercase())
    );
    print_blockers_and_alerts(&plan);
    for (i, wave) in plan.waves.iter().enumerate() {
        let members: Vec<String> = wave
            .iter()
            .map(|e| format!("{} ({})", e.repo, format!("{:?}", e.state).to_lowercase()))
            .collect();
        println!("wave {}: {}", i + 1, members.join(", "));
    }
    crate::propagation::print(ctx, &case).await?;
    if !plan.skipped.is_empty() {
        let s: Vec<&str> = plan.skipped.iter().map(RepoId::as_str).collect();
        println!(
            "skipped (not affected; drafts closed at release): {}",
            s.join(", ")
        );
    }
    Ok(())
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("verdict").required(true).multiple(false)))]
pub(crate) struct AssessArgs {
    /// The case id.
    case: String,
    /// The repository.
    #[arg(long)]
    repo: String,
    /// Affected.
    #[arg(long, group = "verdict")]
    affected: bool,
    /// Not affected.
    #[arg(long, group = "verdict")]
    not_affected: bool,
    /// Still investigating.
    #[arg(long, group = "verdict")]
    investigating: bool,
    /// Why.
    #[arg(long)]
    reason: String,
}

pub(crate) async fn assess(ctx: &Ctx, a: AssessArgs) -> anyhow::Result<()> {
    let repo: RepoId = a.repo.parse()?;
    let verdict = if a.affected {
        Verdict::Affected
    } else if a.not_affected {
        Verdict::NotAffected
    } else {
        Verdict::Investigating
    };
    let input = Input::Command(Command::Assess {
        repo: repo.clone(),
        verdict,
        reason: a.reason,
    });
    let case = ctx
        .submit(&a.case, std::slice::from_ref(&repo), input)
        .await?;
    println!(
        "{}: {} {}",
        case.id,
        repo,
        assessment(&case.participants[&repo])
    );
    Ok(())
}

#[derive(Args)]
pub(crate) struct FixArgs {
    /// The case id.
    case: String,
    /// The repository.
    #[arg(long)]
    repo: String,
    /// The versions that carry the fix, e.g. "1.9.0".
    #[arg(long)]
    patched_versions: String,
    /// The vulnerable range, e.g. "< 1.9.0".
    #[arg(long)]
    vulnerable_range: Option<String>,
    /// A package (repeatable); default: every package of the repository in the workflow.
    #[arg(long)]
    package: Vec<String>,
    /// The fix is ready but not yet released: a `release` webhook whose tag matches the
    /// patched versions marks it released (or run fix-ready again without --prepared).
    #[arg(long)]
    prepared: bool,
}

pub(crate) async fn fix_ready(ctx: &Ctx, a: FixArgs) -> anyhow::Result<()> {
    let repo: RepoId = a.repo.parse()?;
    let case = ctx.case(&a.case).await?;
    let names = if a.package.is_empty() {
        case.workflow
            .repos
            .get(&repo)
            .map(|s| s.packages.clone())
            .unwrap_or_default()
    } else {
        a.package
    };
    let packages = names
        .into_iter()
        .map(|package| PackageFix {
            package,
            vulnerable_range: a.vulnerable_range.clone(),
            patched_versions: a.patched_versions.clone(),
        })
        .collect();
    let stage = if a.prepared {
        FixStage::Prepared
    } else {
        FixStage::Released
    };
    let input = Input::Command(Command::MarkFix {
        repo: repo.clone(),
        stage,
        packages,
    });
    let case = ctx
        .submit(&a.case, std::slice::from_ref(&repo), input)
        .await?;
    let waiting = case.blockers().len();
    let what = match stage {
        FixStage::Prepared => "fix prepared, not yet released",
        FixStage::Released => "fix released",
    };
    println!(
        "{}: {} {what} ({waiting} repositories still hold the release)",
        case.id, repo
    );
    Ok(())
}

pub(crate) async fn fix_revoke(
    ctx: &Ctx,
    id: &str,
    repo: &str,
    reason: String,
) -> anyhow::Result<()> {
    let repo: RepoId = repo.parse()?;
    let input = Input::Command(Command::RevokeFix {
        repo: repo.clone(),
        reason,
    });
    let case = ctx.submit(id, std::slice::from_ref(&repo), input).await?;
    println!("{}: {} fix mark withdrawn", case.id, repo);
    Ok(())
}

pub(crate) async fn retry(ctx: &Ctx, id: &str, repo: &str, reason: String) -> anyhow::Result<()> {
    let repo: RepoId = repo.parse()?;
    let before = ctx.case(id).await?;
    let input = Input::Command(Command::Retry {
        repo: repo.clone(),
        reason,
    });
    let case = ctx.submit(id, std::slice::from_ref(&repo), input).await?;
    let n = before.participants[&repo].attention.len();
    println!(
        "{}: {} failed effect(s) of {} due again; `lockstep run --once` or `serve` runs them",
        case.id, n, repo
    );
    Ok(())
}

pub(crate) async fn embargo(
    ctx: &Ctx,
    id: &str,
    until: &str,
    reason: String,
) -> anyhow::Result<()> {
    let until: Timestamp = until.parse()?;
    let case = ctx
        .submit(
            id,
            &[],
            Input::Command(Command::SetEmbargo { until, reason }),
        )
        .await?;
    println!(
        "{}: embargo until {}",
        case.id,
        case.embargo
            .until
            .map(|u| u.to_string())
            .unwrap_or_default()
    );
    Ok(())
}

pub(crate) async fn disclose_now(ctx: &Ctx, id: &str, reason: String) -> anyhow::Result<()> {
    let before = ctx.case(id).await?;
    let case = ctx
        .submit(id, &[], Input::Command(Command::DiscloseNow { reason }))
        .await?;
    let plan = case.plan();
    let publishing: usize = plan.waves.iter().map(Vec::len).sum();
    if before.embargo.state.in_force() {
        println!(
            "{}: embargo ended; {publishing} advisories with released fixes publish now",
            case.id
        );
    } else {
        println!(
            "{}: the embargo had already ended; nothing changed ({publishing} advisories still to publish)",
            case.id
        );
    }
    print_blockers_and_alerts(&plan);
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum AuditCmd {
    /// Recomputes the audit chain; names the first bad entry if a row was edited, deleted or
    /// reordered. With --checkpoint, also detects truncation or a rewritten history.
    Verify {
        /// A checkpoint written by `lockstep audit checkpoint`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Only accept a checkpoint signed by this verifier key: `lockstep+<hash>+<key>`, as
        /// `audit checkpoint` prints it (or its checkpoint's `key …` line). Without it, the key
        /// the checkpoint names is trusted, with a warning.
        #[arg(long, requires = "checkpoint")]
        trusted_key: Option<String>,
    },
    /// Writes a signed checkpoint (entries, head hash) to stdout, to keep outside the database.
    /// Creates the key file (Ed25519 seed, mode 0600) if it does not exist.
    Checkpoint {
        /// The signing key file.
        #[arg(long)]
        key: PathBuf,
    },
}

pub(crate) async fn audit(store: &Store, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify {
            checkpoint,
            trusted_key,
        } => {
            let checkpoint = checkpoint
                .map(|p| -> anyhow::Result<_> {
                    let c = lockstep_store::Checkpoint::parse(&read(&p)?)
                        .with_context(|| format!("{}: not a checkpoint", p.display()))?;
                    if let Some(k) = &trusted_key {
                        c.check_key(&lockstep_store::parse_verifier_key(k)?)?;
                    }
                    Ok(c)
                })
                .transpose()?;
            let report = store.verify(checkpoint.as_ref()).await?;
            if let (Some(c), None) = (&checkpoint, &trusted_key) {
                // Whoever can rewrite the database and the checkpoint can sign a new one.
                eprintln!(
                    "warning: the checkpoint was checked against the key it names itself ({}); pin your key with --trusted-key",
                    lockstep_store::verifier_key(&c.key)
                );
            }
            println!(
                "audit ok: {} entries, {} events in {} cases; head {}{}",
                report.entries,
                report.events,
                report.cases,
                report.head,
                report.checkpoint_size.map_or(String::new(), |s| format!(
                    "; consistent with the checkpoint of {s} entries"
                ))
            );
            Ok(())
        }
        AuditCmd::Checkpoint { key } => {
            let signing = if key.exists() {
                lockstep_store::load_key_file(&key)?
            } else {
                let k = lockstep_store::generate_key_file(&key)?;
                eprintln!("created signing key {}", key.display());
                k
            };
            let checkpoint = store.checkpoint(&signing).await?;
            print!("{checkpoint}");
            eprintln!(
                "checkpoint of {} entries; verifier key {}",
                checkpoint.size,
                lockstep_store::verifier_key(&signing.verifying_key())
            );
            Ok(())
        }
    }
}
