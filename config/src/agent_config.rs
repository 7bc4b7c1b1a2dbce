//! The schema of `agent.toml`: which factory the agent speaks for, its points, its sources
//! (Modbus devices, MQTT brokers) and its uplink. A ready example is
//! `config/examples/agent.toml`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::problems::{Problems, Validate};
use crate::reading::Kind;
use crate::site::is_valid_id;
use crate::tls::ClientTls;

/// The whole `agent.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Who this agent is and where it keeps its files.
    pub agent: AgentSection,
    /// The factory's monitoring points this agent reports.
    pub point: Vec<PointRef>,
    /// Where readings go: the eitwatch server (the sink named `server`).
    pub uplink: Uplink,
    /// More sinks: InfluxDB 2 instances (a factory's own historian), each with its own cursor.
    #[serde(default)]
    pub influxdb: Vec<InfluxSink>,
    /// The durable on-disk buffer between sources and sinks.
    #[serde(default)]
    pub outbox: OutboxSection,
    /// Modbus devices polled.
    #[serde(default)]
    pub modbus: Vec<ModbusDevice>,
    /// MQTT brokers subscribed to.
    #[serde(default)]
    pub mqtt: Vec<MqttSource>,
}

/// `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The factory id, as in the server's site registry.
    pub factory: String,
    /// Directory of the agent's own files (the outbox).
    #[serde(default = "default_agent_data_dir")]
    pub data_dir: String,
    /// `host:port` of the Prometheus `/metrics` listener; absent: no listener.
    #[serde(default)]
    pub metrics_listen: Option<String>,
}

fn default_agent_data_dir() -> String {
    "/var/lib/eitwatch-agent".to_string()
}

/// `[[point]]`: a monitoring point and what kind of measurement it makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRef {
    /// Point id, as in the server's site registry.
    pub id: String,
    /// Effluent outfall or emission stack.
    pub kind: Kind,
}

/// A secret (token, password) that `Debug` never prints.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `[uplink]`: the eitwatch server (or anything that takes the InfluxDB v2 write API).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// Base URL (`http://province-server:8086`); `/api/v2/write` is appended.
    pub url: String,
    /// The factory's write token.
    pub token: Secret,
    /// InfluxDB organisation.
    #[serde(default = "default_org")]
    pub org: String,
    /// InfluxDB bucket.
    #[serde(default = "default_org")]
    pub bucket: String,
    /// A batch is sent once it holds this many readings…
    #[serde(default = "default_batch_max_readings")]
    pub batch_max_readings: usize,
    /// …or once its oldest reading has waited this long.
    #[serde(default = "default_batch_max_age_ms")]
    pub batch_max_age_ms: u64,
    /// Time allowed for one request.
    #[serde(default = "default_uplink_timeout_ms")]
    pub timeout_ms: u64,
    /// gzip request bodies (`Content-Encoding: gzip`).
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// Backlog (readings older than the live stream after an outage) is sent at most this
    /// fast, so live readings keep flowing; 0: as fast as the sink takes it.
    #[serde(default = "default_backfill_readings_per_s")]
    pub backfill_readings_per_s: u64,
    /// After a 401/403 (token refused), delivery stops and is tried again this much later.
    #[serde(default = "default_auth_retry_ms")]
    pub auth_retry_ms: u64,
    /// PEM file of the CA(s) the server's certificate must chain to (a private CA), trusted
    /// instead of the system's roots; absent: the system's roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM file of the agent's client certificate, for a server that asks for one (mTLS).
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM file of its private key.
    #[serde(default)]
    pub client_key_file: Option<String>,
}

impl Uplink {
    /// Its TLS keys.
    pub fn tls(&self) -> ClientTls<'_> {
        ClientTls {
            ca_file: self.ca_file.as_deref(),
            client_cert_file: self.client_cert_file.as_deref(),
            client_key_file: self.client_key_file.as_deref(),
        }
    }
}

