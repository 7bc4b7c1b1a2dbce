//! `GET /api/v1/events`: the live stream of alert changes and revisions (server-sent
//! events, with keep-alive comments so proxies keep the stream open), scoped like the read
//! API. Every event carries an `id:`; a client reconnecting with `Last-Event-ID` is first
//! sent the events it missed (from the server's replay ring), or a `reload` event when they
//! are no longer kept. A subscriber that falls behind is caught up from the same ring.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, StreamQuery, StreamScope};
use crate::AppState;
use crate::events::{Event, Events, Resume};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The live stream: `event: alert` (an alert as in `/api/v1/alerts`), `event: revision`,
/// `event: reload` (`{"reason": …}`: events were missed that the server no longer keeps;
/// read the API again). Each event has an `id:`; send the last one seen as `Last-Event-ID`
/// when reconnecting to be sent what was missed.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "get_events",
    tag = "alerts",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "The id of the last event received: the stream starts with the events after it"),
    ),
    responses(
        (status = 200, description = "Server-sent events, each `data` a JSON object", content_type = "text/event-stream", body = Object),
        (status = 400, description = "An unknown query key, or a `Last-Event-ID` that is not an event id", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    ),
)]
async fn stream(
    State(app): State<AppState>,
    StreamScope(scope): StreamScope,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::invalid(format!(
                "Last-Event-ID: {:?} is not an event id (expected the decimal id of an event of this stream)",
                String::from_utf8_lossy(v.as_bytes())
            ))
        })?),
    };
    let events = app.events.clone();
    let (pending, rx, last_sent) = match last_id {
        None => (VecDeque::new(), events.subscribe(), 0),
        Some(last) => {
            let (resume, rx) = events.resume(last);
            let mut pending = VecDeque::new();
            let last_sent = push(&mut pending, resume, last);
            (pending, rx, last_sent)
        }
    };
    let state = Tail { events, rx, scope, pending, last_sent, _client: app.metrics.sse_client() };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.pending.pop_front() {
                match item {
                    Item::Event(e) if s.scope.allows(&e.factory) => return Some((Ok(sse(&e)), s)),
                    Item::Event(_) => continue,
                    Item::Reload { id, reason } => {
                        let data = serde_json::json!({ "reason": reason }).to_string();
                        return Some((Ok(SseEvent::default().id(id.to_string()).event("reload").data(data)), s));
                    }
                }
            }
            match s.rx.recv().await {
                // Already sent from the ring (a replay overlaps the subscription's start).
                Ok(e) if e.id <= s.last_sent => continue,
                Ok(e) => {
                    s.last_sent = e.id;
                    if s.scope.allows(&e.factory) {
                        return Some((Ok(sse(&e)), s));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "Event stream subscriber fell behind; catching up from the replay ring");
                    let resume = s.events.after(s.last_sent);
                    s.last_sent = push(&mut s.pending, resume, s.last_sent);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct Tail {
    events: Events,
    rx: broadcast::Receiver<Event>,
    scope: super::ReadScope,
    pending: VecDeque<Item>,
    /// The id of the newest event sent or skipped.
    last_sent: u64,
    /// Counts the client as connected until the stream is dropped.
    _client: crate::metrics::SseClient,
}

enum Item {
    Event(Event),
    Reload { id: u64, reason: &'static str },
}

/// Queues what a resume owes; the id of the newest event queued (`last` when none).
fn push(pending: &mut VecDeque<Item>, resume: Resume, last: u64) -> u64 {
    match resume {
        Resume::Replay(missed) => {
            let newest = missed.last().map_or(last, |e| e.id);
            pending.extend(missed.into_iter().map(Item::Event));
            newest
        }
        Resume::Reload { newest } => {
            pending
                .push_back(Item::Reload { id: newest, reason: "events were missed that the server no longer keeps" });
            newest
        }
    }
}

fn sse(e: &Event) -> SseEvent {
    SseEvent::default().id(e.id.to_string()).event(e.kind).data(&*e.data)
}
