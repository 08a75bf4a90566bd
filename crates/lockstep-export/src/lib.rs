//! Machine-readable exports of a case, for the people downstream of the repository pages:
//! one OSV record per advisory, one CSAF 2.0 VEX document per case, one CVE JSON 5 record per
//! CVE.
//!
//! Every export is a pure function of the folded [`Case`] and its event log (the log the
//! audit trail hashes; CSAF's revision history and OSV's `modified` come from it). Nothing
//! here reads a clock or does IO, so the same case always exports the same bytes.
//!
//! Every read of a package's versions goes through [`package_lines`], the one place that
//! knows how a fix stores its ranges.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

use lockstep_core::model::{Participant, RemoteState};
use lockstep_core::vuln::Ecosystem;
use lockstep_core::{Case, Event, RepoId};
use serde_json::Value;

pub mod csaf;
pub mod cve;
pub mod osv;
pub mod range;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OSV 1.7, one record per advisory.
    Osv,
    /// CSAF 2.0, profile VEX, one document for the case.
    Csaf,
    /// CVE JSON 5 (the CNA container in a full record), one per CVE.
    Cve,
}

impl Format {
    /// The name users type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Osv => "osv",
            Self::Csaf => "csaf",
            Self::Cve => "cve",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        match s {
            "osv" => Ok(Self::Osv),
            "csaf" => Ok(Self::Csaf),
            "cve" => Ok(Self::Cve),
            other => Err(ExportError::UnknownFormat(other.chars().take(40).collect())),
        }
    }
}

/// Why an export cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Not one of osv, csaf, cve.
    #[error("unknown export format {0:?}: expected osv, csaf or cve")]
    UnknownFormat(String),
    /// `--repo` with CSAF, which covers the whole case.
    #[error("the csaf format covers the whole case; a repository applies to osv and cve only")]
    RepoNotApplicable,
    /// The repository is not part of the case.
    #[error("{repo} is not a repository of case {case}")]
    NotInCase {
        /// The repository.
        repo: RepoId,
        /// The case.
        case: String,
    },
    /// The repository has no advisory (or no CVE) to export.
    #[error("{repo} has no {what} in case {case} yet")]
    Nothing {
        /// The repository.
        repo: RepoId,
        /// What is missing.
        what: &'static str,
        /// The case.
        case: String,
    },
    /// The case has nothing of this format to export.
    #[error("case {case} has no {what} yet")]
    Empty {
        /// What is missing.
        what: &'static str,
        /// The case.
        case: String,
    },
}

/// Who issues the documents. Defaults suit a case whose CVEs GitHub assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The CNA that assigned the CVEs: its UUID and short name in the CVE program. GitHub
    /// (`GitHub_M`) assigns the CVEs a repository advisory requests; an organisation that is
    /// its own CNA names itself.
    pub cna_org_id: String,
    /// The CNA's short name.
    pub cna_short_name: String,
}

/// GitHub's CNA id in the CVE program (`GitHub_M`), the assigner of CVEs requested through
/// repository advisories.
pub const GITHUB_CNA_ORG_ID: &str = "a0819718-46f1-4df5-94e2-005712e83aaa";

impl Default for Options {
    fn default() -> Self {
        Self {
            cna_org_id: GITHUB_CNA_ORG_ID.to_owned(),
            cna_short_name: "GitHub_M".to_owned(),
        }
    }
}

/// One exported document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// A file name for it (`GHSA-….json`, `CVE-….json`, `{case}.json`).
    pub file_name: String,
    /// The document.
    pub json: Value,
}

/// The file name of an exported document of `format`, from the document itself:
/// `GHSA-….json` (OSV), `CVE-….json` (CVE), the CSAF tracking id after CSAF §5.1.
pub fn file_name(format: Format, json: &Value) -> String {
    match format {
        Format::Csaf => csaf::file_name(
            json["document"]["tracking"]["id"]
                .as_str()
                .unwrap_or("csaf"),
        ),
        Format::Osv => format!("{}.json", json["id"].as_str().unwrap_or("osv")),
        Format::Cve => format!(
            "{}.json",
            json["cveMetadata"]["cveId"].as_str().unwrap_or("cve")
        ),
    }
}

