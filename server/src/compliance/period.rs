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
/// the instant itself (`start == end`). Saturating at the ends of i64: ingest refuses times
/// outside its window, but a data directory may hold readings stored before it did.
pub fn bounds(averaging: Averaging, t_ns: i64) -> (i64, i64) {
    match averaging {
        Averaging::Instantaneous => (t_ns, t_ns),
        Averaging::Hourly => aligned(t_ns, HOUR_NS, 0),
        Averaging::Daily => day(t_ns),
    }
}

/// `[start, end)` of the Bangkok calendar day holding `t_ns`.
pub fn day(t_ns: i64) -> (i64, i64) {
    aligned(t_ns, DAY_NS, BANGKOK_OFFSET_NS)
}

/// `[start, end)` of the `len_ns` slot holding `t_ns`, slots aligned to `offset_ns` before the
/// epoch; computed wide and clamped to i64, so the slot still holds `t_ns` at the ends.
fn aligned(t_ns: i64, len_ns: i64, offset_ns: i64) -> (i64, i64) {
    // Every real time is far from the ends: i64 arithmetic (i128 division is a library call
    // on the hot path of every reading).
    const SAFE: i64 = i64::MAX / 2;
    if (-SAFE..SAFE).contains(&t_ns) {
        let start = (t_ns + offset_ns).div_euclid(len_ns) * len_ns - offset_ns;
        return (start, start + len_ns);
    }
    let (t, len, offset) = (i128::from(t_ns), i128::from(len_ns), i128::from(offset_ns));
    let start = (t + offset).div_euclid(len) * len - offset;
    let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    (clamp(start), clamp(start + len))
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
