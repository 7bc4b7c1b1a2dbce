//! `GET /api/v1/readings`: stored readings (the value in force where corrected), or per
//! bucket of `every_s` seconds their min/max/mean/count, for charts.
//!
//! ## Bounded
//! A response holds at most `limit` readings (or buckets), by series key then time; when
//! more match, it ends with `next_cursor`, which the same query with `cursor=` continues
//! from. A cursor names the first reading (or bucket) not yet given, so a page boundary in
//! the middle of a series or at a time shared by several series neither drops nor repeats
//! one. Pages are keyed on what was given, not counted by offset, so writes between pages
//! do not shift them.
//!
//! The body is streamed: the store is read `SLICE_READINGS` at a time on the blocking
//! pool (the store's lock held for one slice only), each slice serialized and sent before
//! the next is read. What a read holds in memory is one slice and its JSON, whatever the
//! page size. Each client (token, or address for an anonymous reader) has at most
//! `READS_PER_CLIENT` reads in progress, the one being streamed included; more are
//! answered 429 with `Retry-After`.
//!
//! ## Parquet
//! `format=parquet` answers every matching reading as one Apache Parquet file
//! ([`crate::export`]), written a row group at a time as the scan advances: same scope,
//! filters and admission as JSON, no pages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eitwatch_config::reading::Kind;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody, Filtered, ListQuery, ReadErrors, Selection, Span, covers, extract, range, schema};
use crate::compliance::Filter;
use crate::corrections::Correction;
use crate::store::{Resume, Scan, SeriesKey, Stored, Summing};
use crate::{AppState, export};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(readings))
}

/// Readings (or buckets) in a response when the query gives no `limit`.
const DEFAULT_LIMIT: usize = 100_000;
/// The largest `limit` taken: a page streams at any size, this bounds how long one takes.
const MAX_LIMIT: usize = 1_000_000;
/// Readings taken from the store, serialized and sent at a time.
const SLICE_READINGS: usize = 4096;
/// Reads one client may have in progress.
const READS_PER_CLIENT: usize = 4;
/// What a client refused for too many reads is told to wait.
const RETRY_AFTER_S: u64 = 1;

/// The readings' own keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadingsQuery {
    /// Buckets of this many seconds (aligned to the epoch) instead of single readings.
    #[param(value_type = Option<i64>, minimum = 1)]
    every_s: Option<String>,
    /// At most this many readings (or buckets) in the response (default 100 000, at most
    /// 1 000 000).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000)]
    limit: Option<String>,
    /// Continue where a response with this `next_cursor` stopped (send the same query).
    cursor: Option<String>,
    /// `json` (the default), or `parquet`: every matching reading in one Apache Parquet file
    /// (`application/vnd.apache.parquet`, streamed a row group at a time; see `docs/export.md`),
    /// without `every_s`, `limit` or `cursor`.
    #[param(value_type = Option<String>)]
    format: Option<String>,
}

impl ListQuery for ReadingsQuery {}

/// One stored reading.
#[derive(Debug, Serialize, ToSchema)]
struct Reading<'a> {
    factory: &'a str,
    point: &'a str,
    #[schema(schema_with = schema::kind)]
    kind: Kind,
    parameter: &'a str,
    /// Measurement time, ns since the epoch.
    time_ns: i64,
    /// The value in force (the last correction's, if corrected), canonical unit.
    value: f64,
    #[schema(schema_with = schema::quality)]
    quality: eitwatch_config::reading::Quality,
    #[schema(schema_with = schema::source)]
    source: eitwatch_config::reading::Source,
    below_detection_limit: bool,
    /// The value stored (only for a corrected reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_value: Option<f64>,
    /// Every correction of it, oldest first (only for a corrected reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = corrections)]
    corrections: Option<Vec<Correction>>,
}

fn corrections() -> utoipa::openapi::Array {
    schema::records("A correction (see GET /api/v1/corrections)")
}

/// One bucket of a series.
#[derive(Debug, Serialize, ToSchema)]
struct Bucket {
    /// Start, ns since the epoch.
    start_ns: i64,
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
}

/// A series in buckets (a series cut by a page boundary continues on the next page).
// The body is written piece by piece (`Page`); these types are its documented shape.
#[allow(dead_code)]
#[derive(Debug, Serialize, ToSchema)]
struct Series<'a> {
    factory: &'a str,
    point: &'a str,
    #[schema(schema_with = schema::kind)]
    kind: Kind,
    parameter: &'a str,
    buckets: Vec<Bucket>,
}

