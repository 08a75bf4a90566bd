//! Shared fixtures for the integration tests.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use lockstep_sim::{
    OrgRole, Permission, RunningSim, SecondaryLimits, SimConfig, Simulator, spawn_local,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const REPO: &str = "acme/widget";
pub const REPO2: &str = "acme/gadget";
pub const PRIVATE_REPO: &str = "acme/secret";
pub const ADMIN: &str = "tok-admin";
pub const WRITER: &str = "tok-writer";
pub const READER: &str = "tok-reader";
pub const OUTSIDER: &str = "tok-outsider";
pub const SECMGR: &str = "tok-secmgr";

/// A simulator with a few repositories and users.
pub fn seeded(config: SimConfig) -> Simulator {
    let sim = Simulator::new(config);
    sim.add_user("alice", ADMIN);
    sim.add_user("bob", WRITER);
    sim.add_user("carol", READER);
    sim.add_user("mallory", OUTSIDER);
    sim.add_user("sam", SECMGR);
    sim.add_user("monalisa", "tok-monalisa");
    for r in [REPO, REPO2] {
        sim.add_repo(r).unwrap();
        sim.grant(r, "alice", Permission::Admin).unwrap();
        sim.grant(r, "bob", Permission::Write).unwrap();
        sim.grant(r, "carol", Permission::Read).unwrap();
    }
    sim.add_private_repo(PRIVATE_REPO).unwrap();
    sim.grant(PRIVATE_REPO, "alice", Permission::Admin).unwrap();
    sim.set_org_role("acme", "sam", OrgRole::SecurityManager)
        .unwrap();
    sim.add_team("acme", "security", &["bob"]).unwrap();
    sim
}

pub fn quiet_config() -> SimConfig {
    SimConfig {
        secondary: SecondaryLimits::unlimited(),
        ..SimConfig::default()
    }
}

pub async fn start() -> (Simulator, RunningSim, Api) {
    let sim = seeded(quiet_config());
    let running = spawn_local(sim.clone()).await.unwrap();
    let api = Api::new(&running.base_url);
    (sim, running, api)
}

pub fn create_body(summary: &str) -> Value {
    json!({
        "summary": summary,
        "description": "A more in-depth description of what the problem is.",
        "severity": "high",
        "cve_id": null,
        "vulnerabilities": [{
            "package": {"name": "a-package", "ecosystem": "npm"},
            "vulnerable_version_range": "< 1.0.0",
            "patched_versions": "1.0.0",
            "vulnerable_functions": ["important_function"]
        }],
        "cwe_ids": ["CWE-1101", "CWE-20"],
        "credits": [{"login": "monalisa", "type": "reporter"}, {"login": "carol", "type": "analyst"}]
    })
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .user_agent("lockstep-sim-tests")
                .build()
                .unwrap(),
        }
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .client
            .request(method, url)
            .header("accept", "application/vnd.github+json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        self.try_send(method, path, token, body, &[]).await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn create(&self, repo: &str, token: &str, summary: &str) -> Value {
        let r = self
            .post(
                &format!("/repos/{repo}/security-advisories"),
                Some(token),
                &create_body(summary),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }
}

pub fn adv_path(repo: &str, ghsa: &str) -> String {
    format!("/repos/{repo}/security-advisories/{ghsa}")
}
