//! The server's metrics, served as Prometheus text on `GET /metrics`
//! ([`crate::http`]; the list with meanings is in `docs/operations.md#monitoring`).
//!
//! What happens on a hot path is counted with relaxed atomics and nothing else: a write's
//! answer by status, its latency in a histogram of atomics, the bytes and readings it
//! brought. Everything else is read when scraped from the state the server keeps anyway
//! (the store, the alert book, the compliance engine's progress, the notification
//! counters).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use eitwatch_config::prometheus::{Exposition, Histogram, Type};
use eitwatch_config::server_config::{AlertKind, Severity};

use crate::App;
use crate::notify::ChannelCounters;
use crate::notify::outbox::Channel;

/// The commit the server was built from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("EITWATCH_COMMIT");

/// The server's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The statuses a write is counted under; any other counts as `other`.
const STATUSES: [u16; 11] = [204, 400, 401, 403, 404, 408, 409, 413, 429, 500, 503];

/// Upper bounds of the write latency histogram, seconds.
static LATENCY_BOUNDS_S: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Counts by write answer status.
#[derive(Debug, Default)]
struct ByStatus([AtomicU64; STATUSES.len() + 1]);

impl ByStatus {
    fn add(&self, status: StatusCode, n: u64) {
        let i = STATUSES.iter().position(|s| *s == status.as_u16()).unwrap_or(STATUSES.len());
        self.0[i].fetch_add(n, Ordering::Relaxed);
    }

    fn rows(&self) -> impl Iterator<Item = (String, f64)> + '_ {
        let names = STATUSES.iter().map(u16::to_string).chain(std::iter::once("other".to_string()));
        names.zip(self.0.iter().map(|c| c.load(Ordering::Relaxed) as f64))
    }
}

/// The write endpoints' counts (`POST /api/v2/write`, `POST /write`).
#[derive(Debug)]
pub struct Writes {
    requests: ByStatus,
    refused_lines: ByStatus,
    readings_accepted: AtomicU64,
    bytes_received: AtomicU64,
    latency: Histogram,
}

impl Writes {
    /// A write answered `status` after `elapsed` (from the request to the answer).
    pub fn answered(&self, status: StatusCode, elapsed: Duration) {
        self.requests.add(status, 1);
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A body read whole: its bytes as received (before decompression).
    pub fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Readings stored (or already stored identically) by a write that was answered 204 or,
    /// a partial write, 400.
    pub fn accepted(&self, readings: usize) {
        self.readings_accepted.fetch_add(readings as u64, Ordering::Relaxed);
    }

    /// Lines of a body read whole that were refused with `status`: every line of a batch
    /// refused whole, a partial write's refused lines.
    pub fn refused(&self, status: StatusCode, lines: usize) {
        self.refused_lines.add(status, lines as u64);
    }
}

/// How far the InfluxDB write-through is behind the store.
#[derive(Debug)]
pub struct WriteThrough {
    configured: AtomicBool,
    written: AtomicU64,
    /// `written - logged` when it last caught up: what the readings logged before the start
    /// weigh (the backlog a restart left is not known in readings until it is caught up).
    offset: AtomicI64,
    caught_up: AtomicBool,
    caught_up_ns: AtomicI64,
}

impl WriteThrough {
    /// The write-through runs.
    pub fn started(&self) {
        self.configured.store(true, Ordering::Relaxed);
    }

    /// InfluxDB took `readings`.
    pub fn written(&self, readings: usize) {
        self.written.fetch_add(readings as u64, Ordering::Relaxed);
    }

    /// Found more to send.
    pub fn behind(&self) {
        self.caught_up.store(false, Ordering::Relaxed);
    }

    /// Sent everything durable; `logged` readings have been stored since the start.
    pub fn caught_up(&self, logged: u64, now_ns: i64) {
        let written = self.written.load(Ordering::Relaxed);
        self.offset.store(written as i64 - logged as i64, Ordering::Relaxed);
        self.caught_up_ns.store(now_ns, Ordering::Relaxed);
        self.caught_up.store(true, Ordering::Relaxed);
    }
}

/// Every counter the server keeps for `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    started_ns: i64,
    started: std::time::Instant,
    /// The write endpoints.
    pub writes: Writes,
    /// Readings the store logged (new ones, not identical re-sends) since the start.
    pub logged_readings: AtomicU64,
    /// Event stream (SSE) clients connected now.
    pub sse_clients: AtomicI64,
    /// Webhook deliveries.
    pub webhooks: Arc<crate::webhooks::Counters>,
    /// The InfluxDB write-through.
    pub write_through: WriteThrough,
}

