//! The embedded store alone, without HTTP or line protocol: N threads append 5 000-point
//! batches (one factory × 10 parameters × 500 seconds each, as `eitwatch-load` sends) for
//! a fixed time, every batch fdatasync'd before `append` returns. Prints points/s and the
//! number of syncs, to tell the store's share of ingest from the rest; then reopens the
//! store and prints how long the replay took (a restart).
//!
//! `cargo run --release -p eitwatch-server --example store-append -- [threads] [seconds] [dir]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::StoreSection;
use eitwatch_server::store::Store;

const PARAMETERS: [&str; 10] = ["cod", "bod", "ph", "tss", "tds", "temp", "flow", "oil_grease", "tkn", "zn"];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("eitwatch-store-append-{}", std::process::id())),
    };
    let store = Arc::new(Store::open(&dir, &StoreSection::default())?);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (store, next) = (store.clone(), next.clone());
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut points = 0;
                while Instant::now() < deadline {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let factory = format!("f{:04}", k % 1000 + 1);
                    let block = (k / 1000) as i64;
                    let mut batch = Vec::with_capacity(5000);
                    for l in 0..500i64 {
                        let t = (1_790_000_000 + block * 500 + l) * 1_000_000_000;
                        for (p, name) in PARAMETERS.iter().enumerate() {
                            let v = 10.0 + ((l * 7 + p as i64 * 3) % 10) as f64 * 0.125;
                            batch.push(Reading::new(Kind::Effluent, &factory, "outfall-1", name, v, t));
                        }
                    }
                    let (fresh, _) = store.append(&batch)?;
                    points += fresh.len() as u64;
                }
                Ok(points)
            })
        })
        .collect();
    let mut points = 0;
    for w in workers {
        points += w.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let batches = next.load(Ordering::Relaxed);
    println!(
        "store-append threads={threads} points={points} seconds={elapsed:.2} points_per_s={:.0} batches={batches}",
        points as f64 / elapsed
    );
    drop(store);
    // What a restart costs: every segment replayed into the index.
    let reopen = Instant::now();
    let store = Store::open(&dir, &StoreSection::default())?;
    println!(
        "store-append reopened readings={} series={} seconds={:.2}",
        store.len(),
        store.series_count(),
        reopen.elapsed().as_secs_f64()
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
