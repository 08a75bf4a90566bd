//! GitHub's OpenAPI description of the advisory endpoints as a JSON Schema oracle, for tests
//! of the simulator and of the adapter (feature `oracle`).
//!
//! It reads `shared/github/repository-advisories.openapi.json` beside the checkout and maps
//! OpenAPI 3.0's `nullable: true` to JSON Schema: `type: [T, "null"]` (and `null` in an
//! `enum`), or `anyOf [schema, {type: null}]` where there is no `type`. Components are
//! embedded in every validator so that `$ref`s resolve.

use std::path::PathBuf;

use jsonschema::Draft;
pub use jsonschema::Validator;
use serde_json::{Map, Value, json};

/// The loaded description.
pub struct Oracle {
    /// The OpenAPI document as GitHub wrote it.
    pub spec: Value,
    components: Value,
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
    /// Loads the description from `../shared/github` beside the checkout.
    pub fn load() -> Result<Oracle, String> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/github/repository-advisories.openapi.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the oracle at {}: {e}", path.display()))?;
        let spec: Value =
            serde_json::from_str(&text).map_err(|e| format!("the oracle is not JSON: {e}"))?;
        let mut components = spec["components"].clone();
        denullify(&mut components);
        Ok(Oracle { spec, components })
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
