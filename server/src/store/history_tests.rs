//! Years of history: partition files, migration, compaction, retirement, crash safety.
#![allow(clippy::unwrap_used)] // Tests: a failure is the panic.

use std::path::Path;

use super::*;

/// 2026-03-01T00:00:00+07:00.
const MARCH_1: i64 = 1_772_298_000_000_000_000;
const MINUTE: i64 = 60_000_000_000;
const DAY: i64 = partition::DAY_NS;

fn r(p: &str, v: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "f1", "outfall-1", p, v, t)
}

fn options() -> StoreSection {
    StoreSection { segment_max_bytes: 4096, ..StoreSection::default() }
}

fn all(store: &Store) -> Vec<(String, i64, Stored)> {
    store.query(|_| true, i64::MIN, i64::MAX).into_iter().map(|(k, t, s)| (k.parameter.to_string(), t, s)).collect()
}

fn part_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(partition::dir(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn replayed(store: &Store) -> usize {
    lock(&store.state).memtable.len()
}

/// The value the v2 fixture holds for reading `i` of parameter `k` (see `testdata/v2`).
fn fixture_value(i: i64, k: i64) -> f64 {
    ((i * 37 + k * 11) % 1000) as f64 / 100.0
}

#[test]
fn a_store_of_format_2_is_migrated_once_into_partition_files_and_reads_every_reading_back() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/v2");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let check = |store: &Store| {
        let got = all(store);
        assert_eq!(got.len(), 1800, "600 times × 3 parameters");
        for (k, p) in ["cod", "bod", "ph"].iter().enumerate() {
            let series: Vec<_> = got.iter().filter(|(q, _, _)| q == p).collect();
            assert_eq!(series.len(), 600);
            for (i, (_, t, s)) in series.iter().enumerate() {
                let i = i as i64;
                assert_eq!(*t, MARCH_1 + i * 10 * MINUTE);
                assert_eq!(s.value.to_bits(), fixture_value(i, k as i64).to_bits(), "{p} #{i}");
                let quality = if i % 50 == 7 { Quality::Suspect } else { Quality::Valid };
                assert_eq!(s.quality, quality, "{p} #{i}");
            }
        }
    };
    let store = Store::open(dir.path(), &options()).unwrap();
    check(&store);
    assert_eq!(replayed(&store), 0, "everything went into partition files");
    // 100 hours from midnight: 5 Bangkok days, a file each.
    let files = part_files(dir.path());
    assert_eq!(files.len(), 5, "{files:?}");
    let day = day_of(MARCH_1);
    assert!(files.iter().all(|f| (day..day + 5).any(|d| f.starts_with(&format!("{d}_")))), "{files:?}");
    drop(store);
    let lines: Vec<manifest::Line> = crate::jsonl::read(&manifest::path(dir.path())).unwrap();
    let formats: Vec<u32> = lines
        .iter()
        .filter_map(|l| if let manifest::Line::Format { version } = l { Some(*version) } else { None })
        .collect();
    assert_eq!(formats, [2, 3], "migrated once");
    // Reopened: read from the files, nothing replayed, not migrated again.
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(replayed(&store), 0);
    check(&store);
    store.start_retiring();
    assert_eq!(store.retire_segments().len(), 10, "the old segments go once their readings are in files");
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    check(&store);
    let lines: Vec<manifest::Line> = crate::jsonl::read(&manifest::path(dir.path())).unwrap();
    assert_eq!(lines.iter().filter(|l| matches!(l, manifest::Line::Format { .. })).count(), 2);
}

/// Readings of `cod` and `ph` every 10 minutes through `days` days from March 1.
fn days_of_readings(days: i64) -> Vec<Reading> {
    (0..days * 144)
        .flat_map(|i| {
            let t = MARCH_1 + i * 10 * MINUTE;
            [r("cod", (i % 997) as f64 / 100.0, t), r("ph", 7.0 + (i % 13) as f64 / 100.0, t)]
        })
        .collect()
}

