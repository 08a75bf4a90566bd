//! `GET /api/cases/{id}/export/{format}`: the documents for those who may read the case, one
//! error line for everyone and everything else.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn readers_export_and_others_are_refused() {
    let w = world().await;
    let case = w.open().await;
    w.settle().await;
    let (status, v) = w
        .call(
            "POST",
            &format!("/api/cases/{case}/fix-ready"),
            Some("carol"),
            Some(&json!({"repo": "org/extra", "patched_versions": "0.4.2", "vulnerable_range": "< 0.4.2"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // CSAF: one document, embargoed.
    let (status, text, _) = w
        .raw(
            "GET",
            &format!("/api/cases/{case}/export/csaf"),
            Some("bob"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let csaf: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(csaf["document"]["category"], "csaf_vex");
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "RED");
    assert_eq!(csaf["document"]["tracking"]["id"], case.as_str());

    // OSV: one record per open draft; with repo, that one's.
    let (status, osv) = w
        .call(
            "GET",
            &format!("/api/cases/{case}/export/osv"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{osv}");
    assert_eq!(osv.as_array().unwrap().len(), 4, "{osv}");
    let (status, one) = w
        .call(
            "GET",
            &format!("/api/cases/{case}/export/osv?repo=org/extra"),
            Some("carol"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["affected"][0]["package"]["ecosystem"], "crates.io");
    assert_eq!(
        one["affected"][0]["ranges"][0]["events"][1]["fixed"],
        "0.4.2"
    );

    // CVE: one record per CVE the simulator assigned. CVEs are requested only for affected
    // repositories (`cve = "on-affected"`): org/extra's, once its fix was marked.
    w.settle().await;
    let (status, cves) = w
        .call(
            "GET",
            &format!("/api/cases/{case}/export/cve"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cves}");
    // One document is the body itself, not an array of one.
    assert!(cves.is_object(), "{cves}");
    assert!(
        cves["cveMetadata"]["cveId"]
            .as_str()
            .unwrap()
            .starts_with("CVE-")
    );

    // The response is never stored by a cache: it carries embargoed details.
    let req = axum::http::Request::builder()
        .uri(format!("/api/cases/{case}/export/csaf"))
        .header("authorization", format!("Bearer {}", token("alice")))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(w.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");

    for (what, login, path, expected) in [
        ("an outsider", "eve", "export/csaf", StatusCode::FORBIDDEN),
        (
            "push is not maintain",
            "erin",
            "export/osv",
            StatusCode::FORBIDDEN,
        ),
        (
            "unknown format",
            "alice",
            "export/xml",
            StatusCode::NOT_FOUND,
        ),
        (
            "csaf with a repo",
            "alice",
            "export/csaf?repo=org/core",
            StatusCode::BAD_REQUEST,
        ),
        (
            "a repo outside",
            "alice",
            "export/osv?repo=else/where",
            StatusCode::BAD_REQUEST,
        ),
        (
            "a bad repo",
            "alice",
            "export/osv?repo=..",
            StatusCode::BAD_REQUEST,
        ),
        (
            "an unknown parameter",
            "alice",
            "export/osv?format=csaf",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, v) = w
            .call(
                "GET",
                &format!("/api/cases/{case}/{path}"),
                Some(login),
                None,
            )
            .await;
        assert_eq!(status, expected, "{what}: {v}");
        let line = v["error"].as_str().unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(!v.to_string().contains(SUMMARY), "{what}: {v}");
    }
    let (status, _) = w
        .call("GET", &format!("/api/cases/{case}/export/osv"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nothing is published yet: no propagation to show, none lagging.
    let (_, view) = w
        .call("GET", &format!("/api/cases/{case}"), Some("alice"), None)
        .await;
    assert_eq!(view["propagation"], json!([]));
    assert_eq!(view["propagated"], json!(false));
    let (_, metrics, _) = w.raw("GET", "/metrics", None, None).await;
    assert!(
        metrics.contains("lockstep_advisories_lagging_global 0"),
        "{metrics}"
    );
}
