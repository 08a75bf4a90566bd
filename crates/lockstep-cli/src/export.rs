//! `lockstep export CASE --format osv|csaf|cve [--repo R] [-o DIR]`: the case's machine-readable
//! documents, for those who may read the case.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lockstep_core::RepoId;
use lockstep_export::{Format, Options};

use crate::commands::Ctx;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// OSV 1.7, one record per advisory.
    Osv,
    /// CSAF 2.0 VEX, one document for the case.
    Csaf,
    /// CVE JSON 5, one record per CVE.
    Cve,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The case id.
    case: String,
    /// The format.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Only this repository's advisory (osv, cve).
    #[arg(long)]
    repo: Option<String>,
    /// Write one file per document into this directory (created if missing) instead of
    /// printing them.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let format = match a.format {
        FormatArg::Osv => Format::Osv,
        FormatArg::Csaf => Format::Csaf,
        FormatArg::Cve => Format::Cve,
    };
    let repo: Option<RepoId> = a.repo.as_deref().map(str::parse).transpose()?;
    let case = ctx.readable(&a.case).await?;
    let events = ctx.store.events(&case.id).await?;
    let docs = lockstep_export::export(&case, &events, format, repo.as_ref(), &Options::default())?;
    match a.output {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            for doc in &docs {
                let path = dir.join(&doc.file_name);
                std::fs::write(&path, serde_json::to_string_pretty(&doc.json)? + "\n")
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                println!("{}", path.display());
            }
        }
        None => {
            let out = match docs.as_slice() {
                [one] => serde_json::to_string_pretty(&one.json)?,
                _ => {
                    serde_json::to_string_pretty(&docs.iter().map(|d| &d.json).collect::<Vec<_>>())?
                }
            };
            println!("{out}");
        }
    }
    Ok(())
}
