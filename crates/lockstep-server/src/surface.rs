//! The command surface: one request type per action, shared by the HTTP handlers, the CLI's
//! local path (which runs these same handlers in-process) and the CLI's HTTP client.
//!
//! Each action on a case is a type that implements [`CaseAction`]: it is the JSON body of
//! `POST /api/cases/{id}/{PATH}`, it validates its own fields, and it translates itself into
//! the core's [`Command`] together with the repositories whose permissions the caller needs.
//! Adding an action is: its type and `CaseAction` impl here, one line in [`each_action`],
//! and its arguments and output line in the CLI.
//!
//! The answers are typed too ([`Opened`], [`CaseView`], [`Acted`]), so that the CLI prints
//! the same documents whether it reached the handlers in-process or over the network.

use std::collections::{BTreeMap, BTreeSet};

use lockstep_core::engine::lines::LineView;
use lockstep_core::engine::preflight::RepoFinding;
use lockstep_core::event::{ExitReason, ReleaseMode};
use lockstep_core::input::{FixStage, Threat, Verdict};
use lockstep_core::machines::EmState;
use lockstep_core::model::{Assessment, EmbargoRequest, Fix, RemoteState};
use lockstep_core::plan::Alert;
use lockstep_core::propagation::RepoPropagation;
use lockstep_core::vuln::{Credit, CvssVector, PackageFix, Rating, Severity};
use lockstep_core::{Blocker, Case, CaseId, Command, CveId, CweId, GhsaId, RepoId, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A malformed field of a request (HTTP 400): the field's parser's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

/// Parses a field with its `FromStr`; the identifier types' errors name the field's kind.
pub fn field<T: std::str::FromStr>(value: &str) -> Result<T, FieldError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| FieldError(e.to_string()))
}

/// One action on an existing case: the body of `POST /api/cases/{id}/{PATH}`.
pub trait CaseAction: Serialize + DeserializeOwned + ToSchema + Send + 'static {
    /// The last path segment: `/api/cases/{id}/{PATH}`.
    const PATH: &'static str;
    /// Its name in logs and metrics.
    const NAME: &'static str;
    /// One line for the OpenAPI description.
    const SUMMARY: &'static str;
    /// The core command, and the repositories whose GitHub permissions decide whether the
    /// caller may run it (none for case-wide commands). `case` is the case as it stands.
    fn command(self, case: &Case) -> Result<(Command, Vec<RepoId>), FieldError>;
}

/// Visits every [`CaseAction`] type: the router mounts them, the OpenAPI description
/// describes them.
pub trait ActionVisitor {
    /// Called once per action type.
    fn visit<A: CaseAction>(&mut self);
}

/// Every action, in the order the API documents them. Add a new action here.
pub fn each_action(v: &mut impl ActionVisitor) {
    v.visit::<Assess>();
    v.visit::<FixReady>();
    v.visit::<FixRevoke>();
    v.visit::<Retry>();
    v.visit::<SetEmbargo>();
    v.visit::<DiscloseNow>();
    v.visit::<Close>();
    v.visit::<ScopeAdd>();
    v.visit::<ScopeRemove>();
    v.visit::<RecordThreat>();
    v.visit::<RequestEmbargo>();
    v.visit::<DeclineEmbargo>();
    v.visit::<Amend>();
}

/// `POST /api/cases/{id}/assess`: records a repository's assessment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assess {
    /// The repository.
    pub repo: String,
    /// `affected`, `not_affected` or `investigating`.
    #[schema(value_type = VerdictName)]
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

impl CaseAction for Assess {
    const PATH: &'static str = "assess";
    const NAME: &'static str = "assess";
    const SUMMARY: &'static str = "Records an assessment of one repository.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((
            Command::Assess {
                repo: repo.clone(),
                verdict: self.verdict,
                reason: self.reason,
            },
            vec![repo],
        ))
    }
}

/// One package name or several.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `POST /api/cases/{id}/fix-ready`: marks a repository's fix released (or prepared).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixReady {
    /// The repository.
    pub repo: String,
    /// One release line: the versions that carry the fix (with `vulnerable_range`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched_versions: Option<String>,
    /// The vulnerable range of that one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerable_range: Option<String>,
    /// Several release lines (backports), instead of `patched_versions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<Line>>,
    /// The packages; default: every package of the repository in the workflow.
    #[serde(default, alias = "packages", skip_serializing_if = "Option::is_none")]
    pub package: Option<OneOrMany>,
    /// `released` (the default) or `prepared` (ready in private; a matching `release`
    /// webhook promotes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<FixStageName>)]
    pub stage: Option<FixStage>,
}

