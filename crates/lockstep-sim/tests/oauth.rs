//! The OAuth web application flow: consent, one-time codes, PKCE, and the user token that
//! `GET /user` resolves.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use lockstep_sim::{SimConfig, Simulator};
use serde_json::Value;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-long";

fn challenge(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

async fn consent(http: &reqwest::Client, base: &str, login: &str) -> (reqwest::StatusCode, String) {
    let r = http
        .post(format!("{base}/login/oauth/authorize"))
        .form(&[
            ("client_id", "Iv1.app"),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
            ("state", "st&ate"),
            ("code_challenge", challenge(VERIFIER).as_str()),
            ("code_challenge_method", "S256"),
            ("login", login),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location)
}

async fn exchange(http: &reqwest::Client, base: &str, code: &str, verifier: &str) -> Value {
    http.post(format!("{base}/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(&[
            ("client_id", "Iv1.app"),
            ("client_secret", "s3cret"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn code_of(location: &str) -> String {
    assert!(
        location.starts_with("http://127.0.0.1:9/oauth/callback?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=st%26ate"), "{location}");
    location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sign_in_with_state_and_pkce() {
    let sim = Simulator::new(SimConfig::default());
    sim.add_user("bob", "tok-bob");
    sim.add_oauth_client("Iv1.app", "s3cret");
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let base = running.base_url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The consent page names the application and asks who signs in; markup is escaped.
    let page = http
        .get(format!(
            "{base}/login/oauth/authorize?client_id=Iv1.app&state=%3Cb%3E&redirect_uri=http://127.0.0.1:9/cb&code_challenge=x&code_challenge_method=S256"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"login\"") && html.contains("bob"),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;") && !html.contains("<b>"),
        "{html}"
    );
    // An unknown client, or a plain challenge, is refused.
    let r = http
        .get(format!("{base}/login/oauth/authorize?client_id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!(
            "{base}/login/oauth/authorize?client_id=Iv1.app&code_challenge=x&code_challenge_method=plain"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An unknown user cannot consent.
    assert_eq!(consent(&http, &base, "nobody").await.0, 400);

    // A wrong verifier is refused, and burns the code.
    let (status, location) = consent(&http, &base, "bob").await;
    assert_eq!(status, 303);
    let code = code_of(&location);
    let wrong = exchange(&http, &base, &code, "another-verifier").await;
    assert_eq!(wrong["error"], "invalid_grant", "{wrong}");
    let again = exchange(&http, &base, &code, VERIFIER).await;
    assert_eq!(again["error"], "bad_verification_code", "{again}");

    // The right verifier gets a user token, once; GET /user names the user.
    let (_, location) = consent(&http, &base, "bob").await;
    let code = code_of(&location);
    let ok = exchange(&http, &base, &code, VERIFIER).await;
    let token = ok["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("gho_"), "{ok}");
    assert_eq!(ok["token_type"], "bearer");
    let reuse = exchange(&http, &base, &code, VERIFIER).await;
    assert_eq!(reuse["error"], "bad_verification_code", "{reuse}");
    let user: Value = http
        .get(format!("{base}/user"))
        .bearer_auth(&token)
        .header("user-agent", "test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["login"], "bob", "{user}");

    // A wrong client secret is refused.
    let (_, location) = consent(&http, &base, "bob").await;
    let code = code_of(&location);
    let bad: Value = http
        .post(format!("{base}/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(&[
            ("client_id", "Iv1.app"),
            ("client_secret", "wrong"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad["error"], "incorrect_client_credentials", "{bad}");
}
