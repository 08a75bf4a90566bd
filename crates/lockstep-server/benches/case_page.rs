//! The dashboard's case page of a 100-repository case, rendered on the server, against the
//! JSON API's answer for the same case (`GET /api/cases/{id}`), both over HTTP from the same
//! client to the same server in the same run.
//!
//! The case: 100 repositories in ten waves (`publish_after`), drafts opened by the runtime
//! against the simulator, every repository assessed and half of them with a fix marked. The
//! coordinator signs in through the simulator's OAuth page (over HTTP, as a browser would).
//! Targets: the page at most 3× the API's answer, and at most 50 ms.
//!
//! Run: `cargo bench -p lockstep-server --bench case_page` (optionally `-- <iterations>`).
#![allow(clippy::unwrap_used, unreachable_pub)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const REPOS: usize = 100;

fn workflow() -> String {
    let mut w = String::from(
        "name = \"wide\"\ncoordinators = [\"alice\"]\n[embargo]\ndefault_days = 30\nmax_days = 60\ndeadline_policy = \"hold-all\"\n",
    );
    for i in 0..REPOS {
        w.push_str(&format!(
            "[[repo]]\nname = \"wide/r{i:03}\"\necosystem = \"npm\"\npackages = [\"r{i:03}\"]\nmaintainers = [\"bob\"]\n"
        ));
        if i >= 10 {
            w.push_str(&format!("publish_after = [\"wide/r{:03}\"]\n", i - 10));
        }
    }
    w
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Signs in as `login` through the OAuth flow, over HTTP; answers the session cookie.
async fn sign_in(base: &str, login: &str) -> String {
    let c = http();
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    let pending = cookie_of(&r, "lockstep_oauth");
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    let (sim, query) = authorize.split_once('?').unwrap();
    let mut form: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    form.push(("login".into(), login.into()));
    let r = c.post(sim).form(&form).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c
        .get(callback)
        .header("cookie", pending)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    cookie_of(&r, "lockstep_session")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let w = world_with(Options {
            web: true,
            inline_workflows: true,
            ..Options::default()
        })
        .await;
        for i in 0..REPOS {
            let repo = format!("wide/r{i:03}");
            w.sim.add_repo(&repo).unwrap();
            w.sim
                .grant(&repo, "lockstep-bot", lockstep_sim::Permission::Admin)
                .unwrap();
        }
        let body = json!({"workflow": workflow(), "summary": SUMMARY, "description": DESCRIPTION, "severity": "high"});
        let (status, v) = w
            .call("POST", "/api/cases", Some("alice"), Some(&body.to_string()))
            .await;
        assert!(status.is_success(), "{v}");
        let case = v["case_id"].as_str().unwrap().to_owned();
        w.settle().await;
        for i in 0..REPOS {
            let repo = format!("wide/r{i:03}");
            let verdict = if i % 4 == 3 { "not_affected" } else { "affected" };
            let body = json!({"repo": repo, "verdict": verdict, "reason": "checked the transport"});
            let (s, v) = w
                .call("POST", &format!("/api/cases/{case}/assess"), Some("bob"), Some(&body.to_string()))
                .await;
            assert!(s.is_success(), "{v}");
            if i % 2 == 0 && verdict == "affected" {
                let body = json!({"repo": repo, "patched_versions": "2.0.1", "stage": "prepared"});
                let (s, v) = w
                    .call("POST", &format!("/api/cases/{case}/fix-ready"), Some("bob"), Some(&body.to_string()))
                    .await;
                assert!(s.is_success(), "{v}");
            }
        }
        w.settle().await;
        let base = w.web_url.clone().unwrap();
        let session = sign_in(&base, "alice").await;
        let c = http();
        let page = |c: reqwest::Client, session: String| {
            let url = format!("{base}/cases/{case}");
            async move {
                let started = Instant::now();
                let r = c.get(url).header("cookie", session).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let len = r.bytes().await.unwrap().len();
                (started.elapsed(), len)
            }
        };
        let api = |c: reqwest::Client| {
            let url = format!("{base}/api/cases/{case}");
            async move {
                let started = Instant::now();
                let r = c
                    .get(url)
                    .bearer_auth(token("alice"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let len = r.bytes().await.unwrap().len();
                (started.elapsed(), len)
            }
        };
        // Warm up: caches (principals, the case) filled for both.
        for _ in 0..5 {
            page(c.clone(), session.clone()).await;
            api(c.clone()).await;
        }
        let (mut pages, mut apis) = (Vec::new(), Vec::new());
        let (mut page_bytes, mut api_bytes) = (0, 0);
        for _ in 0..iterations {
            let (t, n) = page(c.clone(), session.clone()).await;
            pages.push(t);
            page_bytes = n;
            let (t, n) = api(c.clone()).await;
            apis.push(t);
            api_bytes = n;
        }
        let (p, a) = (median(pages), median(apis));
        let ratio = p.as_secs_f64() / a.as_secs_f64();
        println!(
            "case page of a {REPOS}-repository case, median of {iterations}: page {:.2} ms ({} KiB), JSON API {:.2} ms ({} KiB)",
            p.as_secs_f64() * 1e3,
            page_bytes / 1024,
            a.as_secs_f64() * 1e3,
            api_bytes / 1024,
        );
        println!(
            "ratio page/API: {ratio:.2}× (target ≤ 3×) {}; page {:.2} ms (target ≤ 50 ms) {}",
            if ratio <= 3.0 { "met" } else { "MISSED" },
            p.as_secs_f64() * 1e3,
            if p <= Duration::from_millis(50) { "met" } else { "MISSED" },
        );
    });
}
