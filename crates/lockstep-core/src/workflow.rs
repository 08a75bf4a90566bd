//! Workflow files (`workflows/*.toml`): which repositories take part in a case, their packages
//! and maintainers, the order in which their advisories may publish, and the embargo policy.
//!
//! Parsing takes the file's text and a name for it; the core reads no files. Every error
//! names the file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::ids::{Login, RepoId};
use crate::schedule::Schedule;
use crate::vuln::Ecosystem;

/// What happens when the embargo's deadline passes before every affected repository has a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlinePolicy {
    /// Keep holding every advisory and alert the coordinators.
    HoldAll,
    /// Publish the advisories whose fixes are released; report the rest.
    PublishReady,
}

/// When a draft asks GitHub for its CVE id (the workflow's `cve` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CvePolicy {
    /// Once the repository is assessed affected (or its fix is marked); never for one that is
    /// not affected. The default.
    OnAffected,
    /// As soon as the draft opens, whatever the assessment.
    AtOpen,
    /// Never: the organisation is its own CNA and assigns CVE ids itself.
    Never,
}

impl CvePolicy {
    /// What a case recorded before the setting existed did: request at open.
    fn recorded_before_the_setting() -> CvePolicy {
        CvePolicy::AtOpen
    }
}

/// The workflow's embargo policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbargoPolicy {
    /// Days from opening to the default deadline.
    pub default_days: u32,
    /// No deadline may lie further than this many days after opening.
    pub max_days: u32,
    /// What the deadline does.
    pub deadline_policy: DeadlinePolicy,
    /// Whether observed attacks end the embargo (Vultron: SHOULD; default true).
    pub end_on_attacks: bool,
}

/// One repository of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSpec {
    /// GitHub's advisory ecosystem of its packages.
    pub ecosystem: Ecosystem,
    /// Package names as advisories name them.
    pub packages: Vec<String>,
    /// Logins allowed to act for this repository. `None`: whoever GitHub reports with admin or
    /// maintain permission.
    pub maintainers: Option<BTreeSet<Login>>,
    /// Repositories whose advisories must publish before this one's.
    pub publish_after: BTreeSet<RepoId>,
}

/// One kind of report the written security policy puts out of scope (`[[triage.out_of_scope]]`):
/// offered as a choice when a report is triaged, and recorded with a rejection under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfScopeRule {
    /// A short stable id (`a-z`, `0-9`, `-`), named by `report reject --rule`.
    pub id: String,
    /// What the policy excludes, in a line.
    pub summary: String,
    /// What to tell the reporter (where to file it instead).
    pub guidance: String,
}

/// How reports are triaged (`[triage]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriagePolicy {
    /// The policy's out-of-scope rules.
    #[serde(default)]
    pub out_of_scope: Vec<OutOfScopeRule>,
    /// Whether a case opened from a report makes the reporter a collaborator on every sibling
    /// draft (default true, as OpenSSF's CVD guidance recommends).
    #[serde(default = "yes")]
    pub reporter_collaborates: bool,
}

fn yes() -> bool {
    true
}

impl Default for TriagePolicy {
    fn default() -> Self {
        Self {
            out_of_scope: Vec::new(),
            reporter_collaborates: true,
        }
    }
}

impl TriagePolicy {
    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&OutOfScopeRule> {
        self.out_of_scope.iter().find(|r| r.id == id)
    }
}

/// A parsed and validated workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// Its name.
    pub name: String,
    /// Logins that may do anything in a case of this workflow.
    pub coordinators: BTreeSet<Login>,
    /// The embargo policy.
    pub embargo: EmbargoPolicy,
    /// When drafts request their CVE ids. A case recorded before this setting existed keeps
    /// what it did then (`at-open`).
    #[serde(default = "CvePolicy::recorded_before_the_setting")]
    pub cve: CvePolicy,
    /// The repositories, by id.
    pub repos: BTreeMap<RepoId, RepoSpec>,
    /// Following the advisories into GitHub's global database (`[propagation]`).
    #[serde(default)]
    pub propagation: crate::propagation::PropagationPolicy,
    /// How reports are triaged (`[triage]`).
    #[serde(default)]
    pub triage: TriagePolicy,
}

