//! The runtime's half of the preflight (see `lockstep_core::engine::preflight`): while a
//! case's advisories are drafts, it checks what GitHub would refuse or drop when the release
//! wave publishes them, and reports it to the core as `PreflightChecked`.
//!
//! Checked here, from reads the runtime makes anyway or cheaply:
//! - the permission of Lockstep's identity on each affected repository: publishing needs
//!   admin (an organisation's security managers have it too); a token whose login GitHub does
//!   not report (`GET /user` fails, as for a GitHub App installation) is not checked;
//! - credits not accepted (`credits_detailed[].state`), which GitHub drops at publication
//!   (a warning).
//!
//! The core holds the whole wave on a blocker, inside the publication guard.

use std::collections::BTreeMap;

use lockstep_core::engine::preflight::Finding;
use lockstep_core::input::Observation;
use lockstep_core::model::{Assessment, RemoteState};
use lockstep_core::{Case, RepoId};
use lockstep_github::{GithubClient, RepoName};

/// The `PreflightChecked` observations for `case`'s drafts whose findings changed.
/// `credits` holds, per repository, the unaccepted credits of the advisory as just read
/// (a repository not read keeps its earlier credit findings).
pub(crate) async fn observations(
    github: &GithubClient,
    me: Option<&str>,
    case: &Case,
    credits: &BTreeMap<RepoId, Vec<String>>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    for (repo, p) in case.scope() {
        if p.advisory.state != RemoteState::Draft {
            continue;
        }
        let mut findings: Vec<Finding> = match credits.get(repo) {
            Some(logins) => logins
                .iter()
                .map(|login| Finding::CreditNotAccepted {
                    login: login.clone(),
                })
                .collect(),
            None => p
                .preflight
                .iter()
                .filter(|f| matches!(f, Finding::CreditNotAccepted { .. }))
                .cloned()
                .collect(),
        };
        let affected = matches!(p.assessment, Assessment::Affected { .. });
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