/// `[[influxdb]]`: an InfluxDB 2 bucket written directly (same write API as the server).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxSink {
    /// Sink name (its cursor, logs and metrics); not `server`.
    pub name: String,
    /// Base URL (`http://historian:8086`); `/api/v2/write` is appended.
    pub url: String,
    /// An InfluxDB token with write access to the bucket.
    pub token: Secret,
    /// InfluxDB organisation.
    pub org: String,
    /// InfluxDB bucket.
    pub bucket: String,
    /// See `[uplink]`.
    #[serde(default = "default_batch_max_readings")]
    pub batch_max_readings: usize,
    /// See `[uplink]`.
    #[serde(default = "default_batch_max_age_ms")]
    pub batch_max_age_ms: u64,
    /// See `[uplink]`.
    #[serde(default = "default_uplink_timeout_ms")]
    pub timeout_ms: u64,
    /// See `[uplink]`.
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// See `[uplink]`.
    #[serde(default = "default_backfill_readings_per_s")]
    pub backfill_readings_per_s: u64,
    /// See `[uplink]`.
    #[serde(default = "default_auth_retry_ms")]
    pub auth_retry_ms: u64,
    /// See `[uplink]`.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// See `[uplink]`.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// See `[uplink]`.
    #[serde(default)]
    pub client_key_file: Option<String>,
}

impl InfluxSink {
    /// Its TLS keys.
    pub fn tls(&self) -> ClientTls<'_> {
        ClientTls {
            ca_file: self.ca_file.as_deref(),
            client_cert_file: self.client_cert_file.as_deref(),
            client_key_file: self.client_key_file.as_deref(),
        }
    }
}

/// `[outbox]`: the on-disk buffer under `<data_dir>/outbox`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    /// Bytes of readings kept at most; when full, the oldest undelivered segment is dropped
    /// and gap records tell the sinks what is missing.
    #[serde(default = "default_outbox_max_bytes")]
    pub max_bytes: u64,
    /// Size at which a segment file is closed and a new one begun (the unit of reclaim and drop).
    #[serde(default = "default_outbox_segment_bytes")]
    pub segment_bytes: u64,
    /// How long the outbox's writer gathers appends after the first one before it writes and
    /// fsyncs them together (0: at once). Every append waits this long more before its
    /// source may acknowledge; worth it with many sources appending on their own.
    #[serde(default = "default_outbox_commit_interval_ms")]
    pub commit_interval_ms: u64,
}

impl Default for OutboxSection {
    fn default() -> Self {
        OutboxSection {
            max_bytes: default_outbox_max_bytes(),
            segment_bytes: default_outbox_segment_bytes(),
            commit_interval_ms: default_outbox_commit_interval_ms(),
        }
    }
}

fn default_org() -> String {
    "eitwatch".to_string()
}
const fn default_batch_max_readings() -> usize {
    5000
}
const fn default_batch_max_age_ms() -> u64 {
    1000
}
const fn default_uplink_timeout_ms() -> u64 {
    10_000
}
const fn default_gzip() -> bool {
    true
}
const fn default_backfill_readings_per_s() -> u64 {
    20_000
}
const fn default_auth_retry_ms() -> u64 {
    60_000
}
const fn default_outbox_max_bytes() -> u64 {
    1 << 30
}
const fn default_outbox_segment_bytes() -> u64 {
    16 << 20
}
const fn default_outbox_commit_interval_ms() -> u64 {
    // The sources batch better themselves (docs/benchmarks.md, "Measurements behind design
    // choices"); an interval would only delay every ack.
    0
}

/// `[[modbus]]`: one connection (a device, a gateway, or a serial bus with its slaves), polled.
/// Every slave reached through one connection belongs in one `[[modbus]]`: requests on it
/// go one at a time, which a shared RS-485 bus needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDevice {
    /// Name used in logs.
    pub name: String,
    /// How to reach it.
    pub transport: ModbusTransport,
    /// Poll interval.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Time allowed for one request (and for opening the connection).
    #[serde(default = "default_modbus_timeout_ms")]
    pub timeout_ms: u64,
    /// How `address` counts: 0 = protocol addresses (holding register 40001 is 0), 1 = register
    /// numbers as many manuals print them (40001 is 1).
    #[serde(default)]
    pub address_base: u16,
    /// Registers of one slave and table this close together are read in one request, the gap
    /// read and thrown away. 0 reads only adjacent registers together (for devices that refuse
    /// a read that spans unmapped registers).
    #[serde(default = "default_max_gap_registers")]
    pub max_gap_registers: u16,
    /// The same for coils and discrete inputs, in bits.
    #[serde(default = "default_max_gap_bits")]
    pub max_gap_bits: u16,
    /// Largest read of registers in one request (protocol limit 125; some devices take fewer).
    #[serde(default = "default_max_registers_per_request")]
    pub max_registers_per_request: u16,
    /// Largest read of coils or discrete inputs in one request (protocol limit 2000).
    #[serde(default = "default_max_bits_per_request")]
    pub max_bits_per_request: u16,
    /// The registers read, each mapped to a point and parameter.
    pub register: Vec<Register>,
}

