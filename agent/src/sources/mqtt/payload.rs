//! Payload decoders: a plain number; JSON with configurable paths (one value, or several
//! parameters of one object); InfluxDB line protocol. Each returns raw values or an error
//! naming what is wrong, and never panics on outside input.

use eitwatch_config::agent_config::{Payload, Subscription, TimeFormat};
use eitwatch_config::reading::Quality;
use influxdb_line_protocol::{FieldValue, parse_lines};
use serde_json::Value;

use super::topic::TopicMatch;
use crate::normalise::Raw;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// Not UTF-8.
    #[error("payload is not UTF-8")]
    NotUtf8,
    /// A plain-number payload that is not a number.
    #[error("payload is not a number")]
    NotANumber,
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A required path is missing.
    #[error("no \"{path}\" in the JSON")]
    Missing {
        /// The dotted path.
        path: String,
    },
    /// A value that should be a number is not.
    #[error("\"{path}\" is {found}, expected a number")]
    NotNumeric {
        /// The dotted path.
        path: String,
        /// What was there, shortened.
        found: String,
    },
    /// A unit or quality that should be a string is not.
    #[error("\"{path}\" is {found}, expected a string")]
    NotString {
        /// The dotted path.
        path: String,
        /// What was there, shortened.
        found: String,
    },
    /// A timestamp that cannot be read as configured.
    #[error("time {found}: {reason}")]
    Time {
        /// What was there, shortened.
        found: String,
        /// Why not.
        reason: String,
    },
    /// Unknown quality.
    #[error("{0}")]
    Quality(String),
    /// Neither the payload nor the config says which unit.
    #[error("no unit in the payload and none configured")]
    NoUnit,
    /// Neither topic, tag nor config names the point (or the parameter).
    #[error("no {0}: not in the topic, the payload or the config")]
    Unmapped(&'static str),
    /// A line of line protocol that does not parse (the whole message is refused).
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// Nothing to read.
    #[error("no values in the payload")]
    Empty,
}

/// Decodes one message of a subscription into raw values (see [`Decoder`] for many).
pub fn decode(
    sub: &Subscription,
    topic: &TopicMatch,
    payload: &[u8],
    arrival_ns: i64,
) -> Result<Vec<Raw>, PayloadError> {
    Decoder::new(sub).decode(topic.clone(), payload, arrival_ns)
}

/// A subscription's decoder, for all its messages: what can be prepared once is.
#[derive(Debug)]
pub struct Decoder<'s> {
    /// The subscription.
    pub sub: &'s Subscription,
    /// Its JSON paths: value, unit, time, quality, then the fields'.
    paths: Option<pick::Paths>,
}

impl<'s> Decoder<'s> {
    /// Prepares the decoding of `sub`'s messages.
    pub fn new(sub: &'s Subscription) -> Decoder<'s> {
        let paths = (sub.payload == Payload::Json)
            .then(|| {
                let mut paths = vec![sub.value_path.as_str(), &sub.unit_path, &sub.time_path, &sub.quality_path];
                paths.extend(sub.field.iter().map(|f| f.path.as_str()));
                pick::Paths::new(&paths)
            })
            .flatten();
        Decoder { sub, paths }
    }

    /// Decodes one message into raw values.
    pub fn decode(&self, mut topic: TopicMatch, payload: &[u8], arrival_ns: i64) -> Result<Vec<Raw>, PayloadError> {
        let sub = self.sub;
        let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
        match sub.payload {
            Payload::Number => {
                let value = text.trim().parse::<f64>().map_err(|_| PayloadError::NotANumber)?;
                let unit = sub.unit.clone().ok_or(PayloadError::NoUnit)?;
                Ok(vec![raw(&mut topic, None, value, unit, arrival_ns, Quality::Valid)?])
            }
            Payload::Json => {
                // Most messages: only the configured paths read, in one pass; anything
                // unusual (or an error, to be worded) reads the document whole, with the same
                // result (`raw` leaves the topic as it was when it fails).
                if let Some(paths) = &self.paths
                    && let Some(values) = paths.pick(text)
                    && let Ok(raws) = json(sub, &mut topic, &Doc::Picked { paths, values }, arrival_ns)
                {
                    return Ok(raws);
                }
                json(sub, &mut topic, &Doc::Whole(parse_json(text)?), arrival_ns)
            }
            Payload::Influx => influx(sub, &topic, text, arrival_ns),
        }
    }
}

/// A JSON payload as the paths of its subscription see it.
enum Doc<'p> {
    /// Parsed whole.
    Whole(Value),
    /// Only the subscription's paths (path `i` found `values[i]`).
    Picked { paths: &'p pick::Paths, values: Vec<Option<Value>> },
}

impl Doc<'_> {
    /// The value at a dotted path, as [`lookup`] finds it in the whole document.
    fn get(&self, path: &str) -> Option<&Value> {
        match self {
            Doc::Whole(json) => lookup(json, path),
            Doc::Picked { paths, values } => values[paths.index(path)?].as_ref(),
        }
    }
}

