//! The canonical line-protocol form of readings: what agents send, what the server stores
//! and forwards to InfluxDB.
//!
//! ```text
//! <kind>,factory=<id>,point=<id>[,source=lab] <param>=<value>[,<param>=<value>…][,quality="<q>"][,not_detected="<param>[ <param>…]"] <ts>
//! ```
//!
//! - measurement: `effluent`, `emission` or `ambient` ([`Kind`]);
//! - tags: `factory` and `point` (required), `source=lab` for a laboratory grab-sample
//!   result (absent means an online instrument). Other tags (Telegraf's `host`) are ignored;
//! - fields: each key is a catalog parameter code with a numeric value in the canonical
//!   unit (float, integer or unsigned are all read as `f64`; the encoder writes floats);
//!   `quality` (string) applies to every field of the line, default `valid`;
//!   `not_detected` (string) lists, space separated, the parameters of the line that a lab
//!   found below its detection limit (their value is the detection limit);
//! - timestamp: in the write's [`Precision`]; a line without one takes the receive time.
//!
//! One line carries the parameters measured at one instant at one point, as Telegraf's wide
//! lines do. The encoder groups consecutive readings that share kind, factory, point,
//! time, quality and source into one line.
//!
//! The grammar (escapes, quoted strings, `i`/`u` suffixes, booleans, comments) is InfluxData's
//! own parser's (`influxdb-line-protocol`), so what InfluxDB takes, this takes. Lines of other
//! shapes (a Telegraf modbus input, a vendor logger) become readings through a configured
//! [`Mapping`].

use std::fmt::Write as _;

use influxdb_line_protocol::{parse_lines, split_lines};
use line::{Line, Value};

pub use mapping::{FieldMapping, Mapping, OtherFields, validate_mappings};

use std::borrow::Cow;

use crate::reading::{Kind, Quality, Reading, Source};

/// Timestamp precision of a write, as InfluxDB's `precision` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (InfluxDB's default).
    #[default]
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Minutes (InfluxDB 1.x `/write` only).
    M,
    /// Hours (InfluxDB 1.x `/write` only).
    H,
}

impl Precision {
    /// Parses InfluxDB v2's spellings (`ns`, `us`, `ms`, `s`; `n` and `u` are taken too).
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Ns,
            "us" | "u" | "µs" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            _ => return None,
        })
    }

    /// Parses InfluxDB 1.x `/write` spellings (`n`, `u`, `ms`, `s`, `m`, `h`, and v2's).
    pub fn parse_v1(s: &str) -> Option<Precision> {
        match s {
            "m" => Some(Precision::M),
            "h" => Some(Precision::H),
            _ => Precision::parse(s),
        }
    }

    /// Nanoseconds per unit.
    pub fn ns_per_unit(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
            Precision::M => 60_000_000_000,
            Precision::H => 3_600_000_000_000,
        }
    }
}

/// A line that is not a canonical reading line, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based line number in the body.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Encodes readings as canonical line protocol, timestamps in nanoseconds, one line per
/// group of consecutive readings sharing kind, factory, point, time, quality and source.
/// Names are escaped; a name with a control character or ending in a backslash cannot be
/// written in line protocol (the decoder never produces one; ids and codes never hold one).
pub fn encode(readings: &[Reading]) -> String {
    let mut out = String::with_capacity(readings.len() * 64);
    encode_into(readings, &mut out);
    out
}

/// [`encode`] appending to `out`.
pub fn encode_into(readings: &[Reading], out: &mut String) {
    let mut i = 0;
    while i < readings.len() {
        let first = &readings[i];
        let mut j = i + 1;
        while j < readings.len()
            && same_line(first, &readings[j])
            && !readings[i..j].iter().any(|r| r.parameter == readings[j].parameter)
        {
            j += 1;
        }
        let group = &readings[i..j];
        out.push_str(first.kind.as_str());
        out.push_str(",factory=");
        escape_tag(&first.factory, out);
        out.push_str(",point=");
        escape_tag(&first.point, out);
        if first.source == Source::Lab {
            out.push_str(",source=lab");
        }
        for (n, r) in group.iter().enumerate() {
            out.push(if n == 0 { ' ' } else { ',' });
            escape_tag(&r.parameter, out);
            let _ = write!(out, "={}", r.value);
        }
        if first.quality != Quality::Valid {
            let _ = write!(out, ",quality=\"{}\"", first.quality.as_str());
        }
        let not_detected: Vec<&str> =
            group.iter().filter(|r| r.below_detection_limit).map(|r| r.parameter.as_str()).collect();
        if !not_detected.is_empty() {
            out.push_str(",not_detected=\"");
            escape_string(&not_detected.join(" "), out);
            out.push('"');
        }
        let _ = writeln!(out, " {}", first.time_ns);
        i = j;
    }
}

