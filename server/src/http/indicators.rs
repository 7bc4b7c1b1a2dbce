//! `GET /api/v1/indicators?area=…&factory=…&period=2026-10|2026-Q4|FY2027` (or
//! `from=…&to=…`), `format=json|csv|xlsx`, `be=true` for Buddhist-era dates in CSV/XLSX.
//! Read scope as the other read queries: a one-factory token sees its factory only.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, ReadScope, Strict, schema};
use crate::AppState;
use crate::indicators::{Range, Report, Selection};

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(indicators))
}

/// What to compute and how to send it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct IndicatorsQuery {
    /// One area.
    area: Option<String>,
    /// One factory.
    factory: Option<String>,
    /// A month (`2026-10`), quarter (`2026-Q4`) or Thai fiscal year (`FY2027`); or `from` and `to`.
    period: Option<String>,
    /// First day (`2026-10-01`, Bangkok) or RFC 3339 time, with `to`.
    from: Option<String>,
    /// Day or time after the last, with `from`.
    to: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    #[param(inline)]
    format: Option<Format>,
    /// Buddhist-era dates in CSV and XLSX: `true`/`1` or `false`/`0`.
    be: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Csv,
    Xlsx,
}

/// The indicators with their evidence.
#[derive(Debug, Serialize, ToSchema)]
struct Indicators {
    #[schema(schema_with = report)]
    report: Report,
}

fn report() -> utoipa::openapi::Object {
    schema::record(
        "The report: area, factory, period, previous, generated_ns, definitions, indicators (each with its value, evidence and what was not computed), episodes",
    )
}

/// The range a query asks for.
fn range_of(q: &IndicatorsQuery) -> Result<Range, ApiError> {
    let bad = |e: crate::indicators::periods::RangeError| ApiError::invalid(e.to_string());
    match (&q.period, &q.from, &q.to) {
        (Some(p), None, None) => Range::parse_period(p).map_err(bad),
        (None, Some(f), Some(t)) => Range::parse_bounds(f, t).map_err(bad),
        (Some(_), _, _) => Err(ApiError::invalid("period: give either period or from and to, not both")),
        _ => Err(ApiError::invalid(
            "period: missing, expected period=2026-10|2026-Q4|FY2027 or from=2026-10-01&to=2026-11-01",
        )),
    }
}

/// Environmental indicators of an area or factory over a period, as JSON, CSV or XLSX.
#[utoipa::path(
    get,
    path = "/api/v1/indicators",
    operation_id = "get_indicators",
    tag = "indicators",
    params(IndicatorsQuery),
    responses(
        (status = 200, content(
            (Indicators = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "A malformed or unknown query value", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Another factory than the token's", body = ErrorBody),
    ),
)]
async fn indicators(
    State(app): State<AppState>,
    ReadScope(scope): ReadScope,
    Strict(q): Strict<IndicatorsQuery>,
) -> Result<Response, ApiError> {
    let selection = Selection { area: q.area.clone(), factory: q.factory.clone(), scope };
    if let (Some(s), Some(f)) = (&selection.scope, &selection.factory)
        && s != f
    {
        return Err(ApiError::forbidden(format!("this token reads factory \"{s}\" only, not \"{f}\"")));
    }
    crate::indicators::check_selection(&app.registry(), &selection).map_err(ApiError::invalid)?;
    let range = range_of(&q)?;
    let format = q.format.unwrap_or_default();
    let be = match q.be.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return Err(ApiError::invalid(format!("be: \"{other}\" is not true or false"))),
    };
    let task = app.clone();
    let report = tokio::task::spawn_blocking(move || {
        let (defs, source) = crate::indicators::definitions(task.data_dir())?;
        let started = std::time::Instant::now();
        let report = crate::indicators::report_of(&task, (&defs, &source), &selection, &range, &mut |done, of, id| {
            tracing::debug!(indicator = id, done, of, "Computing indicators");
        });
        tracing::info!(
            area = report.area.as_deref().unwrap_or("*"),
            factory = report.factory.as_deref().unwrap_or("*"),
            period = %report.period.label,
            indicators = report.indicators.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Indicators computed"
        );
        Ok::<_, eitwatch_config::problems::Problems>(report)
    })
    .await?
    .map_err(ApiError::internal)?;
    let who = report.area.as_deref().or(report.factory.as_deref()).unwrap_or("all");
    let label: String =
        report.period.label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let file = format!("indicators-{who}-{label}");
    let disposition = |ext: &str| {
        HeaderValue::from_str(&format!("attachment; filename=\"{file}.{ext}\""))
            .unwrap_or(HeaderValue::from_static("attachment"))
    };
    Ok(match format {
        Format::Csv => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (header::CONTENT_DISPOSITION, disposition("csv")),
            ],
            crate::indicators::export::csv(&report, be),
        )
            .into_response(),
        Format::Xlsx => {
            let bytes =
                crate::indicators::export::xlsx(&report, be).map_err(|e| ApiError::internal(format!("xlsx: {e}")))?;
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(XLSX_TYPE)),
                    (header::CONTENT_DISPOSITION, disposition("xlsx")),
                ],
                bytes,
            )
                .into_response()
        }
        Format::Json => axum::Json(Indicators { report }).into_response(),
    })
}