impl ModbusDevice {
    /// The protocol address (zero-based, as sent on the wire) of a register of this device.
    pub fn protocol_address(&self, reg: &Register) -> u16 {
        reg.address.saturating_sub(self.address_base)
    }
}

const fn default_poll_interval_ms() -> u64 {
    1000
}
const fn default_modbus_timeout_ms() -> u64 {
    1000
}
const fn default_max_gap_registers() -> u16 {
    10
}
const fn default_max_gap_bits() -> u16 {
    100
}
const fn default_max_registers_per_request() -> u16 {
    125
}
const fn default_max_bits_per_request() -> u16 {
    2000
}

/// How a Modbus device is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModbusTransport {
    /// Modbus TCP.
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// RTU frames over a TCP connection: a serial-to-Ethernet gateway in transparent mode.
    RtuOverTcp {
        /// `host:port`.
        address: String,
    },
    /// RTU over a serial line (RS-485 or RS-232).
    Rtu {
        /// The serial device (`/dev/ttyUSB0`).
        port: String,
        /// Bits per second.
        #[serde(default = "default_baud")]
        baud: u32,
        /// 7 or 8.
        #[serde(default = "default_data_bits")]
        data_bits: u8,
        /// none, even or odd.
        #[serde(default)]
        parity: Parity,
        /// 1 or 2.
        #[serde(default = "default_stop_bits")]
        stop_bits: u8,
    },
}

impl ModbusTransport {
    /// Where it connects, for logs: `host:port` or the serial device.
    pub fn endpoint(&self) -> &str {
        match self {
            ModbusTransport::Tcp { address } | ModbusTransport::RtuOverTcp { address } => address,
            ModbusTransport::Rtu { port, .. } => port,
        }
    }
}

const fn default_baud() -> u32 {
    9600
}
const fn default_data_bits() -> u8 {
    8
}
const fn default_stop_bits() -> u8 {
    1
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit (the Modbus spec asks for 2 stop bits then; most devices use 1).
    #[default]
    None,
    /// Even parity (the Modbus RTU default).
    Even,
    /// Odd parity.
    Odd,
}

/// Which Modbus table a register is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterTable {
    /// Holding registers (function 3).
    Holding,
    /// Input registers (function 4).
    Input,
    /// Coils (function 1).
    Coil,
    /// Discrete inputs (function 2).
    Discrete,
}

/// How a value is laid out in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterType {
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit, one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// Unsigned 64-bit, four registers.
    U64,
    /// Signed 64-bit, four registers.
    I64,
    /// IEEE 754 single, two registers.
    F32,
    /// IEEE 754 double, four registers.
    F64,
    /// One bit of a register (`bit` names it), or a coil / discrete input.
    Bit,
}

impl RegisterType {
    /// Every type, for the commissioning probe.
    pub const ALL: [RegisterType; 9] = [
        RegisterType::U16,
        RegisterType::I16,
        RegisterType::U32,
        RegisterType::I32,
        RegisterType::U64,
        RegisterType::I64,
        RegisterType::F32,
        RegisterType::F64,
        RegisterType::Bit,
    ];

    /// The name used in `agent.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterType::U16 => "u16",
            RegisterType::I16 => "i16",
            RegisterType::U32 => "u32",
            RegisterType::I32 => "i32",
            RegisterType::U64 => "u64",
            RegisterType::I64 => "i64",
            RegisterType::F32 => "f32",
            RegisterType::F64 => "f64",
            RegisterType::Bit => "bit",
        }
    }
}

impl RegisterType {
    /// Registers it occupies (a coil or bit: one).
    pub fn registers(self) -> u16 {
        match self {
            RegisterType::U16 | RegisterType::I16 | RegisterType::Bit => 1,
            RegisterType::U32 | RegisterType::I32 | RegisterType::F32 => 2,
            RegisterType::U64 | RegisterType::I64 | RegisterType::F64 => 4,
        }
    }
}