impl CaseAction for FixReady {
    const PATH: &'static str = "fix-ready";
    const NAME: &'static str = "fix_ready";
    const SUMMARY: &'static str =
        "Marks a repository's fix released (or prepared), with its versions.";
    fn command(self, case: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        let names = match self.package {
            Some(OneOrMany::One(p)) => vec![p],
            Some(OneOrMany::Many(ps)) => ps,
            None => case
                .workflow
                .repos
                .get(&repo)
                .map(|s| s.packages.clone())
                .unwrap_or_default(),
        };
        let packages = match (self.lines, self.patched_versions) {
            (Some(lines), None) if self.vulnerable_range.is_none() => {
                let lines: Vec<(String, String)> = lines
                    .into_iter()
                    .map(|l| (l.vulnerable_range, l.patched_version))
                    .collect();
                lockstep_core::engine::lines::fix_lines(&names, &lines)
            }
            (None, Some(patched)) => names
                .into_iter()
                .map(|package| PackageFix {
                    package,
                    vulnerable_range: self.vulnerable_range.clone(),
                    patched_versions: patched.clone(),
                })
                .collect(),
            _ => {
                return Err(FieldError(
                    "give either `lines` or `patched_versions` (with `vulnerable_range`)".into(),
                ));
            }
        };
        Ok((
            Command::MarkFix {
                repo: repo.clone(),
                stage: self.stage.unwrap_or(FixStage::Released),
                packages,
            },
            vec![repo],
        ))
    }
}

/// One release line of [`FixReady`]: a vulnerable range and the version that patches it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The vulnerable range, e.g. `>= 1.1.0, < 1.1.2`.
    pub vulnerable_range: String,
    /// The version that patches it, e.g. `1.1.2`.
    pub patched_version: String,
}

/// `POST /api/cases/{id}/fix-revoke`: withdraws a fix mark.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixRevoke {
    /// The repository.
    pub repo: String,
    /// Why.
    pub reason: String,
}

impl CaseAction for FixRevoke {
    const PATH: &'static str = "fix-revoke";
    const NAME: &'static str = "fix_revoke";
    const SUMMARY: &'static str = "Withdraws a fix mark.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((
            Command::RevokeFix {
                repo: repo.clone(),
                reason: self.reason,
            },
            vec![repo],
        ))
    }
}

/// `POST /api/cases/{id}/retry`: puts a repository's effects that failed for good back in
/// line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// The repository.
    pub repo: String,
    /// What was done about the failure.
    pub reason: String,
}

impl CaseAction for Retry {
    const PATH: &'static str = "retry";
    const NAME: &'static str = "retry";
    const SUMMARY: &'static str =
        "Puts a repository's GitHub writes that failed for good back in line.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((
            Command::Retry {
                repo: repo.clone(),
                reason: self.reason,
            },
            vec![repo],
        ))
    }
}

/// `POST /api/cases/{id}/embargo`: sets or extends the embargo (a coordinator's call).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEmbargo {
    /// The new end, RFC 3339.
    pub until: String,
    /// Why.
    pub reason: String,
}

impl CaseAction for SetEmbargo {
    const PATH: &'static str = "embargo";
    const NAME: &'static str = "set_embargo";
    const SUMMARY: &'static str = "Sets or extends the embargo.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        Ok((
            Command::SetEmbargo {
                until: field(&self.until)?,
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases/{id}/disclose-now`: ends the embargo at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscloseNow {
    /// Why (a leak, exploitation observed…).
    pub reason: String,
}

impl CaseAction for DiscloseNow {
    const PATH: &'static str = "disclose-now";
    const NAME: &'static str = "disclose_now";
    const SUMMARY: &'static str =
        "Ends the embargo at once: publishes every advisory whose fix is released.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        Ok((
            Command::DiscloseNow {
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases/{id}/close`: the case takes no more commands; unpublished drafts close.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// Why.
    pub reason: String,
}

impl CaseAction for Close {
    const PATH: &'static str = "close";
    const NAME: &'static str = "close";
    const SUMMARY: &'static str = "Closes the case; drafts not yet published are closed on GitHub.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        Ok((
            Command::Close {
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases/{id}/amend`: changes a published advisory's packages, a fix found
/// incomplete (a coordinator or the repository's maintainer). The runtime writes it to
/// GitHub, reading first on a retry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    /// The repository whose published advisory changes.
    pub repo: String,
    /// The packages concerned; empty: every package of the fix. One the advisory does not
    /// name yet is added (with `patched_versions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// The new vulnerable range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerable_range: Option<String>,
    /// The new patched versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched_versions: Option<String>,
    /// Why (the audit trail and the exports' revision history).
    pub reason: String,
}

impl CaseAction for Amend {
    const PATH: &'static str = "amend";
    const NAME: &'static str = "amend";
    const SUMMARY: &'static str =
        "Changes a published advisory's vulnerable range, patched versions or packages.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((
            Command::Amend {
                repo: repo.clone(),
                packages: self.packages,
                vulnerable_range: self.vulnerable_range,
                patched_versions: self.patched_versions,
                reason: self.reason,
            },
            vec![repo],
        ))
    }
}

