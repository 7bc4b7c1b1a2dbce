//! Calendar periods in Asia/Bangkok time, expected readings and availability.
//!
//! Thailand keeps UTC+07:00 all year (no daylight saving since 1920), so the zone is the
//! fixed offset +07:00: the workspace's jiff is built without a time-zone database, and a
//! fixed offset gives the same periods. Hours coincide with UTC hours; days run from
//! 00:00 to 24:00 Bangkok time (17:00 UTC the day before).

use eitwatch_config::standards::Averaging;

/// One second, in ns.
pub const SECOND_NS: i64 = 1_000_000_000;
/// One hour, in ns.
pub const HOUR_NS: i64 = 3600 * SECOND_NS;
/// One day, in ns.
pub const DAY_NS: i64 = 24 * HOUR_NS;
/// Bangkok's offset from UTC.
pub const BANGKOK_OFFSET_NS: i64 = 7 * HOUR_NS;

/// `[start, end)` of the period of `averaging` holding `t_ns`; an instantaneous "period" is
/// the instant itself (`start == end`). Never overflows: ingest refuses times outside its
/// window, but a data directory may hold readings stored before it did.
pub fn bounds(averaging: Averaging, t_ns: i64) -> (i64, i64) {
    match averaging {
        Averaging::Instantaneous => (t_ns, t_ns),
        Averaging::Hourly => aligned::<HOUR_NS, 0>(t_ns),
        Averaging::Daily => day(t_ns),
    }
}

/// `[start, end)` of the Bangkok calendar day holding `t_ns`.
pub fn day(t_ns: i64) -> (i64, i64) {
    aligned::<DAY_NS, BANGKOK_OFFSET_NS>(t_ns)
}

/// `[start, end)` of the `LEN_NS` slot holding `t_ns`, slots aligned to `OFFSET_NS` before the
/// epoch. Constants, so that the division is a multiplication: this runs for every reading.
/// A time beyond ±2^62 ns (before 1824 or after 2116, which ingest and the API refuse) gets
/// the slot of that bound instead of overflowing.
#[inline]
fn aligned<const LEN_NS: i64, const OFFSET_NS: i64>(t_ns: i64) -> (i64, i64) {
    const SAFE: i64 = 1 << 62;
    let t = t_ns.clamp(-SAFE, SAFE);
    let start = (t + OFFSET_NS).div_euclid(LEN_NS) * LEN_NS - OFFSET_NS;
    (start, start + LEN_NS)
}

/// Readings expected in `[start, end)` at one per `interval_s` (at least one).
pub fn expected(start_ns: i64, end_ns: i64, interval_s: u64) -> u32 {
    let interval_ns = (interval_s.max(1) as i64).saturating_mul(SECOND_NS);
    ((end_ns - start_ns) / interval_ns).max(1) as u32
}

/// Whether `valid` of `expected` readings reach `min_pct` percent. In integers where it
/// matters: 48 of 60 is exactly 80 % and counts.
pub fn sufficient(valid: u32, expected: u32, min_pct: f64) -> bool {
    (valid as f64) * 100.0 >= min_pct * expected as f64 - 1e-9
}

/// Availability in percent.
pub fn availability_pct(valid: u32, expected: u32) -> f64 {
    if expected == 0 { 0.0 } else { valid as f64 * 100.0 / expected as f64 }
}

/// `t_ns` as Bangkok local time, `2026-11-23T07:00:00+07:00`.
pub fn local(t_ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(t_ns as i128) {
        Ok(t) => t.display_with_offset(jiff::tz::Offset::constant(7)).to_string(),
        Err(_) => t_ns.to_string(),
    }
}

/// The Bangkok date of `t_ns`, `2026-11-23`.
pub fn local_date(t_ns: i64) -> String {
    let full = local(t_ns);
    full.get(..10).unwrap_or(&full).to_string()
}
