//! GitHub's global advisory database: `GET /advisories/{ghsa_id}`, read conditionally, for
//! following a published repository advisory until its reviewed copy matches.

use chrono::{DateTime, Utc};
use http::Method;
use serde::Deserialize;

use super::{GithubClient, Polled, Slot, decode};
use crate::error::{Error, Result};
use crate::types::check_ghsa;

/// An identifier of a global advisory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GlobalIdentifier {
    /// `CVE` or `GHSA`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The identifier.
    pub value: String,
}

/// A package of a global advisory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GlobalPackage {
    /// The ecosystem, as GitHub spells it.
    pub ecosystem: String,
    /// The package name.
    pub name: Option<String>,
}

/// One vulnerable package of a global advisory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GlobalVulnerability {
    /// The package.
    pub package: Option<GlobalPackage>,
    /// The vulnerable range.
    pub vulnerable_version_range: Option<String>,
    /// The first patched version.
    pub first_patched_version: Option<String>,
}

/// A global advisory, as far as the propagation watch reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GlobalAdvisory {
    /// Its GHSA id.
    pub ghsa_id: String,
    /// Its CVE, if it carries one.
    pub cve_id: Option<String>,
    /// `reviewed`, `unreviewed` or `malware`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When GitHub's curators reviewed it.
    pub github_reviewed_at: Option<DateTime<Utc>>,
    /// When it was withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Its identifiers (GHSA, CVE).
    #[serde(default)]
    pub identifiers: Option<Vec<GlobalIdentifier>>,
    /// Its packages.
    #[serde(default)]
    pub vulnerabilities: Option<Vec<GlobalVulnerability>>,
}

impl GlobalAdvisory {
    /// Whether it names `cve` (as `cve_id` or among its identifiers).
    pub fn has_alias(&self, cve: &str) -> bool {
        self.cve_id
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(cve))
            || self
                .identifiers
                .iter()
                .flatten()
                .any(|i| i.kind.eq_ignore_ascii_case("CVE") && i.value.eq_ignore_ascii_case(cve))
    }
}

impl GithubClient {
    /// `GET /advisories/{ghsa_id}`, conditional (a 304 returns the cached copy). `None`: no
    /// global copy (yet).
    pub async fn poll_global_advisory(&self, ghsa: &str) -> Result<Option<Polled<GlobalAdvisory>>> {
        check_ghsa(ghsa)?;
        let path = format!("/advisories/{ghsa}");
        match self.send(Method::GET, &path, None, Slot::Serial).await {
            Ok(r) => Ok(Some(Polled {
                value: decode(&r, "global advisory")?,
                changed: !r.from_cache,
            })),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
