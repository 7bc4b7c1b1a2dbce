//! Line-protocol bodies the tests write.

/// `n` lines a minute apart from `start_ns`.
pub fn minutes(
    measurement: &str,
    factory: &str,
    point: &str,
    field: &str,
    value: f64,
    start_ns: i64,
    n: i64,
) -> String {
    (0..n)
        .map(|i| {
            format!("{measurement},factory={factory},point={point} {field}={value} {}\n", start_ns + i * 60_000_000_000)
        })
        .collect()
}
