//! The alert book: `GET /api/v1/alerts` and `POST /api/v1/alerts/{id}/ack`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use eitwatch_config::server_config::AlertKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, Filtered, ListQuery, ReadErrors, Selection, Span, Token, covers, range, schema};
use crate::AppState;
use crate::alerts::{Alert, State as AlertState};
use crate::auth::Grant;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(ack))
}

/// The alert list's own keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AlertsQuery {
    /// Only alerts of this kind.
    #[param(schema_with = schema::alert_kind)]
    kind: Option<AlertKind>,
    /// Only alerts in this state.
    #[param(schema_with = schema::alert_state)]
    state: Option<AlertState>,
}

impl ListQuery for AlertsQuery {}

fn alert() -> utoipa::openapi::Object {
    schema::record(
        "An alert: id, key, kind, severity, state, factory, point, parameter, summary (English), summary_th (Thai), detail, value, limit, since_ns, deadline_ns, pending_ns, firing_ns, ack, resolved_ns",
    )
}

fn alert_list() -> utoipa::openapi::Array {
    utoipa::openapi::Array::new(alert())
}

/// Alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct Alerts {
    #[schema(schema_with = alert_list)]
    alerts: Vec<Alert>,
}

/// The alert acknowledged.
#[derive(Debug, Serialize, ToSchema)]
struct Acked {
    #[schema(schema_with = alert)]
    alert: Alert,
}

/// An acknowledgement's body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// What the person acknowledging says.
    #[serde(default)]
    comment: String,
}

/// Alerts whose condition started within the span, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "get_alerts",
    tag = "alerts",
    params(Selection, Span, AlertsQuery),
    responses((status = 200, body = Alerts), ReadErrors),
)]
async fn list(
    State(app): State<AppState>,
    Filtered { filter, own }: Filtered<AlertsQuery>,
) -> Result<Json<Alerts>, ApiError> {
    let (from, to) = range(&filter);
    let task = app.clone();
    // The history is read from the archive, a segment at a time: off the async threads.
    let alerts = tokio::task::spawn_blocking(move || {
        let mut alerts = Vec::new();
        task.alerts.history(from, to, |a| {
            if covers(&task, &filter, &a.factory, &a.point, &a.parameter)
                && own.kind.is_none_or(|k| k == a.kind)
                && own.state.is_none_or(|s| s == a.state)
            {
                alerts.push(a);
            }
            std::ops::ControlFlow::Continue(())
        })?;
        Ok::<_, std::io::Error>(alerts)
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Json(Alerts { alerts }))
}

/// Acknowledges an alert: a write token for its own factory's alerts, an admin token for
/// any; a read token may not.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    operation_id = "post_alerts_ack",
    tag = "alerts",
    params(("id" = u64, Path, description = "The alert's id")),
    request_body(content = Option<AckBody>, description = "Optional: `{\"comment\": \"…\"}`"),
    responses(
        (status = 200, body = Acked),
        (status = 400, description = "Not an alert id, or a malformed body", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "A read token, or another factory's alert", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
        (status = 409, description = "Already acknowledged", body = ErrorBody),
    ),
)]
async fn ack(
    State(app): State<AppState>,
    Path(id): Path<String>,
    token: Token,
    body: Bytes,
) -> Result<Json<Acked>, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid(format!("alert id \"{id}\" is not a whole number")))?;
    let body: AckBody = if body.is_empty() {
        AckBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("body: expected {{\"comment\": \"…\"}}: {e}")))?
    };
    let alert = app.alerts.get(id).ok_or_else(|| ApiError::not_found(format!("alert {id} does not exist")))?;
    match &token.0.grant {
        Grant::Admin => {}
        Grant::Write { factory } if *factory == alert.factory => {}
        Grant::Write { factory } => {
            return Err(ApiError::forbidden(format!(
                "alert {id} is of factory \"{}\", not \"{factory}\"",
                alert.factory
            )));
        }
        Grant::Read { .. } => return Err(ApiError::forbidden("a read token cannot acknowledge alerts")),
    }
    let by = token.by();
    let task = app.clone();
    let alert =
        tokio::task::spawn_blocking(move || task.alerts.ack(id, &by, &body.comment, task.clock.now_ns())).await??;
    tracing::info!(alert = id, factory = %alert.factory, by = %token.0.id, "Alert acknowledged");
    app.events.publish("alert", &alert.factory, serde_json::to_value(&alert).unwrap_or_default());
    Ok(Json(Acked { alert }))
}
