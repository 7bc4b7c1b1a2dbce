//! The built-in compliance board: static files from `dashboards/board/`, compiled into the
//! binary so a provincial office without internet (or behind a proxy that blocks CDNs) gets
//! every asset from the server itself, and `GET /api/v1/site`, the registry with display
//! names the board needs (areas, factories, points, parameter names in English and Thai).
//!
//! The page is plain HTML, CSS and JS drawing its charts as SVG: no build step, so the two
//! README commands stay the only ones.

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use eitwatch_config::catalog::Catalog;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiError, read_scope};

/// The board's files: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../dashboards/board/index.html")),
    ("board.css", "text/css; charset=utf-8", include_str!("../../dashboards/board/board.css")),
    ("board.js", "text/javascript; charset=utf-8", include_str!("../../dashboards/board/board.js")),
];

/// The board's routes: `/` (redirect), `/board/` and `/board/{file}`, `/api/v1/site`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/board/") }))
        .route("/board", get(|| async { Redirect::to("/board/") }))
        .route("/board/", get(|| async { file("index.html") }))
        .route("/board/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
        .route("/api/v1/site", get(site))
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        // no-cache: a browser revalidates, so an upgraded server's board is not mixed with
        // a stale script.
        Some((_, ty, body)) => {
            ([(header::CONTENT_TYPE, *ty), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no board file \"{name}\"")).into_response(),
    }
}

/// `GET /api/v1/site`: areas → factories → points with the names of their parameters, within
/// the token's scope (a factory token sees its own factory only).
async fn site(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = read_scope(&app, &headers, peer)?;
    let catalog = Catalog::builtin();
    let registry = app.registry();
    let areas: Vec<_> = registry
        .areas()
        .iter()
        .filter_map(|a| {
            let factories: Vec<_> = a
                .factory
                .iter()
                .filter(|f| scope.as_deref().is_none_or(|s| s == f.id))
                .map(|f| {
                    let points: Vec<_> = f
                        .point
                        .iter()
                        .map(|p| {
                            let parameters: Vec<_> = p
                                .parameters
                                .iter()
                                .map(|code| {
                                    let c = catalog.get(p.kind, code);
                                    json!({
                                        "code": code,
                                        "name_en": c.map_or(code.as_str(), |c| c.name_en.as_str()),
                                        "name_th": c.and_then(|c| c.name_th.as_deref()),
                                        "unit": c.map(|c| c.unit.as_str()),
                                    })
                                })
                                .collect();
                            json!({
                                "id": p.id, "kind": p.kind, "expected_interval_s": p.expected_interval_s,
                                "parameters": parameters,
                            })
                        })
                        .collect();
                    json!({
                        "id": f.id, "name": f.name, "category": f.category,
                        "diw_registration": f.diw_registration, "points": points,
                    })
                })
                .collect();
            (!factories.is_empty() || scope.is_none()).then(|| {
                json!({
                    "id": a.id, "name_en": a.name_en, "name_th": a.name_th, "province": a.province,
                    "factories": factories,
                })
            })
        })
        .collect();
    // The token's kind lets the board offer acknowledgement only where the server allows it.
    let kind = crate::auth::presented(&headers, None)
        .and_then(|t| app.tokens.check(&t))
        .map_or("anonymous", |b| b.grant.kind());
    let granted = json!({ "factory": scope, "kind": kind });
    Ok(Json(json!({ "areas": areas, "scope": granted })))
}
