//! The HTTP surface: every route in one place, and the one error type all handlers return.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eitwatch_config::server_config::AnonymousRead;
use serde_json::json;

use crate::compliance::Filter;
use crate::{AppState, auth, ingest};

/// The server's routes.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.server.max_body_bytes;
    Router::new()
        .merge(crate::board::routes())
        .route("/health", get(health))
        .route("/ping", get(ping).head(ping))
        .route("/api/v2/write", post(ingest::write_v2))
        .route("/write", post(ingest::write_v1))
        .route("/api/v1/readings", get(readings))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(ack))
        .route("/api/v1/status", get(status))
        .route("/api/v1/periods", get(periods))
        .route("/api/v1/revisions", get(revisions))
        .route("/api/v1/episodes", get(episodes))
        .route("/api/v1/availability", get(availability))
        .route("/api/v1/indicators", get(crate::indicators::http::get))
        .merge(crate::deviations::routes())
        .merge(crate::registry::routes())
        .route("/api/v1/events", get(crate::events::stream))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/gaps", get(crate::gaps::list).post(crate::gaps::record))
        .route("/api/v1/corrections", get(crate::corrections::list).post(crate::corrections::record))
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
    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
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
    let from_ns = time_bound(&q, "from")?.unwrap_or(i64::MIN);
    let to_ns = time_bound(&q, "to")?.unwrap_or(i64::MAX);
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
                json!({"factory": &*k.factory, "point": &*k.point, "kind": k.kind, "parameter": &*k.parameter, "buckets": buckets})
            })
            .collect();
        return Ok(Json(json!({ "every_s": every_s, "series": series })));
    }
    let rows = app.store.query(filter, from_ns, to_ns);
    let any_corrections = !app.corrections.is_empty();
    let readings: Vec<_> = rows
        .into_iter()
        .map(|(k, t, s)| {
            let mut row = json!({
                "factory": &*k.factory, "point": &*k.point, "kind": k.kind, "parameter": &*k.parameter,
                "time_ns": t, "value": s.value, "quality": s.quality, "source": s.source,
                "below_detection_limit": s.below_detection_limit,
            });
            // A corrected reading shows the value in force, what was stored, and every correction.
            let corrections =
                if any_corrections { app.corrections.of(&k.factory, &k.point, &k.parameter, t) } else { Vec::new() };
            if let Some(last) = corrections.last() {
                row["value"] = json!(last.value);
                row["stored_value"] = json!(s.value);
                row["corrections"] = json!(corrections);
            }
            row
        })
        .collect();
    Ok(Json(json!({ "readings": readings })))
}

/// The OpenAPI document of the read and alert API.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

type Q = Query<HashMap<String, String>>;

/// A time bound: `<key>_ns` (ns since the epoch) or `<key>` (RFC 3339, `2026-11-23T07:00:00+07:00`).
pub(crate) fn time_bound(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    if let Some(v) = q.get(&format!("{key}_ns")) {
        return v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{key}_ns: \"{v}\" is not a whole number of ns")));
    }
    match q.get(key) {
        None => Ok(None),
        Some(v) => v.parse::<jiff::Timestamp>().map(|t| Some(t.as_nanosecond() as i64)).map_err(|e| {
            ApiError::invalid(format!("{key}: \"{v}\" is not an RFC 3339 time (2026-11-23T07:00:00+07:00): {e}"))
        }),
    }
}

/// The filter of the compliance queries: area, factory, point, parameter, from/to, within
/// the token's scope.
/// What a compliance query may see and asks for: the caller's read scope (token, or
/// anonymous loopback) and the common filters (`area`, `factory`, `point`, `parameter`,
/// `from`/`to`), with the whole query for handler-specific keys.
struct Scoped {
    app: AppState,
    filter: Filter,
    q: HashMap<String, String>,
}

impl axum::extract::FromRequestParts<AppState> for Scoped {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, app: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(|| ApiError::internal("no peer address on the connection"))?;
        let Query(q) = Q::try_from_uri(&parts.uri).map_err(|e| ApiError::invalid(format!("query: {e}")))?;
        let filter = Filter {
            scope: read_scope(app, &parts.headers, peer)?,
            area: q.get("area").cloned(),
            factory: q.get("factory").cloned(),
            point: q.get("point").cloned(),
            parameter: q.get("parameter").cloned(),
            from_ns: time_bound(&q, "from")?,
            to_ns: time_bound(&q, "to")?,
        };
        Ok(Scoped { app: app.clone(), filter, q })
    }
}

fn max_rows(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    q.get("max_rows").map_or(Ok(10_000), |v| {
        v.parse().map_err(|_| ApiError::invalid(format!("max_rows: \"{v}\" is not a whole number")))
    })
}