impl Metrics {
    /// Counting from now, `now_ns`.
    pub fn new(now_ns: i64) -> Metrics {
        Metrics {
            started_ns: now_ns,
            started: std::time::Instant::now(),
            writes: Writes {
                requests: ByStatus::default(),
                refused_lines: ByStatus::default(),
                readings_accepted: AtomicU64::new(0),
                bytes_received: AtomicU64::new(0),
                latency: Histogram::new(&LATENCY_BOUNDS_S),
            },
            logged_readings: AtomicU64::new(0),
            sse_clients: AtomicI64::new(0),
            webhooks: Arc::default(),
            write_through: WriteThrough {
                configured: AtomicBool::new(false),
                written: AtomicU64::new(0),
                offset: AtomicI64::new(0),
                caught_up: AtomicBool::new(false),
                caught_up_ns: AtomicI64::new(now_ns),
            },
        }
    }

    /// When the server started, ns since the epoch.
    pub fn started_ns(&self) -> i64 {
        self.started_ns
    }

    /// How long it has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A guard counting one event stream client while it lives.
    pub fn sse_client(self: &Arc<Self>) -> SseClient {
        self.sse_clients.fetch_add(1, Ordering::Relaxed);
        SseClient(self.clone())
    }
}

/// One connected event stream client (see [`Metrics::sse_client`]).
#[derive(Debug)]
pub struct SseClient(Arc<Metrics>);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What files of the store take on disk: all of them, and the log's segments.
fn store_bytes(dir: &std::path::Path) -> (u64, u64) {
    let (mut all, mut log) = (0, 0);
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            all += meta.len();
            if d == dir && entry.file_name().to_string_lossy().ends_with(".seg") {
                log += meta.len();
            }
        }
    }
    (all, log)
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

const KINDS: [AlertKind; 5] =
    [AlertKind::Exceedance, AlertKind::NoData, AlertKind::SensorFault, AlertKind::Availability, AlertKind::Deadline];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// The scrape: blocking work (it lists the store's files).
