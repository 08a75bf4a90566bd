//! What a case is about: the vulnerability, its rating, weaknesses, credits and packages.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{CweId, IdError, Login};

/// GitHub's four advisory severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl FromStr for Severity {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" | "moderate" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(IdError {
                kind: "severity",
                value: s.chars().take(80).collect(),
                why: "must be low, medium, high or critical",
            }),
        }
    }
}

impl Severity {
    /// The name GitHub uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// A CVSS 3.0, 3.1 or 4.0 vector that parses (GitHub accepts no CVSS 2 vectors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvssVector(String);

impl CvssVector {
    /// The vector string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The severity GitHub derives from the vector's base score.
    pub fn severity(&self) -> Severity {
        match self.0.parse::<cvss::Cvss>().map(|c| c.severity()) {
            Ok(cvss::Severity::Critical) => Severity::Critical,
            Ok(cvss::Severity::High) => Severity::High,
            Ok(cvss::Severity::Medium) => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

impl FromStr for CvssVector {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = |why| IdError {
            kind: "CVSS vector",
            value: s.chars().take(80).collect(),
            why,
        };
        if !s.starts_with("CVSS:3.0/") && !s.starts_with("CVSS:3.1/") && !s.starts_with("CVSS:4.0/")
        {
            return Err(err("must be a CVSS:3.0, CVSS:3.1 or CVSS:4.0 vector"));
        }
        s.parse::<cvss::Cvss>()
            .map_err(|_| err("has a missing, repeated or unknown metric"))?;
        // The parser tolerates absent metrics; GitHub needs every base metric.
        let required: &[&str] = if s.starts_with("CVSS:4.0/") {
            &[
                "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
            ]
        } else {
            &["AV", "AC", "PR", "UI", "S", "C", "I", "A"]
        };
        let present: Vec<&str> = s
            .split('/')
            .skip(1)
            .filter_map(|m| m.split_once(':').map(|(k, _)| k))
            .collect();
        if required.iter().any(|m| !present.contains(m)) {
            return Err(err("lacks a base metric"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl Serialize for CvssVector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CvssVector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The rating of a case: GitHub takes a severity or a CVSS vector, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// A plain severity.
    Severity(Severity),
    /// A CVSS vector; GitHub derives the severity.
    Cvss(CvssVector),
}

impl Rating {
    /// The severity, given or derived.
    pub fn severity(&self) -> Severity {
        match self {
            Self::Severity(s) => *s,
            Self::Cvss(v) => v.severity(),
        }
    }
}

/// GitHub's advisory credit types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

impl CreditType {
    /// Every credit type, in GitHub's order.
    pub const ALL: [CreditType; 10] = [
        Self::Analyst,
        Self::Finder,
        Self::Reporter,
        Self::Coordinator,
        Self::RemediationDeveloper,
        Self::RemediationReviewer,
        Self::RemediationVerifier,
        Self::Tool,
        Self::Sponsor,
        Self::Other,
    ];

    /// The name GitHub uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analyst => "analyst",
            Self::Finder => "finder",
            Self::Reporter => "reporter",
            Self::Coordinator => "coordinator",
            Self::RemediationDeveloper => "remediation_developer",
            Self::RemediationReviewer => "remediation_reviewer",
            Self::RemediationVerifier => "remediation_verifier",
            Self::Tool => "tool",
            Self::Sponsor => "sponsor",
            Self::Other => "other",
        }
    }
}

impl FromStr for CreditType {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| IdError {
                kind: "credit type",
                value: s.chars().take(80).collect(),
                why: "must be one of analyst, finder, reporter, coordinator, remediation_developer, remediation_reviewer, remediation_verifier, tool, sponsor, other",
            })
    }
}

/// A person credited on every advisory of the case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Credit {
    /// Their GitHub login.
    pub login: Login,
    /// What they did.
    #[serde(rename = "type")]
    pub kind: CreditType,
}

impl FromStr for Credit {
    type Err = IdError;
    /// Parses `LOGIN:TYPE`.
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (login, kind) = s.split_once(':').ok_or_else(|| IdError {
            kind: "credit",
            value: s.chars().take(80).collect(),
            why: "must be LOGIN:TYPE, e.g. alice:finder",
        })?;
        Ok(Self {
            login: login.parse()?,
            kind: kind.parse()?,
        })
    }
}

/// GitHub's advisory ecosystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Ecosystem {
    Npm,
    Pip,
    Maven,
    Nuget,
    Go,
    Rust,
    Rubygems,
    Composer,
    Swift,
    Erlang,
    Pub,
    Actions,
    Other,
}

impl Ecosystem {
    /// Every ecosystem GitHub accepts.
    pub const ALL: [Ecosystem; 13] = [
        Self::Npm,
        Self::Pip,
        Self::Maven,
        Self::Nuget,
        Self::Go,
        Self::Rust,
        Self::Rubygems,
        Self::Composer,
        Self::Swift,
        Self::Erlang,
        Self::Pub,
        Self::Actions,
        Self::Other,
    ];

    /// The name GitHub uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pip => "pip",
            Self::Maven => "maven",
            Self::Nuget => "nuget",
            Self::Go => "go",
            Self::Rust => "rust",
            Self::Rubygems => "rubygems",
            Self::Composer => "composer",
            Self::Swift => "swift",
            Self::Erlang => "erlang",
            Self::Pub => "pub",
            Self::Actions => "actions",
            Self::Other => "other",
        }
    }
}

impl FromStr for Ecosystem {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| IdError {
                kind: "ecosystem",
                value: s.chars().take(80).collect(),
                why: "must be one of npm, pip, maven, nuget, go, rust, rubygems, composer, swift, erlang, pub, actions, other",
            })
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vulnerability a case is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// A one-line summary (at most 1,024 characters, GitHub's limit).
    pub summary: String,
    /// The description in Markdown (at most 60,000 characters, leaving room for the sibling
    /// links within GitHub's 65,535).
    pub description: String,
    /// Severity or CVSS vector.
    pub rating: Rating,
    /// Weaknesses.
    pub cwes: BTreeSet<CweId>,
    /// People credited on every advisory.
    pub credits: Vec<Credit>,
}

/// Longest summary GitHub accepts.
pub const MAX_SUMMARY: usize = 1024;
/// Longest description Lockstep accepts, leaving room for the sibling links.
pub const MAX_DESCRIPTION: usize = 60_000;

/// One package's fix: the vulnerable range and the versions that carry the fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageFix {
    /// The package name as advisories name it.
    pub package: String,
    /// For example `< 1.24.0`; optional.
    pub vulnerable_range: Option<String>,
    /// For example `1.24.0`.
    pub patched_versions: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cvss_vectors_need_every_base_metric() {
        let v31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
        assert_eq!(
            v31.parse::<CvssVector>().unwrap().severity(),
            Severity::Critical
        );
        let v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        assert!(v40.parse::<CvssVector>().is_ok());
        for bad in [
            "CVSS:3.1/AV:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:4.0/AV:N/AC:L",
            "AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "high",
        ] {
            assert!(bad.parse::<CvssVector>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn credits_and_severities() {
        let c: Credit = "alice:remediation_developer".parse().unwrap();
        assert_eq!(c.kind, CreditType::RemediationDeveloper);
        assert!("alice".parse::<Credit>().is_err());
        assert!("alice:hero".parse::<Credit>().is_err());
        assert_eq!("Moderate".parse::<Severity>().unwrap(), Severity::Medium);
        assert!("severe".parse::<Severity>().is_err());
    }
}
