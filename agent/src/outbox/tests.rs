use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use eitwatch_config::reading::{Kind, Quality, Source};
use proptest::prelude::*;

use super::*;

const T0: i64 = 1_795_300_000_000_000_000;
const BIG: Options = Options { max_bytes: 1 << 30, segment_bytes: 1 << 20 };

fn reading(i: u64) -> Reading {
    let param = ["cod", "bod", "ph"][(i % 3) as usize];
    let mut r = Reading::new(
        Kind::Effluent,
        "f1",
        &format!("outfall-{}", i % 2 + 1),
        param,
        i as f64 + 0.25,
        T0 + i as i64 * 1_000_000_000,
    );
    if i % 7 == 0 {
        r.quality = Quality::Suspect;
    }
    if i % 11 == 0 {
        r.source = Source::Lab;
        r.below_detection_limit = true;
    }
    r
}

fn readings(range: Range<u64>) -> Vec<Reading> {
    range.map(reading).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn open(dir: &Path, options: Options, sinks: &[&str]) -> (Outbox, Recovery) {
    Outbox::open(dir, options, sinks).expect("open")
}

fn all(outbox: &Outbox) -> Vec<(u64, Reading)> {
    outbox.read(0, u64::MAX, usize::MAX).expect("read")
}

fn last_segment(dir: &Path) -> PathBuf {
    segment::list(dir).expect("list").pop().expect("a segment").1
}

#[test]
fn appends_read_back_exactly_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    {
        let (outbox, rec) = open(dir.path(), BIG, &["server"]);
        assert_eq!(rec.readings, 0);
        assert_eq!(rt.block_on(outbox.append(&readings(0..100))).expect("append"), 0..100);
        assert_eq!(rt.block_on(outbox.append(&readings(100..150))).expect("append"), 100..150);
        assert_eq!(outbox.durable_end(), 150);
        let got = outbox.read(40, 60, 100).expect("read");
        assert_eq!(got, (40..60).map(|i| (i, reading(i))).collect::<Vec<_>>());
        assert_eq!(outbox.read(140, 1000, 3).expect("read").len(), 3, "max respected");
    }
    let (outbox, rec) = open(dir.path(), BIG, &["server"]);
    assert_eq!((rec.readings, rec.cut_bytes, rec.lost_readings), (150, 0, 0));
    assert_eq!(all(&outbox), (0..150).map(|i| (i, reading(i))).collect::<Vec<_>>());
    assert_eq!(rt.block_on(outbox.append(&readings(150..151))).expect("append"), 150..151, "ids continue");
}

#[test]
fn a_corrupted_checksum_in_the_tail_is_cut_and_nothing_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    {
        let (outbox, _) = open(dir.path(), BIG, &["server"]);
        rt.block_on(outbox.append(&readings(0..10))).expect("append");
    }
    // Closed: the segment is as long as its records (no preallocated space).
    let record_len = std::fs::metadata(last_segment(dir.path())).expect("meta").len() - HEADER_LEN;
    // Each reading of 0..10 encodes to the same length except the point/param strings: find
    // the 8th record's offset by scanning, then flip one payload byte in it.
    let path = last_segment(dir.path());
    let scan = segment::scan(&path, 0).expect("io").expect("header");
    assert_eq!(scan.end_id, 10);
    let offsets = record_offsets(&path);
    let mut f = OpenOptions::new().read(true).write(true).open(&path).expect("open");
    f.seek(SeekFrom::Start(offsets[7] + FRAME_LEN_U64 + 3)).expect("seek");
    f.write_all(&[0xAA]).expect("write");
    drop(f);
    let (outbox, rec) = open(dir.path(), BIG, &["server"]);
    assert_eq!(rec.readings, 7, "records 0..7 kept");
    assert_eq!(rec.cut_bytes, HEADER_LEN + record_len - offsets[7]);
    assert_eq!(all(&outbox), (0..7).map(|i| (i, reading(i))).collect::<Vec<_>>());
    // The next append reuses id 7: ids stay without holes.
    assert_eq!(rt.block_on(outbox.append(&readings(7..9))).expect("append"), 7..9);
    assert_eq!(all(&outbox).len(), 9);
}

