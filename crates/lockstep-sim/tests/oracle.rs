//! Oracle test: every body the simulator returns in these scenarios validates against the
//! response schema GitHub's OpenAPI description gives for that operation and status, and
//! every request body sent validates against the operation's request schema.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use jsonschema::Validator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Oracle(lockstep_sim::oracle::Oracle);

impl std::ops::Deref for Oracle {
    type Target = lockstep_sim::oracle::Oracle;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Oracle {
    fn new() -> Self {
        Self(lockstep_sim::oracle::Oracle::load().unwrap())
    }

    fn validator(&self, schema: &Value) -> Validator {
        self.0.validator(schema).unwrap()
    }

    fn operation(&self, template: &str, method: &str) -> &Value {
        let op = &self.spec["paths"][template][method];
        assert!(
            op.is_object(),
            "no operation {method} {template} in the oracle"
        );
        op
    }

    fn response_schema(&self, template: &str, method: &str, status: u16) -> Value {
        let op = self.operation(template, method);
        let resp = op["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{method} {template}: status {status} is not documented"));
        let resp = self.resolve(resp);
        let schema = &resp["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {template} {status}: no JSON schema"
        );
        let resolved = self.resolve(schema);
        if resolved.get("x-subset-stub") == Some(&Value::Bool(true)) {
            // full-repository is a stub in the oracle; check the simple-repository core.
            return json!({"$ref": "#/components/schemas/simple-repository"});
        }
        schema.clone()
    }