fn json(sub: &Subscription, topic: &mut TopicMatch, json: &Doc<'_>, arrival_ns: i64) -> Result<Vec<Raw>, PayloadError> {
    match sub.field.is_empty() {
        true => {
            let value = number_at(json, &sub.value_path)?.ok_or_else(|| missing(&sub.value_path))?;
            let unit = match json.get(&sub.unit_path) {
                Some(v) => string(v, &sub.unit_path)?,
                None => sub.unit.clone().ok_or(PayloadError::NoUnit)?,
            };
            let (time_ns, quality) = time_and_quality(sub, json, arrival_ns)?;
            Ok(vec![raw(topic, None, value, unit, time_ns, quality)?])
        }
        false => {
            let (time_ns, quality) = time_and_quality(sub, json, arrival_ns)?;
            let mut raws = Vec::with_capacity(sub.field.len());
            for field in &sub.field {
                // A parameter the object does not carry this time is simply not measured now.
                let Some(value) = number_at(json, &field.path)? else { continue };
                let unit = field.unit.clone().or_else(|| sub.unit.clone()).ok_or(PayloadError::NoUnit)?;
                raws.push(raw(topic, Some(&field.parameter), value, unit, time_ns, quality)?);
            }
            if raws.is_empty() {
                return Err(PayloadError::Empty);
            }
            Ok(raws)
        }
    }
}

/// A raw value of the topic's point; with `parameter` (one of several of a JSON object) the
/// topic's strings are copied, else moved out of it. On error the topic is left as it was.
fn raw(
    topic: &mut TopicMatch,
    parameter: Option<&str>,
    value: f64,
    unit: String,
    time_ns: i64,
    quality: Quality,
) -> Result<Raw, PayloadError> {
    if topic.point.is_none() {
        return Err(PayloadError::Unmapped("point"));
    }
    if parameter.is_none() && topic.parameter.is_none() {
        return Err(PayloadError::Unmapped("parameter"));
    }
    let (point, parameter) = match parameter {
        Some(p) => (topic.point.clone(), Some(p.to_string())),
        None => (topic.point.take(), topic.parameter.take()),
    };
    Ok(Raw {
        point: point.unwrap_or_default(),
        parameter: parameter.unwrap_or_default(),
        value,
        unit,
        time_ns,
        quality,
    })
}

fn parse_json(text: &str) -> Result<Value, PayloadError> {
    serde_json::from_str(text).map_err(|e| PayloadError::NotJson(e.to_string()))
}

fn missing(path: &str) -> PayloadError {
    PayloadError::Missing { path: path.to_string() }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The value at a dotted path (`data.readings.0.v`); numbers index arrays. `None` when any
/// step is missing; JSON `null` counts as missing.
fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = json;
    for step in path.split('.') {
        node = match node {
            Value::Object(map) => map.get(step)?,
            Value::Array(items) => items.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!node.is_null()).then_some(node)
}

/// A number at `path`: a JSON number, a numeric string ("12.5", as some gateways send), or
/// a boolean (a status bit: 1 or 0).
fn number_at(json: &Doc<'_>, path: &str) -> Result<Option<f64>, PayloadError> {
    let Some(v) = json.get(path) else { return Ok(None) };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .map(Some)
        .ok_or_else(|| PayloadError::NotNumeric { path: path.to_string(), found: short(v) })
}

fn string(v: &Value, path: &str) -> Result<String, PayloadError> {
    v.as_str().map(str::to_string).ok_or_else(|| PayloadError::NotString { path: path.to_string(), found: short(v) })
}

fn time_and_quality(sub: &Subscription, json: &Doc<'_>, arrival_ns: i64) -> Result<(i64, Quality), PayloadError> {
    let time_ns = match (sub.time_format, json.get(&sub.time_path)) {
        (TimeFormat::Arrival, _) | (_, None) => arrival_ns,
        (format, Some(v)) => parse_time(v, format)?,
    };
    let quality = match json.get(&sub.quality_path) {
        Some(v) => string(v, &sub.quality_path)?.parse().map_err(PayloadError::Quality)?,
        None => Quality::Valid,
    };
    Ok((time_ns, quality))
}

/// Nanoseconds per unit of an epoch format; `None` for the others.
fn ns_per_unit(format: TimeFormat) -> Option<i64> {
    match format {
        TimeFormat::EpochS => Some(1_000_000_000),
        TimeFormat::EpochMs => Some(1_000_000),
        TimeFormat::EpochUs => Some(1_000),
        TimeFormat::EpochNs => Some(1),
        _ => None,
    }
}

/// Epoch seconds, ms, µs or ns told apart by magnitude: seconds up to 10^11 (year 5138),
/// then ms up to 10^14, µs up to 10^17, ns above.
fn guess_ns_per_unit(magnitude: f64) -> i64 {
    match magnitude {
        a if a < 1e11 => 1_000_000_000,
        a if a < 1e14 => 1_000_000,
        a if a < 1e17 => 1_000,
        _ => 1,
    }
}

/// Reads a timestamp as `format` says.
pub fn parse_time(v: &Value, format: TimeFormat) -> Result<i64, PayloadError> {
    let fail = |reason: &str| PayloadError::Time { found: short(v), reason: reason.to_string() };
    if let (Value::String(s), TimeFormat::Auto | TimeFormat::Rfc3339) = (v, format) {
        match s.parse::<jiff::Timestamp>() {
            Ok(t) => return i64::try_from(t.as_nanosecond()).map_err(|_| fail("out of range")),
            Err(e) if format == TimeFormat::Rfc3339 || s.trim().parse::<f64>().is_err() => {
                return Err(fail(&format!("not RFC 3339 ({e})")));
            }
            Err(_) => {} // a number in a string: epoch time below
        }
    }
    match format {
        TimeFormat::Rfc3339 => return Err(fail("expected an RFC 3339 string")),
        TimeFormat::Arrival => return Err(fail("time_format = arrival reads no time")),
        _ => {}
    }
    // Integers stay integers: an f64 cannot hold epoch nanoseconds exactly. A JSON integer
    // (the usual case) is read as such, without going through text.
    let integer = |x: i64| {
        let per = ns_per_unit(format).unwrap_or_else(|| guess_ns_per_unit(x.unsigned_abs() as f64));
        x.checked_mul(per).ok_or_else(|| fail("overflows nanoseconds"))
    };
    if let Some(x) = v.as_i64() {
        return integer(x);
    }
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(fail("expected RFC 3339 or epoch time")),
    };
    if let Ok(x) = text.parse::<i64>() {
        return integer(x);
    }
    let x = text.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| fail("not a number"))?;
    let per = ns_per_unit(format).unwrap_or_else(|| guess_ns_per_unit(x.abs()));
    // Decimal fractions read digit by digit: 1795341600.25 s × 1e9 in f64 is off by 128 ns.
    if let Some(ns) = decimal_ns(&text, per) {
        return Ok(ns);
    }
    let ns = (x * per as f64).round();
    if ns.abs() >= 9.2e18 {
        return Err(fail("overflows nanoseconds"));
    }
    Ok(ns as i64)
}