fn same_line(a: &Reading, b: &Reading) -> bool {
    a.kind == b.kind
        && a.time_ns == b.time_ns
        && a.quality == b.quality
        && a.source == b.source
        && a.factory == b.factory
        && a.point == b.point
}

/// Escapes a tag key/value or field key: comma, equals sign, space, and the backslash itself
/// (so a name ending in a backslash does not escape the delimiter after it).
fn escape_tag(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Escapes the content of a quoted string field: double quote and backslash.
fn escape_string(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// What a body is decoded against, besides its text.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// The write's timestamp precision.
    pub precision: Precision,
    /// The timestamp of a line that carries none (the receive time), in ns.
    pub default_time_ns: i64,
    /// Mappings for lines whose measurement is not a [`Kind`].
    pub mappings: &'a [Mapping],
    /// The factory of mapped lines whose mapping names no factory tag: the writer's.
    pub factory: Option<&'a str>,
}

impl DecodeContext<'_> {
    /// Canonical lines only.
    pub fn canonical(precision: Precision, default_time_ns: i64) -> DecodeContext<'static> {
        DecodeContext { precision, default_time_ns, mappings: &[], factory: None }
    }
}

/// Decodes a body of canonical line protocol. Blank lines and `#` comments are skipped.
/// Lines without a timestamp take `default_time_ns`. The first bad line refuses the whole
/// body, naming the line and the problem.
pub fn decode(body: &str, precision: Precision, default_time_ns: i64) -> Result<Vec<Reading>, LineError> {
    let mut readings = Vec::new();
    decode_each(body, precision, default_time_ns, |_, r| {
        readings.append(r);
        Ok(())
    })?;
    Ok(readings)
}

/// Decodes line by line, handing each line's readings with its 1-based number to `check`,
/// which may refuse the line (and so the body) with a reason.
pub fn decode_each(
    body: &str,
    precision: Precision,
    default_time_ns: i64,
    check: impl FnMut(usize, &mut Vec<Reading>) -> Result<(), String>,
) -> Result<(), LineError> {
    decode_with(body, &DecodeContext::canonical(precision, default_time_ns), check)
}

/// [`decode_each`] with mappings for non-canonical lines.
pub fn decode_with(
    body: &str,
    cx: &DecodeContext<'_>,
    mut check: impl FnMut(usize, &mut Vec<Reading>) -> Result<(), String>,
) -> Result<(), LineError> {
    let mut readings = Vec::new();
    decode_rows(body, cx, |line, rows| {
        readings.clear();
        readings.extend(rows.iter().map(Row::to_reading));
        check(line, &mut readings)
    })
}

/// A reading as decoded, its names borrowed from the body (or the mappings) wherever they
/// need no unescaping: what ingest checks and stores without allocating three strings per
/// reading. [`Row::to_reading`] makes the owned [`Reading`].
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// Effluent, emission or ambient.
    pub kind: Kind,
    /// Factory id.
    pub factory: Cow<'a, str>,
    /// Point id.
    pub point: Cow<'a, str>,
    /// Catalog parameter code.
    pub parameter: Cow<'a, str>,
    /// Value in the catalog's canonical unit.
    pub value: f64,
    /// Measurement time, ns since the Unix epoch.
    pub time_ns: i64,
    /// Quality flag.
    pub quality: Quality,
    /// Instrument or laboratory.
    pub source: Source,
    /// The value is a detection limit the result was below.
    pub below_detection_limit: bool,
}

impl<'a> Row<'a> {
    fn new(kind: Kind, factory: &'a str, point: &'a str, parameter: &'a str, value: f64, time_ns: i64) -> Row<'a> {
        Row {
            kind,
            factory: Cow::Borrowed(factory),
            point: Cow::Borrowed(point),
            parameter: Cow::Borrowed(parameter),
            value,
            time_ns,
            quality: Quality::Valid,
            source: Source::Instrument,
            below_detection_limit: false,
        }
    }

    /// The owned reading.
    pub fn to_reading(&self) -> Reading {
        Reading {
            kind: self.kind,
            factory: self.factory.to_string(),
            point: self.point.to_string(),
            parameter: self.parameter.to_string(),
            value: self.value,
            time_ns: self.time_ns,
            quality: self.quality,
            source: self.source,
            below_detection_limit: self.below_detection_limit,
        }
    }

    fn into_owned(self) -> Row<'static> {
        Row {
            kind: self.kind,
            factory: Cow::Owned(self.factory.into_owned()),
            point: Cow::Owned(self.point.into_owned()),
            parameter: Cow::Owned(self.parameter.into_owned()),
            value: self.value,
            time_ns: self.time_ns,
            quality: self.quality,
            source: self.source,
            below_detection_limit: self.below_detection_limit,
        }
    }
}

