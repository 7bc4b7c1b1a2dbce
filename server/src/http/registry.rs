//! The site registry through the API.
//! - `POST /api/v1/registry/changes` (admin) with one change or a list, applied whole or not
//!   at all: `{"op": "area", "id", "name_en", "name_th", "province", "phase"?}`,
//!   `{"op": "factory", "area", "id", "name", "category", "diw_registration"?}`,
//!   `{"op": "point", "factory", "point": {…as in server.toml…}}`,
//!   `{"op": "permit", "factory", "permit": {…as in server.toml…}}`.
//! - `POST /api/v1/registry/import` (admin) with a TOML body of `[[area]]` tables: every
//!   area, factory, point and permit in it becomes a change, recorded like the others.
//! - `GET /api/v1/registry` (read scope): the current areas; `GET /api/v1/registry/log`
//!   (admin): every change, oldest first.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use eitwatch_config::site::{Area, Registry};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, ApiError, ErrorBody, NoKeys, ReadErrors, ReadScope, RegistryErrors, Strict, schema};
use crate::AppState;
use crate::registry::{Change, Entry, RegistryFile, RegistryLog};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show)).routes(routes!(log)).routes(routes!(changes)).routes(routes!(import))
}

fn area_list() -> utoipa::openapi::Array {
    schema::records(
        "An area as in server.toml: id, name_en, name_th, province, phase, factory [{id, name, category, diw_registration, point, permit}]",
    )
}

fn entry_list() -> utoipa::openapi::Array {
    schema::records("A recorded change: seq, at_ns, at_local, by, change {op, …}")
}

/// The current areas.
#[derive(Debug, Serialize, ToSchema)]
struct Areas {
    #[schema(schema_with = area_list)]
    area: Vec<Area>,
}

/// The changes applied, and the areas they made.
#[derive(Debug, Serialize, ToSchema)]
struct Changed {
    /// How many changes were recorded.
    changes: usize,
    #[schema(schema_with = area_list)]
    area: Vec<Area>,
}

/// Every recorded change, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct Log {
    #[schema(schema_with = entry_list)]
    changes: Vec<Entry>,
}

/// The current registry, within the token's scope (a factory token sees its own factory).
#[utoipa::path(
    get,
    path = "/api/v1/registry",
    operation_id = "get_registry",
    tag = "registry",
    responses((status = 200, body = Areas), ReadErrors),
)]
async fn show(State(app): State<AppState>, ReadScope(scope): ReadScope, _: Strict<NoKeys>) -> Json<Areas> {
    let mut areas = app.registry().areas().to_vec();
    if let Some(own) = scope {
        for a in &mut areas {
            a.factory.retain(|f| f.id == own);
        }
        areas.retain(|a| !a.factory.is_empty());
    }
    Json(Areas { area: areas })
}

/// Every change, oldest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/registry/log",
    operation_id = "get_registry_log",
    tag = "registry",
    responses(
        (status = 200, body = Log),
        (status = 400, description = "An unknown query key", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn log(State(app): State<AppState>, _: Admin, _: Strict<NoKeys>) -> Result<Json<Log>, ApiError> {
    let changes =
        RegistryLog::new(app.data_dir()).entries().map_err(|e| ApiError::internal(format!("registry.log: {e}")))?;
    Ok(Json(Log { changes }))
}

/// Applies one change or a list of them, all or none (admin).
#[utoipa::path(
    post,
    path = "/api/v1/registry/changes",
    operation_id = "post_registry_changes",
    tag = "registry",
    request_body(content = Object, content_type = "application/json", description = "A change `{\"op\": \"area\"|\"factory\"|\"point\"|\"permit\", …}` or a list of them"),
    responses(
        (status = 201, body = Changed),
        RegistryErrors,
    ),
)]
async fn changes(
    State(app): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    let list = match value {
        serde_json::Value::Array(list) if list.is_empty() => {
            return Err(ApiError::invalid("body: an empty list, expected one change or more"));
        }
        serde_json::Value::Array(list) => list,
        one => vec![one],
    };
    let changes = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("body: change {i}: {e}"))))
        .collect::<Result<Vec<Change>, ApiError>>()?;
    submit(app, admin, changes).await
}

/// Imports a registry file: `[[area]]` tables as in server.toml (admin).
#[utoipa::path(
    post,
    path = "/api/v1/registry/import",
    operation_id = "post_registry_import",
    tag = "registry",
    request_body(content = String, content_type = "text/plain", description = "`[[area]]` tables as in server.toml (TOML)"),
    responses(
        (status = 201, body = Changed),
        RegistryErrors,
    ),
)]
async fn import(
    State(app): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body: not UTF-8 TOML"))?;
    if text.trim().is_empty() {
        return Err(ApiError::invalid("body: empty, expected [[area]] tables"));
    }
    let file: RegistryFile = eitwatch_config::problems::load(text, "import")
        .map_err(|p| ApiError::invalid(p.to_string().replace('\n', "; ")))?;
    submit(app, admin, crate::registry::changes_of(&file.area)).await
}

async fn submit(
    app: AppState,
    Admin(admin): Admin,
    changes: Vec<Change>,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    let n = changes.len();
    let now = app.clock.now_ns();
    let by = admin.by();
    let task = app.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        RegistryLog::new(task.data_dir()).record(&task.config.area, changes, &by, now)
    })
    .await?
    .map_err(|e| ApiError::internal(format!("registry.log: {e}")))?;
    let areas = recorded.map_err(|p| ApiError::invalid(p.join("; ")))?;
    app.set_registry(Registry::new(areas.clone()));
    tracing::info!(changes = n, "Site registry changed");
    Ok((StatusCode::CREATED, Json(Changed { changes: n, area: areas })))
}
