//! The case commands: everything a coordinator or maintainer does from a terminal.
//!
//! Each command builds one request of the command surface (`lockstep_server::surface`),
//! sends it through a [`Client`] (the API's handlers in-process over the local database, or a
//! shared `lockstep serve` over HTTPS), and prints the answer. The handlers resolve the
//! caller from their GitHub token and the core decides; a refusal exits with
//! [`EXIT_REFUSED`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lockstep_core::event::ExitReason;
use lockstep_core::input::{FixStage, Threat, Verdict};
use lockstep_core::model::{Assessment, Fix, RemoteState};
use lockstep_core::*;
use lockstep_server::surface::{self, CaseView, OpenRequest, Opened, RepoView};
use lockstep_store::Store;

use crate::client::Client;
use crate::output::{paint, state, table};

/// Exit code for a refusal: the actor is not authorised.
pub(crate) const EXIT_REFUSED: u8 = 3;

/// A refusal (HTTP 403 from the handlers), carried up to `main` to pick the exit code.
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
    Open(Box<OpenArgs>),
    /// Lists cases, a page at a time (oldest first).
    List {
        /// Machine output.
        #[arg(long)]
        json: bool,
        /// Cases per page (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Start after this case (the last of the previous page).
        #[arg(long, value_name = "CASE")]
        after: Option<String>,
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
#[command(group(clap::ArgGroup::new("workflow_source").required(true).multiple(false)))]
pub(crate) struct OpenArgs {
    /// The workflow file; its text is sent (a shared server must accept inline workflows).
    #[arg(long, group = "workflow_source")]
    workflow: Option<PathBuf>,
    /// A workflow the server has, by name (`NAME.toml` in its workflows directory).
    #[arg(long, group = "workflow_source", value_name = "NAME")]
    workflow_name: Option<String>,
    /// Open from a private vulnerability report, OWNER/REPO/GHSA-…: its advisory is adopted
    /// (never a second draft in that repository), and its text, severity, CWEs and credits are
    /// the case's unless the flags below override them. Its repository is always in scope.
    #[arg(long, value_name = "OWNER/REPO/GHSA")]
    from_report: Option<String>,
    /// One-line summary.
    #[arg(long, required_unless_present = "from_report")]
    summary: Option<String>,
    /// File holding the description (Markdown).
    #[arg(long, required_unless_present = "from_report")]
    description_file: Option<PathBuf>,
    /// Severity: low, medium, high or critical.
    #[arg(
        long,
        conflicts_with = "cvss",
        required_unless_present_any = ["cvss", "from_report"]
    )]
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

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn case_id(id: &str) -> anyhow::Result<CaseId> {
    Ok(surface::field(id)?)
}

fn repo_id(repo: &str) -> anyhow::Result<RepoId> {
    Ok(surface::field(repo)?)
}

pub(crate) async fn case(c: &Client, cmd: CaseCmd) -> anyhow::Result<()> {
    match cmd {
        CaseCmd::Open(a) => open(c, *a).await,
        CaseCmd::List { json, limit, after } => list(c, json, limit, after).await,
        CaseCmd::Show { case, json } => show(c, &case, json).await,
        CaseCmd::Close { case, reason } => close(c, &case, reason).await,
    }
}

async fn close(c: &Client, id: &str, reason: String) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let acted = c.act(&id, &surface::Close { reason }).await?;
    let drafts = acted
        .case
        .repos
        .iter()
        .filter(|p| p.advisory_state == RemoteState::Draft)
        .count();
    println!(
        "{}: closed; {drafts} unpublished draft(s) close on GitHub at the next run",
        acted.case.case_id
    );
    Ok(())
}