/// Byte order of a multi-register value: the order in which the bytes of the big-endian
/// value A B C D (…) arrive. ABCD is big-endian, DCBA little-endian, BADC big-endian with
/// bytes swapped in each word, CDAB little-endian word order ("word swap").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ByteOrder {
    /// Big-endian.
    #[default]
    ABCD,
    /// Little-endian.
    DCBA,
    /// Bytes swapped within each word.
    BADC,
    /// Words swapped.
    CDAB,
}

impl ByteOrder {
    /// Every order.
    pub const ALL: [ByteOrder; 4] = [ByteOrder::ABCD, ByteOrder::DCBA, ByteOrder::BADC, ByteOrder::CDAB];

    /// The name used in `agent.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ByteOrder::ABCD => "ABCD",
            ByteOrder::DCBA => "DCBA",
            ByteOrder::BADC => "BADC",
            ByteOrder::CDAB => "CDAB",
        }
    }
}

impl RegisterTable {
    /// The name used in `agent.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterTable::Holding => "holding",
            RegisterTable::Input => "input",
            RegisterTable::Coil => "coil",
            RegisterTable::Discrete => "discrete",
        }
    }

    /// Whether it holds single bits (coils, discrete inputs) rather than 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, RegisterTable::Coil | RegisterTable::Discrete)
    }
}

/// `[[modbus.register]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Point id (one of `[[point]]`).
    pub point: String,
    /// Catalog parameter code.
    pub parameter: String,
    /// Slave (unit) id.
    #[serde(default = "default_slave")]
    pub slave: u8,
    /// Modbus table.
    pub table: RegisterTable,
    /// Address, counted as the device's `address_base` says.
    pub address: u16,
    /// Layout of the value.
    #[serde(rename = "type")]
    pub kind: RegisterType,
    /// Byte order for values of more than one register.
    #[serde(default)]
    pub order: ByteOrder,
    /// Bit number (0 = least significant) for `type = "bit"` on a register.
    #[serde(default)]
    pub bit: Option<u8>,
    /// The unit the device reports in; converted to the catalog's canonical unit.
    pub unit: String,
    /// Raw value × scale + offset = value in `unit`.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// See `scale`.
    #[serde(default)]
    pub offset: f64,
}

const fn default_slave() -> u8 {
    1
}
const fn default_scale() -> f64 {
    1.0
}

/// `[[mqtt]]`: one broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSource {
    /// Name used in logs.
    pub name: String,
    /// `host:port` of the broker (with `embedded_broker`, where the agent's own broker listens).
    pub broker: String,
    /// Client id; fixed, so that a persistent session survives restarts.
    pub client_id: String,
    /// Protocol version: "3.1.1" or "5".
    #[serde(default)]
    pub version: MqttVersion,
    /// QoS of the subscriptions: 0 or 1. With 1 the session is persistent and a message is
    /// acknowledged only once its readings are in the outbox.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Keep-alive interval.
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// After handing a small batch of messages over (fewer than 16), leave the socket alone
    /// this long, so that the next batch is stored with one fsync and acknowledged with one
    /// write. Bounds the extra delay before an ack; with a broker whose in-flight window is
    /// below 16 messages it also caps the rate at window / linger.
    #[serde(default = "default_ack_linger_ms")]
    pub ack_linger_ms: u64,
    /// The largest message payload taken, in bytes. A larger one is acknowledged and
    /// recorded as a dead letter (topic, size, reason), never stored: one message must not
    /// stop a source. At most [`MQTT_MAX_MESSAGE_BYTES`].
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// User name, if the broker asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// TLS to the broker; absent: plain TCP.
    #[serde(default)]
    pub tls: Option<MqttTls>,
    /// Start an MQTT broker (3.1.1) inside the agent on `broker`, for a factory with none:
    /// the sensors publish to the agent's machine. Only an agent built with the cargo
    /// feature `embedded-broker` has one; any other refuses the config at start.
    #[serde(default)]
    pub embedded_broker: bool,
    /// Topics subscribed to.
    pub subscription: Vec<Subscription>,
}

const fn default_qos() -> u8 {
    1
}
const fn default_keep_alive_s() -> u64 {
    30
}
/// The largest payload MQTT can carry: a packet's remaining length is at most 268 435 455
/// bytes, and the topic and packet id take some of it.
pub const MQTT_MAX_MESSAGE_BYTES: u64 = 268_435_455;