/// `POST /api/cases/{id}/scope-add`: brings a repository of the workflow into the case
/// (coordinators only). Its draft opens linking every sibling, and the siblings' drafts are
/// updated to link it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeAdd {
    /// The repository.
    pub repo: String,
}

impl CaseAction for ScopeAdd {
    const PATH: &'static str = "scope-add";
    const NAME: &'static str = "add_repo";
    const SUMMARY: &'static str = "Brings a repository of the workflow into the case.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((Command::AddRepo { repo }, Vec::new()))
    }
}

/// `POST /api/cases/{id}/scope-remove`: takes a repository out of the case (coordinators
/// only); its draft is closed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRemove {
    /// The repository.
    pub repo: String,
    /// Why.
    pub reason: String,
}

impl CaseAction for ScopeRemove {
    const PATH: &'static str = "scope-remove";
    const NAME: &'static str = "remove_repo";
    const SUMMARY: &'static str = "Takes a repository out of the case; its draft is closed.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        let repo: RepoId = field(&self.repo)?;
        Ok((
            Command::RemoveRepo {
                repo,
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases/{id}/threat`: records that the vulnerability is public, that an exploit
/// is public, or that attacks are observed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordThreat {
    /// `public_awareness`, `exploit_public` or `attacks_observed`.
    #[schema(value_type = ThreatName)]
    pub threat: Threat,
    /// The evidence.
    pub reason: String,
}

impl CaseAction for RecordThreat {
    const PATH: &'static str = "threat";
    const NAME: &'static str = "record_threat";
    const SUMMARY: &'static str =
        "Records that the vulnerability or an exploit is public, or that attacks are observed.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        Ok((
            Command::RecordThreat {
                threat: self.threat,
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases/{id}/embargo-request`: a maintainer (or coordinator) asks the
/// coordinators for a later embargo end. Shown in the case and its plan until a coordinator
/// grants it (`embargo`) or declines it (`embargo-decline`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestEmbargo {
    /// The end asked for, RFC 3339.
    pub until: String,
    /// Why more time is needed.
    pub reason: String,
}

impl CaseAction for RequestEmbargo {
    const PATH: &'static str = "embargo-request";
    const NAME: &'static str = "request_embargo";
    const SUMMARY: &'static str = "Asks the coordinators for a later embargo end.";
    fn command(self, case: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        // Any maintainer of the case may ask: their permissions count on every repository.
        Ok((
            Command::RequestEmbargo {
                until: field(&self.until)?,
                reason: self.reason,
            },
            case.repos(),
        ))
    }
}

/// `POST /api/cases/{id}/embargo-decline`: a coordinator declines the pending request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineEmbargo {
    /// Why.
    pub reason: String,
}

impl CaseAction for DeclineEmbargo {
    const PATH: &'static str = "embargo-decline";
    const NAME: &'static str = "decline_embargo";
    const SUMMARY: &'static str = "Declines the pending embargo extension request.";
    fn command(self, _: &Case) -> Result<(Command, Vec<RepoId>), FieldError> {
        Ok((
            Command::DeclineEmbargo {
                reason: self.reason,
            },
            Vec::new(),
        ))
    }
}

/// `POST /api/cases`: opens a case. Give `workflow_name` (a workflow of the server's
/// workflows directory) or `workflow` (its TOML text, where the server accepts inline
/// workflows).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The case id; generated (`LS-YYYYMMDD-XXXXXX`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// A workflow of the workflows directory, by file stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    /// A workflow's TOML text (only when the server allows inline workflows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// A private vulnerability report to open the case from, `OWNER/REPO/GHSA-…`: its
    /// advisory is adopted, and its text, rating, CWEs and credits are the case's unless the
    /// fields below override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_report: Option<String>,
    /// One-line summary (required unless `from_report`).
    #[serde(default)]
    pub summary: String,
    /// The description, Markdown (required unless `from_report`).
    #[serde(default)]
    pub description: String,
    /// `low`, `medium`, `high` or `critical`; or give `cvss` (one is required unless
    /// `from_report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// A CVSS 3.x or 4.0 vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<String>,
    /// CWE ids.
    #[serde(default, alias = "cwes", skip_serializing_if = "Vec::is_empty")]
    pub cwe: Vec<String>,
    /// Credits as `LOGIN:TYPE`.
    #[serde(default, alias = "credits", skip_serializing_if = "Vec::is_empty")]
    pub credit: Vec<String>,
    /// Repositories in scope; default: every repository of the workflow.
    #[serde(default, alias = "repos", skip_serializing_if = "Vec::is_empty")]
    pub repo: Vec<String>,
    /// The embargo's end, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo_until: Option<String>,
}

/// The fields of an [`OpenRequest`], parsed.
#[derive(Debug, Clone)]
pub struct OpenFields {
    /// The case id, if given.
    pub case_id: Option<CaseId>,
    /// The rating (`None` only with `from_report`, which supplies it).
    pub rating: Option<Rating>,
    /// The report to open from.
    pub from_report: Option<ReportRef>,
    /// CWE ids.
    pub cwes: BTreeSet<CweId>,
    /// Credits.
    pub credits: Vec<Credit>,
    /// Scope.
    pub scope: BTreeSet<RepoId>,
    /// The embargo's end.
    pub embargo_until: Option<Timestamp>,
}

impl OpenRequest {
    /// Parses every field but the workflow (which the server resolves).
    pub fn fields(&self) -> Result<OpenFields, FieldError> {
        let rating = match (&self.severity, &self.cvss) {
            (Some(_), Some(_)) => {
                return Err(FieldError(
                    "give severity or cvss, not both (GitHub takes one or the other)".into(),
                ));
            }
            (Some(s), None) => Some(Rating::Severity(field::<Severity>(s)?)),
            (None, Some(v)) => Some(Rating::Cvss(field::<CvssVector>(v)?)),
            (None, None) if self.from_report.is_some() => None,
            (None, None) => return Err(FieldError("give severity or cvss".into())),
        };
        let from_report = self
            .from_report
            .as_deref()
            .map(ReportRef::parse)
            .transpose()?;
        Ok(OpenFields {
            from_report,
            case_id: self.case_id.as_deref().map(field).transpose()?,
            rating,
            cwes: self
                .cwe
                .iter()
                .map(|c| field(c))
                .collect::<Result<_, _>>()?,
            credits: self
                .credit
                .iter()
                .map(|c| field(c))
                .collect::<Result<_, _>>()?,
            scope: self
                .repo
                .iter()
                .map(|r| field(r))
                .collect::<Result<_, _>>()?,
            embargo_until: self.embargo_until.as_deref().map(field).transpose()?,
        })
    }
}

/// The answer to `POST /api/cases` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Opened {
    /// The new case.
    #[schema(value_type = String)]
    pub case_id: CaseId,
    /// The repositories in scope.
    #[schema(value_type = Vec<String>)]
    pub repos: Vec<RepoId>,
    /// The embargo's end.
    #[schema(value_type = Option<String>)]
    pub embargo_until: Option<Timestamp>,
    /// GitHub writes queued.
    pub effects: u64,
}

