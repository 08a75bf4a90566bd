//! The web dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! driven over WebDriver by fantoccini), against the router served over TCP, the GitHub
//! simulator (its OAuth consent page included) and a SQLite store.
//!
//! One browser session walks through: signing in through the simulator's OAuth page, the
//! maintainer's view and actions, a refused action, signing out, a non-participant's 404, the
//! coordinator's view, and the live update while the release publishes. The security headers,
//! the sign-in's cookies, CSRF and the identical 404 are checked over plain HTTP with the
//! browser's session cookie.
//!
//! Without chromedriver these tests fail (they do not skip): `.ci/run` installs it.
//!
//! `cargo test -p lockstep-server --test browser -- --ignored screenshot` writes
//! `docs/dashboard.png`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A summary with markup in it: it must render as text.
const HTML_SUMMARY: &str =
    "<img src=x id=injected><b>Host header</b> not validated & <script>window.pwned=1</script>";

/// fantoccini's TLS stack and reqwest's bring two rustls crypto providers into this test
/// binary; choose one.
fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A chromedriver process; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Driver {
    let missing = "chromedriver is missing: install Debian's chromium and chromium-driver \
                   (apt-get install -y chromium chromium-driver); .ci/run installs them";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{missing} ({e})"));
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver { child, url };
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await
            && r.status().is_success()
        {
            return driver;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let mut options = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1200"]
    });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start headless Chromium through chromedriver: {e}"))
}

fn css(s: &str) -> Locator<'_> {
    Locator::Css(s)
}

async fn text(c: &Client, selector: &str) -> String {
    c.find(css(selector)).await.unwrap().text().await.unwrap()
}

async fn wait_for(c: &Client, selector: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} never appeared: {e}"))
}