async fn open(c: &Client, a: OpenArgs) -> anyhow::Result<()> {
    let workflow = match &a.workflow {
        Some(file) => {
            let name = file.display().to_string();
            let text = read(file)?;
            // Checked here first, so that a mistake names the file, line and column.
            Workflow::parse(&name, &text)?;
            Some(text)
        }
        None => None,
    };
    let request = OpenRequest {
        case_id: None,
        workflow_name: a.workflow_name,
        workflow,
        from_report: a.from_report,
        summary: a.summary.unwrap_or_default(),
        description: match &a.description_file {
            Some(file) => read(file)?,
            None => String::new(),
        },
        severity: a.severity,
        cvss: a.cvss,
        cwe: a.cwe,
        credit: a.credit,
        repo: a.repo,
        embargo_until: a.embargo_until,
    };
    // Malformed fields are reported before anything is sent.
    request.fields()?;
    let opened: Opened = c.post("/api/cases", &request).await?;
    if a.json {
        println!("{}", serde_json::to_string(&opened)?);
    } else {
        println!("{}", opened.case_id);
        eprintln!(
            "opened {} across {} repositories; embargo until {}. Drafts open when `lockstep serve` (or `lockstep run --once`) runs.",
            opened.case_id,
            opened.repos.len(),
            opened
                .embargo_until
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// A page of the cases the token's user may read, as `GET /api/cases` lists them.
async fn list(c: &Client, json: bool, limit: u16, after: Option<String>) -> anyhow::Result<()> {
    let mut path = format!("/api/cases?limit={limit}");
    if let Some(after) = after {
        let after: CaseId = after.parse().map_err(|e| anyhow::anyhow!("--after: {e}"))?;
        path.push_str(&format!("&after={after}"));
    }
    let listed: serde_json::Value = c.get(&path).await?;
    let cases = listed
        .get("cases")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let next = listed.get("next").and_then(serde_json::Value::as_str);
    if json {
        println!("{}", serde_json::Value::Array(cases));
        return Ok(());
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                text(&c["id"]),
                text(&c["status"]),
                text(&c["repos"]),
                text(&c["embargo_until"]),
                text(&c["title"]).chars().take(60).collect(),
            ]
        })
        .collect();
    table(
        &["CASE", "STATUS", "REPOS", "EMBARGO UNTIL", "SUMMARY"],
        &rows,
    );
    if let Some(next) = next {
        eprintln!("more: lockstep case list --after {next}");
    }
    Ok(())
}

fn assessment(p: &RepoView) -> &'static str {
    match (&p.assessment, &p.fix) {
        (Assessment::Unassessed, _) => "unassessed",
        (Assessment::Investigating { .. }, _) => "investigating",
        (Assessment::NotAffected { .. }, _) => "not affected",
        (Assessment::Affected { .. }, Fix::Released { .. }) => "affected: fixed",
        (Assessment::Affected { .. }, _) => "affected",
    }
}

