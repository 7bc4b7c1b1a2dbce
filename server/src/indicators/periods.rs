//! Reporting periods in Bangkok time: a month (`2026-10`), a calendar quarter (`2026-Q4`),
//! a Thai fiscal year (`FY2027`: 1 October 2026 to 30 September 2027) or any range
//! (`from`/`to`). Years from 2400 up are read as Buddhist-era years (B.E. = A.D. + 543),
//! so `FY2570` is `FY2027`.

use jiff::civil::{Date, date};
use jiff::tz::Offset;
use serde::Serialize;

use crate::compliance::period;

/// `[from_ns, to_ns)` with how it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    /// `2026-10`, `2026-Q4`, `FY2027`, or `from–to` for a range.
    pub label: String,
    /// Start (inclusive), ns since the epoch.
    pub from_ns: i64,
    /// End (exclusive).
    pub to_ns: i64,
    /// Start in Bangkok time.
    pub from_local: String,
    /// End in Bangkok time.
    pub to_local: String,
}

/// A period or range that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: \"{value}\" {expected}")]
pub struct RangeError {
    /// The query key (`period`, `from`, `to`).
    pub key: String,
    /// What was given.
    pub value: String,
    /// What was expected.
    pub expected: String,
}

fn err(key: &str, value: &str, expected: impl Into<String>) -> RangeError {
    RangeError { key: key.into(), value: value.into(), expected: expected.into() }
}

const BE_FROM: i16 = 2400;
const BE_OFFSET: i16 = 543;

impl Range {
    /// A range from its bounds.
    pub fn new(label: String, from_ns: i64, to_ns: i64) -> Range {
        Range { label, from_ns, to_ns, from_local: period::local(from_ns), to_local: period::local(to_ns) }
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Range {
        let len = self.to_ns - self.from_ns;
        Range::new(format!("previous {}", self.label), self.from_ns - len, self.from_ns)
    }

    /// `period=2026-10|2026-Q4|FY2027`.
    pub fn parse_period(value: &str) -> Result<Range, RangeError> {
        const EXPECTED: &str = "is not a period, expected YYYY-MM (2026-10), YYYY-Qn (2026-Q4) or FYYYYY (FY2027; \
                                B.E. years from 2400 up, FY2570)";
        let v = value.trim();
        let year = |s: &str| -> Result<i16, RangeError> {
            let y: i16 = s.parse().map_err(|_| err("period", value, EXPECTED))?;
            let y = if y >= BE_FROM { y - BE_OFFSET } else { y };
            if !(1900..=2200).contains(&y) {
                return Err(err("period", value, "is out of range (years 1900–2200 A.D.)"));
            }
            Ok(y)
        };
        let (from, to) = if let Some(fy) = v.strip_prefix("FY").or_else(|| v.strip_prefix("fy")) {
            let y = year(fy)?;
            (date(y - 1, 10, 1), date(y, 10, 1))
        } else if let Some((y, q)) = v.split_once("-Q").or_else(|| v.split_once("-q")) {
            let y = year(y)?;
            let q: i8 = q.parse().ok().filter(|q| (1..=4).contains(q)).ok_or_else(|| err("period", value, EXPECTED))?;
            let start = date(y, (q - 1) * 3 + 1, 1);
            (start, add_months(start, 3))
        } else if let Some((y, m)) = v.split_once('-') {
            let y = year(y)?;
            let m: i8 =
                m.parse().ok().filter(|m| (1..=12).contains(m)).ok_or_else(|| err("period", value, EXPECTED))?;
            let start = date(y, m, 1);
            (start, add_months(start, 1))
        } else {
            return Err(err("period", value, EXPECTED));
        };
        Ok(Range::new(v.to_string(), midnight(from), midnight(to)))
    }

    /// `from=…&to=…`: RFC 3339 times or Bangkok dates (`2026-10-01`, midnight Bangkok); `to`
    /// is exclusive.
    pub fn parse_bounds(from: &str, to: &str) -> Result<Range, RangeError> {
        let (f, t) = (bound("from", from)?, bound("to", to)?);
        if t <= f {
            return Err(err("to", to, format!("is not after from ({from})")));
        }
        Ok(Range::new(format!("{from} – {to}"), f, t))
    }
}

fn bound(key: &str, value: &str) -> Result<i64, RangeError> {
    if let Ok(t) = value.parse::<jiff::Timestamp>() {
        return Ok(t.as_nanosecond() as i64);
    }
    match value.parse::<Date>() {
        Ok(d) => Ok(midnight(d)),
        Err(_) => Err(err(
            key,
            value,
            "is not a time, expected a Bangkok date (2026-10-01) or RFC 3339 (2026-10-01T00:00:00+07:00)",
        )),
    }
}

fn add_months(d: Date, months: i8) -> Date {
    let total = d.month() as i16 - 1 + months as i16;
    date(d.year() + total.div_euclid(12), (total.rem_euclid(12) + 1) as i8, 1)
}

/// 00:00 Bangkok of a date, ns.
fn midnight(d: Date) -> i64 {
    Offset::constant(7).to_timestamp(d.at(0, 0, 0, 0)).map_or(0, |t| t.as_nanosecond() as i64)
}

/// A Bangkok date, optionally in the Buddhist era: `2026-10-01` or `2569-10-01`.
pub fn date_text(t_ns: i64, buddhist_era: bool) -> String {
    let d = period::local_date(t_ns);
    if !buddhist_era {
        return d;
    }
    match d.split_once('-') {
        Some((y, rest)) => match y.parse::<i32>() {
            Ok(y) => format!("{}-{rest}", y + BE_OFFSET as i32),
            Err(_) => d,
        },
        None => d,
    }
}

/// A Bangkok date and time (minutes), optionally in the Buddhist era.
pub fn datetime_text(t_ns: i64, buddhist_era: bool) -> String {
    let full = period::local(t_ns);
    let time = full.get(11..16).unwrap_or("");
    format!("{} {time}", date_text(t_ns, buddhist_era))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().expect("ts").as_nanosecond() as i64
    }

