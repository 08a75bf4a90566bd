//! The simulator's state and the advisory operations (shared by HTTP and the handle).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::app::{App, Installation, TokenMeta};
use crate::config::{CvePolicy, InjectedFault, SimConfig};
use crate::error::ApiError;
use crate::ledger::LedgerEntry;
use crate::model::{
    Account, AccountKind, Advisory, AdvisoryCtx, AdvisoryState, Credit, Cvss, Fork, OrgRole,
    Permission, Repo, Team, Urls, render_advisory, render_full_repo, render_simple_repo,
    render_user,
};
use crate::observe::Observer;
use crate::validate::{AdvisoryInput, Field, is_cve_id, is_cwe_id};
use crate::webhook::{Hooks, Prepared, WebhookDelivery, signature_256};

/// GitHub's GHSA alphabet.
const GHSA_ALPHABET: &[u8] = b"23456789cfghjmpqrvwx";

/// A webhook event produced by an operation.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) name: &'static str,
    pub(crate) action: Option<String>,
    pub(crate) payload: Value,
    pub(crate) target_id: u64,
}

/// Result of a successful operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpOk {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) applied: bool,
    pub(crate) repo: Option<String>,
    pub(crate) ghsa: Option<String>,
    pub(crate) state_from: Option<AdvisoryState>,
    pub(crate) state_to: Option<AdvisoryState>,
    pub(crate) events: Vec<Event>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

/// Context of the request being processed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) actor: Option<&'a str>,
    pub(crate) now: Instant,
    pub(crate) wall: DateTime<Utc>,
    pub(crate) drop_cvss: bool,
    /// The actor authenticated with an App installation token.
    pub(crate) integration: bool,
}

#[derive(Debug)]
pub(crate) struct PrimaryBucket {
    pub(crate) start: Instant,
    pub(crate) start_epoch: i64,
    pub(crate) used: u32,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: SimConfig,
    pub(crate) api_base: String,
    pub(crate) accounts: BTreeMap<String, Account>,
    pub(crate) tokens: HashMap<String, String>,
    /// Expiry and origin of tokens that have them (installation tokens).
    pub(crate) token_meta: HashMap<String, TokenMeta>,
    pub(crate) apps: BTreeMap<u64, App>,
    pub(crate) installations: BTreeMap<u64, Installation>,
    pub(crate) tokens_minted: u64,
    pub(crate) observer: Option<Observer>,
    pub(crate) org_roles: HashMap<(String, String), OrgRole>,
    pub(crate) teams: BTreeMap<(String, String), Team>,
    pub(crate) repos: BTreeMap<String, Repo>,
    next_id: u64,
    adv_seq: u64,
    ghsa_ids: HashSet<String>,
    pub(crate) id_rng: StdRng,
    pub(crate) fault_rng: StdRng,
    pub(crate) injected: HashMap<InjectedFault, u32>,
    pub(crate) ledger: Vec<LedgerEntry>,
    pub(crate) primary: HashMap<String, PrimaryBucket>,
    pub(crate) secondary: HashMap<String, VecDeque<Instant>>,
    pending_cves: Vec<(String, String, Option<Instant>)>,
    cve_counter: u64,
    pub(crate) hooks: Hooks,
    pub(crate) request_counter: u64,
    /// Pull requests in advisories' temporary private forks, by lower-cased fork
    /// `owner/name`: (number, title, open).
    pub(crate) fork_pulls: BTreeMap<String, Vec<(u64, String, bool)>>,
    /// OAuth clients and authorization codes of the web sign-in flow.
    pub(crate) oauth: crate::oauth::OAuthState,
}