const fn default_max_message_bytes() -> u64 {
    // A reading's message is well under a kilobyte; a megabyte leaves room for batches.
    1 << 20
}
const fn default_ack_linger_ms() -> u64 {
    // Fewer fsyncs and wake-ups the longer it is (docs/benchmarks.md); an ack 50 ms later
    // costs nothing here.
    50
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5.
    #[serde(rename = "5")]
    V5,
}

/// `[mqtt.tls]`: TLS (rustls) to the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTls {
    /// PEM file of the CA certificate(s) the broker's certificate must chain to.
    pub ca_file: String,
    /// PEM file of the agent's client certificate, when the broker asks for one.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM file of its private key.
    #[serde(default)]
    pub client_key_file: Option<String>,
}

/// How a message's payload is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A plain number, in the subscription's `unit`.
    Number,
    /// A JSON object: one value at `value_path` (with its unit, time and quality at their
    /// paths, each optional), or several parameters listed as `[[mqtt.subscription.field]]`.
    Json,
    /// InfluxDB line protocol: each field a parameter code, its value in the catalog's unit;
    /// the point from a `point` tag (or the topic); a string field `quality` applies to the line.
    Influx,
}

/// How a timestamp in a payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// RFC 3339 strings; numbers as epoch seconds, ms, µs or ns told apart by magnitude
    /// (good for any time between 1973 and 5138).
    #[default]
    Auto,
    /// RFC 3339 (`2026-11-22T10:00:00+07:00`).
    Rfc3339,
    /// Seconds since the epoch (fractions allowed).
    EpochS,
    /// Milliseconds since the epoch.
    EpochMs,
    /// Microseconds since the epoch.
    EpochUs,
    /// Nanoseconds since the epoch.
    EpochNs,
    /// Ignore any time in the payload: the agent's clock when the message arrives.
    Arrival,
}

/// `[[mqtt.subscription]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Topic template: `{point}` and `{parameter}` stand for one level each and are read
    /// from the topic; other levels must match (`+` and `#` match anything).
    pub topic: String,
    /// Payload format.
    pub payload: Payload,
    /// Point, when the topic has no `{point}`.
    #[serde(default)]
    pub point: Option<String>,
    /// Parameter, when the topic has no `{parameter}` (single-value payloads).
    #[serde(default)]
    pub parameter: Option<String>,
    /// Unit of values that do not name one.
    #[serde(default)]
    pub unit: Option<String>,
    /// JSON: dotted path of the value (`data.value`, `readings.0.v`).
    #[serde(default = "default_value_path")]
    pub value_path: String,
    /// JSON: path of the timestamp; absent in a message: the arrival time.
    #[serde(default = "default_time_path")]
    pub time_path: String,
    /// JSON: path of the unit; absent in a message: `unit`.
    #[serde(default = "default_unit_path")]
    pub unit_path: String,
    /// JSON: path of the quality (valid, suspect, invalid, maintenance, calibration).
    #[serde(default = "default_quality_path")]
    pub quality_path: String,
    /// How timestamps are written (JSON and line protocol).
    #[serde(default)]
    pub time_format: TimeFormat,
    /// JSON carrying several parameters: where each one is.
    #[serde(default)]
    pub field: Vec<JsonField>,
}

fn default_value_path() -> String {
    "value".into()
}
fn default_time_path() -> String {
    "time".into()
}
fn default_unit_path() -> String {
    "unit".into()
}
fn default_quality_path() -> String {
    "quality".into()
}

/// `[[mqtt.subscription.field]]`: one parameter of a JSON object carrying several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonField {
    /// Dotted path of the value.
    pub path: String,
    /// Catalog parameter code.
    pub parameter: String,
    /// Its unit (default: the subscription's `unit`).
    #[serde(default)]
    pub unit: Option<String>,
}

impl Subscription {
    /// The MQTT filter subscribed to: template placeholders become `+`.
    pub fn filter(&self) -> String {
        self.topic.split('/').map(|l| if l.starts_with('{') { "+" } else { l }).collect::<Vec<_>>().join("/")
    }
}

impl AgentConfig {
    /// The kind of a point of this agent.
    pub fn point_kind(&self, point: &str) -> Option<Kind> {
        self.point.iter().find(|p| p.id == point).map(|p| p.kind)
    }
}

