//! The alert book's cost of history: bytes on disk per alert and the heap the book holds,
//! after `ALERTS` alerts (default 30 000) shaped like the engine's, and once reopened (a
//! restart).
//!
//! The conditions are the engine's own: 100 factories × 10 effluent parameters, every
//! parameter beyond its limit at t0 and the clock two hours on, so exceedances, no data and
//! notification deadlines. Rounds of 300 of them (rotating) open alerts; a tenth of each
//! round is acknowledged; the next round's reconcile resolves the round before. Each
//! condition starts at its round's hour, its value moved a little, as a new episode would.
//!
//! The heap is counted by a global allocator wrapper: bytes allocated and not freed.
//!
//!   cargo run --release -p eitwatch-server --example alert-history
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::{AlertsSection, ServerConfig};
use eitwatch_config::site::Registry;
use eitwatch_server::alerts::AlertBook;
use eitwatch_server::alerts::text::What;
use eitwatch_server::compliance::{Condition, Engine, ManualClock, Settings};

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: ptr was given by alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as GlobalAlloc::realloc requires, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

fn disk_bytes(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).expect("alert-history").map(|e| disk_bytes(&e.expect("alert-history").path())).sum()
}

const HOUR_NS: i64 = 3_600_000_000_000;

fn main() {
    let alerts: u64 = std::env::var("ALERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000);
    let params = [
        ("cod", 130.0),
        ("bod", 30.0),
        ("ph", 12.0),
        ("tss", 90.0),
        ("tds", 5000.0),
        ("temp", 45.0),
        ("oil_grease", 9.0),
        ("tkn", 140.0),
        ("zn", 9.0),
        ("flow", 120.0),
    ];
    let names: Vec<&str> = params.iter().map(|(p, _)| *p).collect();
    let mut s = String::from(
        "[server]\ndata_dir = \"/x\"\n[[area]]\nid = \"a\"\nname_en = \"A\"\nname_th = \"A\"\nprovince = \"P\"\n",
    );
    for f in 0..100 {
        s.push_str(&format!("[[area.factory]]\nid = \"f{f:04}\"\nname = \"F\"\ncategory = 3\n[[area.factory.point]]\nid = \"outfall-1\"\nkind = \"effluent\"\nparameters = {names:?}\n"));
    }
    let config: ServerConfig = eitwatch_config::problems::load(&s, "x.toml").expect("alert-history");
    let t0: i64 = 1_795_300_000 * 1_000_000_000;
    let clock = Arc::new(ManualClock::new(t0 + 2 * HOUR_NS));
    let mut engine = Engine::new(Registry::new(config.area.clone()), clock, Settings::default());
    let readings: Vec<Reading> = (0..100)
        .flat_map(|f| {
            params.iter().map(move |(p, v)| Reading::new(Kind::Effluent, &format!("f{f:04}"), "outfall-1", p, *v, t0))
        })
        .collect();
    engine.ingest(&readings);
    engine.tick();
    let templates: Vec<Condition> = engine.conditions();
    let mut kinds = std::collections::BTreeMap::new();
    for c in &templates {
        *kinds.entry(c.kind.as_str()).or_insert(0) += 1;
    }
    println!("{} conditions of the engine as templates: {kinds:?}", templates.len());
    drop(engine);

    let dir = tempfile::tempdir().expect("alert-history");
    let path = dir.path().join("alerts.log");
    let policy = AlertsSection::default();
    let h0 = heap();
    let book = AlertBook::open(&path, policy.clone()).expect("alert-history");
    let round_size = 300usize;
    let mut written = 0u64;
    let mut round = 0i64;
    let mut peak = 0isize;
    while written < alerts {
        let n = round_size.min((alerts - written) as usize);
        let start = (round as usize * round_size) % templates.len();
        let since_ns = t0 + round * HOUR_NS;
        let conditions: Vec<Condition> = (0..n)
            .map(|i| {
                let mut c = templates[(start + i) % templates.len()].clone();
                c.since_ns = since_ns;
                c.value = c.value.map(|v| v + (round % 7) as f64 * 0.25);
                if let Some(d) = c.detail.as_mut() {
                    if let What::Exceedance { period_start_ns, .. } = &mut d.what {
                        *period_start_ns = since_ns;
                    }
                }
                c
            })
            .collect();
        let now = since_ns + 2 * HOUR_NS + (round * 7_919_000_003) % HOUR_NS;
        let changed = book.reconcile(&conditions, now).expect("alert-history");
        let opened: Vec<u64> = changed.iter().filter(|a| a.resolved_ns.is_none()).map(|a| a.id).collect();
        for id in opened.iter().step_by(10) {
            book.ack(*id, "write token 1a2b3c", "checking the analyser", now + 600_000_000_123).expect("alert-history");
        }
        written += opened.len() as u64;
        round += 1;
        peak = peak.max(heap() - h0);
    }
    // The last round resolved too.
    book.reconcile(&[], t0 + (round + 3) * HOUR_NS).expect("alert-history");
    let held = heap() - h0;
    let open: usize = book.open_counts().values().sum();
    drop(book);
    let bytes = disk_bytes(&path) + disk_bytes(&dir.path().join("alerts"));
    let h1 = heap();
    let book = AlertBook::open(&path, policy).expect("alert-history");
    let reopened = heap() - h1;
    let open_again: usize = book.open_counts().values().sum();
    println!("{written} alerts written in {round} rounds, {open} open at the end ({open_again} after reopening)");
    println!(
        "  on disk                      {bytes:>12} bytes  {:>8.1} bytes per alert",
        bytes as f64 / written as f64
    );
    println!("  heap held by the book        {held:>12} bytes  (peak while writing {peak})");
    println!("  heap held by the book reopened {reopened:>10} bytes");
}
