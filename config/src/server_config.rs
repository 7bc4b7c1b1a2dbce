//! The schema of `server.toml`: where the server listens and keeps its data, who may read
//! without a token, how ingest copes with load and with writers' own line shapes, and the
//! site registry (areas, factories, points). A ready example is `config/examples/server.toml`.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::line_protocol::{Mapping, validate_mappings};
use crate::problems::{Problems, Validate};
use crate::site::{Area, validate_areas};
use crate::tls::{ClientTls, PemFile};

/// The whole `server.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `[server]`.
    pub server: ServerSection,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiSection,
    /// `[ingest]`.
    #[serde(default)]
    pub ingest: IngestSection,
    /// `[store]`: the embedded store.
    #[serde(default)]
    pub store: StoreSection,
    /// `[influxdb]`: an InfluxDB 2 every accepted reading is written through to (absent: none).
    #[serde(default)]
    pub influxdb: Option<InfluxdbSection>,
    /// `[compliance]`: the judgement engine.
    #[serde(default)]
    pub compliance: ComplianceSection,
    /// `[alerts]`: the alert lifecycle.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// `[[webhook]]`: where alert changes are POSTed.
    #[serde(default)]
    pub webhook: Vec<WebhookSection>,
    /// `[notify]`: alerts to people by e-mail and LINE.
    #[serde(default)]
    pub notify: crate::notify_config::NotifySection,
    /// The site registry.
    #[serde(default)]
    pub area: Vec<Area>,
}

/// `[compliance]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSection {
    /// How often periods are closed and every condition re-checked against the alert book
    /// (exceeding grab samples are raised as soon as judged).
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// A point is "no data" after this many expected intervals without a reading (a point's
    /// `faults.no_data_after_s` overrides it).
    #[serde(default = "default_no_data_after_intervals")]
    pub no_data_after_intervals: u32,
    /// How often the engine's state is checkpointed (with the log position it judged up to),
    /// so that a start replays only the log written since; also at every clean shutdown.
    #[serde(default = "default_checkpoint_interval_s")]
    pub checkpoint_interval_s: u64,
    /// Bangkok days (today included) whose judgements stay in memory; older closed days
    /// go to `<data_dir>/judgements/` at each checkpoint and are read from there.
    #[serde(default = "default_recent_days")]
    pub recent_days: u32,
}

impl Default for ComplianceSection {
    fn default() -> Self {
        ComplianceSection {
            tick_ms: default_tick_ms(),
            no_data_after_intervals: default_no_data_after_intervals(),
            checkpoint_interval_s: default_checkpoint_interval_s(),
            recent_days: default_recent_days(),
        }
    }
}

const fn default_tick_ms() -> u64 {
    1000
}
const fn default_no_data_after_intervals() -> u32 {
    3
}
const fn default_checkpoint_interval_s() -> u64 {
    300
}
const fn default_recent_days() -> u32 {
    7
}

/// `[alerts]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// How long a condition must hold (pending) before its alert fires (0: at once).
    #[serde(default)]
    pub for_s: u64,
    /// Per kind, `[alerts.kind.no_data]`: its own `for_s` and `severity`.
    #[serde(default)]
    pub kind: std::collections::BTreeMap<AlertKind, KindSettings>,
}

impl AlertsSection {
    /// How long a condition of `kind` must hold before its alert fires.
    pub fn for_s(&self, kind: AlertKind) -> u64 {
        self.kind.get(&kind).and_then(|k| k.for_s).unwrap_or(self.for_s)
    }

    /// The severity configured for `kind`, replacing the built-in one.
    pub fn severity(&self, kind: AlertKind) -> Option<Severity> {
        self.kind.get(&kind).and_then(|k| k.severity)
    }
}

/// `[alerts.kind.<kind>]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// Overrides `[alerts] for_s` for this kind.
    #[serde(default)]
    pub for_s: Option<u64>,
    /// Replaces the built-in severity (exceedance and overdue deadlines critical, due
    /// deadlines info, the others warning).
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A judged period (or grab sample) beyond its limit.
    Exceedance,
    /// A point silent for longer than allowed.
    NoData,
    /// Flatline, spike or implausible value.
    SensorFault,
    /// A day below the availability threshold.
    Availability,
    /// A fault-notification deadline due or overdue.
    Deadline,
}

