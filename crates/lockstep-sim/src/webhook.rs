//! Signed webhook deliveries (`repository_advisory`, `release`, `ping`).
//!
//! Events are signed while the simulator state is locked (so the order of deliveries is
//! the order of the changes) and then posted, one at a time and in order, by a
//! background task started lazily on the current tokio runtime.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

/// A webhook target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// URL the events are POSTed to.
    pub url: String,
    /// Secret for `X-Hub-Signature-256`; no signature header without it.
    pub secret: Option<String>,
    /// Value of `X-GitHub-Hook-ID`.
    pub hook_id: u64,
}

/// A delivery attempt as recorded by the simulator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// `X-GitHub-Delivery` (a GUID).
    pub delivery_id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// `action` of the payload, if any.
    pub action: Option<String>,
    /// The exact body sent.
    pub body: String,
    /// `X-Hub-Signature-256`, if a secret was configured.
    pub signature_256: Option<String>,
    /// HTTP status returned by the receiver.
    pub status: Option<u16>,
    /// Transport error, if any.
    pub error: Option<String>,
    /// True if the delivery was dropped by fault injection (never sent).
    pub dropped: bool,
}

/// Computes GitHub's `X-Hub-Signature-256` value for a raw body.
pub fn signature_256(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) target: WebhookTarget,
    pub(crate) record: WebhookDelivery,
    pub(crate) body: Bytes,
    pub(crate) target_id: u64,
    pub(crate) target_type: &'static str,
}

#[derive(Debug)]
enum Job {
    Deliver(Box<Prepared>),
    Flush(oneshot::Sender<()>),
}

/// Webhook configuration, queue and delivery log.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub(crate) target: Option<WebhookTarget>,
    tx: Option<mpsc::UnboundedSender<Job>>,
    pub(crate) log: Arc<Mutex<Vec<WebhookDelivery>>>,
}

impl Hooks {
    fn spawn_worker(&mut self) -> Option<mpsc::UnboundedSender<Job>> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let log = Arc::clone(&self.log);
        handle.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                    Job::Deliver(p) => {
                        let mut rec = p.record.clone();
                        let mut req = client
                            .post(&p.target.url)
                            .header("content-type", "application/json")
                            .header("user-agent", "GitHub-Hookshot/lockstep-sim")
                            .header("x-github-event", &rec.event)
                            .header("x-github-delivery", &rec.delivery_id)
                            .header("x-github-hook-id", p.target.hook_id.to_string())
                            .header(
                                "x-github-hook-installation-target-id",
                                p.target_id.to_string(),
                            )
                            .header("x-github-hook-installation-target-type", p.target_type);
                        if let Some(sig) = &rec.signature_256 {
                            req = req.header("x-hub-signature-256", sig);
                        }
                        match req.body(p.body.clone()).send().await {
                            Ok(resp) => rec.status = Some(resp.status().as_u16()),
                            Err(e) => rec.error = Some(e.to_string()),
                        }
                        if let Ok(mut l) = log.lock() {
                            l.push(rec);
                        }
                    }
                }
            }
        });
        self.tx = Some(tx.clone());
        Some(tx)
    }

    fn send(&mut self, job: Job) {
        let job = match &self.tx {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                // The worker's runtime is gone (e.g. a previous test): start a new one.
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        match self.spawn_worker() {
            Some(tx) => {
                let _ = tx.send(job);
            }
            None => {
                if let Job::Deliver(p) = job {
                    let mut rec = p.record;
                    rec.error = Some("no tokio runtime to deliver the webhook".into());
                    if let Ok(mut l) = self.log.lock() {
                        l.push(rec);
                    }
                }
            }
        }
    }

    /// Queues a delivery (or records it as dropped). `copies` is 0 (drop), 1 or 2 (duplicate).
    pub(crate) fn enqueue(&mut self, p: Prepared, copies: u8) {
        if copies == 0 {
            let mut rec = p.record;
            rec.dropped = true;
            if let Ok(mut l) = self.log.lock() {
                l.push(rec);
            }
            return;
        }
        for _ in 1..copies {
            self.send(Job::Deliver(Box::new(Prepared {
                target: p.target.clone(),
                record: p.record.clone(),
                body: p.body.clone(),
                target_id: p.target_id,
                target_type: p.target_type,
            })));
        }
        self.send(Job::Deliver(Box::new(p)));
    }

    /// A receiver that resolves once every delivery queued so far has completed.
    pub(crate) fn flush(&mut self) -> Option<oneshot::Receiver<()>> {
        let tx = self.tx.as_ref()?;
        let (done_tx, done_rx) = oneshot::channel();
        tx.send(Job::Flush(done_tx)).ok()?;
        Some(done_rx)
    }
}