/// One repository of a [`CaseView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoView {
    /// The repository.
    #[schema(value_type = String)]
    pub repo: RepoId,
    /// Its assessment: `{"status": …, "reason": …}`.
    #[schema(value_type = Object)]
    pub assessment: Assessment,
    /// Its fix: `{"status": …, "packages": […]}`.
    #[schema(value_type = Object)]
    pub fix: Fix,
    /// The fix's release lines per package, each
    /// `{"vulnerable_range", "patched_version", "released"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub lines: BTreeMap<String, Vec<LineView>>,
    /// Its advisory, once the draft exists.
    #[schema(value_type = Option<String>)]
    pub ghsa_id: Option<GhsaId>,
    /// The advisory's state: `none`, `draft`, `published` or `closed`.
    #[schema(value_type = String)]
    pub advisory_state: RemoteState,
    /// Whether someone other than Lockstep published it.
    pub published_elsewhere: bool,
    /// Its CVE.
    #[schema(value_type = Option<String>)]
    pub cve_id: Option<CveId>,
    /// The temporary private fork.
    #[schema(value_type = Option<String>)]
    pub private_fork: Option<RepoId>,
    /// Failures that need a person, by effect key.
    pub failures: BTreeMap<String, String>,
    /// The last retryable failure.
    pub last_error: Option<String>,
}

