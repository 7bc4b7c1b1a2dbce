//! The write endpoints, as InfluxDB defines them, so Telegraf, the InfluxDB client libraries
//! and data loggers write here unchanged:
//! - `POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s` with `Authorization: Token …` or
//!   `Bearer …`;
//! - `POST /write?db=&precision=n|u|ms|s|m|h` (InfluxDB 1.x) with `u`/`p` (the token as
//!   password), `Authorization: Basic` (likewise) or `Token`;
//! - `GET|HEAD /ping`, which some loggers and Telegraf's v1 output call before writing.
//!
//! Both writes take `Content-Encoding: gzip`. A batch is accepted whole (204, once on disk)
//! or refused whole, the response naming the first bad line: 400 for what is malformed or
//! unknown, 401 for a missing, unknown or revoked token, 403 for a token that may not write
//! or a line of another factory, 409 for a rewrite of stored history (both recorded in the
//! audit log), 408 for a body slower than `body_read_timeout_ms`, 413 over `max_body_bytes`
//! (also once decompressed), 429/503 with `Retry-After` under overload. Their query strings
//! are as lenient as InfluxDB's: keys they do not use are ignored.
//!
//! A partial write (`[ingest] partial_writes`, or the token's) stores the valid lines and
//! answers 400 in InfluxDB 3's shape, [`PartialWrite`], listing the refused lines, which
//! stay in the dead letters; `POST /api/v1/dead-letters/replay` (admin) writes those again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eitwatch_config::line_protocol::Precision;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::authorization;
use super::{Admin, ApiError, ErrorBody, Token, WriteErrors, body};
use crate::AppState;
use crate::auth::{self, Bearer, Grant};
use crate::ingest::{Event, Written};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(write_v2))
        .routes(routes!(write_v1))
        .routes(routes!(ping, ping_head))
        .routes(routes!(replay_dead_letters))
}

/// A write's 400: InfluxDB's `code` and `message`, as every error; after a partial write
/// also InfluxDB 3's `error` and `data` (the first 100 refused lines; all are in the dead
/// letters) and how many were refused.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PartialWrite {
    /// `invalid`.
    pub(super) code: &'static str,
    /// What went wrong; after a partial write how many lines were refused and the first
    /// reason.
    pub(super) message: String,
    /// `partial write of line protocol occurred` after a partial write; on `/write` the
    /// message again, where InfluxDB 1.x clients look for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<&'static str>,
    /// The refused lines, in order, at most 100 (a partial write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<Vec<RejectedLine>>,
    /// How many lines were refused in all (a partial write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rejected: Option<usize>,
}

/// A line a partial write refused.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RejectedLine {
    /// The line, cut after 256 bytes.
    pub(super) original_line: String,
    /// Its 1-based number in the batch.
    pub(super) line_number: usize,
    /// Why it was refused.
    pub(super) error_message: String,
}

/// The longest line text an answer quotes, in bytes.
const QUOTED_LINE_BYTES: usize = 256;

fn partial_write(written: Written) -> Response {
    let first = written.rejected.first().map(|r| format!("line {}: {}", r.line_number, r.reason)).unwrap_or_default();
    let message = format!(
        "partial write: {} line(s) refused and kept in the dead letters, the others stored; {first}",
        written.rejected_total
    );
    let data = written
        .rejected
        .into_iter()
        .map(|r| {
            let mut end = r.line.len().min(QUOTED_LINE_BYTES);
            while !r.line.is_char_boundary(end) {
                end -= 1;
            }
            let original_line = match end < r.line.len() {
                true => format!("{}…", &r.line[..end]),
                false => r.line,
            };
            RejectedLine { original_line, line_number: r.line_number, error_message: r.reason }
        })
        .collect();
    let body = PartialWrite {
        code: "invalid",
        message,
        error: Some("partial write of line protocol occurred"),
        data: Some(data),
        rejected: Some(written.rejected_total),
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

type Params = Query<HashMap<String, String>>;

/// Write line protocol (InfluxDB v2).
#[utoipa::path(
    post,
    path = "/api/v2/write",
    operation_id = "post_v2_write",
    tag = "write",
    params(
        ("bucket" = Option<String>, Query, description = "Any name (required, `bucket` or `bucketID`)"),
        ("bucketID" = Option<String>, Query, description = "Any id, instead of `bucket`"),
        ("org" = Option<String>, Query, description = "Ignored"),
        ("precision" = Option<String>, Query, description = "`ns` (default), `us`, `ms` or `s`"),
    ),
    request_body(content = String, content_type = "text/plain", description = "Line protocol, optionally gzip"),
    responses(
        (status = 204, description = "Stored, on disk"),
        WriteErrors,
        (status = 400, description = "Malformed or unknown (the first bad line named); a partial write: the refused lines", body = PartialWrite),
    ),
)]
async fn write_v2(State(app): State<AppState>, Query(params): Params, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let answer = v2(app.clone(), params, headers, body).await.into_response();
    app.metrics.writes.answered(answer.status(), started.elapsed());
    answer
}

