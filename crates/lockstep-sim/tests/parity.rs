//! Details where the simulator must answer as GitHub does: rate-limit headers on every
//! response (§7, §9.9), report-template 422s (§9.2), `Link` and ETags across a 304
//! (§9.1, §9.10), collaborator-permission authority, the standalone server's public URL and
//! admin token, and the response observer.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use lockstep_sim::{
    InjectedFault, LimitStatus, Observed, ReportTemplate, SecondaryLimits, ServeConfig, SimConfig,
    TemplateSection,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

const RATE_HEADERS: [&str; 5] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
];

#[track_caller]
fn has_rate_headers(what: &str, r: &Resp) {
    for h in RATE_HEADERS {
        assert!(r.header(h).is_some(), "{what} ({}): no {h}", r.status);
    }
}

#[tokio::test]
async fn every_response_carries_rate_limit_headers() {
    let sim = seeded(SimConfig {
        require_user_agent: true,
        ..quiet_config()
    });
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let api = Api::new(&running.base_url);
    let list = format!("/repos/{REPO}/security-advisories");
    let h = |k: &'static str, v: &'static str| (k, v);
    let cases: Vec<(&str, Resp)> = vec![
        ("200", api.get(&list, Some(ADMIN)).await),
        ("401 bad credentials", api.get(&list, Some("nope")).await),
        (
            "401 malformed authorization",
            api.try_send(
                Method::GET,
                &list,
                None,
                None,
                &[h("authorization", "Basic x")],
            )
            .await
            .unwrap(),
        ),
        (
            "400 unsupported API version",
            api.try_send(
                Method::GET,
                &list,
                Some(ADMIN),
                None,
                &[h("x-github-api-version", "1999-01-01")],
            )
            .await
            .unwrap(),
        ),
        ("404 unknown route", api.get("/nope", Some(ADMIN)).await),
        (
            "404 invisible",
            api.get(
                &format!("/repos/{PRIVATE_REPO}/security-advisories"),
                Some(OUTSIDER),
            )
            .await,
        ),
        (
            "422",
            api.post(&list, Some(ADMIN), &json!({"summary": "s"})).await,
        ),
        ("401 anonymous /user", api.get("/user", None).await),
    ];
    for (what, r) in &cases {
        has_rate_headers(what, r);
    }
    assert_eq!(cases[1].1.status, 401);
    assert_eq!(cases[3].1.status, 400);
    // A request with no User-Agent (reqwest without one) is refused with a 403 that
    // still carries the headers.
    let bare = reqwest::Client::new()
        .get(format!("{}{list}", running.base_url))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    for h in RATE_HEADERS {
        assert!(bare.headers().get(h).is_some(), "UA 403: no {h}");
    }
    // The supported version is accepted.
    let ok = api
        .try_send(
            Method::GET,
            &list,
            Some(ADMIN),
            None,
            &[h("x-github-api-version", lockstep_sim::API_VERSION)],
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("x-github-api-version-selected"),
        Some(lockstep_sim::API_VERSION)
    );
    // 5xx, secondary limits and 304 too.
    sim.inject(InjectedFault::Error5xx, 1);
    has_rate_headers("5xx", &api.get(&list, Some(ADMIN)).await);
    sim.inject(InjectedFault::SecondaryLimitAny, 1);
    let limited = api.get(&list, Some(ADMIN)).await;
    assert_eq!(limited.status, 403, "reads can be refused too");
    assert_eq!(limited.header("retry-after"), Some("1"));
    has_rate_headers("secondary", &limited);
    let etag = ok.header("etag").unwrap().to_owned();
    let nm = api
        .try_send(
            Method::GET,
            &list,
            Some(ADMIN),
            None,
            &[("if-none-match", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(nm.status, 304);
    has_rate_headers("304", &nm);
}

#[tokio::test]
async fn secondary_limit_on_reads_can_answer_429() {
    let (sim, _r, api) = start().await;
    sim.set_secondary_limits(SecondaryLimits {
        status: LimitStatus::TooManyRequests,
        ..SecondaryLimits::unlimited()
    });
    sim.inject(InjectedFault::SecondaryLimitAny, 1);
    let r = api.get("/user", Some(ADMIN)).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(api.get("/user", Some(ADMIN)).await.status, 200);
}

#[tokio::test]
async fn a_304_has_no_link_and_the_etag_covers_the_links() {
    let (_sim, _r, api) = start().await;
    for i in 0..3 {
        api.create(REPO, ADMIN, &format!("a{i}")).await;
    }
    let page1 = format!("/repos/{REPO}/security-advisories?per_page=2&direction=asc");
    let first = api.get(&page1, Some(ADMIN)).await;
    assert!(first.header("link").unwrap().contains("rel=\"next\""));
    let etag = first.header("etag").unwrap().to_owned();
    let again = api
        .try_send(
            Method::GET,
            &page1,
            Some(ADMIN),
            None,
            &[("if-none-match", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        again.header("link"),
        None,
        "GitHub need not repeat Link on a 304"
    );
    // The last page: same body as long as it stays the last page…
    let all = format!("/repos/{REPO}/security-advisories?per_page=3&direction=asc");
    let last = api.get(&all, Some(ADMIN)).await;
    assert_eq!(last.header("link"), None);
    let last_etag = last.header("etag").unwrap().to_owned();
    // …but once a fourth advisory exists, the first three gain a next link: a new ETag,
    // even though the three items did not change.
    api.create(REPO, ADMIN, "a3").await;
    let grown = api
        .try_send(
            Method::GET,
            &all,
            Some(ADMIN),
            None,
            &[("if-none-match", &last_etag)],
        )
        .await
        .unwrap();
    assert_eq!(grown.status, 200);
    assert_eq!(grown.body, last.body);
    assert!(grown.header("link").unwrap().contains("rel=\"next\""));
}

fn template() -> ReportTemplate {
    ReportTemplate {
        sections: vec![
            TemplateSection {
                name: "Summary".into(),
                required: true,
                required_options: vec![],
            },
            TemplateSection {
                name: "Impact".into(),
                required: true,
                required_options: vec![],
            },
            TemplateSection {
                name: "Notes".into(),
                required: false,
                required_options: vec![],
            },
            TemplateSection {
                name: "Terms".into(),
                required: true,
                required_options: vec!["I have read the reporting guidelines".into()],
            },
        ],
    }
}

#[tokio::test]
async fn reports_must_follow_the_repository_template() {
    let (sim, _r, api) = start().await;
    sim.set_report_template(REPO, Some(template())).unwrap();
    let oracle = lockstep_sim::oracle::Oracle::load().unwrap();
    let schema = oracle
        .component("repository-advisory-description-validation-error")
        .unwrap();
    let reports = format!("/repos/{REPO}/security-advisories/reports");
    let good = "### Summary\nA path traversal.\n\n### Impact\nRead any file.\n\n### Terms\n- [x] I have read the reporting guidelines\n";
    // (what, description, expected [(code, section, option)])
    type Expected<'a> = Vec<(&'a str, &'a str, Option<&'a str>)>;
    let cases: Vec<(&str, String, Expected<'_>)> = vec![
        (
            "missing section",
            "### Summary\nA bug.\n### Terms\n- [x] I have read the reporting guidelines\n".into(),
            vec![("missing_section", "Impact", None)],
        ),
        (
            "empty section",
            "### Summary\n\n### Impact\nRead any file.\n### Terms\n- [X] I have read the reporting guidelines\n"
                .into(),
            vec![("empty_section", "Summary", None)],
        ),
        (
            "unchecked option",
            "### Summary\nA.\n### Impact\nB.\n### Terms\n- [ ] I have read the reporting guidelines\n"
                .into(),
            vec![(
                "unchecked_required_option",
                "Terms",
                Some("I have read the reporting guidelines"),
            )],
        ),
        (
            "out of order",
            "### Impact\nB.\n### Summary\nA.\n### Terms\n- [x] I have read the reporting guidelines\n"
                .into(),
            vec![("sections_out_of_order", "Impact", None)],
        ),
        (
            "several at once",
            "just some text".into(),
            vec![
                ("missing_section", "Summary", None),
                ("missing_section", "Impact", None),
                ("missing_section", "Terms", None),
            ],
        ),
    ];
    for (what, description, expected) in cases {
        let r = api
            .post(
                &reports,
                Some(OUTSIDER),
                &json!({"summary": "s", "description": description}),
            )
            .await;
        assert_eq!(r.status, 422, "{what}: {:?}", r.body);
        assert_eq!(
            r.body["message"],
            "Advisory description does not satisfy this repository's report template."
        );
        let errors: Vec<(String, String, Option<String>)> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["resource"], "RepositoryAdvisory");
                assert_eq!(e["field"], "description");
                (
                    e["code"].as_str().unwrap().to_owned(),
                    e["section"].as_str().unwrap().to_owned(),
                    e["option"].as_str().map(str::to_owned),
                )
            })
            .collect();
        let expected: Vec<(String, String, Option<String>)> = expected
            .into_iter()
            .map(|(c, s, o)| (c.to_owned(), s.to_owned(), o.map(str::to_owned)))
            .collect();
        assert_eq!(errors, expected, "{what}");
        let problems: Vec<String> = schema.iter_errors(&r.body).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{what}: {problems:?}");
    }
    assert!(
        sim.advisory_states(REPO).unwrap().is_empty(),
        "nothing was filed"
    );
    // A report that follows the template (an optional section may be left out) is filed.
    let ok = api
        .post(
            &reports,
            Some(OUTSIDER),
            &json!({"summary": "s", "description": good}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    assert_eq!(ok.body["state"], "triage");
    // Maintainers' own drafts are not held to the reporters' template; nor are reports to
    // a repository without one.
    assert_eq!(
        api.post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            &json!({"summary": "s", "description": "free text", "vulnerabilities": []})
        )
        .await
        .status,
        201
    );
    let other = api
        .post(
            &format!("/repos/{REPO2}/security-advisories/reports"),
            Some(OUTSIDER),
            &json!({"summary": "s", "description": "free text"}),
        )
        .await;
    assert_eq!(other.status, 201);
    sim.set_report_template(REPO, None).unwrap();
    let free = api
        .post(
            &reports,
            Some(OUTSIDER),
            &json!({"summary": "s", "description": "free"}),
        )
        .await;
    assert_eq!(free.status, 201);
}

#[tokio::test]
async fn collaborator_permissions_need_push_access() {
    let (_sim, _r, api) = start().await;
    let path = format!("/repos/{REPO}/collaborators/alice/permission");
    assert_eq!(api.get(&path, Some(WRITER)).await.status, 200);
    let reader = api.get(&path, Some(READER)).await;
    assert_eq!(reader.status, 403);
    assert_eq!(
        reader.body["message"],
        "Must have push access to view repository collaborators."
    );
    assert_eq!(api.get(&path, Some(OUTSIDER)).await.status, 403);
    // A private repository stays invisible (404) to outsiders.
    let hidden = format!("/repos/{PRIVATE_REPO}/collaborators/alice/permission");
    assert_eq!(api.get(&hidden, Some(OUTSIDER)).await.status, 404);
}

#[tokio::test]
async fn serve_config_sets_the_public_url_and_guards_admin_routes() {
    let config = ServeConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        public_url: Some("https://sim.example.test/api/".into()),
        admin_token: Some("s3cret-admin".into()),
    };
    let sim_config = config.sim_config().unwrap();
    assert_eq!(
        sim_config.api_base_url.as_deref(),
        Some("https://sim.example.test/api")
    );
    let sim = seeded(SimConfig {
        secondary: SecondaryLimits::unlimited(),
        ..sim_config
    });
    let running = lockstep_sim::spawn(sim.clone(), config.listen)
        .await
        .unwrap();
    // Bound to 0.0.0.0, reachable on loopback.
    assert!(
        running.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        running.base_url
    );
    let api = Api::new(&running.base_url);
    for i in 0..3 {
        let a = api.create(REPO, ADMIN, &format!("p{i}")).await;
        assert!(
            a["url"].as_str().unwrap().starts_with(
                "https://sim.example.test/api/repos/acme/widget/security-advisories/GHSA-"
            ),
            "{}",
            a["url"]
        );
    }
    let page = api
        .get(
            &format!("/repos/{REPO}/security-advisories?per_page=2"),
            Some(ADMIN),
        )
        .await;
    let link = page.header("link").unwrap();
    assert!(
        link.starts_with("<https://sim.example.test/api/repos/acme/widget/security-advisories?"),
        "{link}"
    );
    // Admin routes want the token.
    let c = reqwest::Client::new();
    let ledger = format!("{}/_sim/ledger", running.base_url);
    assert_eq!(c.get(&ledger).send().await.unwrap().status(), 401);
    let wrong = c
        .get(&ledger)
        .header("x-sim-admin-token", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = c
        .get(&ledger)
        .header("x-sim-admin-token", "s3cret-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Bad settings are refused before anything is served.
    for bad in ["ftp://x", "not a url", "https://x/?q=1", "http://"] {
        let c = ServeConfig {
            public_url: Some(bad.into()),
            ..ServeConfig::new("127.0.0.1:0".parse().unwrap())
        };
        assert!(c.sim_config().is_err(), "{bad}");
    }
    let empty = ServeConfig {
        admin_token: Some(" ".into()),
        ..ServeConfig::new("127.0.0.1:0".parse().unwrap())
    };
    assert!(empty.sim_config().is_err());
    assert_eq!(
        ServeConfig::new("127.0.0.1:0".parse().unwrap())
            .sim_config()
            .unwrap()
            .api_base_url,
        None
    );
}

#[tokio::test]
async fn the_observer_sees_every_response() {
    let (sim, _r, api) = start().await;
    let seen: Arc<Mutex<Vec<Observed>>> = Arc::default();
    let sink = Arc::clone(&seen);
    sim.observe(move |o| sink.lock().unwrap().push(o.clone()));
    let a = api.create(REPO, ADMIN, "observed").await;
    api.get("/nope", Some(ADMIN)).await;
    sim.inject(InjectedFault::ResetAfterApply, 1);
    let lost = api
        .try_send(
            Method::PATCH,
            &adv_path(REPO, a["ghsa_id"].as_str().unwrap()),
            Some(ADMIN),
            Some(&json!({"summary": "x"})),
            &[],
        )
        .await;
    assert!(lost.is_err());
    sim.clear_observer();
    api.get("/user", Some(ADMIN)).await;
    let seen = seen.lock().unwrap().clone();
    let ops: Vec<(&str, u16, bool)> = seen
        .iter()
        .map(|o| (o.op.as_str(), o.status, o.delivered))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("create", 201, true),
            ("not_found", 404, true),
            ("update", 200, false)
        ]
    );
    assert_eq!(seen[0].body.as_ref().unwrap()["ghsa_id"], a["ghsa_id"]);
    assert_eq!(seen[2].body.as_ref().unwrap()["summary"], "x");
    assert!(
        seen.iter()
            .all(|o| o.header("x-ratelimit-remaining").is_some())
    );
    assert_eq!(sim.ledger().len(), 4, "the observer is not the ledger");
}