/// Exports `case` in `format`: every document, or only `repo`'s (OSV and CVE).
pub fn export(
    case: &Case,
    events: &[Event],
    format: Format,
    repo: Option<&RepoId>,
    options: &Options,
) -> Result<Vec<Document>, ExportError> {
    let repos: Vec<&RepoId> = match repo {
        Some(_) if format == Format::Csaf => return Err(ExportError::RepoNotApplicable),
        Some(r) => {
            if !case.participants.get(r).is_some_and(|p| p.in_scope) {
                return Err(ExportError::NotInCase {
                    repo: r.clone(),
                    case: case.id.to_string(),
                });
            }
            vec![r]
        }
        None => case.scope().map(|(r, _)| r).collect(),
    };
    let mut docs = Vec::new();
    match format {
        Format::Csaf => {
            let json = csaf::document(case, events);
            docs.push(Document {
                file_name: file_name(format, &json),
                json,
            });
        }
        Format::Osv => {
            for r in &repos {
                match osv::record(case, events, r) {
                    Some(json) => docs.push(Document {
                        file_name: file_name(format, &json),
                        json,
                    }),
                    None if repo.is_some() => {
                        return Err(ExportError::Nothing {
                            repo: (*r).clone(),
                            what: "advisory",
                            case: case.id.to_string(),
                        });
                    }
                    None => {}
                }
            }
        }
        Format::Cve => {
            for r in &repos {
                match cve::record(case, events, r, options) {
                    Some(json) => docs.push(Document {
                        file_name: file_name(format, &json),
                        json,
                    }),
                    None if repo.is_some() => {
                        return Err(ExportError::Nothing {
                            repo: (*r).clone(),
                            what: "CVE on an open or published advisory",
                            case: case.id.to_string(),
                        });
                    }
                    None => {}
                }
            }
        }
    }
    if docs.is_empty() {
        return Err(ExportError::Empty {
            what: match format {
                Format::Osv => "advisory to export as OSV",
                Format::Cve => "CVE to export",
                Format::Csaf => "document",
            },
            case: case.id.to_string(),
        });
    }
    Ok(docs)
}

/// One release line of a package's fix: the versions that are vulnerable and the version that
/// fixes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageLine<'a> {
    /// The package, as advisories name it.
    pub package: &'a str,
    /// GitHub's range syntax, e.g. `>= 1.0.0, < 1.24.0`, if given.
    pub vulnerable_range: Option<&'a str>,
    /// The first version with the fix, if given.
    pub patched_version: Option<&'a str>,
}

/// Every (package, vulnerable range, patched version) of a participant's fix: the one reader
/// of a fix's versions in this crate.
pub fn package_lines(p: &Participant) -> Vec<PackageLine<'_>> {
    p.fix
        .packages()
        .iter()
        .map(|f| PackageLine {
            package: f.package.as_str(),
            vulnerable_range: f
                .vulnerable_range
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty()),
            patched_version: Some(f.patched_versions.trim()).filter(|v| !v.is_empty()),
        })
        .collect()
}

/// The packages an advisory names, as the engine writes them to GitHub: those of the fix's
/// lines once there is a fix, every package of the workflow before.
pub(crate) fn package_names<'a>(
    spec: &'a lockstep_core::workflow::RepoSpec,
    lines: &[PackageLine<'a>],
) -> Vec<&'a str> {
    if lines.is_empty() {
        return spec.packages.iter().map(String::as_str).collect();
    }
    let mut names: Vec<&str> = Vec::new();
    for l in lines {
        if !names.contains(&l.package) {
            names.push(l.package);
        }
    }
    names
}

/// Whether a participant's advisory takes part in the exports: it exists and was not closed
/// (a repository assessed not affected has its draft closed).
pub(crate) fn has_advisory(p: &Participant) -> bool {
    p.advisory.ghsa.is_some() && p.advisory.state != RemoteState::Closed
}

/// The advisory's page on GitHub.
pub(crate) fn advisory_url(repo: &RepoId, ghsa: &str) -> String {
    format!("https://github.com/{repo}/security/advisories/{ghsa}")
}

/// The ecosystem as OSV spells it; `None` for GitHub's `other`, which OSV has no name for.
pub fn osv_ecosystem(e: Ecosystem) -> Option<&'static str> {
    Some(match e {
        Ecosystem::Npm => "npm",
        Ecosystem::Pip => "PyPI",
        Ecosystem::Maven => "Maven",
        Ecosystem::Nuget => "NuGet",
        Ecosystem::Go => "Go",
        Ecosystem::Rust => "crates.io",
        Ecosystem::Rubygems => "RubyGems",
        Ecosystem::Composer => "Packagist",
        Ecosystem::Swift => "SwiftURL",
        Ecosystem::Erlang => "Hex",
        Ecosystem::Pub => "Pub",
        Ecosystem::Actions => "GitHub Actions",
        Ecosystem::Other => return None,
    })
}

/// Whether OSV orders the ecosystem's versions as SemVer 2.0 (a `SEMVER` range) rather than
/// by the ecosystem's own rules (`ECOSYSTEM`).
pub fn semver_ecosystem(e: Ecosystem) -> bool {
    matches!(
        e,
        Ecosystem::Npm | Ecosystem::Go | Ecosystem::Rust | Ecosystem::Swift | Ecosystem::Erlang
    )
}