impl AlertKind {
    /// The name used in config and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Exceedance => "exceedance",
            AlertKind::NoData => "no_data",
            AlertKind::SensorFault => "sensor_fault",
            AlertKind::Availability => "availability",
            AlertKind::Deadline => "deadline",
        }
    }
}

/// How urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information (a deadline running).
    Info,
    /// Needs attention (faults, no data, availability).
    Warning,
    /// A breach (exceedance, overdue deadline).
    Critical,
}

/// `[[webhook]]`: every alert change of the listed kinds is POSTed as JSON, retried with
/// doubling waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Alert kinds to send (empty: all): exceedance, no_data, sensor_fault, availability, deadline.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Attempts per delivery before it is given up (and logged).
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time.
    #[serde(default = "default_webhook_retry_ms")]
    pub retry_initial_ms: u64,
    /// Per-attempt timeout.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

const fn default_webhook_attempts() -> u32 {
    5
}
const fn default_webhook_retry_ms() -> u64 {
    500
}
const fn default_webhook_timeout_ms() -> u64 {
    5000
}

/// Alert kinds a webhook may name.
pub const ALERT_KINDS: [&str; 5] = ["exceedance", "no_data", "sensor_fault", "availability", "deadline"];

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `address:port` to listen on (port 0: any free port, written to `<data_dir>/listen-address`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of the embedded store, tokens and alerts.
    pub data_dir: String,
    /// A reading stamped further than this in the future is refused.
    #[serde(default = "default_max_future_s")]
    pub max_future_s: u64,
    /// A reading stamped before this instant (RFC 3339) is refused: a clock reset to its epoch
    /// or a garbled timestamp, not a measurement.
    #[serde(default = "default_earliest_reading")]
    pub earliest_reading: UtcTime,
    /// Largest request body accepted, after decompression.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long a write may take to upload its body once it holds a write slot; past it the
    /// write is answered 408 and the slot freed for others.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// A connection must send a request's whole header within this time of the server
    /// waiting for it (after connecting, or after its previous answer): a connection idle
    /// this long between requests is closed, and so is one sending its header too slowly.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Connections served at once. Past it a connection is answered at once, `/health`
    /// with the server's health and anything else 503 with `Retry-After`, and closed; keep
    /// it well below the process's open-file limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `[server.tls]`: HTTPS on `listen`; absent: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSection>,
}

/// `[server.tls]`: the server speaks TLS 1.2 and 1.3 (rustls) on `listen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM file of the certificate chain: the server's certificate first, then the
    /// intermediates (certbot's `fullchain.pem`).
    pub cert_file: String,
    /// PEM file of its private key (certbot's `privkey.pem`).
    pub key_file: String,
    /// PEM file of the CA(s) that sign client certificates; set, every client must present
    /// one signed by them (mTLS for agents), and one without is refused at the handshake.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// How often `cert_file` and `key_file` are read for a change (a renewal); new
    /// connections get the new certificate, open ones keep theirs. SIGHUP checks at once.
    #[serde(default = "default_tls_check_interval_ms")]
    pub check_interval_ms: u64,
}

impl TlsSection {
    /// The certificate file, under its key.
    pub fn cert(&self) -> PemFile<'_> {
        PemFile { key: "cert_file", path: &self.cert_file }
    }

    /// The key file, under its key.
    pub fn key(&self) -> PemFile<'_> {
        PemFile { key: "key_file", path: &self.key_file }
    }

    /// The client CA file, under its key.
    pub fn client_ca(&self) -> Option<PemFile<'_>> {
        self.client_ca_file.as_deref().map(|path| PemFile { key: "client_ca_file", path })
    }
}

const fn default_tls_check_interval_ms() -> u64 {
    5000
}

