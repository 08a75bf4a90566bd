//! Stored entities (accounts, repositories, teams, advisories) and their JSON rendering
//! in GitHub's shapes (`simple-user`, `simple-repository`, `team`, `repository-advisory`).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Repository permission levels, ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read (pull).
    Read,
    /// Triage.
    Triage,
    /// Write (push).
    Write,
    /// Maintain.
    Maintain,
    /// Admin.
    Admin,
}

impl Permission {
    /// Role name as GitHub spells it (`role_name`).
    pub fn role_name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Write => "write",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }

    /// Legacy `permission` value of the collaborator-permission endpoint
    /// (maintain → write, triage → read).
    pub fn legacy_name(self) -> &'static str {
        match self {
            Self::Read | Self::Triage => "read",
            Self::Write | Self::Maintain => "write",
            Self::Admin => "admin",
        }
    }
}

/// Organisation-level roles relevant to advisories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// Plain member (no advisory rights by itself).
    Member,
    /// Security manager: advisory admin on every repository of the org.
    SecurityManager,
    /// Owner: admin on every repository of the org.
    Owner,
}

/// Kind of account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    /// A user.
    User,
    /// A bot (GitHub App actor).
    Bot,
    /// An organisation (repository owner).
    Organization,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Bot => "Bot",
            Self::Organization => "Organization",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub(crate) id: u64,
    pub(crate) login: String,
    pub(crate) kind: AccountKind,
}

#[derive(Clone, Debug)]
pub(crate) struct Team {
    pub(crate) id: u64,
    pub(crate) org: String,
    pub(crate) slug: String,
    pub(crate) members: Vec<String>,
}

/// Advisory states (`repository-advisory.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvisoryState {
    /// Private vulnerability report awaiting triage.
    Triage,
    /// Draft (private).
    Draft,
    /// Published (public).
    Published,
    /// Closed (private).
    Closed,
    /// Withdrawn (only GitHub can do this).
    Withdrawn,
}

impl AdvisoryState {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triage => "triage",
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "triage" => Self::Triage,
            "draft" => Self::Draft,
            "published" => Self::Published,
            "closed" => Self::Closed,
            "withdrawn" => Self::Withdrawn,
            _ => return None,
        })
    }

    /// Published and withdrawn advisories are public.
    pub fn is_public(self) -> bool {
        matches!(self, Self::Published | Self::Withdrawn)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Vuln {
    pub(crate) ecosystem: String,
    pub(crate) name: Option<String>,
    pub(crate) vulnerable_version_range: Option<String>,
    pub(crate) patched_versions: Option<String>,
    pub(crate) vulnerable_functions: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Credit {
    pub(crate) login: String,
    pub(crate) kind: String,
    pub(crate) state: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cvss {
    pub(crate) vector: String,
    pub(crate) score: f64,
    pub(crate) v4: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Fork {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) ready_at: Instant,
}

#[derive(Clone, Debug)]
pub(crate) struct Advisory {
    pub(crate) seq: u64,
    pub(crate) ghsa_id: String,
    pub(crate) cve_id: Option<String>,
    pub(crate) summary: String,
    pub(crate) description: String,
    /// Explicit severity (only when no CVSS vector is set).
    pub(crate) severity: Option<String>,
    pub(crate) cvss: Option<Cvss>,
    pub(crate) author: Option<String>,
    pub(crate) publisher: Option<String>,
    pub(crate) state: AdvisoryState,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) published_at: Option<DateTime<Utc>>,
    pub(crate) closed_at: Option<DateTime<Utc>>,
    pub(crate) withdrawn_at: Option<DateTime<Utc>>,
    pub(crate) submission_accepted: Option<bool>,
    pub(crate) vulnerabilities: Vec<Vuln>,
    pub(crate) cwe_ids: Vec<String>,
    pub(crate) credits: Vec<Credit>,
    pub(crate) collaborating_users: Option<Vec<String>>,
    pub(crate) collaborating_teams: Option<Vec<String>>,
    pub(crate) private_fork: Option<Fork>,
    /// A CVE was requested and not yet assigned.
    pub(crate) cve_pending: bool,
}

impl Advisory {
    /// Severity as rendered: explicit, or derived from the CVSS score.
    pub(crate) fn effective_severity(&self) -> Option<String> {
        match &self.cvss {
            Some(c) => Some(severity_from_score(c.score).to_owned()),
            None => self.severity.clone(),
        }
    }
}

pub(crate) fn severity_from_score(score: f64) -> &'static str {
    if score >= 9.0 {
        "critical"
    } else if score >= 7.0 {
        "high"
    } else if score >= 4.0 {
        "medium"
    } else {
        "low"
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Repo {
    pub(crate) id: u64,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) private: bool,
    pub(crate) pvr_enabled: bool,
    /// Lower-cased login → permission.
    pub(crate) perms: BTreeMap<String, Permission>,
    /// Upper-cased GHSA id → advisory.
    pub(crate) advisories: BTreeMap<String, Advisory>,
    /// The template private vulnerability reports must follow, if any.
    pub(crate) report_template: Option<ReportTemplate>,
}

/// A repository's private-vulnerability-report template: the sections a report's
/// description must have, in this order. A section is a Markdown heading (`## Impact`,
/// any level) followed by its text up to the next heading.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTemplate {
    /// The sections, in order.
    pub sections: Vec<TemplateSection>,
}

/// One section of a [`ReportTemplate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSection {
    /// The heading text.
    pub name: String,
    /// The section must be present and not empty.
    pub required: bool,
    /// Checkbox options the reporter must tick in this section (`- [x] {option}`).
    pub required_options: Vec<String>,
}