#[test]
fn a_rewrite_of_a_sealed_day_is_refused_and_a_resend_is_a_duplicate_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let batch = days_of_readings(3);
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&batch).unwrap();
    store.flush().unwrap();
    // A second run for day 1, then days 1–3 sealed into one file each.
    let late = r("bod", 12.5, MARCH_1 + DAY + 5 * MINUTE);
    store.append(std::slice::from_ref(&late)).unwrap();
    store.flush().unwrap();
    // Day 1's two runs merged; days 0 and 2, one flush each, written again at level 1.
    assert_eq!(store.compact(day_of(MARCH_1) + 3).unwrap(), 3);
    assert_eq!(part_files(dir.path()).len(), 3);
    assert_eq!(store.compact(day_of(MARCH_1) + 3).unwrap(), 0, "level-1 files alone stay");
    let check = |store: &Store| {
        assert_eq!(store.len(), batch.len() + 1);
        // Rewrite of a reading in a sealed day: refused, naming it; nothing of the batch stored.
        let fresh = r("cod", 1.0, MARCH_1 + 10 * DAY);
        let mut rewrite = batch[500].clone();
        rewrite.value += 0.01;
        let e = store.append(&[fresh.clone(), rewrite.clone()]).unwrap_err();
        assert!(
            matches!(&e, StoreError::Rewrite { time_ns, stored, .. } if *time_ns == rewrite.time_ns && *stored == batch[500].value),
            "{e}"
        );
        assert_eq!(store.len(), batch.len() + 1, "the batch is stored whole or not at all");
        assert!(store.query(|_| true, fresh.time_ns, fresh.time_ns + 1).is_empty());
        // The whole history re-sent: every reading a duplicate.
        let (_, a) = store.append(&batch).unwrap();
        assert_eq!(a, Appended { stored: 0, duplicates: batch.len() });
        let (_, a) = store.append(std::slice::from_ref(&late)).unwrap();
        assert_eq!(a, Appended { stored: 0, duplicates: 1 });
    };
    check(&store);
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    check(&store);
}

#[test]
fn block_indexes_let_go_are_read_back_for_reads_checks_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let batch = days_of_readings(3);
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&batch).unwrap();
    store.flush().unwrap();
    let later = day_of(MARCH_1) + 30;
    let held =
        |store: &Store| -> Vec<bool> { lock(&store.state).parts.values().flatten().map(|p| p.index_held()).collect() };
    assert_eq!(held(&store), [true, true, true]);
    // Used since written: kept by a round, let go by the next one that finds them unused.
    assert_eq!(store.release_indexes(later, false), 0);
    assert_eq!(store.release_indexes(later, false), 3);
    assert_eq!(held(&store), [false, false, false]);
    // Yesterday's and today's stay whatever their use.
    assert_eq!(store.release_indexes(day_of(MARCH_1) + 1, true), 0);
    assert_eq!(all(&store).len(), batch.len());
    let mut rewrite = batch[300].clone();
    rewrite.value += 0.01;
    assert!(matches!(store.append(&[rewrite]).unwrap_err(), StoreError::Rewrite { .. }));
    let (_, a) = store.append(&batch).unwrap();
    assert_eq!(a, Appended { stored: 0, duplicates: batch.len() });
    assert_eq!(held(&store), [true, true, true]);
    assert_eq!(store.release_indexes(later, true), 3);
    // A reopened store holds only the indexes of the days before yesterday it reads.
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(held(&store), [false, false, false]);
    let day_2 = store.query(|_| true, MARCH_1 + DAY, MARCH_1 + 2 * DAY);
    assert_eq!(day_2.len(), 2 * 144);
    assert_eq!(day_2[0].1, MARCH_1 + DAY);
    assert_eq!(held(&store), [false, true, false]);
}