fn fix(p: &RepoView) -> String {
    if p.fix == Fix::None {
        return "-".into();
    }
    // One entry per release line (the same line across packages shows once).
    let mut lines: Vec<(&str, bool)> = Vec::new();
    for l in p.lines.values().flatten() {
        let entry = (l.patched_version.as_str(), l.released);
        if !lines.contains(&entry) {
            lines.push(entry);
        }
    }
    let stage = |released: bool| if released { "released" } else { "prepared" };
    match lines.first() {
        Some((_, first)) if lines.iter().all(|(_, r)| r == first) => format!(
            "{} {}",
            stage(*first),
            lines.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
        ),
        _ => lines
            .iter()
            .map(|(v, r)| format!("{v} {}", stage(*r)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn remote(p: &RepoView) -> &'static str {
    match p.advisory_state {
        RemoteState::None => "-",
        RemoteState::Draft => "draft",
        RemoteState::Published if p.published_elsewhere => "leaked",
        RemoteState::Published => "published",
        RemoteState::Closed => "closed",
    }
}

async fn show(c: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let view: CaseView = c.get(&format!("/api/cases/{id}")).await?;
    if json {
        println!("{}", serde_json::to_string(&view)?);
        return Ok(());
    }
    println!("{}  {}", paint(view.case_id.as_str(), "1"), view.summary);
    let embargo = match (&view.embargo.exit, view.embargo.until) {
        (Some(reason), _) => format!(
            "ended {} ({})",
            view.embargo
                .ended_at
                .map_or_else(|| "?".to_owned(), |at| at.to_string()),
            serde_json::to_value(reason)?["cause"]
                .as_str()
                .unwrap_or("?")
        ),
        (None, Some(until)) => match view.embargo.overdue {
            Some(since) => format!("in force, overdue: its end {until} passed at {since}"),
            None => format!("in force until {until}"),
        },
        (None, None) => "none".into(),
    };
    println!("embargo: {embargo}");
    print_request(view.embargo.request.as_ref());
    let rows: Vec<Vec<String>> = view
        .repos
        .iter()
        .map(|p| {
            vec![
                p.repo.to_string(),
                state(assessment(p)),
                fix(p),
                p.ghsa_id.as_ref().map_or("-".into(), ToString::to_string),
                state(remote(p)),
                p.cve_id.as_ref().map_or("-".into(), ToString::to_string),
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
    print_blockers_and_alerts(&view.blockers, &view.preflight, &view.alerts);
    crate::propagation::print(&view);
    Ok(())
}

fn print_blockers_and_alerts(
    blockers: &[Blocker],
    preflight: &[engine::preflight::RepoFinding],
    alerts: &[plan::Alert],
) {
    for b in blockers {
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
            engine::BlockReason::FixNotReleased {
                prepared: true,
                lines_waiting,
            } if lines_waiting.is_empty() => "fix prepared, not released".to_owned(),
            engine::BlockReason::FixNotReleased {
                prepared: true,
                lines_waiting,
            } => format!(
                "fix prepared; lines still to release: {}",
                lines_waiting.join(", ")
            ),
            engine::BlockReason::FixNotReleased {
                prepared: false, ..
            } => "affected, no fix yet".to_owned(),
            engine::BlockReason::WaitingFor { upstream } => {
                format!("publishes after {upstream}, which is blocked")
            }
        };
        println!("{} {}: {why}", paint("blocked", "33"), b.repo);
    }
    for f in preflight {
        let (label, colour) = if f.blocker {
            ("preflight blocker", "31")
        } else {
            ("preflight warning", "33")
        };
        println!("{} {}: {}", paint(label, colour), f.repo, f.text);
    }
    for a in alerts {
        let text = match a {
            plan::Alert::EmbargoOverdue { until, .. } => format!(
                "the embargo's end ({until}) passed; hold-all keeps it in force and every advisory private: revise the end with `lockstep embargo` or disclose"
            ),
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
pub(crate) async fn plan(c: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let plan: plan::Plan = c.get(&format!("/api/cases/{id}/plan")).await?;
    if json {
        println!("{}", serde_json::to_string(&plan)?);
        return Ok(());
    }
    println!(
        "{id}: gate {}; release {}",
        if plan.gate_open {
            paint("open", "32")
        } else {
            paint("closed", "33")
        },
        plan.release
            .map_or("not started".to_owned(), |m| format!("{m:?}")
                .to_lowercase())
    );
    print_request(plan.embargo_request.as_ref());
    print_blockers_and_alerts(&plan.blockers, &plan.preflight, &plan.alerts);
    for (i, wave) in plan.waves.iter().enumerate() {
        let members: Vec<String> = wave
            .iter()
            .map(|e| format!("{} ({})", e.repo, format!("{:?}", e.state).to_lowercase()))
            .collect();
        println!("wave {}: {}", i + 1, members.join(", "));
    }
    // Each published advisory's global copy is part of the case's view, not of the plan.
    let view: CaseView = c.get(&format!("/api/cases/{id}")).await?;
    crate::propagation::print(&view);
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

pub(crate) async fn assess(c: &Client, a: AssessArgs) -> anyhow::Result<()> {
    let id = case_id(&a.case)?;
    let repo = repo_id(&a.repo)?;
    let verdict = if a.affected {
        Verdict::Affected
    } else if a.not_affected {
        Verdict::NotAffected
    } else {
        Verdict::Investigating
    };
    let acted = c
        .act(
            &id,
            &surface::Assess {
                repo: a.repo,
                verdict,
                reason: a.reason,
            },
        )
        .await?;
    println!(
        "{}: {} {}",
        acted.case.case_id,
        repo,
        acted.case.repo(&repo).map_or("-", assessment)
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
    /// The versions that carry the fix, e.g. "1.9.0" (one release line).
    #[arg(long, required_unless_present = "line", conflicts_with = "line")]
    patched_versions: Option<String>,
    /// The vulnerable range, e.g. "< 1.9.0" (one release line).
    #[arg(long, conflicts_with = "line")]
    vulnerable_range: Option<String>,
    /// A release line, "VULNERABLE_RANGE=PATCHED_VERSION" (repeatable, one per backport),
    /// e.g. --line "< 1.0.3=1.0.3" --line ">= 1.1.0, < 1.1.2=1.1.2".
    #[arg(long)]
    line: Vec<String>,
    /// A package (repeatable); default: every package of the repository in the workflow.
    #[arg(long)]
    package: Vec<String>,
    /// The fix is ready but not yet released: a `release` webhook whose tag matches the
    /// patched versions marks it released (or run fix-ready again without --prepared).
    #[arg(long)]
    prepared: bool,
}

pub(crate) async fn fix_ready(c: &Client, a: FixArgs) -> anyhow::Result<()> {
    let id = case_id(&a.case)?;
    let repo = repo_id(&a.repo)?;
    let lines = a
        .line
        .iter()
        .map(|l| {
            engine::lines::parse_line_arg(l).map(|(vulnerable_range, patched_version)| {
                surface::Line {
                    vulnerable_range,
                    patched_version,
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let stage = if a.prepared {
        FixStage::Prepared
    } else {
        FixStage::Released
    };
    let request = surface::FixReady {
        repo: a.repo,
        patched_versions: a.patched_versions,
        vulnerable_range: a.vulnerable_range,
        lines: (!lines.is_empty()).then_some(lines),
        package: (!a.package.is_empty()).then_some(surface::OneOrMany::Many(a.package)),
        stage: Some(stage),
    };
    let acted = c.act(&id, &request).await?;
    let waiting = acted.case.blockers.len();
    let what = match stage {
        FixStage::Prepared => "fix prepared, not yet released",
        FixStage::Released => "fix released",
    };
    println!(
        "{}: {} {what} ({waiting} repositories still hold the release)",
        acted.case.case_id, repo
    );
    Ok(())
}

pub(crate) async fn fix_revoke(
    c: &Client,
    id: &str,
    repo: String,
    reason: String,
) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let repo_id = repo_id(&repo)?;
    let acted = c.act(&id, &surface::FixRevoke { repo, reason }).await?;
    println!("{}: {} fix mark withdrawn", acted.case.case_id, repo_id);
    Ok(())
}

pub(crate) async fn retry(
    c: &Client,
    id: &str,
    repo: String,
    reason: String,
) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let repo_id = repo_id(&repo)?;
    let before: CaseView = c.get(&format!("/api/cases/{id}")).await?;
    let acted = c.act(&id, &surface::Retry { repo, reason }).await?;
    let n = before.repo(&repo_id).map_or(0, |r| r.failures.len());
    println!(
        "{}: {} failed effect(s) of {} due again; `lockstep run --once` or `serve` runs them",
        acted.case.case_id, n, repo_id
    );
    Ok(())
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct EmbargoArgs {
    #[command(subcommand)]
    command: Option<EmbargoCmd>,
    /// The case id.
    #[arg(required = true)]
    case: Option<String>,
    /// The new end, RFC 3339.
    #[arg(long, required = true)]
    until: Option<String>,
    /// Why.
    #[arg(long, required = true)]
    reason: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum EmbargoCmd {
    /// Asks the coordinators for a later end (maintainers). Shown in `case show` and `plan`
    /// until a coordinator grants it (`lockstep embargo CASE --until …`) or declines it.
    Request {
        /// The case id.
        case: String,
        /// The end asked for, RFC 3339.
        #[arg(long)]
        until: String,
        /// Why more time is needed.
        #[arg(long)]
        reason: String,
    },
    /// Declines the pending request (coordinators).
    Decline {
        /// The case id.
        case: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

fn until_text(view: &CaseView) -> String {
    view.embargo
        .until
        .map(|u| u.to_string())
        .unwrap_or_default()
}

pub(crate) async fn embargo(c: &Client, a: EmbargoArgs) -> anyhow::Result<()> {
    match (a.command, a.case, a.until, a.reason) {
        (
            Some(EmbargoCmd::Request {
                case,
                until,
                reason,
            }),
            ..,
        ) => {
            let id = case_id(&case)?;
            let acted = c
                .act(&id, &surface::RequestEmbargo { until, reason })
                .await?;
            let asked = acted
                .case
                .embargo
                .request
                .as_ref()
                .map(|r| r.until.to_string())
                .unwrap_or_default();
            println!(
                "{}: asked the coordinators for an embargo until {asked} (now until {})",
                acted.case.case_id,
                until_text(&acted.case)
            );
        }
        (Some(EmbargoCmd::Decline { case, reason }), ..) => {
            let id = case_id(&case)?;
            let acted = c.act(&id, &surface::DeclineEmbargo { reason }).await?;
            println!(
                "{}: embargo request declined; the embargo stays until {}",
                acted.case.case_id,
                until_text(&acted.case)
            );
        }
        (None, Some(case), Some(until), Some(reason)) => {
            let id = case_id(&case)?;
            let acted = c.act(&id, &surface::SetEmbargo { until, reason }).await?;
            println!(
                "{}: embargo until {}",
                acted.case.case_id,
                until_text(&acted.case)
            );
        }
        _ => anyhow::bail!("give CASE --until TIME --reason TEXT, or a subcommand (see --help)"),
    }
    Ok(())
}

/// The line about a pending embargo request, if any.
fn print_request(request: Option<&model::EmbargoRequest>) {
    if let Some(r) = request {
        println!(
            "{} {} asks for an embargo until {}: {}",
            paint("request", "33"),
            r.by,
            r.until,
            r.reason
        );
    }
}

pub(crate) async fn disclose_now(c: &Client, id: &str, reason: String) -> anyhow::Result<()> {
    let id = case_id(id)?;
    let acted = c.act(&id, &surface::DiscloseNow { reason }).await?;
    let view = &acted.case;
    let plan: plan::Plan = c.get(&format!("/api/cases/{id}/plan")).await?;
    let plan: usize = plan.waves.iter().map(Vec::len).sum();
    // This order ended the embargo if it appended events and the embargo now ends by a
    // disclosure; otherwise it had ended before (a deadline, a leak, an earlier order).
    let ended_now = acted.events_committed > 0
        && matches!(view.embargo.exit, Some(ExitReason::Disclosed { .. }));
    if ended_now {
        println!(
            "{}: embargo ended; {plan} advisories with released fixes publish now",
            view.case_id
        );
    } else {
        println!(
            "{}: the embargo had already ended; nothing changed ({plan} advisories still to publish)",
            view.case_id
        );
    }
    print_blockers_and_alerts(&view.blockers, &view.preflight, &view.alerts);
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum ScopeCmd {
    /// Brings a repository of the workflow into the case (coordinators): its draft opens
    /// linking every sibling, and the siblings' drafts are updated to link it.
    Add {
        /// The case id.
        case: String,
        /// The repository.
        #[arg(long)]
        repo: String,
    },
    /// Takes a repository out of the case (coordinators); its draft is closed.
    Remove {
        /// The case id.
        case: String,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

pub(crate) async fn scope(c: &Client, cmd: ScopeCmd) -> anyhow::Result<()> {
    match cmd {
        ScopeCmd::Add { case, repo } => {
            let id = case_id(&case)?;
            let repo_id = repo_id(&repo)?;
            let acted = c.act(&id, &surface::ScopeAdd { repo }).await?;
            println!(
                "{}: {} added; {} repositories in scope. Its draft opens, linked to its siblings, when `lockstep serve` (or `lockstep run --once`) runs.",
                acted.case.case_id,
                repo_id,
                acted.case.repos.len()
            );
        }
        ScopeCmd::Remove { case, repo, reason } => {
            let id = case_id(&case)?;
            let repo_id = repo_id(&repo)?;
            let acted = c.act(&id, &surface::ScopeRemove { repo, reason }).await?;
            println!(
                "{}: {} removed; {} repositories in scope",
                acted.case.case_id,
                repo_id,
                acted.case.repos.len()
            );
        }
    }
    Ok(())
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("threat").required(true).multiple(false)))]
pub(crate) struct ThreatArgs {
    /// The case id.
    case: String,
    /// The vulnerability is public.
    #[arg(long, group = "threat")]
    public: bool,
    /// An exploit is public.
    #[arg(long, group = "threat")]
    exploit_public: bool,
    /// Attacks are observed.
    #[arg(long, group = "threat")]
    attacks: bool,
    /// The evidence.
    #[arg(long)]
    reason: String,
}

pub(crate) async fn threat(c: &Client, a: ThreatArgs) -> anyhow::Result<()> {
    let id = case_id(&a.case)?;
    let threat = if a.public {
        Threat::PublicAwareness
    } else if a.exploit_public {
        Threat::ExploitPublic
    } else {
        Threat::AttacksObserved
    };
    let acted = c
        .act(
            &id,
            &surface::RecordThreat {
                threat,
                reason: a.reason,
            },
        )
        .await?;
    let view = &acted.case;
    let what = match threat {
        Threat::PublicAwareness => "the vulnerability is public",
        Threat::ExploitPublic => "an exploit is public",
        Threat::AttacksObserved => "attacks are observed",
    };
    let embargo = if view.embargo.state.in_force() {
        "the embargo holds".to_owned()
    } else {
        "the embargo has ended".to_owned()
    };
    let changed = if acted.events_committed == 0 {
        " (already recorded)"
    } else {
        ""
    };
    println!("{}: recorded that {what}{changed}; {embargo}", view.case_id);
    print_blockers_and_alerts(&view.blockers, &view.preflight, &view.alerts);
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