/// Readings, or buckets when `every_s` is given.
#[allow(dead_code)]
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum Readings<'a> {
    /// Single readings, by series then time.
    Readings {
        readings: Vec<Reading<'a>>,
        /// Present when more readings match: send the same query with `cursor` set to it.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
    /// Buckets per series.
    Buckets {
        every_s: i64,
        series: Vec<Series<'a>>,
        /// Present when more buckets match: send the same query with `cursor` set to it.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    },
}

/// Stored readings, or buckets of them, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/readings",
    operation_id = "get_readings",
    tag = "readings",
    params(Selection, Span, ReadingsQuery),
    responses(
        (status = 200, content(
            (Readings = "application/json"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )),
        ReadErrors,
        (status = 429, description = "Too many reads of this client in progress; see `Retry-After`", body = ErrorBody),
    ),
)]
async fn readings(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Filtered { filter, own }: Filtered<ReadingsQuery>,
) -> Result<Response, ApiError> {
    let every_s = match &own.every_s {
        Some(every) => Some(every.parse::<i64>().ok().filter(|s| *s > 0).ok_or_else(|| {
            ApiError::invalid(format!("every_s: \"{every}\" is not a positive whole number of seconds"))
        })?),
        None => None,
    };
    let limit =
        match &own.limit {
            Some(l) => l.parse::<usize>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                ApiError::invalid(format!("limit: \"{l}\" is not a whole number from 1 to {MAX_LIMIT}"))
            })?,
            None => DEFAULT_LIMIT,
        };
    let parquet = match own.format.as_deref() {
        None | Some("json") => false,
        Some("parquet") => {
            for (key, given) in
                [("every_s", own.every_s.is_some()), ("limit", own.limit.is_some()), ("cursor", own.cursor.is_some())]
            {
                if given {
                    return Err(ApiError::invalid(format!(
                        "{key}: not taken with format=parquet (the file holds every matching reading)"
                    )));
                }
            }
            true
        }
        Some(other) => return Err(ApiError::invalid(format!("format: \"{other}\" is not one of json, parquet"))),
    };
    let resume = own.cursor.as_deref().map(cursor::decode).transpose()?;
    let permit = admit(&app, &headers, peer)?;
    if parquet {
        return parquet_file(app, filter, permit).await;
    }
    let (from_ns, to_ns) = range(&filter);
    let task = app.clone();
    let scan = tokio::task::spawn_blocking(move || {
        task.store.scan(
            |k| covers(&task, &filter, &k.factory, &k.point, [&*k.parameter]),
            from_ns,
            to_ns,
            resume.as_ref(),
        )
    })
    .await?;
    let form = match every_s {
        Some(every_s) => Form::Buckets { every_s, summing: Summing::new(every_s.saturating_mul(1_000_000_000)) },
        None => Form::Readings,
    };
    let page = Page {
        app,
        scan,
        form,
        left: limit,
        started: false,
        done: false,
        series: None,
        first_item: true,
        slice: Vec::new(),
        _permit: permit,
    };
    let body = futures_util::stream::unfold(Some(page), |page| async move {
        let mut page = page?;
        match tokio::task::spawn_blocking(move || page.next_piece().map(|piece| (piece, page))).await {
            Ok(Some((piece, page))) => Some((Ok(Bytes::from(piece)), Some(page))),
            Ok(None) => None,
            // The response is already under way: cut it short rather than end it as if whole.
            Err(e) => {
                tracing::error!(error = %e, "A read's blocking task failed");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Body::from_stream(body))
        .into_response())
}

/// Every reading the filter covers as one Parquet file, streamed a row group at a time.
async fn parquet_file(app: AppState, filter: Filter, permit: OwnedSemaphorePermit) -> Result<Response, ApiError> {
    let (from_ns, to_ns) = range(&filter);
    let query = export::Query {
        area: filter.area.clone(),
        factory: filter.factory.clone(),
        point: filter.point.clone(),
        parameter: filter.parameter.clone(),
        from_ns: filter.from_ns,
        to_ns: filter.to_ns,
    };
    let task = app.clone();
    let scan = tokio::task::spawn_blocking(move || {
        task.store.scan(|k| covers(&task, &filter, &k.factory, &k.point, [&*k.parameter]), from_ns, to_ns, None)
    })
    .await?;
    let export = export::ReadingsExport::new(scan, app.registry(), query).map_err(|e| {
        tracing::error!(error = %e, "Cannot start a Parquet export");
        ApiError::internal(e.to_string())
    })?;
    let body = futures_util::stream::unfold(Some((app, export, permit)), |state| async move {
        let (app, mut export, permit) = state?;
        let read = tokio::task::spawn_blocking(move || {
            let piece = export.next_piece(&app.store, &app.corrections);
            (piece, app, export)
        })
        .await;
        match read {
            Ok((Some(Ok((bytes, _))), app, export)) => Some((Ok(Bytes::from(bytes)), Some((app, export, permit)))),
            Ok((None, ..)) => None,
            // The response is already under way: cut it short rather than end it as if whole.
            Ok((Some(Err(e)), ..)) => {
                tracing::error!(error = %e, "A Parquet export failed");
                Some((Err(std::io::Error::other(e)), None))
            }
            Err(e) => {
                tracing::error!(error = %e, "A Parquet export's blocking task failed");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apache.parquet")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"readings.parquet\"")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Reads in progress per client (token id, or address of an anonymous reader). An entry
/// no read holds is dropped when another client is admitted.
static READERS: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Default::default);

/// A slot for a read of this client, or 429.
fn admit(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<OwnedSemaphorePermit, ApiError> {
    let client = match crate::auth::presented(extract::authorization(headers), None).and_then(|t| app.tokens.check(&t))
    {
        Some(bearer) => format!("token {}", bearer.id),
        // Behind a trusted proxy, the address it forwards for.
        None => match extract::client(&app.config.api.trusted_proxies, headers, peer) {
            Some(ip) => format!("address {ip}"),
            None => "an unknown address".to_string(),
        },
    };
    let slots = {
        let mut readers = READERS.lock().unwrap_or_else(|p| p.into_inner());
        if !readers.contains_key(&client) {
            readers.retain(|_, s| Arc::strong_count(s) > 1);
        }
        readers.entry(client.clone()).or_insert_with(|| Arc::new(Semaphore::new(READS_PER_CLIENT))).clone()
    };
    slots.try_acquire_owned().map_err(|_| {
        tracing::info!(%client, reads = READS_PER_CLIENT, "Read refused: too many in progress for this client");
        ApiError::too_many_requests(
            format!("{client} has {READS_PER_CLIENT} reads in progress; wait for one to finish"),
            RETRY_AFTER_S,
        )
    })
}

/// What a page is made of.
enum Form {
    Readings,
    Buckets { every_s: i64, summing: Summing },
}

/// A response being written: its read of the store and how far the JSON got.
struct Page {
    app: AppState,
    scan: Scan,
    form: Form,
    /// Readings (or buckets) the page may still take.
    left: usize,
    started: bool,
    done: bool,
    /// For buckets: the series (position in the scan) whose `buckets` array is open.
    series: Option<usize>,
    /// Whether the next item is the first of its array.
    first_item: bool,
    slice: Vec<(usize, i64, Stored)>,
    _permit: OwnedSemaphorePermit,
}

/// A piece is sent once it holds this much (or the page is done).
const PIECE_BYTES: usize = 64 * 1024;

impl Page {
    /// The next piece of the body, `None` after the last. Blocking: reads the store.
    fn next_piece(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(PIECE_BYTES);
        if !self.started {
            self.started = true;
            match self.form {
                Form::Readings => out.extend_from_slice(b"{\"readings\":["),
                Form::Buckets { every_s, .. } => {
                    out.extend_from_slice(format!("{{\"every_s\":{every_s},\"series\":[").as_bytes())
                }
            }
        }
        while !self.done && out.len() < PIECE_BYTES {
            match self.form {
                Form::Readings => self.readings(&mut out),
                Form::Buckets { .. } => self.buckets(&mut out),
            }
        }
        Some(out)
    }

    /// One slice of single readings.
    fn readings(&mut self, out: &mut Vec<u8>) {
        if self.left == 0 {
            // One more: whether the page ends the answer, or where the next starts.
            self.app.store.read(&mut self.scan, 1, &mut self.slice);
            let next = self.slice.first().map(|&(i, t, _)| Resume { key: self.scan.key(i).clone(), time_ns: t });
            return self.finish(out, next.as_ref());
        }
        if !self.app.store.read(&mut self.scan, SLICE_READINGS.min(self.left), &mut self.slice) {
            return self.finish(out, None);
        }
        self.left -= self.slice.len();
        let any_corrections = !self.app.corrections.is_empty();
        for &(i, t, s) in &self.slice {
            let k = self.scan.key(i);
            // A corrected reading shows the value in force, what was stored, and every correction.
            let corrections = if any_corrections {
                self.app.corrections.of(&k.factory, &k.point, &k.parameter, t)
            } else {
                Vec::new()
            };
            let corrected = corrections.last().map(|c| c.value);
            let reading = Reading {
                factory: &k.factory,
                point: &k.point,
                kind: k.kind,
                parameter: &k.parameter,
                time_ns: t,
                value: corrected.unwrap_or(s.value),
                quality: s.quality,
                source: s.source,
                below_detection_limit: s.below_detection_limit,
                stored_value: corrected.map(|_| s.value),
                corrections: corrected.map(|_| corrections),
            };
            if !std::mem::take(&mut self.first_item) {
                out.push(b',');
            }
            write_json(out, &reading);
        }
    }

    /// One slice of readings, summed into buckets; a bucket is written when it closes.
    fn buckets(&mut self, out: &mut Vec<u8>) {
        let Form::Buckets { summing, .. } = &mut self.form else { return };
        if !self.app.store.read(&mut self.scan, SLICE_READINGS, &mut self.slice) {
            let last = summing.take();
            if let Some(b) = last {
                write_bucket(out, &mut self.first_item, &b);
            }
            return self.finish(out, None);
        }
        for &(i, t, s) in &self.slice {
            let same_series = self.series == Some(i);
            let starts_bucket = !same_series || summing.open().is_none_or(|b| b.start_ns != summing.start_of(t));
            if starts_bucket && self.left == 0 {
                let next = Resume { key: self.scan.key(i).clone(), time_ns: summing.start_of(t) };
                if let Some(b) = summing.take() {
                    write_bucket(out, &mut self.first_item, &b);
                }
                return self.finish(out, Some(&next));
            }
            if !same_series {
                if let Some(b) = summing.take() {
                    write_bucket(out, &mut self.first_item, &b);
                }
                if self.series.is_some() {
                    out.extend_from_slice(b"]},");
                }
                let k = self.scan.key(i);
                out.push(b'{');
                for (name, value) in [
                    ("factory", &*k.factory),
                    ("point", &k.point),
                    ("kind", k.kind.as_str()),
                    ("parameter", &k.parameter),
                ] {
                    out.extend_from_slice(format!("\"{name}\":").as_bytes());
                    write_json(out, value);
                    out.push(b',');
                }
                out.extend_from_slice(b"\"buckets\":[");
                self.series = Some(i);
                self.first_item = true;
            }
            if starts_bucket {
                self.left -= 1;
            }
            if let Some(b) = summing.add(t, s.value) {
                write_bucket(out, &mut self.first_item, &b);
            }
        }
    }

    /// Closes the JSON, with where the next page starts when more match.
    fn finish(&mut self, out: &mut Vec<u8>, next: Option<&Resume>) {
        if matches!(self.form, Form::Buckets { .. }) && self.series.is_some() {
            out.extend_from_slice(b"]}");
        }
        out.push(b']');
        if let Some(next) = next {
            out.extend_from_slice(b",\"next_cursor\":");
            write_json(out, &cursor::encode(next));
        }
        out.push(b'}');
        self.done = true;
    }
}

fn write_bucket(out: &mut Vec<u8>, first_item: &mut bool, b: &crate::store::Bucket) {
    if !std::mem::take(first_item) {
        out.push(b',');
    }
    write_json(out, &Bucket { start_ns: b.start_ns, count: b.count, min: b.min, max: b.max, mean: b.mean });
}

fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Writing to a Vec fails only for a map with non-string keys, which nothing here has.
    if let Err(e) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(error = %e, "Cannot serialize a reading");
    }
}

/// The cursor: the first reading (or bucket) not yet given, as
/// `<kind>.<factory>.<point>.<parameter>.<time_ns>` with the names in hex (URL-safe, and
/// unambiguous whatever a name holds).
mod cursor {
    use eitwatch_config::reading::Kind;

    use super::{ApiError, Resume, SeriesKey};

    pub(super) fn encode(r: &Resume) -> String {
        let k = &r.key;
        format!(
            "{}.{}.{}.{}.{}",
            k.kind.as_str(),
            hex::encode(&*k.factory),
            hex::encode(&*k.point),
            hex::encode(&*k.parameter),
            r.time_ns
        )
    }

    pub(super) fn decode(text: &str) -> Result<Resume, ApiError> {
        let bad = || ApiError::invalid(format!("cursor: \"{text}\" is not a next_cursor this server gave"));
        let parts: Vec<&str> = text.split('.').collect();
        let [kind, factory, point, parameter, time_ns] = parts[..] else { return Err(bad()) };
        let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind).ok_or_else(bad)?;
        let name = |h: &str| -> Result<std::sync::Arc<str>, ApiError> {
            let bytes = hex::decode(h).map_err(|_| bad())?;
            String::from_utf8(bytes).map(Into::into).map_err(|_| bad())
        };
        Ok(Resume {
            key: SeriesKey { factory: name(factory)?, point: name(point)?, kind, parameter: name(parameter)? },
            time_ns: time_ns.parse().map_err(|_| bad())?,
        })
    }
}
