//! `lockstep export CASE --format osv|csaf|cve [--repo R] [-o DIR]`: the case's machine-readable
//! documents, for those who may read the case.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lockstep_core::{CaseId, RepoId};
use lockstep_export::Format;
use lockstep_server::surface;
use serde_json::Value;

use crate::client::Client;

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

pub(crate) async fn run(c: &Client, a: ExportArgs) -> anyhow::Result<()> {
    let format = match a.format {
        FormatArg::Osv => Format::Osv,
        FormatArg::Csaf => Format::Csaf,
        FormatArg::Cve => Format::Cve,
    };
    let id: CaseId = surface::field(&a.case)?;
    let mut path = format!("/api/cases/{id}/export/{format}");
    if let Some(repo) = &a.repo {
        let repo: RepoId = surface::field(repo)?;
        path.push_str(&format!("?repo={repo}"));
    }
    // One document, or an array of them (OSV and CVE without --repo).
    let body: Value = c.get(&path).await?;
    let docs = match body {
        Value::Array(docs) => docs,
        one => vec![one],
    };
    match a.output {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            for doc in &docs {
                let path = dir.join(lockstep_export::file_name(format, doc));
                std::fs::write(&path, serde_json::to_string_pretty(doc)? + "\n")
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                println!("{}", path.display());
            }
        }
        None => {
            let out = match docs.as_slice() {
                [one] => serde_json::to_string_pretty(one)?,
                _ => serde_json::to_string_pretty(&docs)?,
            };
            println!("{out}");
        }
    }
    Ok(())
}
