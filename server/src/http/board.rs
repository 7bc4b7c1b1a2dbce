//! The built-in compliance board: static files from `dashboards/board/`, compiled into the
//! binary so a provincial office without internet (or behind a proxy that blocks CDNs) gets
//! every asset from the server itself, and `GET /api/v1/site`, the registry with display
//! names the board needs (areas, factories, points, parameter names in English and Thai).
//!
//! The page is plain HTML, CSS and JS with uPlot (vendored, `dashboards/board/vendor/`) for
//! its charts: no build step, so the two README commands stay the only ones. Its pages are
//! sent with a Content-Security-Policy that lets in the board's own script and style sheet
//! only (no inline script or style), and may not be framed by another site. Its files are
//! the only routes outside the OpenAPI document: they are not API.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use eitwatch_config::catalog::Catalog;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{NoKeys, ReadErrors, ReadScope, Strict, schema};
use crate::AppState;

/// The board's files: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../../dashboards/board/index.html")),
    ("board.css", "text/css; charset=utf-8", include_str!("../../../dashboards/board/board.css")),
    ("board.js", "text/javascript; charset=utf-8", include_str!("../../../dashboards/board/board.js")),
    // uPlot 1.6.32 (MIT, `dashboards/board/vendor/uPlot.LICENSE`), the charts.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboards/board/vendor/uPlot.iife.min.js"),
    ),
    ("uPlot.min.css", "text/css; charset=utf-8", include_str!("../../../dashboards/board/vendor/uPlot.min.css")),
];

/// The site's icon, 16×16 (browsers ask for `/favicon.ico` whatever the page says).
const FAVICON: &[u8] = include_bytes!("../../assets/favicon.ico");

/// The board's pages: `/` (redirect), `/board/`, `/board/{file}` and `/favicon.ico`.
pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/board/") }))
        .route(
            "/favicon.ico",
            get(|| async {
                ([(header::CONTENT_TYPE, "image/x-icon"), (header::CACHE_CONTROL, "max-age=86400")], FAVICON)
            }),
        )
        .route("/board", get(|| async { Redirect::to("/board/") }))
        .route("/board/", get(|| async { file("index.html") }))
        .route("/board/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}

/// `GET /api/v1/site`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(site))
}

/// What the board's pages may load and run: its own files and the API, nothing inline.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn file(name: &str) -> Response {
    let mut response = match FILES.iter().find(|(n, _, _)| *n == name) {
        // no-cache: a browser revalidates, so an upgraded server's board is not mixed with
        // a stale script.
        Some((_, ty, body)) => {
            ([(header::CONTENT_TYPE, *ty), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no board file \"{name}\"")).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A parameter with its names and how its values are shown.
#[derive(Debug, Serialize, ToSchema)]
struct Parameter {
    code: String,
    name_en: String,
    name_th: Option<String>,
    /// The canonical unit of its values (`degC`, `m3/h`).
    unit: Option<String>,
    /// The unit as people write it (`°C`, `m³/h`; empty for pH).
    unit_display: Option<String>,
    /// Decimals its values are shown with (pH 2, COD 0); the API's values are not rounded.
    display_decimals: Option<u8>,
}

/// A monitoring point.
#[derive(Debug, Serialize, ToSchema)]
struct Point {
    id: String,
    #[schema(schema_with = schema::kind)]
    kind: eitwatch_config::reading::Kind,
    expected_interval_s: u64,
    parameters: Vec<Parameter>,
}

/// A factory.
#[derive(Debug, Serialize, ToSchema)]
struct Factory {
    id: String,
    name: String,
    category: u8,
    diw_registration: Option<String>,
    points: Vec<Point>,
}

/// An area.
#[derive(Debug, Serialize, ToSchema)]
struct Area {
    id: String,
    name_en: String,
    name_th: String,
    province: String,
    factories: Vec<Factory>,
}

/// What the caller may see and do.
#[derive(Debug, Serialize, ToSchema)]
struct Granted {
    /// The one factory the caller sees, if any.
    factory: Option<String>,
    /// `write`, `read`, `admin` or `anonymous`: the board offers acknowledgement only where
    /// the server allows it.
    kind: &'static str,
}

/// The registry with display names.
#[derive(Debug, Serialize, ToSchema)]
struct Site {
    areas: Vec<Area>,
    scope: Granted,
}

/// Areas → factories → points with the names of their parameters, within the token's
/// scope (a factory token sees its own factory only).
#[utoipa::path(get, path = "/api/v1/site",
    operation_id = "get_site", tag = "board", responses((status = 200, body = Site), ReadErrors))]
async fn site(State(app): State<AppState>, scope: ReadScope, headers: HeaderMap, _: Strict<NoKeys>) -> Json<Site> {
    let catalog = Catalog::builtin();
    let registry = app.registry();
    let parameter = |p: &eitwatch_config::site::Point, code: &String| {
        let c = catalog.get(p.kind, code);
        Parameter {
            code: code.clone(),
            name_en: c.map_or(code.clone(), |c| c.name_en.clone()),
            name_th: c.and_then(|c| c.name_th.clone()),
            unit: c.map(|c| c.unit.to_string()),
            unit_display: c.map(|c| c.unit_display.clone()),
            display_decimals: c.map(|c| c.display_decimals),
        }
    };
    let areas = registry
        .areas()
        .iter()
        .filter_map(|a| {
            let factories: Vec<_> = a
                .factory
                .iter()
                .filter(|f| scope.allows(&f.id))
                .map(|f| Factory {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    category: f.category,
                    diw_registration: f.diw_registration.clone(),
                    points: f
                        .point
                        .iter()
                        .map(|p| Point {
                            id: p.id.clone(),
                            kind: p.kind,
                            expected_interval_s: p.expected_interval_s,
                            parameters: p.parameters.iter().map(|code| parameter(p, code)).collect(),
                        })
                        .collect(),
                })
                .collect();
            (!factories.is_empty() || scope.0.is_none()).then(|| Area {
                id: a.id.clone(),
                name_en: a.name_en.clone(),
                name_th: a.name_th.clone(),
                province: a.province.clone(),
                factories,
            })
        })
        .collect();
    let kind = crate::auth::presented(super::extract::authorization(&headers), None)
        .and_then(|t| app.tokens.check(&t))
        .map_or("anonymous", |b| b.grant.kind());
    Json(Site { areas, scope: Granted { factory: scope.0, kind } })
}
