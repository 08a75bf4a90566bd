//! Redirects and pagination links are followed only within the API origin; the token
//! never reaches another host.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::*;
use lockstep_github::{Error, ListQuery};
use serde_json::json;

/// (path, Authorization header) of each request seen.
type Seen = Vec<(String, Option<String>)>;

#[derive(Clone, Default)]
struct Hits(Arc<Mutex<Seen>>);

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn advisory(ghsa: &str) -> serde_json::Value {
    json!({"ghsa_id": ghsa, "summary": "s", "description": "d", "state": "draft"})
}

async fn github(State((hits, other)): State<(Hits, String)>, req: Request) -> Response {
    let path = req.uri().path_and_query().unwrap().as_str().to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    hits.0.lock().unwrap().push((path.clone(), auth));
    let redirect =
        |to: String| (http::StatusCode::MOVED_PERMANENTLY, [("location", to)]).into_response();
    match path.as_str() {
        "/repos/acme/old/security-advisories/GHSA-1111-2222-3333" => {
            redirect("/repos/acme/new/security-advisories/GHSA-1111-2222-3333".into())
        }
        "/repos/acme/new/security-advisories/GHSA-1111-2222-3333" => {
            axum::Json(advisory("GHSA-1111-2222-3333")).into_response()
        }
        "/repos/acme/evil/security-advisories/GHSA-1111-2222-3333" => redirect(format!(
            "{other}/repos/acme/new/security-advisories/GHSA-1111-2222-3333"
        )),
        "/repos/acme/loop/security-advisories/GHSA-1111-2222-3333" => {
            redirect("/repos/acme/loop/security-advisories/GHSA-1111-2222-3333".into())
        }
        p if p.starts_with("/repos/acme/evil/security-advisories?") => (
            [(
                "link",
                format!("<{other}/repos/acme/evil/security-advisories?after=x>; rel=\"next\""),
            )],
            axum::Json(json!([advisory("GHSA-aaaa-bbbb-cccc")])),
        )
            .into_response(),
        _ => (
            http::StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn same_origin_only() {
    let other_hits = Hits::default();
    let other = serve(
        Router::new()
            .fallback(|State(h): State<Hits>, req: Request| async move {
                let auth = req
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                h.0.lock().unwrap().push((req.uri().to_string(), auth));
                axum::Json(advisory("GHSA-1111-2222-3333"))
            })
            .with_state(other_hits.clone()),
    )
    .await;
    let hits = Hits::default();
    let base = serve(
        Router::new()
            .fallback(github)
            .with_state((hits.clone(), other.clone())),
    )
    .await;
    let c = client(&base, ADMIN_TOKEN);

    let a = c
        .get_advisory(&repo("acme/old"), "GHSA-1111-2222-3333")
        .await
        .unwrap();
    assert_eq!(a.ghsa_id, "GHSA-1111-2222-3333");
    assert_eq!(
        hits.0.lock().unwrap().len(),
        2,
        "followed the same-origin redirect"
    );
    assert!(
        hits.0.lock().unwrap()[1]
            .1
            .as_deref()
            .unwrap()
            .ends_with(ADMIN_TOKEN)
    );

    let e = c
        .get_advisory(&repo("acme/evil"), "GHSA-1111-2222-3333")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Other {
                status: Some(301),
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .list_advisories(&repo("acme/evil"), &ListQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Other { .. }), "{e:?}");
    let e = c
        .get_advisory(&repo("acme/loop"), "GHSA-1111-2222-3333")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("too many redirects"), "{e}");
    assert!(
        other_hits.0.lock().unwrap().is_empty(),
        "nothing reached the other host"
    );
}
