//! The ten behaviours of github-api.md §9, plus fault injection, the ledger and webhooks.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::*;
use hmac::{Hmac, Mac};
use lockstep_sim::{
    AdvisoryState, CvePolicy, FaultConfig, FaultKind, InjectedFault, LimitStatus, PrimaryLimits,
    SecondaryLimits, SimConfig, Via, spawn_local,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

fn next_link(r: &Resp, rel: &str) -> Option<String> {
    let link = r.header("link")?;
    link.split(", ").find_map(|part| {
        let (url, r) = part.split_once("; ")?;
        (r == format!("rel=\"{rel}\"")).then(|| url.trim_matches(['<', '>']).to_owned())
    })
}

// 1. Exact routes and cursor pagination.
#[tokio::test]
async fn routes_and_cursor_pagination() {
    let (_sim, _r, api) = start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            api.create(REPO, ADMIN, &format!("adv {i}")).await["ghsa_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    api.create(REPO2, ADMIN, "other repo").await;
    // Default: created desc, per_page 30.
    let all = api
        .get(&format!("/repos/{REPO}/security-advisories"), Some(ADMIN))
        .await;
    let ids: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ghsa_id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = created.iter().map(String::as_str).collect();
    expected.reverse();
    assert_eq!(ids, expected);
    assert!(all.header("link").is_none());
    // Follow rel="next" with per_page=3.
    let mut url = format!("/repos/{REPO}/security-advisories?per_page=3&direction=asc");
    let mut seen = Vec::new();
    let mut pages = 0;
    let last;
    loop {
        let r = api.get(&url, Some(ADMIN)).await;
        assert_eq!(r.status, StatusCode::OK);
        pages += 1;
        seen.extend(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["ghsa_id"].as_str().unwrap().to_owned()),
        );
        match next_link(&r, "next") {
            Some(n) => {
                assert!(
                    n.starts_with(&api.base) && n.contains("per_page=3") && n.contains("after=")
                );
                url = n;
            }
            None => {
                last = r;
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
    // Walk back with rel="prev" (a `before` cursor).
    let prev = next_link(&last, "prev").unwrap();
    assert!(prev.contains("before="));
    let r = api.get(&prev, Some(ADMIN)).await;
    let back: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ghsa_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        back,
        created[3..6].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Errors.
    assert_eq!(
        api.get(
            &format!("/repos/{REPO}/security-advisories?after=garbage"),
            Some(ADMIN)
        )
        .await
        .status,
        400
    );
    assert_eq!(
        api.get(
            &format!("/repos/{REPO}/security-advisories?state=withdrawn"),
            Some(ADMIN)
        )
        .await
        .status,
        400
    );
    assert_eq!(
        api.get("/repos/acme/nope/security-advisories", Some(ADMIN))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&adv_path(REPO, "GHSA-2222-2222-2222"), Some(ADMIN))
            .await
            .status,
        404
    );
    assert_eq!(
        api.send(
            Method::DELETE,
            &adv_path(REPO, &created[0]),
            Some(ADMIN),
            None
        )
        .await
        .status,
        404
    );
    // Filter by state.
    api.patch(
        &adv_path(REPO, &created[0]),
        Some(ADMIN),
        &json!({"state": "closed"}),
    )
    .await;
    let closed = api
        .get(
            &format!("/repos/{REPO}/security-advisories?state=closed"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(closed.body.as_array().unwrap().len(), 1);
    // Authority endpoints.
    let me = api.get("/user", Some(WRITER)).await;
    assert_eq!(me.body["login"], "bob");
    assert_eq!(api.get("/user", None).await.status, 401);
    let perm = api
        .get(
            &format!("/repos/{REPO}/collaborators/bob/permission"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(perm.body["permission"], "write");
    assert_eq!(perm.body["role_name"], "write");
    let perm = api
        .get(
            &format!("/repos/{REPO}/collaborators/alice/permission"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(perm.body["permission"], "admin");
}

// 2. Strict validation.
#[tokio::test]
async fn strict_validation() {
    let (sim, _r, api) = start().await;
    let list = format!("/repos/{REPO}/security-advisories");
    let r = api
        .post(
            &list,
            Some(ADMIN),
            &json!({"summary": "s", "description": "d"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["code"], "missing_field");
    assert_eq!(r.body["errors"][0]["field"], "vulnerabilities");
    assert!(r.body["documentation_url"].is_string());
    let mut b = create_body("x");
    b["vulnerabilities"][0]["package"]["ecosystem"] = json!("cargo");
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    let mut b = create_body(&"x".repeat(1025));
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    b = create_body("x");
    b["credits"][0]["type"] = json!("hero");
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    b = create_body("x");
    b["credits"] = json!([{"login": "ghost-user", "type": "finder"}]);
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    b = create_body("x");
    b["summary"] = json!(5);
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    // Malformed JSON → 400.
    let r = api
        .client
        .post(format!("{}{list}", api.base))
        .bearer_auth(ADMIN)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let g = api.create(REPO, ADMIN, "ok").await;
    let one = adv_path(REPO, g["ghsa_id"].as_str().unwrap());
    for bad in [
        json!({"state": "withdrawn"}),
        json!({"state": "triage"}),
        json!({"summary": null}),
        json!({"cve_id": "CVE-12"}),
        json!([]),
    ] {
        let r = api.patch(&one, Some(ADMIN), &bad).await;
        assert_eq!(r.status, 422, "{bad}");
    }
    // Nothing above changed the stored advisory.
    assert_eq!(sim.advisories(REPO).unwrap().len(), 1);
}

// 3. Severity XOR CVSS.
#[tokio::test]
async fn severity_xor_cvss() {
    let (_sim, _r, api) = start().await;
    let list = format!("/repos/{REPO}/security-advisories");
    let mut b = create_body("both");
    b["cvss_vector_string"] = json!("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:L");
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
    b["severity"] = Value::Null;
    let r = api.post(&list, Some(ADMIN), &b).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["severity"], "high");
    assert_eq!(r.body["cvss"]["score"], 7.3);
    assert_eq!(
        r.body["cvss_severities"]["cvss_v3"]["vector_string"],
        b["cvss_vector_string"]
    );
    let one = adv_path(REPO, r.body["ghsa_id"].as_str().unwrap());
    let r = api
        .patch(&one, Some(ADMIN), &json!({"severity": "low"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "Cannot update severity value when CVSS is set."
    );
    let r = api
        .patch(
            &one,
            Some(ADMIN),
            &json!({"severity": "low", "cvss_vector_string": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["severity"], "low");
    assert!(r.body["cvss"]["vector_string"].is_null());
    b["cvss_vector_string"] = json!("CVSS:9.9/garbage");
    assert_eq!(api.post(&list, Some(ADMIN), &b).await.status, 422);
}

// 4. State machine.
#[tokio::test]
async fn state_machine() {
    let (sim, _r, api) = start().await;
    let a = api.create(REPO, ADMIN, "sm").await;
    assert_eq!(a["state"], "draft");
    let one = adv_path(REPO, a["ghsa_id"].as_str().unwrap());
    let closed = api
        .patch(&one, Some(ADMIN), &json!({"state": "closed"}))
        .await;
    assert!(closed.body["closed_at"].is_string());
    assert_eq!(
        api.patch(&one, Some(ADMIN), &json!({"state": "published"}))
            .await
            .status,
        422
    );
    let reopened = api
        .patch(&one, Some(ADMIN), &json!({"state": "draft"}))
        .await;
    assert_eq!(reopened.status, 200);
    assert!(reopened.body["closed_at"].is_null());
    let p = api
        .patch(&one, Some(ADMIN), &json!({"state": "published"}))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body["published_at"].is_string());
    assert_eq!(p.body["publisher"]["login"], "alice");
    // The credits nobody accepted (both were pending) are dropped at publication.
    assert_eq!(a["credits_detailed"].as_array().unwrap().len(), 2);
    assert_eq!(p.body["credits_detailed"], json!([]));
    assert_eq!(p.body["credits"], json!([]));
    let r = api
        .patch(&one, Some(ADMIN), &json!({"state": "draft"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "Invalid state transition from `published` to `draft`."
    );
    assert_eq!(
        api.patch(&one, Some(ADMIN), &json!({"state": "closed"}))
            .await
            .status,
        422
    );
    // Re-publishing is an idempotent 200 by default.
    assert_eq!(
        api.patch(&one, Some(ADMIN), &json!({"state": "published"}))
            .await
            .status,
        200
    );
    // Reports start in triage, cannot be published directly, are accepted to draft.
    let rep = api
        .post(
            &format!("/repos/{REPO}/security-advisories/reports"),
            Some(OUTSIDER),
            &json!({"summary": "s", "description": "d"}),
        )
        .await;
    assert_eq!(rep.body["state"], "triage");
    assert_eq!(rep.body["submission"]["accepted"], false);
    assert_eq!(rep.body["credits_detailed"][0]["user"]["login"], "mallory");
    let rone = adv_path(REPO, rep.body["ghsa_id"].as_str().unwrap());
    assert_eq!(
        api.patch(&rone, Some(ADMIN), &json!({"state": "published"}))
            .await
            .status,
        422
    );
    let acc = api
        .patch(&rone, Some(ADMIN), &json!({"state": "draft"}))
        .await;
    assert_eq!(acc.body["submission"]["accepted"], true);
    // Publishing without a package name is refused.
    let acc_pub = api
        .patch(&rone, Some(ADMIN), &json!({"state": "published"}))
        .await;
    assert_eq!(acc_pub.status, 422);
    // Withdrawn is GitHub-only.
    sim.withdraw(REPO, a["ghsa_id"].as_str().unwrap()).unwrap();
    let w = api.get(&one, None).await;
    assert_eq!(w.body["state"], "withdrawn");
    assert!(w.body["withdrawn_at"].is_string());
    assert_eq!(
        api.patch(&one, Some(ADMIN), &json!({"summary": "x"}))
            .await
            .status,
        422
    );
}

// 5. Full objects, GHSA ids, identifiers, timestamps, credits_detailed.
#[tokio::test]
async fn full_objects() {
    let (sim, _r, api) = start().await;
    let a = api.create(REPO, ADMIN, "full").await;
    let g = a["ghsa_id"].as_str().unwrap();
    let parts: Vec<&str> = g.split('-').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], "GHSA");
    for p in &parts[1..] {
        assert_eq!(p.len(), 4);
        assert!(p.chars().all(|c| "23456789cfghjmpqrvwx".contains(c)), "{g}");
    }
    // The 26 required keys plus `cvss_severities`.
    assert_eq!(a.as_object().unwrap().len(), 27);
    assert_eq!(
        a["url"],
        format!("{}/repos/{REPO}/security-advisories/{g}", api.base)
    );
    assert_eq!(
        a["html_url"],
        format!("https://github.com/{REPO}/security/advisories/{g}")
    );
    assert_eq!(a["identifiers"], json!([{"type": "GHSA", "value": g}]));
    assert_eq!(a["author"]["login"], "alice");
    assert_eq!(a["credits_detailed"][0]["state"], "pending");
    assert_eq!(a["credits_detailed"][0]["user"]["login"], "monalisa");
    assert_eq!(
        a["cwes"][1],
        json!({"cwe_id": "CWE-20", "name": "Improper Input Validation"})
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let one = adv_path(REPO, g);
    let u = api
        .patch(&one, Some(ADMIN), &json!({"cve_id": "CVE-2026-12345"}))
        .await;
    assert_ne!(u.body["updated_at"], a["updated_at"]);
    assert_eq!(
        u.body["identifiers"][1],
        json!({"type": "CVE", "value": "CVE-2026-12345"})
    );
    // Same seed → same ids.
    let other = seeded(quiet_config());
    let again = other
        .create_as("alice", REPO, &create_body("full"))
        .unwrap();
    assert_eq!(again["ghsa_id"], a["ghsa_id"]);
    let _ = sim;
}

// 6. Whole-array replacement and explicit nulls.
#[tokio::test]
async fn whole_array_replacement() {
    let (_sim, _r, api) = start().await;
    let a = api.create(REPO, ADMIN, "arrays").await;
    let one = adv_path(REPO, a["ghsa_id"].as_str().unwrap());
    let v = json!([{"package": {"ecosystem": "pip", "name": "mcp"}, "vulnerable_version_range": ">= 1.0.0, < 1.0.1", "patched_versions": "1.0.1", "vulnerable_functions": ["f"]}]);
    let r = api.patch(&one, Some(ADMIN), &json!({"vulnerabilities": v, "credits": [{"login": "bob", "type": "remediation_developer"}], "collaborating_users": ["carol"]})).await;
    assert_eq!(r.body["vulnerabilities"], v);
    assert_eq!(
        r.body["credits"],
        json!([{"login": "bob", "type": "remediation_developer"}])
    );
    assert_eq!(r.body["credits_detailed"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["collaborating_users"][0]["login"], "carol");
    let r = api
        .patch(
            &one,
            Some(ADMIN),
            &json!({"cwe_ids": null, "credits": null, "collaborating_users": null, "cve_id": null}),
        )
        .await;
    assert_eq!(r.body["cwe_ids"], json!([]));
    assert_eq!(r.body["cwes"], json!([]));
    assert_eq!(r.body["credits"], json!([]));
    assert!(r.body["collaborating_users"].is_null());
    // An empty PATCH changes nothing (not even updated_at).
    let before = api.get(&one, Some(ADMIN)).await;
    let r = api.patch(&one, Some(ADMIN), &json!({})).await;
    assert_eq!(r.body, before.body);
}

// 7. 202 side effects.
#[tokio::test]
async fn cve_and_fork_are_asynchronous() {
    let (sim, _r, api) = start().await;
    sim.set_cve_policy(CvePolicy::Manual);
    sim.set_fork_delay(Duration::from_millis(300));
    let a = api.create(REPO, ADMIN, "cve").await;
    let g = a["ghsa_id"].as_str().unwrap().to_owned();
    let one = adv_path(REPO, &g);
    let r = api
        .send(Method::POST, &format!("{one}/cve"), Some(ADMIN), None)
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body, json!({}));
    assert_eq!(
        api.post(&format!("{one}/cve"), Some(ADMIN), &json!({}))
            .await
            .status,
        422
    );
    assert!(api.get(&one, Some(ADMIN)).await.body["cve_id"].is_null());
    let assigned = sim.assign_pending_cves();
    assert_eq!(assigned.len(), 1);
    assert_eq!(
        api.get(&one, Some(ADMIN)).await.body["cve_id"],
        assigned[0].2.as_str()
    );
    // Delayed policy.
    sim.set_cve_policy(CvePolicy::AfterDelay { ms: 200 });
    let b = api.create(REPO, ADMIN, "cve2").await;
    let two = adv_path(REPO, b["ghsa_id"].as_str().unwrap());
    api.post(&format!("{two}/cve"), Some(ADMIN), &json!({}))
        .await;
    assert!(api.get(&two, Some(ADMIN)).await.body["cve_id"].is_null());
    // Fork: 202 with a name, visible on the advisory only after the delay.
    let f = api
        .post(&format!("{one}/forks"), Some(ADMIN), &json!({}))
        .await;
    assert_eq!(f.status, 202);
    assert_eq!(f.body["name"], format!("widget-{}", g.to_lowercase()));
    assert!(api.get(&one, Some(ADMIN)).await.body["private_fork"].is_null());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(api.get(&two, Some(ADMIN)).await.body["cve_id"].is_string());
    assert_eq!(
        api.get(&one, Some(ADMIN)).await.body["private_fork"]["name"],
        f.body["name"]
    );
    // Private repositories cannot request CVEs; non-admins cannot either.
    let p = api.create(PRIVATE_REPO, ADMIN, "private").await;
    let pp = adv_path(PRIVATE_REPO, p["ghsa_id"].as_str().unwrap());
    assert_eq!(
        api.post(&format!("{pp}/cve"), Some(ADMIN), &json!({}))
            .await
            .status,
        422
    );
    let c = api.create(REPO, ADMIN, "cve3").await;
    let three = adv_path(REPO, c["ghsa_id"].as_str().unwrap());
    api.patch(
        &three,
        Some(ADMIN),
        &json!({"collaborating_users": ["bob"]}),
    )
    .await;
    assert_eq!(
        api.post(&format!("{three}/cve"), Some(WRITER), &json!({}))
            .await
            .status,
        403
    );
    // start_private_fork on create.
    let mut body = create_body("fork at create");
    body["start_private_fork"] = json!(true);
    let r = api
        .post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            &body,
        )
        .await;
    assert_eq!(r.status, 201);
}

// 8. Authentication and visibility.
#[tokio::test]
async fn auth_and_visibility() {
    let (_sim, _r, api) = start().await;
    let list = format!("/repos/{REPO}/security-advisories");
    assert_eq!(
        api.post(&list, None, &create_body("anon")).await.status,
        401
    );
    assert_eq!(api.get(&list, Some("tok-unknown")).await.status, 401);
    assert_eq!(
        api.post(&list, Some(WRITER), &create_body("writer"))
            .await
            .status,
        403
    );
    assert_eq!(
        api.post(&list, Some(SECMGR), &create_body("secmgr"))
            .await
            .status,
        201
    );
    let a = api.create(REPO, ADMIN, "vis").await;
    let one = adv_path(REPO, a["ghsa_id"].as_str().unwrap());
    for tok in [None, Some(READER), Some(WRITER), Some(OUTSIDER)] {
        assert_eq!(api.get(&one, tok).await.status, 404, "{tok:?}");
        assert_eq!(
            api.patch(&one, tok, &json!({"summary": "x"})).await.status,
            404,
            "{tok:?}"
        );
    }
    assert_eq!(api.get(&list, Some(READER)).await.body, json!([]));
    // A collaborator on the advisory can read and edit, but not publish.
    api.patch(
        &one,
        Some(ADMIN),
        &json!({"collaborating_users": ["carol"]}),
    )
    .await;
    assert_eq!(api.get(&one, Some(READER)).await.status, 200);
    assert_eq!(
        api.patch(&one, Some(READER), &json!({"summary": "edited"}))
            .await
            .status,
        200
    );
    assert_eq!(
        api.patch(&one, Some(READER), &json!({"state": "published"}))
            .await
            .status,
        403
    );
    // Team collaborators too.
    api.patch(
        &one,
        Some(ADMIN),
        &json!({"collaborating_users": null, "collaborating_teams": ["security"]}),
    )
    .await;
    assert_eq!(api.get(&one, Some(WRITER)).await.status, 200);
    assert_eq!(api.get(&one, Some(READER)).await.status, 404);
    // Published advisories on public repositories are public.
    api.patch(&one, Some(ADMIN), &json!({"state": "published"}))
        .await;
    assert_eq!(api.get(&one, None).await.status, 200);
    assert_eq!(api.get(&one, Some(OUTSIDER)).await.status, 200);
    assert_eq!(
        api.patch(&one, Some(OUTSIDER), &json!({"summary": "x"}))
            .await
            .status,
        403
    );
    // Private repositories are 404 even once published.
    let p = api.create(PRIVATE_REPO, ADMIN, "private").await;
    let pp = adv_path(PRIVATE_REPO, p["ghsa_id"].as_str().unwrap());
    api.patch(&pp, Some(ADMIN), &json!({"state": "published"}))
        .await;
    assert_eq!(api.get(&pp, Some(OUTSIDER)).await.status, 404);
    assert_eq!(
        api.get(&format!("/repos/{PRIVATE_REPO}/security-advisories"), None)
            .await
            .status,
        404
    );
    assert_eq!(api.get(&pp, Some(ADMIN)).await.status, 200);
    // Org list: security managers only.
    assert_eq!(
        api.get("/orgs/acme/security-advisories", Some(ADMIN))
            .await
            .status,
        403
    );
    assert_eq!(
        api.get("/orgs/acme/security-advisories", Some(SECMGR))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get("/orgs/nobody/security-advisories", Some(SECMGR))
            .await
            .status,
        404
    );
}

// 9. Rate limits.
#[tokio::test]
async fn primary_and_secondary_rate_limits() {
    let cfg = SimConfig {
        primary: PrimaryLimits {
            authenticated: 5,
            anonymous: 2,
            window: Duration::from_secs(3600),
            status: LimitStatus::Forbidden,
        },
        secondary: SecondaryLimits {
            per_short_window: 2,
            short_window: Duration::from_millis(1500),
            per_long_window: 100,
            long_window: Duration::from_secs(60),
            status: LimitStatus::TooManyRequests,
        },
        ..SimConfig::default()
    };
    let sim = seeded(cfg);
    let running = spawn_local(sim.clone()).await.unwrap();
    let api = Api::new(&running.base_url);
    let list = format!("/repos/{REPO}/security-advisories");
    let r = api.get(&list, Some(ADMIN)).await;
    assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
    assert_eq!(r.header("x-ratelimit-used"), Some("1"));
    assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    assert!(
        r.header("x-ratelimit-reset")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > chrono::Utc::now().timestamp()
    );
    // Secondary: two writes pass, the third gets 429 + retry-after.
    assert_eq!(
        api.post(&list, Some(ADMIN), &create_body("1")).await.status,
        201
    );
    assert_eq!(
        api.post(&list, Some(ADMIN), &create_body("2")).await.status,
        201
    );
    let r = api.post(&list, Some(ADMIN), &create_body("3")).await;
    assert_eq!(r.status, 429);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    assert_eq!(sim.advisories(REPO).unwrap().len(), 2);
    // Primary: used 4 now; one more allowed, then 403 with remaining 0.
    assert_eq!(api.get(&list, Some(ADMIN)).await.status, 200);
    let r = api.get(&list, Some(ADMIN)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("API rate limit exceeded")
    );
    // Other users have their own budget; anonymous has 2.
    assert_eq!(api.get(&list, Some(READER)).await.status, 200);
    assert_eq!(
        api.get(&list, None).await.header("x-ratelimit-limit"),
        Some("2")
    );
    // After the short window, writes pass again.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        api.post(&list, Some(SECMGR), &create_body("4"))
            .await
            .status,
        201
    );
    let ledger = sim.ledger();
    assert!(
        ledger
            .iter()
            .any(|e| e.fault == Some(FaultKind::SecondaryLimit) && !e.applied && e.status == 429)
    );
    assert!(
        ledger
            .iter()
            .any(|e| e.fault == Some(FaultKind::PrimaryLimit))
    );
}

// 10a. ETags.
#[tokio::test]
async fn etag_and_304_without_charge() {
    let (_sim, _r, api) = start().await;
    let a = api.create(REPO, ADMIN, "etag").await;
    let one = adv_path(REPO, a["ghsa_id"].as_str().unwrap());
    let first = api.get(&one, Some(ADMIN)).await;
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let remaining: u32 = first
        .header("x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap();
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let r = api
            .try_send(
                Method::GET,
                &one,
                Some(ADMIN),
                None,
                &[("if-none-match", &inm)],
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        assert_eq!(r.body, Value::Null);
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(
            r.header("x-ratelimit-remaining")
                .unwrap()
                .parse::<u32>()
                .unwrap(),
            remaining
        );
    }
    // After a change the ETag no longer matches.
    api.patch(&one, Some(ADMIN), &json!({"summary": "changed"}))
        .await;
    let r = api
        .try_send(
            Method::GET,
            &one,
            Some(ADMIN),
            None,
            &[("if-none-match", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    // Lists have ETags too.
    let l = api
        .get(&format!("/repos/{REPO}/security-advisories"), Some(ADMIN))
        .await;
    let le = l.header("etag").unwrap().to_owned();
    let r = api
        .try_send(
            Method::GET,
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            None,
            &[("if-none-match", &le)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 304);
}

// 10b. Webhooks: signature, events, release and ping, publish through the handle.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(raw) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&raw).is_ok()
}

#[tokio::test]
async fn signed_webhooks() {
    let (sim, _r, api) = start().await;
    let (url, mut rx) = receiver().await;
    sim.set_webhook(&url, Some("It's a Secret to Everybody"));
    sim.emit_ping();
    let (h, body) = rx.recv().await.unwrap();
    assert_eq!(h["x-github-event"], "ping");
    assert!(verify("It's a Secret to Everybody", &h, &body));
    assert!(!verify("wrong secret", &h, &body));

    // Draft edits and closes emit nothing; a report emits `reported`.
    let a = api.create(REPO, ADMIN, "hook").await;
    let g = a["ghsa_id"].as_str().unwrap().to_owned();
    api.patch(
        &adv_path(REPO, &g),
        Some(ADMIN),
        &json!({"summary": "edited"}),
    )
    .await;
    api.post(
        &format!("/repos/{REPO}/security-advisories/reports"),
        Some(OUTSIDER),
        &json!({"summary": "s", "description": "d"}),
    )
    .await;
    let (h, body) = rx.recv().await.unwrap();
    assert_eq!(h["x-github-event"], "repository_advisory");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["action"], "reported");
    assert_eq!(v["sender"]["login"], "mallory");
    let first_delivery = h["x-github-delivery"].to_str().unwrap().to_owned();
    assert_eq!(first_delivery.len(), 36);

    // A maintainer publishes "in the UI": webhook + ledger entry via the handle.
    sim.publish_as("alice", REPO, &g).unwrap();
    let (h, body) = rx.recv().await.unwrap();
    assert!(verify("It's a Secret to Everybody", &h, &body));
    assert_ne!(h["x-github-delivery"].to_str().unwrap(), first_delivery);
    assert!(h.contains_key("x-github-hook-id"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["action"], "published");
    assert_eq!(v["repository_advisory"]["ghsa_id"], g.as_str());
    assert_eq!(v["repository"]["full_name"], REPO);
    let e = sim
        .ledger()
        .into_iter()
        .rev()
        .find(|e| e.is_publish())
        .unwrap();
    assert_eq!(e.via, Via::Handle);
    assert_eq!(e.actor.as_deref(), Some("alice"));

    // Release event.
    sim.emit_release(REPO, "v1.2.3").unwrap();
    let (h, body) = rx.recv().await.unwrap();
    assert_eq!(h["x-github-event"], "release");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["release"]["tag_name"], "v1.2.3");
    assert_eq!(v["action"], "published");
    sim.flush_webhooks().await;
    let d = sim.webhook_deliveries();
    assert_eq!(d.len(), 4);
    assert!(d.iter().all(|d| d.status == Some(200)));
}

// Fault injection.
#[tokio::test]
async fn fault_5xx_is_never_applied() {
    let (sim, _r, api) = start().await;
    sim.update_faults(|f| {
        f.error_5xx = 1.0;
        f.error_5xx_writes_only = true;
    });
    let r = api
        .post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            &create_body("x"),
        )
        .await;
    assert!(r.status.is_server_error());
    assert_eq!(
        api.get(&format!("/repos/{REPO}/security-advisories"), Some(ADMIN))
            .await
            .status,
        200
    );
    assert!(sim.advisories(REPO).unwrap().is_empty());
    let e = sim.ledger().into_iter().find(|e| e.op == "create").unwrap();
    assert_eq!(e.fault, Some(FaultKind::Error5xx));
    assert!(!e.applied && e.write);
    sim.set_faults(FaultConfig::default());
    sim.inject(InjectedFault::Error5xx, 1);
    assert!(api.get("/user", Some(ADMIN)).await.status.is_server_error());
    assert_eq!(api.get("/user", Some(ADMIN)).await.status, 200);
}

#[tokio::test]
async fn reset_after_apply_leaves_the_change_applied() {
    let (sim, running, api) = start().await;
    sim.inject(InjectedFault::ResetAfterApply, 1);
    let err = api
        .try_send(
            Method::POST,
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            Some(&create_body("reset")),
            &[],
        )
        .await
        .unwrap_err();
    assert!(!err.is_status());
    let advs = sim.advisories(REPO).unwrap();
    assert_eq!(advs.len(), 1, "the create was applied");
    let e = sim.ledger().into_iter().find(|e| e.op == "create").unwrap();
    assert!(e.applied && !e.delivered);
    assert_eq!(e.fault, Some(FaultKind::ResetAfterApply));
    assert_eq!(e.state_to, Some(AdvisoryState::Draft));
    assert_eq!(e.ghsa_id.as_deref(), advs[0]["ghsa_id"].as_str());
    // A publish that is reset is still published (the ambiguous window).
    let g = advs[0]["ghsa_id"].as_str().unwrap();
    sim.update_faults(|f| f.reset_after_apply = 1.0);
    assert!(
        api.try_send(
            Method::PATCH,
            &adv_path(REPO, g),
            Some(ADMIN),
            Some(&json!({"state": "published"})),
            &[]
        )
        .await
        .is_err()
    );
    sim.set_faults(FaultConfig::default());
    assert_eq!(
        api.get(&adv_path(REPO, g), Some(ADMIN)).await.body["state"],
        "published"
    );
    // The admin ledger route shows the same thing to another process.
    let l: Vec<Value> = reqwest::get(format!("{}/_sim/ledger?since=0", running.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(l.iter().any(|e| e["fault"] == "reset_after_apply"
        && e["state_to"] == "published"
        && e["delivered"] == false));
}

#[tokio::test]
async fn forced_secondary_limit_and_latency() {
    let (sim, _r, api) = start().await;
    sim.update_faults(|f| {
        f.secondary_limit = 1.0;
        f.retry_after = Duration::from_secs(7);
        f.latency = Duration::from_millis(60);
        f.jitter = Duration::from_millis(20);
    });
    let t = Instant::now();
    let r = api
        .post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            &create_body("x"),
        )
        .await;
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(sim.advisories(REPO).unwrap().is_empty());
    // Reads are not content creation.
    assert_eq!(
        api.get(&format!("/repos/{REPO}/security-advisories"), Some(ADMIN))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let sim = seeded(SimConfig {
            seed,
            ..quiet_config()
        });
        sim.update_faults(|f| f.error_5xx = 0.5);
        let running = spawn_local(sim.clone()).await.unwrap();
        let api = Api::new(&running.base_url);
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(api.get("/user", Some(ADMIN)).await.status.as_u16());
        }
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert!(a.iter().any(|s| *s >= 500) && a.contains(&200));
}

#[tokio::test]
async fn admin_routes_drive_a_separate_process() {
    let (sim, running, api) = start().await;
    let base = &running.base_url;
    let c = reqwest::Client::new();
    let r = c
        .put(format!("{base}/_sim/faults"))
        .json(&json!({"error_5xx": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.faults().error_5xx, 1.0);
    assert!(api.get("/user", Some(ADMIN)).await.status.is_server_error());
    c.put(format!("{base}/_sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let a = api.create(REPO, ADMIN, "admin").await;
    let r = c
        .post(format!("{base}/_sim/publish"))
        .json(&json!({"login": "alice", "repo": REPO, "ghsa_id": a["ghsa_id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let advs: Vec<Value> = c
        .get(format!("{base}/_sim/repos/acme/widget/advisories"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(advs[0]["state"], "published");
    c.post(format!("{base}/_sim/inject"))
        .json(&json!({"fault": "secondary_limit", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(ADMIN),
            &create_body("x")
        )
        .await
        .status,
        403
    );
}

#[tokio::test]
async fn ledger_records_every_request_in_order() {
    let (sim, _r, api) = start().await;
    api.get("/user", Some(ADMIN)).await;
    let a = api.create(REPO, ADMIN, "ledger").await;
    api.patch(
        &adv_path(REPO, a["ghsa_id"].as_str().unwrap()),
        Some(ADMIN),
        &json!({"state": "published"}),
    )
    .await;
    api.get("/nowhere", None).await;
    let l = sim.ledger();
    assert_eq!(
        l.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(l[0].op, "get_user");
    assert!(!l[0].write);
    assert!(l[1].is_creation());
    assert_eq!(l[1].repo.as_deref(), Some(REPO));
    assert!(l[1].body_sha256.is_some());
    assert!(l[2].is_publish());
    assert_eq!(l[2].state_from, Some(AdvisoryState::Draft));
    assert_eq!(l[3].status, 404);
    assert_eq!(sim.ledger_since(3).len(), 1);
}
