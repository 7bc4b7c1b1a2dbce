//! Corrections of stored readings.
//! - `POST /api/v1/corrections` with `{"corrections": [{"factory", "point", "parameter",
//!   "time_ns", "value", "reason"}, …]}`: a write token for its own factory, or an admin
//!   token; 204 once on disk, or refused whole (400 naming the correction and the problem).
//! - `GET /api/v1/corrections`: oldest first, scoped like the read API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, Filtered, NoKeys, ReadErrors, Selection, Span, Token, covers, range, schema};
use crate::AppState;
use crate::corrections::{Correction, Request};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, record))
}

fn correction_list() -> utoipa::openapi::Array {
    schema::records(
        "A correction: factory, point, parameter, time_ns, value, was, quality, below_detection_limit, reason, by, at_ns",
    )
}

fn request_list() -> utoipa::openapi::Array {
    schema::records("A correction: factory, point, parameter, time_ns, value (catalog unit), reason")
}

/// Corrections to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Sent {
    #[schema(schema_with = request_list)]
    corrections: Vec<Request>,
}

/// Stored corrections.
#[derive(Debug, Serialize, ToSchema)]
struct Corrections {
    #[schema(schema_with = correction_list)]
    corrections: Vec<Correction>,
}

/// Corrects stored readings.
#[utoipa::path(
    post,
    path = "/api/v1/corrections",
    operation_id = "post_corrections",
    tag = "corrections",
    request_body = Sent,
    responses(
        (status = 204, description = "Stored, on disk"),
        (status = 400, description = "Malformed, no such reading, no reason (the correction named)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "A read token, or a correction of another factory", body = ErrorBody),
    ),
)]
async fn record(State(app): State<AppState>, Token(bearer): Token, body: Bytes) -> Result<StatusCode, ApiError> {
    let body: Sent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("body is not {{\"corrections\": [...]}}: {e}")))?;
    tokio::task::spawn_blocking(move || crate::corrections::record(&app, &bearer, body.corrections)).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored corrections of readings measured within the span, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/corrections",
    operation_id = "get_corrections",
    tag = "corrections",
    params(Selection, Span),
    responses((status = 200, body = Corrections), ReadErrors),
)]
async fn list(State(app): State<AppState>, Filtered { filter, .. }: Filtered<NoKeys>) -> Json<Corrections> {
    let (from, to) = range(&filter);
    let corrections = app
        .corrections
        .list(|c| covers(&app, &filter, &c.factory, &c.point, [&c.parameter]) && c.time_ns >= from && c.time_ns < to);
    Json(Corrections { corrections })
}
