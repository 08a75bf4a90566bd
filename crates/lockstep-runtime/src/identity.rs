//! Who is acting: a caller's GitHub token resolved to a login, with the GitHub permissions the
//! core needs for repositories whose workflow entry names no maintainers. The CLI and the HTTP
//! API both go through here, so they authorize identically (the decision itself is the core's).

use std::collections::BTreeSet;

use lockstep_core::input::{AuthMethod, Principal};
use lockstep_core::vuln::Credit;
use lockstep_core::{Login, RepoId, Workflow};
use lockstep_github::{GithubClient, RepoName};

/// Why a caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// GitHub refused the token or failed.
    #[error("cannot identify the caller through GitHub: {0}")]
    Github(#[from] lockstep_github::Error),
    /// GitHub answered with a login Lockstep cannot use.
    #[error("GitHub returned an unusable login: {0}")]
    Login(#[from] lockstep_core::ids::IdError),
}

/// Resolves the caller behind `caller` (a client holding the caller's own token) to a
/// principal. For each repository in `repos` whose workflow entry names no maintainers, it asks
/// GitHub (through `service`, the service's own client) whether the caller has admin or
/// maintain permission there.
pub async fn principal(
    caller: &GithubClient,
    service: &GithubClient,
    workflow: Option<&Workflow>,
    repos: &[RepoId],
) -> Result<Principal, IdentityError> {
    principal_of(login(caller).await?, service, workflow, repos).await
}

/// The login behind `caller`'s token (`GET /user`).
pub async fn login(caller: &GithubClient) -> Result<Login, IdentityError> {
    Ok(caller.authenticated_user().await?.login.parse()?)
}

/// [`principal`] for a caller already resolved to `login`: one `GET /user` serves several
/// cases.
pub async fn principal_of(
    login: Login,
    service: &GithubClient,
    workflow: Option<&Workflow>,
    repos: &[RepoId],
) -> Result<Principal, IdentityError> {
    let mut github_maintains = BTreeSet::new();
    if let Some(workflow) = workflow
        && !workflow.is_coordinator(&login)
    {
        for repo in repos {
            let names_nobody = workflow
                .repos
                .get(repo)
                .is_some_and(|spec| spec.maintainers.is_none());
            if !names_nobody {
                continue;
            }
            let name = RepoName::parse(repo.as_str())?;
            match service.repo_permission(&name, login.as_str()).await {
                Ok(p) if p.is_admin() || p.role_name.as_deref() == Some("maintain") => {
                    github_maintains.insert(repo.clone());
                }
                // GitHub hides the repository (404), or will not tell an identity without
                // push access (403, what the CLI's own-token lookup gets for a reader):
                // either way GitHub grants this caller nothing there.
                Ok(_)
                | Err(
                    lockstep_github::Error::NotFound { .. }
                    | lockstep_github::Error::Forbidden { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Principal {
        actor: lockstep_core::Actor::User(login),
        authenticated_by: AuthMethod::GithubToken,
        github_maintains,
    })
}

/// Why a case's credits cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// GitHub knows no such user: a draft crediting them would be refused for good.
    #[error("credited user \"{0}\" is not a GitHub user")]
    Unknown(Login),
    /// GitHub could not be asked.
    #[error("cannot check the credited users with GitHub: {0}")]
    Github(#[from] lockstep_github::Error),
}

/// Checks, before a case opens, that every credited login is a GitHub user: GitHub refuses a
/// draft advisory crediting anyone else (422), and the case would wait on that write for good.
pub async fn check_credits(service: &GithubClient, credits: &[Credit]) -> Result<(), CreditError> {
    for credit in credits {
        match service.user(credit.login.as_str()).await {
            Ok(_) => {}
            Err(lockstep_github::Error::NotFound { .. }) => {
                return Err(CreditError::Unknown(credit.login.clone()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
