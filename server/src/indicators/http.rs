//! `GET /api/v1/indicators?area=…&factory=…&period=2026-10|2026-Q4|FY2027` (or
//! `from=…&to=…`), `format=json|csv|xlsx`, `be=true` for Buddhist-era dates in CSV/XLSX.
//! Read scope as the other read queries: a one-factory token sees its factory only.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{Range, Selection};
use crate::AppState;
use crate::api::{ApiError, read_scope};

const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The range a query asks for.
pub(crate) fn range_of(q: &HashMap<String, String>) -> Result<Range, ApiError> {
    let bad = |e: super::periods::RangeError| ApiError::invalid(e.to_string());
    match (q.get("period"), q.get("from"), q.get("to")) {
        (Some(p), None, None) => Range::parse_period(p).map_err(bad),
        (None, Some(f), Some(t)) => Range::parse_bounds(f, t).map_err(bad),
        (Some(_), _, _) => Err(ApiError::invalid("period: give either period or from and to, not both")),
        _ => Err(ApiError::invalid(
            "period: missing, expected period=2026-10|2026-Q4|FY2027 or from=2026-10-01&to=2026-11-01",
        )),
    }
}

pub(crate) async fn get(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&app, &headers, peer)?;
    let selection = Selection { area: q.get("area").cloned(), factory: q.get("factory").cloned(), scope };
    if let (Some(s), Some(f)) = (&selection.scope, &selection.factory)
        && s != f
    {
        return Err(ApiError::forbidden(format!("this token reads factory \"{s}\" only, not \"{f}\"")));
    }
    super::check_selection(&crate::registry::current_of(&app), &selection).map_err(ApiError::invalid)?;
    let range = range_of(&q)?;
    let format = q.get("format").map_or("json", |f| f.as_str()).to_string();
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        return Err(ApiError::invalid(format!("format: \"{format}\" is not one of json, csv, xlsx")));
    }
    let be = match q.get("be").map(|s| s.as_str()) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return Err(ApiError::invalid(format!("be: \"{other}\" is not true or false"))),
    };
    let app2 = app.clone();
    let (report, problems) = tokio::task::spawn_blocking(move || {
        let (defs, source) = match super::definitions(app2.data_dir()) {
            Ok(d) => d,
            Err(p) => return (None, Some(p)),
        };
        let started = std::time::Instant::now();
        let report = super::report_of(&app2, (&defs, &source), &selection, &range, &mut |done, of, id| {
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
        (Some(report), None)
    })
    .await
    .map_err(|e| ApiError::internal(format!("indicators task: {e}")))?;
    let report = match (report, problems) {
        (Some(r), _) => r,
        (None, p) => return Err(ApiError::internal(p.map(|p| p.to_string()).unwrap_or_default())),
    };
    let who = report.area.as_deref().or(report.factory.as_deref()).unwrap_or("all");
    let label: String =
        report.period.label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let file = format!("indicators-{who}-{label}");
    let disposition = |ext: &str| {
        HeaderValue::from_str(&format!("attachment; filename=\"{file}.{ext}\""))
            .unwrap_or(HeaderValue::from_static("attachment"))
    };
    Ok(match format.as_str() {
        "csv" => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (header::CONTENT_DISPOSITION, disposition("csv")),
            ],
            super::export::csv(&report, be),
        )
            .into_response(),
        "xlsx" => {
            let bytes = super::export::xlsx(&report, be).map_err(|e| ApiError::internal(format!("xlsx: {e}")))?;
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(XLSX_TYPE)),
                    (header::CONTENT_DISPOSITION, disposition("xlsx")),
                ],
                bytes,
            )
                .into_response()
        }
        _ => axum::Json(serde_json::json!({ "report": report })).into_response(),
    })
}
