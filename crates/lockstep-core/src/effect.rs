//! Effects: what the engine asks the outside world to do, as data with deterministic keys.
//!
//! The runtime turns an effect into GitHub calls and reports back with an
//! [`Observation`](crate::input::Observation) naming the effect's key.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{CaseId, CweId, GhsaId, Login, RepoId};
use crate::vuln::{Credit, Ecosystem, Rating};

/// A deterministic idempotency key: `{case}/{repo}/{generation}/{action}[-{n}]`.
///
/// The same state and input always produce the same keys, so the outbox's uniqueness on the
/// key turns a re-derived effect into a no-op.
pub fn effect_key(case: &CaseId, repo: &RepoId, generation: u32, action: &str) -> String {
    format!("{case}/{repo}/{generation}/{action}")
}

/// One affected package as GitHub's advisory API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryPackage {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name.
    pub name: String,
    /// The vulnerable range, if known.
    pub vulnerable_version_range: Option<String>,
    /// The patched versions, once released.
    pub patched_versions: Option<String>,
}

/// The content of an advisory, as the engine wants it on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryContent {
    /// Summary.
    pub summary: String,
    /// Description: the case's text, the sibling links, and the Lockstep marker.
    pub description: String,
    /// Severity or CVSS vector.
    pub rating: Rating,
    /// CWE ids.
    pub cwe_ids: BTreeSet<CweId>,
    /// Credits.
    pub credits: Vec<Credit>,
    /// Packages.
    pub vulnerabilities: Vec<AdvisoryPackage>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Create the draft advisory. Before retrying, the runtime must look for a draft carrying
    /// `marker` and adopt it.
    OpenDraft {
        /// The draft's content.
        content: AdvisoryContent,
        /// The marker that identifies the draft as this case's, for this repository.
        marker: String,
        /// The siblings its description links.
        links: BTreeMap<RepoId, GhsaId>,
    },
    /// Adopt a private vulnerability report's advisory as the repository's draft: in one
    /// PATCH, accept it (`triage` → `draft`), set the case's content (with the sibling links
    /// and the marker) and the collaborators. It never creates an advisory, so a retry after
    /// an unknown outcome cannot leave a second one; a retry reads first.
    AdoptReport {
        /// The report's advisory.
        ghsa: GhsaId,
        /// The draft's content.
        content: AdvisoryContent,
        /// The marker the description carries.
        marker: String,
        /// The siblings its description links.
        links: BTreeMap<RepoId, GhsaId>,
        /// Collaborators to set in the same write.
        collaborators: BTreeSet<Login>,
    },
    /// Close a report's advisory that duplicates the case's own advisory in its repository.
    CloseReport {
        /// The report's advisory.
        ghsa: GhsaId,
    },
    /// Rewrite the draft's description so that it links every sibling; in the same write,
    /// make `collaborators` collaborators if it names any (saving a write per draft).
    LinkSiblings {
        /// The advisory.
        ghsa: GhsaId,
        /// The full new description.
        description: String,
        /// The siblings it links.
        siblings: BTreeMap<RepoId, GhsaId>,
        /// Collaborators to set in the same write; empty: leave them as they are.
        #[serde(default)]
        collaborators: BTreeSet<Login>,
    },
    /// Make these users collaborators on the draft (the private channel).
    AddCollaborators {
        /// The advisory.
        ghsa: GhsaId,
        /// Who.
        logins: BTreeSet<Login>,
    },
    /// Ask GitHub's CNA for a CVE.
    RequestCve {
        /// The advisory.
        ghsa: GhsaId,
    },
    /// Publish the advisory with its final content. Before retrying, the runtime reads the
    /// advisory: already published counts as success.
    Publish {
        /// The advisory.
        ghsa: GhsaId,
        /// Its content at publication, with patched versions.
        content: AdvisoryContent,
        /// The release wave, from 0.
        wave: usize,
    },
    /// Close the draft without publishing.
    CloseDraft {
        /// The advisory.
        ghsa: GhsaId,
    },
    /// Rewrite a published advisory's packages. Before retrying, the runtime reads the
    /// advisory: already carrying these packages counts as success.
    AmendAdvisory {
        /// The advisory.
        ghsa: GhsaId,
        /// Its packages after the amendment.
        vulnerabilities: Vec<AdvisoryPackage>,
    },
}

impl Action {
    /// A short name for the action, as used in keys and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenDraft { .. } => "open-draft",
            Self::AdoptReport { .. } => "adopt-report",
            Self::CloseReport { .. } => "close-report",
            Self::LinkSiblings { .. } => "link-siblings",
            Self::AddCollaborators { .. } => "add-collaborators",
            Self::RequestCve { .. } => "request-cve",
            Self::Publish { .. } => "publish",
            Self::CloseDraft { .. } => "close-draft",
            Self::AmendAdvisory { .. } => "amend-advisory",
        }
    }

    /// Whether this is a publication, which the store's claim guard re-checks.
    pub fn is_publish(&self) -> bool {
        matches!(self, Self::Publish { .. })
    }

    /// Whether the store must ask [`crate::Case::effect_allowed`] before it runs the effect:
    /// publications (the guard) and amendments (a newer one supersedes an older one, which
    /// must then never write its stale packages).
    pub fn needs_guard(&self) -> bool {
        matches!(self, Self::Publish { .. } | Self::AmendAdvisory { .. })
    }
}

/// An effect for the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// The idempotency key.
    pub key: String,
    /// The case.
    pub case: CaseId,
    /// The repository it acts on.
    pub repo: RepoId,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
}
