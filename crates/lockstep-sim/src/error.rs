//! GitHub-shaped API errors (`basic-error`, `validation-error`) and the handle's error type.

use serde_json::{Value, json};

const DOCS: &str = "https://docs.github.com/rest";
const ADVISORY_DOCS: &str =
    "https://docs.github.com/rest/security-advisories/repository-advisories";

/// An HTTP error answer in GitHub's JSON shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`basic-error` or `validation-error`).
    pub body: Value,
    /// Extra response headers (e.g. `retry-after`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn basic(status: u16, message: &str, doc: &str) -> Self {
        Self {
            status,
            body: json!({
                "message": message,
                "documentation_url": doc,
                "status": status.to_string(),
            }),
            headers: Vec::new(),
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::basic(404, "Not Found", DOCS)
    }

    pub(crate) fn unauthorized_bad_credentials() -> Self {
        Self::basic(401, "Bad credentials", DOCS)
    }

    pub(crate) fn requires_auth() -> Self {
        Self::basic(401, "Requires authentication", DOCS)
    }

    pub(crate) fn forbidden(message: &str) -> Self {
        Self::basic(403, message, ADVISORY_DOCS)
    }

    pub(crate) fn bad_request(message: &str) -> Self {
        Self::basic(400, message, DOCS)
    }

    /// `validation-error` with a message only (like S1's PATCH examples) plus one error item.
    pub(crate) fn validation(message: &str, field: Option<&str>, code: &str) -> Self {
        let mut err = json!({"resource": "RepositoryAdvisory", "code": code, "message": message});
        if let (Some(f), Value::Object(m)) = (field, &mut err) {
            m.insert("field".into(), Value::String(f.to_owned()));
        }
        Self {
            status: 422,
            body: json!({
                "message": message,
                "documentation_url": ADVISORY_DOCS,
                "errors": [err],
                "status": "422",
            }),
            headers: Vec::new(),
        }
    }

    /// `repository-advisory-description-validation-error`: a private vulnerability
    /// report's description does not follow the repository's report template.
    pub(crate) fn template(violations: &[crate::model::TemplateViolation]) -> Self {
        let errors: Vec<Value> = violations
            .iter()
            .map(|v| {
                let mut e = json!({
                    "resource": "RepositoryAdvisory",
                    "field": "description",
                    "code": v.code,
                    "section": v.section,
                });
                if let (Some(o), Value::Object(m)) = (&v.option, &mut e) {
                    m.insert("option".into(), Value::String(o.clone()));
                }
                e
            })
            .collect();
        Self {
            status: 422,
            body: json!({
                "message": "Advisory description does not satisfy this repository's report template.",
                "documentation_url": "https://docs.github.com/code-security/security-advisories/guidance-on-reporting-and-writing-information-about-vulnerabilities/privately-reporting-a-security-vulnerability",
                "errors": errors,
                "status": "422",
            }),
            headers: Vec::new(),
        }
    }

    /// `validation-error` for schema violations, aggregating every problem found.
    pub(crate) fn schema(problems: Vec<Problem>) -> Self {
        let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        let errors: Vec<Value> = problems
            .into_iter()
            .map(|p| {
                let mut e = json!({
                    "resource": "RepositoryAdvisory",
                    "field": p.field,
                    "code": p.code,
                    "message": p.message,
                });
                if let (Some(i), Value::Object(m)) = (p.index, &mut e) {
                    m.insert("index".into(), json!(i));
                }
                e
            })
            .collect();
        Self {
            status: 422,
            body: json!({
                "message": format!("Invalid request.\n\n{}", text.join("\n")),
                "documentation_url": ADVISORY_DOCS,
                "errors": errors,
                "status": "422",
            }),
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The `message` of the body, if any.
    pub fn message(&self) -> &str {
        self.body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// One schema problem found while validating a request body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    pub(crate) field: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) index: Option<usize>,
}

/// Errors of the Rust handle ([`crate::Simulator`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SimError {
    /// The repository was never added.
    #[error("unknown repository {0}")]
    UnknownRepo(String),
    /// The user was never added.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// The repository already exists.
    #[error("repository {0} already exists")]
    RepoExists(String),
    /// The App was never registered.
    #[error("unknown app {0}")]
    UnknownApp(u64),
    /// A key could not be read (expected an RSA public key in PEM).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A name could not be parsed (expected `owner/name`).
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// The operation was refused as the API would refuse it.
    #[error("API error {}: {}", .0.status, .0.message())]
    Api(ApiError),
}

impl From<ApiError> for SimError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}