const FRAME_LEN_U64: u64 = segment::FRAME_LEN as u64;

fn record_offsets(path: &Path) -> Vec<u64> {
    let (mut reader, _) = Reader::open(path, None, u64::MAX).expect("io").expect("header");
    let mut out = vec![];
    loop {
        let at = reader.offset;
        match reader.next().expect("io") {
            Next::Record { .. } => out.push(at),
            _ => return out,
        }
    }
}

#[test]
fn a_truncated_tail_is_cut_at_the_last_whole_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    {
        let (outbox, _) = open(dir.path(), BIG, &["server"]);
        rt.block_on(outbox.append(&readings(0..20))).expect("append");
    }
    let path = last_segment(dir.path());
    let offsets = record_offsets(&path);
    let len = std::fs::metadata(&path).expect("meta").len();
    // A power cut in the middle of the last record, and again just after a frame header.
    for cut_at in [len - 5, offsets[18] + 3] {
        OpenOptions::new().write(true).open(&path).expect("open").set_len(cut_at).expect("truncate");
        let (outbox, rec) = open(dir.path(), BIG, &["server"]);
        let kept = offsets.iter().filter(|&&o| o < cut_at).count() as u64 - 1;
        assert_eq!(rec.readings, kept);
        assert!(rec.cut_bytes > 0);
        assert_eq!(all(&outbox), (0..kept).map(|i| (i, reading(i))).collect::<Vec<_>>());
    }
    // Garbage after the last record is cut too.
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&[0x5Au8; 100]).expect("write");
    drop(f);
    let (_, rec) = open(dir.path(), BIG, &["server"]);
    assert_eq!((rec.readings, rec.cut_bytes), (18, 100));
    // Zeros after the last record are what preallocation leaves (a torn write of zeros
    // looks the same): nothing to cut, the next record goes right after the last whole one.
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&[0u8; 100]).expect("write");
    drop(f);
    let (outbox, rec) = open(dir.path(), BIG, &["server"]);
    assert_eq!((rec.readings, rec.cut_bytes), (18, 0));
    assert_eq!(rt.block_on(outbox.append(&readings(18..19))).expect("append"), 18..19);
    assert_eq!(all(&outbox), (0..19).map(|i| (i, reading(i))).collect::<Vec<_>>());
}