/// Decodes line by line into [`Row`]s, handing each line's rows with its 1-based number to
/// `check`, which may refuse the line (and so the body) with a reason, and may keep the rows
/// (they live as long as the body): the first bad line refuses the body.
pub fn decode_rows<'a>(
    body: &'a str,
    cx: &DecodeContext<'a>,
    mut check: impl FnMut(usize, &mut Vec<Row<'a>>) -> Result<(), String>,
) -> Result<(), LineError> {
    decode_lines(body, cx, |line, _, rows| rows.and_then(|rows| check(line, rows)))
}

/// Decodes a body as [`decode_rows`] does, but goes on past a line that does not decode:
/// `each` gets every line with readings (or that failed) — its number, its text, and its
/// rows or why it does not decode. An error from `each` stops the decoding.
pub fn decode_lines<'a>(
    body: &'a str,
    cx: &DecodeContext<'a>,
    mut each: impl FnMut(usize, &'a str, Result<&mut Vec<Row<'a>>, String>) -> Result<(), String>,
) -> Result<(), LineError> {
    let mut rows = Vec::new();
    let mut line = Line::empty();
    for (index, text) in lines(body).enumerate() {
        rows.clear();
        let decoded = match decode_line(text, cx, &mut line, &mut rows) {
            Ok(()) if rows.is_empty() => continue,
            Ok(()) => Ok(&mut rows),
            Err(reason) => Err(reason),
        };
        each(index + 1, text, decoded).map_err(|reason| LineError { line: index + 1, reason })?;
    }
    Ok(())
}

/// The body's lines: InfluxData's splitter, not `split('\n')`, since a quoted string field
/// may hold a newline (and a backslash escapes the byte after it); but a body with neither a
/// quote nor a backslash, as agents and Telegraf send, splits exactly at every newline, and
/// a split at `\n` finds those many times faster than the splitter's state machine.
fn lines(body: &str) -> Box<dyn Iterator<Item = &str> + '_> {
    match memchr::memchr2(b'"', b'\\', body.as_bytes()).is_some() {
        true => Box::new(split_lines(body)),
        false => Box::new(line::split_byte(body, b'\n')),
    }
}

fn decode_line<'a>(
    text: &'a str,
    cx: &DecodeContext<'a>,
    line: &mut Line<'a>,
    out: &mut Vec<Row<'a>>,
) -> Result<(), String> {
    let text = text.trim_end_matches('\r');
    if text.trim().is_empty() || text.trim_start().starts_with('#') {
        return Ok(());
    }
    match line.fast_into(text) {
        true => decode_parsed(line, cx, out),
        false => match parse_lines(text).next() {
            Some(Ok(parsed)) => {
                // Names unescaped by InfluxData's parser live in `parsed`: the rows own them.
                let mut owned = Vec::new();
                decode_parsed(&Line::of(&parsed), cx, &mut owned)?;
                for row in owned {
                    out.push(row.into_owned());
                }
                Ok(())
            }
            Some(Err(e)) => Err(explain(text, &e)),
            None => Ok(()),
        },
    }
}

/// What a line must look like, for messages about one that does not.
const SHAPE: &str = "expected <kind>,factory=<id>,point=<id> <parameter>=<number>[,…] [<timestamp>]";

/// InfluxData's parser's error, said in terms of the line: the field whose value is not a
/// number where the parser only knows that no field set parsed, and what a line looks like.
fn explain(text: &str, e: &influxdb_line_protocol::Error) -> String {
    use influxdb_line_protocol::Error as E;
    match e {
        E::FieldSetMissing | E::GenericParsingError { .. } | E::CannotParseEntireLine { .. } => {
            match not_a_number(text) {
                Some((key, value)) => {
                    format!("field {key}: \"{value}\" is not a number (a finite float, or an integer with i or u)")
                }
                None if matches!(e, E::CannotParseEntireLine { .. }) => format!("malformed line protocol: {e}"),
                None => format!("malformed line protocol: {SHAPE}"),
            }
        }
        E::IntegerValueInvalid { value, .. } | E::UIntegerValueInvalid { value, .. } => {
            format!("malformed line protocol: {value} is not an integer of its type (i: i64, u: u64)")
        }
        other => format!("malformed line protocol: {other}"),
    }
}

