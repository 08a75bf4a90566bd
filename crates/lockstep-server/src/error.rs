//! The one error shape of the API: a status and `{"error": "<one line>"}`.

use std::fmt::Display;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_core::Rejection;
use lockstep_runtime::identity::IdentityError;

/// Longest error message returned, in characters.
const MAX_MESSAGE: usize = 500;

/// Squeezes a message onto one line: control characters become spaces, runs of whitespace
/// collapse, and it is cut at [`MAX_MESSAGE`] characters.
pub(crate) fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE));
    let mut count = 0;
    let mut space = false;
    for c in message.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == MAX_MESSAGE {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// An error answer. Every refusal changes nothing.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Display) -> Self {
        Self {
            status,
            message: one_line(&message.to_string()),
        }
    }

    pub(crate) fn bad_request(message: impl Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unprocessable(message: impl Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub(crate) fn unauthorized(message: impl Display) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: impl Display) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn not_found(message: impl Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn internal(message: impl Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status for a refusal by the core. Authorization refusals are 403; inputs that do
    /// not fit the case (unknown repository or package, bad embargo end, malformed field) are
    /// 422; inputs that contradict the case's state (closed, published, nothing to revoke)
    /// are 409.
    pub(crate) fn rejection(r: &Rejection) -> Self {
        let status = match r {
            Rejection::NotAuthorized { .. } => StatusCode::FORBIDDEN,
            Rejection::Invalid { .. }
            | Rejection::NotInWorkflow { .. }
            | Rejection::NotInCase { .. }
            | Rejection::UnknownPackage { .. }
            | Rejection::EmbargoInPast { .. }
            | Rejection::EmbargoTooLong { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::CaseClosed
            | Rejection::AlreadyInCase { .. }
            | Rejection::LastRepository
            | Rejection::AlreadyPublished { .. }
            | Rejection::EmbargoEnded
            | Rejection::NoEmbargoRequest
            | Rejection::NoFix { .. }
            | Rejection::NothingToRetry { .. }
            | Rejection::Contradiction { .. }
            | Rejection::UnknownEffect { .. } => StatusCode::CONFLICT,
            Rejection::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, r)
    }

    /// The answer for a store error. Details of database failures are logged, not returned.
    pub(crate) fn store(e: lockstep_store::Error) -> Self {
        use lockstep_store::Error as E;
        match e {
            E::NotFound { case } => Self::not_found(format!("unknown case {case}")),
            E::Rejected(r) => Self::rejection(&r),
            E::DuplicateCase { case } => Self::new(
                StatusCode::CONFLICT,
                format!("a case {case} exists already"),
            ),
            E::Conflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "the case changed concurrently; try again",
            ),
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal("internal error: the store failed; see the server log")
            }
        }
    }

    /// The answer when the caller's token cannot be resolved to a principal.
    pub(crate) fn identity(e: IdentityError) -> Self {
        match e {
            IdentityError::Github(lockstep_github::Error::Unauthorized { .. }) => {
                Self::unauthorized("cannot identify the caller: GitHub refused the token")
            }
            IdentityError::Github(g) if g.is_rate_limit() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitHub's rate limit stops Lockstep from identifying the caller; try again later",
            ),
            IdentityError::Github(g) => {
                tracing::warn!(error = %g, "identifying a caller through GitHub failed");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot identify the caller through GitHub: {g}"),
                )
            }
            IdentityError::Login(l) => {
                Self::unauthorized(format!("GitHub returned an unusable login: {l}"))
            }
        }
    }
}

impl Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lockstep\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_bounded() {
        assert_eq!(one_line("  a\n\n b\r\tc  "), "a b c");
        let long = "x".repeat(2000);
        assert_eq!(one_line(&long).chars().count(), MAX_MESSAGE + 1);
    }
}
