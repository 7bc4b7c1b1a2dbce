//! Memory per series, by part: the store, the compliance engine (series and tracks of the
//! registry, then every series' first reading), and the alert book for the conditions that
//! reading leaves standing, before and after the heap is trimmed as the compliance thread
//! does after a burst of alerts. The same shape as `scripts/bench-ingest.sh` (1 000
//! factories × 10 effluent parameters). RSS growth per series, so allocator slack counts, as
//! it does for the server.
//!
//! An active series' reading is a minute old; with `stale` it is 30 days old, as after a
//! province-wide outage, and leaves yesterday's availability, no data and its deadlines
//! standing for every point.
//!
//! `FACTORIES=N` (default 1 000) measures at another scale: the figures move by a few
//! dozen bytes with it, as the index's large blocks land in the heap or in their own mmap
//! (whose pages not yet written count for nothing in RSS).
//!
//! With `day`, every series then gets a day of readings a minute apart, a minute of every
//! series a batch as they would arrive, into the store and then the engine (ticking each
//! hour): what a day costs a series in each, the history the server keeps in memory.
//!
//!   cargo run --release -p eitwatch-server --example memory-per-series [-- stale|day]
use std::sync::Arc;

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::{AlertsSection, ServerConfig, StoreSection};
use eitwatch_config::site::Registry;
use eitwatch_server::alerts::AlertBook;
use eitwatch_server::compliance::{Engine, ManualClock, Settings};
use eitwatch_server::store::Store;

fn rss_kib() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("memory-per-series");
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .expect("memory-per-series")
        .split_whitespace()
        .nth(1)
        .expect("memory-per-series")
        .parse()
        .expect("memory-per-series")
}

fn main() {
    let factories: usize = std::env::var("FACTORIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    // The load generator's parameters and compliant values (`tests/src/bin/eitwatch-load.rs`).
    let params = [
        ("cod", 60.0),
        ("bod", 12.0),
        ("ph", 7.2),
        ("tss", 25.0),
        ("tds", 800.0),
        ("temp", 30.0),
        ("flow", 120.0),
        ("oil_grease", 2.0),
        ("tkn", 40.0),
        ("zn", 1.5),
    ];
    let names: Vec<&str> = params.iter().map(|(p, _)| *p).collect();
    let mut s = String::from(
        "[server]\ndata_dir = \"/x\"\n[[area]]\nid = \"a\"\nname_en = \"A\"\nname_th = \"A\"\nprovince = \"P\"\n",
    );
    for f in 0..factories {
        s.push_str(&format!("[[area.factory]]\nid = \"f{f:04}\"\nname = \"F\"\ncategory = 3\n[[area.factory.point]]\nid = \"outfall-1\"\nkind = \"effluent\"\nparameters = {names:?}\n"));
    }
    let config: ServerConfig = eitwatch_config::problems::load(&s, "x.toml").expect("memory-per-series");
    let mode = std::env::args().nth(1).unwrap_or_default();
    let stale = mode == "stale";
    let t0: i64 = 1_795_300_000 * 1_000_000_000;
    let now = t0 + if stale { 30 * 86_400_000_000_000 } else { 60_000_000_000 };
    let readings: Vec<Reading> = (0..factories)
        .flat_map(|f| {
            params.iter().map(move |(p, v)| Reading::new(Kind::Effluent, &format!("f{f:04}"), "outfall-1", p, *v, t0))
        })
        .collect();
    let n = readings.len() as i64;
    let dir = tempfile::tempdir().expect("memory-per-series");
    let r0 = rss_kib();
    let store = Store::open(dir.path(), &StoreSection::default()).expect("memory-per-series");
    store.append(&readings).expect("memory-per-series");
    let r1 = rss_kib();
    let clock = Arc::new(ManualClock::new(now));
    let mut engine = Engine::new(Registry::new(config.area.clone()), clock.clone(), Settings::default());
    let r2 = rss_kib();
    engine.ingest(&readings);
    engine.tick();
    let r3 = rss_kib();
    let conditions = engine.conditions();
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("memory-per-series");
    let r4 = rss_kib();
    book.reconcile(&conditions, now).expect("memory-per-series");
    drop(conditions);
    let r5 = rss_kib();
    // As the compliance thread does after a burst of alerts.
    eitwatch_server::monitor::trim_heap();
    let r6 = rss_kib();
    let per = |a: i64, b: i64| (b - a) * 1024 / n;
    println!("{n} series, {} readings, bytes per series:", if stale { "stale" } else { "active" });
    println!("  store (key, index, first point)          {:>6}", per(r0, r1));
    println!("  engine: series and tracks registered     {:>6}", per(r1, r2));
    println!("  engine: each series' first reading       {:>6}", per(r2, r3));
    println!("  alert book: {:>6} alerts standing        {:>6}", book.open_alerts().len(), per(r4, r5));
    println!("  alert book, heap trimmed after the burst {:>6}", per(r4, r6));
    println!("  total (trimmed)                          {:>6}", per(r0, r3) + per(r4, r6));
    if mode == "day" {
        const MINUTE_NS: i64 = 60_000_000_000;
        let minutes = 1440;
        let batch = |m: i64| -> Vec<Reading> {
            let t = t0 + m * MINUTE_NS;
            (0..factories)
                .flat_map(|f| {
                    params.iter().map(move |(p, v)| {
                        let v = v + (m % 10) as f64 * 0.125;
                        Reading::new(Kind::Effluent, &format!("f{f:04}"), "outfall-1", p, v, t)
                    })
                })
                .collect()
        };
        let d0 = rss_kib();
        for m in 1..=minutes {
            store.append(&batch(m)).expect("memory-per-series");
        }
        let d1 = rss_kib();
        for m in 1..=minutes {
            clock.set(t0 + (m + 1) * MINUTE_NS);
            engine.ingest(&batch(m));
            if m % 60 == 0 {
                engine.tick();
            }
        }
        let d2 = rss_kib();
        println!("a day at one reading a minute, bytes per series per day (per reading):");
        let day = |a: i64, b: i64| ((b - a) * 1024 / n, (b - a) as f64 * 1024.0 / (n * minutes) as f64);
        let ((store_day, store_reading), (engine_day, engine_reading)) = (day(d0, d1), day(d1, d2));
        println!("  store                                    {store_day:>6} ({store_reading:.1})");
        println!("  engine                                   {engine_day:>6} ({engine_reading:.1})");
    }
    // Exits without freeing: a heap profiler (valgrind --tool=dhat) sees the whole state live.
    std::process::exit(0);
}
