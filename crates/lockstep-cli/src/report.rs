//! `lockstep report`: the private vulnerability reports awaiting triage, and the decisions on
//! them. Like the case commands, each sends one request of the command surface through the
//! [`Client`] (in-process or to a shared `lockstep serve`) and prints the typed answer.

use clap::Subcommand;
use lockstep_server::surface::{
    self, Acted, MergeReport, RejectReport, ReportList, ReportRef, ReportView,
};

use crate::client::Client;
use crate::output::table;

#[derive(Subcommand)]
pub(crate) enum ReportCmd {
    /// The reports awaiting triage on the repositories you coordinate or maintain.
    List {
        /// Decided reports too.
        #[arg(long)]
        all: bool,
        /// Machine output: an array of {repo, ghsa_id, summary, reporter, received_at,
        /// state, case_id}.
        #[arg(long)]
        json: bool,
    },
    /// A report: its description and severity, and the workflow's triage rules as the
    /// choices.
    Show {
        /// The repository, OWNER/REPO.
        repo: String,
        /// The report's advisory, GHSA-….
        ghsa: String,
        /// Machine output.
        #[arg(long)]
        json: bool,
    },
    /// Rejects a report: closes it on GitHub, recording who, why and the rule.
    Reject {
        /// The report, OWNER/REPO/GHSA-….
        report: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// The workflow's out-of-scope rule it falls under (see `report show`).
        #[arg(long, value_name = "ID")]
        rule: Option<String>,
    },
    /// Merges a second report of a known vulnerability into a case: its advisory becomes the
    /// case's in that repository if the case has none there yet, else it is closed as a
    /// duplicate. Either way its reporter is credited.
    Merge {
        /// The report, OWNER/REPO/GHSA-….
        report: String,
        /// The case.
        #[arg(long)]
        case: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn reference(s: &str) -> anyhow::Result<ReportRef> {
    Ok(ReportRef::parse(s)?)
}

pub(crate) async fn run(c: &Client, cmd: ReportCmd) -> anyhow::Result<()> {
    match cmd {
        ReportCmd::List { all, json } => {
            let path = if all {
                "/api/reports?all=true"
            } else {
                "/api/reports"
            };
            let listed: ReportList = c.get(path).await?;
            if json {
                println!("{}", serde_json::to_string(&listed.reports)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = listed
                .reports
                .iter()
                .map(|r| {
                    vec![
                        format!("{}/{}", r.repo, r.ghsa_id),
                        r.state.clone(),
                        r.reporter.clone(),
                        r.received_at.to_string(),
                        r.case_id.clone().unwrap_or_else(|| "-".into()),
                        r.summary.chars().take(60).collect(),
                    ]
                })
                .collect();
            table(
                &["REPORT", "STATE", "REPORTER", "RECEIVED", "CASE", "SUMMARY"],
                &rows,
            );
            Ok(())
        }
        ReportCmd::Show { repo, ghsa, json } => {
            let r = reference(&format!("{}/{}", repo.trim_end_matches('/'), ghsa))?;
            let v: ReportView = c.get(&r.path()).await?;
            if json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                print_view(&v);
            }
            Ok(())
        }
        ReportCmd::Reject {
            report,
            reason,
            rule,
        } => {
            let r = reference(&report)?;
            let _: ReportView = c
                .post(
                    &format!("{}/reject", r.path()),
                    &RejectReport {
                        reason,
                        rule: rule.clone(),
                    },
                )
                .await?;
            match rule {
                Some(rule) => println!(
                    "{r}: rejected under {rule}; its advisory closes on GitHub at the next run"
                ),
                None => {
                    println!("{r}: rejected; its advisory closes on GitHub at the next run")
                }
            }
            Ok(())
        }
        ReportCmd::Merge {
            report,
            case,
            reason,
        } => {
            let r = reference(&report)?;
            let case_id: lockstep_core::CaseId = surface::field(&case)?;
            let acted: Acted = c
                .post(
                    &format!("{}/merge", r.path()),
                    &MergeReport {
                        case: case_id.to_string(),
                        reason,
                    },
                )
                .await?;
            let own = acted
                .case
                .repos
                .iter()
                .find(|p| p.repo == r.repo)
                .and_then(|p| p.ghsa_id.clone())
                .filter(|g| *g != r.ghsa);
            match own {
                Some(g) => println!(
                    "{r}: merged into {} as a duplicate of {g}; it closes on GitHub at the next run; its reporter is credited",
                    acted.case.case_id
                ),
                None => println!(
                    "{r}: merged into {}; its reporter is credited",
                    acted.case.case_id
                ),
            }
            Ok(())
        }
    }
}

fn print_view(v: &ReportView) {
    let s = &v.summary;
    println!("{}/{}  {}", s.repo, s.ghsa_id, s.state);
    println!("  summary:   {}", s.summary);
    println!("  reporter:  {}", s.reporter);
    println!("  received:  {}", s.received_at);
    if let Some(case) = &s.case_id {
        println!("  case:      {case}");
    }
    match (&v.severity, &v.cvss) {
        (Some(sev), Some(cvss)) => println!("  severity:  {sev} ({cvss})"),
        (Some(sev), None) => println!("  severity:  {sev}"),
        _ => println!("  severity:  (none given)"),
    }
    if !v.cwes.is_empty() {
        println!("  cwes:      {}", v.cwes.join(", "));
    }
    if !v.credits.is_empty() {
        println!("  credits:   {}", v.credits.join(", "));
    }
    if let Some(close) = &v.close_state {
        match &v.close_error {
            Some(e) => println!("  close:     {close}: {e}"),
            None => println!("  close:     {close}"),
        }
    }
    println!();
    for line in v.description.lines() {
        println!("  {line}");
    }
    println!();
    if v.rules.is_empty() {
        println!("No out-of-scope rules in {}.", v.workflows.join(", "));
    } else {
        println!("Choices:");
        println!(
            "  lockstep case open --workflow-name {} --from-report {}/{}",
            v.workflows.first().map_or("WORKFLOW", String::as_str),
            s.repo,
            s.ghsa_id
        );
        println!(
            "  lockstep report merge {}/{} --case CASE",
            s.repo, s.ghsa_id
        );
        for r in &v.rules {
            println!(
                "  lockstep report reject {}/{} --rule {} --reason …   {}",
                s.repo, s.ghsa_id, r.id, r.summary
            );
        }
    }
}