#[test]
fn a_closed_day_still_being_filled_is_merged_once_its_readings_stop_or_its_flushes_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let today = day_of(MARCH_1) + 10;
    // A back-fill of March 1, an hour a flush: the memtable holds the next hour meanwhile.
    let hour = |h: i64| -> Vec<Reading> {
        (0..60).map(|m| r("cod", (h * 60 + m) as f64, MARCH_1 + (h * 60 + m) * MINUTE)).collect()
    };
    store.append(&hour(0)).unwrap();
    store.flush().unwrap();
    store.append(&hour(1)).unwrap();
    assert_eq!(store.compact(today).unwrap(), 0, "readings of the day are still arriving");
    store.flush().unwrap();
    assert_eq!(store.compact(today).unwrap(), 1, "they stopped: the two flushes merged");
    assert_eq!(part_files(dir.path()).len(), 1);
    for h in 2..=2 + LEVEL0_WAITING_MAX as i64 {
        store.flush().unwrap();
        store.append(&hour(h)).unwrap();
        let merged = store.compact(today).unwrap();
        assert_eq!(merged, usize::from(h == 2 + LEVEL0_WAITING_MAX as i64), "hour {h}");
    }
    // The merge took the level-0 files of hours 2 to 17 alone, into a level-2 file beside
    // the level-1 one of hours 0 and 1; hour 18 is still in the memtable.
    let levels = |store: &Store| -> Vec<u8> { lock(&store.state).parts.values().flatten().map(|p| p.level).collect() };
    assert_eq!(levels(&store), [1, 2]);
    // Each flush's block follows the one before in time: copied as it is, one an hour.
    assert_eq!(blocks_at_level(&store, 2), LEVEL0_WAITING_MAX);
    assert_eq!(all(&store).len(), 60 * (3 + LEVEL0_WAITING_MAX), "read across both files and the memtable");
    store.flush().unwrap();
    assert_eq!(store.compact(today).unwrap(), 1, "the day is no longer filled: all its files merged");
    assert_eq!(levels(&store), [1]);
    assert_eq!(blocks_at_level(&store, 1), 1, "decoded and encoded again into one block");
    assert_eq!(part_files(dir.path()).len(), 1);
    let got = all(&store);
    assert_eq!(got.len(), 60 * (3 + LEVEL0_WAITING_MAX));
    assert!(got.iter().enumerate().all(|(i, (_, t, s))| *t == MARCH_1 + i as i64 * MINUTE && s.value == i as f64));
}

/// The blocks of every file of a level, of every series.
fn blocks_at_level(store: &Store, level: u8) -> usize {
    let state = lock(&store.state);
    let parts = state.parts.values().flatten().filter(|p| p.level == level);
    parts.map(|p| p.series().iter().map(|id| p.blocks_of(*id).unwrap().len()).sum::<usize>()).sum()
}

#[test]
fn a_filling_day_s_flushes_that_overlap_in_time_are_merged_reading_by_reading() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let today = day_of(MARCH_1) + 10;
    let n = LEVEL0_WAITING_MAX as i64;
    // Flush k holds minutes k, k + n, k + 2n, …: every file spans the same 16 hours.
    for k in 0..n {
        let readings: Vec<Reading> =
            (0..60).map(|j| r("cod", (k + j * n) as f64, MARCH_1 + (k + j * n) * MINUTE)).collect();
        store.append(&readings).unwrap();
        store.flush().unwrap();
    }
    // The day is still being filled.
    store.append(&[r("cod", (60 * n) as f64, MARCH_1 + 60 * n * MINUTE)]).unwrap();
    assert_eq!(store.compact(today).unwrap(), 1);
    assert_eq!(lock(&store.state).parts.values().flatten().map(|p| p.level).collect::<Vec<_>>(), [2]);
    assert_eq!(blocks_at_level(&store, 2), 1, "the readings merged into one block");
    let got = all(&store);
    assert_eq!(got.len(), 60 * n as usize + 1);
    assert!(got.iter().enumerate().all(|(i, (_, t, s))| *t == MARCH_1 + i as i64 * MINUTE && s.value == i as f64));
}

