//! The case actions as form posts: `POST /cases/{id}/{A::PATH}` for every
//! [`CaseAction`]. The form's fields (but `csrf`, and the ones left empty) decode into the same
//! request type as the JSON API's body, and [`api::perform`] runs it: the same command, the
//! same permission lookup, the same authorization in the core. The answer is a redirect to the
//! case page, which shows the result or the one-sentence refusal once.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::pages;
use super::session::{FLASH, Flash, MaybeSession};
use crate::Shared;
use crate::api;
use crate::auth::Caller;
use crate::surface::CaseAction;

/// Decodes a form into `A`: every field a string, `csrf` and empty fields left out.
pub(crate) fn decode<A: CaseAction>(pairs: Vec<(String, String)>) -> Result<A, String> {
    let mut map = Map::new();
    for (k, v) in pairs {
        if k == "csrf" || v.trim().is_empty() {
            continue;
        }
        map.insert(k, Value::String(v.trim().to_owned()));
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| format!("the form is incomplete: {e}"))
}

/// Whether the post comes from this site: `Origin` (when the browser sends it) is the public
/// address.
fn same_origin(app: &Shared, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    app.web.config.as_ref().is_some_and(|c| {
        c.public_url.starts_with(origin) && {
            let rest = &c.public_url[origin.len()..];
            rest.is_empty() || rest.starts_with('/')
        }
    })
}

/// `POST /cases/{id}/{A::PATH}`.
pub(crate) async fn act<A: CaseAction>(
    State(app): State<Shared>,
    MaybeSession(session): MaybeSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(session) = session else {
        return pages::error_page(
            StatusCode::UNAUTHORIZED,
            "Your session has ended; sign in again.",
        );
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !app.web.keys.csrf_ok(&session.sid, csrf) || !same_origin(&app, &headers) {
        tracing::warn!(login = %session.login, action = A::NAME, "form post refused: CSRF check failed");
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "The form is stale or came from another site; reload the page and try again.",
        );
    }
    let Some(login) = session.login() else {
        return pages::error_page(StatusCode::UNAUTHORIZED, "Sign in again.");
    };
    let caller = Caller::Session(login);
    // A case the user may not read answers as one that does not exist, before anything else.
    if let Err(e) = api::readable(&app, &caller, &id).await {
        return pages::case_error(e);
    }
    let flash = match decode::<A>(pairs) {
        Err(why) => Flash {
            ok: false,
            text: why,
        },
        Ok(req) => match api::perform(&app, &caller, &id, req).await {
            Ok(acted) if acted.events_committed == 0 => Flash {
                ok: true,
                text: format!("{}: nothing to change.", A::SUMMARY.trim_end_matches('.')),
            },
            Ok(_) => Flash {
                ok: true,
                text: format!("Done. {}", A::SUMMARY),
            },
            Err(e) if e.status == StatusCode::NOT_FOUND => return pages::case_error(e),
            Err(e) => Flash {
                ok: false,
                text: e.message,
            },
        },
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/cases/{id}")) {
        h.insert(header::LOCATION, v);
    }
    h.append(
        header::SET_COOKIE,
        app.web
            .keys
            .set(FLASH, &flash, std::time::Duration::from_secs(60)),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::decode;
    use crate::surface::{Assess, FixReady};

    #[test]
    fn a_form_decodes_into_the_api_request_type() {
        let a: Assess = decode(vec![
            ("csrf".into(), "x".into()),
            ("repo".into(), "org/core".into()),
            ("verdict".into(), "affected".into()),
            ("reason".into(), "uses it".into()),
        ])
        .unwrap();
        assert_eq!(a.repo, "org/core");
        // Empty optional fields are left out, not sent as empty strings.
        let f: FixReady = decode(vec![
            ("repo".into(), "org/core".into()),
            ("patched_versions".into(), "1.2.3".into()),
            ("vulnerable_range".into(), "".into()),
            ("stage".into(), "prepared".into()),
        ])
        .unwrap();
        assert!(f.vulnerable_range.is_none());
        // An unknown field is refused as the JSON API refuses it.
        assert!(
            decode::<Assess>(vec![
                ("repo".into(), "org/core".into()),
                ("verdict".into(), "affected".into()),
                ("reason".into(), "r".into()),
                ("extra".into(), "1".into()),
            ])
            .is_err()
        );
    }
}