/// The segment files and ledger of `dir` as they are on disk now (an agent still running):
/// what a power cut right after the last fsync would leave.
fn crash_image(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name(), std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn restore(image: &[(std::ffi::OsString, Vec<u8>)], dir: &Path) {
    for (name, bytes) in image {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
}

#[test]
fn a_preallocated_segment_cut_at_any_byte_of_its_last_write_recovers_its_durable_records() {
    const SEG: u64 = 64 * 1024;
    // Records of the second write, the one cut.
    const N: u64 = 13;
    let options = Options { max_bytes: 1 << 30, segment_bytes: SEG };
    let rt = rt();
    let live = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = open(live.path(), options, &["server"]);
    rt.block_on(outbox.append(&readings(0..10))).expect("append");
    let path = last_segment(live.path());
    let preallocated = std::fs::metadata(&path).expect("meta").len();
    assert_eq!(preallocated, SEG, "the active segment is preallocated to segment_bytes");
    rt.block_on(outbox.append(&readings(10..N))).expect("append");
    let name = path.file_name().expect("name").to_owned();
    let image = crash_image(live.path());
    drop(outbox);
    let offsets = record_offsets(&path);
    assert_eq!(offsets.len() as u64, N);
    let used = std::fs::metadata(&path).expect("meta").len();
    assert!(used < SEG, "a clean close gives the unused space back ({used} bytes)");
    let seg = &image.iter().find(|(n, _)| *n == name).expect("segment in the image").1;
    assert_eq!(seg.len() as u64, SEG);
    assert!(seg[used as usize..].iter().all(|&b| b == 0), "only zeros after the records");
    // The second write (records 10..N, bytes offsets[10]..used) cut at every byte k: the
    // bytes before k reached the disk and those after did not; or, written out of order, the
    // bytes from k on reached it and those before did not.
    let (start, end) = (offsets[10], used);
    for k in start..=end {
        for out_of_order in [false, true] {
            let mut torn = image.clone();
            let bytes = &mut torn.iter_mut().find(|(n, _)| *n == name).expect("segment").1;
            let lost = if out_of_order { start..k } else { k..end };
            bytes[lost.start as usize..lost.end as usize].fill(0);
            let kept = match (out_of_order, k == start) {
                (true, true) => N,
                (true, false) => 10,
                // Records whose last byte is before k.
                (false, _) => offsets.iter().skip(1).chain([&used]).filter(|&&o| o <= k).count() as u64,
            };
            let kept_end = offsets.get(kept as usize).copied().unwrap_or(used);
            // Bytes a torn write left: from the last whole record to the last byte not zero.
            let dirty = bytes[kept_end as usize..].iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1);
            let dir = tempfile::tempdir().expect("tempdir");
            restore(&torn, dir.path());
            let (outbox, rec) = open(dir.path(), options, &["server"]);
            assert_eq!((rec.readings, rec.cut_bytes), (kept, dirty), "cut at byte {k}, out of order: {out_of_order}");
            assert_eq!(all(&outbox), (0..kept).map(|i| (i, reading(i))).collect::<Vec<_>>(), "cut at {k}");
            // Only zeros after the last whole record now, still preallocated: nothing torn
            // can come back behind the next records.
            let on_disk = std::fs::read(dir.path().join(&name)).expect("read");
            assert_eq!(on_disk.len() as u64, SEG, "cut at {k}");
            assert!(on_disk[kept_end as usize..].iter().all(|&b| b == 0), "cut at {k}, out of order: {out_of_order}");
            assert_eq!(rt.block_on(outbox.append(&readings(kept..N))).expect("append"), kept..N);
            drop(outbox);
            let (outbox, rec) = open(dir.path(), options, &["server"]);
            assert_eq!((rec.readings, rec.cut_bytes), (N, 0));
            assert_eq!(all(&outbox), (0..N).map(|i| (i, reading(i))).collect::<Vec<_>>());
        }
    }
}

#[test]
fn cursors_persist_and_delivered_segments_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let small = Options { max_bytes: 1 << 30, segment_bytes: 4096 };
    {
        let (outbox, _) = open(dir.path(), small, &["server", "historian"]);
        for i in 0..10 {
            rt.block_on(outbox.append(&readings(i * 100..(i + 1) * 100))).expect("append");
        }
        let segments = outbox.status().segments;
        assert!(segments > 5, "{segments} segments");
        outbox.delivered("server", 0, 700, 700).expect("delivered");
        assert_eq!(outbox.status().segments, segments, "historian still needs them");
        outbox.delivered("historian", 0, 600, 600).expect("delivered");
        let st = outbox.status();
        assert!(st.segments < segments);
        assert!(st.oldest_id <= 600 && st.oldest_id > 0, "oldest {}", st.oldest_id);
        outbox.retried("server").expect("retried");
        outbox.dead_lettered("server", 700, 701, 1).expect("dead letter");
    }
    let (outbox, _) = open(dir.path(), small, &["server", "historian"]);
    let server = outbox.sink("server").expect("server");
    assert_eq!((server.cursor, server.delivered, server.dead_lettered), (701, 700, 1));
    assert_eq!(server.retried, 1, "saved with the next ledger change");
    assert_eq!(outbox.sink("historian").expect("historian").cursor, 600);
    let st = outbox.status();
    let depth: Vec<_> = st.sinks.iter().map(|s| (s.name.as_str(), s.depth)).collect();
    assert_eq!(depth, vec![("historian", 400), ("server", 299)]);
    assert_eq!(st.sinks[0].oldest_undelivered_ns, Some(reading(600).time_ns));
    assert_eq!(outbox.read(600, 603, 10).expect("read").len(), 3, "still readable for the historian");
    // A sink removed from the config stops pinning segments; a new one starts at the oldest kept.
    drop(outbox);
    let (outbox, _) = open(dir.path(), small, &["server", "archive"]);
    assert_eq!(outbox.sink("archive").expect("archive").cursor, outbox.status().oldest_id);
    assert!(outbox.sink("historian").is_none());
    // The files agree with the running outbox.
    let inspected = inspect(dir.path(), small.max_bytes).expect("inspect");
    assert_eq!(inspected.appended, 1000);
    assert_eq!(inspected.sinks.iter().find(|s| s.name == "server").map(|s| s.depth), Some(299));
}

