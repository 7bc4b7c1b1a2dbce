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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use eitwatch_config::server_config::ServerConfig;
    use serde_json::Value;

    use crate::auth::{Grant, Tokens};
    use crate::compliance::period::SECOND_NS;
    use crate::compliance::tests::t0;

    fn config(data_dir: &Path) -> ServerConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/server.toml");
        let text = std::fs::read_to_string(&path).expect("config/examples/server.toml");
        let mut config: ServerConfig = eitwatch_config::problems::load(&text, "server.toml").expect("valid");
        config.server.listen = "127.0.0.1:0".into();
        config.server.data_dir = data_dir.display().to_string();
        config
    }

    /// The list and the acknowledgement reach archived alerts (filters, the span, newest
    /// first), and a backup carries them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_list_and_acknowledgements_read_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Alerts 1-9 of f1, resolved, started at t0 + 1..=9 min; 1-6 archived.
        let expected = crate::alerts::tests::archived_alerts(&dir.path().join("alerts.log"), 9);
        assert!(dir.path().join("alerts/00000002.seg").exists());
        let (_, admin) = Tokens::create(dir.path(), Grant::Admin).expect("admin token");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, _) = crate::serve(config(dir.path()), async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
        let client = reqwest::Client::new();
        let call = |method: reqwest::Method, path: String, body: Option<Value>| {
            let mut request = client
                .request(method, format!("http://{addr}{path}"))
                .header("Authorization", format!("Token {admin}"));
            if let Some(body) = body {
                request = request.header("Content-Type", "application/json").body(body.to_string());
            }
            async move {
                let r = request.send().await.expect("request");
                let status = r.status().as_u16();
                let bytes = r.bytes().await.expect("body");
                (status, serde_json::from_slice::<Value>(&bytes).expect("json"))
            }
        };
        let ids = |v: &Value| -> Vec<u64> {
            v["alerts"].as_array().expect("alerts").iter().map(|a| a["id"].as_u64().expect("id")).collect()
        };
        let minute = 60 * SECOND_NS;
        let span = |from: i64, to: i64| format!("from_ns={}&to_ns={}", t0() + from * minute, t0() + to * minute);
        let (status, body) =
            call(reqwest::Method::GET, format!("/api/v1/alerts?factory=f1&{}", span(0, 10)), None).await;
        assert_eq!((status, ids(&body)), (200, vec![9, 8, 7, 6, 5, 4, 3, 2, 1]), "{body}");
        assert_eq!(body["alerts"][8]["value"], serde_json::json!(expected[0].value.expect("value")));
        assert!(body["alerts"][8]["summary"].as_str().is_some_and(|s| s.contains("COD")), "{body}");
        let (_, body) = call(reqwest::Method::GET, format!("/api/v1/alerts?state=resolved&{}", span(2, 5)), None).await;
        assert_eq!(ids(&body), [4, 3, 2]);
        let (_, body) = call(reqwest::Method::GET, format!("/api/v1/alerts?kind=no_data&{}", span(0, 10)), None).await;
        assert_eq!(ids(&body), Vec::<u64>::new());
        let (_, body) = call(reqwest::Method::GET, format!("/api/v1/alerts?factory=f2&{}", span(0, 10)), None).await;
        assert_eq!(ids(&body), Vec::<u64>::new());
        let (status, body) = call(reqwest::Method::POST, "/api/v1/alerts/3/ack".into(), None).await;
        assert_eq!((status, body["alert"]["ack"]["comment"].as_str()), (200, Some("")), "{body}");
        assert_eq!(body["alert"]["state"], "resolved");
        let (status, body) = call(reqwest::Method::POST, "/api/v1/alerts/3/ack".into(), None).await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = call(reqwest::Method::POST, "/api/v1/alerts/2/ack".into(), None).await;
        assert_eq!(status, 409, "acknowledged before it was archived");
        let (_, body) = call(reqwest::Method::GET, format!("/api/v1/alerts?{}", span(3, 4)), None).await;
        assert_eq!((ids(&body), body["alerts"][0]["ack"]["by"].is_string()), (vec![3], true), "{body}");
        // A backup carries the archive; restored, every alert is there once.
        let target = tempfile::tempdir().expect("tempdir");
        let to = target.path().join("backup");
        let to_json = serde_json::json!({ "to": to.display().to_string() });
        let (status, body) = call(reqwest::Method::POST, "/api/v1/admin/backup".into(), Some(to_json)).await;
        assert_eq!(status, 200, "{body}");
        assert!(to.join("alerts/00000001.seg").exists() && to.join("alerts/00000002.seg").exists());
        let restored_dir = target.path().join("restored");
        let restored = crate::backup::restore(&to, &restored_dir).expect("restore");
        let book = crate::alerts::AlertBook::open(&restored_dir.join("alerts.log"), Default::default()).expect("book");
        let mut restored_ids = Vec::new();
        book.history(t0(), t0() + 10 * minute, |a| {
            restored_ids.push(a.id);
            std::ops::ControlFlow::Continue(())
        })
        .expect("history");
        assert_eq!(restored_ids, [9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert!(restored.alerts >= 9, "{}", restored.alerts);
        assert!(book.get(3).is_some_and(|a| a.ack.is_some()));
        drop(stop);
    }
}