/// A workflow file that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowError {
    /// The file's name as given to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: Spanned<String>,
    coordinators: Spanned<Vec<Spanned<String>>>,
    embargo: Spanned<RawEmbargo>,
    #[serde(default)]
    cve: Option<Spanned<String>>,
    propagation: Option<RawPropagation>,
    #[serde(default)]
    triage: Option<RawTriage>,
    #[serde(default)]
    repo: Vec<Spanned<RawRepo>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriage {
    #[serde(default)]
    reporter_collaborates: Option<bool>,
    #[serde(default)]
    out_of_scope: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    summary: Spanned<String>,
    guidance: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPropagation {
    #[serde(default)]
    alert_after_hours: Option<Spanned<i64>>,
    #[serde(default)]
    auto_close: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmbargo {
    default_days: Spanned<i64>,
    max_days: Spanned<i64>,
    deadline_policy: Spanned<String>,
    #[serde(default)]
    end_on_attacks: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: Spanned<String>,
    ecosystem: Spanned<String>,
    packages: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    maintainers: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    publish_after: Vec<Spanned<String>>,
}

/// Longest embargo a workflow may allow: Vultron's one-year ceiling.
pub const MAX_EMBARGO_DAYS: u32 = 365;

impl Workflow {
    /// Parses and validates a workflow file's text. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Workflow, WorkflowError> {
        let err = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            WorkflowError {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawWorkflow = toml::from_str(text)
            .map_err(|e| err(e.span().unwrap_or(0..0), e.message().trim().to_owned()))?;

        let name = raw.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(err(raw.name.span(), "`name` is empty".into()));
        }
        let mut coordinators = BTreeSet::new();
        for c in raw.coordinators.get_ref() {
            let login = c
                .get_ref()
                .parse::<Login>()
                .map_err(|e| err(c.span(), e.to_string()))?;
            coordinators.insert(login);
        }
        if coordinators.is_empty() {
            return Err(err(
                raw.coordinators.span(),
                "`coordinators` names nobody; a case needs at least one coordinator".into(),
            ));
        }

        let e = raw.embargo.get_ref();
        let days = |v: &Spanned<i64>, key: &str| -> Result<u32, WorkflowError> {
            u32::try_from(*v.get_ref())
                .ok()
                .filter(|d| (1..=MAX_EMBARGO_DAYS).contains(d))
                .ok_or_else(|| {
                    err(
                        v.span(),
                        format!("`{key}` must be between 1 and {MAX_EMBARGO_DAYS} days"),
                    )
                })
        };
        let default_days = days(&e.default_days, "default_days")?;
        let max_days = days(&e.max_days, "max_days")?;
        if max_days < default_days {
            return Err(err(
                e.max_days.span(),
                format!("`max_days` ({max_days}) is less than `default_days` ({default_days})"),
            ));
        }
        let deadline_policy = match e.deadline_policy.get_ref().as_str() {
            "hold-all" => DeadlinePolicy::HoldAll,
            "publish-ready" => DeadlinePolicy::PublishReady,
            other => {
                return Err(err(
                    e.deadline_policy.span(),
                    format!(
                        "unknown `deadline_policy` {other:?}; expected \"hold-all\" or \"publish-ready\""
                    ),
                ));
            }
        };

        let cve = match raw.cve.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
            None | Some(("on-affected", _)) => CvePolicy::OnAffected,
            Some(("at-open", _)) => CvePolicy::AtOpen,
            Some(("never", _)) => CvePolicy::Never,
            Some((other, span)) => {
                return Err(err(
                    span,
                    format!(
                        "unknown `cve` {other:?}; expected \"on-affected\", \"at-open\" or \"never\""
                    ),
                ));
            }
        };

        // First pass: the repositories themselves.
        let mut repos = BTreeMap::new();
        let mut spans: BTreeMap<RepoId, Range<usize>> = BTreeMap::new();
        for r in &raw.repo {
            let r_ref = r.get_ref();
            let id = r_ref
                .name
                .get_ref()
                .parse::<RepoId>()
                .map_err(|e| err(r_ref.name.span(), e.to_string()))?;
            if spans.contains_key(&id) {
                return Err(err(
                    r_ref.name.span(),
                    format!("repository {id} is listed twice"),
                ));
            }
            let ecosystem = r_ref
                .ecosystem
                .get_ref()
                .parse::<Ecosystem>()
                .map_err(|e| err(r_ref.ecosystem.span(), e.to_string()))?;
            let mut packages = Vec::new();
            for p in r_ref.packages.get_ref() {
                let name = p.get_ref().trim();
                if name.is_empty() {
                    return Err(err(p.span(), "empty package name".into()));
                }
                if packages.iter().any(|q: &String| q == name) {
                    return Err(err(p.span(), format!("package {name:?} is listed twice")));
                }
                packages.push(name.to_owned());
            }
            if packages.is_empty() {
                return Err(err(
                    r_ref.packages.span(),
                    format!("repository {id} lists no packages"),
                ));
            }
            let maintainers = match &r_ref.maintainers {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(err(
                        r_ref.name.span(),
                        format!(
                            "repository {id}: `maintainers = []` names nobody; omit it to let GitHub's admin and maintain permissions decide"
                        ),
                    ));
                }
                Some(list) => {
                    let mut set = BTreeSet::new();
                    for m in list {
                        set.insert(
                            m.get_ref()
                                .parse::<Login>()
                                .map_err(|e| err(m.span(), e.to_string()))?,
                        );
                    }
                    Some(set)
                }
            };
            spans.insert(id.clone(), r_ref.name.span());
            repos.insert(
                id,
                RepoSpec {
                    ecosystem,
                    packages,
                    maintainers,
                    publish_after: BTreeSet::new(),
                },
            );
        }
        if repos.is_empty() {
            return Err(err(0..0, "the workflow has no [[repo]] tables".into()));
        }

        // Second pass: edges, which may name repositories listed later.
        let mut edge_spans: BTreeMap<(RepoId, RepoId), Range<usize>> = BTreeMap::new();
        for r in &raw.repo {
            let r_ref = r.get_ref();
            let id = r_ref
                .name
                .get_ref()
                .parse::<RepoId>()
                .map_err(|e| err(r_ref.name.span(), e.to_string()))?;
            let mut after = BTreeSet::new();
            for dep in &r_ref.publish_after {
                let dep_id = dep
                    .get_ref()
                    .parse::<RepoId>()
                    .map_err(|e| err(dep.span(), e.to_string()))?;
                if !repos.contains_key(&dep_id) {
                    return Err(err(
                        dep.span(),
                        format!(
                            "`publish_after` names {dep_id}, which is not a repository of this workflow"
                        ),
                    ));
                }
                edge_spans.insert((id.clone(), dep_id.clone()), dep.span());
                after.insert(dep_id);
            }
            if let Some(spec) = repos.get_mut(&id) {
                spec.publish_after = after;
            }
        }

        let mut propagation = crate::propagation::PropagationPolicy::default();
        if let Some(raw) = &raw.propagation {
            if let Some(h) = &raw.alert_after_hours {
                propagation.alert_after_hours = u32::try_from(*h.get_ref())
                    .ok()
                    .filter(|h| (1..=8_760).contains(h))
                    .ok_or_else(|| {
                        err(
                            h.span(),
                            "`alert_after_hours` must be between 1 and 8760 hours".into(),
                        )
                    })?;
            }
            if let Some(a) = raw.auto_close {
                propagation.auto_close = a;
            }
        }
        let mut triage = TriagePolicy::default();
        if let Some(raw) = &raw.triage {
            if let Some(c) = raw.reporter_collaborates {
                triage.reporter_collaborates = c;
            }
            for rule in &raw.out_of_scope {
                let r = rule.get_ref();
                let id = r.id.get_ref().trim();
                let id_ok = !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !id_ok {
                    return Err(err(
                        r.id.span(),
                        format!("rule id {id:?} must be 1 to 64 of a-z, 0-9 and -"),
                    ));
                }
                if triage.rule(id).is_some() {
                    return Err(err(r.id.span(), format!("rule {id:?} is listed twice")));
                }
                for (field, value) in [("summary", &r.summary), ("guidance", &r.guidance)] {
                    if value.get_ref().trim().is_empty() {
                        return Err(err(
                            value.span(),
                            format!("rule {id:?}: `{field}` is empty"),
                        ));
                    }
                }
                triage.out_of_scope.push(OutOfScopeRule {
                    id: id.to_owned(),
                    summary: r.summary.get_ref().trim().to_owned(),
                    guidance: r.guidance.get_ref().trim().to_owned(),
                });
            }
        }
        let workflow = Workflow {
            name,
            triage,
            coordinators,
            propagation,
            embargo: EmbargoPolicy {
                default_days,
                max_days,
                deadline_policy,
                end_on_attacks: e.end_on_attacks.unwrap_or(true),
            },
            cve,
            repos,
        };
        if let Err(cycle) = Schedule::for_workflow(&workflow) {
            // Point at a `publish_after` entry on the cycle, else at its first repository.
            let on_cycle = cycle
                .repos
                .iter()
                .zip(cycle.repos.iter().cycle().skip(1))
                .find_map(|(a, b)| {
                    edge_spans
                        .get(&(a.clone(), b.clone()))
                        .or_else(|| edge_spans.get(&(b.clone(), a.clone())))
                });
            let span = on_cycle
                .or_else(|| cycle.repos.first().and_then(|r| spans.get(r)))
                .cloned();
            return Err(err(span.unwrap_or(0..0), cycle.to_string()));
        }
        Ok(workflow)
    }

    /// Whether `login` is a coordinator.
    pub fn is_coordinator(&self, login: &Login) -> bool {
        self.coordinators.contains(login)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
name = "demo"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 90
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]
maintainers = ["bob"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
publish_after = ["org/core"]
"#;

    fn error_of(text: &str) -> WorkflowError {
        Workflow::parse("w.toml", text).unwrap_err()
    }

    #[test]
    fn triage_rules_parse_and_default_to_reporter_collaborating() {
        let w = Workflow::parse("w.toml", GOOD).unwrap();
        assert!(w.triage.reporter_collaborates);
        assert!(w.triage.out_of_scope.is_empty());
        let text = format!(
            "{GOOD}\n[triage]\nreporter_collaborates = false\n[[triage.out_of_scope]]\nid = \"stdio-dos\"\nsummary = \"one peer crashes the other\"\nguidance = \"file a regular issue\"\n"
        );
        let w = Workflow::parse("w.toml", &text).unwrap();
        assert!(!w.triage.reporter_collaborates);
        assert_eq!(
            w.triage.rule("stdio-dos").unwrap().guidance,
            "file a regular issue"
        );
        let dup = format!(
            "{text}[[triage.out_of_scope]]\nid = \"stdio-dos\"\nsummary = \"s\"\nguidance = \"g\"\n"
        );
        assert!(error_of(&dup).message.contains("listed twice"));
        let bad = format!(
            "{GOOD}\n[[triage.out_of_scope]]\nid = \"Bad Id\"\nsummary = \"s\"\nguidance = \"g\"\n"
        );
        let e = error_of(&bad);
        assert!(e.message.contains("rule id"), "{e}");
        assert!(e.line > 20, "{e}");
    }

    #[test]
    fn parses_a_good_workflow() {
        let w = Workflow::parse("w.toml", GOOD).unwrap();
        assert_eq!(w.repos.len(), 2);
        let plugin = &w.repos[&"org/plugin".parse().unwrap()];
        assert!(plugin.maintainers.is_none());
        assert_eq!(plugin.publish_after.len(), 1);
        assert!(w.embargo.end_on_attacks);
        assert!(w.is_coordinator(&"Alice".parse().unwrap()));
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let e =
            error_of(&GOOD.replace("packages = [\"core\"]", "packages = [\"core\"]\ncolour = 1"));
        assert_eq!((e.file.as_str(), e.line), ("w.toml", 14));
        assert!(e.message.contains("colour"), "{e}");
        assert!(e.to_string().starts_with("w.toml:14:"));
    }

    #[test]
    fn unknown_repository_in_publish_after() {
        let e = error_of(&GOOD.replace(
            "publish_after = [\"org/core\"]",
            "publish_after = [\"org/nope\"]",
        ));
        assert_eq!(e.line, 20);
        assert!(e.message.contains("org/nope"), "{e}");
    }

    #[test]
    fn cycle_is_printed() {
        let text = GOOD.replace(
            "maintainers = [\"bob\"]",
            "maintainers = [\"bob\"]\npublish_after = [\"org/plugin\"]",
        );
        let e = error_of(&text);
        assert!(
            e.message.contains("org/core -> org/plugin -> org/core"),
            "{e}"
        );
        let self_loop = GOOD.replace(
            "publish_after = [\"org/core\"]",
            "publish_after = [\"org/plugin\"]",
        );
        assert!(
            error_of(&self_loop)
                .message
                .contains("org/plugin -> org/plugin")
        );
    }

    #[test]
    fn duplicates_bad_ecosystem_and_days() {
        let dup = GOOD.replace("name = \"org/plugin\"", "name = \"Org/Core\"");
        let e = error_of(&dup);
        assert!(e.message.contains("listed twice"), "{e}");
        assert_eq!(e.line, 17);

        let e = error_of(&GOOD.replace("\"pip\"", "\"pypi\""));
        assert!(e.message.contains("ecosystem"), "{e}");
        assert_eq!(e.line, 18);

        let e = error_of(&GOOD.replace("max_days = 90", "max_days = 10"));
        assert!(e.message.contains("less than `default_days`"), "{e}");
        assert_eq!(e.line, 7);

        let e = error_of(&GOOD.replace("max_days = 90", "max_days = -1"));
        assert!(e.message.contains("between 1 and 365"), "{e}");

        let e = error_of(&GOOD.replace("\"hold-all\"", "\"yolo\""));
        assert!(e.message.contains("deadline_policy"), "{e}");
    }

    #[test]
    fn every_other_rejection_names_its_place() {
        let e = error_of(&GOOD.replace("name = \"demo\"", "name = \"  \""));
        assert_eq!((e.line, e.message.as_str()), (2, "`name` is empty"));
        let e = error_of(&GOOD.replace("packages = [\"core\"]", "packages = [\"core\", \" \"]"));
        assert_eq!((e.line, e.message.as_str()), (13, "empty package name"));
        let e = error_of(&GOOD.replace("packages = [\"core\"]", "packages = [\"core\", \"core\"]"));
        assert_eq!(e.line, 13);
        assert!(e.message.contains("\"core\" is listed twice"), "{e}");
        let e = error_of(&GOOD.replace("maintainers = [\"bob\"]", "maintainers = []"));
        assert_eq!(e.line, 11);
        assert!(e.message.contains("names nobody"), "{e}");
        let e = error_of(&GOOD.replace("default_days = 30", "default_days = 0"));
        assert_eq!(e.line, 6);
        assert!(
            e.message
                .contains("`default_days` must be between 1 and 365"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("default_days = 30", "default_days = 400"));
        assert!(e.message.contains("between 1 and 365"), "{e}");
        // Unknown keys at the top level and in [embargo], not only in [[repo]].
        let e = error_of(&GOOD.replace(
            "coordinators = [\"alice\"]",
            "coordinators = [\"alice\"]\ncolor = 1",
        ));
        assert_eq!(e.line, 4);
        assert!(e.message.contains("color"), "{e}");
        let e = error_of(&GOOD.replace("max_days = 90", "max_days = 90\ngrace = 3"));
        assert_eq!(e.line, 8);
        assert!(e.message.contains("grace"), "{e}");
        let head = GOOD.split("[[repo]]").next().unwrap();
        let e = error_of(head);
        assert!(e.message.contains("repo"), "{e}");
        // A cycle points at a `publish_after` entry on it.
        let text = GOOD.replace(
            "maintainers = [\"bob\"]",
            "maintainers = [\"bob\"]\npublish_after = [\"org/plugin\"]",
        );
        let e = error_of(&text);
        assert!([15, 21].contains(&e.line), "{e}");
        assert!(e.column > 1, "{e}");
    }

    #[test]
    fn cve_policy_defaults_to_on_affected_and_names_a_bad_value() {
        assert_eq!(
            Workflow::parse("w.toml", GOOD).unwrap().cve,
            CvePolicy::OnAffected
        );
        for (text, want) in [
            ("on-affected", CvePolicy::OnAffected),
            ("at-open", CvePolicy::AtOpen),
            ("never", CvePolicy::Never),
        ] {
            let w = GOOD.replace(
                "coordinators = [\"alice\"]",
                &format!("coordinators = [\"alice\"]\ncve = \"{text}\""),
            );
            assert_eq!(Workflow::parse("w.toml", &w).unwrap().cve, want);
        }
        let e = error_of(&GOOD.replace(
            "coordinators = [\"alice\"]",
            "coordinators = [\"alice\"]\ncve = \"always\"",
        ));
        assert_eq!((e.line, e.column), (4, 7), "{e}");
        assert!(e.message.contains("unknown `cve` \"always\""), "{e}");
        // A workflow recorded in an old case's log, before the setting existed, keeps what
        // that case did: request at open.
        let mut old = serde_json::to_value(Workflow::parse("w.toml", GOOD).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("cve");
        let old: Workflow = serde_json::from_value(old).unwrap();
        assert_eq!(old.cve, CvePolicy::AtOpen);
    }

    #[test]
    fn malformed_toml_and_missing_pieces() {
        let e = error_of("name = \"x\"\ncoordinators = [\n");
        assert!(e.line >= 2, "{e}");
        let e = error_of(&GOOD.replace("coordinators = [\"alice\"]", "coordinators = []"));
        assert!(e.message.contains("coordinator"), "{e}");
        let e = error_of(&GOOD.replace("packages = [\"core\"]", "packages = []"));
        assert!(e.message.contains("no packages"), "{e}");
        let e = error_of(&GOOD.replace("[\"bob\"]", "[\"not a login\"]"));
        assert!(e.message.contains("login"), "{e}");
        assert!(error_of("").message.contains("missing field"));
    }
}