fn default_listen() -> String {
    "127.0.0.1:8086".to_string()
}
const fn default_max_future_s() -> u64 {
    300
}
fn default_earliest_reading() -> UtcTime {
    UtcTime(946_684_800_000_000_000)
}

/// An instant written in RFC 3339 (`2000-01-01T00:00:00Z`), held as ns since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(pub i64);

impl Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(t) => s.collect_str(&t),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UtcTime, D::Error> {
        let text = String::deserialize(d)?;
        let t: jiff::Timestamp = text.parse().map_err(|e| {
            serde::de::Error::custom(format!("\"{text}\" is not an RFC 3339 time (2000-01-01T00:00:00Z): {e}"))
        })?;
        // jiff's range (years -9999..=9999) is wider than i64 nanoseconds (1677..=2262).
        i64::try_from(t.as_nanosecond()).map(UtcTime).map_err(|_| {
            serde::de::Error::custom(format!(
                "\"{text}\" is outside 1677-09-21..2262-04-11, the range of ns since 1970"
            ))
        })
    }
}
const fn default_max_body_bytes() -> usize {
    32 * 1024 * 1024
}
const fn default_body_read_timeout_ms() -> u64 {
    30_000
}
const fn default_header_read_timeout_ms() -> u64 {
    10_000
}
const fn default_max_connections() -> usize {
    512
}

/// Who may use the read API without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymousRead {
    /// Nobody: every read needs a token.
    #[default]
    Never,
    /// Clients on the loopback interface (the demo).
    Loopback,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Who may read without a token.
    #[serde(default)]
    pub anonymous_read: AnonymousRead,
    /// Reverse proxies (`"127.0.0.1/32"`, `"::1/128"`) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client; from any other peer those headers are
    /// ignored. Behind a proxy, `anonymous_read = "loopback"` then means the real client.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
}

/// An address block in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The block's first address.
    pub addr: std::net::IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
}

impl IpNet {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix_len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix_len)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<IpNet, String> {
        let (addr, len) = text.split_once('/').map_or((text, None), |(a, l)| (a, Some(l)));
        let addr: std::net::IpAddr =
            addr.parse().map_err(|_| format!("\"{text}\" is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("\"{text}\": the prefix length must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix_len })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `[ingest]`: load limits and mappings of the write endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Writes decoded and stored at once; more wait in the queue.
    #[serde(default = "default_max_writes_in_flight")]
    pub max_writes_in_flight: usize,
    /// Write slots one token may hold at once (at most `max_writes_in_flight`), so a slow
    /// writer cannot take every slot; its other writes wait in the queue.
    #[serde(default = "default_max_writes_in_flight_per_token")]
    pub max_writes_in_flight_per_token: usize,
    /// Writes that may wait for a slot; one more is answered 429 with `Retry-After`.
    #[serde(default = "default_max_writes_queued")]
    pub max_writes_queued: usize,
    /// A queued write that waited this long is answered 503 with `Retry-After`.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// The `Retry-After` of a 429 or 503.
    #[serde(default = "default_retry_after_s")]
    pub retry_after_s: u64,
    /// A parameter the catalog does not know.
    #[serde(default)]
    pub unknown_parameters: UnknownParameters,
    /// `[[ingest.mapping]]`: writers with their own measurement, tag and field names.
    #[serde(default)]
    pub mapping: Vec<Mapping>,
    /// Every write token's batches are written in part: the valid lines stored, the rest
    /// answered 400 and kept in `<data_dir>/dead-letters/` (a token's own flag does the same
    /// for that token alone).
    #[serde(default)]
    pub partial_writes: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            max_writes_in_flight: default_max_writes_in_flight(),
            max_writes_in_flight_per_token: default_max_writes_in_flight_per_token(),
            max_writes_queued: default_max_writes_queued(),
            queue_timeout_ms: default_queue_timeout_ms(),
            retry_after_s: default_retry_after_s(),
            unknown_parameters: UnknownParameters::default(),
            mapping: Vec::new(),
            partial_writes: false,
        }
    }
}