/// One violation of a report template (`errors[]` item of
/// `repository-advisory-description-validation-error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateViolation {
    pub(crate) code: &'static str,
    pub(crate) section: String,
    pub(crate) option: Option<String>,
}

/// Splits a Markdown description into `(heading, body)` sections.
fn sections(description: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in description.lines() {
        let t = line.trim_start();
        let hashes = t.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            out.push((
                t[hashes..].trim().trim_end_matches('#').trim().to_owned(),
                String::new(),
            ));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn ticked(body: &str, option: &str) -> bool {
    body.lines().any(|l| {
        let l = l.trim_start().trim_start_matches(['-', '*']).trim_start();
        (l.starts_with("[x]") || l.starts_with("[X]")) && l[3..].trim() == option.trim()
    })
}

impl ReportTemplate {
    /// Every way `description` fails the template (empty when it follows it).
    pub(crate) fn check(&self, description: &str) -> Vec<TemplateViolation> {
        let found = sections(description);
        let pos = |name: &str| found.iter().position(|(h, _)| h.eq_ignore_ascii_case(name));
        let mut out = Vec::new();
        let mut last: Option<usize> = None;
        let mut out_of_order_reported = false;
        for sec in &self.sections {
            let Some(i) = pos(&sec.name) else {
                if sec.required {
                    out.push(TemplateViolation {
                        code: "missing_section",
                        section: sec.name.clone(),
                        option: None,
                    });
                }
                continue;
            };
            if last.is_some_and(|l| i < l) && !out_of_order_reported {
                out_of_order_reported = true;
                out.push(TemplateViolation {
                    code: "sections_out_of_order",
                    section: sec.name.clone(),
                    option: None,
                });
            }
            last = Some(last.map_or(i, |l| l.max(i)));
            let body = &found[i].1;
            if sec.required && body.trim().is_empty() {
                out.push(TemplateViolation {
                    code: "empty_section",
                    section: sec.name.clone(),
                    option: None,
                });
            }
            for opt in &sec.required_options {
                if !ticked(body, opt) {
                    out.push(TemplateViolation {
                        code: "unchecked_required_option",
                        section: sec.name.clone(),
                        option: Some(opt.clone()),
                    });
                }
            }
        }
        out
    }
}

impl Repo {
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref().map_or(Value::Null, |t| Value::String(ts(t)))
}

/// Rendering context: base URLs.
pub(crate) struct Urls<'a> {
    pub(crate) api: &'a str,
    pub(crate) html: &'a str,
}

pub(crate) fn render_user(u: &Account, urls: &Urls<'_>) -> Value {
    let api = urls.api;
    let login = &u.login;
    let kind = u.kind.as_str();
    let node_prefix = match u.kind {
        AccountKind::Organization => "O_kgDO",
        AccountKind::Bot => "BOT_kgDO",
        AccountKind::User => "U_kgDO",
    };
    // A bot's login has brackets (`name[bot]`), which GitHub percent-encodes in URLs;
    // its page is the App's.
    let in_url = login.replace('[', "%5B").replace(']', "%5D");
    let user_base = format!("{api}/users/{in_url}");
    let html_url = match u.kind {
        AccountKind::Bot => format!(
            "{}/apps/{}",
            urls.html,
            login.strip_suffix("[bot]").unwrap_or(login)
        ),
        _ => format!("{}/{in_url}", urls.html),
    };
    json!({
        "login": login,
        "id": u.id,
        "node_id": format!("{node_prefix}{:08}", u.id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", u.id),
        "gravatar_id": "",
        "url": user_base,
        "html_url": html_url,
        "followers_url": format!("{user_base}/followers"),
        "following_url": format!("{user_base}/following{{/other_user}}"),
        "gists_url": format!("{user_base}/gists{{/gist_id}}"),
        "starred_url": format!("{user_base}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{user_base}/subscriptions"),
        "organizations_url": format!("{user_base}/orgs"),
        "repos_url": format!("{user_base}/repos"),
        "events_url": format!("{user_base}/events{{/privacy}}"),
        "received_events_url": format!("{user_base}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// `simple-repository` shape (also the base of the fuller repository objects).
pub(crate) fn render_simple_repo(
    id: u64,
    owner: &Account,
    name: &str,
    private: bool,
    fork: bool,
    urls: &Urls<'_>,
) -> Value {
    let full = format!("{}/{name}", owner.login);
    let r = format!("{}/repos/{full}", urls.api);
    json!({
        "id": id,
        "node_id": format!("R_kgDO{id:08}"),
        "name": name,
        "full_name": full,
        "owner": render_user(owner, urls),
        "private": private,
        "html_url": format!("{}/{full}", urls.html),
        "description": Value::Null,
        "fork": fork,
        "url": r,
        "archive_url": format!("{r}/{{archive_format}}{{/ref}}"),
        "assignees_url": format!("{r}/assignees{{/user}}"),
        "blobs_url": format!("{r}/git/blobs{{/sha}}"),
        "branches_url": format!("{r}/branches{{/branch}}"),
        "collaborators_url": format!("{r}/collaborators{{/collaborator}}"),
        "comments_url": format!("{r}/comments{{/number}}"),
        "commits_url": format!("{r}/commits{{/sha}}"),
        "compare_url": format!("{r}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{r}/contents/{{+path}}"),
        "contributors_url": format!("{r}/contributors"),
        "deployments_url": format!("{r}/deployments"),
        "downloads_url": format!("{r}/downloads"),
        "events_url": format!("{r}/events"),
        "forks_url": format!("{r}/forks"),
        "git_commits_url": format!("{r}/git/commits{{/sha}}"),
        "git_refs_url": format!("{r}/git/refs{{/sha}}"),
        "git_tags_url": format!("{r}/git/tags{{/sha}}"),
        "issue_comment_url": format!("{r}/issues/comments{{/number}}"),
        "issue_events_url": format!("{r}/issues/events{{/number}}"),
        "issues_url": format!("{r}/issues{{/number}}"),
        "keys_url": format!("{r}/keys{{/key_id}}"),
        "labels_url": format!("{r}/labels{{/name}}"),
        "languages_url": format!("{r}/languages"),
        "merges_url": format!("{r}/merges"),
        "milestones_url": format!("{r}/milestones{{/number}}"),
        "notifications_url": format!("{r}/notifications{{?since,all,participating}}"),
        "pulls_url": format!("{r}/pulls{{/number}}"),
        "releases_url": format!("{r}/releases{{/id}}"),
        "stargazers_url": format!("{r}/stargazers"),
        "statuses_url": format!("{r}/statuses/{{sha}}"),
        "subscribers_url": format!("{r}/subscribers"),
        "subscription_url": format!("{r}/subscription"),
        "tags_url": format!("{r}/tags"),
        "teams_url": format!("{r}/teams"),
        "trees_url": format!("{r}/git/trees{{/sha}}"),
        "hooks_url": format!("{r}/hooks"),
    })
}

/// A fuller repository object (`full-repository`-like) built on `simple-repository`.
pub(crate) fn render_full_repo(
    base: Value,
    created: &DateTime<Utc>,
    perm: Option<Permission>,
    urls: &Urls<'_>,
) -> Value {
    let mut v = base;
    let full = v["full_name"].as_str().unwrap_or_default().to_owned();
    let private = v["private"].as_bool().unwrap_or(false);
    if let Value::Object(m) = &mut v {
        let extra = json!({
            "git_url": format!("git://github.com/{full}.git"),
            "ssh_url": format!("git@github.com:{full}.git"),
            "clone_url": format!("{}/{full}.git", urls.html),
            "svn_url": format!("{}/{full}", urls.html),
            "mirror_url": Value::Null,
            "homepage": Value::Null,
            "language": Value::Null,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": "main",
            "open_issues_count": 0,
            "is_template": false,
            "topics": [],
            "has_issues": true,
            "has_projects": false,
            "has_wiki": false,
            "has_pages": false,
            "has_downloads": true,
            "has_discussions": false,
            "archived": false,
            "disabled": false,
            "visibility": if private { "private" } else { "public" },
            "pushed_at": ts(created),
            "created_at": ts(created),
            "updated_at": ts(created),
            "permissions": {
                "admin": perm >= Some(Permission::Admin),
                "maintain": perm >= Some(Permission::Maintain),
                "push": perm >= Some(Permission::Write),
                "triage": perm >= Some(Permission::Triage),
                "pull": perm >= Some(Permission::Read),
            },
            "allow_forking": true,
            "web_commit_signoff_required": false,
            "forks": 0,
            "open_issues": 0,
            "watchers": 0,
            "network_count": 0,
            "subscribers_count": 0,
        });
        if let Value::Object(e) = extra {
            m.extend(e);
        }
    }
    v
}

pub(crate) fn render_team(t: &Team, org: &Account, urls: &Urls<'_>) -> Value {
    let base = format!("{}/organizations/{}/team/{}", urls.api, org.id, t.id);
    json!({
        "id": t.id,
        "node_id": format!("T_kwDO{:08}", t.id),
        "url": base,
        "html_url": format!("{}/orgs/{}/teams/{}", urls.html, t.org, t.slug),
        "name": t.slug,
        "slug": t.slug,
        "description": Value::Null,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": format!("{base}/members{{/member}}"),
        "repositories_url": format!("{base}/repos"),
        "type": "organization",
        "organization_id": org.id,
        "parent": Value::Null,
    })
}

pub(crate) fn render_vuln(v: &Vuln) -> Value {
    json!({
        "package": {"ecosystem": v.ecosystem, "name": v.name},
        "vulnerable_version_range": v.vulnerable_version_range,
        "patched_versions": v.patched_versions,
        "vulnerable_functions": v.vulnerable_functions,
    })
}

/// Names for the CWE ids most relevant to SDK advisories; others get a generic name.
pub(crate) fn cwe_name(id: &str) -> String {
    let known: &[(&str, &str)] = &[
        ("CWE-20", "Improper Input Validation"),
        (
            "CWE-22",
            "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')",
        ),
        (
            "CWE-78",
            "Improper Neutralization of Special Elements used in an OS Command ('OS Command Injection')",
        ),
        (
            "CWE-79",
            "Improper Neutralization of Input During Web Page Generation ('Cross-site Scripting')",
        ),
        (
            "CWE-89",
            "Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')",
        ),
        (
            "CWE-94",
            "Improper Control of Generation of Code ('Code Injection')",
        ),
        (
            "CWE-200",
            "Exposure of Sensitive Information to an Unauthorized Actor",
        ),
        ("CWE-284", "Improper Access Control"),
        ("CWE-285", "Improper Authorization"),
        ("CWE-287", "Improper Authentication"),
        ("CWE-346", "Origin Validation Error"),
        (
            "CWE-350",
            "Reliance on Reverse DNS Resolution for a Security-Critical Action",
        ),
        ("CWE-400", "Uncontrolled Resource Consumption"),
        ("CWE-502", "Deserialization of Untrusted Data"),
        (
            "CWE-601",
            "URL Redirection to Untrusted Site ('Open Redirect')",
        ),
        (
            "CWE-770",
            "Allocation of Resources Without Limits or Throttling",
        ),
        ("CWE-918", "Server-Side Request Forgery (SSRF)"),
        (
            "CWE-1101",
            "DEPRECATED: Technology-Specific Special Elements",
        ),
        (
            "CWE-1188",
            "Initialization of a Resource with an Insecure Default",
        ),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map_or_else(|| format!("Weakness {id}"), |(_, n)| (*n).to_owned())
}

/// Everything `render_advisory` needs besides the advisory.
pub(crate) struct AdvisoryCtx<'a> {
    pub(crate) urls: Urls<'a>,
    pub(crate) repo: &'a Repo,
    pub(crate) owner: &'a Account,
    pub(crate) accounts: &'a BTreeMap<String, Account>,
    pub(crate) teams: &'a BTreeMap<(String, String), Team>,
    pub(crate) now: Instant,
    /// Omit the deprecated `cvss` key (API version 2026-03-10).
    pub(crate) drop_cvss: bool,
}

pub(crate) fn render_advisory(a: &Advisory, c: &AdvisoryCtx<'_>) -> Value {
    let urls = &c.urls;
    let full = c.repo.full_name();
    let user = |login: &str| -> Value {
        c.accounts
            .get(&login.to_ascii_lowercase())
            .map_or(Value::Null, |u| render_user(u, urls))
    };
    let mut identifiers = vec![json!({"type": "GHSA", "value": a.ghsa_id})];
    if let Some(cve) = &a.cve_id {
        identifiers.push(json!({"type": "CVE", "value": cve}));
    }
    let (v3, v4) = match &a.cvss {
        Some(cv) if cv.v4 => (None, Some(cv)),
        Some(cv) => (Some(cv), None),
        None => (None, None),
    };
    let score_obj = |c: Option<&Cvss>| match c {
        Some(c) => json!({"vector_string": c.vector, "score": c.score}),
        None => json!({"vector_string": Value::Null, "score": Value::Null}),
    };
    let credits: Vec<Value> = a
        .credits
        .iter()
        .map(|cr| json!({"login": cr.login, "type": cr.kind}))
        .collect();
    let credits_detailed: Vec<Value> = a
        .credits
        .iter()
        .filter_map(|cr| {
            let u = user(&cr.login);
            (!u.is_null()).then(|| json!({"user": u, "type": cr.kind, "state": cr.state}))
        })
        .collect();
    let collaborating_users = a.collaborating_users.as_ref().map(|v| {
        v.iter()
            .map(|l| user(l))
            .filter(|u| !u.is_null())
            .collect::<Vec<_>>()
    });
    let collaborating_teams = a.collaborating_teams.as_ref().map(|v| {
        v.iter()
            .filter_map(|slug| {
                c.teams
                    .get(&(c.repo.owner.to_ascii_lowercase(), slug.to_ascii_lowercase()))
            })
            .map(|t| render_team(t, c.owner, urls))
            .collect::<Vec<_>>()
    });
    let private_fork = a
        .private_fork
        .as_ref()
        .filter(|f| f.ready_at <= c.now)
        .map_or(Value::Null, |f| {
            render_simple_repo(f.id, c.owner, &f.name, true, true, urls)
        });
    let mut v = json!({
        "ghsa_id": a.ghsa_id,
        "cve_id": a.cve_id,
        "url": format!("{}/repos/{full}/security-advisories/{}", urls.api, a.ghsa_id),
        "html_url": format!("{}/{full}/security/advisories/{}", urls.html, a.ghsa_id),
        "summary": a.summary,
        "description": a.description,
        "severity": a.effective_severity(),
        "author": a.author.as_deref().map_or(Value::Null, user),
        "publisher": a.publisher.as_deref().map_or(Value::Null, user),
        "identifiers": identifiers,
        "state": a.state.as_str(),
        "created_at": ts(&a.created_at),
        "updated_at": ts(&a.updated_at),
        "published_at": opt_ts(&a.published_at),
        "closed_at": opt_ts(&a.closed_at),
        "withdrawn_at": opt_ts(&a.withdrawn_at),
        "submission": a.submission_accepted.map_or(Value::Null, |acc| json!({"accepted": acc})),
        "vulnerabilities": a.vulnerabilities.iter().map(render_vuln).collect::<Vec<_>>(),
        "cvss": score_obj(v3),
        "cvss_severities": {"cvss_v3": score_obj(v3), "cvss_v4": score_obj(v4)},
        "cwes": a.cwe_ids.iter().map(|id| json!({"cwe_id": id, "name": cwe_name(id)})).collect::<Vec<_>>(),
        "cwe_ids": a.cwe_ids,
        "credits": credits,
        "credits_detailed": credits_detailed,
        "collaborating_users": collaborating_users,
        "collaborating_teams": collaborating_teams,
        "private_fork": private_fork,
    });
    if c.drop_cvss
        && let Value::Object(m) = &mut v
    {
        m.remove("cvss");
    }
    v
}