/// Whether every advisory that will publish is out: each in-scope repository is either
/// published or has no advisory to publish (not affected, closed).
pub fn all_published(case: &Case) -> bool {
    let mut any = false;
    for (_, p) in case.scope() {
        match p.advisory.state {
            RemoteState::Published => any = true,
            RemoteState::Closed => {}
            RemoteState::None | RemoteState::Draft => {
                if !matches!(
                    p.assessment,
                    lockstep_core::model::Assessment::NotAffected { .. }
                ) {
                    return false;
                }
            }
        }
    }
    any
}

/// The severity name and CVSS base score of a vector, computed by the `cvss` crate.
pub(crate) fn cvss_score(vector: &str) -> Option<(f64, &'static str)> {
    let c: cvss::Cvss = vector.parse().ok()?;
    let name = match c.severity() {
        cvss::Severity::None => "NONE",
        cvss::Severity::Low => "LOW",
        cvss::Severity::Medium => "MEDIUM",
        cvss::Severity::High => "HIGH",
        cvss::Severity::Critical => "CRITICAL",
    };
    Some((c.score(), name))
}

/// What kind of change to the exported content an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// The case opened.
    Opened,
    /// A repository joined or left the case.
    Scope,
    /// An assessment.
    Assessment,
    /// A fix was marked or withdrawn.
    Fix,
    /// A draft advisory exists (its GHSA id is known).
    Advisory,
    /// A CVE was assigned.
    Cve,
    /// An advisory was published.
    Published,
}

/// One change to the exported content, from one event.
#[derive(Debug, Clone)]
pub(crate) struct Change<'a> {
    /// When.
    pub(crate) at: lockstep_core::Timestamp,
    /// The repository it concerns, if any.
    pub(crate) repo: Option<&'a RepoId>,
    /// What kind.
    pub(crate) kind: ChangeKind,
    /// In words, for a revision history.
    pub(crate) text: String,
}

/// The events of the log that change what an export says, in order.
pub(crate) fn changes<'a>(case: &'a Case, events: &'a [Event]) -> Vec<Change<'a>> {
    use lockstep_core::EventKind as K;
    use lockstep_core::input::{FixStage, Outcome};
    let mut out = Vec::new();
    for e in events {
        let (repo, kind, text) = match &e.kind {
            K::CaseOpened { .. } => (None, ChangeKind::Opened, "Case opened".to_owned()),
            K::RepoAdded { repo } if e.seq > 1 => {
                (Some(repo), ChangeKind::Scope, format!("{repo} added"))
            }
            K::RepoRemoved { repo, .. } => {
                (Some(repo), ChangeKind::Scope, format!("{repo} removed"))
            }
            K::Assessed { repo, verdict, .. } => (
                Some(repo),
                ChangeKind::Assessment,
                format!("{repo} assessed {}", verdict_name(*verdict)),
            ),
            K::FixMarked { repo, stage, .. } => (
                Some(repo),
                ChangeKind::Fix,
                format!(
                    "{repo} fix {}",
                    match stage {
                        FixStage::Prepared => "prepared",
                        FixStage::Released => "released",
                    }
                ),
            ),
            K::FixRevoked { repo, .. } => {
                (Some(repo), ChangeKind::Fix, format!("{repo} fix withdrawn"))
            }
            K::AdvisoryAmended { repo, reason, .. } => {
                let name = case
                    .participants
                    .get(repo)
                    .and_then(|p| p.advisory.ghsa.as_ref())
                    .map_or_else(|| repo.to_string(), |g| format!("{g} ({repo})"));
                (
                    Some(repo),
                    ChangeKind::Fix,
                    format!("{name} amended: {reason}"),
                )
            }
            K::CveAssigned { repo, cve } => (
                Some(repo),
                ChangeKind::Cve,
                format!("{cve} assigned for {repo}"),
            ),
            K::PublishedElsewhere { repo, ghsa } => (
                Some(repo),
                ChangeKind::Published,
                format!("{ghsa} ({repo}) published"),
            ),
            K::EffectSucceeded { key, outcome } => {
                let Some(record) = case.effects.get(key) else {
                    continue;
                };
                let repo = &record.repo;
                let ghsa = case
                    .participants
                    .get(repo)
                    .and_then(|p| p.advisory.ghsa.as_ref())
                    .map_or_else(|| repo.to_string(), |g| format!("{g} ({repo})"));
                match outcome {
                    Outcome::DraftOpened { ghsa } => (
                        Some(repo),
                        ChangeKind::Advisory,
                        format!("draft advisory {ghsa} opened for {repo}"),
                    ),
                    Outcome::Published => (
                        Some(repo),
                        ChangeKind::Published,
                        format!("{ghsa} published"),
                    ),
                    _ => continue,
                }
            }
            _ => continue,
        };
        out.push(Change {
            at: e.at,
            repo,
            kind,
            text,
        });
    }
    out
}

fn verdict_name(v: lockstep_core::input::Verdict) -> &'static str {
    use lockstep_core::input::Verdict;
    match v {
        Verdict::Investigating => "under investigation",
        Verdict::Affected => "affected",
        Verdict::NotAffected => "not affected",
    }
}