/// `[-]digits.digits` × `per` (a power of ten) exactly; `None` for other shapes or overflow.
fn decimal_ns(text: &str, per: i64) -> Option<i64> {
    let (negative, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (int, frac) = t.split_once('.')?;
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = per.checked_ilog10()? as usize;
    let mut frac_value: i64 = 0;
    for i in 0..digits {
        let d = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        frac_value = frac_value * 10 + d;
    }
    let ns = int.parse::<i64>().ok()?.checked_mul(per)?.checked_add(frac_value)?;
    Some(if negative { -ns } else { ns })
}

fn influx(sub: &Subscription, topic: &TopicMatch, text: &str, arrival_ns: i64) -> Result<Vec<Raw>, PayloadError> {
    let per = match sub.time_format {
        TimeFormat::EpochS | TimeFormat::EpochMs | TimeFormat::EpochUs => ns_per_unit(sub.time_format),
        TimeFormat::Arrival => None,
        // Line protocol's own default precision.
        TimeFormat::Auto | TimeFormat::Rfc3339 | TimeFormat::EpochNs => Some(1),
    };
    let mut raws = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        let body = line.trim_end_matches('\r');
        if body.trim().is_empty() || body.trim_start().starts_with('#') {
            continue;
        }
        let fail = |reason: String| PayloadError::Line { line: number, reason };
        let parsed = match parse_lines(body).next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(fail(format!("malformed line protocol: {e}"))),
            None => continue,
        };
        let tag_point =
            parsed.series.tag_set.iter().flatten().find(|(k, _)| k.as_str() == "point").map(|(_, v)| v.to_string());
        let point = tag_point.or_else(|| topic.point.clone()).ok_or_else(|| fail("no point: tag it point=…".into()))?;
        let time_ns = match (parsed.timestamp, per) {
            (Some(t), Some(per)) => t.checked_mul(per).ok_or_else(|| fail("timestamp overflows nanoseconds".into()))?,
            _ => arrival_ns,
        };
        let mut quality = Quality::Valid;
        let mut values = Vec::new();
        for (key, value) in &parsed.field_set {
            let v = match value {
                FieldValue::F64(v) => *v,
                FieldValue::I64(v) => *v as f64,
                FieldValue::U64(v) => *v as f64,
                FieldValue::Boolean(b) => f64::from(u8::from(*b)),
                FieldValue::String(s) if key.as_str() == "quality" => {
                    quality = s.as_str().parse().map_err(|e: String| fail(e))?;
                    continue;
                }
                FieldValue::String(_) => return Err(fail(format!("field {key} is a string, expected a number"))),
            };
            values.push((key.to_string(), v));
        }
        for (parameter, value) in values {
            // Line protocol carries canonical units: the empty unit says so to `normalise`.
            raws.push(Raw { point: point.clone(), parameter, value, unit: String::new(), time_ns, quality });
        }
    }
    if raws.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(raws)
}

mod pick;
#[cfg(test)]
mod tests;
