//! The HTTP surface: one module per resource, each with its routes, and the one error type.
//!
//! Every API route is declared with `#[utoipa::path]` and routed through an
//! [`OpenApiRouter`], so a path is declared once, where it is routed, and the OpenAPI
//! document ([`openapi`], served at `/api/v1/openapi.json`) is generated from the routes and
//! their types. Only the board's static pages are routed outside it.
//!
//! Read queries are parsed strictly (`Strict`, `Filtered`): an unknown key or a value
//! that is not one of those expected is a 400 naming the key; the InfluxDB write endpoints
//! stay as lenient as InfluxDB is. Every request is traced; every request but the writes
//! (which bound their body's upload themselves), the live stream and the indicators is
//! answered within [`REQUEST_TIMEOUT`]. A request refused before its body was read has the
//! rest of its body read first (up to [`DRAIN_MAX_BYTES`] within [`DRAIN_TIMEOUT`]), so a
//! client still sending gets the answer instead of a broken pipe.

mod alerts;
mod backup;
mod board;
mod body;
mod compliance;
mod connections;
mod corrections;
mod deviations;
mod docs;
mod error;
mod events;
mod extract;
mod gaps;
mod health;
mod indicators;
mod notifications;
mod readings;
mod registry;
mod schema;
mod tls;
mod write;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub use connections::{REFUSING_MAX, serve};
pub use docs::markdown;
pub use error::{ApiError, ErrorBody};
use extract::{
    Admin, Filtered, ListQuery, NoKeys, ReadScope, Selection, Span, StreamQuery, StreamScope, Strict, Token, Untimed,
    covers, range,
};
pub use tls::acceptor as tls_acceptor;

/// How long a read (or a registry, gap, correction or acknowledgement request) may take
/// before it is answered 503 (without a body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eitwatch API",
        description = "Ingest (InfluxDB v2 and 1.x line protocol), judged periods, episodes, availability, alerts, live events, indicators, deviations, corrections, gaps and the site registry of eitwatch's provincial server. Times are ns since the Unix epoch (UTC) or RFC 3339; periods are Asia/Bangkok calendar periods (UTC+07:00). Requests take `Authorization: Token <token>` (a factory's token sees only its factory; anonymous reads from loopback when the server allows). Errors are InfluxDB's `{\"code\", \"message\"}`."
    ),
    modifiers(&TokenAuth),
    components(schemas(ErrorBody))
)]
struct Base;

/// `Authorization: Token <token>` on every operation.
struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = ApiKey::Header(ApiKeyValue::with_description("Authorization", "Token <token>"));
        doc.components.get_or_insert_default().add_security_scheme("token", SecurityScheme::ApiKey(scheme));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

/// The documented API: every route but the board's pages.
fn api() -> OpenApiRouter<AppState> {
    let bounded = OpenApiRouter::new()
        .merge(health::router())
        .routes(routes!(openapi_json))
        .merge(readings::router())
        .merge(alerts::router())
        .merge(compliance::router())
        .merge(deviations::router())
        .merge(registry::router())
        .merge(gaps::router())
        .merge(corrections::router())
        .merge(notifications::router())
        .merge(board::router())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT));
    // Unbounded: the writes bound their upload with `body_read_timeout_ms` (a large batch may
    // take long to store), the live stream is endless, and the indicators' computation runs
    // on a blocking thread that an answered timeout would not stop, only waste.
    OpenApiRouter::with_openapi(Base::openapi())
        .merge(bounded)
        .merge(write::router())
        .merge(events::router())
        .merge(indicators::router())
        // A large data directory copied across file systems takes longer than a read may.
        .merge(backup::router())
}

/// The OpenAPI document of the API, generated from its routes and types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The server's routes.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.server.max_body_bytes;
    let (api, _) = api().split_for_parts();
    api.merge(board::pages())
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(drain_refused))
        // The span names the path only: a query string may carry a token (`/write?p=`,
        // the event stream's `?token=`), which must never reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(app)
}

/// The most of a refused request's unread body read before answering; past it the
/// connection is closed after the answer.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024 * 1024;
/// How long reading the rest of a refused request's body may take.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads what a refused request's client is still sending before the refusal goes out: a
/// client that writes its whole body before reading (Python's `requests`, curl) would
/// otherwise see its connection reset mid-send, not the 4xx. Not for 408, whose body
/// is what did not arrive.
async fn drain_refused(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let left = Arc::new(Mutex::new(None));
    let body = axum::body::Body::new(Unread { body: Some(body), left: left.clone() });
    let mut response = next.run(axum::extract::Request::from_parts(parts, body)).await;
    let status = response.status();
    let unread = left.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(body) = unread
        && status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && !drain(body).await
    {
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    response
}

/// Reads and drops `body` up to the bounds; whether it ended within them.
async fn drain(mut body: axum::body::Body) -> bool {
    use http_body_util::BodyExt as _;
    let read = async {
        let mut bytes = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            bytes += frame.data_ref().map_or(0, |d| d.len());
            if bytes > DRAIN_MAX_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIMEOUT, read).await.unwrap_or(false)
}

/// A request body that, dropped before its end, hands what is left back to
/// [`drain_refused`].
struct Unread {
    body: Option<axum::body::Body>,
    left: Arc<Mutex<Option<axum::body::Body>>>,
}

impl hyper::body::Body for Unread {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match self.body.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.as_ref().map(hyper::body::Body::size_hint).unwrap_or_default()
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        if let Some(body) = self.body.take().filter(|b| !hyper::body::Body::is_end_stream(b)) {
            *self.left.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
        }
    }
}

/// What answers a path no route takes.
async fn fallback(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// A set of error responses, each with the error body, for `responses(...)`.
macro_rules! errors {
    ($(#[$doc:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? }) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                [$(($status, $description)),+]
                    .into_iter()
                    .map(|(status, description)| (status.to_string(), error_response(description)))
                    .collect()
            }
        }
    };
}

errors!(
    /// The errors of a read: a bad query, a missing or unknown token.
    ReadErrors {
        "400" => "A malformed query, an unknown key, or a value not among those expected (the key named)",
        "401" => "Missing, unknown or revoked token",
    }
);

errors!(
    /// The errors of the line-protocol writes.
    WriteErrors {
        "400" => "Malformed or unknown (the first bad line named)",
        "401" => "Missing, unknown or revoked token",
        "403" => "Not a write token, or a line of another factory",
        "408" => "The body did not arrive within `body_read_timeout_ms`",
        "409" => "A different value for a stored reading",
        "413" => "Larger than `max_body_bytes`",
        "429" => "Too many writes waiting; see `Retry-After`",
        "503" => "No write slot in time; see `Retry-After`",
    }
);

errors!(
    /// The errors of a registry change.
    RegistryErrors {
        "400" => "Malformed, or the registry it makes is not valid (every problem named)",
        "401" => "Missing, unknown or revoked token",
        "403" => "Not an admin token",
    }
);

fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "get_openapi_json",
    tag = "health",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> impl IntoResponse {
    static DOC: LazyLock<String> =
        LazyLock::new(|| openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str())
}