/// The embargo of a [`CaseView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmbargoView {
    /// Vultron EM state.
    #[schema(value_type = String)]
    pub state: EmState,
    /// Its end.
    #[schema(value_type = Option<String>)]
    pub until: Option<Timestamp>,
    /// Why it ended: `{"cause": …}`.
    #[schema(value_type = Option<Object>)]
    pub exit: Option<ExitReason>,
    /// When it ended.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub ended_at: Option<Timestamp>,
    /// When its end passed under `hold-all` while it stayed in force.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub overdue: Option<Timestamp>,
    /// A participant's pending request for a later end: `{"by", "at", "until", "reason"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub request: Option<EmbargoRequest>,
}

/// A case as `GET /api/cases/{id}` and `lockstep case show --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    /// The case.
    #[schema(value_type = String)]
    pub case_id: CaseId,
    /// Its version (events applied).
    pub version: u64,
    /// The vulnerability's summary.
    pub summary: String,
    /// The workflow's name.
    pub workflow: String,
    /// When it was opened.
    #[schema(value_type = String)]
    pub opened_at: Timestamp,
    /// Whether it is closed.
    pub closed: bool,
    /// The embargo.
    pub embargo: EmbargoView,
    /// How the release started, if it has.
    #[schema(value_type = Option<String>)]
    pub release: Option<ReleaseMode>,
    /// Whether the publication gate is open.
    pub gate_open: bool,
    /// Per repository in scope.
    pub repos: Vec<RepoView>,
    /// What holds the release: `{"repo", "reason", …}`.
    #[schema(value_type = Vec<Object>)]
    pub blockers: Vec<Blocker>,
    /// What needs a person: `{"alert", …}`.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<Alert>,
    /// What GitHub would refuse (blockers) or drop (warnings) at publication: each
    /// `{"repo", "blocker", "kind", …, "text"}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub preflight: Vec<RepoFinding>,
    /// After publication, per published advisory: its copy in GitHub's global database,
    /// `{"repo", "copy", "summary"}` ("reviewed at T", "pending for N h", what differs).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub propagation: Vec<RepoPropagation>,
    /// Whether every advisory is published and has propagated: the case may be closed.
    #[serde(default)]
    pub propagated: bool,
}

impl CaseView {
    /// The view of `case` at `now` (the database's clock: how long a global copy is pending).
    pub fn of(case: &Case, now: Timestamp) -> CaseView {
        let plan = case.plan();
        CaseView {
            case_id: case.id.clone(),
            version: case.version,
            summary: case.vulnerability.summary.clone(),
            workflow: case.workflow.name.clone(),
            opened_at: case.opened_at,
            closed: case.closed.is_some(),
            embargo: EmbargoView {
                state: case.embargo.state,
                until: case.embargo.until,
                exit: plan.embargo_exit.clone(),
                ended_at: case.embargo.exit.as_ref().map(|(at, _)| *at),
                overdue: case.embargo.overdue,
                request: plan.embargo_request.clone(),
            },
            release: plan.release,
            gate_open: plan.gate_open,
            repos: case
                .scope()
                .map(|(r, p)| RepoView {
                    repo: r.clone(),
                    assessment: p.assessment.clone(),
                    fix: p.fix.clone(),
                    lines: p.lines(),
                    ghsa_id: p.advisory.ghsa.clone(),
                    advisory_state: p.advisory.state,
                    published_elsewhere: p.advisory.published_elsewhere,
                    cve_id: p.advisory.cve.clone(),
                    private_fork: p.advisory.private_fork.clone(),
                    failures: p.attention.clone(),
                    last_error: p.last_error.clone(),
                })
                .collect(),
            blockers: plan.blockers,
            alerts: plan.alerts,
            preflight: plan.preflight,
            propagation: case.propagation(now),
            propagated: case.propagated(),
        }
    }

    /// The row of `repo`, if it is in scope.
    pub fn repo(&self, repo: &RepoId) -> Option<&RepoView> {
        self.repos.iter().find(|r| &r.repo == repo)
    }
}

/// The answer to an action: the case as it stands after it, and how many events it appended
/// (0: it changed nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Acted {
    /// The case.
    #[serde(flatten)]
    #[schema(inline)]
    pub case: CaseView,
    /// Events appended.
    pub events_committed: usize,
}

