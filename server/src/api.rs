//! The HTTP surface: every route in one place, and the one error type all handlers return.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eitwatch_config::server_config::AnonymousRead;
use serde_json::json;

use crate::{AppState, auth, ingest};

/// The server's routes.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/ping", get(ping).head(ping))
        .route("/api/v2/write", post(ingest::write_v2))
        .route("/write", post(ingest::write_v1))
        .route("/api/v1/readings", get(readings))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/gaps", get(crate::gaps::list).post(crate::gaps::record))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// An error response, in InfluxDB's JSON shape: `{"code": "...", "message": "..."}`; for
/// InfluxDB 1.x `/write` also `"error"`, where 1.x clients look for the message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u64>,
    v1: bool,
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
    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    /// 500; the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        tracing::error!(error = %detail.into(), "Internal error");
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
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal error",
        };
        let body = match self.v1 {
            false => json!({ "code": code, "message": self.message }),
            true => json!({ "code": code, "message": self.message, "error": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// InfluxDB's `/ping`, which some loggers and Telegraf's v1 output call before writing.
async fn ping() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [("X-Influxdb-Build", "OSS"), ("X-Influxdb-Version", concat!("eitwatch-", env!("CARGO_PKG_VERSION")))],
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "pass" }))
}

/// Which factory a reader may see: `Some(id)` for a write token or a one-factory read token,
/// `None` for everything (a read-all or admin token, or anonymous loopback when configured).
pub(crate) fn read_scope(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Option<String>, ApiError> {
    match auth::presented(headers, None) {
        Some(token) => match app.tokens.check(&token) {
            Some(bearer) => Ok(bearer.grant.factory().map(str::to_string)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        },
        None if app.config.api.anonymous_read == AnonymousRead::Loopback && peer.ip().is_loopback() => Ok(None),
        None => Err(ApiError::unauthorized("missing token: send Authorization: Token <token>")),
    }
}

fn allowed(scope: &Option<String>, factory: &str) -> bool {
    scope.as_deref().is_none_or(|f| f == factory)
}

async fn readings(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = read_scope(&app, &headers, peer)?;
    let bound = |key: &str, default: i64| -> Result<i64, ApiError> {
        q.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| ApiError::invalid(format!("{key}: \"{v}\" is not a whole number of ns")))
        })
    };
    let (from_ns, to_ns) = (bound("from_ns", i64::MIN)?, bound("to_ns", i64::MAX)?);
    let matches = |key: &str, value: &str| q.get(key).is_none_or(|v| v == value);
    let filter = |k: &crate::store::SeriesKey| {
        allowed(&scope, &k.factory)
            && matches("factory", &k.factory)
            && matches("point", &k.point)
            && matches("parameter", &k.parameter)
    };
    if let Some(every) = q.get("every_s") {
        // For charts: min/max/mean/count per bucket of `every_s` seconds, aligned to the epoch.
        let every_s: i64 = every.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
            ApiError::invalid(format!("every_s: \"{every}\" is not a positive whole number of seconds"))
        })?;
        let series: Vec<_> = app
            .store
            .downsample(filter, from_ns, to_ns, every_s.saturating_mul(1_000_000_000))
            .into_iter()
            .map(|(k, buckets)| {
                let buckets: Vec<_> = buckets
                    .iter()
                    .map(|b| json!({"start_ns": b.start_ns, "count": b.count, "min": b.min, "max": b.max, "mean": b.mean}))
                    .collect();
                json!({"factory": k.factory, "point": k.point, "kind": k.kind, "parameter": k.parameter, "buckets": buckets})
            })
            .collect();
        return Ok(Json(json!({ "every_s": every_s, "series": series })));
    }
    let rows = app.store.query(filter, from_ns, to_ns);
    let readings: Vec<_> = rows
        .into_iter()
        .map(|(k, t, s)| {
            json!({
                "factory": k.factory, "point": k.point, "kind": k.kind, "parameter": k.parameter,
                "time_ns": t, "value": s.value, "quality": s.quality, "source": s.source,
                "below_detection_limit": s.below_detection_limit,
            })
        })
        .collect();
    Ok(Json(json!({ "readings": readings })))
}

async fn alerts(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = read_scope(&app, &headers, peer)?;
    let list: Vec<_> = app.alerts.list().into_iter().filter(|a| allowed(&scope, &a.factory)).collect();
    Ok(Json(json!({ "alerts": list })))
}