async fn v2(
    app: AppState,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bearer = writer(&app, auth::presented(authorization(&headers), None).as_deref()).await?;
    let precision = match params.get("precision").map(String::as_str) {
        None | Some("") => Precision::Ns,
        Some(p) => Precision::parse(p)
            .ok_or_else(|| ApiError::invalid(format!("precision \"{p}\": expected one of ns, us, ms, s")))?,
    };
    if params.get("bucket").is_none_or(|b| b.is_empty()) && params.get("bucketID").is_none_or(|b| b.is_empty()) {
        return Err(ApiError::invalid("bucket: missing; an InfluxDB v2 write names its bucket (any name is taken)"));
    }
    accept(app, bearer, precision, &headers, body).await
}

/// Write line protocol (InfluxDB 1.x); errors also carry `error`, as 1.x clients expect.
#[utoipa::path(
    post,
    path = "/write",
    operation_id = "post_write",
    tag = "write",
    params(
        ("db" = Option<String>, Query, description = "Any name (required)"),
        ("precision" = Option<String>, Query, description = "`n` (default), `u`, `ms`, `s`, `m` or `h`"),
        ("u" = Option<String>, Query, description = "Any user name"),
        ("p" = Option<String>, Query, description = "The token, for loggers that cannot send headers"),
    ),
    request_body(content = String, content_type = "text/plain", description = "Line protocol, optionally gzip"),
    responses(
        (status = 204, description = "Stored, on disk"),
        WriteErrors,
        (status = 400, description = "Malformed or unknown (the first bad line named); a partial write: the refused lines", body = PartialWrite),
    ),
)]
async fn write_v1(State(app): State<AppState>, Query(params): Params, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let answer = v1(app.clone(), params, headers, body).await.into_response();
    app.metrics.writes.answered(answer.status(), started.elapsed());
    answer
}

async fn v1(
    app: AppState,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let run = async {
        let bearer =
            writer(&app, auth::presented(authorization(&headers), params.get("p").map(String::as_str)).as_deref())
                .await?;
        let precision = match params.get("precision").map(String::as_str) {
            None | Some("") => Precision::Ns,
            Some(p) => Precision::parse_v1(p)
                .ok_or_else(|| ApiError::invalid(format!("precision \"{p}\": expected one of n, u, ms, s, m, h")))?,
        };
        if params.get("db").is_none_or(|d| d.is_empty()) {
            return Err(ApiError::invalid("database is required: send db=<name> (any name is taken)"));
        }
        accept(app, bearer, precision, &headers, body).await
    };
    run.await.map_err(ApiError::v1)
}

/// The bearer of a write token; any other is refused first (and audited), before the query.
async fn writer(app: &AppState, token: Option<&str>) -> Result<Bearer, ApiError> {
    let bearer = Token::check(app, token)?;
    if !matches!(bearer.grant, Grant::Write { .. }) {
        let reason = format!("a {} token cannot write; use the factory's write token", bearer.grant.kind());
        let (audit_app, audit_reason) = (app.clone(), reason.clone());
        // The audit record is synced to disk: blocking work.
        tokio::task::spawn_blocking(move || audit_app.ingest.audit(Event::Forbidden, &bearer, None, &audit_reason))
            .await?;
        return Err(ApiError::forbidden(reason));
    }
    Ok(bearer)
}