/// Every error answer: `{"error": "<one line>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// The names [`Verdict`] takes on the wire, for the OpenAPI description (a test checks that
/// they are the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum VerdictName {
    /// Still looking.
    Investigating,
    /// Affected.
    Affected,
    /// Not affected.
    NotAffected,
}

/// The names [`FixStage`] takes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FixStageName {
    /// Ready in private.
    Prepared,
    /// Released.
    Released,
}

/// The names [`Threat`] takes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ThreatName {
    /// The public knows.
    PublicAwareness,
    /// An exploit is public.
    ExploitPublic,
    /// Attacks are observed.
    AttacksObserved,
}

// ----- private vulnerability reports ------------------------------------------------------

/// A report named as `OWNER/REPO/GHSA-…` (the CLI) or by the path
/// `/api/reports/{owner}/{repo}/{ghsa}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRef {
    /// The repository it was filed on.
    pub repo: RepoId,
    /// Its advisory.
    pub ghsa: GhsaId,
}

impl ReportRef {
    /// Parses `OWNER/REPO/GHSA-…`.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let (repo, ghsa) = s.rsplit_once('/').ok_or_else(|| {
            FieldError(format!(
                "report {s:?} must be OWNER/REPO/GHSA-XXXX-XXXX-XXXX"
            ))
        })?;
        Ok(Self {
            repo: field(repo)?,
            ghsa: field(ghsa)?,
        })
    }

    /// `/api/reports/{owner}/{repo}/{ghsa}`.
    pub fn path(&self) -> String {
        format!("/api/reports/{}/{}", self.repo, self.ghsa)
    }
}

impl std::fmt::Display for ReportRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.repo, self.ghsa)
    }
}

/// A report as `GET /api/reports` lists it (and `lockstep report list --json` prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportSummary {
    /// The repository it was filed on.
    pub repo: String,
    /// Its advisory.
    pub ghsa_id: String,
    /// The reporter's summary.
    pub summary: String,
    /// Who filed it.
    pub reporter: String,
    /// When Lockstep first saw it (RFC 3339).
    #[schema(value_type = String)]
    pub received_at: Timestamp,
    /// `new`, `accepted`, `merged` or `rejected`.
    pub state: String,
    /// The case it opened or joined.
    pub case_id: Option<String>,
}

/// `GET /api/reports`: `{"reports": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportList {
    /// The reports the caller may read, oldest first.
    pub reports: Vec<ReportSummary>,
}

/// One out-of-scope rule of a workflow's written policy: a choice when triaging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    /// The workflow it belongs to.
    pub workflow: String,
    /// Its id (`report reject --rule ID`).
    pub id: String,
    /// What it excludes.
    pub summary: String,
    /// What the reporter is told.
    pub guidance: String,
}

/// `GET /api/reports/{owner}/{repo}/{ghsa}` (and the answer to `reject`): the report, and the
/// triage rules of its workflows as the choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportView {
    /// The summary fields.
    #[serde(flatten)]
    #[schema(inline)]
    pub summary: ReportSummary,
    /// The reporter's description (Markdown).
    pub description: String,
    /// The reporter's severity, or the one their CVSS vector gives.
    pub severity: Option<String>,
    /// The reporter's CVSS vector.
    pub cvss: Option<String>,
    /// CWE ids.
    pub cwes: Vec<String>,
    /// Credits as `LOGIN:TYPE`.
    pub credits: Vec<String>,
    /// Its Vultron RM state.
    pub rm: String,
    /// The decision: who, when, why, under which rule.
    #[schema(value_type = Option<Object>)]
    pub decision: Option<serde_json::Value>,
    /// A rejection's close on GitHub: `pending`, `done` or `failed`.
    pub close_state: Option<String>,
    /// Why that close failed.
    pub close_error: Option<String>,
    /// The workflows that list its repository.
    pub workflows: Vec<String>,
    /// The out-of-scope rules of those workflows.
    pub rules: Vec<RuleView>,
}

/// `POST /api/reports/{owner}/{repo}/{ghsa}/reject`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectReport {
    /// Why (recorded in the audit trail).
    pub reason: String,
    /// The out-of-scope rule it falls under, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// `POST /api/reports/{owner}/{repo}/{ghsa}/merge`: a second report of a case's
/// vulnerability. The answer is the case, as an action's ([`Acted`]).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeReport {
    /// The case.
    pub case: String,
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
