//! The write endpoints, as InfluxDB defines them, so Telegraf, the InfluxDB client libraries
//! and data loggers write here unchanged:
//! - `POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s` with `Authorization: Token …` or
//!   `Bearer …`;
//! - `POST /write?db=&precision=n|u|ms|s|m|h` (InfluxDB 1.x) with `u`/`p` (the token as
//!   password), `Authorization: Basic` (likewise) or `Token`.
//!
//! Both take `Content-Encoding: gzip`. A batch is accepted whole (204, once on disk) or
//! refused whole, the response naming the first bad line: 400 for what is malformed or
//! unknown, 401 for a missing, unknown or revoked token, 403 for a token that may not write
//! or a line of another factory, 409 for a rewrite of stored history (both recorded in the
//! audit log), 413 over `max_body_bytes` (also once decompressed), 429/503 with
//! `Retry-After` under overload. Error bodies are InfluxDB's `{"code": …, "message": …}`.
//!
//! A parameter the catalog does not know is refused, naming it, unless `[ingest]
//! unknown_parameters = "store_unmapped"`: then its readings go, as canonical line protocol,
//! to `<data_dir>/unmapped.log` (synced before the 204), outside the store and the judgement,
//! to be replayed once the catalog knows them.

mod admission;
mod audit;
mod body;
mod synced;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use eitwatch_config::catalog::UnitError;
use eitwatch_config::line_protocol::{DecodeContext, Precision, Row, decode_rows, encode};
use eitwatch_config::reading::Kind;
use eitwatch_config::reading::{Quality, Reading};
use eitwatch_config::server_config::{ServerConfig, UnknownParameters};
use eitwatch_config::site::Factory;
use eitwatch_config::{Catalog, Parameter};

pub use audit::Event;

use crate::api::ApiError;
use crate::auth::{self, Bearer, Grant};
use crate::compliance::Measured;
use crate::store::StoreError;
use crate::{App, AppState};

/// Ingest's own state: the admission gate and the audit log.
#[derive(Debug)]
pub struct Ingest {
    admission: admission::Admission,
    audit: audit::Audit,
    unmapped: synced::SyncedFile,
}

impl Ingest {
    /// Records a refused write in `audit.log` (other write endpoints use it too).
    pub fn audit(&self, event: Event, bearer: &Bearer, factory: Option<&str>, reason: &str) {
        self.audit.record(event, bearer, factory, reason);
    }

    /// For a config and its data directory.
    pub fn new(config: &ServerConfig, data_dir: &Path) -> Ingest {
        Ingest {
            admission: admission::Admission::new(&config.ingest),
            audit: audit::Audit::new(data_dir),
            unmapped: synced::SyncedFile::new(data_dir.join("unmapped.log")),
        }
    }
}

type Params = Query<HashMap<String, String>>;

