//! The server's connections, bounded so that anyone who can connect cannot exhaust it:
//! - a request's header must arrive within `header_read_timeout_ms` of the server waiting
//!   for it, so a silent connection, or one idle between requests, is closed;
//! - at most `max_connections` are served at once. Past the cap a connection is still
//!   accepted (so it does not wait unanswered in the kernel's queue) and answered once,
//!   `/health` with the server's health, so monitoring sees a live server, and anything else
//!   503 with `Retry-After`, then closed. At most [`REFUSING_MAX`] are being answered so
//!   at a time; past those, a connection is closed at once. The open files stay bounded by
//!   `max_connections + REFUSING_MAX`.
//!
//! Shutdown is graceful: the listener closes, idle connections close, requests in flight
//! are answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::IntoResponse;
use eitwatch_config::server_config::ServerConfig;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use super::ApiError;

/// Connections past the cap being answered at once.
pub const REFUSING_MAX: usize = 64;
/// How long a connection past the cap may take to send its request.
const REFUSING_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause after an accept error (out of file descriptors): retried at once it would
/// fail again at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this interval for the same repeated condition.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then until the requests in
/// flight are answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max_connections = config.server.max_connections;
    let retry_after_s = config.ingest.retry_after_s;
    let served = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_MAX));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(config.server.header_read_timeout_ms));
    let mut refuse = http.clone();
    refuse.keep_alive(false).header_read_timeout(REFUSING_HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut accept_warned = Throttle::default();
    let mut cap_warned = Throttle::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if accept_warned.due() {
                        tracing::warn!(error = %e, "Cannot accept a connection");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let router = router.clone();
        if let Ok(slot) = served.clone().try_acquire_owned() {
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let connection = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "Connection closed");
                }
                drop(slot);
            });
        } else if let Ok(slot) = refusing.clone().try_acquire_owned() {
            if cap_warned.due() {
                tracing::warn!(%peer, max_connections, "Connection refused: max_connections are open");
            }
            let service =
                service_fn(move |request: Request<Incoming>| refusal(router.clone(), peer, request, retry_after_s));
            let connection = graceful.watch(refuse.serve_connection(io, service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(slot);
            });
        } else if cap_warned.due() {
            tracing::warn!(%peer, max_connections, "Connection closed unanswered: max_connections are open");
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The one answer of a connection past the cap.
async fn refusal(
    router: Router,
    peer: SocketAddr,
    mut request: Request<Incoming>,
    retry_after_s: u64,
) -> Result<axum::response::Response, std::convert::Infallible> {
    if request.uri().path() == "/health" {
        request.extensions_mut().insert(ConnectInfo(peer));
        return router.oneshot(request).await;
    }
    let message = "the server has max_connections connections open; retry later";
    Ok(ApiError::unavailable(message, retry_after_s).into_response())
}

/// Lets a repeated warning through at most once per [`WARN_EVERY`].
#[derive(Default)]
struct Throttle(Option<Instant>);

impl Throttle {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}