const fn default_max_writes_in_flight() -> usize {
    8
}
const fn default_max_writes_in_flight_per_token() -> usize {
    4
}
const fn default_max_writes_queued() -> usize {
    256
}
const fn default_queue_timeout_ms() -> u64 {
    10_000
}
const fn default_retry_after_s() -> u64 {
    1
}

/// What a write of a parameter the catalog does not know gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownParameters {
    /// 400 naming the parameter; nothing of the batch is stored.
    #[default]
    Refuse,
    /// Kept, unjudged, in `<data_dir>/unmapped.log` (the raw lines); the rest is stored.
    StoreUnmapped,
}
/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Readings older than this many days are dropped, whole segments at a time
    /// (absent: kept forever, as regulators keep years).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// A new segment file starts once the current one is this big.
    #[serde(default = "default_segment_max_bytes")]
    pub segment_max_bytes: u64,
    /// Readings held in memory before they are written to the day's partition files
    /// (the bound on the store's memory for readings not yet in files).
    #[serde(default = "default_memtable_max_readings")]
    pub memtable_max_readings: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            retention_days: None,
            segment_max_bytes: default_segment_max_bytes(),
            memtable_max_readings: default_memtable_max_readings(),
        }
    }
}

/// ≈ 24–48 MB at its bound; a day of a thousand series at one reading a minute (1.44 M)
/// then goes to files in two flushes, not three or four.
const fn default_memtable_max_readings() -> usize {
    1_000_000
}

/// 16 MiB: ≈ 1.4 M readings of log, above the memtable's default bound (so a segment is
/// retired about as soon as its readings are flushed), and a rotation (four syncs and a
/// content file) about once a second at full ingest, beside hundreds of group commits.
const fn default_segment_max_bytes() -> u64 {
    16 * 1024 * 1024
}

/// `[influxdb]`: the InfluxDB 2 (or anything speaking its v2 write API) readings go to.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxdbSection {
    /// Base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// Organisation.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// API token with write access to the bucket (never logged).
    pub token: String,
    /// Most readings in one write request.
    #[serde(default = "default_batch_max_points")]
    pub batch_max_points: usize,
    /// Longest wait between retries while InfluxDB is unreachable.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// PEM file of the CA(s) InfluxDB's certificate must chain to, trusted instead of the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM file of a client certificate, for an InfluxDB behind a proxy that asks for one.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM file of its private key.
    #[serde(default)]
    pub client_key_file: Option<String>,
}

impl InfluxdbSection {
    /// Its TLS keys.
    pub fn tls(&self) -> ClientTls<'_> {
        ClientTls {
            ca_file: self.ca_file.as_deref(),
            client_cert_file: self.client_cert_file.as_deref(),
            client_key_file: self.client_key_file.as_deref(),
        }
    }
}

impl std::fmt::Debug for InfluxdbSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxdbSection")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &"<redacted>")
            .field("batch_max_points", &self.batch_max_points)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .finish()
    }
}

const fn default_batch_max_points() -> usize {
    5000
}
const fn default_retry_max_ms() -> u64 {
    10_000
}

