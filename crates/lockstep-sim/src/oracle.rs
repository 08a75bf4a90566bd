//! GitHub's OpenAPI description of the advisory endpoints as a JSON Schema oracle, for tests
//! of the simulator and of the adapter (feature `oracle`).
//!
//! It reads `shared/github/repository-advisories.openapi.json` beside the checkout and maps
//! OpenAPI 3.0's `nullable: true` to JSON Schema: `type: [T, "null"]` (and `null` in an
//! `enum`), or `anyOf [schema, {type: null}]` where there is no `type`. Components are
//! embedded in every validator so that `$ref`s resolve.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use jsonschema::Draft;
pub use jsonschema::Validator;
use serde_json::{Map, Value, json};

use crate::Observed;

/// The loaded description.
pub struct Oracle {
    /// The OpenAPI document as GitHub wrote it.
    pub spec: Value,
    components: Value,
    cache: Mutex<HashMap<String, Arc<Validator>>>,
}

/// What [`Oracle::check_response`] could say about a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Validated against the schema GitHub's description gives for its operation and
    /// status (or `basic-error`, GitHub's generic error shape, for a status the operation
    /// does not list; or "no body" for a 304).
    Valid,
    /// A success of an operation the description does not contain (`/user`, collaborator
    /// permissions, `/rate_limit`, the App routes): check it another way.
    NotInOracle,
}

/// The operation of the oracle behind a simulator operation name (the ledger's `op`).
pub fn operation_of(op: &str) -> Option<(&'static str, &'static str)> {
    Some(match op {
        "list" => ("/repos/{owner}/{repo}/security-advisories", "get"),
        "create" => ("/repos/{owner}/{repo}/security-advisories", "post"),
        "report" => ("/repos/{owner}/{repo}/security-advisories/reports", "post"),
        "get" => ("/repos/{owner}/{repo}/security-advisories/{ghsa_id}", "get"),
        "update" => (
            "/repos/{owner}/{repo}/security-advisories/{ghsa_id}",
            "patch",
        ),
        "request_cve" => (
            "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/cve",
            "post",
        ),
        "fork" => (
            "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/forks",
            "post",
        ),
        "list_org" => ("/orgs/{org}/security-advisories", "get"),
        "get_global" => ("/advisories/{ghsa_id}", "get"),
        _ => return None,
    })
}

/// Replaces OpenAPI's `nullable` with JSON Schema's spelling, recursively.
pub fn denullify(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(denullify),
        Value::Object(m) => {
            for child in m.values_mut() {
                denullify(child);
            }
            if m.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = m.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(m));
                    m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
        }
        _ => {}
    }
}

impl Oracle {
    /// Loads GitHub's description, kept in the crate (`openapi/`, copied with its attribution
    /// from GitHub's `rest-api-description`).
    pub fn load() -> Result<Oracle, String> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("openapi/repository-advisories.openapi.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the oracle at {}: {e}", path.display()))?;
        let spec: Value =
            serde_json::from_str(&text).map_err(|e| format!("the oracle is not JSON: {e}"))?;
        let mut components = spec["components"].clone();
        denullify(&mut components);
        Ok(Oracle {
            spec,
            components,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// A validator for `schema`, compiled once per schema (under the cache's lock, so
    /// concurrent checkers do not compile the same schema twice).
    pub fn cached_validator(&self, schema: &Value) -> Result<Arc<Validator>, String> {
        let key = schema.to_string();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = cache.get(&key) {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new(self.validator(schema)?);
        cache.insert(key, Arc::clone(&v));
        Ok(v)
    }

    /// The JSON schema of `method template`'s response with `status`, if the description
    /// lists that status. `full-repository` is a stub in the oracle, so the fork's 202 is
    /// checked against its `simple-repository` core.
    pub fn response_schema(&self, template: &str, method: &str, status: u16) -> Option<Value> {
        let op = self.spec["paths"][template].get(method)?;
        let resp = self.resolve(op["responses"].get(status.to_string())?);
        let schema = resp.pointer("/content/application~1json/schema")?;
        if self.resolve(schema).get("x-subset-stub") == Some(&Value::Bool(true)) {
            return Some(json!({"$ref": "#/components/schemas/simple-repository"}));
        }
        Some(schema.clone())
    }

    /// Checks one response of the simulator (status and body) against the schema of its
    /// operation. `Err` lists the violations.
    pub fn check_response(&self, o: &Observed) -> Result<Verdict, String> {
        let schema = match (operation_of(&o.op), o.status) {
            (_, 304) => {
                return match &o.body {
                    None => Ok(Verdict::Valid),
                    Some(b) => Err(format!("a 304 with a body: {b}")),
                };
            }
            (Some((template, method)), status) => {
                match self.response_schema(template, method, status) {
                    Some(s) => s,
                    None if status >= 400 => json!({"$ref": "#/components/schemas/basic-error"}),
                    None => {
                        return Err(format!(
                            "{} {template}: status {status} is not in GitHub's description",
                            method.to_ascii_uppercase()
                        ));
                    }
                }
            }
            (None, status) if status >= 400 => {
                json!({"$ref": "#/components/schemas/basic-error"})
            }
            (None, _) => return Ok(Verdict::NotInOracle),
        };
        let body = o.body.clone().unwrap_or(Value::Null);
        let v = self.cached_validator(&schema)?;
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(Verdict::Valid)
        } else {
            Err(format!(
                "{} {} ({}) answered {} not matching the oracle: {errors:?}",
                o.method, o.path, o.op, o.status
            ))
        }
    }

    /// A validator for `schema` (OpenAPI, `$ref`s into `#/components`), with format checks.
    pub fn validator(&self, schema: &Value) -> Result<Validator, String> {
        let mut doc = Map::new();
        doc.insert("components".into(), self.components.clone());
        let mut s = schema.clone();
        denullify(&mut s);
        doc.insert("allOf".into(), json!([s]));
        jsonschema::options()
            .with_draft(Draft::Draft7)
            .should_validate_formats(true)
            .build(&Value::Object(doc))
            .map_err(|e| e.to_string())
    }

    /// A validator for `#/components/schemas/{name}`.
    pub fn component(&self, name: &str) -> Result<Validator, String> {
        self.validator(&json!({ "$ref": format!("#/components/schemas/{name}") }))
    }

    /// Follows `$ref`s from `v` to the schema they name.
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(Value::String(r)) = v.get("$ref") {
            match self.spec.pointer(r.trim_start_matches('#')) {
                Some(next) => v = next,
                None => break,
            }
        }
        v
    }
}