    fn request_schema(&self, template: &str, method: &str) -> Value {
        self.operation(template, method)["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    }

    #[track_caller]
    fn check_response(&self, template: &str, method: &str, r: &Resp) {
        let status = r.status.as_u16();
        let schema = self.response_schema(template, method, status);
        let v = self.validator(&schema);
        let errors: Vec<String> = v
            .iter_errors(&r.body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match the oracle: {errors:#?}\nbody: {}",
            serde_json::to_string_pretty(&r.body).unwrap()
        );
    }

    fn request_valid(&self, template: &str, method: &str, body: &Value) -> bool {
        self.validator(&self.request_schema(template, method))
            .is_valid(body)
    }
}

const LIST: &str = "/repos/{owner}/{repo}/security-advisories";
const ONE: &str = "/repos/{owner}/{repo}/security-advisories/{ghsa_id}";
const REPORTS: &str = "/repos/{owner}/{repo}/security-advisories/reports";
const CVE: &str = "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/cve";
const FORKS: &str = "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/forks";
const ORG: &str = "/orgs/{org}/security-advisories";

#[tokio::test]
async fn every_response_matches_the_openapi_oracle() {
    let o = Oracle::new();
    let (sim, _running, api) = start().await;
    let list = format!("/repos/{REPO}/security-advisories");

    // Requests taken from the oracle's own examples must be valid for the oracle.
    let examples =
        &o.operation(LIST, "post")["requestBody"]["content"]["application/json"]["examples"];
    for (name, ex) in examples.as_object().unwrap() {
        let mut body = ex["value"].clone();
        // The examples credit octocat/monalisa; only monalisa exists in the fixture.
        if let Some(c) = body.get_mut("credits") {
            *c = json!([{"login": "monalisa", "type": "reporter"}]);
        }
        assert!(o.request_valid(LIST, "post", &body), "example {name}");
        let r = api.post(&list, Some(ADMIN), &body).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "example {name}: {:?}",
            r.body
        );
        o.check_response(LIST, "post", &r);
    }

    // Full lifecycle with every optional field.
    let body = create_body("Lifecycle");
    assert!(o.request_valid(LIST, "post", &body));
    let created = api.post(&list, Some(ADMIN), &body).await;
    o.check_response(LIST, "post", &created);
    let ghsa = created.body["ghsa_id"].as_str().unwrap().to_owned();
    let one = adv_path(REPO, &ghsa);

    let patches = [
        json!({"collaborating_users": ["bob"], "collaborating_teams": ["security"]}),
        json!({"cvss_vector_string": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "severity": null}),
        json!({"cwe_ids": null, "credits": [{"login": "monalisa", "type": "remediation_developer"}]}),
        json!({"cvss_vector_string": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}),
        json!({"collaborating_users": null, "collaborating_teams": null, "cve_id": null}),
    ];
    for p in &patches {
        assert!(o.request_valid(ONE, "patch", p), "{p}");
        let r = api.patch(&one, Some(ADMIN), p).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        o.check_response(ONE, "patch", &r);
    }
    let fork = api
        .post(&format!("{one}/forks"), Some(ADMIN), &json!({}))
        .await;
    assert_eq!(fork.status, StatusCode::ACCEPTED);
    o.check_response(FORKS, "post", &fork);
    let cve = api
        .post(&format!("{one}/cve"), Some(ADMIN), &json!({}))
        .await;
    assert_eq!(cve.status, StatusCode::ACCEPTED);
    o.check_response(CVE, "post", &cve);
    let got = api.get(&one, Some(ADMIN)).await;
    assert!(got.body["private_fork"].is_object());
    assert!(got.body["cve_id"].is_string());
    o.check_response(ONE, "get", &got);
    let publish = json!({"state": "published"});
    assert!(o.request_valid(ONE, "patch", &publish));
    let published = api.patch(&one, Some(ADMIN), &publish).await;
    o.check_response(ONE, "patch", &published);
    let anon = api.get(&one, None).await;
    assert_eq!(anon.status, StatusCode::OK);
    o.check_response(ONE, "get", &anon);

    // Private vulnerability report (triage, submission) then accept.
    let report = json!({"summary": "Found a bug", "description": "Steps...", "severity": "low"});
    assert!(o.request_valid(REPORTS, "post", &report));
    let rep = api
        .post(
            &format!("/repos/{REPO}/security-advisories/reports"),
            Some("tok-monalisa"),
            &report,
        )
        .await;
    assert_eq!(rep.status, StatusCode::CREATED, "{:?}", rep.body);
    o.check_response(REPORTS, "post", &rep);

    // Lists (repo and org) including pagination.
    let page = api
        .get(
            &format!("{list}?per_page=2&sort=updated&direction=asc"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
    o.check_response(LIST, "get", &page);
    let org = api
        .get("/orgs/acme/security-advisories?state=draft", Some(SECMGR))
        .await;
    assert_eq!(org.status, StatusCode::OK);
    o.check_response(ORG, "get", &org);

    // Errors: 404, 403, 422 (schema, state machine, severity with CVSS), 400 on lists.
    let nf = api
        .get(&adv_path(REPO, "GHSA-2222-3333-4444"), Some(ADMIN))
        .await;
    assert_eq!(nf.status, StatusCode::NOT_FOUND);
    o.check_response(ONE, "get", &nf);
    let forbidden = api.post(&list, Some(WRITER), &create_body("nope")).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    o.check_response(LIST, "post", &forbidden);
    let back = json!({"state": "draft"});
    let bad_transition = api.patch(&one, Some(ADMIN), &back).await;
    assert_eq!(bad_transition.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(ONE, "patch", &bad_transition);
    let sev = api
        .patch(&one, Some(ADMIN), &json!({"severity": "low"}))
        .await;
    assert_eq!(sev.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        sev.body["message"],
        "Cannot update severity value when CVSS is set."
    );
    o.check_response(ONE, "patch", &sev);
    let bad_list = api.get(&format!("{list}?per_page=500"), Some(ADMIN)).await;
    assert_eq!(bad_list.status, StatusCode::BAD_REQUEST);
    o.check_response(LIST, "get", &bad_list);
    let bad_cve = api
        .post(&format!("{one}/cve"), Some(ADMIN), &json!({}))
        .await;
    assert_eq!(bad_cve.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(CVE, "post", &bad_cve);

    // Unknown keys: rejected by the schema AND by the simulator, for all three bodies.
    let mut unknown = create_body("unknown key");
    unknown["embargo_id"] = json!("x");
    assert!(!o.request_valid(LIST, "post", &unknown));
    let r = api.post(&list, Some(ADMIN), &unknown).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(LIST, "post", &r);
    let unknown_patch = json!({"state": "closed", "labels": []});
    assert!(!o.request_valid(ONE, "patch", &unknown_patch));
    let draft = api.create(REPO, ADMIN, "for unknown patch").await;
    let r = api
        .patch(
            &adv_path(REPO, draft["ghsa_id"].as_str().unwrap()),
            Some(ADMIN),
            &unknown_patch,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(ONE, "patch", &r);
    let unknown_report = json!({"summary": "s", "description": "d", "credits": []});
    assert!(!o.request_valid(REPORTS, "post", &unknown_report));
    let r = api
        .post(
            &format!("/repos/{REPO}/security-advisories/reports"),
            Some(OUTSIDER),
            &unknown_report,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(REPORTS, "post", &r);
    // Nested unknown key inside a vulnerability item.
    let mut nested = create_body("nested");
    nested["vulnerabilities"][0]["severity"] = json!("high");
    assert!(!o.request_valid(LIST, "post", &nested));
    let r = api.post(&list, Some(ADMIN), &nested).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Everything the handle renders (every state) validates too.
    let adv_schema = o.validator(&json!({"$ref": "#/components/schemas/repository-advisory"}));
    // The validator is not vacuous: a missing required key or an extra key fails.
    let mut broken = created.body.clone();
    broken.as_object_mut().unwrap().remove("identifiers");
    assert!(!adv_schema.is_valid(&broken));
    let mut extra = created.body.clone();
    extra["extra"] = json!(1);
    assert!(!adv_schema.is_valid(&extra));
    let mut bad_null = created.body.clone();
    bad_null["summary"] = Value::Null;
    assert!(!adv_schema.is_valid(&bad_null));
    sim.withdraw(REPO, &ghsa).unwrap();
    for a in sim.advisories(REPO).unwrap() {
        let errs: Vec<String> = adv_schema.iter_errors(&a).map(|e| e.to_string()).collect();
        assert!(errs.is_empty(), "{errs:?} {a}");
    }

    // API version 2026-03-10 drops the deprecated `cvss` key.
    let r = api
        .client
        .get(format!("{}{one}", api.base))
        .header("x-github-api-version", "2026-03-10")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body.get("cvss").is_none());
    assert!(body.get("cvss_severities").is_some());
    let _ = Method::GET;
}

/// The global advisory database: a reviewed copy appears after the review delay and matches
/// GitHub's `global-advisory` schema; before it, an unreviewed ecosystem, and an unknown id
/// are 404s shaped as GitHub's; withdrawal and the lost-alias fault show in the copy.
#[tokio::test]
async fn global_advisories_match_the_openapi_oracle() {
    const GLOBAL: &str = "/advisories/{ghsa_id}";
    let o = Oracle::new();
    let (sim, _running, api) = start().await;
    sim.update_global(|g| g.review_delay = std::time::Duration::from_millis(300));
    let list = format!("/repos/{REPO}/security-advisories");
    let created = api.post(&list, Some(ADMIN), &create_body("Global")).await;
    let ghsa = created.body["ghsa_id"].as_str().unwrap().to_owned();
    let path = format!("/advisories/{ghsa}");

    let r = api.get(&path, Some(READER)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a draft has no global copy"
    );
    o.check_response(GLOBAL, "get", &r);
    api.post(
        &format!("{}/cve", adv_path(REPO, &ghsa)),
        Some(ADMIN),
        &json!({}),
    )
    .await;
    let r = api
        .patch(
            &adv_path(REPO, &ghsa),
            Some(ADMIN),
            &json!({"state": "published"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cve = r.body["cve_id"].as_str().unwrap().to_owned();
    let r = api.get(&path, Some(READER)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not reviewed yet");

    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let r = api.get(&path, Some(READER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    o.check_response(GLOBAL, "get", &r);
    assert_eq!(r.body["type"], "reviewed");
    assert_eq!(r.body["cve_id"], cve.as_str());
    assert!(
        r.body["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == cve.as_str())
    );
    assert_eq!(
        r.body["vulnerabilities"][0]["first_patched_version"],
        "1.0.0"
    );
    assert!(r.body["github_reviewed_at"].is_string());
    // Conditional reads cost nothing when nothing changed.
    let etag = r.header("etag").unwrap().to_owned();
    let again = api
        .try_send(
            Method::GET,
            &path,
            Some(READER),
            None,
            &[("if-none-match", etag.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    sim.update_global(|g| g.drop_alias = true);
    let r = api.get(&path, Some(READER)).await;
    o.check_response(GLOBAL, "get", &r);
    assert!(r.body["cve_id"].is_null(), "the alias is lost");
    assert!(
        !r.body["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "CVE")
    );

    sim.withdraw(REPO, &ghsa).unwrap();
    let r = api.get(&path, Some(READER)).await;
    o.check_response(GLOBAL, "get", &r);
    assert!(r.body["withdrawn_at"].is_string());

    // An ecosystem GitHub does not review never gets a copy.
    let mut body = create_body("Unreviewed");
    body["vulnerabilities"][0]["package"]["ecosystem"] = json!("other");
    let other = api.post(&list, Some(ADMIN), &body).await;
    let other = other.body["ghsa_id"].as_str().unwrap().to_owned();
    api.patch(
        &adv_path(REPO, &other),
        Some(ADMIN),
        &json!({"state": "published"}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let r = api.get(&format!("/advisories/{other}"), Some(READER)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .get("/advisories/GHSA-xxxx-xxxx-xxxx", Some(READER))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    o.check_response(GLOBAL, "get", &r);
}

/// Private vulnerability reporting, as Lockstep's intake uses it: any signed-in user files a
/// report where reporting is enabled (GitHub's refusal otherwise); the report is in
/// `triage` with `submission.accepted: false`; its reporter reads it, nobody else without
/// rights does; `?state=triage` lists it; only admins and security managers accept it
/// (`triage` → `draft`, in one PATCH with content and collaborators) or close it, and then
/// `submission.accepted` is true. Every response validates against the oracle.
#[tokio::test]
async fn private_reporting_routes_match_the_oracle() {
    let o = Oracle::new();
    let (sim, _running, api) = start().await;
    let reports = format!("/repos/{REPO}/security-advisories/reports");
    let body = json!({"summary": "Host header not validated", "description": "Steps...", "severity": "high", "cwe_ids": ["CWE-350"]});
    assert!(o.request_valid(REPORTS, "post", &body));

    // Anyone signed in files; anonymous callers and disabled repositories are refused.
    let rep = api.post(&reports, Some(OUTSIDER), &body).await;
    assert_eq!(rep.status, StatusCode::CREATED, "{:?}", rep.body);
    o.check_response(REPORTS, "post", &rep);
    assert_eq!(rep.body["state"], "triage");
    assert_eq!(rep.body["submission"]["accepted"], false);
    assert_eq!(rep.body["author"]["login"], "mallory");
    let ghsa = rep.body["ghsa_id"].as_str().unwrap().to_owned();
    let anon = api.post(&reports, None, &body).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    sim.set_private_vulnerability_reporting(REPO2, false)
        .unwrap();
    let off = api
        .post(
            &format!("/repos/{REPO2}/security-advisories/reports"),
            Some(OUTSIDER),
            &body,
        )
        .await;
    assert_eq!(off.status, StatusCode::FORBIDDEN);
    o.check_response(REPORTS, "post", &off);

    // The reporter reads their own report; a reader of the repository does not see it.
    let one = adv_path(REPO, &ghsa);
    let own = api.get(&one, Some(OUTSIDER)).await;
    assert_eq!(own.status, StatusCode::OK);
    o.check_response(ONE, "get", &own);
    let hidden = api.get(&one, Some(READER)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    o.check_response(ONE, "get", &hidden);

    // `?state=triage` lists it for an admin.
    let list = format!("/repos/{REPO}/security-advisories?state=triage");
    let triage = api.get(&list, Some(ADMIN)).await;
    assert_eq!(triage.status, StatusCode::OK);
    o.check_response(LIST, "get", &triage);
    let listed: Vec<&str> = triage
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ghsa_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ghsa.as_str()]);

    // Only admins and security managers change its state: not the reporter, not a writer.
    let accept = json!({
        "state": "draft",
        "description": "Adopted.\n\n<!-- lockstep:LS-1:acme/widget -->",
        "collaborating_users": ["carol"],
        "credits": [{"login": "mallory", "type": "reporter"}],
    });
    assert!(o.request_valid(ONE, "patch", &accept));
    let by_reporter = api
        .patch(&one, Some(OUTSIDER), &json!({"state": "draft"}))
        .await;
    assert_eq!(by_reporter.status, StatusCode::FORBIDDEN);
    o.check_response(ONE, "patch", &by_reporter);
    let by_writer = api
        .patch(&one, Some(WRITER), &json!({"state": "closed"}))
        .await;
    assert!(
        matches!(
            by_writer.status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{:?}",
        by_writer.status
    );
    o.check_response(ONE, "patch", &by_writer);
    // A security manager accepts it in one PATCH.
    let accepted = api.patch(&one, Some(SECMGR), &accept).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    o.check_response(ONE, "patch", &accepted);
    assert_eq!(accepted.body["state"], "draft");
    assert_eq!(accepted.body["submission"]["accepted"], true);
    assert_eq!(accepted.body["collaborating_users"][0]["login"], "carol");
    // The same PATCH again (a retry) changes nothing and is not an error.
    let again = api.patch(&one, Some(SECMGR), &accept).await;
    assert_eq!(again.status, StatusCode::OK);
    // Back to triage is not a transition GitHub has.
    let back = api
        .patch(&one, Some(ADMIN), &json!({"state": "triage"}))
        .await;
    assert_eq!(back.status, StatusCode::UNPROCESSABLE_ENTITY);
    o.check_response(ONE, "patch", &back);
    // A second report, closed by an admin (a rejection).
    let second = api.post(&reports, Some("tok-monalisa"), &body).await;
    let second = adv_path(REPO, second.body["ghsa_id"].as_str().unwrap());
    let closed = api
        .patch(&second, Some(ADMIN), &json!({"state": "closed"}))
        .await;
    assert_eq!(closed.status, StatusCode::OK);
    o.check_response(ONE, "patch", &closed);
    assert_eq!(closed.body["state"], "closed");
    assert_eq!(closed.body["submission"]["accepted"], false);
    let none = api.get(&list, Some(ADMIN)).await;
    assert_eq!(none.body.as_array().unwrap().len(), 0);
}