impl Validate for ServerConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push("server.listen", format!("\"{}\" is not address:port", self.server.listen));
        }
        if self.server.data_dir.is_empty() {
            problems.push("server.data_dir", "must not be empty");
        }
        if self.server.max_body_bytes == 0 {
            problems.push("server.max_body_bytes", "must be at least 1");
        }
        if self.server.body_read_timeout_ms == 0 {
            problems.push("server.body_read_timeout_ms", "must be at least 1");
        }
        if self.server.header_read_timeout_ms == 0 {
            problems.push("server.header_read_timeout_ms", "must be at least 1");
        }
        if self.server.max_connections == 0 {
            problems.push("server.max_connections", "must be at least 1");
        }
        if let Some(tls) = &self.server.tls {
            if let Err(e) = crate::tls::load_certified_key(tls.cert(), tls.key()) {
                problems.push(format!("server.tls.{}", e.key), e.to_string());
            }
            if let Some(Err(e)) = tls.client_ca().map(|ca| ca.roots()) {
                problems.push(format!("server.tls.{}", e.key), e.to_string());
            }
            if tls.check_interval_ms < 100 {
                problems.push("server.tls.check_interval_ms", "must be at least 100");
            }
        }
        if self.ingest.max_writes_in_flight == 0 {
            problems.push("ingest.max_writes_in_flight", "must be at least 1");
        }
        if self.ingest.max_writes_in_flight_per_token == 0 {
            problems.push("ingest.max_writes_in_flight_per_token", "must be at least 1");
        }
        validate_mappings(&self.ingest.mapping, "ingest.mapping", Catalog::builtin(), problems);
        if self.store.retention_days == Some(0) {
            problems.push("store.retention_days", "must be at least 1 (leave it out to keep readings forever)");
        }
        if self.store.segment_max_bytes < 4096 {
            problems.push("store.segment_max_bytes", "must be at least 4096");
        }
        if self.store.memtable_max_readings < 1000 {
            problems.push("store.memtable_max_readings", "must be at least 1000");
        }
        if let Some(influx) = &self.influxdb {
            if !(influx.url.starts_with("http://") || influx.url.starts_with("https://")) {
                problems.push("influxdb.url", format!("\"{}\" is not an http:// or https:// URL", influx.url));
            }
            for (key, value) in [("org", &influx.org), ("bucket", &influx.bucket), ("token", &influx.token)] {
                if value.is_empty() {
                    problems.push(format!("influxdb.{key}"), "must not be empty");
                }
            }
            if influx.batch_max_points == 0 {
                problems.push("influxdb.batch_max_points", "must be at least 1");
            }
            influx.tls().validate("influxdb", problems);
        }
        if self.compliance.tick_ms == 0 {
            problems.push("compliance.tick_ms", "must be at least 1");
        }
        if self.compliance.no_data_after_intervals == 0 {
            problems.push("compliance.no_data_after_intervals", "must be at least 1");
        }
        if self.compliance.checkpoint_interval_s == 0 {
            problems.push("compliance.checkpoint_interval_s", "must be at least 1");
        }
        if self.compliance.recent_days < 2 {
            problems.push(
                "compliance.recent_days",
                "must be at least 2 (today and yesterday, whose availability is judged)",
            );
        }
        self.notify.validate(problems);
        for (i, hook) in self.webhook.iter().enumerate() {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                problems
                    .push(format!("webhook[{i}].url"), format!("\"{}\" is not an http:// or https:// URL", hook.url));
            }
            for (k, kind) in hook.kinds.iter().enumerate() {
                if !ALERT_KINDS.contains(&kind.as_str()) {
                    problems.push(
                        format!("webhook[{i}].kinds[{k}]"),
                        format!("unknown alert kind \"{kind}\", expected one of: {}", ALERT_KINDS.join(", ")),
                    );
                }
            }
            if hook.max_attempts == 0 {
                problems.push(format!("webhook[{i}].max_attempts"), "must be at least 1");
            }
        }
        validate_areas(&self.area, "area", Catalog::builtin(), problems);
    }
}

#[cfg(test)]
mod tests {
    use crate::problems::load;

    use super::ServerConfig;

    #[test]
    fn store_and_influxdb_problems_name_their_keys() {
        let text = r#"
[server]
data_dir = "/tmp/x"
[store]
retention_days = 0
segment_max_bytes = 100
[influxdb]
url = "127.0.0.1:8086"
org = ""
bucket = "b"
token = ""
batch_max_points = 0
"#;
        let problems = load::<ServerConfig>(text, "server.toml").expect_err("problems").to_string();
        for expected in [
            "store.retention_days: must be at least 1",
            "store.segment_max_bytes: must be at least 4096",
            "influxdb.url: \"127.0.0.1:8086\" is not an http:// or https:// URL",
            "influxdb.org: must not be empty",
            "influxdb.token: must not be empty",
            "influxdb.batch_max_points: must be at least 1",
        ] {
            assert!(problems.contains(expected), "{expected} in:\n{problems}");
        }
        assert!(!problems.contains("influxdb.bucket"), "{problems}");
        let config: ServerConfig = load("[server]\ndata_dir = \"/tmp/x\"\n", "server.toml").expect("defaults");
        assert_eq!((config.store.retention_days, config.store.segment_max_bytes), (None, 16 * 1024 * 1024));
        assert!(config.influxdb.is_none());
        let text = "[server]\ndata_dir = \"/x\"\n[influxdb]\nurl = \"http://h\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"sekrit\"\n";
        let config: ServerConfig = load(text, "server.toml").expect("influxdb");
        assert!(!format!("{config:?}").contains("sekrit"), "the token is not in Debug output");
    }

