//! The one error type of every handler, in InfluxDB's JSON shape, and how each domain
//! module's errors map to statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response, in InfluxDB's JSON shape: `{"code": "...", "message": "..."}`; for
/// InfluxDB 1.x `/write` also `"error"`, where 1.x clients look for the message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u64>,
    v1: bool,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// InfluxDB's error code: `invalid`, `unauthorized`, `forbidden`, `not found`,
    /// `conflict`, `request timeout`, `request too large`, `too many requests`,
    /// `unavailable`, `internal error`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The message again, where InfluxDB 1.x clients look for it (`/write` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), retry_after_s: None, v1: false }
    }
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The same error in the shape of InfluxDB 1.x's `/write`.
    pub fn v1(mut self) -> ApiError {
        self.v1 = true;
        self
    }
    /// 408: the body did not arrive in time.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, message)
    }
    /// 413: the body (or what it decompresses to) is larger than `max_body_bytes`.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    /// 429 with `Retry-After`: too many writes waiting.
    pub fn too_many_requests(message: impl Into<String>, retry_after_s: u64) -> ApiError {
        ApiError { retry_after_s: Some(retry_after_s), ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message) }
    }
    /// 503 with `Retry-After`: a write waited too long for its turn.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> ApiError {
        ApiError { retry_after_s: Some(retry_after_s), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message) }
    }
    /// 400.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    /// 500; the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "Internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error, see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // InfluxDB's error codes (influxdb/kit/platform/errors).
        let code = match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::REQUEST_TIMEOUT => "request timeout",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal error",
        };
        let error = self.v1.then(|| self.message.clone());
        let mut response = (self.status, Json(ErrorBody { code, message: self.message, error })).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not read: the connection closes after the answer.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<crate::ingest::IngestError> for ApiError {
    fn from(e: crate::ingest::IngestError) -> ApiError {
        use crate::ingest::IngestError as E;
        match e {
            E::Invalid(m) => ApiError::invalid(m),
            E::Forbidden(m) => ApiError::forbidden(m),
            E::Rewrite(m) => ApiError::conflict(m),
            e @ E::Unmapped { .. } => ApiError::internal(e),
            e @ E::DeadLetters(_) => ApiError::internal(e),
            e @ E::Store(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::ingest::Refused> for ApiError {
    fn from(e: crate::ingest::Refused) -> ApiError {
        use crate::ingest::Refused;
        match e {
            Refused::QueueFull { retry_after_s, .. } => ApiError::too_many_requests(e.to_string(), retry_after_s),
            Refused::Waited { retry_after_s, .. } => ApiError::unavailable(e.to_string(), retry_after_s),
        }
    }
}

impl From<crate::gaps::GapError> for ApiError {
    fn from(e: crate::gaps::GapError) -> ApiError {
        use crate::gaps::GapError as E;
        match e {
            E::Forbidden(m) => ApiError::forbidden(m),
            E::Invalid(m) => ApiError::invalid(m),
            e @ E::Conflict { .. } => ApiError::conflict(e.to_string()),
            e @ E::Io { .. } => ApiError::internal(e),
        }
    }
}

impl From<crate::corrections::CorrectionError> for ApiError {
    fn from(e: crate::corrections::CorrectionError) -> ApiError {
        use crate::corrections::CorrectionError as E;
        match e {
            E::Forbidden(m) => ApiError::forbidden(m),
            E::Invalid(m) => ApiError::invalid(m),
            e @ E::Io { .. } => ApiError::internal(e),
        }
    }
}

impl From<crate::alerts::AckError> for ApiError {
    fn from(e: crate::alerts::AckError) -> ApiError {
        use crate::alerts::AckError as E;
        match e {
            e @ E::Already { .. } => ApiError::conflict(e.to_string()),
            e @ E::NotFound(_) => ApiError::not_found(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

/// A blocking task that did not finish (it panicked): 500.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("blocking task: {e}"))
    }
}
