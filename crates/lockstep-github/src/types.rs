//! The adapter's own request and response types (independent of octocrab's models and of
//! lockstep-core). Advisory text is embargoed: `Debug` prints lengths, never content.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

// ------------------------------------------------------------------ names

fn valid_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A repository `owner/name`, validated so it can be put in a URL path as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    /// Parses `owner/name`.
    pub fn parse(full: &str) -> Result<Self> {
        let (o, n) = full
            .split_once('/')
            .ok_or_else(|| Error::InvalidInput(format!("repository {full:?} is not owner/name")))?;
        if !valid_name_part(o, 39) || !valid_name_part(n, 100) {
            return Err(Error::InvalidInput(format!(
                "repository {full:?} has an invalid owner or name"
            )));
        }
        Ok(Self {
            owner: o.to_owned(),
            name: n.to_owned(),
        })
    }

    /// The owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> Self {
        r.to_string()
    }
}

/// Checks a GHSA id (`GHSA-xxxx-xxxx-xxxx`) before it goes into a URL path.
pub(crate) fn check_ghsa(ghsa: &str) -> Result<()> {
    let ok = ghsa.len() <= 64
        && ghsa
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("GHSA-"))
        && ghsa.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("{ghsa:?} is not a GHSA id")))
    }
}

/// Checks a login before it goes into a URL path.
pub(crate) fn check_login(login: &str) -> Result<()> {
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("{login:?} is not a login")))
    }
}

// ------------------------------------------------------------------ enums

/// Advisory severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// critical
    Critical,
    /// high
    High,
    /// medium
    Medium,
    /// low
    Low,
}

impl Severity {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// Severity or a CVSS vector: GitHub takes exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// A plain severity.
    Severity(Severity),
    /// A CVSS vector (`CVSS:3.1/...` or `CVSS:4.0/...`); GitHub derives the severity.
    Cvss(String),
}

/// Package ecosystems GitHub accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Ecosystem {
    Rubygems,
    Npm,
    Pip,
    Maven,
    Nuget,
    Composer,
    Go,
    Rust,
    Erlang,
    Actions,
    Pub,
    Other,
    Swift,
}

/// Credit types GitHub accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum CreditType {
    Analyst,
    Finder,
    Reporter,
    Coordinator,
    RemediationDeveloper,
    RemediationReviewer,
    RemediationVerifier,
    Tool,
    Sponsor,
    Other,
}

/// A credit to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The credited login.
    pub login: String,
    /// The kind of credit.
    #[serde(rename = "type")]
    pub credit_type: CreditType,
}

/// An affected package to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Package name.
    pub name: String,
    /// Vulnerable range, e.g. `< 1.2.3`.
    pub vulnerable_version_range: Option<String>,
    /// Patched versions, e.g. `1.2.3`.
    pub patched_versions: Option<String>,
    /// Affected functions.
    pub vulnerable_functions: Vec<String>,
}

impl Vulnerability {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "package".into(),
            json!({"ecosystem": self.ecosystem, "name": self.name}),
        );
        m.insert(
            "vulnerable_version_range".into(),
            json!(self.vulnerable_version_range),
        );
        m.insert("patched_versions".into(), json!(self.patched_versions));
        if !self.vulnerable_functions.is_empty() {
            m.insert(
                "vulnerable_functions".into(),
                json!(self.vulnerable_functions),
            );
        }
        Value::Object(m)
    }
}

// ------------------------------------------------------------------ requests

/// The body of a draft creation (`repository-advisory-create`).
#[derive(Clone, PartialEq, Eq)]
pub struct NewAdvisory {
    /// Summary (≤ 1024 chars).
    pub summary: String,
    /// Description (≤ 65535 chars); must contain the Lockstep marker.
    pub description: String,
    /// Severity or CVSS (optional at draft time).
    pub rating: Option<Rating>,
    /// A CVE id already assigned elsewhere.
    pub cve_id: Option<String>,
    /// CWE ids, e.g. `CWE-79`.
    pub cwe_ids: Vec<String>,
    /// Credits.
    pub credits: Vec<Credit>,
    /// Affected packages (required by GitHub; may be empty).
    pub vulnerabilities: Vec<Vulnerability>,
    /// Ask GitHub to create the temporary private fork right away.
    pub start_private_fork: bool,
}

