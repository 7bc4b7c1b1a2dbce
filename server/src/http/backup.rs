//! Backups of the running server (admin):
//! - `POST /api/v1/admin/backup` with `{"to": "/absolute/new/dir"}` (a path on the server's
//!   machine, not inside its data directory): the server copies a consistent backup of its
//!   data directory there while it goes on taking writes ([`crate::backup`]) and answers
//!   what it made (200), once the backup is complete and synced. 400: the target is not a
//!   new absolute path outside the data directory; 409: a backup is being made already.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, ApiError, ErrorBody};
use crate::AppState;
use crate::backup::{BackupError, Made};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(backup))
}

/// Where to write the backup.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BackupTo {
    /// A new directory on the server's machine (absolute), outside its data directory.
    to: String,
}

/// Backs the data directory up into a new directory while the server goes on taking writes.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backup",
    operation_id = "post_backup",
    tag = "admin",
    request_body = BackupTo,
    responses(
        (status = 200, description = "The backup is complete and synced", body = Made),
        (status = 400, description = "Malformed, or the target is not a new absolute directory outside the data directory", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "A backup is being made already", body = ErrorBody),
        (status = 500, description = "The backup failed (nothing is left at the target)", body = ErrorBody),
    ),
)]
async fn backup(State(app): State<AppState>, Admin(admin): Admin, body: Bytes) -> Result<Json<Made>, ApiError> {
    let body: BackupTo = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("body is not {{\"to\": \"/new/dir\"}}: {e}")))?;
    tracing::info!(to = %body.to, by = %admin.by(), "Backup requested");
    let made = tokio::task::spawn_blocking(move || crate::backup::backup(&app, std::path::Path::new(&body.to)))
        .await
        .map_err(ApiError::internal)?;
    match made {
        Ok(made) => Ok(Json(made)),
        Err(e @ BackupError::Target { .. }) => Err(ApiError::invalid(e.to_string())),
        Err(e @ BackupError::Busy(_)) => Err(ApiError::conflict(e.to_string())),
        Err(e) => Err(ApiError::internal(e)),
    }
}
