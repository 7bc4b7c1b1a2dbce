//! `GET /api/v1/readings`: stored readings (the value in force where corrected), or per
//! bucket of `every_s` seconds their min/max/mean/count, for charts.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Filtered, ListQuery, ReadErrors, Selection, Span, covers, range, schema};
use crate::AppState;
use crate::corrections::Correction;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(readings))
}

/// The readings' own keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadingsQuery {
    /// Buckets of this many seconds (aligned to the epoch) instead of single readings.
    #[param(value_type = Option<i64>, minimum = 1)]
    every_s: Option<String>,
}

impl ListQuery for ReadingsQuery {}

/// One stored reading.
#[derive(Debug, Serialize, ToSchema)]
struct Reading {
    factory: String,
    point: String,
    #[schema(schema_with = schema::kind)]
    kind: eitwatch_config::reading::Kind,
    parameter: String,
    /// Measurement time, ns since the epoch.
    time_ns: i64,
    /// The value in force (the last correction's, if corrected), canonical unit.
    value: f64,
    #[schema(schema_with = schema::quality)]
    quality: eitwatch_config::reading::Quality,
    #[schema(schema_with = schema::source)]
    source: eitwatch_config::reading::Source,
    below_detection_limit: bool,
    /// The value stored (only for a corrected reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_value: Option<f64>,
    /// Every correction of it, oldest first (only for a corrected reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = corrections)]
    corrections: Option<Vec<Correction>>,
}

fn corrections() -> utoipa::openapi::Array {
    schema::records("A correction (see GET /api/v1/corrections)")
}

/// One bucket of a series.
#[derive(Debug, Serialize, ToSchema)]
struct Bucket {
    /// Start, ns since the epoch.
    start_ns: i64,
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
}

/// A series in buckets.
#[derive(Debug, Serialize, ToSchema)]
struct Series {
    factory: String,
    point: String,
    #[schema(schema_with = schema::kind)]
    kind: eitwatch_config::reading::Kind,
    parameter: String,
    buckets: Vec<Bucket>,
}

/// Readings, or buckets when `every_s` is given.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum Readings {
    /// Single readings, oldest first per series.
    Readings { readings: Vec<Reading> },
    /// Buckets per series.
    Buckets { every_s: i64, series: Vec<Series> },
}

/// Stored readings, or buckets of them.
#[utoipa::path(
    get,
    path = "/api/v1/readings",
    operation_id = "get_readings",
    tag = "readings",
    params(Selection, Span, ReadingsQuery),
    responses((status = 200, body = Readings), ReadErrors),
)]
async fn readings(
    State(app): State<AppState>,
    Filtered { filter, own }: Filtered<ReadingsQuery>,
) -> Result<Json<Readings>, ApiError> {
    let (from_ns, to_ns) = range(&filter);
    let keep = |k: &crate::store::SeriesKey| covers(&app, &filter, &k.factory, &k.point, [&*k.parameter]);
    if let Some(every) = own.every_s {
        let every_s: i64 = every.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
            ApiError::invalid(format!("every_s: \"{every}\" is not a positive whole number of seconds"))
        })?;
        let series = app
            .store
            .downsample(keep, from_ns, to_ns, every_s.saturating_mul(1_000_000_000))
            .into_iter()
            .map(|(k, buckets)| Series {
                factory: k.factory.to_string(),
                point: k.point.to_string(),
                kind: k.kind,
                parameter: k.parameter.to_string(),
                buckets: buckets
                    .iter()
                    .map(|b| Bucket { start_ns: b.start_ns, count: b.count, min: b.min, max: b.max, mean: b.mean })
                    .collect(),
            })
            .collect();
        return Ok(Json(Readings::Buckets { every_s, series }));
    }
    let any_corrections = !app.corrections.is_empty();
    let readings = app
        .store
        .query(keep, from_ns, to_ns)
        .into_iter()
        .map(|(k, t, s)| {
            // A corrected reading shows the value in force, what was stored, and every correction.
            let corrections =
                if any_corrections { app.corrections.of(&k.factory, &k.point, &k.parameter, t) } else { Vec::new() };
            let corrected = corrections.last().map(|c| c.value);
            Reading {
                factory: k.factory.to_string(),
                point: k.point.to_string(),
                kind: k.kind,
                parameter: k.parameter.to_string(),
                time_ns: t,
                value: corrected.unwrap_or(s.value),
                quality: s.quality,
                source: s.source,
                below_detection_limit: s.below_detection_limit,
                stored_value: corrected.map(|_| s.value),
                corrections: corrected.map(|_| corrections),
            }
        })
        .collect();
    Ok(Json(Readings::Readings { readings }))
}