#[test]
fn late_data_for_an_old_day_is_stored_read_back_and_its_day_file_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let batch = days_of_readings(2);
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&batch).unwrap();
    store.flush().unwrap();
    store.compact(day_of(MARCH_1) + 5).unwrap();
    let before = part_files(dir.path());
    assert_eq!(before.len(), 2);
    // A lab result for the morning of March 1, weeks later; and a reading between two stored.
    let mut lab = r("bod", 20.25, MARCH_1 + 9 * 60 * MINUTE);
    lab.source = Source::Lab;
    let between = r("cod", 3.33, MARCH_1 + 15 * MINUTE);
    store.append(&[lab.clone(), between.clone()]).unwrap();
    store.flush().unwrap();
    assert_eq!(part_files(dir.path()).len(), 3, "a run beside the day's file");
    assert_eq!(store.compact(day_of(MARCH_1) + 5).unwrap(), 1);
    let after = part_files(dir.path());
    assert_eq!(after.len(), 2);
    assert_eq!(after[1], before[1], "March 2 untouched");
    assert_ne!(after[0], before[0], "March 1 written anew");
    let check = |store: &Store| {
        let got = all(store);
        assert_eq!(got.len(), batch.len() + 2);
        let on_march_1 = store.query(|k| &*k.parameter == "cod", MARCH_1, MARCH_1 + 30 * MINUTE);
        let times: Vec<i64> = on_march_1.iter().map(|(_, t, _)| (t - MARCH_1) / MINUTE).collect();
        assert_eq!(times, [0, 10, 15, 20]);
        assert_eq!(on_march_1[2].2.value, 3.33);
        let bod = store.query(|k| &*k.parameter == "bod", i64::MIN, i64::MAX);
        assert_eq!(bod.len(), 1);
        assert_eq!((bod[0].1, bod[0].2.value, bod[0].2.source), (lab.time_ns, 20.25, Source::Lab));
    };
    check(&store);
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(replayed(&store), 0);
    check(&store);
}

#[test]
fn a_year_of_one_series_reads_hourly_buckets_across_365_day_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreSection { memtable_max_readings: 20_000, ..options() }).unwrap();
    // Every 10 minutes for a year: value = the hour of the year, plus 0.01 × the slot in it.
    let n = 365 * 144i64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let batch: Vec<Reading> = chunk
            .iter()
            .map(|i| r("cod", (i / 6) as f64 + (i % 6) as f64 / 100.0, MARCH_1 + i * 10 * MINUTE))
            .collect();
        store.append(&batch).unwrap();
    }
    store.flush().unwrap();
    store.compact(i64::MAX).unwrap();
    assert_eq!(part_files(dir.path()).len(), 365);
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!((store.len(), replayed(&store)), (n as usize, 0));
    let hour = 60 * MINUTE;
    let buckets = store.downsample(|_| true, MARCH_1, MARCH_1 + 365 * DAY, hour);
    assert_eq!(buckets.len(), 1);
    let buckets = &buckets[0].1;
    assert_eq!(buckets.len(), 365 * 24);
    for (h, b) in buckets.iter().enumerate() {
        let base = h as f64;
        assert_eq!((b.start_ns, b.count), (MARCH_1 + h as i64 * hour, 6));
        assert_eq!((b.min, b.max), (base, base + 0.05), "hour {h}");
        assert!((b.mean - (base + 0.025)).abs() < 1e-9, "hour {h}: {}", b.mean);
    }
    // A day of raw readings from the middle of the year.
    let day = MARCH_1 + 200 * DAY;
    let raw = store.query(|_| true, day, day + DAY);
    assert_eq!(raw.len(), 144);
    assert_eq!(raw[0].1, day);
    assert_eq!(raw[0].2.value, (200 * 24) as f64);
}