#[test]
fn overflow_drops_the_oldest_and_the_counts_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let options = Options { max_bytes: 16 * 1024, segment_bytes: 4096 };
    let (outbox, _) = open(dir.path(), options, &["server", "historian"]);
    // The historian keeps up for the first 100; the server gets nothing (an outage).
    rt.block_on(outbox.append(&readings(0..100))).expect("append");
    outbox.delivered("historian", 0, 100, 100).expect("delivered");
    let total = 2000u64;
    for i in 1..(total / 100) {
        rt.block_on(outbox.append(&readings(i * 100..(i + 1) * 100))).expect("append");
    }
    let st = outbox.status();
    assert!(st.bytes <= options.max_bytes, "{} bytes", st.bytes);
    assert_eq!(st.appended, total);
    for s in &st.sinks {
        let l = &s.ledger;
        assert!(l.dropped > 0, "{} dropped nothing", s.name);
        assert_eq!(l.delivered + l.dead_lettered + l.dropped + s.depth, total, "{}: counts add up", s.name);
        assert_eq!(l.gaps.iter().map(|g| g.count).sum::<u64>(), l.dropped, "{}: gaps tell every drop", s.name);
        assert_eq!(outbox.read(l.cursor, total, usize::MAX).expect("read").len() as u64, s.depth);
    }
    let server = &st.sinks.iter().find(|s| s.name == "server").expect("server").ledger;
    // The server's gaps cover the oldest readings: from reading 0 on, per point, in time order.
    let first: Vec<_> = server.gaps.iter().take(2).map(|g| (g.point.as_str(), g.from_ns)).collect();
    assert_eq!(first, vec![("outfall-1", reading(0).time_ns), ("outfall-2", reading(1).time_ns)]);
    assert!(server.gaps.iter().all(|g| g.reason == OVERFLOW_REASON && g.parameters == ["bod", "cod", "ph"]));
    let historian = &st.sinks.iter().find(|s| s.name == "historian").expect("historian").ledger;
    assert_eq!(historian.delivered, 100);
    assert_eq!(historian.dropped, server.dropped - 100, "the historian had the first 100");
    // Reopen: the ledger (gaps, counters) is what was saved.
    drop(outbox);
    let (outbox, _) = open(dir.path(), options, &["server", "historian"]);
    assert_eq!(outbox.sink("server").expect("server").gaps, server.gaps);
    let gap = server.gaps[0].id.clone();
    outbox.gap_delivered("server", &gap).expect("gap delivered");
    assert_eq!(outbox.sink("server").expect("server").gaps.len(), server.gaps.len() - 1);
}

#[test]
fn live_readings_go_before_the_backlog_and_merge_when_it_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (outbox, _) = open(dir.path(), BIG, &["server"]);
    rt.block_on(outbox.append(&readings(0..100))).expect("append");
    outbox.start_live("server").expect("live");
    rt.block_on(outbox.append(&readings(100..110))).expect("append");
    assert_eq!(outbox.sink("server").expect("s").live, Some((100, 100)));
    outbox.delivered("server", 100, 110, 10).expect("live batch");
    let s = outbox.sink("server").expect("s");
    assert_eq!((s.cursor, s.live, s.depth(110)), (0, Some((100, 110)), 100));
    outbox.delivered("server", 0, 60, 60).expect("backlog");
    outbox.delivered("server", 60, 100, 40).expect("backlog");
    let s = outbox.sink("server").expect("s");
    assert_eq!((s.cursor, s.live, s.delivered, s.depth(110)), (110, None, 110, 0));
}

