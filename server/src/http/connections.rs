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
//! A request hyper cannot parse (a malformed header such as a bad `Content-Length`, a URI
//! or header too large) is answered by hyper itself, with an empty body; [`Socket`] gives
//! those answers the JSON error body every other error has.
//!
//! With `[server.tls]` every connection, served or past the cap, is a TLS connection: its
//! handshake must end within the time its header has (`header_read_timeout_ms`, past the
//! cap [`REFUSING_HEADER_TIMEOUT`]) and holds the connection's slot meanwhile; a failed one
//! (a plain-HTTP request, an unknown client certificate) closes the connection.
//!
//! Shutdown is graceful: the listener closes, idle connections and handshakes close,
//! requests in flight are answered.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt as _;

use super::{ApiError, ErrorBody};

/// Connections past the cap being answered at once.
pub const REFUSING_MAX: usize = 64;
/// How long a connection past the cap may take to send its request.
const REFUSING_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause after an accept error (out of file descriptors): retried at once it would
/// fail again at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this interval for the same repeated condition.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` resolves, then until
/// the requests in flight are answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max_connections = config.server.max_connections;
    let retry_after_s = config.ingest.retry_after_s;
    let served = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_MAX));
    let header_timeout = Duration::from_millis(config.server.header_read_timeout_ms);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut refuse = http.clone();
    refuse.keep_alive(false).header_read_timeout(REFUSING_HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    // Handshakes in progress end at shutdown: they have no request to finish.
    let (stopping, _) = watch::channel(false);
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
        let router = router.clone();
        if let Ok(slot) = served.clone().try_acquire_owned() {
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let (http, watcher) = (http.clone(), graceful.watcher());
            let secured = secure(stream, peer, tls.clone(), header_timeout, stopping.subscribe());
            tokio::spawn(async move {
                if let Some(stream) = secured.await {
                    let io = TokioIo::new(Socket { stream, pending: None });
                    if let Err(e) = watcher.watch(http.serve_connection(io, service)).await {
                        tracing::debug!(%peer, error = %e, "Connection closed");
                    }
                }
                drop(slot);
            });
        } else if let Ok(slot) = refusing.clone().try_acquire_owned() {
            if cap_warned.due() {
                tracing::warn!(%peer, max_connections, "Connection refused: max_connections are open");
            }
            let service =
                service_fn(move |request: Request<Incoming>| refusal(router.clone(), peer, request, retry_after_s));
            let (refuse, watcher) = (refuse.clone(), graceful.watcher());
            let secured = secure(stream, peer, tls.clone(), REFUSING_HEADER_TIMEOUT, stopping.subscribe());
            tokio::spawn(async move {
                if let Some(stream) = secured.await {
                    let io = TokioIo::new(Socket { stream, pending: None });
                    let _ = watcher.watch(refuse.serve_connection(io, service)).await;
                }
                drop(slot);
            });
        } else if cap_warned.due() {
            tracing::warn!(%peer, max_connections, "Connection closed unanswered: max_connections are open");
        }
    }
    drop(listener);
    stopping.send_replace(true);
    graceful.shutdown().await;
    Ok(())
}

/// The connection's stream: as accepted, or after its TLS handshake. `None` when the
/// handshake failed, took longer than `timeout`, or the server is stopping.
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) -> Option<Stream> {
    let Some(tls) = tls else {
        return Some(Stream::Plain(stream));
    };
    tokio::select! {
        handshake = tokio::time::timeout(timeout, tls.accept(stream)) => match handshake {
            Ok(Ok(stream)) => Some(Stream::Tls(Box::new(stream))),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, timeout_ms = timeout.as_millis() as u64, "TLS handshake timed out");
                None
            }
        },
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }
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

/// A connection's stream, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection's socket, through which hyper's own answers to a request it could not
/// parse get a JSON error body.
struct Socket {
    stream: Stream,
    /// Such an answer, rewritten, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl Socket {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = with_error_body(buf) {
            self.pending = Some((answer, 0));
            // Taken whole; the rest goes out on the next write, flush or shutdown.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// hyper's answer to a request it could not parse (a whole head with `content-length: 0`,
/// status 400, 414 or 431: the server's own errors always have a body), with a body.
fn with_error_body(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?.strip_suffix("\r\n\r\n")?;
    let (code, message) = match head.get(..13)? {
        "HTTP/1.1 400 " => (
            "invalid",
            "the request could not be parsed: a malformed request line or header (Content-Length, Transfer-Encoding, a header name or value)",
        ),
        "HTTP/1.1 414 " => ("request too large", "the request's URI is too long"),
        "HTTP/1.1 431 " => {
            ("request too large", "the request's header is too large (too many or too long header fields)")
        }
        _ => return None,
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let fields: Vec<&str> = lines.collect();
    if !fields.iter().any(|f| f.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let body = serde_json::to_string(&ErrorBody { code, message: message.to_string(), error: None }).ok()?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    let replaced = |f: &&&str| {
        let f = f.to_ascii_lowercase();
        f.starts_with("content-length:") || f.starts_with("connection:")
    };
    for field in fields.iter().filter(|f| !replaced(f)) {
        answer.push_str(field);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_parse_error_answers_get_a_body() {
        let answer =
            with_error_body(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n")
                .expect("rewritten");
        let text = String::from_utf8(answer).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 ") && head.contains("\r\ndate: x"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["code"], "request too large");
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(with_error_body(with_body).is_none(), "the server's own 400");
        assert!(with_error_body(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
