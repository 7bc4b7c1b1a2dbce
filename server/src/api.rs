//! The HTTP surface: every route in one place, and the one error type all handlers return.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eitwatch_config::server_config::AnonymousRead;
use serde_json::json;

use crate::auth::Grant;
use crate::{AppState, ingest};

/// The server's routes.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/api/v2/write", post(ingest::write))
        .route("/api/v1/readings", get(readings))
        .route("/api/v1/alerts", get(alerts))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// An error response, in InfluxDB's JSON shape: `{"code": "...", "message": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 400.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::FORBIDDEN, message: message.into() }
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::CONFLICT, message: message.into() }
    }
    /// 500; the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        tracing::error!(error = %detail.into(), "Internal error");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "internal error, see the server log".into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            _ => "internal error",
        };
        (self.status, Json(json!({ "code": code, "message": self.message }))).into_response()
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "pass" }))
}

/// Which factory a reader may see: `Some(id)` for a factory token, `None` for everything.
fn read_scope(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Option<String>, ApiError> {
    match ingest::bearer(headers) {
        Some(token) => match app.tokens.check(token) {
            Some(Grant::Factory { factory }) => Ok(Some(factory)),
            None => Err(ApiError::unauthorized("unknown token")),
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
