//! # lockstep-sim — a faithful GitHub repository-security-advisory simulator
//!
//! An axum server that holds repository security advisories per repository, with users,
//! tokens and repository permissions, and reproduces the behaviours listed in
//! `shared/reference/github-api.md` §9: exact routes with cursor pagination, strict
//! request validation (422 `validation-error`), severity XOR CVSS, the advisory state
//! machine, full `repository-advisory` objects, whole-array replacement on PATCH, 202
//! CVE-request and private-fork endpoints, authentication and 404-style visibility,
//! primary and secondary rate limits, ETags with 304, and signed webhooks.
//!
//! On top of that it offers **fault injection** (latency ± jitter, 5xx before apply,
//! connection reset after apply, forced secondary limits with `retry-after`; all seeded),
//! a **ledger** of every request, and a Rust handle to act "as someone else" (for
//! example publish through the UI), which is how leak tests are written.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lockstep_sim::{Permission, SimConfig, Simulator, spawn_local};
//! let sim = Simulator::new(SimConfig::default());
//! sim.add_user("alice", "tok-alice");
//! sim.add_repo("acme/widget")?;
//! sim.grant("acme/widget", "alice", Permission::Admin)?;
//! let running = spawn_local(sim.clone()).await?;
//! // point a client (octocrab, reqwest) at running.base_url with `Authorization: Bearer tok-alice`
//! let entries = sim.ledger();
//! # let _ = entries; running.shutdown().await?; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![recursion_limit = "256"]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod app;
mod config;
mod error;
mod global;
mod ledger;
mod model;
mod oauth;
mod observe;
#[cfg(feature = "oracle")]
pub mod oracle;
pub mod seed;
mod server;
mod state;
mod validate;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    CvePolicy, FaultConfig, GlobalDbConfig, InjectedFault, LimitStatus, PrimaryLimits,
    SecondaryLimits, SimConfig,
};
pub use error::{ApiError, SimError};
pub use ledger::{FaultKind, LedgerEntry, Via};
pub use model::{AccountKind, AdvisoryState, OrgRole, Permission, ReportTemplate, TemplateSection};
pub use observe::Observed;
pub use webhook::{WebhookDelivery, WebhookTarget, signature_256};

use crate::model::Team;
use crate::observe::Observer;

/// The REST API version the simulator serves by default (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
use crate::state::{Ctx, OpOk, State, split_repo};
use crate::validate::BodyKind;

/// The simulator handle. Cheap to clone; all clones share the same state
/// (`Arc<Mutex<_>>`, never held across an `.await`).
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new(SimConfig::default())
    }
}

fn repo_key(full: &str) -> String {
    full.to_ascii_lowercase()
}

