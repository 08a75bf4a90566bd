//! # lockstep-github — GitHub repository security advisories for Lockstep
//!
//! It knows GitHub, not cases: every operation takes and returns this crate's own types
//! ([`NewAdvisory`], [`AdvisoryUpdate`], [`Advisory`], …); a runtime maps the core's
//! effects onto them.
//!
//! * [`GithubClient`]: drafts (create with marker-based adoption on retry), get (conditional),
//!   list (cursor pagination through `Link`), update (explicit `null`s), publish (single or a
//!   concurrent release wave), close, CVE request, private fork, collaborators, credits,
//!   `GET /user`, repository permission.
//! * Write safety: octocrab's retry layer is off; writes are never retried blindly.
//!   [`Attempt::Retry`] reconciles first (list + marker for a create, GET for publish and
//!   close). Rate-limit refusals (GitHub refuses them before applying) hold the token's
//!   writes until the advertised time; they are retried after it, or returned when it is
//!   beyond `max_wait`.
//! * Pacing: [`Pacer`] serialises content-creating requests per token within an 80/min and
//!   500/h budget with spacing; [`Pacer::acquire_burst`] lets a release wave go out at once
//!   (and holds ordinary writes back until it completes).
//! * Every request carries `X-GitHub-Api-Version: 2022-11-28`.
//! * Fail point (feature `failpoints`): `github.after_send_before_response`, after GitHub
//!   answered (a write is applied) and before the answer is read.
//! * Conditional GETs: ETags per URL, `If-None-Match`, a 304 returns the cached body.
//! * [`webhook`]: `X-Hub-Signature-256` verification (constant time) and typed events.
//!
//! See the crate README for the marker convention and known gaps.
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod pacer;
mod types;
pub mod webhook;

pub use client::{
    ClientStats, GithubClient, GlobalAdvisory, GlobalIdentifier, GlobalPackage,
    GlobalVulnerability, Page, PageCursor, Polled, WaveItem, next_link,
};
pub use config::{
    ApiBase, Credentials, DEFAULT_API_URL, ENV_ALLOWED_PRIVATE_HOSTS, ENV_API_URL, ENV_APP_ID,
    ENV_APP_INSTALLATION_ID, ENV_APP_KEY_FILE, ENV_TOKEN, GithubConfig, RetryConfig,
};
pub use error::{CVE_ALREADY_MESSAGES, Error, FieldError, Result};
pub use pacer::{BurstPermit, Pacer, PacerStats, PacingConfig, WritePermit};
pub use secrecy::SecretString;
pub use types::{
    Advisory, AdvisoryCredit, AdvisoryState, AdvisoryUpdate, AdvisoryVulnerability, Attempt,
    Credit, CreditType, CveRequest, DraftOrigin, Ecosystem, FieldUpdate, ListQuery, NewAdvisory,
    PullRequest, Rating, RepoName, RepoPermission, RepoRef, Severity, TargetState, User,
    Vulnerability,
};