#[test]
fn retention_drops_whole_days_of_partition_files() {
    let dir = tempfile::tempdir().unwrap();
    let today = day_of(now_ns());
    let noon = |days_ago: i64| day_start(today - days_ago) + 12 * 60 * MINUTE;
    let store = Store::open(dir.path(), &options()).unwrap();
    for days_ago in [12, 8, 6, 4, 1] {
        store.append(&[r("cod", days_ago as f64, noon(days_ago)), r("ph", 7.0, noon(days_ago) + MINUTE)]).unwrap();
    }
    store.flush().unwrap();
    assert_eq!(part_files(dir.path()).len(), 5);
    drop(store);
    let store = Store::open(dir.path(), &StoreSection { retention_days: Some(5), ..options() }).unwrap();
    // Days wholly older than 5 × 24 h ago go (12 and 8 and 6 days ago); 4 and 1 stay.
    let got: Vec<(String, f64)> = all(&store).into_iter().map(|(p, _, s)| (p, s.value)).collect();
    assert_eq!(got, [("cod".to_string(), 4.0), ("cod".into(), 1.0), ("ph".into(), 7.0), ("ph".into(), 7.0)]);
    assert_eq!(store.len(), 4);
    assert_eq!(part_files(dir.path()).len(), 2, "the old days' files deleted");
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), 4, "the manifest no longer names them");
}

#[test]
fn segments_are_retired_only_once_in_files_and_past_every_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    store.hold("influxdb", LogPosition::default());
    let batch = days_of_readings(6);
    for chunk in batch.chunks(50) {
        store.append(chunk).unwrap();
    }
    let segments = log::list_segments(dir.path()).unwrap();
    assert!(segments.len() > 3, "{segments:?}");
    store.flush().unwrap();
    assert!(store.retire_segments().is_empty(), "not before start_retiring");
    store.start_retiring();
    assert!(store.retire_segments().is_empty(), "held from the start");
    store.hold("influxdb", LogPosition { segment: segments[2], offset: 10 });
    assert_eq!(store.retire_segments(), segments[..2]);
    store.hold("influxdb", LogPosition { segment: u64::MAX, offset: 0 });
    let retired = store.retire_segments();
    assert_eq!(retired, segments[2..segments.len() - 1], "all but the one being written");
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), batch.len());
    assert_eq!(replayed(&store), 0, "what is left of the log is past the flush: nothing");
}

/// What `dir` holds beside the partition files (`parts/`) and the acknowledged position.
fn store_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "parts" && n != "acknowledged")
        .collect();
    names.sort();
    names
}

#[test]
fn a_clean_stop_retires_the_segment_being_written_and_positions_at_its_end_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreSection { segment_max_bytes: 64 << 20, ..StoreSection::default() };
    let batch = days_of_readings(3);
    let store = Store::open(dir.path(), &options).unwrap();
    store.start_retiring();
    for chunk in batch.chunks(100) {
        store.append(chunk).unwrap();
    }
    let end = *store.durable().borrow();
    assert_eq!(end.segment, 1);
    // A reader one record short of the end: the segment is kept.
    store.hold("compliance", LogPosition { segment: 1, offset: end.offset - 1 });
    store.flush().unwrap();
    store.maintain_at(MARCH_1 + 10 * DAY);
    store.close().unwrap();
    assert_eq!(store_files(dir.path()), ["0000000001.content.json", "0000000001.seg", "manifest"]);
    drop(store);

    // Every reader at the end: the next clean stop leaves no segment.
    let store = Store::open(dir.path(), &options).unwrap();
    assert_eq!(store.len(), batch.len());
    assert_eq!(replayed(&store), 0);
    store.start_retiring();
    let late = r("bod", 3.5, MARCH_1 + 5 * MINUTE);
    store.append(std::slice::from_ref(&late)).unwrap();
    let end = *store.durable().borrow();
    assert_eq!(end.segment, 2);
    store.hold("compliance", end);
    store.hold("influxdb", LogPosition { segment: 9, offset: 0 });
    store.flush().unwrap();
    store.maintain_at(MARCH_1 + 10 * DAY);
    store.close().unwrap();
    assert_eq!(store_files(dir.path()), ["manifest"], "segment 1 retired by maintenance, 2 at the close");
    assert_eq!(part_files(dir.path()).len(), 3, "one file per day");
    drop(store);

    let store = Store::open(dir.path(), &options).unwrap();
    assert_eq!(store.len(), batch.len() + 1);
    assert_eq!(replayed(&store), 0, "nothing to replay");
    let now = *store.durable().borrow();
    assert_eq!(now, LogPosition { segment: 3, offset: 0 }, "numbered after the retired ones");
    // From the end of the retired segment: nothing to read, nothing lost.
    let mut reader = replay::Reader::new(dir.path());
    assert!(reader.next_batch(end, now, 1000).unwrap().is_none());
    assert!(!reader.lost());
    // From inside it (a position no hold covered): lost.
    let mut reader = replay::Reader::new(dir.path());
    assert!(reader.next_batch(LogPosition { segment: 2, offset: 17 }, now, 1000).unwrap().is_none());
    assert!(reader.lost());
    // What comes after is read from the new segment.
    store.append(&[r("bod", 4.5, MARCH_1 + 6 * MINUTE)]).unwrap();
    let mut reader = replay::Reader::new(dir.path());
    let read = reader.next_batch(end, *store.durable().borrow(), 1000).unwrap().unwrap();
    assert_eq!(read.readings.iter().map(|r| r.value).collect::<Vec<_>>(), [4.5]);
    assert!(!reader.lost());
}

