//! Notifications (admin):
//! - `GET /api/v1/notifications`: the delivery log, newest first (`recipient`, `alert`,
//!   `status`, `limit` select), with the counters since the start;
//! - `GET /api/v1/notifications/recipients`: the recipients now (config and changes);
//! - `POST /api/v1/notifications/recipients`: create or replace one, `{…as in
//!   [[notify.recipient]]…}`, validated as the config is, recorded with who and when;
//! - `DELETE /api/v1/notifications/recipients/{id}`: remove one, recorded;
//! - `GET /api/v1/notifications/recipients/log`: every recorded change, oldest first.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use eitwatch_config::notify_config::Recipient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, ApiError, ErrorBody, NoKeys, Strict, schema};
use crate::AppState;
use crate::notify::CountersSnapshot;
use crate::notify::outbox::{Notification, Status};
use crate::notify::recipients::{Change, Entry};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(log))
        .routes(routes!(recipients, upsert))
        .routes(routes!(remove))
        .routes(routes!(changes))
}

fn notification_list() -> utoipa::openapi::Array {
    schema::records(
        "A notification: id, recipient, channel (email|line), to, purpose (fired|resolved|escalated|summary|digest|test), alert, factory, subject, text, html, created_ns, status (queued|held|summarised|sent|failed), attempts, next_ns, answer, done_ns, into, retry_key",
    )
}

fn recipient_list() -> utoipa::openapi::Array {
    schema::records(
        "A recipient as in [[notify.recipient]]: id, name, language (th|en), email [..], line [..], factory, digest_at, subscription [{areas, factories, kinds, min_severity, resolved}]",
    )
}

fn entry_list() -> utoipa::openapi::Array {
    schema::records("A recorded change: seq, at_ns, at_local, by, change {op: upsert|remove, recipient | id}")
}

/// The delivery log's selection.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// Only this recipient.
    recipient: Option<String>,
    /// Only notifications of this alert.
    #[param(minimum = 1)]
    alert: Option<i64>,
    /// Only this status: queued, held, summarised, sent, failed.
    status: Option<String>,
    /// At most this many (default 1000).
    limit: Option<usize>,
}

/// The delivery log, newest first, and the counters.
#[derive(Debug, Serialize, ToSchema)]
struct NotificationLog {
    #[schema(schema_with = notification_list)]
    notifications: Vec<Notification>,
    counters: CountersSnapshot,
}

/// The recipients now.
#[derive(Debug, Serialize, ToSchema)]
struct RecipientList {
    #[schema(schema_with = recipient_list)]
    recipients: Vec<Recipient>,
}

/// Every recorded change of the recipients, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct RecipientChanges {
    #[schema(schema_with = entry_list)]
    changes: Vec<Entry>,
}

fn status_of(text: &str) -> Result<Status, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.into())).map_err(|_| {
        ApiError::invalid(format!("status: \"{text}\" is not one of queued, held, summarised, sent, failed"))
    })
}

/// The delivery log, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    operation_id = "get_notifications",
    tag = "notifications",
    params(LogQuery),
    responses(
        (status = 200, body = NotificationLog),
        (status = 400, description = "An unknown query key or a bad value", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn log(
    State(app): State<AppState>,
    _: Admin,
    Strict(q): Strict<LogQuery>,
) -> Result<Json<NotificationLog>, ApiError> {
    let status = q.status.as_deref().map(status_of).transpose()?;
    if let Some(a) = q.alert.filter(|a| *a < 1) {
        return Err(ApiError::invalid(format!("alert: {a} is not an alert id (1 or more)")));
    }
    let notifications = app.notify.log(
        |n| {
            q.recipient.as_deref().is_none_or(|r| n.recipient == r)
                && q.alert.is_none_or(|a| n.alert.and_then(|id| i64::try_from(id).ok()) == Some(a))
                && status.is_none_or(|s| n.status == s)
        },
        q.limit.unwrap_or(1000),
    );
    Ok(Json(NotificationLog { notifications, counters: app.notify.counters.snapshot() }))
}

/// The recipients now (admin).
#[utoipa::path(
    get,
    path = "/api/v1/notifications/recipients",
    operation_id = "get_notification_recipients",
    tag = "notifications",
    responses(
        (status = 200, body = RecipientList),
        (status = 400, description = "An unknown query key", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn recipients(State(app): State<AppState>, _: Admin, _: Strict<NoKeys>) -> Json<RecipientList> {
    Json(RecipientList { recipients: app.notify.recipients.list() })
}

/// Creates or replaces a recipient (admin), recorded.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/recipients",
    operation_id = "post_notification_recipient",
    tag = "notifications",
    request_body(content = Object, content_type = "application/json", description = "A recipient as in [[notify.recipient]]"),
    responses(
        (status = 201, body = RecipientList),
        (status = 400, description = "Malformed, or not valid (every problem named)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn upsert(
    State(app): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<RecipientList>), ApiError> {
    let recipient: Recipient = serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("body: {e}")))?;
    submit(app, admin, Change::Upsert { recipient }).await
}

/// Removes a recipient (admin), recorded.
#[utoipa::path(
    delete,
    path = "/api/v1/notifications/recipients/{id}",
    operation_id = "delete_notification_recipient",
    tag = "notifications",
    params(("id" = String, Path, description = "The recipient's id")),
    responses(
        (status = 200, body = RecipientList),
        (status = 400, description = "Not a recipient, or escalation still names it", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn remove(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<RecipientList>, ApiError> {
    submit(app, admin, Change::Remove { id }).await.map(|(_, body)| body)
}

/// Every recorded change of the recipients, oldest first (admin).
#[utoipa::path(
    get,
    path = "/api/v1/notifications/recipients/log",
    operation_id = "get_notification_recipients_log",
    tag = "notifications",
    responses(
        (status = 200, body = RecipientChanges),
        (status = 400, description = "An unknown query key", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    ),
)]
async fn changes(State(app): State<AppState>, _: Admin, _: Strict<NoKeys>) -> Result<Json<RecipientChanges>, ApiError> {
    let changes =
        app.notify.recipients.entries().map_err(|e| ApiError::internal(format!("notify/recipients.log: {e}")))?;
    Ok(Json(RecipientChanges { changes }))
}

async fn submit(
    app: AppState,
    Admin(admin): Admin,
    change: Change,
) -> Result<(StatusCode, Json<RecipientList>), ApiError> {
    let now = app.clock.now_ns();
    let by = admin.by();
    let task = app.clone();
    let recorded =
        tokio::task::spawn_blocking(move || task.notify.recipients.record(task.notify.config(), change, &by, now))
            .await?
            .map_err(|e| ApiError::internal(format!("notify/recipients.log: {e}")))?;
    let recipients = recorded.map_err(|p| ApiError::invalid(p.join("; ")))?;
    tracing::info!(recipients = recipients.len(), "Notification recipients changed");
    Ok((StatusCode::CREATED, Json(RecipientList { recipients })))
}