/// Signs in as `login` through the simulator's consent page; lands on the case list.
async fn sign_in(c: &Client, base: &str, login: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for(c, "#sign-in").await.click().await.unwrap();
    // The simulator's OAuth consent page.
    let field = wait_for(c, "#login").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/login/oauth/authorize")
    );
    field.send_keys(login).await.unwrap();
    c.find(css("#authorize"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let who = wait_for(c, "#signed-in-as").await;
    assert_eq!(who.text().await.unwrap(), login);
}

async fn sign_out(c: &Client) {
    c.find(css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#sign-in").await;
}

/// Fills the form `#form_id` and submits it; answers the flash: (ok, text).
async fn submit(c: &Client, form_id: &str, fields: &[(&str, &str)]) -> (bool, String) {
    for (name, value) in fields {
        let el = c
            .find(css(&format!("#{form_id} [name={name}]")))
            .await
            .unwrap_or_else(|e| panic!("#{form_id} has no field {name}: {e}"));
        if el.tag_name().await.unwrap() == "select" {
            el.select_by_value(value).await.unwrap();
        } else {
            el.clear().await.unwrap();
            el.send_keys(value).await.unwrap();
        }
    }
    c.execute("document.body.dataset.stale = '1'", vec![])
        .await
        .unwrap();
    c.find(css(&format!("#{form_id} button[type=submit]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = wait_for(c, "body:not([data-stale]) #flash").await;
    let class = flash.attr("class").await.unwrap().unwrap_or_default();
    (class.contains("ok"), flash.text().await.unwrap())
}

async fn options(c: &Client, selector: &str) -> Vec<String> {
    let mut out = Vec::new();
    for o in c.find_all(css(selector)).await.unwrap() {
        out.push(o.attr("value").await.unwrap().unwrap_or_default());
    }
    out
}

async fn cookie(c: &Client, name: &str) -> String {
    let cookie = c.get_named_cookie(name).await.unwrap();
    format!("{name}={}", cookie.value())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The security headers every page carries.
fn assert_security_headers(r: &reqwest::Response) {
    let h = |n: &str| {
        r.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {n} header on {}", r.url()))
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
}

async fn api(w: &World, login: &str, path: &str, body: Value) {
    let (status, v) = w
        .call("POST", path, Some(login), Some(&body.to_string()))
        .await;
    assert!(status.is_success(), "{path} as {login}: {status} {v}");
}

/// The sign-in's first leg and the callback's checks, over plain HTTP.
async fn check_sign_in_protocol(base: &str) {
    let client = http();
    let r = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/login/oauth/authorize?"), "{location}");
    assert!(
        location.contains(&format!("client_id={CLIENT_ID}")),
        "{location}"
    );
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
    assert!(location.contains("code_challenge="), "{location}");
    assert!(location.contains("state="), "{location}");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("lockstep_oauth="), "{set}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    // The public address is a loopback one: no Secure (the browser would drop it over http).
    assert!(!set.contains("Secure"), "{set}");
    // The pending sign-in is encrypted: neither the state nor the verifier shows in it.
    let state = location
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!set.contains(state), "{set}");
    // A callback whose state does not match is refused, and no session is set.
    let pending = set.split(';').next().unwrap().to_owned();
    let r = client
        .get(format!("{base}/oauth/callback?code=x&state=wrong"))
        .header("cookie", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("lockstep_session=")),
    );
    // Without the pending cookie (another browser), the right state is refused too.
    let r = client
        .get(format!("{base}/oauth/callback?code=x&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    tls();
    let w = world_with(Options {
        web: true,
        ..Options::default()
    })
    .await;
    let base = w.web_url.clone().unwrap();
    let case = w.open_with(json!({ "summary": HTML_SUMMARY })).await;
    w.settle().await;
    // A researcher's private report on org/extra awaits triage.
    w.sim.add_user("rita", "tok-rita");
    let reported = file_report(&w, "rita", "org/extra");
    intake_runtime(&w).run_once().await.unwrap();
    check_sign_in_protocol(&base).await;

    let driver = chromedriver().await;
    let c = browser(&driver).await;

    // --- A maintainer: bob maintains org/core.
    sign_in(&c, &base, "bob").await;
    let row = wait_for(&c, &format!("tr[data-case='{case}']")).await;
    // Reports awaiting triage on his repositories: none (rita's is on org/extra).
    let reports = text(&c, "#reports").await;
    assert!(
        reports.contains("No private vulnerability report awaits"),
        "{reports}"
    );
    assert!(!reports.contains(&reported), "{reports}");
    // The summary renders as text, in the list too.
    assert!(row.text().await.unwrap().contains(HTML_SUMMARY));
    c.goto(&format!("{base}/cases/{case}")).await.unwrap();
    wait_for(&c, "#summary").await;
    assert_eq!(text(&c, "#summary").await, HTML_SUMMARY);
    assert!(
        c.find_all(css("#summary *")).await.unwrap().is_empty(),
        "markup in the summary became elements"
    );
    assert!(c.find_all(css("#injected")).await.unwrap().is_empty());
    assert_eq!(
        c.execute("return typeof window.pwned", vec![])
            .await
            .unwrap(),
        json!("undefined")
    );
    // The page: the matrix, the blockers, the graph, the embargo timeline, the activity.
    assert_eq!(c.find_all(css("#matrix tbody tr")).await.unwrap().len(), 4);
    assert!(text(&c, "#blockers").await.contains("not assessed yet"));
    assert_eq!(
        c.find_all(css("#graph svg g.node")).await.unwrap().len(),
        4,
        "one box per repository"
    );
    assert!(text(&c, "#timeline").await.contains("In force until"));
    assert!(text(&c, "#activity").await.contains("opened the case"));
    // A maintainer's forms name their repositories only, and no coordinator's form shows.
    assert_eq!(
        options(&c, "#form-assess select[name=repo] option").await,
        ["org/core"]
    );
    assert!(c.find_all(css("#form-embargo")).await.unwrap().is_empty());
    assert!(c.find_all(css("#form-close")).await.unwrap().is_empty());

    // The maintainer's action, through the form.
    let (ok, said) = submit(
        &c,
        "form-assess",
        &[
            ("verdict", "affected"),
            ("reason", "uses the SSE transport"),
        ],
    )
    .await;
    assert!(ok, "{said}");
    let core_row = text(&c, "#matrix tr[data-repo='org/core']").await;
    assert!(core_row.contains("affected"), "{core_row}");
    assert!(core_row.contains("uses the SSE transport"), "{core_row}");
    let activity = text(&c, "#activity").await;
    assert!(
        activity.contains("bob (maintainer of org/core) assessed org/core"),
        "{activity}"
    );

    // A refused action: more time than the workflow's max_days allows.
    let version = w.version(&case).await;
    let (ok, said) = submit(
        &c,
        "form-request",
        &[
            ("until", "2099-01-01T00:00:00Z"),
            ("reason", "we need a year"),
        ],
    )
    .await;
    assert!(!ok, "the request past the cap was accepted: {said}");
    println!("refused: {said}");
    assert!(!said.contains('\n') && !said.is_empty(), "{said}");
    assert_eq!(w.version(&case).await, version, "a refusal changes nothing");

    // Security headers, CSRF and the session, over plain HTTP with bob's cookie.
    let bob = cookie(&c, "lockstep_session").await;
    let client = http();
    let page = client
        .get(format!("{base}/cases/{case}"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_security_headers(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
    assert!(!html.contains("<script>window.pwned"));
    assert!(!html.contains("<script>"), "no inline script");
    let list = client
        .get(format!("{base}/"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_security_headers(&list);
    // The session cookie is authenticated: altered, it is no session at all.
    let mut tampered = bob.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let r = client
        .get(format!("{base}/"))
        .header("cookie", String::from_utf8(tampered).unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("id=\"sign-in\""));
    // It carries neither the login nor anything else in clear.
    assert!(!bob.contains("login") && !bob.contains("gho_"), "{bob}");
    // A form post without the CSRF token is refused and changes nothing.
    let r = client
        .post(format!("{base}/cases/{case}/fix-ready"))
        .header("cookie", &bob)
        .form(&[("repo", "org/core"), ("patched_versions", "1.2.3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // … and so is one from another site, token or not.
    let form = c
        .find(css("#form-fix input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let r = client
        .post(format!("{base}/cases/{case}/fix-ready"))
        .header("cookie", &bob)
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", form.as_str()),
            ("repo", "org/core"),
            ("patched_versions", "1.2.3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(w.version(&case).await, version);
    // Signed out, the case page sends to the sign-in, and says nothing of the case.
    let r = client
        .get(format!("{base}/cases/{case}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/login?next=%2Fcases%2F{case}")
    );

    sign_out(&c).await;
    assert!(c.get_named_cookie("lockstep_session").await.is_err());
    // A copy of the cookie taken before signing out no longer works either.
    let r = client
        .get(format!("{base}/cases/{case}"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a signed-out session still opens the case");

    // --- Someone who is not part of the case: the same 404 as a case that does not exist.
    sign_in(&c, &base, "eve").await;
    assert!(
        text(&c, "main")
            .await
            .contains("You take part in no case yet.")
    );
    let eve = cookie(&c, "lockstep_session").await;
    let mut answers = Vec::new();
    for path in [
        format!("/cases/{case}"),
        "/cases/LS-20260101-ZZZZZZ".to_owned(),
        "/cases/not-a-case".to_owned(),
        format!("/cases/{case}/events"),
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", &eve)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_security_headers(&r);
        answers.push((status, r.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 404);
    for a in &answers[1..] {
        assert_eq!(a, &answers[0], "a 404 that differs tells the case exists");
    }
    let r = client
        .post(format!("{base}/cases/{case}/close"))
        .header("cookie", &eve)
        .form(&[("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "CSRF first");
    sign_out(&c).await;

    // --- The coordinator: alice, who sees rita's report awaiting triage.
    sign_in(&c, &base, "alice").await;
    let reports = text(&c, "#reports").await;
    assert!(
        reports.contains(&reported) && reports.contains("rita"),
        "{reports}"
    );
    c.goto(&format!("{base}/cases/{case}")).await.unwrap();
    wait_for(&c, "#form-embargo").await;
    for form in ["#form-disclose", "#form-close", "#form-scope-remove"] {
        assert_eq!(c.find_all(css(form)).await.unwrap().len(), 1, "{form}");
    }
    assert_eq!(
        options(&c, "#form-assess select[name=repo] option").await,
        ["org/core", "org/extra", "org/plugin", "org/spare"]
    );
    let activity = text(&c, "#activity").await;
    assert!(
        activity.contains("alice (coordinator) opened the case"),
        "{activity}"
    );

    // --- Live: the page follows the case without a reload while others act and the
    // release publishes.
    c.execute("window.stillHere = 1", vec![]).await.unwrap();
    let sent = Instant::now();
    api(
        &w,
        "carol",
        &format!("/api/cases/{case}/assess"),
        json!({"repo": "org/extra", "verdict": "not_affected", "reason": "no SSE"}),
    )
    .await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(css("#matrix tr[data-repo='org/extra'] .not-affected"))
        .await
        .unwrap();
    let latency = sent.elapsed();
    println!("live update: the page showed another user's assessment after {latency:?}");
    for (who, repo, verdict) in [
        ("carol", "org/spare", "not_affected"),
        ("dave", "org/plugin", "affected"),
    ] {
        api(
            &w,
            who,
            &format!("/api/cases/{case}/assess"),
            json!({"repo": repo, "verdict": verdict, "reason": "checked"}),
        )
        .await;
    }
    for (who, repo) in [("bob", "org/core"), ("dave", "org/plugin")] {
        api(
            &w,
            who,
            &format!("/api/cases/{case}/fix-ready"),
            json!({"repo": repo, "patched_versions": "2.0.0"}),
        )
        .await;
    }
    // The runtime publishes in waves (org/plugin after org/core).
    w.settle().await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(css("#published-count"))
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        if text(&c, "#published-count").await == "2" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the page never showed both advisories published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text(&c, "#matrix tr[data-repo='org/plugin']")
            .await
            .contains("published")
    );
    assert_eq!(
        c.execute("return window.stillHere", vec![]).await.unwrap(),
        json!(1),
        "the page updated in place, not by a reload"
    );
    assert!(
        c.find_all(css("#graph g.node.published"))
            .await
            .unwrap()
            .len()
            == 2
    );
    c.close().await.unwrap();
}

/// Writes `docs/dashboard.png`: the coordinator's case page of a case under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/dashboard.png; run: cargo test -p lockstep-server --test browser -- --ignored screenshot"]
async fn screenshot() {
    tls();
    let w = world_with(Options {
        web: true,
        ..Options::default()
    })
    .await;
    let base = w.web_url.clone().unwrap();
    let case = w.open().await;
    w.settle().await;
    api(
        &w,
        "bob",
        &format!("/api/cases/{case}/assess"),
        json!({"repo": "org/core", "verdict": "affected", "reason": "uses the SSE transport"}),
    )
    .await;
    api(
        &w,
        "carol",
        &format!("/api/cases/{case}/assess"),
        json!({"repo": "org/extra", "verdict": "not_affected", "reason": "no HTTP transport"}),
    )
    .await;
    api(
        &w,
        "bob",
        &format!("/api/cases/{case}/fix-ready"),
        json!({"repo": "org/core", "patched_versions": "1.24.0", "vulnerable_range": "< 1.24.0", "stage": "prepared"}),
    )
    .await;
    w.settle().await;
    let driver = chromedriver().await;
    let c = browser(&driver).await;
    sign_in(&c, &base, "alice").await;
    c.set_window_size(1400, 2200).await.unwrap();
    c.goto(&format!("{base}/cases/{case}")).await.unwrap();
    wait_for(&c, "#summary").await;
    let png = c.screenshot().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.png");
    std::fs::write(path, png).unwrap();
    println!("wrote {path}");
    c.close().await.unwrap();
}
