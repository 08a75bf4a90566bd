//! Webhook verification (`X-Hub-Signature-256`) and typed parsing of the three events
//! the service handles: `repository_advisory`, `release` and `ping`.
//!
//! Verify first, parse second: [`verify_signature`] runs over the raw body bytes, before
//! any JSON is looked at. The comparison is constant time (`hmac`'s `verify_slice`).

use std::fmt;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

/// Largest body accepted (GitHub caps payloads at 25 MB).
pub const MAX_WEBHOOK_BODY: usize = 25 * 1024 * 1024;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event-name header.
pub const EVENT_HEADER: &str = "x-github-event";
/// The delivery-id header (same value on redelivery: dedupe on it).
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Why a delivery was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256")]
    MissingSignature,
    /// Not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256")]
    MalformedSignature,
    /// The HMAC does not match.
    #[error("signature mismatch")]
    BadSignature,
    /// The webhook secret is empty (refuse rather than accept unsigned deliveries).
    #[error("no webhook secret configured")]
    NoSecret,
    /// Body larger than [`MAX_WEBHOOK_BODY`].
    #[error("payload too large")]
    TooLarge,
    /// No `X-GitHub-Event` header.
    #[error("missing X-GitHub-Event")]
    MissingEvent,
    /// The (verified) body is not the JSON the event should carry.
    #[error("malformed {event} payload: {reason}")]
    Malformed {
        /// Event name.
        event: String,
        /// What was wrong.
        reason: String,
    },
}

/// Verifies `signature` (the `X-Hub-Signature-256` value) over the raw `body`.
pub fn verify_signature(
    secret: &SecretString,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let secret = secret.expose_secret();
    if secret.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(WebhookError::TooLarge);
    }
    let sig = signature.ok_or(WebhookError::MissingSignature)?.trim();
    let hex_part = sig
        .strip_prefix("sha256=")
        .ok_or(WebhookError::MalformedSignature)?;
    if hex_part.len() != 64 {
        return Err(WebhookError::MalformedSignature);
    }
    let expected = hex::decode(hex_part).map_err(|_| WebhookError::MalformedSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| WebhookError::NoSecret)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// [`verify_signature`] reading the header from a header map.
pub fn verify_headers(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let sig = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| WebhookError::MalformedSignature)?),
    };
    verify_signature(secret, sig, body)
}

/// `repository_advisory` actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvisoryAction {
    /// An advisory was published.
    Published,
    /// A private vulnerability report was filed.
    Reported,
    /// Anything else.
    Other(String),
}

/// A verified, parsed event.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// `repository_advisory`.
    RepositoryAdvisory {
        /// Action.
        action: AdvisoryAction,
        /// The advisory.
        ghsa_id: String,
        /// Its state in the payload.
        state: Option<String>,
        /// `owner/name`.
        repository: String,
        /// App installation, for routing.
        installation_id: Option<u64>,
    },
    /// `release`.
    Release {
        /// Action (`published`, `created`, …).
        action: String,
        /// The tag.
        tag_name: String,
        /// `owner/name`.
        repository: String,
        /// App installation, for routing.
        installation_id: Option<u64>,
    },
    /// `security_advisory`: a reviewed advisory of GitHub's global database was published,
    /// updated or withdrawn.
    SecurityAdvisory {
        /// `published`, `updated`, `withdrawn`, …
        action: String,
        /// The advisory.
        ghsa_id: String,
        /// Its CVE aliases (`cve_id` and identifiers).
        cves: Vec<String>,
        /// When GitHub last changed it (`updated_at`, else `published_at`).
        updated_at: Option<chrono::DateTime<chrono::Utc>>,
        /// When it was withdrawn.
        withdrawn_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Its packages: (name, first patched version).
        packages: Vec<(String, Option<String>)>,
    },
    /// `ping` (sent when a hook is created).
    Ping {
        /// The hook.
        hook_id: Option<u64>,
        /// GitHub's zen line.
        zen: Option<String>,
    },
    /// Any other event: acknowledge and ignore.
    Unsupported {
        /// The `X-GitHub-Event` value.
        event: String,
    },
}

