//! Ingest: a batch of line protocol from a factory's write token (the write endpoints are
//! in [`crate::http`]), decoded, checked against the catalog and the site registry, and
//! accepted whole (once on disk) or refused whole, naming the first bad line: what is
//! malformed or unknown, a line of another factory, a rewrite of stored history (both
//! recorded in the audit log). Writes are admitted under load by [`Ingest::admit`].
//!
//! With partial writes (`[ingest] partial_writes`, or a token created with
//! `--partial-writes`) a line that is malformed, unknown to the catalog or the registry, or
//! outside the time window is refused alone: the other lines are stored (in one store
//! append, a line's readings together), the refused ones kept in the dead letters
//! ([`DeadLetters`], synced before the answer) and listed in the answer. What is not about
//! one line still refuses the whole batch: a line of another factory (403) and a rewrite of
//! stored history (409) are attempts on what the token may not change, audited, and a batch
//! that contradicts itself or is not UTF-8 has no good part to tell apart.
//!
//! A parameter the catalog does not know is refused, naming it, unless `[ingest]
//! unknown_parameters = "store_unmapped"`: then its readings go, as canonical line protocol,
//! to `<data_dir>/unmapped.log` (synced before the 204), outside the store and the judgement,
//! to be replayed once the catalog knows them.

mod admission;
mod audit;
mod dead_letters;
mod synced;

use std::path::Path;

use eitwatch_config::catalog::UnitError;
use eitwatch_config::line_protocol::{DecodeContext, Precision, Row, decode_lines, encode};
use eitwatch_config::reading::Kind;
use eitwatch_config::reading::{Quality, Reading};
use eitwatch_config::server_config::{ServerConfig, UnknownParameters};
use eitwatch_config::site::Factory;
use eitwatch_config::{Catalog, Parameter};

pub use admission::{Permit, Refused};
pub use audit::Event;
pub use dead_letters::{DeadLetter, DeadLetterError, DeadLetters, list as list_dead_letters};

use crate::App;
use crate::auth::{Bearer, Grant};
use crate::compliance::Measured;
use crate::store::StoreError;
use dead_letters::precision_name;

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Malformed, or unknown to the catalog or the registry (the first bad line named).
    #[error("{0}")]
    Invalid(String),
    /// A line of another factory, or a token that may not write (recorded in the audit log).
    #[error("{0}")]
    Forbidden(String),
    /// A different value for a stored series and time (recorded in the audit log).
    #[error("{0}")]
    Rewrite(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The unmapped-readings log could not be written.
    #[error("{path}: {source}")]
    Unmapped {
        /// The log.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The dead letters could not be written.
    #[error(transparent)]
    DeadLetters(DeadLetterError),
}

/// Ingest's own state: the admission gate and the audit log.
#[derive(Debug)]
pub struct Ingest {
    admission: admission::Admission,
    audit: audit::Audit,
    unmapped: synced::SyncedFile,
    dead_letters: DeadLetters,
}

impl Ingest {
    /// A write slot for a write with token `token_id`, held until the permit drops; refused
    /// when too many writes wait or one waited too long.
    pub async fn admit(&self, token_id: &str) -> Result<Permit, Refused> {
        self.admission.enter(token_id).await
    }

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
            dead_letters: DeadLetters::new(data_dir),
        }
    }
}

/// A line a partial write refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its 1-based number in the batch.
    pub line_number: usize,
    /// The line.
    pub line: String,
    /// Why.
    pub reason: String,
}

/// What a write stored, told by what it did not.
#[derive(Debug, Default)]
pub struct Written {
    /// The first [`MAX_LISTED`] refused lines (a partial write's), in order.
    pub rejected: Vec<Rejected>,
    /// How many lines were refused in all.
    pub rejected_total: usize,
    /// Readings accepted: stored, already stored identically, or kept as unmapped.
    pub accepted: usize,
}

/// At most this many refused lines are listed in an answer (as InfluxDB 3 does); every one
/// is in the dead letters.
pub const MAX_LISTED: usize = 100;

/// How a batch meets a bad line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The batch is refused.
    Whole,
    /// The line is refused; the rest stored.
    Partial,
}