/// The first `key=value` of a line's field set (its second space-separated part; lines with
/// quotes or escapes are left to the parser's message) whose value is no number, boolean or
/// string: `NaN`, `inf`, a word.
fn not_a_number(text: &str) -> Option<(&str, &str)> {
    if text.contains(['"', '\\']) {
        return None;
    }
    let fields = text.split(' ').filter(|p| !p.is_empty()).nth(1)?;
    fields.split(',').filter_map(|kv| kv.split_once('=')).find(|(_, v)| {
        let number = match (v.strip_suffix('i'), v.strip_suffix('u')) {
            (Some(n), _) => n.parse::<i64>().is_ok(),
            (_, Some(n)) => n.parse::<u64>().is_ok(),
            _ => v.parse::<f64>().is_ok_and(f64::is_finite),
        };
        let boolean = matches!(*v, "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE");
        !number && !boolean
    })
}

fn decode_parsed<'l>(line: &Line<'l>, cx: &DecodeContext<'l>, out: &mut Vec<Row<'l>>) -> Result<(), String> {
    let time_ns = match line.timestamp {
        Some(ts) => {
            ts.checked_mul(cx.precision.ns_per_unit()).ok_or_else(|| format!("timestamp {ts} overflows nanoseconds"))?
        }
        None => cx.default_time_ns,
    };
    match line.measurement.parse::<Kind>() {
        Ok(kind) => decode_canonical(line, kind, time_ns, out),
        Err(_) => mapping::decode_mapped(line, cx, time_ns, out),
    }
}

fn decode_canonical<'l>(line: &Line<'l>, kind: Kind, time_ns: i64, out: &mut Vec<Row<'l>>) -> Result<(), String> {
    let (mut factory, mut point, mut source) = (None, None, Source::Instrument);
    for &(key, value) in &line.tags {
        match key {
            "factory" => factory = Some(value),
            "point" => point = Some(value),
            "source" => {
                source = match value {
                    "lab" => Source::Lab,
                    "instrument" => Source::Instrument,
                    other => {
                        return Err(format!("tag source: unknown source \"{other}\", expected lab or instrument"));
                    }
                }
            }
            _ => {}
        }
    }
    let factory = name("tag factory", factory.filter(|f| !f.is_empty()).ok_or("missing tag factory")?)?;
    let point = name("tag point", point.filter(|p| !p.is_empty()).ok_or("missing tag point")?)?;

    let mut quality = Quality::Valid;
    let mut not_detected: Vec<&str> = Vec::new();
    let first = out.len();
    for &(key, ref value) in &line.fields {
        let number = match value {
            Value::Str(s) => {
                match key {
                    "quality" => quality = s.parse()?,
                    "not_detected" => not_detected = s.split_whitespace().collect(),
                    _ => {
                        return Err(format!("field {key}: a string, expected a number in the canonical unit"));
                    }
                }
                continue;
            }
            other => number(name("field key", key)?, other)?,
        };
        let mut row = Row::new(kind, factory, point, key, number, time_ns);
        row.source = source;
        out.push(row);
    }
    if out.len() == first {
        return Err("no numeric field: a line carries at least one parameter".to_string());
    }
    for r in &mut out[first..] {
        r.quality = quality;
    }
    for code in not_detected {
        let r = out[first..]
            .iter_mut()
            .find(|r| r.parameter == code)
            .ok_or_else(|| format!("field not_detected names {code}, which is not a field of the line"))?;
        r.below_detection_limit = true;
    }
    Ok(())
}

/// A factory, point or parameter name: line protocol can carry control characters (an escaped
/// newline), no registry id or catalog code has them, and the encoder could not write them back.
fn name<'a>(what: &str, s: &'a str) -> Result<&'a str, String> {
    // ASCII names (all ids and codes) by their bytes; others by their chars (C1 controls).
    let control = match s.is_ascii() {
        true => s.bytes().any(|b| b.is_ascii_control()),
        false => s.chars().any(char::is_control),
    };
    match control {
        true => Err(format!("{what} {s:?}: control characters are not allowed in names")),
        false => Ok(s),
    }
}

/// A field's value as a finite number: floats, integers (`i`) and unsigned (`u`) are numbers;
/// strings, booleans, NaN and infinities are refused, naming the field.
fn number(key: &str, value: &Value<'_>) -> Result<f64, String> {
    let v = match value {
        Value::F64(v) => *v,
        Value::I64(v) => *v as f64,
        Value::U64(v) => *v as f64,
        Value::Str(_) => return Err(format!("field {key}: a string, expected a number")),
        Value::Bool(_) => {
            return Err(format!("field {key}: a boolean, expected a number in the canonical unit"));
        }
    };
    if v.is_finite() { Ok(v) } else { Err(format!("field {key}: {v} is not a finite number")) }
}

mod line;
mod mapping;

#[cfg(test)]
mod tests;