    #[test]
    fn months_quarters_fiscal_years_in_bangkok_time() {
        let m = Range::parse_period("2026-10").unwrap();
        assert_eq!((m.from_ns, m.to_ns), (ts("2026-09-30T17:00:00Z"), ts("2026-10-31T17:00:00Z")));
        let d = Range::parse_period("2026-12").unwrap();
        assert_eq!(d.to_ns, ts("2026-12-31T17:00:00Z"));
        let q = Range::parse_period("2026-Q4").unwrap();
        assert_eq!((q.from_ns, q.to_ns), (m.from_ns, ts("2026-12-31T17:00:00Z")));
        let fy = Range::parse_period("FY2027").unwrap();
        assert_eq!((fy.from_ns, fy.to_ns), (ts("2026-09-30T17:00:00Z"), ts("2027-09-30T17:00:00Z")));
        assert_eq!(Range::parse_period("FY2570").unwrap().from_ns, fy.from_ns);
        assert_eq!(Range::parse_period("2569-10").unwrap().from_ns, m.from_ns);
        let prev = m.previous();
        assert_eq!((prev.from_ns, prev.to_ns), (m.from_ns - 31 * period::DAY_NS, m.from_ns));
        for bad in ["2026-13", "2026-Q5", "FY", "October", "2026"] {
            let e = Range::parse_period(bad).unwrap_err();
            assert_eq!(e.key, "period", "{bad}");
        }
        let r = Range::parse_bounds("2026-10-01", "2026-10-08T00:00:00+07:00").unwrap();
        assert_eq!(r.to_ns - r.from_ns, 7 * period::DAY_NS);
        assert_eq!(Range::parse_bounds("2026-10-08", "2026-10-01").unwrap_err().key, "to");
        assert_eq!(date_text(m.from_ns, true), "2569-10-01");
        assert_eq!(date_text(m.from_ns, false), "2026-10-01");
        assert_eq!(datetime_text(m.from_ns + 90 * 60 * period::SECOND_NS, true), "2569-10-01 01:30");
    }
}