pub fn render(app: &App, now_ns: i64) -> String {
    let m = &app.metrics;
    let mut out = Exposition::new();
    out.family("eitwatch_build_info", "The running server's version and commit (always 1).", Type::Gauge)
        .sample(&[("version", VERSION), ("commit", COMMIT)], 1.0);
    out.single(
        "process_start_time_seconds",
        "When the server started, seconds since the Unix epoch.",
        Type::Gauge,
        m.started_ns as f64 / 1e9,
    );

    let w = &m.writes;
    let mut family = out.family(
        "eitwatch_write_requests_total",
        "Write requests (POST /api/v2/write, /write) by the status they were answered.",
        Type::Counter,
    );
    for (status, n) in w.requests.rows() {
        family.sample(&[("status", &status)], n);
    }
    out.single(
        "eitwatch_write_readings_accepted_total",
        "Readings accepted by writes (stored, or already stored identically).",
        Type::Counter,
        w.readings_accepted.load(Ordering::Relaxed) as f64,
    );
    let mut family = out.family(
        "eitwatch_write_lines_refused_total",
        "Lines of write bodies refused, by the status of the answer: every line of a batch refused whole, a partial write's refused lines (400). Bodies not read (401, 413, 429, …) count in eitwatch_write_requests_total only.",
        Type::Counter,
    );
    for (status, n) in w.refused_lines.rows() {
        family.sample(&[("status", &status)], n);
    }
    out.single(
        "eitwatch_write_received_bytes_total",
        "Bytes of write bodies received, as sent (gzip before decompression).",
        Type::Counter,
        w.bytes_received.load(Ordering::Relaxed) as f64,
    );
    out.histogram(
        "eitwatch_write_duration_seconds",
        "Write requests from their arrival to their answer (204 once on disk).",
        &[(&[], w.latency.snapshot())],
    );

    let store = &app.store;
    let (disk_bytes, log_bytes) = store_bytes(store.dir());
    out.single("eitwatch_store_readings", "Readings in the store.", Type::Gauge, store.len() as f64);
    out.single("eitwatch_store_series", "Series in the store.", Type::Gauge, store.series_count() as f64);
    out.single(
        "eitwatch_store_disk_bytes",
        "Bytes of the store's files (log segments, partition files, manifest).",
        Type::Gauge,
        disk_bytes as f64,
    );
    out.single("eitwatch_store_log_bytes", "Bytes of the store's log segments.", Type::Gauge, log_bytes as f64);
    out.single(
        "eitwatch_store_memtable_readings",
        "Readings in the store's memtable, not yet in partition files.",
        Type::Gauge,
        store.memtable_readings() as f64,
    );
    out.single(
        "eitwatch_store_writable",
        "1 while the store accepts writes; 0 after a failed write or sync (restart the server).",
        Type::Gauge,
        f64::from(u8::from(store.failure().is_none())),
    );

    out.single(
        "eitwatch_compliance_lag_seconds",
        "Newest measurement time handed to the compliance engine minus the newest it has judged.",
        Type::Gauge,
        app.compliance.lag_s(),
    );
    let open = app.alerts.open_counts();
    let mut family =
        out.family("eitwatch_alerts_open", "Alerts not resolved (pending, firing, acknowledged).", Type::Gauge);
    for kind in KINDS {
        for severity in SEVERITIES {
            let n: usize = open.iter().filter(|((k, s, _), _)| *k == kind && *s == severity).map(|(_, n)| n).sum();
            family.sample(&[("kind", kind.as_str()), ("severity", severity_name(severity))], n as f64);
        }
    }
    out.single(
        "eitwatch_sse_clients",
        "Event stream (GET /api/v1/events) clients connected.",
        Type::Gauge,
        m.sse_clients.load(Ordering::Relaxed) as f64,
    );

    let hooks = &m.webhooks;
    out.single(
        "eitwatch_webhook_delivered_total",
        "Alert changes a webhook answered 2xx.",
        Type::Counter,
        hooks.delivered.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "eitwatch_webhook_attempts_failed_total",
        "Webhook attempts refused or unanswered (each retry counts).",
        Type::Counter,
        hooks.attempts_failed.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "eitwatch_webhook_given_up_total",
        "Webhook deliveries given up after max_attempts.",
        Type::Counter,
        hooks.given_up.load(Ordering::Relaxed) as f64,
    );

    let counters = &app.notify.counters;
    type Count = fn(&ChannelCounters) -> &AtomicU64;
    let by_channel: [(&str, &str, Count); 3] = [
        ("eitwatch_notifications_sent_total", "Notifications a channel took.", |c| &c.sent),
        ("eitwatch_notifications_retried_total", "Notification attempts that failed and will be retried.", |c| {
            &c.retried
        }),
        ("eitwatch_notifications_failed_total", "Notifications refused for good.", |c| &c.failed),
    ];
    for (name, help, count) in by_channel {
        let mut family = out.family(name, help, Type::Counter);
        for (label, channel) in [("email", Channel::Email), ("line", Channel::Line)] {
            family.sample(&[("channel", label)], count(counters.channel(channel)).load(Ordering::Relaxed) as f64);
        }
    }

    let wt = &m.write_through;
    if wt.configured.load(Ordering::Relaxed) {
        let written = wt.written.load(Ordering::Relaxed);
        let logged = m.logged_readings.load(Ordering::Relaxed) as i64;
        let behind = (wt.offset.load(Ordering::Relaxed) + logged - written as i64).max(0);
        let behind_s = match wt.caught_up.load(Ordering::Relaxed) {
            true => 0.0,
            false => (now_ns - wt.caught_up_ns.load(Ordering::Relaxed)).max(0) as f64 / 1e9,
        };
        out.single(
            "eitwatch_influxdb_written_readings_total",
            "Readings InfluxDB took from the write-through.",
            Type::Counter,
            written as f64,
        );
        out.single(
            "eitwatch_influxdb_behind_readings",
            "Readings stored but not yet written through to InfluxDB (a backlog left by a restart counts once caught up).",
            Type::Gauge,
            behind as f64,
        );
        out.single(
            "eitwatch_influxdb_behind_seconds",
            "Time since the write-through last had nothing left to send (0 while caught up): the oldest reading it has not sent is at most this old.",
            Type::Gauge,
            behind_s,
        );
    }
    out.finish()
}