impl fmt::Debug for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RepositoryAdvisory {
                action,
                ghsa_id,
                state,
                repository,
                installation_id,
            } => f
                .debug_struct("RepositoryAdvisory")
                .field("action", action)
                .field("ghsa_id", ghsa_id)
                .field("state", state)
                .field("repository", repository)
                .field("installation_id", installation_id)
                .finish(),
            Self::Release {
                action,
                tag_name,
                repository,
                installation_id,
            } => f
                .debug_struct("Release")
                .field("action", action)
                .field("tag_name", tag_name)
                .field("repository", repository)
                .field("installation_id", installation_id)
                .finish(),
            Self::SecurityAdvisory {
                action, ghsa_id, ..
            } => f
                .debug_struct("SecurityAdvisory")
                .field("action", action)
                .field("ghsa_id", ghsa_id)
                .finish(),
            Self::Ping { hook_id, .. } => f.debug_struct("Ping").field("hook_id", hook_id).finish(),
            Self::Unsupported { event } => {
                f.debug_struct("Unsupported").field("event", event).finish()
            }
        }
    }
}

#[derive(Deserialize)]
struct WRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct WInstallation {
    id: u64,
}

#[derive(Deserialize)]
struct WAdvisory {
    ghsa_id: String,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct WAdvisoryEvent {
    action: String,
    repository: WRepo,
    repository_advisory: WAdvisory,
    #[serde(default)]
    installation: Option<WInstallation>,
}

#[derive(Deserialize)]
struct WRelease {
    tag_name: String,
}

#[derive(Deserialize)]
struct WReleaseEvent {
    action: String,
    release: WRelease,
    repository: WRepo,
    #[serde(default)]
    installation: Option<WInstallation>,
}

#[derive(Deserialize)]
struct WIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
struct WPackage {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WGlobalVulnerability {
    #[serde(default)]
    package: Option<WPackage>,
    /// A string, or `{"identifier": "1.2.3"}` in the webhook's shape.
    #[serde(default)]
    first_patched_version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WSecurityAdvisory {
    ghsa_id: String,
    #[serde(default)]
    cve_id: Option<String>,
    #[serde(default)]
    identifiers: Option<Vec<WIdentifier>>,
    #[serde(default)]
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    withdrawn_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    vulnerabilities: Option<Vec<WGlobalVulnerability>>,
}

#[derive(Deserialize)]
struct WSecurityAdvisoryEvent {
    action: String,
    security_advisory: WSecurityAdvisory,
}

#[derive(Deserialize)]
struct WPing {
    #[serde(default)]
    hook_id: Option<u64>,
    #[serde(default)]
    zen: Option<String>,
}

/// The JSON of a body: raw JSON, or the `payload` field of a form-encoded delivery.
fn json_bytes<'a>(body: &'a [u8], form: bool) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    if !form {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| std::borrow::Cow::Owned(v.into_owned().into_bytes()))
        .ok_or_else(|| "form body without payload".to_owned())
}

/// Parses an already verified body. `content_type` selects JSON or the
/// `application/x-www-form-urlencoded` (`payload=`) form. Never panics.
pub fn parse_event(
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<WebhookEvent, WebhookError> {
    let form = content_type.is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let malformed = |reason: String| WebhookError::Malformed {
        event: event.to_owned(),
        reason,
    };
    let known = matches!(
        event,
        "repository_advisory" | "release" | "ping" | "security_advisory"
    );
    if !known {
        return Ok(WebhookEvent::Unsupported {
            event: event.chars().take(64).collect(),
        });
    }
    let bytes = json_bytes(body, form).map_err(malformed)?;
    let err = |e: serde_json::Error| malformed(e.to_string());
    Ok(match event {
        "repository_advisory" => {
            let w: WAdvisoryEvent = serde_json::from_slice(&bytes).map_err(err)?;
            WebhookEvent::RepositoryAdvisory {
                action: match w.action.as_str() {
                    "published" => AdvisoryAction::Published,
                    "reported" => AdvisoryAction::Reported,
                    _ => AdvisoryAction::Other(w.action),
                },
                ghsa_id: w.repository_advisory.ghsa_id,
                state: w.repository_advisory.state,
                repository: w.repository.full_name,
                installation_id: w.installation.map(|i| i.id),
            }
        }
        "security_advisory" => {
            let w: WSecurityAdvisoryEvent = serde_json::from_slice(&bytes).map_err(err)?;
            let a = w.security_advisory;
            let mut cves: Vec<String> = a.cve_id.into_iter().collect();
            for i in a.identifiers.into_iter().flatten() {
                if i.kind.eq_ignore_ascii_case("CVE") && !cves.contains(&i.value) {
                    cves.push(i.value);
                }
            }
            let packages = a
                .vulnerabilities
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let name = v.package?.name?;
                    let patched = match v.first_patched_version {
                        Some(serde_json::Value::String(s)) => Some(s),
                        Some(serde_json::Value::Object(o)) => o
                            .get("identifier")
                            .and_then(|i| i.as_str())
                            .map(str::to_owned),
                        _ => None,
                    };
                    Some((name, patched))
                })
                .collect();
            WebhookEvent::SecurityAdvisory {
                action: w.action,
                ghsa_id: a.ghsa_id,
                cves,
                updated_at: a.updated_at.or(a.published_at),
                withdrawn_at: a.withdrawn_at,
                packages,
            }
        }
        "release" => {
            let w: WReleaseEvent = serde_json::from_slice(&bytes).map_err(err)?;
            WebhookEvent::Release {
                action: w.action,
                tag_name: w.release.tag_name,
                repository: w.repository.full_name,
                installation_id: w.installation.map(|i| i.id),
            }
        }
        _ => {
            let w: WPing = serde_json::from_slice(&bytes).map_err(err)?;
            WebhookEvent::Ping {
                hook_id: w.hook_id,
                zen: w.zen,
            }
        }
    })
}

