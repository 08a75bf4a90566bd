//! The runtime's half of the preflight (see `lockstep_core::engine::preflight`): while a
//! case's advisories are drafts, it checks what GitHub would refuse or drop when the release
//! wave publishes them, and reports it to the core as `PreflightChecked`.
//!
//! Checked here, from reads the runtime makes anyway or cheaply:
//! - the permission of Lockstep's identity on each affected repository: publishing needs
//!   admin (an organisation's security managers have it too); a token whose login GitHub does
//!   not report (`GET /user` fails, as for a GitHub App installation) is not checked;
//! - credits not accepted (`credits_detailed[].state`), which GitHub drops at publication
//!   (a warning);
//! - an incomplete draft, read as GitHub returns it, for an affected repository: no
//!   `vulnerabilities` entry with a package name, an entry without its ecosystem, or (once a
//!   fix is recorded) no package with patched versions, on the draft or from the fix, so the
//!   publication would carry none. GitHub refuses to publish a draft without its
//!   affected products ("Before you can publish a security advisory ... you must ... provide
//!   information about the versions of your project affected",
//!   <https://docs.github.com/en/code-security/security-advisories/working-with-repository-security-advisories/publishing-a-repository-security-advisory>),
//!   and the simulator refuses it the same way;
//! - pull requests still open in the advisory's temporary private fork (`GET
//!   /repos/{fork}/pulls?state=open`, conditional, so an unchanged fork costs a 304): the fix
//!   is not on the public branch yet.
//!
//! The core holds the whole wave on a blocker, inside the publication guard.

use std::collections::BTreeMap;

use lockstep_core::engine::preflight::Finding;
use lockstep_core::input::Observation;
use lockstep_core::model::{Assessment, RemoteState};
use lockstep_core::vuln::PackageFix;
use lockstep_core::{Case, RepoId};
use lockstep_github::{Advisory, GithubClient, RepoName};

/// The `PreflightChecked` observations for `case`'s drafts whose findings changed.
/// `drafts` holds, per repository, the advisory as just read (a repository not read keeps
/// its earlier credit and draft findings).
pub(crate) async fn observations(
    github: &GithubClient,
    me: Option<&str>,
    case: &Case,
    drafts: &BTreeMap<RepoId, Advisory>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    for (repo, p) in case.scope() {
        if p.advisory.state != RemoteState::Draft {
            continue;
        }
        let affected = matches!(p.assessment, Assessment::Affected { .. });
        let mut findings: Vec<Finding> = match drafts.get(repo) {
            Some(draft) => {
                let mut found: Vec<Finding> = draft
                    .unaccepted_credits
                    .iter()
                    .map(|login| Finding::CreditNotAccepted {
                        login: login.clone(),
                    })
                    .collect();
                if affected {
                    found.extend(incomplete(draft, p.fix.packages()));
                }
                found
            }
            None => p
                .preflight
                .iter()
                .filter(|f| {
                    matches!(
                        f,
                        Finding::CreditNotAccepted { .. } | Finding::DraftIncomplete { .. }
                    )
                })
                .cloned()
                .collect(),
        };
        if affected && let (Some(me), Ok(name)) = (me, RepoName::parse(repo.as_str())) {
            match github.repo_permission(&name, me).await {
                Ok(perm) if !perm.is_admin() => findings.push(Finding::MissingPublishPermission {
                    permission: perm.role_name.unwrap_or(perm.permission),
                }),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%repo, error = %e, "cannot read Lockstep's permission now");
                    // Keep what was found before rather than clear a blocker unseen.
                    findings.extend(
                        p.preflight
                            .iter()
                            .filter(|f| matches!(f, Finding::MissingPublishPermission { .. }))
                            .cloned(),
                    );
                }
            }
        }
        if affected && let Some(fork) = &p.advisory.private_fork {
            let read = match RepoName::parse(fork.as_str()) {
                Ok(name) => github.open_pull_requests(&name).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(pulls) if !pulls.is_empty() => {
                    findings.push(Finding::UnmergedForkPullRequests {
                        count: u32::try_from(pulls.len()).unwrap_or(u32::MAX),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%repo, error = %e, "cannot read the private fork's pull requests now");
                    findings.extend(
                        p.preflight
                            .iter()
                            .filter(|f| matches!(f, Finding::UnmergedForkPullRequests { .. }))
                            .cloned(),
                    );
                }
            }
        }
        findings.sort();
        findings.dedup();
        if p.preflight != findings {
            out.push(Observation::PreflightChecked {
                repo: repo.clone(),
                findings,
            });
        }
    }
    out
}

