//! The alert book's cost of history: bytes on disk per alert and the heap the book holds,
//! after `ALERTS` alerts (default 30 000) shaped like the engine's, and once reopened (a
//! restart).
//!
//! The conditions are the engine's own: 100 factories × 10 effluent parameters, every
//! parameter beyond its limit at t0 and the clock two hours on, so exceedances, no data and
//! notification deadlines. Rounds of 300 of them (rotating) open alerts; a tenth of each
//! round is acknowledged; the next round's reconcile resolves the round before. Each
//! condition starts at its own second of its round's hour, its value up to 100 % above the
//! template's (pseudo-random, the same on every run), as a new episode would.
//!
//! Then the same history as one log of operations, as written before the archive existed,
//! is opened: the heap at its peak while it is replayed and archived, and after.
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
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: isize) {
    let now = HEAP.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: ptr was given by alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
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

/// Bytes of the archive's segments and the alerts they hold (each header's count).
fn archive(dir: &std::path::Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    let (mut bytes, mut alerts) = (0, 0);
    for e in entries {
        let data = std::fs::read(e.expect("alert-history").path()).expect("alert-history");
        bytes += data.len() as u64;
        alerts += u64::from(u32::from_le_bytes([data[12], data[13], data[14], data[15]]));
    }
    (bytes, alerts)
}

fn print_archive(dir: &std::path::Path) {
    let (bytes, alerts) = archive(dir);
    println!(
        "  of which the archive         {bytes:>12} bytes  {:>8.1} bytes per archived alert ({alerts})",
        bytes as f64 / alerts.max(1) as f64
    );
}

/// xorshift64: the same sequence on every run.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
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
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while written < alerts {
        let n = round_size.min((alerts - written) as usize);
        let start = (round as usize * round_size) % templates.len();
        let since_ns = t0 + round * HOUR_NS;
        let conditions: Vec<Condition> = (0..n)
            .map(|i| {
                let mut c = templates[(start + i) % templates.len()].clone();
                // Each its own start within the hour and its own value, as measured.
                let since_ns = since_ns + (next_random(&mut seed) % 3_600) as i64 * 1_000_000_000;
                c.since_ns = since_ns;
                c.value = c.value.map(|v| v * (1.0 + (next_random(&mut seed) % 100_000) as f64 / 100_000.0));
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
    print_archive(&dir.path().join("alerts"));
    println!("  heap held by the book        {held:>12} bytes  (peak while writing {peak})");
    println!("  heap held by the book reopened {reopened:>10} bytes");

    // The same history as one log of operations: open, acknowledgement, resolution.
    let mut history = Vec::new();
    book.history(i64::MIN, i64::MAX, |a| {
        history.push(a);
        std::ops::ControlFlow::Continue(())
    })
    .expect("alert-history");
    drop(book);
    history.reverse();
    let whole = tempfile::tempdir().expect("alert-history");
    let whole_path = whole.path().join("alerts.log");
    {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&whole_path).expect("alert-history"));
        for a in &history {
            let mut opened = serde_json::to_value(a).expect("alert-history");
            opened["state"] = "firing".into();
            opened["ack"] = serde_json::Value::Null;
            opened["resolved_ns"] = serde_json::Value::Null;
            let mut ops = vec![serde_json::json!({"op": "open", "alert": opened})];
            if let Some(ack) = &a.ack {
                ops.push(serde_json::json!({"op": "ack", "id": a.id, "ack": ack}));
            }
            if let Some(at_ns) = a.resolved_ns {
                ops.push(serde_json::json!({"op": "resolve", "id": a.id, "at_ns": at_ns}));
            }
            for op in ops {
                serde_json::to_writer(&mut out, &op).expect("alert-history");
                out.write_all(b"\n").expect("alert-history");
            }
        }
    }
    let whole_bytes = disk_bytes(&whole_path);
    let n = history.len();
    drop(history);
    let h2 = heap();
    PEAK.store(h2, Ordering::Relaxed);
    let book = AlertBook::open(&whole_path, AlertsSection::default()).expect("alert-history");
    let (peak, held) = (PEAK.load(Ordering::Relaxed) - h2, heap() - h2);
    let after = disk_bytes(&whole_path) + disk_bytes(&whole.path().join("alerts"));
    println!(
        "the same {n} alerts as one log of operations ({whole_bytes} bytes, {:.1} per alert), opened:",
        whole_bytes as f64 / n as f64
    );
    println!("  heap at the peak of the replay {peak:>10} bytes, held after {held}");
    println!("  on disk after                {after:>12} bytes  {:>8.1} bytes per alert", after as f64 / n as f64);
    print_archive(&whole.path().join("alerts"));
    drop(book);
}
