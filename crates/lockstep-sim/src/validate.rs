//! Strict request-body validation mirroring the OpenAPI request schemas
//! (`repository-advisory-create`, `private-vulnerability-report-create`,
//! `repository-advisory-update`), all with `additionalProperties: false`.

use serde_json::{Map, Value};

use crate::error::{ApiError, Problem};
use crate::model::Vuln;

/// Ecosystems accepted by GitHub (`security-advisory-ecosystems`).
pub(crate) const ECOSYSTEMS: &[&str] = &[
    "rubygems", "npm", "pip", "maven", "nuget", "composer", "go", "rust", "erlang", "actions",
    "pub", "other", "swift",
];
/// Credit types (`security-advisory-credit-types`).
pub(crate) const CREDIT_TYPES: &[&str] = &[
    "analyst",
    "finder",
    "reporter",
    "coordinator",
    "remediation_developer",
    "remediation_reviewer",
    "remediation_verifier",
    "tool",
    "sponsor",
    "other",
];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];
const UPDATE_STATES: &[&str] = &["published", "closed", "draft"];

/// Which request schema applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Create,
    Report,
    Update,
}

/// A field of a request body: absent, explicit `null`, or a value.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) enum Field<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
    pub(crate) fn value(&self) -> Option<&T> {
        match self {
            Self::Set(v) => Some(v),
            _ => None,
        }
    }
    pub(crate) fn into_option(self) -> Option<T> {
        match self {
            Self::Set(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CreditIn {
    pub(crate) login: String,
    pub(crate) kind: String,
}

/// Parsed, schema-valid body (semantic checks happen in the operations).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AdvisoryInput {
    pub(crate) summary: Field<String>,
    pub(crate) description: Field<String>,
    pub(crate) cve_id: Field<String>,
    pub(crate) vulnerabilities: Field<Vec<Vuln>>,
    pub(crate) cwe_ids: Field<Vec<String>>,
    pub(crate) credits: Field<Vec<CreditIn>>,
    pub(crate) severity: Field<String>,
    pub(crate) cvss_vector_string: Field<String>,
    pub(crate) start_private_fork: Field<bool>,
    pub(crate) state: Field<String>,
    pub(crate) collaborating_users: Field<Vec<String>>,
    pub(crate) collaborating_teams: Field<Vec<String>>,
}

struct Checker {
    problems: Vec<Problem>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Checker {
    fn push(&mut self, field: &str, code: &'static str, message: String, index: Option<usize>) {
        self.problems.push(Problem {
            field: field.to_owned(),
            code,
            message,
            index,
        });
    }

    fn wrong_type(&mut self, path: &str, field: &str, v: &Value, want: &str, index: Option<usize>) {
        self.push(
            field,
            "invalid",
            format!("For '{path}', {} is not {want}.", short(v)),
            index,
        );
    }

    /// A string field, optionally nullable, with optional max length and enum.
    fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        nullable: bool,
        max: Option<usize>,
        allowed: Option<&[&str]>,
    ) -> Field<String> {
        let path = format!("properties/{key}");
        match obj.get(key) {
            None => Field::Absent,
            Some(Value::Null) if nullable => Field::Null,
            Some(Value::String(s)) => {
                if let Some(max) = max
                    && s.chars().count() > max
                {
                    self.push(
                        key,
                        "invalid",
                        format!("For '{path}', string is longer than {max} characters."),
                        None,
                    );
                    return Field::Absent;
                }
                if let Some(allowed) = allowed
                    && !allowed.contains(&s.as_str())
                {
                    self.push(
                        key,
                        "invalid",
                        format!("For '{path}', {:?} is not one of {:?}.", s, allowed),
                        None,
                    );
                    return Field::Absent;
                }
                Field::Set(s.clone())
            }
            Some(v) => {
                let want = if nullable {
                    "a string or null"
                } else {
                    "a string"
                };
                self.wrong_type(&path, key, v, want, None);
                Field::Absent
            }
        }
    }

    fn string_array(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        nullable: bool,
    ) -> Field<Vec<String>> {
        let path = format!("properties/{key}");
        match obj.get(key) {
            None => Field::Absent,
            Some(Value::Null) if nullable => Field::Null,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            self.wrong_type(
                                &format!("items/{key}/{i}"),
                                key,
                                other,
                                "a string",
                                Some(i),
                            );
                        }
                    }
                }
                Field::Set(out)
            }
            Some(v) => {
                self.wrong_type(&path, key, v, "an array", None);
                Field::Absent
            }
        }
    }

    fn opt_string_in(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        field: &str,
        i: usize,
    ) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.wrong_type(
                    &format!("{path}/{key}"),
                    field,
                    v,
                    "a string or null",
                    Some(i),
                );
                None
            }
        }
    }

    fn vulnerabilities(&mut self, obj: &Map<String, Value>, nullable: bool) -> Field<Vec<Vuln>> {
        let key = "vulnerabilities";
        let items = match obj.get(key) {
            None => return Field::Absent,
            Some(Value::Null) if nullable => return Field::Null,
            Some(Value::Array(items)) => items,
            Some(v) => {
                let want = if nullable {
                    "an array or null"
                } else {
                    "an array"
                };
                self.wrong_type("properties/vulnerabilities", key, v, want, None);
                return Field::Absent;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let path = format!("items/vulnerabilities/{i}");
            let Value::Object(item) = it else {
                self.wrong_type(&path, key, it, "an object", Some(i));
                continue;
            };
            for k in item.keys() {
                if ![
                    "package",
                    "vulnerable_version_range",
                    "patched_versions",
                    "vulnerable_functions",
                ]
                .contains(&k.as_str())
                {
                    self.push(
                        key,
                        "invalid",
                        format!("For '{path}', {k:?} is not a permitted key."),
                        Some(i),
                    );
                }
            }
            let (ecosystem, name) = match item.get("package") {
                None => {
                    self.push(
                        key,
                        "missing_field",
                        format!("For '{path}', \"package\" wasn't supplied."),
                        Some(i),
                    );
                    continue;
                }
                Some(Value::Object(p)) => {
                    let eco = match p.get("ecosystem") {
                        None => {
                            self.push(
                                key,
                                "missing_field",
                                format!("For '{path}/package', \"ecosystem\" wasn't supplied."),
                                Some(i),
                            );
                            None
                        }
                        Some(Value::String(e)) if ECOSYSTEMS.contains(&e.as_str()) => {
                            Some(e.clone())
                        }
                        Some(v) => {
                            self.push(
                                key,
                                "invalid",
                                format!(
                                    "For '{path}/package/ecosystem', {} is not one of {:?}.",
                                    short(v),
                                    ECOSYSTEMS
                                ),
                                Some(i),
                            );
                            None
                        }
                    };
                    let name = self.opt_string_in(p, "name", &format!("{path}/package"), key, i);
                    (eco, name)
                }
                Some(v) => {
                    self.wrong_type(&format!("{path}/package"), key, v, "an object", Some(i));
                    continue;
                }
            };
            let vvr = self.opt_string_in(item, "vulnerable_version_range", &path, key, i);
            let patched = self.opt_string_in(item, "patched_versions", &path, key, i);
            let funcs = match item.get("vulnerable_functions") {
                None | Some(Value::Null) => None,
                Some(Value::Array(fs)) => {
                    let mut v = Vec::new();
                    for f in fs {
                        match f {
                            Value::String(s) => v.push(s.clone()),
                            other => self.wrong_type(
                                &format!("{path}/vulnerable_functions"),
                                key,
                                other,
                                "a string",
                                Some(i),
                            ),
                        }
                    }
                    Some(v)
                }
                Some(v) => {
                    self.wrong_type(
                        &format!("{path}/vulnerable_functions"),
                        key,
                        v,
                        "an array or null",
                        Some(i),
                    );
                    None
                }
            };
            if let Some(ecosystem) = ecosystem {
                out.push(Vuln {
                    ecosystem,
                    name,
                    vulnerable_version_range: vvr,
                    patched_versions: patched,
                    vulnerable_functions: funcs,
                });
            }
        }
        Field::Set(out)
    }

    fn credits(&mut self, obj: &Map<String, Value>) -> Field<Vec<CreditIn>> {
        let key = "credits";
        let items = match obj.get(key) {
            None => return Field::Absent,
            Some(Value::Null) => return Field::Null,
            Some(Value::Array(items)) => items,
            Some(v) => {
                self.wrong_type("properties/credits", key, v, "an array or null", None);
                return Field::Absent;
            }
        };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let path = format!("items/credits/{i}");
            let Value::Object(c) = it else {
                self.wrong_type(&path, key, it, "an object", Some(i));
                continue;
            };
            for k in c.keys() {
                if k != "login" && k != "type" {
                    self.push(
                        key,
                        "invalid",
                        format!("For '{path}', {k:?} is not a permitted key."),
                        Some(i),
                    );
                }
            }
            let login = match c.get("login") {
                Some(Value::String(s)) => Some(s.clone()),
                None => {
                    self.push(
                        key,
                        "missing_field",
                        format!("For '{path}', \"login\" wasn't supplied."),
                        Some(i),
                    );
                    None
                }
                Some(v) => {
                    self.wrong_type(&format!("{path}/login"), key, v, "a string", Some(i));
                    None
                }
            };
            let kind = match c.get("type") {
                Some(Value::String(s)) if CREDIT_TYPES.contains(&s.as_str()) => Some(s.clone()),
                None => {
                    self.push(
                        key,
                        "missing_field",
                        format!("For '{path}', \"type\" wasn't supplied."),
                        Some(i),
                    );
                    None
                }
                Some(v) => {
                    self.push(
                        key,
                        "invalid",
                        format!(
                            "For '{path}/type', {} is not one of {:?}.",
                            short(v),
                            CREDIT_TYPES
                        ),
                        Some(i),
                    );
                    None
                }
            };
            if let (Some(login), Some(kind)) = (login, kind) {
                out.push(CreditIn { login, kind });
            }
        }
        Field::Set(out)
    }
}

