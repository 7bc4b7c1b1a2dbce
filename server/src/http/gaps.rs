//! Gap records: what agents' outboxes had to drop.
//! - `POST /api/v1/gaps` with the factory's write token and `{"gaps": [{"id", "factory",
//!   "point", "kind", "parameters", "from_ns", "to_ns", "count", "reason"}, …]}`. The token
//!   pins the factory: a gap of another factory refuses the request (403). Accepted whole
//!   (204, once on disk) or refused whole (400 naming the gap and the problem; 409 for an id
//!   stored with other content).
//! - `GET /api/v1/gaps`: the stored gaps overlapping the span, oldest first; a factory token
//!   sees its own factory only, as for readings.

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
use crate::auth::Grant;
use crate::gaps::Gap;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, record))
}

fn gap_list() -> utoipa::openapi::Array {
    schema::records("A gap: id, factory, point, kind, parameters, from_ns, to_ns, count, reason")
}

/// Gaps sent, or stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Gaps {
    #[schema(schema_with = gap_list)]
    gaps: Vec<Gap>,
}

/// Records gaps of the token's factory.
#[utoipa::path(
    post,
    path = "/api/v1/gaps",
    operation_id = "post_gaps",
    tag = "gaps",
    request_body = Gaps,
    responses(
        (status = 204, description = "Stored, on disk"),
        (status = 400, description = "Malformed, or not a registered point (the gap named)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a write token, or a gap of another factory", body = ErrorBody),
        (status = 409, description = "A gap id stored with other content", body = ErrorBody),
    ),
)]
async fn record(State(app): State<AppState>, Token(bearer): Token, body: Bytes) -> Result<StatusCode, ApiError> {
    let Grant::Write { factory } = bearer.grant else {
        return Err(ApiError::forbidden(format!("a {} token may not write gap records", bearer.grant.kind())));
    };
    let body: Gaps = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("body is not {{\"gaps\": [...]}}: {e}")))?;
    tokio::task::spawn_blocking(move || crate::gaps::record(&app, &factory, body.gaps)).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored gaps overlapping the span, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/gaps",
    operation_id = "get_gaps",
    tag = "gaps",
    params(Selection, Span),
    responses((status = 200, body = Gaps), ReadErrors),
)]
async fn list(State(app): State<AppState>, Filtered { filter, .. }: Filtered<NoKeys>) -> Json<Gaps> {
    let (from, to) = range(&filter);
    let gaps = app
        .gaps
        .list(|g| covers(&app, &filter, &g.factory, &g.point, &g.parameters) && g.to_ns >= from && g.from_ns < to);
    Json(Gaps { gaps })
}
