//! [`ApiError`]: every error answer of the admin API, as an RFC 9457
//! problem (`application/problem+json`): `type`, `title`, `status` and
//! `detail`, with the stable `code` (and `allowed`, for an illegal
//! transition) as extension members, and `message`, the same text as
//! `detail`, for clients written before.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::machine::{StateJsonError, TransitionError};
use crate::runtime::RuntimeError;
use crate::storage::StorageError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// A stable, machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// For `illegal_transition`: the states the job may move to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allowed: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The RFC 9457 body of an [`ApiError`].
#[derive(Serialize, utoipa::ToSchema)]
#[schema(
    as = Error,
    description = "An RFC 9457 problem, with the stable `code` (and `allowed`) as extension members; \
                   `message` repeats `detail`"
)]
pub(crate) struct Problem<'a> {
    /// `urn:runekernel:problem:<code>`: one type per code.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase, the same for every problem of a type.
    title: &'static str,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for people.
    detail: &'a str,
    /// A stable, machine-readable code.
    code: &'static str,
    /// The same text as `detail`.
    message: &'a str,
    /// For `illegal_transition`: the states the job may move to.
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed: Option<&'a [String]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:runekernel:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.message,
            code: self.code,
            message: &self.message,
            allowed: self.allowed.as_deref(),
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&problem).unwrap_or_default(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let message = error.to_string();
        match error {
            RuntimeError::NotFound(_) | RuntimeError::Storage(StorageError::NotFound(_)) => {
                Self::not_found("job_not_found", message)
            }
            RuntimeError::UnknownMachine(_) => Self::not_found("machine_not_found", message),
            RuntimeError::NotInitial { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "not_initial_state", message)
            }
            RuntimeError::Transition(TransitionError::NotAllowed { allowed, .. }) => ApiError {
                allowed: Some(allowed),
                ..Self::new(StatusCode::CONFLICT, "illegal_transition", message)
            },
            RuntimeError::Transition(TransitionError::GuardRejected { .. }) => {
                Self::new(StatusCode::CONFLICT, "guard_rejected", message)
            }
            RuntimeError::JobRunning(_) => Self::new(StatusCode::CONFLICT, "job_running", message),
            RuntimeError::NotFinished { .. } => Self::new(StatusCode::CONFLICT, "not_finished", message),
            RuntimeError::NotRetryable { .. } => Self::new(StatusCode::CONFLICT, "not_retryable", message),
            RuntimeError::Storage(e) if e.is_conflict() => Self::new(StatusCode::CONFLICT, "conflict", message),
            RuntimeError::Encode(_) => Self::bad_request("invalid_state", message),
            RuntimeError::PayloadTooDeep { .. } => Self::bad_request("payload_too_deep", message),
            RuntimeError::EmptyQueue => Self::bad_request("empty_queue", message),
            RuntimeError::Decode { .. } => Self::new(StatusCode::CONFLICT, "undecodable_job", message),
            RuntimeError::WrongMachine { .. } => Self::bad_request("wrong_machine", message),
            RuntimeError::Shutdown => Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message),
            other => {
                tracing::error!(error = %other, "admin request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", other.to_string())
            }
        }
    }
}

impl From<StateJsonError> for ApiError {
    fn from(error: StateJsonError) -> Self {
        Self::bad_request("invalid_state", error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", rejection.body_text())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON with `Content-Type: application/json`",
            ),
            _ => Self::bad_request("invalid_json", rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}