impl fmt::Debug for NewAdvisory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAdvisory")
            .field("summary", &format_args!("<{} bytes>", self.summary.len()))
            .field(
                "description",
                &format_args!("<{} bytes>", self.description.len()),
            )
            .field("rating", &self.rating)
            .field("cwe_ids", &self.cwe_ids)
            .field("credits", &self.credits.len())
            .field("vulnerabilities", &self.vulnerabilities.len())
            .finish_non_exhaustive()
    }
}

impl NewAdvisory {
    /// The JSON body sent to `POST /repos/{o}/{r}/security-advisories`.
    pub fn to_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("summary".into(), json!(self.summary));
        m.insert("description".into(), json!(self.description));
        m.insert(
            "vulnerabilities".into(),
            Value::Array(
                self.vulnerabilities
                    .iter()
                    .map(Vulnerability::to_json)
                    .collect(),
            ),
        );
        match &self.rating {
            Some(Rating::Severity(s)) => {
                m.insert("severity".into(), json!(s.as_str()));
            }
            Some(Rating::Cvss(v)) => {
                m.insert("cvss_vector_string".into(), json!(v));
            }
            None => {}
        }
        if let Some(c) = &self.cve_id {
            m.insert("cve_id".into(), json!(c));
        }
        if !self.cwe_ids.is_empty() {
            m.insert("cwe_ids".into(), json!(self.cwe_ids));
        }
        if !self.credits.is_empty() {
            m.insert("credits".into(), json!(self.credits));
        }
        if self.start_private_fork {
            m.insert("start_private_fork".into(), json!(true));
        }
        Value::Object(m)
    }
}

/// A field of a PATCH: leave it, clear it (explicit JSON `null`), or set it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldUpdate<T> {
    /// Not sent.
    #[default]
    Keep,
    /// Sent as `null`.
    Clear,
    /// Sent with this value.
    Set(T),
}

impl<T: Serialize> FieldUpdate<T> {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        match self {
            Self::Keep => {}
            Self::Clear => {
                m.insert(key.into(), Value::Null);
            }
            Self::Set(v) => {
                m.insert(key.into(), json!(v));
            }
        }
    }
}

/// The state a PATCH may move an advisory to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Publish.
    Published,
    /// Close.
    Closed,
    /// Reopen (closed → draft) or accept a report (triage → draft).
    Draft,
}

/// The body of an update (`repository-advisory-update`). Arrays replace the stored
/// arrays wholesale; `FieldUpdate::Clear` sends an explicit `null`, which octocrab's
/// typed `UpdateRepositoryAdvisory` cannot.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AdvisoryUpdate {
    /// New summary.
    pub summary: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New rating: a severity also sends `cvss_vector_string: null` (so switching from a
    /// vector works); a vector makes GitHub derive the severity.
    pub rating: Option<Rating>,
    /// CVE id.
    pub cve_id: FieldUpdate<String>,
    /// Affected packages (whole array).
    pub vulnerabilities: Option<Vec<Vulnerability>>,
    /// CWE ids (whole array).
    pub cwe_ids: FieldUpdate<Vec<String>>,
    /// Credits (whole array).
    pub credits: FieldUpdate<Vec<Credit>>,
    /// State change.
    pub state: Option<TargetState>,
    /// Collaborating users (logins, whole array).
    pub collaborating_users: FieldUpdate<Vec<String>>,
    /// Collaborating teams (slugs, whole array).
    pub collaborating_teams: FieldUpdate<Vec<String>>,
}

