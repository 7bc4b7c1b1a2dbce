//! Analyser deviation records.
//! - `POST /api/v1/deviations` (the factory's write token for its own analysers, or an admin
//!   token) with `{"factory", "point", "parameter": "bod"|"cod", "sampled_on": "2026-06-10",
//!   "analyser_mg_per_l", "lab_mg_per_l", "laboratory", "reported_on"?, "note"?}`: 201 with
//!   the record stored.
//! - `GET /api/v1/deviations`: the history per analyser (oldest first), each analyser's
//!   status and per factory the worst of its analysers. Scoped like the read API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, Filtered, ReadErrors, Selection, Token, Untimed, covers, schema};
use crate::AppState;
use crate::auth::Grant;
use crate::deviations::{AnalyserStatus, DeviationLog, FactoryStatus, Record, Submitted};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, record))
}

fn record_schema() -> utoipa::openapi::Object {
    schema::record(
        "A deviation record: id, factory, point, parameter, sampled_on, analyser_mg_per_l, lab_mg_per_l, laboratory, reported_on, note, deviation_mg_per_l, late, recorded_by, recorded_ns",
    )
}

fn record_list() -> utoipa::openapi::Array {
    utoipa::openapi::Array::new(record_schema())
}

fn analyser_list() -> utoipa::openapi::Array {
    schema::records(
        "An analyser: factory, point, parameter, status (ok, due, overdue), due_by, last_sampled_on, last_deviation_mg_per_l, records, late_records",
    )
}

fn factory_list() -> utoipa::openapi::Array {
    schema::records("A factory: factory, status (ok, due, overdue), the worst of its analysers")
}

/// A record stored.
#[derive(Debug, Serialize, ToSchema)]
struct Recorded {
    #[schema(schema_with = record_schema)]
    record: Record,
}

/// Analysers' statuses and their history.
#[derive(Debug, Serialize, ToSchema)]
struct Deviations {
    #[schema(schema_with = analyser_list)]
    analysers: Vec<AnalyserStatus>,
    #[schema(schema_with = factory_list)]
    factories: Vec<FactoryStatus>,
    #[schema(schema_with = record_list)]
    records: Vec<Record>,
}

/// Records an analyser's deviation from a laboratory result.
#[utoipa::path(
    post,
    path = "/api/v1/deviations",
    operation_id = "post_deviations",
    tag = "deviations",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "`{\"factory\", \"point\", \"parameter\": \"bod\"|\"cod\", \"sampled_on\": \"2026-06-10\", \"analyser_mg_per_l\", \"lab_mg_per_l\", \"laboratory\", \"reported_on\"?, \"note\"?}`"
    ),
    responses(
        (status = 201, body = Recorded),
        (status = 400, description = "Malformed, or every problem with it named", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "A read token, or another factory's analyser", body = ErrorBody),
    ),
)]
async fn record(
    State(app): State<AppState>,
    token: Token,
    body: Bytes,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let s: Submitted = serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    match &token.0.grant {
        Grant::Admin => {}
        Grant::Write { factory } if *factory == s.factory => {}
        Grant::Write { factory } => {
            return Err(ApiError::forbidden(format!(
                "this token records for factory \"{factory}\", not \"{}\"",
                s.factory
            )));
        }
        Grant::Read { .. } => return Err(ApiError::forbidden("a read token cannot record deviations")),
    }
    let now = app.clock.now_ns();
    let (_, reported) =
        crate::deviations::validate(&s, &app.registry(), now).map_err(|p| ApiError::invalid(p.join("; ")))?;
    let by = token.by();
    let log = DeviationLog::new(app.data_dir());
    let stored = tokio::task::spawn_blocking(move || log.append(s, reported, by, now))
        .await?
        .map_err(|e| ApiError::internal(format!("deviations.log: {e}")))?;
    tracing::info!(factory = %stored.submitted.factory, point = %stored.submitted.point, parameter = %stored.submitted.parameter, deviation = stored.deviation_mg_per_l, late = stored.late, "Analyser deviation recorded");
    Ok((StatusCode::CREATED, Json(Recorded { record: stored })))
}

/// Each analyser's status and the records, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/deviations",
    operation_id = "get_deviations",
    tag = "deviations",
    params(Selection),
    responses((status = 200, body = Deviations), ReadErrors),
)]
async fn list(
    State(app): State<AppState>,
    Filtered { filter, .. }: Filtered<Untimed>,
) -> Result<Json<Deviations>, ApiError> {
    let covers = |f: &str, p: &str, c: &str| covers(&app, &filter, f, p, [c]);
    let records =
        DeviationLog::new(app.data_dir()).list().map_err(|e| ApiError::internal(format!("deviations.log: {e}")))?;
    let analysers = crate::deviations::statuses(&app.registry(), &records, app.clock.now_ns(), covers);
    let factories = crate::deviations::worst_by_factory(&analysers);
    let records = records
        .into_iter()
        .filter(|r| covers(&r.submitted.factory, &r.submitted.point, &r.submitted.parameter))
        .collect();
    Ok(Json(Deviations { analysers, factories, records }))
}