#[test]
fn concurrent_appends_share_fsyncs_and_get_distinct_contiguous_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let (outbox, _) = open(dir.path(), BIG, &["server"]);
    let outbox = Arc::new(outbox);
    let ranges = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8u64 {
            let outbox = outbox.clone();
            tasks.spawn(async move {
                let mut got = vec![];
                for k in 0..25u64 {
                    let base = (t * 25 + k) * 4;
                    got.push((base, outbox.append(&readings(base..base + 4)).await.expect("append")));
                }
                got
            });
        }
        let mut all = vec![];
        while let Some(r) = tasks.join_next().await {
            all.extend(r.expect("task"));
        }
        all
    });
    let commits = outbox.status().commits;
    assert!(commits < 200, "{commits} fsyncs for 200 concurrent appends: no group commit");
    let mut ids: Vec<u64> = ranges.iter().flat_map(|(_, r)| r.clone()).collect();
    ids.sort();
    assert_eq!(ids, (0..800).collect::<Vec<_>>());
    let stored = all(&outbox);
    for (base, range) in ranges {
        for (k, id) in range.enumerate() {
            assert_eq!(stored[id as usize].1, reading(base + k as u64));
        }
    }
}

#[test]
fn a_damaged_closed_segment_costs_only_its_damaged_part_counted_as_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let small = Options { max_bytes: 1 << 30, segment_bytes: 4096 };
    {
        let (outbox, _) = open(dir.path(), small, &["server"]);
        for i in 0..5 {
            rt.block_on(outbox.append(&readings(i * 100..(i + 1) * 100))).expect("append");
        }
    }
    let files = segment::list(dir.path()).expect("list");
    assert!(files.len() >= 3);
    let (first, path) = &files[0];
    let offsets = record_offsets(path);
    let mut f = OpenOptions::new().write(true).open(path).expect("open");
    f.seek(SeekFrom::Start(offsets[10] + 9)).expect("seek");
    f.write_all(&[0xFF, 0xFF]).expect("write");
    drop(f);
    let next_first = files[1].0;
    let (outbox, rec) = open(dir.path(), small, &["server"]);
    assert_eq!(*first, 0);
    assert_eq!(rec.lost_readings, next_first - 10);
    let s = outbox.sink("server").expect("s");
    assert_eq!(s.dropped, next_first - 10);
    let got = all(&outbox);
    assert_eq!(got.len() as u64, 500 - (next_first - 10));
    let depth = outbox.status().sinks[0].depth;
    assert_eq!(depth, got.len() as u64);
    assert_eq!(depth + s.dropped, 500, "counts add up");
}

#[test]
fn a_failed_write_keeps_nothing_of_its_appends_and_hands_their_ids_out_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    {
        let (outbox, _) = open(dir.path(), BIG, &["server"]);
        rt.block_on(outbox.append(&readings(0..10))).expect("append");
        outbox.shared.fail_writes.store(1, Ordering::SeqCst);
        let err = rt.block_on(outbox.append(&readings(100..105))).expect_err("the write fails");
        assert!(matches!(err, OutboxError::Write(_)), "{err}");
        assert_eq!(outbox.durable_end(), 10);
        assert_eq!(outbox.status().append_errors, 1);
        // The source retries; the ids of the failed append are handed out again.
        assert_eq!(rt.block_on(outbox.append(&readings(10..15))).expect("append"), 10..15);
        assert_eq!(all(&outbox), (0..15).map(|i| (i, reading(i))).collect::<Vec<_>>());
    }
    // The half-written group was cut at once: nothing to cut at open, nothing of it read.
    let (outbox, rec) = open(dir.path(), BIG, &["server"]);
    assert_eq!((rec.readings, rec.cut_bytes), (15, 0));
    assert_eq!(all(&outbox), (0..15).map(|i| (i, reading(i))).collect::<Vec<_>>());
}