impl Simulator {
    /// Creates an empty simulator.
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State::new(config))),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ------------------------------------------------------------ seeding

    /// Adds a user (if new) and maps `token` to it. A user may have several tokens.
    pub fn add_user(&self, login: &str, token: &str) {
        let mut st = self.lock();
        let key = st.ensure_account(login, AccountKind::User);
        st.tokens.insert(token.to_owned(), key);
    }

    /// Adds an account of a given kind without a token (e.g. a bot or an organisation).
    pub fn add_account(&self, login: &str, kind: AccountKind) {
        self.lock().ensure_account(login, kind);
    }

    /// Adds a public repository `owner/name` (the owner becomes an organisation if unknown).
    pub fn add_repo(&self, full_name: &str) -> Result<(), SimError> {
        self.lock().add_repo(full_name, false)
    }

    /// Adds a private repository.
    pub fn add_private_repo(&self, full_name: &str) -> Result<(), SimError> {
        self.lock().add_repo(full_name, true)
    }

    /// Enables or disables private vulnerability reporting (enabled by default).
    pub fn set_private_vulnerability_reporting(
        &self,
        repo: &str,
        enabled: bool,
    ) -> Result<(), SimError> {
        let mut st = self.lock();
        let r = st
            .repos
            .get_mut(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        r.pvr_enabled = enabled;
        Ok(())
    }

    /// Grants a repository permission to a known user.
    pub fn grant(&self, repo: &str, login: &str, permission: Permission) -> Result<(), SimError> {
        let mut st = self.lock();
        if !st.accounts.contains_key(&login.to_ascii_lowercase()) {
            return Err(SimError::UnknownUser(login.to_owned()));
        }
        let r = st
            .repos
            .get_mut(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        r.perms.insert(login.to_ascii_lowercase(), permission);
        Ok(())
    }

    /// Removes a user's repository permission (advisory reads then become 404s).
    pub fn revoke(&self, repo: &str, login: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let r = st
            .repos
            .get_mut(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        r.perms.remove(&login.to_ascii_lowercase());
        Ok(())
    }

    /// Gives a user an organisation role (owner = admin everywhere; security manager =
    /// advisory admin everywhere and may use the org advisory list).
    pub fn set_org_role(&self, org: &str, login: &str, role: OrgRole) -> Result<(), SimError> {
        let mut st = self.lock();
        if !st.accounts.contains_key(&login.to_ascii_lowercase()) {
            return Err(SimError::UnknownUser(login.to_owned()));
        }
        st.ensure_account(org, AccountKind::Organization);
        st.org_roles
            .insert((org.to_ascii_lowercase(), login.to_ascii_lowercase()), role);
        Ok(())
    }

    /// Creates a team (usable in `collaborating_teams`) with members.
    pub fn add_team(&self, org: &str, slug: &str, members: &[&str]) -> Result<(), SimError> {
        let mut st = self.lock();
        for m in members {
            if !st.accounts.contains_key(&m.to_ascii_lowercase()) {
                return Err(SimError::UnknownUser((*m).to_owned()));
            }
        }
        st.ensure_account(org, AccountKind::Organization);
        let id = 9_000 + st.teams.len() as u64 + 1;
        st.teams.insert(
            (org.to_ascii_lowercase(), slug.to_ascii_lowercase()),
            Team {
                id,
                org: org.to_owned(),
                slug: slug.to_owned(),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
            },
        );
        Ok(())
    }

    /// Registers a GitHub App: its id, its slug, and the RSA public key (PEM) its JWTs
    /// are verified with. Creates its bot account `{slug}[bot]`, which installation tokens
    /// act as.
    pub fn add_app(&self, app_id: u64, slug: &str, public_key_pem: &str) -> Result<(), SimError> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .map_err(|e| SimError::InvalidKey(e.to_string()))?;
        let mut st = self.lock();
        let bot = st.ensure_account(&format!("{slug}[bot]"), AccountKind::Bot);
        st.apps.insert(
            app_id,
            app::App {
                id: app_id,
                slug: slug.to_owned(),
                bot,
                key,
            },
        );
        Ok(())
    }

    /// Installs App `app_id` on `account`, for `repos` (`owner/name`; every repository of
    /// the account when empty), giving its bot `permission` on them.
    pub fn add_installation(
        &self,
        installation_id: u64,
        app_id: u64,
        account: &str,
        repos: &[&str],
        permission: Permission,
    ) -> Result<(), SimError> {
        let mut st = self.lock();
        let bot = st
            .apps
            .get(&app_id)
            .map(|a| a.bot.clone())
            .ok_or(SimError::UnknownApp(app_id))?;
        let account_key = st.ensure_account(account, AccountKind::Organization);
        let keys: Vec<String> = if repos.is_empty() {
            st.repos
                .iter()
                .filter(|(_, r)| r.owner.eq_ignore_ascii_case(account))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            let mut keys = Vec::new();
            for r in repos {
                let k = repo_key(r);
                if !st.repos.contains_key(&k) {
                    return Err(SimError::UnknownRepo((*r).to_owned()));
                }
                keys.push(k);
            }
            keys
        };
        for k in &keys {
            if let Some(r) = st.repos.get_mut(k) {
                r.perms.insert(bot.clone(), permission);
            }
        }
        st.installations.insert(
            installation_id,
            app::Installation {
                id: installation_id,
                app_id,
                account: account_key,
                repos: if repos.is_empty() {
                    std::collections::BTreeSet::new()
                } else {
                    keys.into_iter().collect()
                },
                permission,
                created_at: Utc::now(),
            },
        );
        Ok(())
    }

    /// Lifetime of installation tokens minted from now on (GitHub: one hour).
    pub fn set_installation_token_ttl(&self, ttl: Duration) {
        self.lock().config.installation_token_ttl = ttl;
    }

    /// How many installation tokens have been minted.
    pub fn installation_tokens_minted(&self) -> u64 {
        self.lock().tokens_minted
    }

    /// Sets the report template of a repository: private vulnerability reports whose
    /// description does not follow it are refused with 422 (`missing_section`,
    /// `empty_section`, `unchecked_required_option`, `sections_out_of_order`). `None`
    /// removes it.
    pub fn set_report_template(
        &self,
        repo: &str,
        template: Option<ReportTemplate>,
    ) -> Result<(), SimError> {
        let mut st = self.lock();
        let r = st
            .repos
            .get_mut(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        r.report_template = template;
        Ok(())
    }

    /// Calls `f` with every API response from now on (outside the simulator's lock, on
    /// the task serving the request), including responses a reset-after-apply drops.
    /// Replaces any earlier observer.
    pub fn observe(&self, f: impl Fn(&Observed) + Send + Sync + 'static) {
        self.lock().observer = Some(Observer(Arc::new(f)));
    }

    /// Removes the observer.
    pub fn clear_observer(&self) {
        self.lock().observer = None;
    }

    pub(crate) fn notify(&self, o: &Observed) {
        let observer = self.lock().observer.clone();
        if let Some(f) = observer {
            (f.0)(o);
        }
    }

    // ------------------------------------------------------------ knobs

    /// Current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        self.lock().config.faults.clone()
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.lock().config.faults = faults;
    }

    /// Edits the fault configuration in place.
    pub fn update_faults(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut self.lock().config.faults);
    }

    /// Queues `count` one-shot faults of a kind (deterministic, independent of the RNG).
    pub fn inject(&self, fault: InjectedFault, count: u32) {
        *self.lock().injected.entry(fault).or_insert(0) += count;
    }

    /// Clears every queued one-shot fault.
    pub fn clear_injected(&self) {
        self.lock().injected.clear();
    }

    /// Replaces the primary rate limit (budgets already used are kept).
    pub fn set_primary_limits(&self, limits: PrimaryLimits) {
        self.lock().config.primary = limits;
    }

    /// Replaces the secondary (content creation) limit and forgets past writes.
    pub fn set_secondary_limits(&self, limits: SecondaryLimits) {
        let mut st = self.lock();
        st.config.secondary = limits;
        st.secondary.clear();
    }

    /// Changes when requested CVEs are assigned.
    pub fn set_cve_policy(&self, policy: CvePolicy) {
        self.lock().config.cve_policy = policy;
    }

    /// Changes how the global advisory database behaves (review delay, unreviewed
    /// ecosystems, the lost-alias fault).
    pub fn update_global(&self, f: impl FnOnce(&mut GlobalDbConfig)) {
        f(&mut self.lock().config.global);
    }

    /// Changes how long a private fork takes to appear.
    pub fn set_fork_delay(&self, delay: Duration) {
        self.lock().config.fork_delay = delay;
    }

    /// Re-seeds the id and fault RNGs.
    pub fn reseed(&self, seed: u64) {
        self.lock().reseed(seed);
    }

    /// Sets the base URL used in `url` fields, `Link` headers and webhook payloads.
    pub fn set_api_base_url(&self, url: &str) {
        self.lock().api_base = url.trim_end_matches('/').to_owned();
    }

    /// The base URL used in `url` fields.
    pub fn api_base_url(&self) -> String {
        self.lock().api_base.clone()
    }

    // ------------------------------------------------------------ observation

    /// Every ledger entry so far, in order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.lock().ledger.clone()
    }

    /// Ledger entries with `seq > since`.
    pub fn ledger_since(&self, since: u64) -> Vec<LedgerEntry> {
        let st = self.lock();
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(st.ledger.len());
        st.ledger[start..].to_vec()
    }

    fn render_ctx(now: Instant) -> Ctx<'static> {
        Ctx {
            actor: None,
            now,
            wall: Utc::now(),
            drop_cvss: false,
            integration: false,
        }
    }

    /// Every advisory of a repository (all states, creation order) as full
    /// `repository-advisory` JSON objects, ignoring visibility.
    pub fn advisories(&self, repo: &str) -> Result<Vec<Value>, SimError> {
        let now = Instant::now();
        let mut st = self.lock();
        st.tick(now, Utc::now());
        let r = st
            .repos
            .get(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        let mut advs: Vec<_> = r.advisories.values().collect();
        advs.sort_by_key(|a| a.seq);
        let ctx = Self::render_ctx(now);
        Ok(advs.into_iter().map(|a| st.render(r, a, &ctx)).collect())
    }

    /// One advisory as JSON, ignoring visibility.
    pub fn advisory(&self, repo: &str, ghsa_id: &str) -> Option<Value> {
        let now = Instant::now();
        let mut st = self.lock();
        st.tick(now, Utc::now());
        let r = st.repos.get(&repo_key(repo))?;
        let a = r.advisories.get(&state::ghsa_key(ghsa_id))?;
        Some(st.render(r, a, &Self::render_ctx(now)))
    }

    /// `(ghsa_id, state)` of every advisory of a repository, in creation order.
    pub fn advisory_states(&self, repo: &str) -> Result<Vec<(String, AdvisoryState)>, SimError> {
        let st = self.lock();
        let r = st
            .repos
            .get(&repo_key(repo))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        let mut advs: Vec<_> = r.advisories.values().collect();
        advs.sort_by_key(|a| a.seq);
        Ok(advs
            .into_iter()
            .map(|a| (a.ghsa_id.clone(), a.state))
            .collect())
    }

    /// Webhook deliveries attempted so far (completed, failed or dropped).
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        let log = Arc::clone(&self.lock().hooks.log);

        log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    // ------------------------------------------------------------ acting as someone

    fn handle_op(
        &self,
        login: &str,
        repo: &str,
        op: &str,
        path: String,
        f: impl FnOnce(&mut State, &Ctx<'_>) -> Result<OpOk, ApiError>,
    ) -> Result<Value, SimError> {
        let now = Instant::now();
        let wall = Utc::now();
        let mut st = self.lock();
        st.tick(now, wall);
        let actor = st
            .accounts
            .get(&login.to_ascii_lowercase())
            .map(|a| a.login.clone())
            .ok_or_else(|| SimError::UnknownUser(login.to_owned()))?;
        if !st.repos.contains_key(&repo_key(repo)) {
            return Err(SimError::UnknownRepo(repo.to_owned()));
        }
        let ctx = Ctx {
            actor: Some(&actor),
            now,
            wall,
            drop_cvss: false,
            integration: false,
        };
        let res = f(&mut st, &ctx);
        let (status, applied, ghsa, from, to, events, out) = match res {
            Ok(ok) => (
                ok.status,
                ok.applied,
                ok.ghsa,
                ok.state_from,
                ok.state_to,
                ok.events,
                Ok(ok.body),
            ),
            Err(e) => (
                e.status,
                false,
                None,
                None,
                None,
                Vec::new(),
                Err(SimError::Api(e)),
            ),
        };
        let seq = st.ledger.len() as u64 + 1;
        st.ledger.push(LedgerEntry {
            seq,
            at: wall,
            method: "UI".to_owned(),
            path,
            op: op.to_owned(),
            actor: Some(actor.clone()),
            status,
            write: true,
            applied,
            delivered: true,
            via: Via::Handle,
            repo: Some(repo.to_owned()),
            ghsa_id: ghsa,
            state_from: from,
            state_to: to,
            fault: None,
            body_sha256: None,
        });
        for ev in events {
            st.emit(ev);
        }
        out
    }

    /// Creates an advisory as `login` (same validation and permissions as the API).
    pub fn create_as(&self, login: &str, repo: &str, body: &Value) -> Result<Value, SimError> {
        let (o, r) = split_repo(repo).ok_or_else(|| SimError::InvalidName(repo.to_owned()))?;
        let input = validate::parse_value(BodyKind::Create, body)?;
        self.handle_op(
            login,
            repo,
            "create",
            format!("/repos/{repo}/security-advisories"),
            |st, ctx| st.op_create(o, r, input, false, ctx),
        )
    }

    /// Files a private vulnerability report as `login`.
    pub fn report_as(&self, login: &str, repo: &str, body: &Value) -> Result<Value, SimError> {
        let (o, r) = split_repo(repo).ok_or_else(|| SimError::InvalidName(repo.to_owned()))?;
        let input = validate::parse_value(BodyKind::Report, body)?;
        self.handle_op(
            login,
            repo,
            "report",
            format!("/repos/{repo}/security-advisories/reports"),
            |st, ctx| st.op_create(o, r, input, true, ctx),
        )
    }

    /// Applies a PATCH body as `login` (e.g. a maintainer editing in GitHub's UI).
    pub fn update_as(
        &self,
        login: &str,
        repo: &str,
        ghsa_id: &str,
        patch: &Value,
    ) -> Result<Value, SimError> {
        let (o, r) = split_repo(repo).ok_or_else(|| SimError::InvalidName(repo.to_owned()))?;
        let input = validate::parse_value(BodyKind::Update, patch)?;
        self.handle_op(
            login,
            repo,
            "update",
            format!("/repos/{repo}/security-advisories/{ghsa_id}"),
            |st, ctx| st.op_update(o, r, ghsa_id, input, ctx),
        )
    }

    /// Publishes an advisory as `login`, like a maintainer pressing "Publish" in the UI.
    /// Fires the `repository_advisory`/`published` webhook and records a `Via::Handle`
    /// ledger entry with `state_to == Published`.
    pub fn publish_as(&self, login: &str, repo: &str, ghsa_id: &str) -> Result<Value, SimError> {
        self.update_as(login, repo, ghsa_id, &json!({"state": "published"}))
    }

    /// Creates the advisory's temporary private fork as `login` (like the UI's button).
    pub fn fork_as(&self, login: &str, repo: &str, ghsa_id: &str) -> Result<Value, SimError> {
        let (o, r) = split_repo(repo).ok_or_else(|| SimError::InvalidName(repo.to_owned()))?;
        self.handle_op(
            login,
            repo,
            "fork",
            format!("/repos/{repo}/security-advisories/{ghsa_id}/forks"),
            |st, ctx| st.op_fork(o, r, ghsa_id, ctx),
        )
    }

    /// Opens a pull request in the temporary private fork `fork` (`owner/name`, as the
    /// advisory's `private_fork.full_name` gives it); returns its number.
    pub fn open_fork_pull(&self, fork: &str, title: &str) -> Result<u64, SimError> {
        let (o, r) = split_repo(fork).ok_or_else(|| SimError::InvalidName(fork.to_owned()))?;
        let mut st = self.lock();
        if st.fork_parent(o, r).is_none() {
            return Err(SimError::UnknownRepo(fork.to_owned()));
        }
        let pulls = st.fork_pulls.entry(fork.to_ascii_lowercase()).or_default();
        let number = pulls.len() as u64 + 1;
        pulls.push((number, title.to_owned(), true));
        Ok(number)
    }

    /// Merges pull request `number` of the temporary private fork `fork` (it is closed).
    pub fn merge_fork_pull(&self, fork: &str, number: u64) -> Result<(), SimError> {
        let mut st = self.lock();
        let pull = st
            .fork_pulls
            .get_mut(&fork.to_ascii_lowercase())
            .and_then(|p| p.iter_mut().find(|(n, _, _)| *n == number))
            .ok_or_else(|| SimError::UnknownRepo(format!("{fork}#{number}")))?;
        pull.2 = false;
        Ok(())
    }

    /// Withdraws a published advisory (only GitHub can do this; no webhook).
    pub fn withdraw(&self, repo: &str, ghsa_id: &str) -> Result<Value, SimError> {
        let wall = Utc::now();
        let now = Instant::now();
        let mut st = self.lock();
        let key = repo_key(repo);
        let (ghsa, from) = st.withdraw(&key, ghsa_id, wall)?;
        let seq = st.ledger.len() as u64 + 1;
        st.ledger.push(LedgerEntry {
            seq,
            at: wall,
            method: "UI".to_owned(),
            path: format!("/repos/{repo}/security-advisories/{ghsa}"),
            op: "withdraw".to_owned(),
            actor: None,
            status: 200,
            write: true,
            applied: true,
            delivered: true,
            via: Via::Handle,
            repo: Some(repo.to_owned()),
            ghsa_id: Some(ghsa.clone()),
            state_from: Some(from),
            state_to: Some(AdvisoryState::Withdrawn),
            fault: None,
            body_sha256: None,
        });
        let r = st
            .repos
            .get(&key)
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        let a = r
            .advisories
            .get(&state::ghsa_key(&ghsa))
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?;
        Ok(st.render(r, a, &Self::render_ctx(now)))
    }

    /// Assigns every requested-but-unassigned CVE now; returns `(repo, ghsa_id, cve_id)`.
    pub fn assign_pending_cves(&self) -> Vec<(String, String, String)> {
        let wall = Utc::now();
        let mut st = self.lock();
        let mut out = Vec::new();
        for (r, g) in st.pending_cve_list() {
            if let Some(cve) = st.assign_cve(&r, &g, wall) {
                let ghsa = st
                    .repos
                    .get(&r)
                    .and_then(|rp| rp.advisories.get(&g))
                    .map_or(g.clone(), |a| a.ghsa_id.clone());
                out.push((r, ghsa, cve));
            }
        }
        out
    }

    // ------------------------------------------------------------ webhooks

    /// Configures the webhook target; events are signed when `secret` is set.
    pub fn set_webhook(&self, url: &str, secret: Option<&str>) {
        let mut st = self.lock();
        let hook_id = 400_000 + st.config.seed % 100_000;
        st.hooks.target = Some(WebhookTarget {
            url: url.to_owned(),
            secret: secret.map(str::to_owned),
            hook_id,
        });
    }

    /// Removes the webhook target.
    pub fn clear_webhook(&self) {
        self.lock().hooks.target = None;
    }

    /// Emits a `release`/`published` event for `repo` with a tag name.
    pub fn emit_release(&self, repo: &str, tag_name: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let key = repo_key(repo);
        let actor = st
            .repos
            .get(&key)
            .ok_or_else(|| SimError::UnknownRepo(repo.to_owned()))?
            .perms
            .iter()
            .find(|(_, p)| **p >= Permission::Write)
            .map(|(l, _)| l.clone());
        if let Some(ev) = st.release_event(&key, tag_name, actor.as_deref(), Utc::now()) {
            st.emit(ev);
        }
        Ok(())
    }

    /// Emits a `ping` event.
    pub fn emit_ping(&self) {
        let mut st = self.lock();
        if let Some(ev) = st.ping_event() {
            st.emit(ev);
        }
    }

    /// Waits until every webhook queued so far has been delivered (or has failed).
    pub async fn flush_webhooks(&self) {
        let rx = self.lock().hooks.flush();
        if let Some(rx) = rx {
            let _ = rx.await;
        }
    }

    // ------------------------------------------------------------ serving

    /// The axum router (API surface plus `/_sim/*` admin routes). When mounting it
    /// yourself, call [`Simulator::set_api_base_url`]; reset-after-apply then degrades to
    /// a failing response body (see the `server` module docs). [`spawn`] is preferred.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }
}

/// A simulator served on a TCP port.
#[derive(Debug)]
pub struct RunningSim {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    /// Bound address.
    pub addr: SocketAddr,
    /// The simulator being served.
    pub sim: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSim {
    /// Stops the server (graceful, bounded to 2 s, then aborted).
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut join) = self.join.take() {
            match tokio::time::timeout(Duration::from_secs(2), &mut join).await {
                Ok(Ok(r)) => return r,
                Ok(Err(_)) => return Ok(()),
                Err(_) => join.abort(),
            }
        }
        Ok(())
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}

/// Serves `sim` on `addr` in a background task. If the configuration has no
/// `api_base_url`, the simulator's base URL becomes `http://{bound address}` (with the
/// loopback address when bound to an unspecified one such as `0.0.0.0`); set
/// `api_base_url` (`--public-url`) when clients reach it under another name.
pub async fn spawn(sim: Simulator, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let reachable = if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, addr.port())
    } else {
        addr
    };
    let base_url = format!("http://{reachable}");
    {
        let mut st = sim.lock();
        if st.config.api_base_url.is_none() {
            st.api_base = base_url.clone();
        }
    }
    let (tx, rx) = oneshot::channel::<()>();
    let router = sim.router();
    let join = tokio::spawn(server::serve_listener(
        server::SimListener { inner: listener },
        router,
        async {
            let _ = rx.await;
        },
    ));
    Ok(RunningSim {
        base_url,
        addr,
        sim,
        shutdown: Some(tx),
        join: Some(join),
    })
}