async fn alerts(Scoped { app, filter: f, q }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    let (from, to) = (f.from_ns.unwrap_or(i64::MIN), f.to_ns.unwrap_or(i64::MAX));
    let registry = app.registry();
    let area_of = |factory: &str| registry.factory(factory).map(|(a, _)| a.id.clone());
    let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
    let list: Vec<_> = app
        .alerts
        .list()
        .into_iter()
        .filter(|a| {
            allowed(&f.scope, &a.factory)
                && eq(&f.factory, Some(&a.factory))
                && eq(&f.point, Some(&a.point))
                && eq(&f.parameter, a.parameter.as_deref())
                && eq(&f.area, area_of(&a.factory).as_deref())
                && q.get("kind").is_none_or(|k| k == a.kind.as_str())
                && q.get("state").is_none_or(|s| serde_json::to_value(a.state).is_ok_and(|v| v == s.as_str()))
                && a.since_ns >= from
                && a.since_ns < to
        })
        .collect();
    Ok(Json(json!({ "alerts": list })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/alerts/{id}/ack` with `{"comment": "…"}`: a write token for its own
/// factory's alerts, an admin token for any; a read token may not.
async fn ack(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = auth::presented(&headers, None)
        .ok_or_else(|| ApiError::unauthorized("missing token: send Authorization: Token <token>"))?;
    let bearer = app.tokens.check(&token).ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
    let id: u64 = id.parse().map_err(|_| ApiError::invalid(format!("alert id \"{id}\" is not a whole number")))?;
    let body: AckBody = if body.is_empty() {
        AckBody { comment: String::new() }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("body: expected {{\"comment\": \"…\"}}: {e}")))?
    };
    let alert = app.alerts.get(id).ok_or_else(|| ApiError::not_found(format!("alert {id} does not exist")))?;
    match &bearer.grant {
        auth::Grant::Admin => {}
        auth::Grant::Write { factory } if *factory == alert.factory => {}
        auth::Grant::Write { factory } => {
            return Err(ApiError::forbidden(format!(
                "alert {id} is of factory \"{}\", not \"{factory}\"",
                alert.factory
            )));
        }
        auth::Grant::Read { .. } => return Err(ApiError::forbidden("a read token cannot acknowledge alerts")),
    }
    let by = format!("{} token {}", bearer.grant.kind(), bearer.id);
    let app2 = app.clone();
    let comment = body.comment;
    let acked = tokio::task::spawn_blocking(move || app2.alerts.ack(id, &by, &comment, app2.clock.now_ns()))
        .await
        .map_err(|e| ApiError::internal(format!("ack task: {e}")))?;
    match acked {
        Ok(alert) => {
            tracing::info!(alert = id, factory = %alert.factory, by = %bearer.id, "Alert acknowledged");
            app.events.publish("alert", &alert.factory, serde_json::to_value(&alert).unwrap_or_default());
            Ok(Json(json!({ "alert": alert })))
        }
        Err(e @ crate::alerts::AckError::Already { .. }) => Err(ApiError::conflict(e.to_string())),
        Err(e @ crate::alerts::AckError::NotFound(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn status(Scoped { app, filter: f, .. }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    let (series, incidents) = {
        let engine = app.compliance.engine();
        (engine.status(&f), engine.incidents())
    };
    let open: Vec<_> = app.alerts.list().into_iter().filter(|a| a.state != crate::alerts::State::Resolved).collect();
    let series: Vec<_> = series
        .into_iter()
        .map(|mut s| {
            let mine: Vec<_> = open
                .iter()
                .filter(|a| {
                    a.factory == s["factory"]
                        && a.point == s["point"]
                        && a.parameter.as_deref().is_none_or(|p| p == s["parameter"])
                })
                .collect();
            s["open_alerts"] = json!(mine);
            s
        })
        .collect();
    let incidents: Vec<_> = incidents
        .into_iter()
        .filter(|i| allowed(&f.scope, &i.factory) && f.factory.as_deref().is_none_or(|x| x == i.factory))
        .collect();
    Ok(Json(json!({ "now_ns": app.clock.now_ns(), "series": series, "incidents": incidents })))
}

async fn periods(Scoped { app, filter: f, q }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    let max = max_rows(&q)?;
    let mut list = app.compliance.engine().periods(&f, max);
    if let Some(a) = q.get("averaging") {
        list.retain(|p| serde_json::to_value(p.limit.averaging).is_ok_and(|v| v == a.as_str()));
    }
    if let Some(o) = q.get("outcome") {
        list.retain(|p| serde_json::to_value(p.period.outcome).is_ok_and(|v| v == o.as_str()));
    }
    Ok(Json(json!({ "periods": list })))
}

async fn revisions(Scoped { app, filter: f, .. }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "revisions": app.compliance.engine().revisions(&f) })))
}

async fn episodes(Scoped { app, filter: f, .. }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "episodes": app.compliance.engine().episodes(&f) })))
}

async fn availability(Scoped { app, filter: f, .. }: Scoped) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "days": app.compliance.engine().availability(&f) })))
}