/// `POST /api/v2/write`.
pub async fn write_v2(
    State(app): State<AppState>,
    Query(params): Params,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, WriteError> {
    let precision = match params.get("precision").map(String::as_str) {
        None | Some("") => Precision::Ns,
        Some(p) => Precision::parse(p)
            .ok_or_else(|| ApiError::invalid(format!("precision \"{p}\": expected one of ns, us, ms, s")))?,
    };
    if params.get("bucket").is_none_or(|b| b.is_empty()) && params.get("bucketID").is_none_or(|b| b.is_empty()) {
        return Err(
            ApiError::invalid("bucket: missing; an InfluxDB v2 write names its bucket (any name is taken)").into()
        );
    }
    let token = auth::presented(&headers, None);
    accept(app, token.as_deref(), precision, &headers, body).await
}

/// `POST /write` (InfluxDB 1.x).
pub async fn write_v1(
    State(app): State<AppState>,
    Query(params): Params,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, WriteError> {
    let run = async {
        let precision = match params.get("precision").map(String::as_str) {
            None | Some("") => Precision::Ns,
            Some(p) => Precision::parse_v1(p)
                .ok_or_else(|| ApiError::invalid(format!("precision \"{p}\": expected one of n, u, ms, s, m, h")))?,
        };
        if params.get("db").is_none_or(|d| d.is_empty()) {
            return Err(ApiError::invalid("database is required: send db=<name> (any name is taken)").into());
        }
        let token = auth::presented(&headers, params.get("p").map(String::as_str));
        accept(app, token.as_deref(), precision, &headers, body).await
    };
    run.await.map_err(WriteError::v1)
}

/// A write's error: the API's, or a body that did not arrive in time (408, which the API's
/// error type does not speak; the same InfluxDB-shaped body).
#[derive(Debug)]
pub enum WriteError {
    /// Any of the API's errors.
    Api(ApiError),
    /// The body did not arrive within `body_read_timeout_ms`.
    BodyTimeout {
        /// What happened, for the client.
        message: String,
        /// In the shape of InfluxDB 1.x's `/write` (with `"error"`).
        v1: bool,
    },
}

impl WriteError {
    fn v1(self) -> WriteError {
        match self {
            WriteError::Api(e) => WriteError::Api(e.v1()),
            WriteError::BodyTimeout { message, .. } => WriteError::BodyTimeout { message, v1: true },
        }
    }
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> WriteError {
        WriteError::Api(e)
    }
}

impl axum::response::IntoResponse for WriteError {
    fn into_response(self) -> axum::response::Response {
        match self {
            WriteError::Api(e) => e.into_response(),
            WriteError::BodyTimeout { message, v1 } => {
                let body = match v1 {
                    false => serde_json::json!({ "code": "request timeout", "message": message }),
                    true => serde_json::json!({ "code": "request timeout", "message": message, "error": message }),
                };
                // The rest of the body is not read: the connection closes after the answer.
                let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                response
            }
        }
    }
}

/// Both endpoints, once the query is read.
async fn accept(
    app: AppState,
    token: Option<&str>,
    precision: Precision,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode, WriteError> {
    let token = token.ok_or_else(|| ApiError::unauthorized("missing token: send Authorization: Token <token>"))?;
    let bearer = app.tokens.check(token).ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
    if !matches!(bearer.grant, Grant::Write { .. }) {
        let reason = format!("a {} token cannot write; use the factory's write token", bearer.grant.kind());
        let (audit_app, audit_reason) = (app.clone(), reason.clone());
        // The audit record is synced to disk: blocking work.
        let recorded = tokio::task::spawn_blocking(move || {
            audit_app.ingest.audit.record(Event::Forbidden, &bearer, None, &audit_reason)
        });
        recorded.await.map_err(|e| ApiError::internal(format!("audit task: {e}")))?;
        return Err(ApiError::forbidden(reason).into());
    }
    let encoding = body::encoding(headers)?;
    let max_bytes = app.config.server.max_body_bytes;
    body::check_declared_length(headers, max_bytes)?;

    let _slot = app.ingest.admission.enter().await?;
    let timeout_ms = app.config.server.body_read_timeout_ms;
    // The slot is held while the body arrives: a client that stalls mid-upload must let go.
    let raw = match tokio::time::timeout(Duration::from_millis(timeout_ms), body::read(body, max_bytes)).await {
        Ok(read) => read?,
        Err(_) => {
            tracing::warn!(
                factory = bearer.grant.factory().unwrap_or_default(),
                timeout_ms,
                "Write refused: body too slow"
            );
            return Err(WriteError::BodyTimeout {
                message: format!(
                    "the request body did not arrive within body_read_timeout_ms ({timeout_ms} ms); send it faster or in smaller batches"
                ),
                v1: false,
            });
        }
    };
    let now_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    let task_app = app.clone();
    // Decompression, decoding and the fsync are blocking work: off the async threads.
    tokio::task::spawn_blocking(move || {
        let text = match encoding {
            body::Encoding::Identity => std::borrow::Cow::Borrowed(&raw[..]),
            body::Encoding::Gzip => std::borrow::Cow::Owned(body::gunzip(&raw, max_bytes)?),
        };
        store_batch(&task_app, &bearer, &text, precision, now_ns)
    })
    .await
    .map_err(|e| ApiError::internal(format!("write task: {e}")))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Decodes, validates and stores one body, then hands what is new to the compliance thread.
fn store_batch(app: &App, bearer: &Bearer, body: &[u8], precision: Precision, now_ns: i64) -> Result<(), ApiError> {
    let Grant::Write { factory } = &bearer.grant else {
        return Err(ApiError::forbidden("not a write token"));
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        ApiError::invalid(format!("line {line}: not UTF-8 (byte {} of the body)", e.valid_up_to()))
    })?;
    let max_future_ns = now_ns.saturating_add(app.config.server.max_future_s as i64 * 1_000_000_000);
    let cx = DecodeContext {
        precision,
        default_time_ns: now_ns,
        mappings: &app.config.ingest.mapping,
        factory: Some(factory),
    };

    // A token writes for one factory, so every accepted line is of this one: look it up once.
    let registry = app.registry();
    let registered = registry.factory(factory).map(|(_, f)| f);
    let mut parameters = Parameters::default();
    // Every reading is a `key=value` of the body: one allocation for the batch, not a doubling
    // series of them. Capped: a body of nothing but `=` must not reserve gigabytes.
    let estimate = memchr::memchr_iter(b'=', text.as_bytes()).count().min(MAX_BATCH_RESERVE);
    let mut batch: Vec<Row<'_>> = Vec::with_capacity(estimate);
    let mut unmapped: Vec<Reading> = Vec::new();
    let mut forbidden = None;
    let decoded = decode_rows(text, &cx, |line, rows| {
        // A line's rows share kind, factory, point and time (the decoder makes one line of
        // one instant at one point): those are checked once per line, the parameter per row.
        let Some(first) = rows.first() else { return Ok(()) };
        debug_assert!(rows.iter().all(|r| r.kind == first.kind
            && r.factory == first.factory
            && r.point == first.point
            && r.time_ns == first.time_ns));
        if first.factory != factory.as_str() {
            let reason = format!("line {line}: factory \"{}\" is not the token's factory", first.factory);
            forbidden = Some((first.factory.to_string(), reason));
            return Err("another factory".into());
        }
        check_line(app, registered, first, max_future_ns)?;
        for mut r in rows.drain(..) {
            match check(app, &mut parameters, &mut r)? {
                Checked::Known => batch.push(r),
                Checked::Unmapped => unmapped.push(r.to_reading()),
            }
        }
        Ok(())
    });
    if let Some((other, reason)) = forbidden {
        app.ingest.audit.record(Event::Forbidden, bearer, Some(&other), &reason);
        return Err(ApiError::forbidden(reason));
    }
    decoded.map_err(|e| ApiError::invalid(e.to_string()))?;

    let measured = |series, _, r: &Row<'_>| Measured {
        series,
        time_ns: r.time_ns,
        value: r.value,
        quality: r.quality,
        below_detection_limit: r.below_detection_limit,
    };
    let (measured, appended) = app.store.append_rows(&batch, measured).map_err(|e| match e {
        StoreError::Rewrite { .. } => {
            let reason = e.to_string();
            app.ingest.audit.record(Event::Rewrite, bearer, Some(factory), &reason);
            ApiError::conflict(reason)
        }
        StoreError::Contradiction { .. } => ApiError::invalid(e.to_string()),
        e => ApiError::internal(e.to_string()),
    })?;
    tracing::debug!(%factory, stored = appended.stored, duplicates = appended.duplicates, "Write accepted");
    if !unmapped.is_empty() {
        // After the store took the batch, so a refused batch leaves nothing here either. A
        // failure answers 500 and the client re-sends: the store keeps one copy, this log may
        // hold two, which a replay stores once.
        let header = format!("# received {} token {}\n", jiff::Timestamp::now(), bearer.id);
        app.ingest
            .unmapped
            .append(&(header + &encode(&unmapped)))
            .map_err(|e| ApiError::internal(format!("{}: {e}", app.ingest.unmapped.path().display())))?;
        tracing::info!(%factory, readings = unmapped.len(), "Stored readings of unknown parameters as unmapped");
    }

    app.compliance.accepted(measured);
    Ok(())
}

/// At most this many rows are reserved ahead for a batch (≈ 6 MB); more grow as needed.
const MAX_BATCH_RESERVE: usize = 65_536;

/// What a reading that passed its checks is.
enum Checked {
    /// Of a catalog parameter: stored and judged.
    Known,
    /// Of a parameter the catalog does not know, kept by `store_unmapped`.
    Unmapped,
}

/// The catalog entries a batch has used: a batch repeats a handful of parameters thousands of
/// times, and this spares a catalog lookup (and its key allocation) per reading.
#[derive(Default)]
struct Parameters {
    seen: Vec<(Kind, String, Option<&'static Parameter>)>,
    /// Where the next reading's parameter likely is: lines repeat their fields' order.
    next: usize,
}

impl Parameters {
    fn get(&mut self, kind: Kind, code: &str) -> Option<&'static Parameter> {
        let is = |(k, c, _): &(Kind, String, Option<&'static Parameter>)| *k == kind && c == code;
        let found = match self.seen.get(self.next) {
            Some(e) if is(e) => Some(self.next),
            _ => self.seen.iter().position(is),
        };
        if let Some(i) = found {
            self.next = (i + 1) % self.seen.len();
            return self.seen[i].2;
        }
        let p = Catalog::builtin().get(kind, code);
        // Bounded: a batch of ever new (unknown) names must not make every lookup slower.
        if self.seen.len() < 64 {
            self.seen.push((kind, code.to_string(), p));
        }
        p
    }
}

/// Checks what a line's readings share against the registry: the point, its kind, the time.
fn check_line(app: &App, factory: Option<&Factory>, r: &Row<'_>, max_future_ns: i64) -> Result<(), String> {
    let Some(point) = factory.and_then(|f| f.point.iter().find(|p| p.id == r.point)) else {
        return Err(format!("unknown point \"{}\" of factory \"{}\"", r.point, r.factory));
    };
    if point.kind != r.kind {
        return Err(format!("point \"{}\" is an {} point, not {}", r.point, point.kind, r.kind));
    }
    if r.time_ns < app.config.server.earliest_reading.0 {
        return Err(format!(
            "timestamp {} ns is before {} (earliest_reading)",
            r.time_ns,
            crate::compliance::period::local(app.config.server.earliest_reading.0)
        ));
    }
    if r.time_ns > max_future_ns {
        return Err(format!(
            "timestamp {} ns is more than {} s in the future (max_future_s)",
            r.time_ns, app.config.server.max_future_s
        ));
    }
    Ok(())
}

/// Checks one reading's parameter against the catalog; marks implausible values suspect.
fn check(app: &App, parameters: &mut Parameters, r: &mut Row<'_>) -> Result<Checked, String> {
    let parameter = match parameters.get(r.kind, &r.parameter) {
        Some(p) => p,
        None => {
            let e = UnitError::UnknownParameter { kind: r.kind, code: r.parameter.to_string() };
            return match app.config.ingest.unknown_parameters {
                UnknownParameters::Refuse => Err(e.to_string()),
                UnknownParameters::StoreUnmapped => Ok(Checked::Unmapped),
            };
        }
    };
    let [low, high] = parameter.plausible;
    if r.quality == Quality::Valid && !(low..=high).contains(&r.value) {
        r.quality = Quality::Suspect;
    }
    Ok(Checked::Known)
}