    #[test]
    fn connection_limits_and_trusted_proxies() {
        let config: ServerConfig = load("[server]\ndata_dir = \"/x\"\n", "server.toml").expect("defaults");
        assert_eq!((config.server.header_read_timeout_ms, config.server.max_connections), (10_000, 512));
        assert_eq!(config.ingest.max_writes_in_flight_per_token, 4);
        assert!(config.api.trusted_proxies.is_empty());
        let text = "[server]\ndata_dir = \"/x\"\nheader_read_timeout_ms = 0\nmax_connections = 0\n\
                    [api]\ntrusted_proxies = [\"10.0.0.0/33\", \"proxy\"]\n\
                    [ingest]\nmax_writes_in_flight_per_token = 0\n";
        let problems = load::<ServerConfig>(text, "server.toml").expect_err("problems").to_string();
        assert!(problems.contains("\"10.0.0.0/33\": the prefix length must be 0 to 32"), "{problems}");
        let text = "[server]\ndata_dir = \"/x\"\nheader_read_timeout_ms = 0\nmax_connections = 0\n\
                    [ingest]\nmax_writes_in_flight_per_token = 0\n";
        let problems = load::<ServerConfig>(text, "server.toml").expect_err("problems").to_string();
        for expected in [
            "server.header_read_timeout_ms: must be at least 1",
            "server.max_connections: must be at least 1",
            "ingest.max_writes_in_flight_per_token: must be at least 1",
        ] {
            assert!(problems.contains(expected), "{expected} in:\n{problems}");
        }
        let text =
            "[server]\ndata_dir = \"/x\"\n[api]\ntrusted_proxies = [\"127.0.0.1/32\", \"10.1.0.0/16\", \"::1\"]\n";
        let config: ServerConfig = load(text, "server.toml").expect("proxies");
        let [lo, net, v6] = config.api.trusted_proxies[..] else { panic!("three") };
        assert!(lo.contains("127.0.0.1".parse().expect("ip")) && !lo.contains("127.0.0.2".parse().expect("ip")));
        assert!(lo.contains("::ffff:127.0.0.1".parse().expect("ip")), "IPv4-mapped");
        assert!(net.contains("10.1.200.3".parse().expect("ip")) && !net.contains("10.2.0.1".parse().expect("ip")));
        assert!(v6.contains("::1".parse().expect("ip")) && !v6.contains("127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn the_earliest_reading_is_an_rfc3339_time_within_i64_nanoseconds() {
        let config: ServerConfig = load("[server]\ndata_dir = \"/x\"\n", "server.toml").expect("default");
        assert_eq!(config.server.earliest_reading.0, 946_684_800_000_000_000, "2000-01-01T00:00:00Z");
        let text = "[server]\ndata_dir = \"/x\"\nearliest_reading = \"2010-06-01T00:00:00+07:00\"\n";
        let config: ServerConfig = load(text, "server.toml").expect("a time");
        assert_eq!(config.server.earliest_reading.0, 1_275_325_200_000_000_000);
        for (value, expected) in [
            ("yesterday", "\"yesterday\" is not an RFC 3339 time"),
            ("1500-01-01T00:00:00Z", "is outside 1677-09-21..2262-04-11"),
        ] {
            let text = format!("[server]\ndata_dir = \"/x\"\nearliest_reading = \"{value}\"\n");
            let problems = load::<ServerConfig>(&text, "server.toml").expect_err(value).to_string();
            assert!(problems.contains("server.earliest_reading") && problems.contains(expected), "{problems}");
        }
    }
}