/// Decodes, validates and stores one body, then hands what is new to the compliance thread.
/// A partial write's refused lines are in the dead letters, on disk, when it returns.
pub fn store_batch(
    app: &App,
    bearer: &Bearer,
    body: &[u8],
    precision: Precision,
    now_ns: i64,
) -> Result<Written, IngestError> {
    let Grant::Write { factory } = &bearer.grant else {
        return Err(IngestError::Forbidden("not a write token".into()));
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        IngestError::Invalid(format!("line {line}: not UTF-8 (byte {} of the body)", e.valid_up_to()))
    })?;
    let mode = match bearer.partial_writes || app.config.ingest.partial_writes {
        true => Mode::Partial,
        false => Mode::Whole,
    };
    let (rejected, accepted) = write_lines(app, bearer, factory, text, precision, now_ns, mode)?;
    if rejected.is_empty() {
        return Ok(Written { accepted, ..Written::default() });
    }
    let received = jiff::Timestamp::from_nanosecond(now_ns as i128).unwrap_or_else(|_| jiff::Timestamp::now());
    let letters: Vec<DeadLetter> = rejected
        .iter()
        .map(|r| DeadLetter {
            received: received.to_string(),
            received_ns: now_ns,
            token_id: bearer.id.clone(),
            factory: factory.clone(),
            precision: precision_name(precision).into(),
            line_number: r.line_number,
            line: r.line.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    app.ingest.dead_letters.append(&letters).map_err(IngestError::DeadLetters)?;
    tracing::warn!(%factory, token_id = %bearer.id, rejected = rejected.len(), first = %rejected[0].reason,
        "Partial write: lines refused, kept in the dead letters");
    let rejected_total = rejected.len();
    Ok(Written { rejected: rejected.into_iter().take(MAX_LISTED).collect(), rejected_total, accepted })
}

/// Hands every dead letter to ingest again, as its token wrote it then; what is stored
/// leaves the dead letters, what is still refused stays, with its reason now. Returns how
/// many were stored and how many stay.
pub fn replay_dead_letters(app: &App) -> Result<(usize, usize), IngestError> {
    app.ingest
        .dead_letters
        .replay(|letters| {
            let mut remaining = Vec::new();
            // A batch's letters go back together, one store append, when their lines split
            // at every newline (no quote nor backslash); the others one by one.
            let mut groups: Vec<Vec<DeadLetter>> = Vec::new();
            for letter in letters {
                let plain = !letter.line.contains(['"', '\\', '\n']);
                match groups.last_mut() {
                    Some(g)
                        if plain
                            && g.iter().all(|l| !l.line.contains(['"', '\\', '\n']))
                            && (&g[0].token_id, &g[0].factory, &g[0].precision, g[0].received_ns)
                                == (&letter.token_id, &letter.factory, &letter.precision, letter.received_ns) =>
                    {
                        g.push(letter)
                    }
                    _ => groups.push(vec![letter]),
                }
            }
            for group in groups {
                remaining.extend(replay_group(app, group));
            }
            remaining
        })
        .map_err(IngestError::DeadLetters)
}

/// One batch's dead letters, written again; returns those still refused.
fn replay_group(app: &App, mut group: Vec<DeadLetter>) -> Vec<DeadLetter> {
    let Some(precision) = Precision::parse_v1(&group[0].precision) else {
        return group;
    };
    let factory = group[0].factory.clone();
    let bearer = Bearer {
        id: group[0].token_id.clone(),
        grant: Grant::Write { factory: factory.clone() },
        partial_writes: true,
    };
    let body: String = group.iter().map(|l| l.line.as_str()).collect::<Vec<_>>().join("\n");
    match write_lines(app, &bearer, &factory, &body, precision, group[0].received_ns, Mode::Partial) {
        Ok((rejected, _)) => {
            let mut still = Vec::with_capacity(rejected.len());
            for r in rejected {
                if let Some(letter) = group.get_mut(r.line_number - 1) {
                    letter.reason = r.reason;
                    still.push(letter.clone());
                }
            }
            tracing::info!(%factory, stored = group.len() - still.len(), still = still.len(),
                "Dead letters replayed");
            still
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(%factory, %reason, "Dead letters refused again");
            for letter in &mut group {
                letter.reason.clone_from(&reason);
            }
            group
        }
    }
}

/// Decodes, checks and stores a body's lines; returns the lines refused (a partial write's;
/// none otherwise) and how many readings were accepted.
fn write_lines(
    app: &App,
    bearer: &Bearer,
    factory: &String,
    text: &str,
    precision: Precision,
    now_ns: i64,
    mode: Mode,
) -> Result<(Vec<Rejected>, usize), IngestError> {
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
    let mut rejected = Vec::new();
    let decoded = decode_lines(text, &cx, |line, line_text, rows| {
        let checked = rows.and_then(|rows| {
            // A line's rows share kind, factory, point and time (the decoder makes one line of
            // one instant at one point): those are checked once per line, the parameter per row.
            let Some(first) = rows.first() else { return Ok(()) };
            debug_assert!(rows.iter().all(|r| r.kind == first.kind
                && r.factory == first.factory
                && r.point == first.point
                && r.time_ns == first.time_ns));
            if !crate::names::same(&first.factory, factory) {
                let reason = format!("line {line}: factory \"{}\" is not the token's factory", first.factory);
                forbidden = Some((first.factory.to_string(), reason));
                return Err("another factory".into());
            }
            check_line(app, registered, first, max_future_ns)?;
            // The line's readings are kept together or not at all.
            let (in_batch, in_unmapped) = (batch.len(), unmapped.len());
            for mut r in rows.drain(..) {
                let checked = check(app, &mut parameters, &mut r);
                match checked {
                    Ok(Checked::Known) => batch.push(r),
                    Ok(Checked::Unmapped) => unmapped.push(r.to_reading()),
                    Err(reason) => {
                        batch.truncate(in_batch);
                        unmapped.truncate(in_unmapped);
                        return Err(reason);
                    }
                }
            }
            Ok(())
        });
        match (checked, mode) {
            (Err(reason), Mode::Partial) if forbidden.is_none() => {
                rejected.push(Rejected { line_number: line, line: line_text.to_string(), reason });
                Ok(())
            }
            (checked, _) => checked,
        }
    });
    if let Some((other, reason)) = forbidden {
        app.ingest.audit.record(Event::Forbidden, bearer, Some(&other), &reason);
        return Err(IngestError::Forbidden(reason));
    }
    decoded.map_err(|e| IngestError::Invalid(e.to_string()))?;

    let measured = |series, _, r: &Row<'_>| Measured {
        series,
        time_ns: r.time_ns,
        value: r.value,
        quality: r.quality,
        below_detection_limit: r.below_detection_limit,
    };
    // Stored and handed over as one step for the engine's checkpoint (see `Monitor::admit`).
    let admitted = app.compliance.admit();
    let (measured, appended) = app.store.append_rows(&batch, measured).map_err(|e| match e {
        StoreError::Rewrite { .. } => {
            let reason = e.to_string();
            app.ingest.audit.record(Event::Rewrite, bearer, Some(factory), &reason);
            IngestError::Rewrite(reason)
        }
        e @ StoreError::Contradiction { .. } => IngestError::Invalid(e.to_string()),
        e => IngestError::Store(e),
    })?;
    tracing::debug!(%factory, stored = appended.stored, duplicates = appended.duplicates, "Write accepted");
    app.metrics.logged_readings.fetch_add(appended.stored as u64, std::sync::atomic::Ordering::Relaxed);
    // Judged whatever happens next: the store has them.
    app.compliance.accepted(measured);
    drop(admitted);
    if !unmapped.is_empty() {
        // After the store took the batch, so a refused batch leaves nothing here either. A
        // failure answers 500 and the client re-sends: the store keeps one copy, this log may
        // hold two, which a replay stores once.
        let header = format!("# received {} token {}\n", jiff::Timestamp::now(), bearer.id);
        app.ingest
            .unmapped
            .append(&(header + &encode(&unmapped)))
            .map_err(|source| IngestError::Unmapped { path: app.ingest.unmapped.path().to_path_buf(), source })?;
        tracing::info!(%factory, readings = unmapped.len(), "Stored readings of unknown parameters as unmapped");
    }

    Ok((rejected, batch.len() + unmapped.len()))
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
        let is = |(k, c, _): &(Kind, String, Option<&'static Parameter>)| *k == kind && crate::names::same(c, code);
        let found = match self.seen.get(self.next) {
            Some(e) if is(e) => Some(self.next),
            _ => self.seen.iter().position(is),
        };
        if let Some(i) = found {
            // Not `%`: a division per reading costs more than the rest of the lookup.
            self.next = if i + 1 == self.seen.len() { 0 } else { i + 1 };
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
    let Some(point) = factory.and_then(|f| f.point.iter().find(|p| crate::names::same(&p.id, &r.point))) else {
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