/// Parses and validates a body. Malformed JSON → 400 "Problems parsing JSON";
/// schema violations → 422 `validation-error`.
pub(crate) fn parse(kind: BodyKind, body: &[u8]) -> Result<AdvisoryInput, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request("Problems parsing JSON"))?;
    parse_value(kind, &value)
}

pub(crate) fn parse_value(kind: BodyKind, value: &Value) -> Result<AdvisoryInput, ApiError> {
    let Value::Object(obj) = value else {
        return Err(ApiError::schema(vec![Problem {
            field: String::new(),
            code: "invalid",
            message: format!("{} is not an object.", type_name(value)),
            index: None,
        }]));
    };
    let allowed: &[&str] = match kind {
        BodyKind::Create => &[
            "summary",
            "description",
            "cve_id",
            "vulnerabilities",
            "cwe_ids",
            "credits",
            "severity",
            "cvss_vector_string",
            "start_private_fork",
        ],
        BodyKind::Report => &[
            "summary",
            "description",
            "vulnerabilities",
            "cwe_ids",
            "severity",
            "cvss_vector_string",
            "start_private_fork",
        ],
        BodyKind::Update => &[
            "summary",
            "description",
            "cve_id",
            "vulnerabilities",
            "cwe_ids",
            "credits",
            "severity",
            "cvss_vector_string",
            "state",
            "collaborating_users",
            "collaborating_teams",
        ],
    };
    let required: &[&str] = match kind {
        BodyKind::Create => &["summary", "description", "vulnerabilities"],
        BodyKind::Report => &["summary", "description"],
        BodyKind::Update => &[],
    };
    let mut c = Checker {
        problems: Vec::new(),
    };
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            c.push(k, "invalid", format!("{k:?} is not a permitted key."), None);
        }
    }
    for r in required {
        if !obj.contains_key(*r) {
            c.push(r, "missing_field", format!("{r:?} wasn't supplied."), None);
        }
    }
    let mut input = AdvisoryInput {
        summary: c.string(obj, "summary", false, Some(1024), None),
        description: c.string(obj, "description", false, Some(65535), None),
        vulnerabilities: c.vulnerabilities(obj, kind == BodyKind::Report),
        cwe_ids: c.string_array(obj, "cwe_ids", true),
        severity: c.string(obj, "severity", true, None, Some(SEVERITIES)),
        cvss_vector_string: c.string(obj, "cvss_vector_string", true, None, None),
        ..AdvisoryInput::default()
    };
    if kind != BodyKind::Report {
        input.cve_id = c.string(obj, "cve_id", true, None, None);
        input.credits = c.credits(obj);
    }
    if kind != BodyKind::Update {
        input.start_private_fork = match obj.get("start_private_fork") {
            None => Field::Absent,
            Some(Value::Bool(b)) => Field::Set(*b),
            Some(v) => {
                c.wrong_type(
                    "properties/start_private_fork",
                    "start_private_fork",
                    v,
                    "a boolean",
                    None,
                );
                Field::Absent
            }
        };
    } else {
        input.state = c.string(obj, "state", false, None, Some(UPDATE_STATES));
        input.collaborating_users = c.string_array(obj, "collaborating_users", true);
        input.collaborating_teams = c.string_array(obj, "collaborating_teams", true);
    }
    if c.problems.is_empty() {
        Ok(input)
    } else {
        Err(ApiError::schema(c.problems))
    }
}

/// `CVE-YYYY-NNNN…`
pub(crate) fn is_cve_id(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("CVE"), Some(y), Some(n), None)
            if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit())
                && n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit())
    )
}

/// `CWE-N…`
pub(crate) fn is_cwe_id(s: &str) -> bool {
    s.strip_prefix("CWE-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()))
}