/// The advisory of a verified `repository_advisory` delivery with action `reported` (a private
/// vulnerability report), and its repository (`owner/name`). `content_type` as for
/// [`parse_event`]. Never panics.
pub fn parse_reported(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(String, crate::types::Advisory), WebhookError> {
    #[derive(Deserialize)]
    struct Reported {
        repository: WRepo,
        repository_advisory: crate::types::Advisory,
    }
    let form = content_type.is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let malformed = |reason: String| WebhookError::Malformed {
        event: "repository_advisory".to_owned(),
        reason,
    };
    let bytes = json_bytes(body, form).map_err(malformed)?;
    let w: Reported = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    Ok((w.repository.full_name, w.repository_advisory))
}

/// A delivery that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// `X-GitHub-Delivery` (dedupe key), if present.
    pub delivery_id: Option<String>,
    /// The parsed event.
    pub event: WebhookEvent,
}

/// Verifies the signature over the raw body, then parses the event named by
/// `X-GitHub-Event`. Nothing is parsed unless the signature is valid.
pub fn verify_and_parse(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<VerifiedDelivery, WebhookError> {
    verify_headers(secret, headers, body)?;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event = get(EVENT_HEADER).ok_or(WebhookError::MissingEvent)?;
    let parsed = parse_event(event, get("content-type"), body)?;
    Ok(VerifiedDelivery {
        delivery_id: get(DELIVERY_HEADER).map(str::to_owned),
        event: parsed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn github_documented_test_vector() {
        let s = secret("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_signature(&s, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(
            verify_signature(&s, Some(sig), b"Hello, World?"),
            Err(WebhookError::BadSignature)
        );
        let upper = sig.to_ascii_uppercase().replace("SHA256=", "sha256=");
        assert_eq!(verify_signature(&s, Some(&upper), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn rejects_missing_and_malformed() {
        let s = secret("k");
        assert_eq!(
            verify_signature(&s, None, b"{}"),
            Err(WebhookError::MissingSignature)
        );
        for bad in [
            "",
            "sha1=abc",
            "sha256=",
            "sha256=zz",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                verify_signature(&s, Some(bad), b"{}"),
                Err(WebhookError::MalformedSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify_signature(&secret(""), Some("sha256=00"), b"{}"),
            Err(WebhookError::NoSecret)
        );
    }

    #[test]
    fn parses_unknown_and_garbage_without_panicking() {
        assert_eq!(
            parse_event("issues", None, b"\xff\xfe").unwrap(),
            WebhookEvent::Unsupported {
                event: "issues".into()
            }
        );
        for body in [&b""[..], b"null", b"[]", b"{\"action\":1}", b"\xff"] {
            for ev in ["repository_advisory", "release", "ping"] {
                let r = parse_event(ev, None, body);
                // Ping fields are all optional; the others must refuse these bodies.
                if ev != "ping" {
                    assert!(r.is_err(), "{ev} {body:?}");
                }
            }
        }
    }

    #[test]
    fn form_encoded_payload() {
        let body = b"payload=%7B%22zen%22%3A%22hi%22%2C%22hook_id%22%3A5%7D";
        let ev = parse_event("ping", Some("application/x-www-form-urlencoded"), body).unwrap();
        assert_eq!(
            ev,
            WebhookEvent::Ping {
                hook_id: Some(5),
                zen: Some("hi".into())
            }
        );
    }
}