impl Validate for AgentConfig {
    fn validate(&self, problems: &mut Problems) {
        let catalog = Catalog::builtin();
        if !is_valid_id(&self.agent.factory) {
            problems.push(
                "agent.factory",
                format!("\"{}\" is not a valid id, expected 1 to 64 of A-Z a-z 0-9 - _ .", self.agent.factory),
            );
        }
        let mut ids = BTreeSet::new();
        for (i, p) in self.point.iter().enumerate() {
            if !is_valid_id(&p.id) || !ids.insert(p.id.as_str()) {
                problems.push(format!("point[{i}].id"), format!("\"{}\" is not a valid, unique id", p.id));
            }
        }
        if !(self.uplink.url.starts_with("http://") || self.uplink.url.starts_with("https://")) {
            problems.push("uplink.url", format!("\"{}\" is not an http:// or https:// URL", self.uplink.url));
        }
        if self.uplink.batch_max_readings == 0 {
            problems.push("uplink.batch_max_readings", "must be at least 1");
        }
        self.uplink.tls().validate("uplink", problems);
        if let Some(listen) = &self.agent.metrics_listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                problems.push("agent.metrics_listen", format!("\"{listen}\" is not ip:port"));
            }
        }
        let mut sink_names = BTreeSet::from(["server"]);
        for (i, sink) in self.influxdb.iter().enumerate() {
            let at = format!("influxdb[{i}]");
            if !is_valid_id(&sink.name) || !sink_names.insert(sink.name.as_str()) {
                problems.push(
                    format!("{at}.name"),
                    format!("\"{}\" is not a valid id unique among sinks (\"server\" is [uplink])", sink.name),
                );
            }
            if !(sink.url.starts_with("http://") || sink.url.starts_with("https://")) {
                problems.push(format!("{at}.url"), format!("\"{}\" is not an http:// or https:// URL", sink.url));
            }
            if sink.batch_max_readings == 0 {
                problems.push(format!("{at}.batch_max_readings"), "must be at least 1");
            }
            sink.tls().validate(&at, problems);
        }
        if self.outbox.segment_bytes < 4096 {
            problems.push(
                "outbox.segment_bytes",
                format!("{} is too small, expected at least 4096", self.outbox.segment_bytes),
            );
        }
        if self.outbox.commit_interval_ms > 1000 {
            problems.push(
                "outbox.commit_interval_ms",
                format!("{} is too long, expected at most 1000", self.outbox.commit_interval_ms),
            );
        }
        if self.outbox.max_bytes < self.outbox.segment_bytes.saturating_mul(2) {
            problems.push(
                "outbox.max_bytes",
                format!(
                    "{} is less than two segments (2 × segment_bytes = {})",
                    self.outbox.max_bytes,
                    self.outbox.segment_bytes.saturating_mul(2)
                ),
            );
        }
        let check_mapping = |problems: &mut Problems, at: &str, point: &str, parameter: &str, unit: Option<&str>| {
            let Some(kind) = self.point_kind(point) else {
                let known = self.point.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
                problems.push(format!("{at}.point"), format!("unknown point \"{point}\", expected one of: {known}"));
                return;
            };
            match catalog.get(kind, parameter) {
                None => problems.push(format!("{at}.parameter"), format!("unknown {kind} parameter \"{parameter}\"")),
                Some(_) => {
                    if let Some(unit) = unit {
                        if let Err(e) = catalog.to_canonical(kind, parameter, 0.0, unit) {
                            problems.push(format!("{at}.unit"), e.to_string());
                        }
                    }
                }
            }
        };
        for (d, device) in self.modbus.iter().enumerate() {
            let at = format!("modbus[{d}]");
            if device.poll_interval_ms == 0 {
                problems.push(format!("{at}.poll_interval_ms"), "must be at least 1");
            }
            if device.timeout_ms == 0 {
                problems.push(format!("{at}.timeout_ms"), "must be at least 1");
            }
            match &device.transport {
                ModbusTransport::Tcp { address } | ModbusTransport::RtuOverTcp { address } => {
                    if address.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                        problems.push(format!("{at}.transport.address"), format!("\"{address}\" is not host:port"));
                    }
                }
                ModbusTransport::Rtu { port, baud, data_bits, stop_bits, .. } => {
                    if port.is_empty() {
                        problems.push(format!("{at}.transport.port"), "must name the serial device, e.g. /dev/ttyUSB0");
                    }
                    if *baud == 0 {
                        problems.push(format!("{at}.transport.baud"), "must be at least 1");
                    }
                    if !matches!(data_bits, 7 | 8) {
                        problems.push(format!("{at}.transport.data_bits"), format!("{data_bits}: expected 7 or 8"));
                    }
                    if !matches!(stop_bits, 1 | 2) {
                        problems.push(format!("{at}.transport.stop_bits"), format!("{stop_bits}: expected 1 or 2"));
                    }
                    // Two tasks on one bus would interleave requests and read each other's answers.
                    if let Some(first) = self.modbus[..d].iter().position(|o| o.transport.endpoint() == port.as_str()) {
                        problems.push(
                            format!("{at}.transport.port"),
                            format!("{port} is already used by modbus[{first}]: put every slave of one bus in one [[modbus]]"),
                        );
                    }
                }
            }
            if device.address_base > 1 {
                problems.push(format!("{at}.address_base"), format!("{}: expected 0 or 1", device.address_base));
            }
            if !(1..=125).contains(&device.max_registers_per_request) {
                problems.push(format!("{at}.max_registers_per_request"), "expected 1 to 125 (the protocol's limit)");
            }
            if !(1..=2000).contains(&device.max_bits_per_request) {
                problems.push(format!("{at}.max_bits_per_request"), "expected 1 to 2000 (the protocol's limit)");
            }
            for (r, reg) in device.register.iter().enumerate() {
                let at = format!("{at}.register[{r}]");
                check_mapping(problems, &at, &reg.point, &reg.parameter, Some(&reg.unit));
                let bit_table = reg.table.is_bits();
                if bit_table && reg.kind != RegisterType::Bit {
                    problems.push(format!("{at}.type"), "coils and discrete inputs hold bits: expected type = \"bit\"");
                }
                if reg.kind == RegisterType::Bit && !bit_table && reg.bit.is_none_or(|b| b > 15) {
                    problems.push(format!("{at}.bit"), "type = \"bit\" on a register needs bit = 0 to 15");
                }
                if reg.address < device.address_base {
                    problems.push(
                        format!("{at}.address"),
                        format!("{} is below address_base = {}", reg.address, device.address_base),
                    );
                } else if u32::from(reg.address - device.address_base) + u32::from(reg.kind.registers()) > 65536 {
                    problems.push(format!("{at}.address"), "the value runs past register 65535");
                }
                if !bit_table && reg.kind.registers() > device.max_registers_per_request {
                    problems.push(
                        format!("{at}.type"),
                        format!(
                            "{} needs {} registers, more than max_registers_per_request = {}",
                            reg.kind.as_str(),
                            reg.kind.registers(),
                            device.max_registers_per_request
                        ),
                    );
                }
                if bit_table && reg.bit.is_some() {
                    problems.push(format!("{at}.bit"), "coils and discrete inputs are single bits: remove bit");
                }
                if !reg.scale.is_finite() || !reg.offset.is_finite() {
                    problems.push(format!("{at}.scale"), "scale and offset must be finite numbers");
                }
            }
        }
        for (m, source) in self.mqtt.iter().enumerate() {
            let at = format!("mqtt[{m}]");
            if source.qos > 1 {
                problems.push(format!("{at}.qos"), format!("{} is not supported, expected 0 or 1", source.qos));
            }
            if source.client_id.is_empty() {
                problems.push(format!("{at}.client_id"), "must not be empty");
            }
            if source.broker.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                problems.push(format!("{at}.broker"), format!("\"{}\" is not host:port", source.broker));
            }
            if source.keep_alive_s < 5 {
                problems.push(format!("{at}.keep_alive_s"), "expected at least 5");
            }
            if source.ack_linger_ms > 1000 {
                problems.push(
                    format!("{at}.ack_linger_ms"),
                    format!("{} is too long, expected at most 1000", source.ack_linger_ms),
                );
            }
            if !(1024..=MQTT_MAX_MESSAGE_BYTES).contains(&source.max_message_bytes) {
                problems.push(
                    format!("{at}.max_message_bytes"),
                    format!("{} is out of range, expected 1024 to {MQTT_MAX_MESSAGE_BYTES}", source.max_message_bytes),
                );
            }
            if source.password.is_some() && source.username.is_none() {
                problems.push(format!("{at}.password"), "a password needs a username");
            }
            if let Some(tls) = &source.tls {
                if tls.ca_file.is_empty() {
                    problems.push(format!("{at}.tls.ca_file"), "must name a PEM file");
                }
                if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                    problems.push(format!("{at}.tls"), "client_cert_file and client_key_file go together");
                }
            }
            if source.embedded_broker {
                if source.version != MqttVersion::V311 {
                    problems.push(format!("{at}.version"), "the embedded broker speaks MQTT 3.1.1: expected \"3.1.1\"");
                }
                if source.tls.is_some() {
                    problems.push(format!("{at}.tls"), "the embedded broker listens without TLS");
                }
                if source.broker.parse::<std::net::SocketAddr>().is_err() {
                    problems.push(format!("{at}.broker"), "with embedded_broker: the ip:port to listen on");
                }
            }
            if source.subscription.is_empty() {
                problems.push(format!("{at}.subscription"), "subscribes to nothing: add a [[mqtt.subscription]]");
            }
            for (s, sub) in source.subscription.iter().enumerate() {
                let at = format!("{at}.subscription[{s}]");
                let levels: Vec<&str> = sub.topic.split('/').collect();
                if let Some(i) = levels.iter().position(|l| *l == "#") {
                    if i + 1 != levels.len() {
                        problems.push(format!("{at}.topic"), "# must be the last level");
                    }
                }
                for (i, l) in levels.iter().enumerate() {
                    let placeholder = l.starts_with('{') && l.ends_with('}');
                    if placeholder && !matches!(*l, "{point}" | "{parameter}") {
                        problems.push(
                            format!("{at}.topic"),
                            format!("level {}: unknown {l}, expected {{point}} or {{parameter}}", i + 1),
                        );
                    } else if !placeholder
                        && (l.contains('{') || l.contains('}') || (l.len() > 1 && (l.contains('+') || l.contains('#'))))
                    {
                        problems.push(
                            format!("{at}.topic"),
                            format!("level {}: \"{l}\" mixes a wildcard or placeholder with text", i + 1),
                        );
                    }
                }
                let in_topic = |name: &str| levels.contains(&format!("{{{name}}}").as_str());
                // Where the parameter comes from depends on the payload.
                let parameter_from_payload = sub.payload == Payload::Influx || !sub.field.is_empty();
                let point_from_payload = sub.payload == Payload::Influx;
                for (name, fixed, from_payload) in
                    [("point", &sub.point, point_from_payload), ("parameter", &sub.parameter, parameter_from_payload)]
                {
                    match (in_topic(name), fixed) {
                        (true, Some(_)) => problems
                            .push(format!("{at}.{name}"), format!("set both here and as {{{name}}} in the topic")),
                        (false, None) if !from_payload => {
                            problems.push(format!("{at}.topic"), format!("names no {{{name}}}, and {name} is not set"))
                        }
                        _ => {}
                    }
                }
                if parameter_from_payload && (sub.parameter.is_some() || in_topic("parameter")) {
                    problems.push(
                        format!("{at}.parameter"),
                        "the parameters come from the payload (fields): remove parameter and {parameter}",
                    );
                }
                if let (Some(point), Some(parameter)) = (&sub.point, &sub.parameter) {
                    check_mapping(problems, &at, point, parameter, sub.unit.as_deref());
                }
                if sub.payload == Payload::Number && sub.unit.is_none() {
                    problems.push(format!("{at}.unit"), "a plain-number payload needs the unit it is in");
                }
                if sub.payload != Payload::Json && !sub.field.is_empty() {
                    problems.push(format!("{at}.field"), "fields are for payload = \"json\"");
                }
                for (f, field) in sub.field.iter().enumerate() {
                    let at = format!("{at}.field[{f}]");
                    let unit = field.unit.as_deref().or(sub.unit.as_deref());
                    if unit.is_none() {
                        problems.push(format!("{at}.unit"), "needs a unit (here or on the subscription)");
                    }
                    if field.path.is_empty() {
                        problems.push(format!("{at}.path"), "must not be empty");
                    }
                    match &sub.point {
                        Some(point) => check_mapping(problems, &at, point, &field.parameter, unit),
                        None => {
                            if !self.point.iter().any(|p| catalog.get(p.kind, &field.parameter).is_some()) {
                                problems.push(
                                    format!("{at}.parameter"),
                                    format!("unknown parameter \"{}\"", field.parameter),
                                );
                            }
                        }
                    }
                }
            }
        }
        if self.modbus.is_empty() && self.mqtt.is_empty() {
            problems.push("", "no source: add a [[modbus]] or [[mqtt]] table");
        }
    }
}