fn lc(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub(crate) fn split_repo(full: &str) -> Option<(&str, &str)> {
    let (o, n) = full.split_once('/')?;
    (valid_name(o) && valid_name(n)).then_some((o, n))
}

/// Canonical map key of a GHSA id (upper-case prefix, lower-case body).
pub(crate) fn ghsa_key(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let api_base = config
            .api_base_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1".to_owned());
        Self {
            id_rng: StdRng::seed_from_u64(config.seed),
            fault_rng: StdRng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15),
            config,
            api_base,
            accounts: BTreeMap::new(),
            tokens: HashMap::new(),
            token_meta: HashMap::new(),
            apps: BTreeMap::new(),
            installations: BTreeMap::new(),
            tokens_minted: 0,
            observer: None,
            org_roles: HashMap::new(),
            teams: BTreeMap::new(),
            repos: BTreeMap::new(),
            next_id: 1_000,
            adv_seq: 0,
            ghsa_ids: HashSet::new(),
            injected: HashMap::new(),
            ledger: Vec::new(),
            primary: HashMap::new(),
            secondary: HashMap::new(),
            pending_cves: Vec::new(),
            cve_counter: 0,
            hooks: Hooks::default(),
            request_counter: 0,
            fork_pulls: BTreeMap::new(),
            oauth: Default::default(),
        }
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        self.id_rng = StdRng::seed_from_u64(seed);
        self.fault_rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Rolls a probability with the fault RNG (no draw at all when `p <= 0`).
    pub(crate) fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.fault_rng.random::<f64>() < p)
    }

    /// The login a token acts as, unless it is unknown or has expired.
    pub(crate) fn token_login(&self, token: &str, wall: DateTime<Utc>) -> Option<String> {
        if self
            .token_meta
            .get(token)
            .and_then(|m| m.expires_at)
            .is_some_and(|exp| exp <= wall)
        {
            return None;
        }
        let key = self.tokens.get(token)?;
        self.accounts.get(key).map(|a| a.login.clone())
    }

    /// True for an App installation token (`ghs_…`).
    pub(crate) fn is_installation_token(&self, token: &str) -> bool {
        self.token_meta
            .get(token)
            .is_some_and(|m| m.installation.is_some())
    }

    /// Whether an observer wants to see responses.
    pub(crate) fn observing(&self) -> bool {
        self.observer.is_some()
    }

    pub(crate) fn take_injected(&mut self, f: InjectedFault) -> bool {
        match self.injected.get_mut(&f) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn latency(&mut self) -> Duration {
        let base = self.config.faults.latency;
        let jitter = self.config.faults.jitter;
        if jitter.is_zero() {
            return base;
        }
        let j = u64::try_from(jitter.as_micros()).unwrap_or(u64::MAX / 4);
        let offset = self.fault_rng.random_range(0..=j.saturating_mul(2));
        let b = u64::try_from(base.as_micros()).unwrap_or(u64::MAX / 4);
        Duration::from_micros((b + offset).saturating_sub(j))
    }

    pub(crate) fn guid(&mut self) -> String {
        let b: [u8; 16] = self.id_rng.random();
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn new_ghsa(&mut self) -> String {
        loop {
            let mut s = String::from("GHSA");
            for _ in 0..3 {
                s.push('-');
                for _ in 0..4 {
                    let i = self.id_rng.random_range(0..GHSA_ALPHABET.len());
                    s.push(char::from(GHSA_ALPHABET[i]));
                }
            }
            if self.ghsa_ids.insert(ghsa_key(&s)) {
                return s;
            }
        }
    }

    // ---------------------------------------------------------------- seeding

    pub(crate) fn ensure_account(&mut self, login: &str, kind: AccountKind) -> String {
        let key = lc(login);
        if !self.accounts.contains_key(&key) {
            let id = self.next_id();
            self.accounts.insert(
                key.clone(),
                Account {
                    id,
                    login: login.to_owned(),
                    kind,
                },
            );
        }
        key
    }

    pub(crate) fn add_repo(&mut self, full: &str, private: bool) -> Result<(), crate::SimError> {
        let (owner, name) =
            split_repo(full).ok_or_else(|| crate::SimError::InvalidName(full.to_owned()))?;
        let key = lc(full);
        if self.repos.contains_key(&key) {
            return Err(crate::SimError::RepoExists(full.to_owned()));
        }
        if !self.accounts.contains_key(&lc(owner)) {
            self.ensure_account(owner, AccountKind::Organization);
        }
        let owner_login = self
            .accounts
            .get(&lc(owner))
            .map_or_else(|| owner.to_owned(), |a| a.login.clone());
        let id = self.next_id();
        self.repos.insert(
            key,
            Repo {
                id,
                owner: owner_login,
                name: name.to_owned(),
                private,
                pvr_enabled: true,
                perms: BTreeMap::new(),
                advisories: BTreeMap::new(),
                report_template: None,
            },
        );
        Ok(())
    }

    // ---------------------------------------------------------------- authority

    fn org_role(&self, org: &str, actor: &str) -> Option<OrgRole> {
        self.org_roles.get(&(lc(org), lc(actor))).copied()
    }

    pub(crate) fn effective_perm(&self, repo: &Repo, actor: Option<&str>) -> Option<Permission> {
        let a = actor?;
        if lc(a) == lc(&repo.owner) || self.org_role(&repo.owner, a) == Some(OrgRole::Owner) {
            return Some(Permission::Admin);
        }
        repo.perms.get(&lc(a)).copied()
    }

    fn is_security_manager(&self, repo: &Repo, actor: Option<&str>) -> bool {
        actor.is_some_and(|a| self.org_role(&repo.owner, a) == Some(OrgRole::SecurityManager))
    }

    fn can_see_repo(&self, repo: &Repo, actor: Option<&str>) -> bool {
        !repo.private
            || self.effective_perm(repo, actor).is_some()
            || self.is_security_manager(repo, actor)
    }

    fn is_advisory_admin(&self, repo: &Repo, actor: Option<&str>) -> bool {
        self.effective_perm(repo, actor) == Some(Permission::Admin)
            || self.is_security_manager(repo, actor)
    }

    fn is_collaborator(&self, repo: &Repo, adv: &Advisory, actor: Option<&str>) -> bool {
        let Some(a) = actor.map(lc) else {
            return false;
        };
        if adv.author.as_deref().map(lc).as_deref() == Some(a.as_str()) {
            return true;
        }
        if adv
            .collaborating_users
            .as_ref()
            .is_some_and(|u| u.iter().any(|l| lc(l) == a))
        {
            return true;
        }
        adv.collaborating_teams.as_ref().is_some_and(|ts| {
            ts.iter().any(|slug| {
                self.teams
                    .get(&(lc(&repo.owner), lc(slug)))
                    .is_some_and(|t| t.members.iter().any(|m| lc(m) == a))
            })
        })
    }

    fn can_see_advisory(&self, repo: &Repo, adv: &Advisory, actor: Option<&str>) -> bool {
        if adv.state.is_public() {
            self.can_see_repo(repo, actor)
        } else {
            self.is_advisory_admin(repo, actor) || self.is_collaborator(repo, adv, actor)
        }
    }

    // ---------------------------------------------------------------- rendering

    pub(crate) fn urls(&self) -> Urls<'_> {
        Urls {
            api: &self.api_base,
            html: &self.config.html_base_url,
        }
    }

    pub(crate) fn render(&self, repo: &Repo, adv: &Advisory, ctx: &Ctx<'_>) -> Value {
        let fallback;
        let owner = match self.accounts.get(&lc(&repo.owner)) {
            Some(o) => o,
            None => {
                fallback = Account {
                    id: 0,
                    login: repo.owner.clone(),
                    kind: AccountKind::Organization,
                };
                &fallback
            }
        };
        render_advisory(
            adv,
            &AdvisoryCtx {
                urls: self.urls(),
                repo,
                owner,
                accounts: &self.accounts,
                teams: &self.teams,
                now: ctx.now,
                drop_cvss: ctx.drop_cvss,
            },
        )
    }

    fn owner_account(&self, repo: &Repo) -> Account {
        self.accounts
            .get(&lc(&repo.owner))
            .cloned()
            .unwrap_or_else(|| Account {
                id: 0,
                login: repo.owner.clone(),
                kind: AccountKind::Organization,
            })
    }

    pub(crate) fn render_repo(&self, repo: &Repo, actor: Option<&str>) -> Value {
        let owner = self.owner_account(repo);
        let urls = self.urls();
        let base = render_simple_repo(repo.id, &owner, &repo.name, repo.private, false, &urls);
        let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        render_full_repo(base, &created, self.effective_perm(repo, actor), &urls)
    }

    pub(crate) fn render_actor(&self, actor: &str) -> Value {
        self.accounts
            .get(&lc(actor))
            .map_or(Value::Null, |a| render_user(a, &self.urls()))
    }

    /// Common envelope of webhook payloads for a repository.
    fn envelope(&self, repo: &Repo, actor: Option<&str>, mut body: Value) -> Value {
        if let Value::Object(m) = &mut body {
            m.insert("repository".into(), self.render_repo(repo, None));
            let owner = self.owner_account(repo);
            if owner.kind == AccountKind::Organization {
                let u = render_user(&owner, &self.urls());
                m.insert(
                    "organization".into(),
                    json!({
                        "login": owner.login, "id": owner.id, "node_id": u["node_id"],
                        "url": format!("{}/orgs/{}", self.api_base, owner.login),
                        "repos_url": format!("{}/orgs/{}/repos", self.api_base, owner.login),
                        "avatar_url": u["avatar_url"], "description": Value::Null,
                    }),
                );
            }
            if let Some(a) = actor {
                m.insert("sender".into(), self.render_actor(a));
            }
        }
        body
    }

    // ---------------------------------------------------------------- lazy async effects

    /// Assigns CVEs whose delay has elapsed.
    pub(crate) fn tick(&mut self, now: Instant, wall: DateTime<Utc>) {
        if self.pending_cves.is_empty() {
            return;
        }
        let due: Vec<(String, String)> = self
            .pending_cves
            .iter()
            .filter(|(_, _, at)| at.is_some_and(|t| t <= now))
            .map(|(r, g, _)| (r.clone(), g.clone()))
            .collect();
        for (r, g) in due {
            self.assign_cve(&r, &g, wall);
        }
    }

    /// Assigns a CVE to one pending advisory; returns the id.
    pub(crate) fn assign_cve(
        &mut self,
        repo_key: &str,
        ghsa: &str,
        wall: DateTime<Utc>,
    ) -> Option<String> {
        self.pending_cves
            .retain(|(r, g, _)| !(r == repo_key && g == &ghsa_key(ghsa)));
        self.cve_counter += 1;
        let id = format!("CVE-{}-{}", wall.format("%Y"), 50_000 + self.cve_counter);
        let adv = self
            .repos
            .get_mut(repo_key)?
            .advisories
            .get_mut(&ghsa_key(ghsa))?;
        if !adv.cve_pending {
            return None;
        }
        adv.cve_pending = false;
        if adv.cve_id.is_none() {
            adv.cve_id = Some(id.clone());
            adv.updated_at = wall;
        }
        adv.cve_id.clone()
    }

    pub(crate) fn pending_cve_list(&self) -> Vec<(String, String)> {
        self.pending_cves
            .iter()
            .map(|(r, g, _)| (r.clone(), g.clone()))
            .collect()
    }

    // ---------------------------------------------------------------- webhooks

    pub(crate) fn emit(&mut self, ev: Event) {
        let Some(target) = self.hooks.target.clone() else {
            return;
        };
        let body = Bytes::from(serde_json::to_vec(&ev.payload).unwrap_or_default());
        let sig = target.secret.as_deref().map(|s| signature_256(s, &body));
        let delivery_id = self.guid();
        let drop = self.config.faults.webhook_drop;
        let dup = self.config.faults.webhook_duplicate;
        let copies = if self.roll(drop) {
            0
        } else if self.roll(dup) {
            2
        } else {
            1
        };
        let record = WebhookDelivery {
            delivery_id,
            event: ev.name.to_owned(),
            action: ev.action,
            body: String::from_utf8_lossy(&body).into_owned(),
            signature_256: sig,
            status: None,
            error: None,
            dropped: false,
        };
        self.hooks.enqueue(
            Prepared {
                target,
                record,
                body,
                target_id: ev.target_id,
                target_type: "repository",
            },
            copies,
        );
    }

    pub(crate) fn release_event(
        &mut self,
        repo_key: &str,
        tag: &str,
        actor: Option<&str>,
        wall: DateTime<Utc>,
    ) -> Option<Event> {
        let id = self.next_id();
        let repo = self.repos.get(repo_key)?;
        let full = repo.full_name();
        let author = actor.map_or(Value::Null, |a| self.render_actor(a));
        let release = json!({
            "id": id,
            "node_id": format!("RE_kwDO{id:08}"),
            "tag_name": tag,
            "target_commitish": "main",
            "name": tag,
            "draft": false,
            "prerelease": false,
            "immutable": false,
            "url": format!("{}/repos/{full}/releases/{id}", self.api_base),
            "html_url": format!("{}/{full}/releases/tag/{tag}", self.config.html_base_url),
            "assets_url": format!("{}/repos/{full}/releases/{id}/assets", self.api_base),
            "upload_url": format!("{}/repos/{full}/releases/{id}/assets{{?name,label}}", self.api_base),
            "tarball_url": format!("{}/repos/{full}/tarball/{tag}", self.api_base),
            "zipball_url": format!("{}/repos/{full}/zipball/{tag}", self.api_base),
            "created_at": crate::model::ts(&wall),
            "published_at": crate::model::ts(&wall),
            "author": author,
            "assets": [],
            "body": Value::Null,
        });
        let payload = self.envelope(
            repo,
            actor,
            json!({"action": "published", "release": release}),
        );
        Some(Event {
            name: "release",
            action: Some("published".into()),
            payload,
            target_id: repo.id,
        })
    }

    pub(crate) fn ping_event(&mut self) -> Option<Event> {
        let t = self.hooks.target.clone()?;
        Some(Event {
            name: "ping",
            action: None,
            payload: json!({
                "zen": "Keep it logically awesome.",
                "hook_id": t.hook_id,
                "hook": {"type": "Repository", "id": t.hook_id, "name": "web", "active": true,
                         "events": ["repository_advisory", "release"],
                         "config": {"content_type": "json", "insecure_ssl": "0", "url": t.url}},
            }),
            target_id: t.hook_id,
        })
    }

    // ---------------------------------------------------------------- lookups

    fn repo_for_read(
        &self,
        owner: &str,
        name: &str,
        actor: Option<&str>,
    ) -> Result<String, ApiError> {
        let key = lc(&format!("{owner}/{name}"));
        match self.repos.get(&key) {
            Some(r) if self.can_see_repo(r, actor) => Ok(key),
            _ => Err(ApiError::not_found()),
        }
    }

    fn advisory_for_read(
        &self,
        key: &str,
        ghsa: &str,
        actor: Option<&str>,
    ) -> Result<(&Repo, &Advisory), ApiError> {
        let repo = self.repos.get(key).ok_or_else(ApiError::not_found)?;
        let adv = repo
            .advisories
            .get(&ghsa_key(ghsa))
            .ok_or_else(ApiError::not_found)?;
        if !self.can_see_advisory(repo, adv, actor) {
            return Err(ApiError::not_found());
        }
        Ok((repo, adv))
    }

    // ---------------------------------------------------------------- operations
    /// The 404/401/403 checks of create/report, run before the body is validated.
    pub(crate) fn authorize_create(
        &self,
        owner: &str,
        name: &str,
        report: bool,
        ctx: &Ctx<'_>,
    ) -> Result<(), ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        if report {
            if !repo.pvr_enabled {
                return Err(ApiError::forbidden(
                    "Private vulnerability reporting is not enabled for this repository.",
                ));
            }
        } else if !self.is_advisory_admin(repo, Some(actor)) {
            return Err(ApiError::forbidden("Must have admin rights to Repository."));
        }
        Ok(())
    }

    /// The 404/401/403 checks of PATCH, run before the body is validated.
    pub(crate) fn authorize_update(
        &self,
        owner: &str,
        name: &str,
        ghsa: &str,
        ctx: &Ctx<'_>,
    ) -> Result<(), ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let (repo, adv) = self.advisory_for_read(&key, ghsa, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        if !self.is_advisory_admin(repo, Some(actor))
            && !self.is_collaborator(repo, adv, Some(actor))
        {
            return Err(ApiError::forbidden(
                "You must be a security manager, an administrator or a collaborator on this advisory to update it.",
            ));
        }
        Ok(())
    }

    pub(crate) fn op_user(&self, ctx: &Ctx<'_>) -> Result<OpOk, ApiError> {
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        if ctx.integration {
            // An installation token acts as the App, not as a user.
            return Err(ApiError::basic(
                403,
                "Resource not accessible by integration",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ));
        }
        let mut u = self.render_actor(actor);
        if let Value::Object(m) = &mut u {
            m.insert("name".into(), Value::Null);
            m.insert("email".into(), Value::Null);
            m.insert("created_at".into(), json!("2020-01-01T00:00:00Z"));
        }
        Ok(OpOk {
            status: 200,
            body: u,
            ..OpOk::default()
        })
    }

    /// `GET /users/{login}`: any account, to anyone; 404 for a login GitHub does not know.
    pub(crate) fn op_user_by_login(&self, login: &str) -> Result<OpOk, ApiError> {
        match self.render_actor(login) {
            Value::Null => Err(ApiError::not_found()),
            u => Ok(OpOk {
                status: 200,
                body: u,
                ..OpOk::default()
            }),
        }
    }

    pub(crate) fn op_get_repo(
        &self,
        owner: &str,
        name: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        Ok(OpOk {
            status: 200,
            body: self.render_repo(repo, ctx.actor),
            repo: Some(repo.full_name()),
            ..OpOk::default()
        })
    }

    /// The advisory whose temporary private fork is `owner/name`, with its repository key.
    pub(crate) fn fork_parent(&self, owner: &str, name: &str) -> Option<(String, String)> {
        self.repos.iter().find_map(|(key, repo)| {
            if lc(&repo.owner) != lc(owner) {
                return None;
            }
            repo.advisories.values().find_map(|a| {
                a.private_fork
                    .as_ref()
                    .filter(|f| lc(&f.name) == lc(name))
                    .map(|_| (key.clone(), a.ghsa_id.clone()))
            })
        })
    }

    /// `GET /repos/{owner}/{fork}/pulls` on an advisory's temporary private fork (the only
    /// repositories whose pull requests the simulator models). The fork is private: only the
    /// advisory's administrators and collaborators see it, anyone else gets 404. `state` is
    /// `open` (the default), `closed` or `all`; merged pull requests are closed.
    pub(crate) fn op_list_fork_pulls(
        &self,
        owner: &str,
        name: &str,
        query: Option<&str>,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let (key, ghsa) = self
            .fork_parent(owner, name)
            .ok_or_else(ApiError::not_found)?;
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let adv = repo
            .advisories
            .get(&ghsa_key(&ghsa))
            .ok_or_else(ApiError::not_found)?;
        if !self.is_advisory_admin(repo, ctx.actor) && !self.is_collaborator(repo, adv, ctx.actor) {
            return Err(ApiError::not_found());
        }
        let state = query
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("state="))
            .unwrap_or("open");
        if !matches!(state, "open" | "closed" | "all") {
            return Err(ApiError::validation(
                &format!("{state:?} is not a valid state."),
                Some("state"),
                "invalid",
            ));
        }
        let full = format!("{}/{}", repo.owner, name);
        let pulls: Vec<Value> = self
            .fork_pulls
            .get(&lc(&full))
            .into_iter()
            .flatten()
            .filter(|(_, _, open)| match state {
                "open" => *open,
                "closed" => !*open,
                _ => true,
            })
            .map(|(number, title, open)| {
                // The fields every pull request carries (and octocrab's model requires);
                // branch names and SHAs are made up, stable per pull request.
                json!({
                    "id": number,
                    "number": number,
                    "state": if *open { "open" } else { "closed" },
                    "locked": false,
                    "title": title,
                    "url": format!("{}/repos/{full}/pulls/{number}", self.api_base),
                    "html_url": format!("https://github.com/{full}/pull/{number}"),
                    "head": {"label": format!("{}:fix-{number}", repo.owner),
                             "ref": format!("fix-{number}"), "sha": format!("{number:040x}")},
                    "base": {"label": format!("{}:main", repo.owner),
                             "ref": "main", "sha": format!("{:040x}", 0)},
                })
            })
            .collect();
        Ok(OpOk {
            status: 200,
            body: Value::Array(pulls),
            repo: Some(repo.full_name()),
            ..OpOk::default()
        })
    }

    pub(crate) fn op_collaborator_permission(
        &self,
        owner: &str,
        name: &str,
        user: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        if ctx.actor.is_none() {
            return Err(ApiError::requires_auth());
        }
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        // Users need push access; an installation token needs only the installation
        // (metadata read) on the repository.
        let allowed = if ctx.integration {
            self.effective_perm(repo, ctx.actor).is_some()
        } else {
            self.effective_perm(repo, ctx.actor) >= Some(Permission::Write)
        };
        if !allowed {
            return Err(ApiError::basic(
                403,
                "Must have push access to view repository collaborators.",
                "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user",
            ));
        }
        let account = self
            .accounts
            .get(&lc(user))
            .ok_or_else(ApiError::not_found)?;
        let perm = self
            .effective_perm(repo, Some(user))
            .or((!repo.private).then_some(Permission::Read));
        let mut u = render_user(account, &self.urls());
        if let Value::Object(m) = &mut u {
            m.insert(
                "permissions".into(),
                json!({
                    "admin": perm >= Some(Permission::Admin),
                    "maintain": perm >= Some(Permission::Maintain),
                    "push": perm >= Some(Permission::Write),
                    "triage": perm >= Some(Permission::Triage),
                    "pull": perm >= Some(Permission::Read),
                }),
            );
            m.insert(
                "role_name".into(),
                json!(perm.map_or("none", Permission::role_name)),
            );
        }
        Ok(OpOk {
            status: 200,
            body: json!({
                "permission": perm.map_or("none", Permission::legacy_name),
                "role_name": perm.map_or("none", Permission::role_name),
                "user": u,
            }),
            repo: Some(repo.full_name()),
            ..OpOk::default()
        })
    }

    pub(crate) fn op_get(
        &self,
        owner: &str,
        name: &str,
        ghsa: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let (repo, adv) = self.advisory_for_read(&key, ghsa, ctx.actor)?;
        Ok(OpOk {
            status: 200,
            body: self.render(repo, adv, ctx),
            repo: Some(repo.full_name()),
            ghsa: Some(adv.ghsa_id.clone()),
            ..OpOk::default()
        })
    }

    /// Lists visible advisories of the given repositories with cursor pagination.
    pub(crate) fn op_list(
        &self,
        repo_keys: &[String],
        query: &ListQuery,
        path: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let mut items: Vec<(i64, u64, &Repo, &Advisory)> = Vec::new();
        for key in repo_keys {
            let Some(repo) = self.repos.get(key) else {
                continue;
            };
            for adv in repo.advisories.values() {
                if query.state.is_some_and(|s| s != adv.state) {
                    continue;
                }
                if !self.can_see_advisory(repo, adv, ctx.actor) {
                    continue;
                }
                let k = match query.sort {
                    SortKey::Created => adv.created_at,
                    SortKey::Updated => adv.updated_at,
                    SortKey::Published => adv.published_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                };
                let k = k.timestamp_micros();
                items.push((k, adv.seq, repo, adv));
            }
        }
        items.sort_by_key(|(k, s, _, _)| (*k, *s));
        if query.descending {
            items.reverse();
        }
        let desc = query.descending;
        // `a` comes strictly after `b` in the listing order.
        let after = |a: (i64, u64), b: (i64, u64)| if desc { a < b } else { a > b };
        let n = query.per_page;
        let (start, end) = if let Some(c) = query.after {
            let s = items
                .iter()
                .position(|(k, q, _, _)| after((*k, *q), c))
                .unwrap_or(items.len());
            (s, (s + n).min(items.len()))
        } else if let Some(c) = query.before {
            let e = items
                .iter()
                .position(|(k, q, _, _)| !after(c, (*k, *q)))
                .unwrap_or(items.len());
            (e.saturating_sub(n), e)
        } else {
            (0, n.min(items.len()))
        };
        let page = &items[start..end];
        let mut links = Vec::new();
        let link = |rel: &str, param: &str, cursor: (i64, u64)| {
            let mut q: Vec<String> = query
                .passthrough
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            q.push(format!("{param}={}", encode_cursor(cursor)));
            format!("<{}{path}?{}>; rel=\"{rel}\"", self.api_base, q.join("&"))
        };
        if let Some(last) = page.last()
            && end < items.len()
        {
            links.push(link("next", "after", (last.0, last.1)));
        }
        if let Some(first) = page.first()
            && start > 0
        {
            links.push(link("prev", "before", (first.0, first.1)));
        }
        let body: Vec<Value> = page
            .iter()
            .map(|(_, _, repo, adv)| self.render(repo, adv, ctx))
            .collect();
        let mut headers = Vec::new();
        if !links.is_empty() {
            headers.push(("link", links.join(", ")));
        }
        Ok(OpOk {
            status: 200,
            body: Value::Array(body),
            headers,
            ..OpOk::default()
        })
    }

    pub(crate) fn op_list_repo(
        &self,
        owner: &str,
        name: &str,
        q: &ListQuery,
        path: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let mut ok = self.op_list(std::slice::from_ref(&key), q, path, ctx)?;
        ok.repo = self.repos.get(&key).map(Repo::full_name);
        Ok(ok)
    }

    pub(crate) fn op_list_org(
        &self,
        org: &str,
        q: &ListQuery,
        path: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let acct = self
            .accounts
            .get(&lc(org))
            .filter(|a| a.kind == AccountKind::Organization)
            .ok_or_else(ApiError::not_found)?;
        let actor = ctx.actor.ok_or_else(ApiError::not_found)?;
        match self.org_role(&acct.login, actor) {
            Some(OrgRole::Owner | OrgRole::SecurityManager) => {}
            _ => {
                return Err(ApiError::forbidden(
                    "You must be an organization owner or security manager to list repository security advisories for this organization.",
                ));
            }
        }
        let keys: Vec<String> = self
            .repos
            .iter()
            .filter(|(_, r)| lc(&r.owner) == lc(org))
            .map(|(k, _)| k.clone())
            .collect();
        self.op_list(&keys, q, path, ctx)
    }

    fn check_common(&self, repo: &Repo, input: &AdvisoryInput) -> Result<Option<Cvss>, ApiError> {
        let _ = repo;
        if let (Field::Set(_), Field::Set(_)) = (&input.severity, &input.cvss_vector_string) {
            return Err(ApiError::validation(
                "You must choose between setting severity or cvss_vector_string, not both.",
                Some("severity"),
                "invalid",
            ));
        }
        let cvss = match &input.cvss_vector_string {
            Field::Set(v) => Some(parse_cvss(v)?),
            _ => None,
        };
        if let Field::Set(cve) = &input.cve_id
            && !is_cve_id(cve)
        {
            return Err(ApiError::validation(
                &format!("{cve:?} is not a valid CVE ID."),
                Some("cve_id"),
                "invalid",
            ));
        }
        if let Field::Set(ids) = &input.cwe_ids
            && let Some(bad) = ids.iter().find(|i| !is_cwe_id(i))
        {
            return Err(ApiError::validation(
                &format!("{bad:?} is not a valid CWE ID."),
                Some("cwe_ids"),
                "invalid",
            ));
        }
        if let Field::Set(credits) = &input.credits
            && let Some(bad) = credits
                .iter()
                .find(|c| !self.accounts.contains_key(&lc(&c.login)))
        {
            return Err(ApiError::validation(
                &format!("Credited user {:?} could not be found.", bad.login),
                Some("credits"),
                "invalid",
            ));
        }
        Ok(cvss)
    }

    fn display_login(&self, login: &str) -> String {
        self.accounts
            .get(&lc(login))
            .map_or_else(|| login.to_owned(), |a| a.login.clone())
    }

    fn make_fork(&mut self, repo_key: &str, ghsa: &str, now: Instant) -> Option<Fork> {
        let id = self.next_id();
        let repo = self.repos.get(repo_key)?;
        Some(Fork {
            id,
            name: format!("{}-{}", repo.name, ghsa.to_ascii_lowercase()),
            ready_at: now + self.config.fork_delay,
        })
    }

    /// POST create (`report == false`) or POST reports (`report == true`).
    pub(crate) fn op_create(
        &mut self,
        owner: &str,
        name: &str,
        input: AdvisoryInput,
        report: bool,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        self.authorize_create(owner, name, report, ctx)?;
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let cvss = self.check_common(repo, &input)?;
        if report && let Some(t) = &repo.report_template {
            let violations = t.check(input.description.value().map_or("", String::as_str));
            if !violations.is_empty() {
                return Err(ApiError::template(&violations));
            }
        }
        let ghsa = self.new_ghsa();
        self.adv_seq += 1;
        let actor_login = self.display_login(actor);
        let mut credits: Vec<Credit> = input
            .credits
            .value()
            .map(|cs| {
                cs.iter()
                    .map(|c| Credit {
                        login: self.display_login(&c.login),
                        kind: c.kind.clone(),
                        state: if lc(&c.login) == lc(actor) {
                            "accepted"
                        } else {
                            "pending"
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        if report {
            credits.push(Credit {
                login: actor_login.clone(),
                kind: "reporter".into(),
                state: "accepted",
            });
        }
        let fork = if input.start_private_fork.value() == Some(&true) {
            self.make_fork(&key, &ghsa, ctx.now)
        } else {
            None
        };
        let state = if report {
            AdvisoryState::Triage
        } else {
            AdvisoryState::Draft
        };
        let adv = Advisory {
            seq: self.adv_seq,
            ghsa_id: ghsa.clone(),
            cve_id: input.cve_id.value().cloned(),
            summary: input.summary.value().cloned().unwrap_or_default(),
            description: input.description.value().cloned().unwrap_or_default(),
            severity: if cvss.is_some() {
                None
            } else {
                input.severity.value().cloned()
            },
            cvss,
            author: Some(actor_login),
            publisher: None,
            state,
            created_at: ctx.wall,
            updated_at: ctx.wall,
            published_at: None,
            closed_at: None,
            withdrawn_at: None,
            submission_accepted: report.then_some(false),
            vulnerabilities: input.vulnerabilities.into_option().unwrap_or_default(),
            cwe_ids: input.cwe_ids.into_option().unwrap_or_default(),
            credits,
            collaborating_users: None,
            collaborating_teams: None,
            private_fork: fork,
            cve_pending: false,
        };
        let Some(repo) = self.repos.get_mut(&key) else {
            return Err(ApiError::not_found());
        };
        repo.advisories.insert(ghsa_key(&ghsa), adv);
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let adv = repo
            .advisories
            .get(&ghsa_key(&ghsa))
            .ok_or_else(ApiError::not_found)?;
        let body = self.render(repo, adv, ctx);
        let mut events = Vec::new();
        if report {
            let payload = self.envelope(
                repo,
                Some(actor),
                json!({"action": "reported", "repository_advisory": self.render(repo, adv, &Ctx { drop_cvss: false, ..*ctx })}),
            );
            events.push(Event {
                name: "repository_advisory",
                action: Some("reported".into()),
                payload,
                target_id: repo.id,
            });
        }
        Ok(OpOk {
            status: 201,
            body,
            applied: true,
            repo: Some(repo.full_name()),
            ghsa: Some(ghsa),
            state_from: None,
            state_to: Some(state),
            events,
            headers: Vec::new(),
        })
    }

    /// PATCH.
    pub(crate) fn op_update(
        &mut self,
        owner: &str,
        name: &str,
        ghsa: &str,
        input: AdvisoryInput,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let (repo, adv) = self.advisory_for_read(&key, ghsa, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        let admin = self.is_advisory_admin(repo, Some(actor));
        if !admin && !self.is_collaborator(repo, adv, Some(actor)) {
            return Err(ApiError::forbidden(
                "You must be a security manager, an administrator or a collaborator on this advisory to update it.",
            ));
        }
        if !input.state.is_absent() && !admin {
            return Err(ApiError::forbidden(
                "Only security managers and repository administrators can change the state of an advisory.",
            ));
        }
        if adv.state == AdvisoryState::Withdrawn {
            return Err(ApiError::validation(
                "Cannot update a withdrawn advisory.",
                None,
                "invalid",
            ));
        }
        let cvss = self.check_common(repo, &input)?;
        let mut next = adv.clone();
        let from = adv.state;
        // Severity XOR CVSS.
        if let Field::Set(sev) = &input.severity {
            if adv.cvss.is_some() && !matches!(input.cvss_vector_string, Field::Null) {
                return Err(ApiError::validation(
                    "Cannot update severity value when CVSS is set.",
                    Some("severity"),
                    "invalid",
                ));
            }
            next.severity = Some(sev.clone());
        }
        match &input.cvss_vector_string {
            Field::Set(_) => {
                next.cvss = cvss;
                next.severity = None;
            }
            Field::Null => next.cvss = None,
            Field::Absent => {}
        }
        if matches!(input.severity, Field::Null) {
            next.severity = None;
        }
        if let Field::Set(users) = &input.collaborating_users
            && let Some(bad) = users.iter().find(|u| !self.accounts.contains_key(&lc(u)))
        {
            return Err(ApiError::validation(
                &format!("User {bad:?} could not be found."),
                Some("collaborating_users"),
                "invalid",
            ));
        }
        if let Field::Set(teams) = &input.collaborating_teams
            && let Some(bad) = teams
                .iter()
                .find(|t| !self.teams.contains_key(&(lc(&repo.owner), lc(t))))
        {
            return Err(ApiError::validation(
                &format!("Team {bad:?} could not be found."),
                Some("collaborating_teams"),
                "invalid",
            ));
        }
        let to = match input.state.value() {
            Some(s) => {
                let to = AdvisoryState::parse(s).unwrap_or(from);
                self.check_transition(from, to)?;
                if to == AdvisoryState::Published && from != to {
                    check_publishable(&next)?;
                }
                Some(to)
            }
            None => None,
        };
        if let Field::Set(s) = input.summary {
            next.summary = s;
        }
        if let Field::Set(d) = input.description {
            next.description = d;
        }
        match input.cve_id {
            Field::Set(c) => next.cve_id = Some(c),
            Field::Null => next.cve_id = None,
            Field::Absent => {}
        }
        if let Field::Set(v) = input.vulnerabilities {
            next.vulnerabilities = v;
        }
        match input.cwe_ids {
            Field::Set(c) => next.cwe_ids = c,
            Field::Null => next.cwe_ids = Vec::new(),
            Field::Absent => {}
        }
        match input.credits {
            Field::Set(cs) => {
                next.credits = cs
                    .iter()
                    .map(|c| {
                        let state = adv
                            .credits
                            .iter()
                            .find(|o| lc(&o.login) == lc(&c.login) && o.kind == c.kind)
                            .map_or(
                                if lc(&c.login) == lc(actor) {
                                    "accepted"
                                } else {
                                    "pending"
                                },
                                |o| o.state,
                            );
                        Credit {
                            login: self.display_login(&c.login),
                            kind: c.kind.clone(),
                            state,
                        }
                    })
                    .collect();
            }
            Field::Null => next.credits = Vec::new(),
            Field::Absent => {}
        }
        match input.collaborating_users {
            Field::Set(u) => {
                next.collaborating_users = Some(u.iter().map(|l| self.display_login(l)).collect())
            }
            Field::Null => next.collaborating_users = None,
            Field::Absent => {}
        }
        match input.collaborating_teams {
            Field::Set(t) => next.collaborating_teams = Some(t),
            Field::Null => next.collaborating_teams = None,
            Field::Absent => {}
        }
        let mut state_change = None;
        if let Some(to) = to
            && to != from
        {
            next.state = to;
            state_change = Some(to);
            match to {
                AdvisoryState::Published => {
                    next.published_at = Some(ctx.wall);
                    next.publisher = Some(self.display_login(actor));
                    // GitHub drops the credits nobody accepted when the advisory publishes.
                    next.credits.retain(|c| c.state == "accepted");
                }
                AdvisoryState::Closed => next.closed_at = Some(ctx.wall),
                AdvisoryState::Draft => {
                    next.closed_at = None;
                    if from == AdvisoryState::Triage {
                        next.submission_accepted = Some(true);
                    }
                }
                AdvisoryState::Triage | AdvisoryState::Withdrawn => {}
            }
        }
        let changed = !same_content(adv, &next);
        if changed {
            next.updated_at = ctx.wall;
        }
        let ghsa_id = next.ghsa_id.clone();
        let repo_full = repo.full_name();
        if changed && let Some(r) = self.repos.get_mut(&key) {
            r.advisories.insert(ghsa_key(&ghsa_id), next);
        }
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let adv = repo
            .advisories
            .get(&ghsa_key(&ghsa_id))
            .ok_or_else(ApiError::not_found)?;
        let body = self.render(repo, adv, ctx);
        let mut events = Vec::new();
        if state_change == Some(AdvisoryState::Published) {
            events.push(self.published_event(repo, adv, actor, ctx));
        }
        Ok(OpOk {
            status: 200,
            body,
            applied: changed,
            repo: Some(repo_full),
            ghsa: Some(ghsa_id),
            state_from: state_change.map(|_| from),
            state_to: state_change,
            events,
            headers: Vec::new(),
        })
    }

    fn published_event(&self, repo: &Repo, adv: &Advisory, actor: &str, ctx: &Ctx<'_>) -> Event {
        let payload = self.envelope(
            repo,
            Some(actor),
            json!({"action": "published", "repository_advisory": self.render(repo, adv, &Ctx { drop_cvss: false, ..*ctx })}),
        );
        Event {
            name: "repository_advisory",
            action: Some("published".into()),
            payload,
            target_id: repo.id,
        }
    }

    fn check_transition(&self, from: AdvisoryState, to: AdvisoryState) -> Result<(), ApiError> {
        use AdvisoryState as S;
        let ok = match (from, to) {
            (S::Published, S::Published) => !self.config.republish_is_error,
            (a, b) if a == b => true,
            (S::Triage, S::Draft | S::Closed)
            | (S::Draft, S::Closed | S::Published)
            | (S::Closed, S::Draft) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::validation(
                &format!(
                    "Invalid state transition from `{}` to `{}`.",
                    from.as_str(),
                    to.as_str()
                ),
                Some("state"),
                "invalid",
            ))
        }
    }

    /// POST …/cve.
    pub(crate) fn op_request_cve(
        &mut self,
        owner: &str,
        name: &str,
        ghsa: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let (repo, adv) = self.advisory_for_read(&key, ghsa, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        if !self.is_advisory_admin(repo, Some(actor)) {
            return Err(ApiError::forbidden("Must have admin rights to Repository."));
        }
        if repo.private {
            return Err(ApiError::validation(
                "You may request a CVE for public repositories, but cannot do so for private repositories.",
                None,
                "unprocessable",
            ));
        }
        if adv.cve_id.is_some() {
            return Err(ApiError::validation(
                "This advisory already has a CVE ID.",
                Some("cve_id"),
                "already_exists",
            ));
        }
        if adv.cve_pending {
            return Err(ApiError::validation(
                "A CVE ID has already been requested for this advisory.",
                Some("cve_id"),
                "already_exists",
            ));
        }
        if !matches!(adv.state, AdvisoryState::Draft | AdvisoryState::Published) {
            return Err(ApiError::validation(
                &format!(
                    "Cannot request a CVE for an advisory in state `{}`.",
                    adv.state.as_str()
                ),
                Some("state"),
                "invalid",
            ));
        }
        let gk = ghsa_key(&adv.ghsa_id);
        let ghsa_id = adv.ghsa_id.clone();
        let full = repo.full_name();
        if let Some(a) = self
            .repos
            .get_mut(&key)
            .and_then(|r| r.advisories.get_mut(&gk))
        {
            a.cve_pending = true;
        }
        match self.config.cve_policy {
            CvePolicy::Immediate => {
                self.assign_cve(&key, &gk, ctx.wall);
            }
            CvePolicy::AfterDelay { ms } => {
                self.pending_cves
                    .push((key.clone(), gk, Some(ctx.now + Duration::from_millis(ms))))
            }
            CvePolicy::Manual => self.pending_cves.push((key.clone(), gk, None)),
        }
        Ok(OpOk {
            status: 202,
            body: json!({}),
            applied: true,
            repo: Some(full),
            ghsa: Some(ghsa_id),
            ..OpOk::default()
        })
    }

    /// POST …/forks.
    pub(crate) fn op_fork(
        &mut self,
        owner: &str,
        name: &str,
        ghsa: &str,
        ctx: &Ctx<'_>,
    ) -> Result<OpOk, ApiError> {
        let key = self.repo_for_read(owner, name, ctx.actor)?;
        let (repo, adv) = self.advisory_for_read(&key, ghsa, ctx.actor)?;
        let actor = ctx.actor.ok_or_else(ApiError::requires_auth)?;
        if !self.is_advisory_admin(repo, Some(actor))
            && !self.is_collaborator(repo, adv, Some(actor))
        {
            return Err(ApiError::forbidden(
                "You do not have permission to create a private fork for this advisory.",
            ));
        }
        if !matches!(adv.state, AdvisoryState::Draft | AdvisoryState::Triage) {
            return Err(ApiError::validation(
                &format!(
                    "Cannot create a private fork for an advisory in state `{}`.",
                    adv.state.as_str()
                ),
                Some("state"),
                "invalid",
            ));
        }
        let gk = ghsa_key(&adv.ghsa_id);
        let ghsa_id = adv.ghsa_id.clone();
        let full = repo.full_name();
        let mut applied = false;
        let fork = match adv.private_fork.clone() {
            Some(f) => f,
            None => {
                let f = self
                    .make_fork(&key, &ghsa_id, ctx.now)
                    .ok_or_else(ApiError::not_found)?;
                if let Some(a) = self
                    .repos
                    .get_mut(&key)
                    .and_then(|r| r.advisories.get_mut(&gk))
                {
                    a.private_fork = Some(f.clone());
                    a.updated_at = ctx.wall;
                }
                applied = true;
                f
            }
        };
        let repo = self.repos.get(&key).ok_or_else(ApiError::not_found)?;
        let owner_acct = self.owner_account(repo);
        let urls = self.urls();
        let base = render_simple_repo(fork.id, &owner_acct, &fork.name, true, true, &urls);
        let mut body = render_full_repo(base, &ctx.wall, Some(Permission::Admin), &urls);
        if let Value::Object(m) = &mut body {
            m.insert("parent".into(), self.render_repo(repo, None));
            m.insert("source".into(), self.render_repo(repo, None));
        }
        Ok(OpOk {
            status: 202,
            body,
            applied,
            repo: Some(full),
            ghsa: Some(ghsa_id),
            ..OpOk::default()
        })
    }

    /// A change made "in GitHub's UI" (or by GitHub itself): withdraw.
    pub(crate) fn withdraw(
        &mut self,
        repo_key: &str,
        ghsa: &str,
        wall: DateTime<Utc>,
    ) -> Result<(String, AdvisoryState), ApiError> {
        let adv = self
            .repos
            .get_mut(repo_key)
            .and_then(|r| r.advisories.get_mut(&ghsa_key(ghsa)))
            .ok_or_else(ApiError::not_found)?;
        if adv.state != AdvisoryState::Published {
            return Err(ApiError::validation(
                &format!(
                    "Invalid state transition from `{}` to `withdrawn`.",
                    adv.state.as_str()
                ),
                Some("state"),
                "invalid",
            ));
        }
        adv.state = AdvisoryState::Withdrawn;
        adv.withdrawn_at = Some(wall);
        adv.updated_at = wall;
        Ok((adv.ghsa_id.clone(), AdvisoryState::Published))
    }
}

fn same_content(a: &Advisory, b: &Advisory) -> bool {
    a.cve_id == b.cve_id
        && a.summary == b.summary
        && a.description == b.description
        && a.severity == b.severity
        && a.cvss == b.cvss
        && a.state == b.state
        && a.vulnerabilities == b.vulnerabilities
        && a.cwe_ids == b.cwe_ids
        && a.credits == b.credits
        && a.collaborating_users == b.collaborating_users
        && a.collaborating_teams == b.collaborating_teams
        && a.submission_accepted == b.submission_accepted
}

/// Publishing requires affected products with package names and ecosystems. GitHub's
/// "Publishing a repository security advisory" makes it a prerequisite ("Before you can
/// publish a security advisory or request a CVE identification number, you must create a
/// draft security advisory and provide information about the versions of your project
/// affected",
/// <https://docs.github.com/en/code-security/security-advisories/working-with-repository-security-advisories/publishing-a-repository-security-advisory>),
/// and its UI refuses to publish without them. The stored draft is checked, as it is before
/// the PATCH applies: a draft a maintainer stripped of its products is refused even when the
/// publishing PATCH carries them, so a wave without Lockstep's preflight stops halfway.
/// (The ecosystem is always set here: the schema requires it on every `package`.)
fn check_publishable(a: &Advisory) -> Result<(), ApiError> {
    if a.vulnerabilities.is_empty() {
        return Err(ApiError::validation(
            "Advisory cannot be published without at least one affected product.",
            Some("vulnerabilities"),
            "missing_field",
        ));
    }
    if a.vulnerabilities
        .iter()
        .any(|v| v.name.as_deref().is_none_or(str::is_empty))
    {
        return Err(ApiError::validation(
            "Advisory cannot be published: every affected product needs a package name.",
            Some("vulnerabilities"),
            "missing_field",
        ));
    }
    Ok(())
}

fn parse_cvss(v: &str) -> Result<Cvss, ApiError> {
    let bad = || {
        ApiError::validation(
            &format!("{v:?} is not a valid CVSS vector string."),
            Some("cvss_vector_string"),
            "invalid",
        )
    };
    if !(v.starts_with("CVSS:3.0/") || v.starts_with("CVSS:3.1/") || v.starts_with("CVSS:4.0/")) {
        return Err(bad());
    }
    let parsed: cvss::Cvss = v.parse().map_err(|_| bad())?;
    let score = (parsed.score() * 10.0).round() / 10.0;
    Ok(Cvss {
        vector: v.to_owned(),
        score,
        v4: v.starts_with("CVSS:4.0/"),
    })
}

// ---------------------------------------------------------------- list query

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortKey {
    Created,
    Updated,
    Published,
}

#[derive(Clone, Debug)]
pub(crate) struct ListQuery {
    pub(crate) descending: bool,
    pub(crate) sort: SortKey,
    pub(crate) per_page: usize,
    pub(crate) state: Option<AdvisoryState>,
    pub(crate) before: Option<(i64, u64)>,
    pub(crate) after: Option<(i64, u64)>,
    /// Query parameters repeated in `Link` URLs (everything except the cursors).
    pub(crate) passthrough: Vec<(String, String)>,
}

fn encode_cursor(c: (i64, u64)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", c.0, c.1))
}

fn decode_cursor(s: &str) -> Option<(i64, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut it = text.split(':');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some("v1"), Some(k), Some(s), None) => Some((k.parse().ok()?, s.parse().ok()?)),
        _ => None,
    }
}

impl ListQuery {
    /// Parses the list query string; errors are 400 `basic-error`s.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self {
            descending: true,
            sort: SortKey::Created,
            per_page: 30,
            state: None,
            before: None,
            after: None,
            passthrough: Vec::new(),
        };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "direction" => {
                    q.descending = match v {
                        "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(ApiError::bad_request(&format!(
                                "Invalid value for direction: {v:?}"
                            )));
                        }
                    };
                }
                "sort" => {
                    q.sort = match v {
                        "created" => SortKey::Created,
                        "updated" => SortKey::Updated,
                        "published" => SortKey::Published,
                        _ => {
                            return Err(ApiError::bad_request(&format!(
                                "Invalid value for sort: {v:?}"
                            )));
                        }
                    };
                }
                "per_page" => {
                    q.per_page = match v.parse::<usize>() {
                        Ok(n) if (1..=100).contains(&n) => n,
                        _ => {
                            return Err(ApiError::bad_request(&format!(
                                "Invalid value for per_page: {v:?}"
                            )));
                        }
                    };
                }
                "state" => {
                    q.state = match v {
                        "triage" | "draft" | "published" | "closed" => AdvisoryState::parse(v),
                        _ => {
                            return Err(ApiError::bad_request(&format!(
                                "Invalid value for state: {v:?}"
                            )));
                        }
                    };
                }
                "before" => {
                    q.before = Some(
                        decode_cursor(v).ok_or_else(|| ApiError::bad_request("Invalid cursor"))?,
                    );
                    continue;
                }
                "after" => {
                    q.after = Some(
                        decode_cursor(v).ok_or_else(|| ApiError::bad_request("Invalid cursor"))?,
                    );
                    continue;
                }
                _ => continue,
            }
            q.passthrough.push((k.to_owned(), v.to_owned()));
        }
        if q.before.is_some() && q.after.is_some() {
            return Err(ApiError::bad_request(
                "Cannot use both before and after cursors",
            ));
        }
        Ok(q)
    }
}

use bytes::Bytes;
