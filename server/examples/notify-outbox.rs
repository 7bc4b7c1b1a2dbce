//! The notification outbox's cost of history: bytes on disk and the heap the notifier holds
//! after `ALERTS` alerts (default 30 000) fired and resolved, in rounds of 300, with the
//! delivery task's compaction (a round of delivery after each round of alerts) and without
//! it (the log replayed whole at a restart, as when nothing compacts it). Twice: with no
//! recipient (what is told is only remembered) and with one e-mail recipient (every alert
//! makes two notifications; no SMTP server is configured, so each is refused at once and
//! finished).
//!
//! The heap is counted by a global allocator wrapper: bytes allocated and not freed.
//!
//!   cargo run --release -p eitwatch-server --example notify-outbox
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicIsize, Ordering};

use eitwatch_config::notify_config::NotifySection;
use eitwatch_server::alerts::{Alert, State};
use eitwatch_server::compliance::{AlertKind, Severity};
use eitwatch_server::notify::{Notifier, Source, digest};

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

/// The alert book as the notifier asks it: only the live alerts are known.
struct Book {
    now_ns: i64,
    live: BTreeMap<u64, Alert>,
}

impl Source for Book {
    fn now_ns(&self) -> i64 {
        self.now_ns
    }

    fn alerts(&self, ids: &BTreeSet<u64>) -> BTreeMap<u64, Alert> {
        ids.iter().filter_map(|id| Some((*id, self.live.get(id)?.clone()))).collect()
    }

    fn area_of(&self, _factory: &str) -> String {
        "a".into()
    }

    fn digest(&self, _now_ns: i64, _sees: &dyn Fn(&str, &str) -> bool) -> digest::Digest {
        panic!("no recipient has a digest")
    }
}

fn alert(id: u64, state: State, t_ns: i64) -> Alert {
    Alert {
        id,
        key: format!("exceedance|f{:04}|outfall-1|cod", id % 100),
        kind: AlertKind::Exceedance,
        severity: Severity::Warning,
        state,
        factory: format!("f{:04}", id % 100),
        point: "outfall-1".into(),
        parameter: Some("cod".into()),
        detail: None,
        value: Some(150.5),
        limit: None,
        since_ns: t_ns,
        deadline_ns: None,
        pending_ns: t_ns,
        firing_ns: Some(t_ns),
        ack: None,
        resolved_ns: (state == State::Resolved).then_some(t_ns + 600_000_000_000),
    }
}

fn run(alerts: u64, config: &NotifySection, compact: bool, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("notify-outbox");
    let h0 = heap();
    let notifier = Notifier::open(dir.path(), config).expect("notify-outbox");
    let t0: i64 = 1_795_300_000 * 1_000_000_000;
    let mut book = Book { now_ns: t0, live: BTreeMap::new() };
    let mut id = 0u64;
    while id < alerts {
        let round: Vec<u64> = (id + 1..=(id + 300).min(alerts)).collect();
        id += round.len() as u64;
        book.now_ns += 3_600_000_000_000;
        let firing: Vec<Alert> = round.iter().map(|&i| alert(i, State::Firing, book.now_ns)).collect();
        notifier.on_alerts(&book, &firing);
        book.now_ns += 3_600_000_000_000;
        let resolved: Vec<Alert> = round.iter().map(|&i| alert(i, State::Resolved, book.now_ns)).collect();
        notifier.on_alerts(&book, &resolved);
        // The book keeps the newest resolved ones live.
        book.live = resolved.into_iter().map(|a| (a.id, a)).collect();
        if compact {
            rt.block_on(notifier.run_once(&book));
        }
    }
    let held = heap() - h0;
    drop(notifier);
    let path = dir.path().join("notify/outbox.log");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let lines = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
    let h1 = heap();
    let notifier = Notifier::open(dir.path(), config).expect("notify-outbox");
    let reopened = heap() - h1;
    drop(notifier);
    println!(
        "  {:<16} outbox.log {bytes:>10} bytes {lines:>7} lines  heap held {held:>10} bytes, reopened {reopened:>10}",
        if compact { "compacted" } else { "not compacted" }
    );
}

fn main() {
    let alerts: u64 = std::env::var("ALERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("notify-outbox");
    println!("{alerts} alerts fired and resolved, no recipient:");
    let none = NotifySection::default();
    run(alerts, &none, false, &rt);
    run(alerts, &none, true, &rt);
    println!("{alerts} alerts fired and resolved, one e-mail recipient subscribed to all:");
    let one = NotifySection {
        recipient: vec![
            serde_json::from_value(serde_json::json!({
                "id": "officer", "email": ["officer@diw.example"], "subscription": [{}]
            }))
            .expect("notify-outbox"),
        ],
        rate_max: u32::MAX,
        ..Default::default()
    };
    run(alerts, &one, false, &rt);
    run(alerts, &one, true, &rt);
}