#[test]
fn a_log_reader_s_batches_hold_at_most_the_readings_asked_for_beyond_a_first_larger_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let start = *store.durable().borrow();
    // Ten appends of 100 readings each: ten records of ≈ 16 bytes a reading.
    for a in 0..10 {
        let batch: Vec<Reading> =
            (0..100).map(|i| r("cod", (a * 100 + i) as f64, MARCH_1 + (a * 100 + i) * MINUTE)).collect();
        store.append(&batch).unwrap();
    }
    let end = *store.durable().borrow();
    let mut reader = replay::Reader::new(dir.path());
    let (mut at, mut read) = (start, Vec::new());
    while let Some(batch) = reader.next_batch(at, end, 280).unwrap() {
        assert!(batch.readings.len() <= 280, "{} readings in a batch of at most 280", batch.readings.len());
        read.extend(batch.readings.iter().map(|r| r.value));
        at = batch.next;
    }
    assert_eq!(read, (0..1000).map(f64::from).collect::<Vec<_>>());
    // A record larger than the bound is read whole.
    let batch = reader.next_batch(start, end, 50).unwrap().unwrap();
    assert_eq!(batch.readings.len(), 100);
}

#[test]
fn out_of_order_bodies_from_concurrent_writers_are_stored_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), &StoreSection { memtable_max_readings: 3000, ..options() }).unwrap());
    let batch = days_of_readings(2);
    let bodies: Vec<Vec<Reading>> = batch.chunks(100).map(<[Reading]>::to_vec).collect();
    // Four writers take bodies in reverse, interleaved; one flushes as they go.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, bodies) = (store.clone(), bodies.clone());
            std::thread::spawn(move || {
                for (i, body) in bodies.iter().enumerate().rev().filter(|(i, _)| i % 4 == w) {
                    store.append(body).unwrap();
                    if w == 0 && i % 8 == 0 {
                        store.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(store.len(), batch.len());
    let mut want: Vec<(String, i64, f64)> = batch.iter().map(|r| (r.parameter.clone(), r.time_ns, r.value)).collect();
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let got: Vec<(String, i64, f64)> = all(&store).into_iter().map(|(p, t, s)| (p, t, s.value)).collect();
    assert_eq!(got, want);
}

/// The child of [`sigkill_at_any_step_of_flush_compaction_retention_or_retirement_loses_nothing_acknowledged`]:
/// does nothing unless that test started it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("EITWATCH_TEST_CRASH_DIR") else { return };
    let dir = Path::new(&dir);
    let store = Store::open(dir, &StoreSection { retention_days: Some(30), ..options() }).unwrap();
    store.start_retiring();
    let today = day_of(now_ns());
    let acked = dir.join("acked");
    let mut n = 0;
    let mut append = |batch: &[Reading]| {
        store.append(batch).unwrap();
        n += batch.len();
        std::fs::write(&acked, n.to_string()).unwrap();
    };
    for (i, days_ago) in [40i64, 3, 2, 0].iter().enumerate() {
        let batch: Vec<Reading> = (0..300)
            .map(|m| r(&format!("p{}", m % 3), (i * 1000 + m) as f64, day_start(today - days_ago) + m as i64 * MINUTE))
            .collect();
        append(&batch);
    }
    store.flush().unwrap();
    append(&[r("p0", 9.5, day_start(today - 3) + 400 * MINUTE), r("p1", 9.5, day_start(today - 2) + 400 * MINUTE)]);
    store.flush().unwrap();
    store.compact(today).unwrap();
    store.apply_retention();
    store.retire_segments();
    store.close().unwrap();
}

#[test]
fn sigkill_at_any_step_of_flush_compaction_retention_or_retirement_loses_nothing_acknowledged() {
    let exe = std::env::current_exe().unwrap();
    let mut finished = false;
    let mut steps = std::collections::BTreeSet::new();
    for at in 1..200 {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&exe)
            .args(["--exact", "store::history_tests::crash_child", "--nocapture", "--test-threads=1"])
            .env("EITWATCH_TEST_CRASH_DIR", dir.path())
            .env("EITWATCH_STORE_CRASH_AT", at.to_string())
            .output()
            .unwrap();
        let status = child.status;
        let stderr = String::from_utf8_lossy(&child.stderr);
        if let Some(step) = stderr.lines().find_map(|l| l.split(": aborting at ").nth(1)) {
            steps.insert(step.to_string());
        }
        let acked: usize = std::fs::read_to_string(dir.path().join("acked")).unwrap().parse().unwrap();
        // The day 40 days ago is past retention: dropped at any open.
        let kept = acked - 300;
        let check = |store: &Store| {
            let got = all(store);
            assert_eq!(got.len(), kept, "crash point {at}: {acked} acknowledged");
            for (_, _, s) in &got {
                assert!(s.value >= 1000.0 || s.value == 9.5, "crash point {at}: {s:?} is past retention");
            }
            // No half file in use: every file left is named by the manifest and opened whole.
            let known = manifest::read_all(store.dir()).unwrap().unwrap();
            assert_eq!(part_files(store.dir()), known.parts.keys().cloned().collect::<Vec<_>>(), "crash point {at}");
            // No segment the manifest dropped is left behind.
            for n in log::list_segments(store.dir()).unwrap() {
                assert!(
                    !matches!(known.segments.get(&n), Some(manifest::Segment::Dropped { .. })),
                    "crash point {at}: {n}"
                );
            }
        };
        let options = StoreSection { retention_days: Some(30), ..options() };
        let store = Store::open(dir.path(), &options).unwrap();
        check(&store);
        drop(store);
        let store = Store::open(dir.path(), &options).unwrap();
        check(&store);
        if status.success() {
            assert!(at > 10, "the child reached the end after {at} crash points: too few");
            finished = true;
            break;
        }
    }
    assert!(finished, "the child never ran to its end");
    let every = [
        "close-retire-recorded",
        "compaction-deleted",
        "compaction-recorded",
        "compaction-renamed",
        "part-synced",
        "retention-deleted",
        "retention-recorded",
        "retire-deleted",
        "retire-recorded",
        "runs-recorded",
        "runs-renamed",
    ];
    assert_eq!(steps.iter().map(String::as_str).collect::<Vec<_>>(), every, "every step was crashed at");
}

#[test]
fn a_damaged_partition_file_stops_the_open_and_repair_sets_it_aside_recording_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let batch = days_of_readings(3);
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&batch).unwrap();
    store.flush().unwrap();
    store.start_retiring();
    store.retire_segments();
    drop(store);
    let files = part_files(dir.path());
    assert_eq!(files.len(), 3);
    let path = partition::dir(dir.path()).join(&files[1]);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 30;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    assert!(matches!(&e, StoreError::Damaged { path: p, reason } if *p == path && reason.contains("CRC-32")), "{e}");
    let damage = repair::find(dir.path()).unwrap().unwrap();
    assert_eq!(damage.path, path);
    assert!(damage.what.contains("its 288 readings cannot be named"), "{}", damage.what);
    repair::set_aside(dir.path(), &damage).unwrap();
    assert!(dir.path().join("damaged").join(&files[1]).exists(), "set aside, not deleted");
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), batch.len() - 288, "the other days are all there");
    assert!(repair::find(dir.path()).unwrap().is_none());
}

