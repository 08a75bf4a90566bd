//! Several `lockstep serve` instances as their users reach them: each instance keeps a port
//! of its own across restarts, a participant's CLI command goes to one of them
//! (`lockstep --server`), and GitHub's webhook deliveries are spread across them by a front,
//! as a load balancer in front of them would.

use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use lockstep_core::{Actor, CaseId, Event, Workflow};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::{Mark, MarkKind, maintainer_of, package_fix};

/// A loopback port nobody listens on now. The instance of a slot binds it at every start.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free loopback port: {e}"))
}

#[derive(Debug)]
struct Slots {
    /// `http://127.0.0.1:PORT` of each slot's instance, `None` while it is down.
    up: Vec<Option<String>>,
    /// Webhook deliveries forwarded to each slot's instance.
    forwarded: Vec<u64>,
    rng: StdRng,
}

/// The instances' addresses by slot, shared with the webhook front.
#[derive(Debug, Clone)]
pub struct Fleet(Arc<Mutex<Slots>>);

impl Fleet {
    /// `instances` slots, all down; `seed` drives the choice of instance.
    pub fn new(instances: usize, seed: u64) -> Fleet {
        Fleet(Arc::new(Mutex::new(Slots {
            up: vec![None; instances],
            forwarded: vec![0; instances],
            rng: StdRng::seed_from_u64(seed),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks slot `i` up (at `url`) or down.
    pub fn set(&self, i: usize, url: Option<String>) {
        self.lock().up[i] = url;
    }

    /// The slots that are up, in random order.
    fn shuffled(&self) -> Vec<(usize, String)> {
        let mut s = self.lock();
        let mut up: Vec<(usize, String)> =
            s.up.iter()
                .enumerate()
                .filter_map(|(i, u)| u.clone().map(|u| (i, u)))
                .collect();
        up.shuffle(&mut s.rng);
        up
    }

    /// A random instance that is up.
    pub fn pick(&self) -> Option<String> {
        self.shuffled().into_iter().next().map(|(_, u)| u)
    }

    /// A random number in `0..n`, from the fleet's seeded generator.
    pub fn roll(&self, n: u64) -> u64 {
        self.lock().rng.random_range(0..n.max(1))
    }

    /// Webhook deliveries forwarded to each slot's instance so far.
    pub fn forwarded(&self) -> Vec<u64> {
        self.lock().forwarded.clone()
    }

    /// Serves the webhook front on loopback and returns its URL (give it to the simulator as
    /// its webhook target). Each delivery goes, headers and body unchanged, to a random
    /// instance that is up, or to the next one if that one cannot be reached; the front
    /// answers with that instance's status, or 502 when none answered.
    pub async fn webhook_front(&self) -> String {
        let fleet = self.clone();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let fleet = fleet.clone();
                let client = client.clone();
                async move { fleet.forward(&client, headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind the webhook front: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the front's address: {e}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    async fn forward(
        &self,
        client: &reqwest::Client,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        for (i, url) in self.shuffled() {
            let mut req = client.post(format!("{url}/webhooks/github"));
            for (name, value) in &headers {
                let n = name.as_str();
                if n.starts_with("x-github-") || n.starts_with("x-hub-") || n == "content-type" {
                    req = req.header(name, value);
                }
            }
            if let Ok(resp) = req.body(body.clone()).send().await {
                self.lock().forwarded[i] += 1;
                return resp.status();
            }
        }
        StatusCode::BAD_GATEWAY
    }
}

/// The arguments of the CLI command that commits `mark` on `case`.
fn mark_args(workflow: &Workflow, case: &CaseId, mark: &Mark) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let repo = mark.repo.to_string();
    let case = case.to_string();
    match mark.kind {
        MarkKind::Assess(verdict) => {
            let (flag, reason) = match verdict {
                lockstep_core::input::Verdict::NotAffected => (
                    "--not-affected",
                    "the vulnerable code path does not exist here",
                ),
                lockstep_core::input::Verdict::Affected => ("--affected", "reproduced"),
                lockstep_core::input::Verdict::Investigating => ("--investigating", "looking"),
            };
            for a in ["assess", &case, "--repo", &repo, flag, "--reason", reason] {
                args.push(a.to_owned());
            }
        }
        MarkKind::FixReleased | MarkKind::FixPrepared => {
            for a in ["fix-ready", &case, "--repo", &repo] {
                args.push(a.to_owned());
            }
            for line in package_fix(workflow, &mark.repo) {
                args.push("--line".into());
                args.push(format!(
                    "{}={}",
                    line.vulnerable_range.unwrap_or_default(),
                    line.patched_versions
                ));
            }
            if mark.kind == MarkKind::FixPrepared {
                args.push("--prepared".into());
            }
        }
    }
    args
}

/// Sends `mark` to the instance at `server` as `lockstep --server SERVER …`, as the
/// repository's maintainer (token `tok-LOGIN` on the simulator). `Err` carries the CLI's
/// one line on stderr (or the timeout).
pub async fn cli_mark(
    server: &str,
    workflow: &Workflow,
    case: &CaseId,
    mark: &Mark,
) -> Result<(), String> {
    let who = maintainer_of(workflow, &mark.repo).actor.to_string();
    let dir = std::env::temp_dir();
    let mut cmd = tokio::process::Command::new(crate::serve::lockstep_bin());
    cmd.arg("--server")
        .arg(server)
        .args(mark_args(workflow, case, mark))
        .current_dir(&dir)
        .env_remove("LOCKSTEP_DATABASE_URL")
        .env_remove("LOCKSTEP_SERVER_URL")
        .env_remove("GH_TOKEN")
        .env("GITHUB_TOKEN", format!("tok-{who}"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
        Err(_) => Err("the CLI did not answer within 30 s".into()),
        Ok(Err(e)) => Err(format!("cannot run the CLI: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        // A usage error is the harness's own bug: sending it again cannot help.
        Ok(Ok(out)) if out.status.code() == Some(2) => panic!(
            "lockstep refused the harness's command line: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(Ok(out)) => Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The events `who` committed to `case` after version `since`: what a command sent to an
/// instance committed, read back from the log (none if it committed nothing).
pub fn committed_by(events: &[Event], since: u64, who: &str) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.seq > since)
        .filter(|e| matches!(&e.by, Actor::User(l) if l.as_str() == who))
        .cloned()
        .collect()
}