impl fmt::Debug for AdvisoryUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvisoryUpdate")
            .field("summary", &self.summary.as_ref().map(String::len))
            .field("description", &self.description.as_ref().map(String::len))
            .field("rating", &self.rating)
            .field("state", &self.state)
            .field("collaborating_users", &self.collaborating_users)
            .finish_non_exhaustive()
    }
}

impl AdvisoryUpdate {
    /// True if nothing would be sent.
    pub fn is_empty(&self) -> bool {
        self.to_body().as_object().is_none_or(Map::is_empty)
    }

    /// The JSON body sent to `PATCH …/security-advisories/{ghsa_id}`.
    pub fn to_body(&self) -> Value {
        let mut m = Map::new();
        if let Some(s) = &self.summary {
            m.insert("summary".into(), json!(s));
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        match &self.rating {
            Some(Rating::Severity(s)) => {
                m.insert("severity".into(), json!(s.as_str()));
                m.insert("cvss_vector_string".into(), Value::Null);
            }
            Some(Rating::Cvss(v)) => {
                m.insert("cvss_vector_string".into(), json!(v));
            }
            None => {}
        }
        self.cve_id.put(&mut m, "cve_id");
        if let Some(v) = &self.vulnerabilities {
            m.insert(
                "vulnerabilities".into(),
                Value::Array(v.iter().map(Vulnerability::to_json).collect()),
            );
        }
        self.cwe_ids.put(&mut m, "cwe_ids");
        self.credits.put(&mut m, "credits");
        if let Some(s) = self.state {
            m.insert("state".into(), json!(s));
        }
        self.collaborating_users.put(&mut m, "collaborating_users");
        self.collaborating_teams.put(&mut m, "collaborating_teams");
        Value::Object(m)
    }
}

/// Whether a write is the first try or a retry after an unknown outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// Nothing was sent before: write directly.
    #[default]
    First,
    /// An earlier attempt may have been applied: reconcile (read GitHub) before writing.
    Retry,
}

/// Filters of the advisory list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this state (`None`: every state the caller can see).
    pub state: Option<AdvisoryState>,
    /// Page size, 1–100 (default 100).
    pub per_page: Option<u8>,
}

// ------------------------------------------------------------------ responses

/// Advisory state as GitHub reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum AdvisoryState {
    /// draft
    Draft,
    /// published
    Published,
    /// closed
    Closed,
    /// withdrawn
    Withdrawn,
    /// triage (a private vulnerability report)
    Triage,
    /// Something newer than this crate.
    Unknown(String),
}

impl AdvisoryState {
    /// Parses GitHub's spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "draft" => Self::Draft,
            "published" => Self::Published,
            "closed" => Self::Closed,
            "withdrawn" => Self::Withdrawn,
            "triage" => Self::Triage,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// GitHub's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
            Self::Triage => "triage",
            Self::Unknown(s) => s,
        }
    }
}

impl From<AdvisoryState> for String {
    fn from(s: AdvisoryState) -> Self {
        s.as_str().to_owned()
    }
}

impl<'de> Deserialize<'de> for AdvisoryState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// A credit as GitHub returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryCredit {
    /// Login.
    pub login: String,
    /// Type, as GitHub spells it.
    pub credit_type: String,
}

/// An affected package as GitHub returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryVulnerability {
    /// Ecosystem, as GitHub spells it.
    pub ecosystem: Option<String>,
    /// Package name.
    pub name: Option<String>,
    /// Vulnerable range.
    pub vulnerable_version_range: Option<String>,
    /// Patched versions.
    pub patched_versions: Option<String>,
    /// Affected functions.
    pub vulnerable_functions: Vec<String>,
}

/// A pull request, as much of it as the preflight needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
}

/// A repository (the temporary private fork).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    /// `owner/name`.
    pub full_name: String,
    /// Web URL.
    pub html_url: Option<String>,
    /// Private?
    pub private: Option<bool>,
}

