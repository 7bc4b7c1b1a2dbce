//! The server's own state for monitoring: `GET /health` and `GET /ready` in InfluxDB 2's
//! shapes (its client libraries' `health()` and `ready()` read them), and `GET /metrics`
//! in Prometheus text ([`crate::metrics`]). `/health` and `/ready` need no token;
//! `/metrics` is read like the rest of the read API, province-wide: anonymous from loopback
//! when `[api] anonymous_read = "loopback"`, else a read-all or admin token.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, ReadScope};
use crate::AppState;
use crate::metrics::{COMMIT, VERSION};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

/// The server's health, as InfluxDB 2 answers `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// `eitwatch`.
    name: &'static str,
    /// `ready for queries and writes`, or what stops writes.
    message: String,
    /// `pass`, or `fail` when the store cannot write.
    status: &'static str,
    /// The checks that failed (none while it passes).
    checks: Vec<Check>,
    /// The server's version.
    version: &'static str,
    /// The git commit it was built from (`unknown` when built outside a checkout).
    commit: &'static str,
}

/// One failed check.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Check {
    /// What was checked: `store`.
    name: &'static str,
    /// `fail`.
    status: &'static str,
    /// Why.
    message: String,
}

/// Whether the server answers and its store writes (InfluxDB 2's `/health`).
#[utoipa::path(get, path = "/health", operation_id = "get_health", tag = "health", security(()),
    responses(
        (status = 200, description = "It answers and its store writes", body = Health),
        (status = 503, description = "The store refuses writes after a failed write or sync: restart the server", body = Health),
    ))]
async fn health(State(app): State<AppState>) -> Response {
    let (code, message, status, checks) = match app.store.failure() {
        None => (StatusCode::OK, "ready for queries and writes".to_string(), "pass", Vec::new()),
        Some(why) => {
            let message = format!("the store refuses writes: {why}");
            let check = Check { name: "store", status: "fail", message: message.clone() };
            (StatusCode::SERVICE_UNAVAILABLE, message, "fail", vec![check])
        }
    };
    let body = Health { name: "eitwatch", message, status, checks, version: VERSION, commit: COMMIT };
    (code, Json(body)).into_response()
}

/// Since when the server is up, as InfluxDB 2 answers `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Ready {
    /// `ready`.
    status: &'static str,
    /// When it started, RFC 3339.
    started: String,
    /// How long it has run, as Go writes a duration (`1h2m3.5s`).
    up: String,
}

/// Whether the server is ready (InfluxDB 2's `/ready`): it answers once its store is open and
/// its compliance engine resumed.
#[utoipa::path(get, path = "/ready", operation_id = "get_ready", tag = "health", security(()),
    responses((status = 200, description = "Up", body = Ready)))]
async fn ready(State(app): State<AppState>) -> Json<Ready> {
    let started = jiff::Timestamp::from_nanosecond(i128::from(app.metrics.started_ns()))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Json(Ready { status: "ready", started, up: go_duration(app.metrics.uptime()) })
}

/// A duration as Go's `time.Duration.String` writes it: `1h2m3.5s`, `4m0s`, `0.25s`.
fn go_duration(d: std::time::Duration) -> String {
    let total_ms = d.as_millis();
    let (h, m) = (total_ms / 3_600_000, total_ms / 60_000 % 60);
    let s = (total_ms % 60_000) as f64 / 1000.0;
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// The server's metrics in Prometheus text format 0.0.4 (province-wide: a read-all or admin
/// token, or anonymous from loopback when `[api] anonymous_read = "loopback"`).
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "A token of one factory", body = ErrorBody),
    ))]
async fn metrics(State(app): State<AppState>, scope: ReadScope) -> Result<Response, ApiError> {
    if let Some(factory) = scope.0 {
        return Err(ApiError::forbidden(format!(
            "the metrics are province-wide; a token of factory \"{factory}\" cannot read them (use a read-all or admin token)"
        )));
    }
    let now_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    let text = tokio::task::spawn_blocking(move || crate::metrics::render(&app, now_ns)).await?;
    Ok(([(header::CONTENT_TYPE, eitwatch_config::prometheus::CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_are_written_as_go_writes_them() {
        assert_eq!(super::go_duration(Duration::from_millis(250)), "0.25s");
        assert_eq!(super::go_duration(Duration::from_secs(240)), "4m0s");
        assert_eq!(super::go_duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
    }
}
