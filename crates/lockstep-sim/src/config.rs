//! Configuration of the simulator: limits, fault knobs, CVE/fork timing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Serde helper: durations as integer milliseconds (used by the admin HTTP routes).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Status code used for rate-limit refusals. GitHub documents both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitStatus {
    /// `403 Forbidden` (GitHub's historical answer).
    #[default]
    Forbidden,
    /// `429 Too Many Requests`.
    TooManyRequests,
}

impl LimitStatus {
    pub(crate) fn code(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            Self::TooManyRequests => 429,
        }
    }
}

/// Primary (per token, per window) rate limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrimaryLimits {
    /// Requests per window for an authenticated user (GitHub: 5,000 per hour).
    pub authenticated: u32,
    /// Requests per window for anonymous callers (GitHub: 60 per hour).
    pub anonymous: u32,
    /// Window length (GitHub: one hour).
    #[serde(with = "millis", rename = "window_ms")]
    pub window: Duration,
    /// Status used once exhausted.
    pub status: LimitStatus,
}

impl Default for PrimaryLimits {
    fn default() -> Self {
        Self {
            authenticated: 5_000,
            anonymous: 60,
            window: Duration::from_secs(3_600),
            status: LimitStatus::Forbidden,
        }
    }
}

/// Secondary limit on content-creating requests (POST/PATCH/PUT/DELETE), per actor,
/// as sliding windows. GitHub: 80 per minute and 500 per hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecondaryLimits {
    /// Writes allowed per short window (GitHub: 80).
    pub per_short_window: u32,
    /// Short window (GitHub: 60 s).
    #[serde(with = "millis", rename = "short_window_ms")]
    pub short_window: Duration,
    /// Writes allowed per long window (GitHub: 500).
    pub per_long_window: u32,
    /// Long window (GitHub: 3,600 s).
    #[serde(with = "millis", rename = "long_window_ms")]
    pub long_window: Duration,
    /// Status used for refusals.
    pub status: LimitStatus,
}

impl Default for SecondaryLimits {
    fn default() -> Self {
        Self {
            per_short_window: 80,
            short_window: Duration::from_secs(60),
            per_long_window: 500,
            long_window: Duration::from_secs(3_600),
            status: LimitStatus::Forbidden,
        }
    }
}

impl SecondaryLimits {
    /// No secondary limit at all (useful for load tests).
    pub fn unlimited() -> Self {
        Self {
            per_short_window: u32::MAX,
            per_long_window: u32::MAX,
            ..Self::default()
        }
    }
}

/// Runtime fault-injection knobs. All probabilities are in `0.0..=1.0` and are rolled
/// with the simulator's seeded RNG, so a given seed and request order reproduce a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FaultConfig {
    /// Base latency added to every API request (before it is processed).
    #[serde(with = "millis", rename = "latency_ms")]
    pub latency: Duration,
    /// Uniform jitter: the delay is `latency ± jitter` (never below zero).
    #[serde(with = "millis", rename = "jitter_ms")]
    pub jitter: Duration,
    /// Probability of answering 500/502/503 *before* applying the request.
    pub error_5xx: f64,
    /// When true, `error_5xx` only applies to writes (POST/PATCH/PUT/DELETE).
    pub error_5xx_writes_only: bool,
    /// Probability that a successful write is applied and then the connection is
    /// dropped without any response.
    pub reset_after_apply: f64,
    /// Probability that a write is refused with a secondary rate limit.
    pub secondary_limit: f64,
    /// `retry-after` value sent with injected secondary limits (whole seconds, min 1).
    #[serde(with = "millis", rename = "retry_after_ms")]
    pub retry_after: Duration,
    /// Probability that a webhook delivery is silently lost.
    pub webhook_drop: f64,
    /// Probability that a webhook delivery is sent twice (same `X-GitHub-Delivery`).
    pub webhook_duplicate: f64,
}

/// One-shot faults queued through [`crate::Simulator::inject`]; they fire on the next
/// matching requests regardless of probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectedFault {
    /// Next API request(s) get a 5xx before being applied.
    Error5xx,
    /// Next successful write(s) are applied, then the connection is dropped.
    ResetAfterApply,
    /// Next write(s) are refused with a secondary rate limit and `retry-after`.
    SecondaryLimit,
    /// Next request(s) of any method (reads too) are refused with a secondary rate limit
    /// and `retry-after`.
    SecondaryLimitAny,
}

/// When a requested CVE gets its identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum CvePolicy {
    /// The CVE id is assigned while handling the 202 (visible on the next GET).
    #[default]
    Immediate,
    /// Assigned once this delay has elapsed (checked lazily on every request).
    AfterDelay {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Only assigned by [`crate::Simulator::assign_pending_cves`].
    Manual,
}

/// Top-level configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Seed for every random choice (ids, faults, jitter).
    pub seed: u64,
    /// Base of `url` fields and `Link` headers. `None`: set by [`crate::spawn`] to the
    /// bound address (or `http://127.0.0.1` when only [`crate::Simulator::router`] is used).
    pub api_base_url: Option<String>,
    /// Base of `html_url` fields.
    pub html_base_url: String,
    /// Primary rate limit.
    pub primary: PrimaryLimits,
    /// Secondary (content-creation) limit.
    pub secondary: SecondaryLimits,
    /// Fault knobs.
    pub faults: FaultConfig,
    /// CVE assignment timing.
    pub cve_policy: CvePolicy,
    /// Delay before a private fork shows up in `private_fork`.
    #[serde(with = "millis", rename = "fork_delay_ms")]
    pub fork_delay: Duration,
    /// If true, PATCH `state: published` on an already published advisory is a 422
    /// ("Invalid state transition from `published` to `published`."); default: a no-op 200.
    pub republish_is_error: bool,
    /// If true, requests without `User-Agent` are refused with 403 like GitHub does.
    pub require_user_agent: bool,
    /// If set, `/_sim/*` admin routes require header `x-sim-admin-token` with this value.
    pub admin_token: Option<String>,
    /// Lifetime of minted App installation tokens (GitHub: one hour).
    #[serde(with = "millis", rename = "installation_token_ttl_ms")]
    pub installation_token_ttl: Duration,
    /// GitHub's global advisory database (`GET /advisories/{ghsa_id}`).
    pub global: GlobalDbConfig,
}

/// How published repository advisories reach GitHub's global advisory database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalDbConfig {
    /// Time from publication until GitHub's curators have reviewed the copy; before that,
    /// `GET /advisories/{ghsa_id}` answers 404.
    #[serde(with = "millis", rename = "review_delay_ms")]
    pub review_delay: Duration,
    /// Ecosystems GitHub does not review (GitHub's names, e.g. `other`): advisories whose
    /// packages are all in them never get a global copy.
    pub unreviewed_ecosystems: Vec<String>,
    /// Fault: the global copies lose their CVE alias (github/advisory-database #9582).
    pub drop_alias: bool,
}

impl Default for GlobalDbConfig {
    fn default() -> Self {
        Self {
            review_delay: Duration::ZERO,
            unreviewed_ecosystems: vec!["other".to_owned()],
            drop_alias: false,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0x10c6_57e9,
            api_base_url: None,
            html_base_url: "https://github.com".to_owned(),
            primary: PrimaryLimits::default(),
            secondary: SecondaryLimits::default(),
            faults: FaultConfig::default(),
            cve_policy: CvePolicy::default(),
            fork_delay: Duration::ZERO,
            republish_is_error: false,
            require_user_agent: false,
            admin_token: None,
            installation_token_ttl: Duration::from_secs(3_600),
            global: GlobalDbConfig::default(),
        }
    }
}
