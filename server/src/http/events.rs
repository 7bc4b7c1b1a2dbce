//! `GET /api/v1/events`: the live stream of alert changes and revisions (server-sent
//! events, with keep-alive comments so proxies keep the stream open), scoped like the read
//! API. A subscriber too slow to keep up gets a `lagged` event naming how many it missed.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, StreamQuery, StreamScope};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The live stream: `event: alert` (an alert as in `/api/v1/alerts`), `event: revision`,
/// `event: lagged` (`{"missed": n}`).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "get_events",
    tag = "alerts",
    params(StreamQuery),
    responses(
        (status = 200, description = "Server-sent events, each `data` a JSON object", content_type = "text/event-stream", body = Object),
        (status = 400, description = "An unknown query key", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    ),
)]
async fn stream(
    State(app): State<AppState>,
    StreamScope(scope): StreamScope,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let rx = app.events.subscribe();
    let stream = futures_util::stream::unfold((rx, scope), |(mut rx, scope)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if scope.allows(&e.factory) => {
                    return Some((Ok(SseEvent::default().event(e.kind).data(&*e.data)), (rx, scope)));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let event = SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}"));
                    return Some((Ok(event), (rx, scope)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
