//! Live events: alert changes and period revisions, broadcast to `GET /api/v1/events`
//! (server-sent events, with keep-alive comments so proxies keep the stream open) and to
//! the webhooks. A subscriber too slow to keep up gets a `lagged` event naming how many
//! it missed; the API has the full history.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::AppState;
use crate::api::{ApiError, read_scope};

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `alert` or `revision`.
    pub kind: &'static str,
    /// The factory it concerns (for token scopes).
    pub factory: String,
    /// The JSON payload.
    pub data: Arc<str>,
}

/// The broadcast of events.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// With room for a burst of 4096 events per subscriber.
    pub fn new() -> Events {
        Events { tx: broadcast::channel(4096).0 }
    }

    /// Publishes an event (no subscriber: dropped).
    pub fn publish(&self, kind: &'static str, factory: &str, data: serde_json::Value) {
        let _ = self.tx.send(Event { kind, factory: factory.to_string(), data: data.to_string().into() });
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// `GET /api/v1/events`: the live stream, scoped like the read API. Browsers' EventSource
/// cannot send an `Authorization` header, so the token may also come as `?token=` (the
/// header wins when both are there).
pub async fn stream(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    if let Some(token) = q.get("token").filter(|t| !t.is_empty())
        && !headers.contains_key(header::AUTHORIZATION)
    {
        let value = HeaderValue::from_str(&format!("Token {token}"))
            .map_err(|_| ApiError::unauthorized("token: not a token (control characters)"))?;
        headers.insert(header::AUTHORIZATION, value);
    }
    let scope = read_scope(&app, &headers, peer)?;
    let rx = app.events.subscribe();
    let stream = futures_util::stream::unfold((rx, scope), |(mut rx, scope)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if scope.as_deref().is_none_or(|f| f == e.factory) => {
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