/// Both endpoints, once the token and the query are read.
async fn accept(
    app: AppState,
    bearer: Bearer,
    precision: Precision,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let encoding = body::encoding(headers)?;
    let max_bytes = app.config.server.max_body_bytes;
    body::check_declared_length(headers, max_bytes)?;

    let _slot = app.ingest.admit(&bearer.id).await?;
    let timeout_ms = app.config.server.body_read_timeout_ms;
    // The slot is held while the body arrives: a client that stalls mid-upload must let go.
    let raw = match tokio::time::timeout(Duration::from_millis(timeout_ms), body::read(body, max_bytes)).await {
        Ok(read) => read?,
        Err(_) => {
            tracing::warn!(
                factory = bearer.grant.factory().unwrap_or_default(),
                timeout_ms,
                "Write refused: body too slow"
            );
            return Err(ApiError::timeout(format!(
                "the request body did not arrive within body_read_timeout_ms ({timeout_ms} ms); send it faster or in smaller batches"
            )));
        }
    };
    app.metrics.writes.received(raw.len());
    let now_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    let task_app = app.clone();
    // Decompression, decoding and the fsync are blocking work: off the async threads.
    let written = tokio::task::spawn_blocking(move || {
        let text = match encoding {
            body::Encoding::Identity => std::borrow::Cow::Borrowed(&raw[..]),
            body::Encoding::Gzip => std::borrow::Cow::Owned(body::gunzip(&raw, max_bytes)?),
        };
        crate::ingest::store_batch(&task_app, &bearer, &text, precision, now_ns).map_err(|e| {
            let e = ApiError::from(e);
            task_app.metrics.writes.refused(e.status(), lines(&text));
            e
        })
    })
    .await??;
    app.metrics.writes.accepted(written.accepted);
    Ok(match written.rejected_total {
        0 => StatusCode::NO_CONTENT.into_response(),
        n => {
            app.metrics.writes.refused(StatusCode::BAD_REQUEST, n);
            partial_write(written)
        }
    })
}

/// The lines of line protocol in a body: those neither empty nor comments.
fn lines(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|l| l.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'#'))
        .count()
}

/// What a replay of the dead letters did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Replayed {
    /// Lines stored, now gone from the dead letters.
    pub(super) stored: usize,
    /// Lines still refused, kept with their reason now.
    pub(super) remaining: usize,
}

/// Writes the dead letters of partial writes again (admin): after a catalog, mapping or
/// registry fix, what now passes is stored and leaves them.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    operation_id = "post_dead_letters_replay",
    tag = "write",
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn replay_dead_letters(State(app): State<AppState>, admin: Admin) -> Result<Json<Replayed>, ApiError> {
    let _slot = app.ingest.admit(&admin.0.0.id).await?;
    let task_app = app.clone();
    let (stored, remaining) =
        tokio::task::spawn_blocking(move || crate::ingest::replay_dead_letters(&task_app)).await??;
    Ok(Json(Replayed { stored, remaining }))
}

/// InfluxDB's `/ping`.
#[utoipa::path(get, path = "/ping", security(()),
    operation_id = "get_ping", tag = "write", responses((status = 204, description = "Up")))]
async fn ping() -> impl IntoResponse {
    pong()
}

/// InfluxDB's `/ping`, without a body.
#[utoipa::path(head, path = "/ping", security(()),
    operation_id = "head_ping", tag = "write", responses((status = 204, description = "Up")))]
async fn ping_head() -> impl IntoResponse {
    pong()
}

fn pong() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [("X-Influxdb-Build", "OSS"), ("X-Influxdb-Version", concat!("eitwatch-", env!("CARGO_PKG_VERSION")))],
    )
}