/// What `draft` lacks for publication, given the fix recorded for its repository (`fix`,
/// empty while there is none): a publication sends the fix's patched versions with it.
fn incomplete(draft: &Advisory, fix: &[PackageFix]) -> Vec<Finding> {
    let missing = |what: &str| Finding::DraftIncomplete {
        missing: what.to_owned(),
    };
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    let mut out = Vec::new();
    if draft.vulnerabilities.is_empty() || draft.vulnerabilities.iter().any(|v| blank(&v.name)) {
        out.push(missing("package"));
    }
    if draft.vulnerabilities.iter().any(|v| blank(&v.ecosystem)) {
        out.push(missing("ecosystem"));
    }
    // A repository may list several packages and fix only some (GitHub accepts a package
    // without patched versions); none patched, on the draft or by the fix, is a fix that
    // names none of the draft's packages.
    if !fix.is_empty()
        && !draft.vulnerabilities.iter().any(|v| {
            !blank(&v.patched_versions)
                || v.name.as_deref().is_some_and(|name| {
                    fix.iter()
                        .any(|f| f.package == name && !f.patched_versions.trim().is_empty())
                })
        })
    {
        out.push(missing("patched versions"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_github::AdvisoryVulnerability;

    fn draft(vulnerabilities: Vec<AdvisoryVulnerability>) -> Advisory {
        Advisory {
            ghsa_id: "GHSA-aaaa-bbbb-cccc".into(),
            cve_id: None,
            url: None,
            html_url: None,
            summary: "s".into(),
            description: None,
            severity: None,
            cvss_vector_string: None,
            state: lockstep_github::AdvisoryState::Draft,
            cwe_ids: Vec::new(),
            credits: Vec::new(),
            unaccepted_credits: Vec::new(),
            vulnerabilities,
            collaborating_users: Vec::new(),
            collaborating_teams: Vec::new(),
            created_at: None,
            updated_at: None,
            published_at: None,
            closed_at: None,
            withdrawn_at: None,
            private_fork: None,
            author: None,
            submission_accepted: None,
        }
    }

    fn vuln(eco: Option<&str>, name: Option<&str>, patched: Option<&str>) -> AdvisoryVulnerability {
        AdvisoryVulnerability {
            ecosystem: eco.map(str::to_owned),
            name: name.map(str::to_owned),
            vulnerable_version_range: None,
            patched_versions: patched.map(str::to_owned),
            vulnerable_functions: Vec::new(),
        }
    }

    fn fix(package: &str) -> PackageFix {
        PackageFix {
            package: package.into(),
            vulnerable_range: None,
            patched_versions: "2.0.1".into(),
        }
    }

    fn missing(f: &[Finding]) -> Vec<&str> {
        f.iter()
            .map(|f| match f {
                Finding::DraftIncomplete { missing } => missing.as_str(),
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn a_draft_without_affected_products_lacks_a_package() {
        assert_eq!(missing(&incomplete(&draft(vec![]), &[])), ["package"]);
        let no_package = draft(vec![vuln(None, None, None)]);
        assert_eq!(
            missing(&incomplete(&no_package, &[])),
            ["package", "ecosystem"]
        );
    }

    #[test]
    fn patched_versions_count_once_a_fix_is_recorded_and_the_fix_supplies_them() {
        let d = draft(vec![vuln(Some("npm"), Some("core"), None)]);
        assert!(
            incomplete(&d, &[]).is_empty(),
            "no fix yet: nothing to publish"
        );
        assert!(
            incomplete(&d, &[fix("core")]).is_empty(),
            "the publication sends 2.0.1"
        );
        assert_eq!(
            missing(&incomplete(&d, &[fix("other")])),
            ["patched versions"]
        );
        let done = draft(vec![vuln(Some("npm"), Some("core"), Some("2.0.1"))]);
        assert!(incomplete(&done, &[fix("other")]).is_empty());
        // Several packages, one of them fixed: publishable.
        let two = draft(vec![
            vuln(Some("npm"), Some("core"), None),
            vuln(Some("npm"), Some("core-extras"), None),
        ]);
        assert!(incomplete(&two, &[fix("core")]).is_empty());
        assert_eq!(
            missing(&incomplete(&two, &[fix("other")])),
            ["patched versions"]
        );
    }
}
