//! History on disk, measured: `series` series (factories × 10 parameters) of realistic
//! readings (random walks at an analyser's 0.01 resolution, one a minute) over `days`
//! Bangkok days, written in one-hour bodies per factory, a tenth of them out of order (the
//! hour before sent after the hour after), with the store's upkeep (flushes, compaction of
//! closed days, retirement of the log) as the server runs it. Then it reopens the store and
//! prints bytes on disk per reading, the reopen time, the process' RSS before and after the
//! reopen, and the time to read a year-long hourly chart of one series.
//!
//! `cargo run --release -p eitwatch-server --example store-history -- [series] [days] [dir]`

use std::time::Instant;

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::StoreSection;
use eitwatch_server::store::Store;

const PARAMETERS: [&str; 10] = ["cod", "bod", "ph", "tss", "tds", "temp", "flow", "oil_grease", "tkn", "zn"];
const MINUTE_NS: i64 = 60_000_000_000;
/// 2025-01-01T00:00:00+07:00.
const START_NS: i64 = 1_735_664_400_000_000_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A 64-bit LCG: the same walk every run.
struct Walk(u64);

impl Walk {
    fn step(&mut self) -> i64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % 7) as i64 - 3
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if std::env::args().nth(1).as_deref() == Some("reopen") {
        let dir = std::env::args().nth(2).unwrap_or_default();
        let days = std::env::args().nth(3).map_or(Ok(30), |d| d.parse())?;
        return reopen(std::path::Path::new(&dir), days);
    }
    let series: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let days: i64 = args.next().map_or(Ok(30), |a| a.parse())?;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("eitwatch-store-history-{}", std::process::id())),
    };
    let factories = series.div_ceil(PARAMETERS.len());
    let options = StoreSection::default();
    let store = std::sync::Arc::new(Store::open(&dir, &options)?);
    store.start_retiring();
    // Per series its value in hundredths.
    let mut level: Vec<i64> = (0..factories * PARAMETERS.len()).map(|i| 500 + (i as i64 % 700)).collect();
    let mut walk = Walk(7);
    let started = Instant::now();
    let mut readings = 0u64;
    let mut held_back: Vec<Vec<Reading>> = Vec::new();
    for hour in 0..days * 24 {
        for f in 0..factories {
            let mut body = Vec::with_capacity(60 * PARAMETERS.len());
            for minute in 0..60 {
                let t = START_NS + (hour * 60 + minute) * MINUTE_NS;
                for (p, parameter) in PARAMETERS.iter().enumerate() {
                    let i = f * PARAMETERS.len() + p;
                    level[i] = (level[i] + walk.step()).max(0);
                    let value = level[i] as f64 / 100.0;
                    body.push(Reading::new(Kind::Effluent, &format!("f{f:04}"), "outfall-1", parameter, value, t));
                }
            }
            readings += body.len() as u64;
            // A tenth of the bodies overtaken by the next one.
            if (f + hour as usize) % 10 == 0 {
                held_back.push(body);
            } else {
                store.append(&body)?;
                for late in held_back.drain(..) {
                    store.append(&late)?;
                }
            }
        }
        // The server's upkeep, here once an hour of readings (it runs every 10 s there).
        store.maintain_at(START_NS + (hour + 1) * 60 * MINUTE_NS);
    }
    for late in held_back.drain(..) {
        store.append(&late)?;
    }
    store.maintain_at(START_NS + (days + 1) * 24 * 60 * MINUTE_NS);
    let ingest_s = started.elapsed().as_secs_f64();
    let rss_ingest = rss_kib();
    store.close()?;
    drop(store);
    let bytes = dir_bytes(&dir);
    println!("series                  {}", factories * PARAMETERS.len());
    println!("days                    {days}");
    println!("readings                {readings}");
    println!("ingest                  {ingest_s:.1} s ({:.0} readings/s, with upkeep)", readings as f64 / ingest_s);
    println!("RSS after ingest        {rss_ingest} KiB");
    println!("bytes on disk           {bytes} ({:.2} per reading)", bytes as f64 / readings as f64);
    let parts = dir_bytes(&dir.join("parts"));
    println!("  in partition files    {parts} ({:.2} per reading)", parts as f64 / readings as f64);
    println!("  in the log and else   {} (not yet retired)", bytes - parts);
    // The reopen in a process of its own, so that its RSS is the reopened store's alone.
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["reopen", &dir.to_string_lossy(), &days.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "the reopen failed");
    if std::env::args().nth(3).is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Reopens the store in `dir` and reads a chart of one series over `days`.
fn reopen(dir: &std::path::Path, days: i64) -> anyhow::Result<()> {
    let options = StoreSection::default();
    let rss_before = rss_kib();
    let reopened = Instant::now();
    let store = Store::open(dir, &options)?;
    let reopen_ms = reopened.elapsed().as_secs_f64() * 1e3;
    let rss_after = rss_kib();
    println!("store holds             {} readings", store.len());
    println!("reopen                  {reopen_ms:.0} ms");
    println!("RSS before/after reopen {rss_before} KiB / {rss_after} KiB");
    let chart = Instant::now();
    let buckets = store.downsample(
        |k| &*k.factory == "f0000" && &*k.parameter == "cod",
        START_NS,
        START_NS + days * 24 * 60 * MINUTE_NS,
        3_600_000_000_000,
    );
    let chart_ms = chart.elapsed().as_secs_f64() * 1e3;
    println!("hourly chart, 1 series  {chart_ms:.1} ms ({} buckets)", buckets.first().map_or(0, |(_, b)| b.len()));
    println!("RSS after the chart     {} KiB", rss_kib());
    Ok(())
}