/// A repository security advisory, as the engine needs it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Advisory {
    /// GHSA id.
    pub ghsa_id: String,
    /// CVE id, once assigned.
    pub cve_id: Option<String>,
    /// API URL.
    pub url: Option<String>,
    /// Web URL.
    pub html_url: Option<String>,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: Option<String>,
    /// Severity (derived from CVSS when a vector is set).
    pub severity: Option<String>,
    /// CVSS vector (v3 or v4, whichever is set; v4 preferred).
    pub cvss_vector_string: Option<String>,
    /// State.
    pub state: AdvisoryState,
    /// CWE ids.
    pub cwe_ids: Vec<String>,
    /// Credits.
    pub credits: Vec<AdvisoryCredit>,
    /// Credited logins whose credit is not accepted (`credits_detailed[].state`); GitHub
    /// drops these credits when the advisory is published.
    pub unaccepted_credits: Vec<String>,
    /// Affected packages.
    pub vulnerabilities: Vec<AdvisoryVulnerability>,
    /// Collaborating user logins.
    pub collaborating_users: Vec<String>,
    /// Collaborating team slugs.
    pub collaborating_teams: Vec<String>,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// Published.
    pub published_at: Option<DateTime<Utc>>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// The temporary private fork, once GitHub made it.
    pub private_fork: Option<RepoRef>,
    /// Who wrote it: for a private vulnerability report, the reporter.
    pub author: Option<String>,
    /// For a private vulnerability report: whether the maintainers accepted it
    /// (`submission.accepted`); `None` for an advisory that was never a report.
    pub submission_accepted: Option<bool>,
}

impl fmt::Debug for Advisory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advisory")
            .field("ghsa_id", &self.ghsa_id)
            .field("cve_id", &self.cve_id)
            .field("state", &self.state)
            .field("severity", &self.severity)
            .field("summary", &format_args!("<{} bytes>", self.summary.len()))
            .field(
                "description",
                &format_args!(
                    "<{} bytes>",
                    self.description.as_ref().map_or(0, String::len)
                ),
            )
            .field("collaborating_users", &self.collaborating_users)
            .finish_non_exhaustive()
    }
}

