//! The OpenAPI description is generated from the code: every route the router serves is
//! described (and nothing else), the wire names of the core's enums are the core's, and
//! requests built from the command surface's types validate against it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use lockstep_core::input::{FixStage, Threat, Verdict};
use lockstep_server::surface::{self, OneOrMany};
use serde_json::{Value, json};

fn doc() -> &'static Value {
    lockstep_server::openapi::document()
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let routes: BTreeSet<(String, String)> = lockstep_server::routes()
        .into_iter()
        .map(|(m, p)| (m.to_lowercase(), p))
        .collect();
    let mut described = BTreeSet::new();
    for (path, item) in doc()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                described.insert((method.clone(), path.clone()));
            }
        }
    }
    assert_eq!(routes, described);
    assert!(routes.contains(&("post".into(), "/api/cases/{id}/scope-add".into())));
    assert!(routes.contains(&("get".into(), "/api/openapi.json".into())));
    assert_eq!(doc()["openapi"], "3.1.0");
}

/// The `enum` of a component schema.
fn names(component: &str) -> BTreeSet<String> {
    doc()["components"]["schemas"][component]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{component} has no enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn wire<T: serde::Serialize>(values: &[T]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_enums_carry_the_core_s_names() {
    assert_eq!(
        names("VerdictName"),
        wire(&[
            Verdict::Investigating,
            Verdict::Affected,
            Verdict::NotAffected
        ])
    );
    assert_eq!(
        names("FixStageName"),
        wire(&[FixStage::Prepared, FixStage::Released])
    );
    assert_eq!(
        names("ThreatName"),
        wire(&[
            Threat::PublicAwareness,
            Threat::ExploitPublic,
            Threat::AttacksObserved
        ])
    );
}

/// A validator for the request body of `POST path`.
fn body_validator(path: &str) -> jsonschema::Validator {
    let schema =
        doc()["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            .clone();
    assert!(schema.is_object(), "no request body described for {path}");
    let mut root = schema;
    root["components"] = doc()["components"].clone();
    jsonschema::validator_for(&root).unwrap()
}

fn validates(path: &str, body: &Value) -> bool {
    body_validator(path).is_valid(body)
}

#[test]
fn requests_of_the_surface_validate_and_bad_ones_do_not() {
    let id = "/api/cases/{id}";
    let ok: Vec<(String, Value)> = vec![
        (
            format!("{id}/assess"),
            serde_json::to_value(surface::Assess {
                repo: "org/core".into(),
                verdict: Verdict::NotAffected,
                reason: "x".into(),
            })
            .unwrap(),
        ),
        (
            format!("{id}/fix-ready"),
            serde_json::to_value(surface::FixReady {
                repo: "org/core".into(),
                patched_versions: Some("1.0.1".into()),
                vulnerable_range: Some("< 1.0.1".into()),
                lines: None,
                package: Some(OneOrMany::Many(vec!["core".into()])),
                stage: Some(FixStage::Prepared),
            })
            .unwrap(),
        ),
        (
            format!("{id}/threat"),
            serde_json::to_value(surface::RecordThreat {
                threat: Threat::ExploitPublic,
                reason: "x".into(),
            })
            .unwrap(),
        ),
        (
            format!("{id}/embargo-request"),
            json!({"until": "2030-01-01T00:00:00Z", "reason": "x"}),
        ),
        (
            "/api/cases".to_owned(),
            serde_json::to_value(surface::OpenRequest {
                workflow_name: Some("w".into()),
                summary: "s".into(),
                description: "d".into(),
                severity: Some("high".into()),
                cwe: vec!["CWE-79".into()],
                ..Default::default()
            })
            .unwrap(),
        ),
        (
            "/api/cases".to_owned(),
            serde_json::to_value(surface::OpenRequest {
                workflow_name: Some("w".into()),
                from_report: Some("org/core/GHSA-aaaa-bbbb-cccc".into()),
                ..Default::default()
            })
            .unwrap(),
        ),
        (
            "/api/reports/{owner}/{repo}/{ghsa}/reject".to_owned(),
            serde_json::to_value(surface::RejectReport {
                reason: "stdio only".into(),
                rule: Some("stdio-trust-boundary".into()),
            })
            .unwrap(),
        ),
        (
            "/api/reports/{owner}/{repo}/{ghsa}/merge".to_owned(),
            serde_json::to_value(surface::MergeReport {
                case: "LS-1".into(),
                reason: None,
            })
            .unwrap(),
        ),
    ];
    for (path, body) in &ok {
        assert!(validates(path, body), "{path}: {body}");
    }
    // What the handlers refuse, the description refuses too.
    for (path, body) in [
        (
            format!("{id}/assess"),
            json!({"repo": "org/core", "verdict": "maybe", "reason": "x"}),
        ),
        (
            format!("{id}/assess"),
            json!({"repo": "org/core", "reason": "x"}),
        ),
        (format!("{id}/close"), json!({"reason": "x", "extra": 1})),
        (
            format!("{id}/threat"),
            json!({"threat": "rumour", "reason": "x"}),
        ),
        // Summary and description may be left out only with `from_report` (the handler
        // checks that); a summary that is not text is refused by the description too.
        ("/api/cases".to_owned(), json!({"summary": 5})),
        (
            "/api/reports/{owner}/{repo}/{ghsa}/reject".to_owned(),
            json!({"rule": "x"}),
        ),
    ] {
        assert!(!validates(&path, &body), "{path} accepted {body}");
    }
}