#[derive(Debug, Clone)]
enum Op {
    Append(u64),
    Deliver(usize, u64),
    Reopen,
    TornTail(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..40).prop_map(Op::Append),
        3 => (0usize..2, 1u64..60).prop_map(|(s, n)| Op::Deliver(s, n)),
        1 => Just(Op::Reopen),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::TornTail),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The outbox against a model (a vector and two cursors): whatever the order of appends,
    /// deliveries, restarts and torn writes after the last fsync, every sink reads exactly
    /// the readings after its cursor, and small segments are reclaimed without loss.
    #[test]
    fn outbox_matches_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = rt();
        let sinks = ["a", "b"];
        let options = Options { max_bytes: 1 << 30, segment_bytes: 2048 };
        let mut model: Vec<Reading> = vec![];
        let mut cursors = [0u64; 2];
        let mut outbox = Some(open(dir.path(), options, &sinks).0);
        for op in ops {
            match op {
                Op::Append(n) => {
                    let start = model.len() as u64;
                    let batch = readings(start..start + n);
                    let got = rt.block_on(outbox.as_ref().expect("open").append(&batch)).expect("append");
                    prop_assert_eq!(got, start..start + n);
                    model.extend(batch);
                }
                Op::Deliver(s, n) => {
                    let to = (cursors[s] + n).min(model.len() as u64);
                    if to > cursors[s] {
                        outbox.as_ref().expect("open").delivered(sinks[s], cursors[s], to, to - cursors[s]).expect("delivered");
                        cursors[s] = to;
                    }
                }
                Op::Reopen => {
                    drop(outbox.take());
                    outbox = Some(open(dir.path(), options, &sinks).0);
                }
                Op::TornTail(bytes) => {
                    drop(outbox.take());
                    let mut f = OpenOptions::new().append(true).open(last_segment(dir.path())).expect("open");
                    f.write_all(&bytes).expect("write");
                    drop(f);
                    outbox = Some(open(dir.path(), options, &sinks).0);
                }
            }
            let o = outbox.as_ref().expect("open");
            prop_assert_eq!(o.durable_end(), model.len() as u64);
            for (s, name) in sinks.iter().enumerate() {
                let l = o.sink(name).expect("sink");
                prop_assert_eq!(l.cursor, cursors[s]);
                prop_assert_eq!(l.delivered, cursors[s]);
                let got: Vec<Reading> = o.read(l.cursor, u64::MAX, usize::MAX).expect("read").into_iter().map(|(_, r)| r).collect();
                prop_assert_eq!(&got[..], &model[cursors[s] as usize..]);
            }
        }
    }
}

#[test]
fn appends_within_the_commit_interval_share_one_write_and_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (outbox, _) = open(dir.path(), BIG, &["server"]);
    // Long enough that the second append is always queued before the first is written.
    outbox.set_commit_interval(std::time::Duration::from_millis(500));
    let started = Instant::now();
    let (first, second) = (readings(0..3), readings(3..5));
    let (a, b) = rt.block_on(async { tokio::join!(outbox.append(&first), outbox.append(&second)) });
    assert_eq!((a.expect("a"), b.expect("b")), (0..3, 3..5));
    assert_eq!(outbox.status().commits, 1, "one group commit for both");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500), "the writer waited for more");
    // Back to at once: each append its own commit.
    outbox.set_commit_interval(std::time::Duration::ZERO);
    rt.block_on(outbox.append(&readings(5..6))).expect("append");
    assert_eq!(outbox.status().commits, 2);
    drop(outbox);
    let (outbox, _) = open(dir.path(), BIG, &["server"]);
    assert_eq!(all(&outbox), (0..6).map(|i| (i, reading(i))).collect::<Vec<_>>());
}