impl Advisory {
    /// True if the description contains `marker`.
    pub fn has_marker(&self, marker: &str) -> bool {
        !marker.is_empty()
            && self
                .description
                .as_deref()
                .is_some_and(|d| d.contains(marker))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireLogin {
    login: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireTeam {
    slug: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireCredit {
    login: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireCreditDetailed {
    user: Option<WireLogin>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePackage {
    ecosystem: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireVuln {
    package: Option<WirePackage>,
    vulnerable_version_range: Option<String>,
    patched_versions: Option<String>,
    vulnerable_functions: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireVector {
    vector_string: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireSeverities {
    cvss_v3: Option<WireVector>,
    cvss_v4: Option<WireVector>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireRepo {
    full_name: Option<String>,
    html_url: Option<String>,
    private: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireAdvisory {
    ghsa_id: Option<String>,
    cve_id: Option<String>,
    url: Option<String>,
    html_url: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    severity: Option<String>,
    state: Option<String>,
    cvss: Option<WireVector>,
    cvss_severities: Option<WireSeverities>,
    cwe_ids: Option<Vec<String>>,
    credits: Option<Vec<WireCredit>>,
    credits_detailed: Option<Vec<WireCreditDetailed>>,
    vulnerabilities: Option<Vec<WireVuln>>,
    collaborating_users: Option<Vec<WireLogin>>,
    collaborating_teams: Option<Vec<WireTeam>>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    published_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    withdrawn_at: Option<DateTime<Utc>>,
    private_fork: Option<WireRepo>,
    author: Option<WireLogin>,
    submission: Option<WireSubmission>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireSubmission {
    accepted: Option<bool>,
}

impl<'de> Deserialize<'de> for Advisory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireAdvisory::deserialize(d)?;
        let ghsa_id = w
            .ghsa_id
            .ok_or_else(|| de::Error::missing_field("ghsa_id"))?;
        let cvss_vector_string = w
            .cvss_severities
            .as_ref()
            .and_then(|s| {
                s.cvss_v4
                    .as_ref()
                    .and_then(|v| v.vector_string.clone())
                    .or_else(|| s.cvss_v3.as_ref().and_then(|v| v.vector_string.clone()))
            })
            .or_else(|| w.cvss.and_then(|v| v.vector_string));
        Ok(Self {
            ghsa_id,
            cve_id: w.cve_id,
            url: w.url,
            html_url: w.html_url,
            summary: w.summary.unwrap_or_default(),
            description: w.description,
            severity: w.severity,
            cvss_vector_string,
            state: AdvisoryState::parse(w.state.as_deref().unwrap_or("")),
            cwe_ids: w.cwe_ids.unwrap_or_default(),
            credits: w
                .credits
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| {
                    Some(AdvisoryCredit {
                        login: c.login?,
                        credit_type: c.kind.unwrap_or_default(),
                    })
                })
                .collect(),
            unaccepted_credits: w
                .credits_detailed
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.state.as_deref() != Some("accepted"))
                .filter_map(|c| c.user.and_then(|u| u.login))
                .collect(),
            vulnerabilities: w
                .vulnerabilities
                .unwrap_or_default()
                .into_iter()
                .map(|v| {
                    let p = v.package.unwrap_or_default();
                    AdvisoryVulnerability {
                        ecosystem: p.ecosystem,
                        name: p.name,
                        vulnerable_version_range: v.vulnerable_version_range,
                        patched_versions: v.patched_versions,
                        vulnerable_functions: v.vulnerable_functions.unwrap_or_default(),
                    }
                })
                .collect(),
            collaborating_users: w
                .collaborating_users
                .unwrap_or_default()
                .into_iter()
                .filter_map(|u| u.login)
                .collect(),
            collaborating_teams: w
                .collaborating_teams
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.slug)
                .collect(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            published_at: w.published_at,
            closed_at: w.closed_at,
            withdrawn_at: w.withdrawn_at,
            author: w.author.and_then(|a| a.login),
            submission_accepted: w.submission.and_then(|s| s.accepted),
            private_fork: w.private_fork.and_then(|r| {
                Some(RepoRef {
                    full_name: r.full_name?,
                    html_url: r.html_url,
                    private: r.private,
                })
            }),
        })
    }
}

/// The authenticated identity (`GET /user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login.
    pub login: String,
    /// Numeric id.
    #[serde(default)]
    pub id: u64,
    /// `User`, `Bot`, `Organization`.
    #[serde(rename = "type", default)]
    pub account_type: Option<String>,
}

/// A user's permission on a repository
/// (`GET /repos/{o}/{r}/collaborators/{u}/permission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoPermission {
    /// Legacy permission: `admin`, `write`, `read` or `none`.
    pub permission: String,
    /// Role name: `admin`, `maintain`, `write`, `triage`, `read`, or a custom role.
    #[serde(default)]
    pub role_name: Option<String>,
}

impl RepoPermission {
    /// Admin: may create, publish and close advisories.
    pub fn is_admin(&self) -> bool {
        self.permission == "admin" || self.role_name.as_deref() == Some("admin")
    }

    /// At least write.
    pub fn can_write(&self) -> bool {
        matches!(self.permission.as_str(), "admin" | "write")
    }
}

/// Outcome of a CVE request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CveRequest {
    /// GitHub accepted the request (202).
    Requested,
    /// A CVE was already requested or assigned (422 `already_exists`): nothing to do.
    AlreadyRequested,
}

/// How a draft creation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftOrigin {
    /// This call created it.
    Created,
    /// A draft carrying the marker already existed (an earlier attempt's) and was adopted.
    Adopted,
}
