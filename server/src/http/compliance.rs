//! The compliance engine's judgements: `GET /api/v1/status`, `/periods`, `/revisions`,
//! `/episodes` and `/availability`, each filtered by the common selection and span.

use axum::Json;
use axum::extract::State;
use eitwatch_config::standards::Averaging;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Filtered, ListQuery, NoKeys, ReadErrors, Selection, Span, schema};
use crate::AppState;
use crate::alerts::Alert;
use crate::compliance::{DayAvailability, Episode, Incident, Outcome, PeriodView, Revision};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(periods))
        .routes(routes!(revisions))
        .routes(routes!(episodes))
        .routes(routes!(availability))
}

macro_rules! records {
    ($name:ident, $description:literal) => {
        fn $name() -> utoipa::openapi::Array {
            schema::records($description)
        }
    };
}

records!(
    series_list,
    "A series: area, factory, point, parameter, kind, latest {time_ns, value, quality}, judgements [{limit, current, open}], open_alerts"
);
records!(incident_list, "A silent point: factory, point, since_ns and its fault-notification deadlines");
records!(
    period_list,
    "A judged period: area, factory, point, parameter, limit, period {start_ns, end_ns, closed, outcome, value, valid, expected, …}"
);
records!(
    revision_list,
    "A revision of a closed period: track, factory, point, parameter, period_start_ns, before, after, reason, at_ns"
);
records!(
    episode_list,
    "An episode of consecutive exceeding periods: area, factory, point, parameter, limit, from_ns, to_ns, periods, worst"
);
records!(
    day_list,
    "A Bangkok day's availability: area, factory, point, parameter, day, valid, expected, availability_pct, meets"
);

/// A series' latest reading and judgements, with its open alerts.
#[derive(Debug, Serialize)]
struct SeriesStatus {
    #[serde(flatten)]
    series: crate::compliance::SeriesStatus,
    open_alerts: Vec<Alert>,
}

/// The current state of every series in the selection, and the silent points.
#[derive(Debug, Serialize, ToSchema)]
struct Status {
    /// The server's clock, ns.
    now_ns: i64,
    #[schema(schema_with = series_list)]
    series: Vec<SeriesStatus>,
    #[schema(schema_with = incident_list)]
    incidents: Vec<Incident>,
}

/// Judged periods.
#[derive(Debug, Serialize, ToSchema)]
struct Periods {
    #[schema(schema_with = period_list)]
    periods: Vec<PeriodView>,
}

/// Revisions of closed periods.
#[derive(Debug, Serialize, ToSchema)]
struct Revisions {
    #[schema(schema_with = revision_list)]
    revisions: Vec<Revision>,
}

/// Episodes.
#[derive(Debug, Serialize, ToSchema)]
struct Episodes {
    #[schema(schema_with = episode_list)]
    episodes: Vec<Episode>,
}

/// Availability per day.
#[derive(Debug, Serialize, ToSchema)]
struct Availability {
    #[schema(schema_with = day_list)]
    days: Vec<DayAvailability>,
}

/// The period list's own keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PeriodsQuery {
    /// At most this many periods (default 10 000).
    #[param(minimum = 0)]
    max_rows: Option<usize>,
    /// Only limits of this averaging.
    #[param(schema_with = schema::averaging)]
    averaging: Option<Averaging>,
    /// Only periods with this outcome.
    #[param(schema_with = schema::outcome)]
    outcome: Option<Outcome>,
}

impl ListQuery for PeriodsQuery {}

/// Latest reading and judgements per series, with open alerts, and the silent points.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    operation_id = "get_status",
    tag = "compliance",
    params(Selection, Span),
    responses((status = 200, body = Status), ReadErrors),
)]
async fn status(State(app): State<AppState>, Filtered { filter: f, .. }: Filtered<NoKeys>) -> Json<Status> {
    let (series, incidents) = {
        let engine = app.compliance.engine();
        (engine.status(&f), engine.incidents())
    };
    let open = app.alerts.open_alerts();
    let series = series
        .into_iter()
        .map(|s| {
            let open_alerts = open
                .iter()
                .filter(|a| {
                    a.factory == s.factory
                        && a.point == s.point
                        && a.parameter.as_deref().is_none_or(|p| p == s.parameter)
                })
                .cloned()
                .collect();
            SeriesStatus { series: s, open_alerts }
        })
        .collect();
    let scope = super::ReadScope(f.scope.clone());
    let incidents = incidents
        .into_iter()
        .filter(|i| scope.allows(&i.factory) && f.factory.as_deref().is_none_or(|x| x == i.factory))
        .collect();
    Json(Status { now_ns: app.clock.now_ns(), series, incidents })
}

/// Judged periods (and grab samples), at most `max_rows`.
#[utoipa::path(
    get,
    path = "/api/v1/periods",
    operation_id = "get_periods",
    tag = "compliance",
    params(Selection, Span, PeriodsQuery),
    responses((status = 200, body = Periods), ReadErrors),
)]
async fn periods(State(app): State<AppState>, Filtered { filter, own }: Filtered<PeriodsQuery>) -> Json<Periods> {
    let mut periods = app.compliance.engine().periods(&filter, own.max_rows.unwrap_or(10_000));
    periods.retain(|p| {
        own.averaging.is_none_or(|a| a == p.limit.averaging) && own.outcome.is_none_or(|o| o == p.period.outcome)
    });
    Json(Periods { periods })
}

/// Revisions of closed periods by late data, gaps and corrections.
#[utoipa::path(
    get,
    path = "/api/v1/revisions",
    operation_id = "get_revisions",
    tag = "compliance",
    params(Selection, Span),
    responses((status = 200, body = Revisions), ReadErrors),
)]
async fn revisions(State(app): State<AppState>, Filtered { filter, .. }: Filtered<NoKeys>) -> Json<Revisions> {
    Json(Revisions { revisions: app.compliance.engine().revisions(&filter) })
}

/// Episodes: runs of exceeding periods.
#[utoipa::path(
    get,
    path = "/api/v1/episodes",
    operation_id = "get_episodes",
    tag = "compliance",
    params(Selection, Span),
    responses((status = 200, body = Episodes), ReadErrors),
)]
async fn episodes(State(app): State<AppState>, Filtered { filter, .. }: Filtered<NoKeys>) -> Json<Episodes> {
    Json(Episodes { episodes: app.compliance.engine().episodes(&filter) })
}

/// Data availability per series and Bangkok day.
#[utoipa::path(
    get,
    path = "/api/v1/availability",
    operation_id = "get_availability",
    tag = "compliance",
    params(Selection, Span),
    responses((status = 200, body = Availability), ReadErrors),
)]
async fn availability(State(app): State<AppState>, Filtered { filter, .. }: Filtered<NoKeys>) -> Json<Availability> {
    Json(Availability { days: app.compliance.engine().availability(&filter) })
}