/// What the v3 fixture (`testdata/v3`, partition files written before the values codec had
/// its converted mode) holds for reading `i` of series `k`: a decimal walk (mode 1), values
/// converted from ppm (XOR), noise (raw) and special values.
fn v3_value(k: i64, i: i64) -> f64 {
    match k {
        0 => (700 + (i * 7) % 13) as f64 / 100.0,
        1 => (200 + (i * 11) % 17) as f64 / 10.0 / (24.45 / 64.066),
        2 => f64::from_bits((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        _ => [f64::NAN, -0.0, f64::INFINITY, 0.1 * 3.0, f64::MIN_POSITIVE][(i % 5) as usize],
    }
}

const V3_SERIES: [&str; 4] = ["cod", "so2", "noise", "odd"];

/// Writes `testdata/v3` into `$EITWATCH_WRITE_V3_FIXTURE` (run once, by hand, with the build
/// that wrote format 3 before the converted mode).
#[test]
#[ignore]
fn write_v3_fixture() {
    let dir = PathBuf::from(std::env::var("EITWATCH_WRITE_V3_FIXTURE").unwrap());
    let store = Store::open(&dir, &options()).unwrap();
    store.start_retiring();
    let batch: Vec<Reading> = (0..300)
        .flat_map(|i| (0..4).map(move |k| r(V3_SERIES[k as usize], v3_value(k, i), MARCH_1 + i * 10 * MINUTE)))
        .collect();
    store.append(&batch).unwrap();
    store.flush().unwrap();
    store.maintain_at(MARCH_1 + 10 * DAY);
    store.close().unwrap();
}

#[test]
fn partition_files_written_before_the_converted_mode_read_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/v3");
    std::fs::create_dir(partition::dir(dir.path())).unwrap();
    for sub in ["", "parts"] {
        for entry in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    assert_eq!(part_files(dir.path()).len(), 3, "300 readings 10 minutes apart: 3 Bangkok days");
    // The fixture's readings are 10 minutes apart; the late ones added below are not.
    let check = |store: &Store, late: usize| {
        let (got, added): (Vec<_>, Vec<_>) =
            all(store).into_iter().partition(|(_, t, _)| (t - MARCH_1) % (10 * MINUTE) == 0);
        assert_eq!((got.len(), added.len()), (4 * 300, late));
        for (k, p) in V3_SERIES.iter().enumerate() {
            let series: Vec<_> = got.iter().filter(|(q, _, _)| q == p).collect();
            assert_eq!(series.len(), 300, "{p}");
            for (i, (_, t, s)) in series.iter().enumerate() {
                let i = i as i64;
                assert_eq!(*t, MARCH_1 + i * 10 * MINUTE);
                assert_eq!(s.value.to_bits(), v3_value(k as i64, i).to_bits(), "{p} #{i}");
            }
        }
    };
    let store = Store::open(dir.path(), &options()).unwrap();
    check(&store, 0);
    // Late data merges each day into a file written by this build: read back the same.
    let late: Vec<Reading> = (0..3).map(|d| r("cod", 1.5, MARCH_1 + d * DAY + 5 * MINUTE)).collect();
    store.append(&late).unwrap();
    store.flush().unwrap();
    assert_eq!(store.compact(day_of(MARCH_1) + 3).unwrap(), 3);
    check(&store, 3);
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    check(&store, 3);
}
