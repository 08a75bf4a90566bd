//! GitHub Apps (§9.8): JWT-authenticated `/app` routes, installation tokens that expire,
//! and an octocrab App client that finds its installation and mints tokens by itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lockstep_sim::{Permission, seed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;

fn other_key() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../lockstep-github/tests/fixtures/test-app-key.pem"
    ))
    .unwrap()
}

fn jwt_with(key_pem: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A JWT as octocrab makes it: issued 60 s ago, valid for nine minutes.
fn jwt(iss: u64) -> String {
    jwt_with(
        seed::DEMO_APP_PRIVATE_KEY_PEM,
        &json!({"iss": iss, "iat": now() - 60, "exp": now() + 540}),
    )
}

async fn with_app() -> (lockstep_sim::Simulator, lockstep_sim::RunningSim, Api) {
    let (sim, running, api) = start().await;
    sim.add_app(APP_ID, "lockstep", seed::DEMO_APP_PUBLIC_KEY_PEM)
        .unwrap();
    sim.add_installation(INSTALLATION, APP_ID, "acme", &[REPO], Permission::Admin)
        .unwrap();
    (sim, running, api)
}

async fn mint(api: &Api, jwt: &str, body: &Value) -> Resp {
    api.post(
        &format!("/app/installations/{INSTALLATION}/access_tokens"),
        Some(jwt),
        body,
    )
    .await
}

#[tokio::test]
async fn installation_tokens_are_minted_for_a_valid_jwt_and_expire() {
    let (sim, _r, api) = with_app().await;
    let r = mint(&api, &jwt(APP_ID), &json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
    let expires: chrono::DateTime<chrono::Utc> =
        r.body["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(59) && ttl <= chrono::Duration::minutes(60));
    assert_eq!(r.body["repository_selection"], "selected");
    assert_eq!(sim.installation_tokens_minted(), 1);

    // The token acts as the App's bot on the installed repository, with its permission.
    let created = api
        .post(
            &format!("/repos/{REPO}/security-advisories"),
            Some(&token),
            &create_body("by the app"),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["author"]["login"], "lockstep[bot]");
    assert_eq!(created.body["author"]["type"], "Bot");
    // …but not on a repository outside the installation (admin rights needed: 403).
    let outside = api
        .post(
            &format!("/repos/{REPO2}/security-advisories"),
            Some(&token),
            &create_body("outside"),
        )
        .await;
    assert_eq!(outside.status, 403);
    // An installation token is not a user: GET /user is refused as GitHub does.
    let me = api.get("/user", Some(&token)).await;
    assert_eq!(me.status, 403);
    assert_eq!(me.body["message"], "Resource not accessible by integration");
    // It may read collaborator permissions where it is installed.
    let p = api
        .get(
            &format!("/repos/{REPO}/collaborators/alice/permission"),
            Some(&token),
        )
        .await;
    assert_eq!(p.status, 200);

    // Tokens stop working at expires_at.
    sim.set_installation_token_ttl(Duration::from_millis(1_200));
    let short = mint(&api, &jwt(APP_ID), &json!({})).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(short, token);
    assert_eq!(
        api.get(&format!("/repos/{REPO}/security-advisories"), Some(&short))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let expired = api
        .get(&format!("/repos/{REPO}/security-advisories"), Some(&short))
        .await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["message"], "Bad credentials");
    // The long-lived one still works.
    assert_eq!(
        api.get(&format!("/repos/{REPO}/security-advisories"), Some(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_jwts_are_refused_with_401() {
    let (sim, _r, api) = with_app().await;
    let key = seed::DEMO_APP_PRIVATE_KEY_PEM;
    let cases: Vec<(&str, String)> = vec![
        ("not a JWT", "garbage".into()),
        ("a personal token", ADMIN.into()),
        (
            "signed with another key",
            jwt_with(
                &other_key(),
                &json!({"iss": APP_ID, "iat": now() - 60, "exp": now() + 540}),
            ),
        ),
        (
            "an unknown issuer",
            jwt_with(
                key,
                &json!({"iss": 1, "iat": now() - 60, "exp": now() + 540}),
            ),
        ),
        (
            "expired",
            jwt_with(
                key,
                &json!({"iss": APP_ID, "iat": now() - 900, "exp": now() - 300}),
            ),
        ),
        (
            "exp too far in the future",
            jwt_with(
                key,
                &json!({"iss": APP_ID, "iat": now() - 60, "exp": now() + 3_600}),
            ),
        ),
        (
            "issued in the future",
            jwt_with(
                key,
                &json!({"iss": APP_ID, "iat": now() + 600, "exp": now() + 660}),
            ),
        ),
        (
            "no exp",
            jwt_with(key, &json!({"iss": APP_ID, "iat": now() - 60})),
        ),
    ];
    for (what, token) in &cases {
        let r = mint(&api, token, &json!({})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
        assert!(r.header("x-ratelimit-limit").is_some(), "{what}");
        let r = api.get("/app", Some(token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    assert_eq!(api.get("/app", None).await.status, 401);
    // The issuer as a string is accepted (GitHub takes the App id or its client id).
    let s = jwt_with(
        key,
        &json!({"iss": APP_ID.to_string(), "iat": now() - 60, "exp": now() + 540}),
    );
    assert_eq!(mint(&api, &s, &json!({})).await.status, 201);
    // Another App's installation, or none at all: 404.
    sim.add_app(9, "other", seed::DEMO_APP_PUBLIC_KEY_PEM)
        .unwrap();
    assert_eq!(mint(&api, &jwt(9), &json!({})).await.status, 404);
    let r = api
        .post(
            "/app/installations/123456/access_tokens",
            Some(&jwt(APP_ID)),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(sim.installation_tokens_minted(), 1);
}

#[tokio::test]
async fn token_requests_are_validated() {
    let (_sim, _r, api) = with_app().await;
    let j = jwt(APP_ID);
    let ok = mint(
        &api,
        &j,
        &json!({"repositories": ["widget"], "permissions": {}}),
    )
    .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    for bad in [
        json!({"repositories": ["gadget"]}),
        json!({"repository_ids": [1]}),
        json!({"bogus": true}),
    ] {
        let r = mint(&api, &j, &bad).await;
        assert_eq!(r.status, 422, "{bad}: {:?}", r.body);
    }
    let r = api
        .try_send(
            Method::POST,
            &format!("/app/installations/{INSTALLATION}/access_tokens"),
            Some(&j),
            None,
            &[("content-type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "an empty body is allowed");
}

#[tokio::test]
async fn an_app_finds_its_installation() {
    let (_sim, _r, api) = with_app().await;
    let j = jwt(APP_ID);
    let app = api.get("/app", Some(&j)).await;
    assert_eq!(app.status, 200);
    assert_eq!(app.body["id"], APP_ID);
    let list = api.get("/app/installations", Some(&j)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], INSTALLATION);
    assert_eq!(list.body[0]["account"]["login"], "acme");
    let one = api
        .get(&format!("/app/installations/{INSTALLATION}"), Some(&j))
        .await;
    assert!(
        one.body["access_tokens_url"]
            .as_str()
            .unwrap()
            .ends_with("/access_tokens")
    );
    let by_repo = api
        .get(&format!("/repos/{REPO}/installation"), Some(&j))
        .await;
    assert_eq!(by_repo.status, 200);
    assert_eq!(by_repo.body["id"], INSTALLATION);
    let not_installed = api
        .get(&format!("/repos/{REPO2}/installation"), Some(&j))
        .await;
    assert_eq!(not_installed.status, 404);
}

/// An octocrab App client, as the adapter builds it: it finds its installation through
/// the App endpoints, mints and caches the installation token itself, and deserialises
/// every answer into its models.
#[tokio::test]
async fn octocrab_app_client_against_the_simulator() {
    let (sim, running, _api) = with_app().await;
    let key = EncodingKey::from_rsa_pem(seed::DEMO_APP_PRIVATE_KEY_PEM.as_bytes()).unwrap();
    let app = octocrab::Octocrab::builder()
        .base_uri(running.base_url.as_str())
        .unwrap()
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
        .app(APP_ID.into(), key)
        .build()
        .unwrap();
    let installations = app.apps().installations().send().await.unwrap();
    assert_eq!(installations.items.len(), 1);
    let id = installations.items[0].id;
    assert_eq!(id.0, INSTALLATION);
    let by_repo = app
        .apps()
        .get_repository_installation("acme", "widget")
        .await
        .unwrap();
    assert_eq!(by_repo.id, id);
    let (crab, token) = app.installation_and_token(id).await.unwrap();
    use octocrab::secrecy::ExposeSecret as _;
    assert!(token.expose_secret().starts_with("ghs_"));
    let page = crab
        .repos("acme", "widget")
        .security_advisories()
        .list()
        .send()
        .await
        .unwrap();
    assert!(page.items.is_empty());
    crab.repos("acme", "widget")
        .security_advisories()
        .list()
        .send()
        .await
        .unwrap();
    assert_eq!(sim.installation_tokens_minted(), 1, "the token is cached");
}