/// [`spawn`] on `127.0.0.1:0`.
pub async fn spawn_local(sim: Simulator) -> std::io::Result<RunningSim> {
    spawn(sim, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Serves `sim` on `addr` until `shutdown` resolves (for a CLI or a subprocess).
pub async fn serve_with_shutdown(
    sim: Simulator,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let running = spawn(sim, addr).await?;
    tracing::info!(
        base_url = %running.base_url,
        public_url = %running.sim.api_base_url(),
        "lockstep-sim listening"
    );
    shutdown.await;
    running.shutdown().await
}

/// How the standalone server runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL clients reach the server at, used in `url` fields, `Link` headers and
    /// webhook payloads (needed behind a proxy, or when listening on `0.0.0.0`). `None`:
    /// `http://{bound address}`.
    pub public_url: Option<String>,
    /// If set, the `/_sim/*` admin routes require `x-sim-admin-token: {this}`.
    pub admin_token: Option<String>,
}

impl ServeConfig {
    /// Listen on `listen`, no public URL, no admin token.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            public_url: None,
            admin_token: None,
        }
    }

    /// The simulator configuration this asks for (defaults otherwise). Refuses a public
    /// URL that is not an absolute `http`/`https` URL without query or fragment, and an
    /// empty admin token.
    pub fn sim_config(&self) -> Result<SimConfig, String> {
        let api_base_url = match &self.public_url {
            None => None,
            Some(raw) => {
                let url = reqwest::Url::parse(raw.trim())
                    .map_err(|e| format!("--public-url {raw:?}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.host_str().is_none()
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(format!(
                        "--public-url {raw:?}: expected http(s)://host[:port][/path]"
                    ));
                }
                Some(url.as_str().trim_end_matches('/').to_owned())
            }
        };
        if self
            .admin_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err("the admin token is empty".to_owned());
        }
        Ok(SimConfig {
            api_base_url,
            admin_token: self.admin_token.clone(),
            ..SimConfig::default()
        })
    }
}

/// Standalone server: default configuration, the demo seed ([`seed::demo`]: the ten MCP
/// SDK repositories, admin `lockstep-bot` with token [`seed::DEMO_ADMIN_TOKEN`], and the
/// demo GitHub App), until Ctrl-C.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    serve_with(ServeConfig::new(addr)).await
}

/// [`serve`] with a public URL and an admin token.
pub async fn serve_with(config: ServeConfig) -> std::io::Result<()> {
    let sim_config = config
        .sim_config()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let sim = Simulator::new(sim_config);
    seed::demo(&sim).map_err(std::io::Error::other)?;
    tracing::info!(
        app_id = seed::DEMO_APP_ID,
        installation_id = seed::DEMO_INSTALLATION_ID,
        admin_routes_guarded = config.admin_token.is_some(),
        "demo data seeded (App key: crates/lockstep-sim/demo/demo-app-key.pem)"
    );
    serve_with_shutdown(sim, config.listen, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
