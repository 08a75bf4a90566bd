//! `lockstep amend CASE --repo R (--patched-versions … | --vulnerable-range … | --package …)
//! --reason TEXT`: changes a published advisory's packages (a coordinator or the repository's
//! maintainer). The runtime writes it to GitHub, reading first on a retry.

use clap::Args;
use lockstep_core::{CaseId, RepoId};
use lockstep_server::surface;

use crate::client::Client;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["patched_versions", "vulnerable_range", "package"])))]
pub(crate) struct AmendArgs {
    /// The case id.
    case: String,
    /// The repository whose published advisory changes.
    #[arg(long)]
    repo: String,
    /// The new patched versions.
    #[arg(long)]
    patched_versions: Option<String>,
    /// The new vulnerable range, e.g. "< 1.9.1".
    #[arg(long)]
    vulnerable_range: Option<String>,
    /// A package the amendment concerns (repeatable); default: every package of the fix. A
    /// package the advisory does not name yet is added (with --patched-versions).
    #[arg(long)]
    package: Vec<String>,
    /// Why (recorded in the audit trail and the exports' revision history).
    #[arg(long)]
    reason: String,
}

pub(crate) async fn run(c: &Client, a: AmendArgs) -> anyhow::Result<()> {
    let id: CaseId = surface::field(&a.case)?;
    let repo: RepoId = surface::field(&a.repo)?;
    let request = surface::Amend {
        repo: a.repo,
        packages: a.package,
        vulnerable_range: a.vulnerable_range,
        patched_versions: a.patched_versions,
        reason: a.reason,
    };
    let acted = c.act(&id, &request).await?;
    let Some(p) = acted.case.repo(&repo) else {
        anyhow::bail!("{repo} is not in case {id}");
    };
    let packages: Vec<String> = p
        .fix
        .packages()
        .iter()
        .map(|f| match &f.vulnerable_range {
            Some(r) => format!("{} {r} (patched {})", f.package, f.patched_versions),
            None => format!("{} patched {}", f.package, f.patched_versions),
        })
        .collect();
    println!(
        "{}: {} advisory {} amended: {}; the runtime writes it to GitHub",
        acted.case.case_id,
        repo,
        p.ghsa_id.as_ref().map_or("-", |g| g.as_str()),
        packages.join(", ")
    );
    Ok(())
}
