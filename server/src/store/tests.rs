#![allow(clippy::unwrap_used)] // Tests: a failure is the panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::*;
use eitwatch_config::line_protocol::{DecodeContext, Precision, decode_rows};

fn r(p: &str, v: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "f1", "outfall-1", p, v, t)
}

fn options() -> StoreSection {
    StoreSection::default()
}

fn values(store: &Store, parameter: &str) -> Vec<(i64, f64)> {
    store.query(|k| &*k.parameter == parameter, i64::MIN, i64::MAX).iter().map(|(_, t, s)| (*t, s.value)).collect()
}

#[test]
fn appends_survive_reopen_and_resends_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let batch = vec![r("cod", 85.0, 1), r("cod", 90.0, 2), r("ph", 7.1, 1)];
    let (fresh, a) = store.append(&batch).unwrap();
    assert_eq!((fresh.len(), a), (3, Appended { stored: 3, duplicates: 0 }));
    let (fresh, a) = store.append(&batch).unwrap();
    assert_eq!((fresh.len(), a), (0, Appended { stored: 0, duplicates: 3 }));
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(values(&store, "cod"), vec![(1, 85.0), (2, 90.0)]);
    // Still idempotent after a restart, and the new segment takes new readings.
    let (_, a) = store.append(&batch).unwrap();
    assert_eq!(a, Appended { stored: 0, duplicates: 3 });
    store.append(&[r("cod", 95.0, 3)]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 85.0), (2, 90.0), (3, 95.0)]);
}

#[test]
fn quality_source_and_detection_limit_round_trip_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let mut lab = Reading::new(Kind::Effluent, "f1", "outfall-1", "hg", 0.005, 7).with_quality(Quality::Suspect);
    lab.source = Source::Lab;
    lab.below_detection_limit = true;
    let maint = Reading::new(Kind::Emission, "f2", "stack-1", "so2", -0.0, 8).with_quality(Quality::Maintenance);
    store.append(&[lab.clone(), maint.clone()]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    let all = store.query(|_| true, i64::MIN, i64::MAX);
    let back: Vec<Reading> = all.iter().map(|(k, t, s)| k.reading(*t, s)).collect();
    assert_eq!(back, vec![lab.clone(), maint.clone()]);
    assert!(back[1].value.is_sign_negative(), "-0 keeps its sign");
    // +0 for the stored -0 is a different value: a rewrite.
    let plus = Reading { value: 0.0, ..maint };
    assert!(matches!(store.append(&[plus]), Err(StoreError::Rewrite { .. })));
}

#[test]
fn a_rewrite_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&[r("cod", 130.0, 10)]).unwrap();
    let e = store.append(&[r("cod", 50.0, 11), r("cod", 100.0, 10)]).unwrap_err();
    assert!(
        matches!(e, StoreError::Rewrite { time_ns: 10, stored, offered, .. } if stored == 130.0 && offered == 100.0)
    );
    assert_eq!(store.len(), 1, "nothing of the refused batch is stored");
    assert_eq!(values(&store, "cod"), vec![(10, 130.0)]);
    // A batch that contradicts itself rewrites nothing stored: it is refused as such.
    let e = store.append(&[r("bod", 1.0, 5), r("bod", 2.0, 5)]).unwrap_err();
    assert!(
        matches!(e, StoreError::Contradiction { time_ns: 5, first, second, .. } if first == 1.0 && second == 2.0),
        "{e}"
    );
    assert_eq!(store.len(), 1);
    // A different quality for the same value is a rewrite.
    assert!(store.append(&[r("cod", 130.0, 10).with_quality(Quality::Suspect)]).is_err());
    // The refused readings may come again, consistently.
    store.append(&[r("cod", 50.0, 11), r("bod", 1.0, 5)]).unwrap();
    // A series going back in time within a batch, and a reading of it twice the same: once.
    let (_, a) = store.append(&[r("ph", 7.0, 3), r("ph", 7.5, 2), r("ph", 7.0, 3), r("ph", 7.25, 4)]).unwrap();
    assert_eq!(a, Appended { stored: 3, duplicates: 1 });
    assert_eq!(values(&store, "ph"), vec![(2, 7.5), (3, 7.0), (4, 7.25)]);
    let e = store.append(&[r("ph", 6.0, 9), r("ph", 6.5, 8), r("ph", 6.75, 3)]).unwrap_err();
    assert!(matches!(e, StoreError::Rewrite { time_ns: 3, .. }), "{e}");
    assert_eq!(values(&store, "ph"), vec![(2, 7.5), (3, 7.0), (4, 7.25)], "nothing of it stays");
    store.append(&[r("ph", 6.5, 8), r("ph", 6.0, 9)]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(values(&store, "cod"), vec![(10, 130.0), (11, 50.0)]);
    assert_eq!(values(&store, "bod"), vec![(5, 1.0)]);
    assert_eq!(values(&store, "ph"), vec![(2, 7.5), (3, 7.0), (4, 7.25), (8, 6.5), (9, 6.0)]);
}

#[test]
fn a_torn_tail_is_cut_and_acknowledged_batches_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&[r("cod", 1.0, 1)]).unwrap();
    store.append(&[r("cod", 2.0, 2)]).unwrap();
    drop(store);
    let segments = log::list_segments(dir.path()).unwrap();
    assert_eq!(segments.len(), 1);
    let path = log::segment_path(dir.path(), segments[0]);
    let full = std::fs::metadata(&path).unwrap().len();
    // A power cut in the middle of the third record: half a record on disk.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 2, 0]).unwrap();
    drop(f);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 1.0), (2, 2.0)]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), full, "the torn tail is cut");
    store.append(&[r("cod", 3.0, 3)]).unwrap();
    drop(store);
    assert_eq!(values(&Store::open(dir.path(), &options()).unwrap(), "cod"), vec![(1, 1.0), (2, 2.0), (3, 3.0)]);
}

#[test]
fn a_truncated_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), &options(), None).unwrap();
    store.append(&[r("cod", 1.0, 1)]).unwrap();
    store.append(&[r("cod", 2.0, 2), r("cod", 3.0, 3)]).unwrap();
    drop(store);
    let path = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    let full = std::fs::metadata(&path).unwrap().len();
    // The second record: header + one point entry (22 bytes); cut 5 of its bytes.
    OpenOptions::new().write(true).open(&path).unwrap().set_len(full - 5).unwrap();
    let store = Store::open_with(dir.path(), &options(), None).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 1.0)], "the cut record's batch is gone whole");
    // A flipped byte inside the last record fails its checksum: cut too.
    store.append(&[r("cod", 4.0, 4)]).unwrap();
    drop(store);
    let last = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&last, &bytes).unwrap();
    let store = Store::open_with(dir.path(), &options(), None).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 1.0)]);
}

#[test]
fn damage_before_the_last_segment_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&[r("cod", 1.0, 1)]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&[r("cod", 2.0, 2)]).unwrap();
    drop(store);
    let first = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    // The first record is the group record of the first commit.
    let at = log::group_record(0).len() as u64;
    assert!(matches!(&e, StoreError::Corrupt { path, offset, .. } if *path == first && *offset == at), "{e}");
}

#[test]
fn segments_rotate_and_every_segment_decodes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreSection { segment_max_bytes: 200, ..options() };
    let store = Store::open(dir.path(), &small).unwrap();
    for t in 0..40 {
        store.append(&[r("cod", t as f64, t), r("ph", 7.0, t)]).unwrap();
    }
    drop(store);
    let segments = log::list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 5, "{segments:?}");
    // Set the first segments aside (as repair does): the rest still decode.
    for n in &segments[..2] {
        std::fs::remove_file(log::segment_path(dir.path(), *n)).unwrap();
    }
    let lost = repair_all(dir.path());
    assert_eq!(lost.iter().map(|d| d.segment).collect::<Vec<_>>(), segments[..2]);
    let store = Store::open(dir.path(), &small).unwrap();
    let cod = values(&store, "cod");
    assert_eq!(cod.last(), Some(&(39, 39.0)));
    assert!(cod.len() < 40 && cod.len() > 20, "{}", cod.len());
    assert!(cod.windows(2).all(|w| w[1].0 == w[0].0 + 1), "a contiguous tail survives");
    let lost_readings: u64 = lost.iter().map(repair::Damage::readings).sum();
    assert_eq!(lost_readings as usize + store.len(), 80, "what repair reports lost is exactly what is gone");
}

/// Runs repair until the store opens; returns each damage set aside.
fn repair_all(dir: &Path) -> Vec<repair::Damage> {
    let mut out = Vec::new();
    while let Some(damage) = repair::find(dir).unwrap() {
        repair::set_aside(dir, &damage).unwrap();
        assert!(out.len() < 100, "repair does not converge: {damage:?}");
        out.push(damage);
    }
    out
}

/// Writes `batches` batches of one cod and one ph reading each, in small segments; returns
/// the segments that hold them.
fn written(dir: &Path, batches: i64) -> Vec<u64> {
    let store = Store::open(dir, &StoreSection { segment_max_bytes: 200, ..options() }).unwrap();
    for t in 0..batches {
        store.append(&[r("cod", t as f64, t), r("ph", 7.0, t)]).unwrap();
    }
    store.close().unwrap();
    assert!(store.append(&[r("cod", 1.0, 1_000)]).is_err(), "a closed store takes nothing");
    drop(store);
    log::list_segments(dir).unwrap()
}

fn damaged(e: StoreError) -> (PathBuf, String) {
    match e {
        StoreError::Damaged { path, reason } => (path, reason),
        e => panic!("not Damaged: {e}"),
    }
}

#[test]
fn a_missing_middle_segment_stops_the_open_and_repair_records_exactly_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let segments = written(dir.path(), 40);
    let middle = log::segment_path(dir.path(), segments[segments.len() / 2]);
    let held = {
        let mut defs = HashMap::new();
        let bytes = std::fs::read(&middle).unwrap();
        let mut times = Vec::new();
        let mut at = 0;
        while let Some(payload) = log::record_at(&bytes, at) {
            log::decode_record(payload, &mut defs, |e| {
                if let log::Entry::Point { time_ns, key: Some(k), .. } = e {
                    times.push((k.parameter.to_string(), time_ns));
                }
            })
            .unwrap();
            at += log::HEADER_BYTES + payload.len();
        }
        times
    };
    assert!(!held.is_empty());
    std::fs::remove_file(&middle).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    let message = e.to_string();
    let (path, reason) = damaged(e);
    assert_eq!(path, middle);
    assert!(reason.starts_with("missing"), "{reason}");
    assert!(message.contains("eitwatch-server repair --data-dir"), "{message}");
    let lost = repair_all(dir.path());
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].undecoded_bytes, 0);
    let cod: Vec<i64> = held.iter().filter(|(p, _)| p == "cod").map(|(_, t)| *t).collect();
    let lost_cod = lost[0].lost.iter().find(|s| s.parameter == "cod").unwrap();
    assert_eq!(
        (lost_cod.from_ns, lost_cod.to_ns, lost_cod.count, &*lost_cod.factory, &*lost_cod.point, &*lost_cod.kind),
        (cod[0], *cod.last().unwrap(), cod.len() as u64, "f1", "outfall-1", "effluent")
    );
    assert_eq!(lost[0].readings() as usize, held.len());
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len() + held.len(), 80, "every other reading is there");
    let got: Vec<i64> = values(&store, "cod").iter().map(|(t, _)| *t).collect();
    assert!(got.iter().all(|t| !cod.contains(t)));
}

#[test]
fn the_newest_segment_emptied_or_cut_before_its_last_group_stops_the_open() {
    for cut in ["emptied", "halved"] {
        let dir = tempfile::tempdir().unwrap();
        let segments = written(dir.path(), 10);
        let newest = log::segment_path(dir.path(), *segments.last().unwrap());
        let len = std::fs::metadata(&newest).unwrap().len();
        assert!(len > 100, "{len}");
        let to = if cut == "emptied" { 0 } else { len / 2 };
        OpenOptions::new().write(true).open(&newest).unwrap().set_len(to).unwrap();
        let (path, reason) = damaged(Store::open(dir.path(), &options()).unwrap_err());
        assert_eq!(path, newest, "{cut}");
        assert!(reason.contains(&format!("shortened: {to} bytes, sealed with {len}")), "{cut}: {reason}");
        assert_eq!(std::fs::metadata(&newest).unwrap().len(), to, "{cut}: nothing cut or deleted");
    }
}

#[test]
fn a_segment_sealed_at_the_next_start_after_a_crash_is_checked_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    for t in 0..5 {
        store.append(&[r("cod", t as f64, t)]).unwrap();
    }
    drop(store); // A crash: nothing sealed.
    let crashed = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    drop(Store::open(dir.path(), &options()).unwrap());
    let len = std::fs::metadata(&crashed).unwrap().len();
    OpenOptions::new().write(true).open(&crashed).unwrap().set_len(len - 20).unwrap();
    let (path, reason) = damaged(Store::open(dir.path(), &options()).unwrap_err());
    assert_eq!(path, crashed);
    assert!(reason.starts_with("shortened"), "{reason}");
}

#[test]
fn a_flipped_byte_in_an_old_segment_stops_the_open_and_repair_sets_the_segment_aside() {
    let dir = tempfile::tempdir().unwrap();
    let segments = written(dir.path(), 40);
    let old = log::segment_path(dir.path(), segments[1]);
    let mut bytes = std::fs::read(&old).unwrap();
    bytes[40] ^= 0x10;
    std::fs::write(&old, &bytes).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    assert!(matches!(&e, StoreError::Corrupt { path, .. } if *path == old), "{e}");
    assert!(e.to_string().contains("eitwatch-server repair"), "{e}");
    let lost = repair_all(dir.path());
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].path, old);
    let aside = dir.path().join("damaged").join(old.file_name().unwrap());
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "set aside as it was, not deleted");
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len() as u64 + lost[0].readings(), 80);
}

#[test]
fn a_segment_the_manifest_never_announced_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let segments = written(dir.path(), 10);
    let stray = log::segment_path(dir.path(), segments[0] + 100);
    std::fs::copy(log::segment_path(dir.path(), segments[0]), &stray).unwrap();
    // The highest segment, with content: not a crashed rotation's empty file.
    let (path, reason) = damaged(Store::open(dir.path(), &options()).unwrap_err());
    assert_eq!(path, stray);
    assert!(reason.contains("not in the manifest"), "{reason}");
    // An empty one is what a crash between creating a segment and announcing it leaves.
    std::fs::write(&stray, b"").unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), 20);
    assert!(!stray.exists());
}

#[test]
fn a_store_of_format_1_opens_and_gets_its_manifest_once() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/v1");
    for n in log::list_segments(&fixture).unwrap() {
        std::fs::copy(log::segment_path(&fixture, n), log::segment_path(dir.path(), n)).unwrap();
    }
    assert!(!manifest::path(dir.path()).exists());
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), 25);
    assert_eq!(values(&store, "cod").last(), Some(&(100, 100.0)));
    store.close().unwrap();
    drop(store);
    let lines: Vec<manifest::Line> = crate::jsonl::read(&manifest::path(dir.path())).unwrap();
    assert_eq!(lines.iter().filter(|l| matches!(l, manifest::Line::Format { version: 3 })).count(), 1);
    let sealed: u64 = lines
        .iter()
        .filter_map(|l| match l {
            manifest::Line::Seal { segment, readings, .. } => {
                let content = manifest::content(dir.path(), *segment).unwrap();
                assert_eq!(content.iter().map(|s| s.count).sum::<u64>(), *readings);
                Some(*readings)
            }
            _ => None,
        })
        .sum();
    assert_eq!(sealed, 25, "every reading of the earlier format is in a seal");
    // From now on it is checked as any other.
    let first = log::segment_path(dir.path(), 1);
    std::fs::remove_file(&first).unwrap();
    assert_eq!(damaged(Store::open(dir.path(), &options()).unwrap_err()).0, first);
}

#[test]
fn retention_drops_old_readings_and_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let day_ns = 86_400_000_000_000i64;
    let now = now_ns();
    let keep = StoreSection { segment_max_bytes: 4096, ..options() };
    let store = Store::open(dir.path(), &keep).unwrap();
    // 10 days ago, then yesterday, then now: each in its own segment after the restart.
    store.append(&[r("cod", 1.0, now - 10 * day_ns)]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &keep).unwrap();
    store.append(&[r("cod", 2.0, now - day_ns)]).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &keep).unwrap();
    store.append(&[r("cod", 3.0, now)]).unwrap();
    drop(store);
    assert_eq!(log::list_segments(dir.path()).unwrap().len(), 3);
    let store = Store::open(dir.path(), &StoreSection { retention_days: Some(5), ..keep }).unwrap();
    assert_eq!(values(&store, "cod"), vec![(now - day_ns, 2.0), (now, 3.0)]);
    assert_eq!(
        log::list_segments(dir.path()).unwrap().len(),
        3,
        "the 10-day-old segment is deleted; two kept and one new"
    );
    assert_eq!(store.len(), 2);
}

#[test]
fn concurrent_writers_share_syncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path(), &options()).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let t = (w * 1000 + i) as i64;
                    let batch: Vec<Reading> = (0..20).map(|p| r(&format!("p{p}"), t as f64 + p as f64, t)).collect();
                    let (_, a) = store.append(&batch).unwrap();
                    assert_eq!(a.stored, 20);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(store.len(), 8 * 50 * 20);
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(store.len(), 8 * 50 * 20);
    assert_eq!(values(&store, "p3")[..2], [(0, 3.0), (1, 4.0)]);
}

#[test]
fn back_filled_points_land_in_order_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let n = (partition::BLOCK_POINTS * 3) as i64;
    // Even times first (in order, flushed to a partition file), then the odd ones
    // back-filled in reverse, each checked against the file's blocks.
    let evens: Vec<Reading> = (0..n).map(|i| r("cod", i as f64, 2 * i)).collect();
    store.append(&evens).unwrap();
    assert_eq!(store.flush().unwrap(), n as usize);
    let odds: Vec<Reading> = (0..n).rev().map(|i| r("cod", -(i as f64), 2 * i + 1)).collect();
    for batch in odds.chunks(64) {
        store.append(batch).unwrap();
    }
    let got = values(&store, "cod");
    assert_eq!(got.len() as i64, 2 * n);
    assert!(got.iter().enumerate().all(|(i, (t, _))| *t == i as i64));
    let k = partition::BLOCK_POINTS as i64 + 5;
    assert_eq!(got[(2 * k + 1) as usize], (2 * k + 1, -(k as f64)));
    assert_eq!(got[(2 * k) as usize], (2 * k, k as f64));
    assert_eq!(store.query(|_| true, 100, 103).iter().map(|(_, t, _)| *t).collect::<Vec<_>>(), vec![100, 101, 102]);
}

#[test]
fn downsampling_gives_exact_min_max_mean_count_per_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let s = 1_000_000_000i64;
    // Buckets of 60 s: [0, 60) has 1, 2, 6; [60, 120) nothing; [120, 180) has 10; and one
    // reading before the epoch lands in [-60, 0).
    let batch = vec![
        r("cod", 1.0, 0),
        r("cod", 2.0, 30 * s),
        r("cod", 6.0, 59 * s),
        r("cod", 10.0, 120 * s),
        r("cod", 4.5, -s),
        r("ph", 7.0, 0),
    ];
    store.append(&batch).unwrap();
    let got = store.downsample(|k| &*k.parameter == "cod", i64::MIN, i64::MAX, 60 * s);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        vec![
            Bucket { start_ns: -60 * s, count: 1, min: 4.5, max: 4.5, mean: 4.5 },
            Bucket { start_ns: 0, count: 3, min: 1.0, max: 6.0, mean: 3.0 },
            Bucket { start_ns: 120 * s, count: 1, min: 10.0, max: 10.0, mean: 10.0 },
        ]
    );
    // The range bounds cut readings, not buckets: [30 s, 121 s) holds 2, 6 and 10.
    let got = store.downsample(|k| &*k.parameter == "cod", 30 * s, 121 * s, 60 * s);
    assert_eq!(
        got[0].1,
        vec![
            Bucket { start_ns: 0, count: 2, min: 2.0, max: 6.0, mean: 4.0 },
            Bucket { start_ns: 120 * s, count: 1, min: 10.0, max: 10.0, mean: 10.0 },
        ]
    );
    assert_eq!(store.downsample(|_| true, i64::MIN, i64::MAX, 60 * s).len(), 2);
}

#[test]
fn append_rows_gives_each_new_rows_series_id_and_index_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let rows = |body: &str| {
        let mut out = Vec::new();
        let cx = DecodeContext::canonical(Precision::Ns, 0);
        decode_rows(body, &cx, |_, r| {
            out.extend(r.drain(..).map(|r| r.to_reading()));
            Ok(())
        })
        .unwrap();
        out
    };
    let decode = |body: &'static str| {
        let mut out = Vec::new();
        let cx = DecodeContext::canonical(Precision::Ns, 0);
        decode_rows(body, &cx, |_, r| {
            out.append(r);
            Ok(())
        })
        .unwrap();
        out
    };
    let first = decode("effluent,factory=f1,point=outfall-1 cod=1,ph=7 1\n");
    let (fresh, a) = store.append_rows(&first, |id, i, _| (id, i)).unwrap();
    assert_eq!((fresh, a), (vec![(0, 0), (1, 1)], Appended { stored: 2, duplicates: 0 }));
    // Two points' lines interleaved: a row is interned under its own point, never the last one's.
    let body = "effluent,factory=f1,point=outfall-1 cod=1,ph=7 1\n\
                effluent,factory=f1,point=outfall-2 cod=3,ph=6 2\n\
                effluent,factory=f1,point=outfall-1 cod=2,tss=9 2\n\
                effluent,factory=f1,point=outfall-2 ph=6.5 3\n";
    let (fresh, a) = store.append_rows(&decode(body), |id, i, _| (id, i)).unwrap();
    assert_eq!(a, Appended { stored: 5, duplicates: 2 });
    assert_eq!(fresh, vec![(2, 2), (3, 3), (0, 4), (4, 5), (3, 6)], "(series id, row index)");
    let key = |id| store.series_key(id).map(|k| format!("{}/{}", k.point, k.parameter));
    let keys: Vec<_> = (0..6).map(key).collect();
    let want = ["outfall-1/cod", "outfall-1/ph", "outfall-2/cod", "outfall-2/ph", "outfall-1/tss"];
    assert_eq!(keys, want.iter().map(|k| Some(k.to_string())).chain([None]).collect::<Vec<_>>());
    let stored = store.query(|_| true, i64::MIN, i64::MAX);
    let mut expected = rows(body);
    expected.sort_by(|a, b| (&a.point, &a.parameter, a.time_ns).cmp(&(&b.point, &b.parameter, b.time_ns)));
    let mut got: Vec<_> = stored.iter().map(|(k, t, s)| k.reading(*t, s)).collect();
    got.sort_by(|a, b| (&a.point, &a.parameter, a.time_ns).cmp(&(&b.point, &b.parameter, b.time_ns)));
    assert_eq!(got, expected, "every row stored under its own series, exactly");
    let rewrite = decode("effluent,factory=f1,point=outfall-2 ph=8 3\n");
    assert!(matches!(store.append_rows(&rewrite, |id, i, _| (id, i)), Err(StoreError::Rewrite { .. })));
    assert_eq!(store.len(), 7);
}

#[test]
fn packed_chunks_keep_every_bit_of_time_value_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    // Irregular, negative and extreme times; values that stress the XOR packing.
    let mut times: Vec<i64> = vec![i64::MIN + 1, -5_000_000_000, -1, 0, 1, 60_000_000_000, 60_000_000_001];
    times.extend((0..400).map(|i| 1_795_000_000_000_000_000 + i * 60_000_000_000 + (i % 7) * 13));
    times.push(i64::MAX - 1);
    let special = [0.0, -0.0, f64::MIN_POSITIVE, f64::MAX, -f64::MAX, 1e-300, 7.25, 7.25, 7.250000000000001];
    let batch: Vec<Reading> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = special.get(i).copied().unwrap_or((i as f64).sqrt() * 10.0);
            let mut reading = r("cod", v, *t);
            if i % 50 == 3 {
                reading.quality = Quality::Calibration;
                reading.source = Source::Lab;
                reading.below_detection_limit = true;
            }
            reading
        })
        .collect();
    store.append(&batch).unwrap();
    // Half in a partition file, half in the memtable.
    store.flush().unwrap();
    let more: Vec<Reading> = batch
        .iter()
        .map(|r| Reading { time_ns: r.time_ns.saturating_add(1), ..r.clone() })
        .filter(|r| r.time_ns < i64::MAX && !times.contains(&r.time_ns))
        .collect();
    store.append(&more).unwrap();
    let mut batch = batch;
    batch.extend(more);
    batch.sort_by_key(|r| r.time_ns);
    let check = |store: &Store| {
        let got: Vec<Reading> =
            store.query(|_| true, i64::MIN, i64::MAX).iter().map(|(k, t, s)| k.reading(*t, s)).collect();
        let gt: std::collections::BTreeSet<i64> = got.iter().map(|g| g.time_ns).collect();
        let missing: Vec<i64> = batch.iter().map(|r| r.time_ns).filter(|t| !gt.contains(t)).collect();
        assert_eq!(got.len(), batch.len(), "missing {missing:?}");
        for (g, w) in got.iter().zip(&batch) {
            assert_eq!(
                (g.time_ns, g.value.to_bits(), g.quality, g.source),
                (w.time_ns, w.value.to_bits(), w.quality, w.source)
            );
            assert_eq!(g.below_detection_limit, w.below_detection_limit);
        }
        // Every point is found for the duplicate check, packed or not.
        let (_, a) = store.append(&batch).unwrap();
        assert_eq!(a, Appended { stored: 0, duplicates: batch.len() });
    };
    check(&store);
    drop(store);
    check(&Store::open(dir.path(), &options()).unwrap());
}

/// `(offset, whole length)` of every record of a segment.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(payload) = log::record_at(bytes, at) {
        out.push((at, log::HEADER_BYTES + payload.len()));
        at += log::HEADER_BYTES + payload.len();
    }
    out
}

#[test]
fn damage_followed_by_a_later_commit_is_not_cut_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    for t in 1..=3 {
        store.append(&[r("cod", t as f64, t)]).unwrap();
    }
    drop(store);
    let path = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    // Group, batch, group, batch, group, batch: flip a bit inside the second batch.
    let recs = records(&bytes);
    assert_eq!(recs.len(), 6);
    let (second, _) = recs[3];
    bytes[second + log::HEADER_BYTES + 7] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    assert!(matches!(&e, StoreError::Corrupt { offset, .. } if *offset == second as u64), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
}

#[test]
fn a_torn_last_commit_is_cut_even_with_good_records_after_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), &options(), None).unwrap();
    for t in 1..=3 {
        store.append(&[r("cod", t as f64, t)]).unwrap();
    }
    drop(store);
    let path = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    let bytes = std::fs::read(&path).unwrap();
    let recs = records(&bytes);
    // Make the last two batches one commit (drop the third group record), then lose a page
    // of the second batch but not of the third: what a power cut mid-write may leave.
    let (g3, g3_len) = recs[4];
    let mut torn = [&bytes[..g3], &bytes[g3 + g3_len..]].concat();
    let (second, _) = recs[3];
    torn[second + log::HEADER_BYTES + 7] ^= 0x01;
    std::fs::write(&path, &torn).unwrap();
    let store = Store::open_with(dir.path(), &options(), None).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 1.0)]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), second as u64, "cut at the damage");
}

#[test]
fn segments_of_the_earlier_point_format_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        SeriesKey { factory: "f1".into(), point: "outfall-1".into(), kind: Kind::Effluent, parameter: "cod".into() };
    let stored = |value| Stored { value, quality: Quality::Suspect, source: Source::Lab, below_detection_limit: true };
    let mut bytes = vec![0; log::GROUP_RECORD_BYTES];
    let start = log::begin_record(&mut bytes);
    log::put_def(&mut bytes, 7, &key);
    log::put_point(&mut bytes, 7, 60_000_000_000, &stored(95.5));
    log::put_point(&mut bytes, 7, -1, &stored(-0.0));
    log::finish_record(&mut bytes, start);
    let group = log::group_record((bytes.len() - log::GROUP_RECORD_BYTES) as u64);
    bytes[..log::GROUP_RECORD_BYTES].copy_from_slice(&group);
    std::fs::write(log::segment_path(dir.path(), 0), &bytes).unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let got: Vec<_> = store.query(|_| true, i64::MIN, i64::MAX);
    assert_eq!(got, vec![(key.clone(), -1, stored(-0.0)), (key, 60_000_000_000, stored(95.5))]);
}

#[test]
fn series_share_their_names_live_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let other = Reading::new(Kind::Effluent, "f2", "outfall-1", "cod", 3.0, 1);
    store.append(&[r("cod", 1.0, 1), r("ph", 7.0, 1), other]).unwrap();
    let check = |store: &Store| {
        let keys: Vec<SeriesKey> = (0..3).map(|id| store.series_key(id).unwrap()).collect();
        let names: Vec<_> = keys.iter().map(|k| (&*k.factory, &*k.point, &*k.parameter)).collect();
        assert_eq!(names, [("f1", "outfall-1", "cod"), ("f1", "outfall-1", "ph"), ("f2", "outfall-1", "cod")]);
        assert!(Arc::ptr_eq(&keys[0].factory, &keys[1].factory), "one factory's series share its id");
        assert!(Arc::ptr_eq(&keys[0].point, &keys[2].point), "two factories' outfall-1 is one string");
        assert!(Arc::ptr_eq(&keys[0].parameter, &keys[2].parameter));
        assert!(!Arc::ptr_eq(&keys[0].factory, &keys[2].factory));
    };
    check(&store);
    drop(store);
    // Replayed from the log, whose every definition decodes names of its own.
    check(&Store::open(dir.path(), &options()).unwrap());
}

#[test]
fn the_id_table_finds_every_key_after_growth_and_tells_look_alike_keys_apart() {
    let key =
        |kind, f: &str, p: &str, q: &str| SeriesKey { factory: f.into(), point: p.into(), kind, parameter: q.into() };
    // Keys that one string with separators (the earlier lookup key) would have merged, and
    // names in Thai, empty or sharing bytes across fields.
    let mut keys = vec![
        key(Kind::Effluent, "a\u{1f}b", "c", "cod"),
        key(Kind::Effluent, "a", "b\u{1f}c", "cod"),
        key(Kind::Effluent, "ab", "c", "cod"),
        key(Kind::Effluent, "a", "bc", "cod"),
        key(Kind::Effluent, "a", "b", "ccod"),
        key(Kind::Effluent, "โรงงาน-1", "บ่อ-1", "cod"),
        key(Kind::Effluent, "โรงงาน-1", "บ่อ-1", "ค่า"),
        key(Kind::Effluent, "", "", ""),
        key(Kind::Emission, "", "", ""),
        key(Kind::Ambient, "", "", ""),
    ];
    // Enough to grow the table many times over.
    keys.extend(
        (0..5000).map(|i| key(Kind::ALL[i % 3], &format!("f{}", i / 30), &format!("p{}", i % 7), &format!("{i}"))),
    );
    let mut index = index::Index::default();
    let ids: Vec<u32> = keys.iter().map(|k| index.intern_key(k.clone())).collect();
    assert_eq!(ids, (0..keys.len() as u32).collect::<Vec<_>>(), "every key a series of its own");
    for (k, id) in keys.iter().zip(&ids) {
        assert_eq!(index.intern_key(k.clone()), *id, "{k:?} found again");
        assert_eq!(index.key(*id), Some(k));
        // And through an offered reading, as ingest finds them.
        let reading = Reading::new(k.kind, &k.factory, &k.point, &k.parameter, 1.0, 0);
        assert_eq!(index.intern(&reading, false), *id, "{k:?} offered");
    }
    assert_eq!(index.series.len(), keys.len());
}

#[test]
fn the_memtable_keeps_its_points_as_a_sorted_map_does_through_appends_back_fills_removals_and_pruning() {
    let mut m = memtable::Memtable::default();
    let id = 3;
    let mut model: BTreeMap<i64, Stored> = BTreeMap::new();
    // A fixed pseudo-random walk (64-bit LCG): mostly appends, some back-fills, removals
    // (a refused batch's undo) and pruning (retention).
    let mut x = 7u64;
    let mut next = move |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n
    };
    let mut end = 0i64;
    for step in 0..6000u64 {
        let stored = Stored {
            value: step as f64 * 0.5 - 100.0,
            quality: Quality::ALL[(step / 7) as usize % Quality::ALL.len()],
            source: if step % 5 == 0 { Source::Lab } else { Source::Instrument },
            below_detection_limit: step % 11 == 0,
        };
        match next(20) {
            0..=11 => {
                end += 1 + next(3) as i64;
                assert_eq!(m.get(id, end), None);
                m.insert(id, end, stored);
                model.insert(end, stored);
            }
            12..=16 => {
                let t = next(end as u64 + 1) as i64;
                assert_eq!(m.get(id, t), model.get(&t).copied(), "at {t}");
                if let std::collections::btree_map::Entry::Vacant(e) = model.entry(t) {
                    m.insert(id, t, stored);
                    e.insert(stored);
                }
            }
            17..=18 if !model.is_empty() => {
                let t = *model.keys().nth(next(model.len() as u64) as usize).unwrap();
                m.remove(id, t);
                model.remove(&t);
            }
            _ if step % 10 == 0 => {
                let cutoff = next(end as u64 + 1) as i64 / 4;
                let before = model.len();
                model.retain(|t, _| *t >= cutoff);
                assert_eq!(m.prune(cutoff), before - model.len());
            }
            _ => {}
        }
        if step % 500 == 0 || step == 5999 {
            assert_eq!(m.len(), model.len());
            let all: Vec<(i64, Stored)> = model.iter().map(|(t, s)| (*t, *s)).collect();
            assert_eq!(m.range(id, i64::MIN, i64::MAX), all, "after step {step}");
            let (from, to) = (end / 3, end / 2);
            let part: Vec<(i64, Stored)> = model.range(from..to).map(|(t, s)| (*t, *s)).collect();
            assert_eq!(m.range(id, from, to), part);
        }
    }
    assert!(model.len() > 1000, "{}", model.len());
}

#[test]
fn a_read_in_slices_or_resumed_anywhere_gives_each_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    // Three series sharing every time, across several blocks each, the first two thirds
    // in a partition file, the rest in the memtable.
    let n = 3 * partition::BLOCK_POINTS as i64;
    let batch: Vec<Reading> =
        ["bod", "cod", "ph"].iter().flat_map(|p| (0..n).map(move |t| r(p, t as f64, 10 * t))).collect();
    let (old, new): (Vec<Reading>, Vec<Reading>) = batch.into_iter().partition(|r| r.time_ns < 20 * n / 3);
    store.append(&old).unwrap();
    store.flush().unwrap();
    store.append(&new).unwrap();
    let whole = store.query(|_| true, i64::MIN, i64::MAX);
    assert_eq!(whole.len() as i64, 3 * n);
    for max in [1, 7, 128, 129, 1000] {
        let mut scan = store.scan(|_| true, i64::MIN, i64::MAX, None);
        let (mut got, mut slice) = (Vec::new(), Vec::new());
        while store.read(&mut scan, max, &mut slice) {
            assert!(slice.len() <= max);
            got.extend(slice.iter().map(|&(i, t, s)| (scan.key(i).clone(), t, s)));
        }
        assert_eq!(got, whole, "slices of {max}");
    }
    // Resumed at any reading (inside a series, at its first, at a time it shares with the
    // others): exactly the readings from there on.
    for at in [0, 1, 200, n as usize, n as usize + 1, 3 * n as usize - 1] {
        let (key, time_ns, _) = &whole[at];
        let resume = Resume { key: key.clone(), time_ns: *time_ns };
        let mut scan = store.scan(|_| true, i64::MIN, i64::MAX, Some(&resume));
        let (mut got, mut slice) = (Vec::new(), Vec::new());
        while store.read(&mut scan, 100, &mut slice) {
            got.extend(slice.iter().map(|&(i, t, s)| (scan.key(i).clone(), t, s)));
        }
        assert_eq!(got, whole[at..], "resumed at {at}");
    }
    // Resumed before the span's start, the span still holds.
    let key = whole[0].0.clone();
    let mut scan = store.scan(|_| true, 50, 100, Some(&Resume { key, time_ns: i64::MIN }));
    let mut slice = Vec::new();
    store.read(&mut scan, 1000, &mut slice);
    assert_eq!(slice.iter().map(|&(_, t, _)| t).collect::<Vec<_>>(), [50, 60, 70, 80, 90].repeat(3));
}

/// Waits (bounded) until the acknowledged-position file holds the store's durable position.
fn acknowledged_written(store: &Store) {
    let want = *store.durable().borrow();
    for _ in 0..500 {
        if checkpoint::read(store.dir()) == Some(want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the acknowledged position {want:?} was not written");
}

/// A store of 20 acknowledged batches, its acknowledged position written, then a crash.
fn crashed_after_20_acknowledged() -> (tempfile::TempDir, Option<std::time::Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let every = Some(std::time::Duration::from_millis(10));
    let store = Store::open_with(dir.path(), &options(), every).unwrap();
    for t in 0..20 {
        store.append(&[r("cod", t as f64, t)]).unwrap();
    }
    acknowledged_written(&store);
    drop(store); // A crash: the segment is not sealed.
    (dir, every)
}

#[test]
fn after_a_crash_the_newest_segment_cut_before_its_last_acknowledged_position_stops_the_open() {
    let (dir, every) = crashed_after_20_acknowledged();
    let newest = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let len = std::fs::metadata(&newest).unwrap().len();
    // A torn write past the acknowledged position is still cut.
    let mut f = OpenOptions::new().append(true).open(&newest).unwrap();
    f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 2, 0]).unwrap();
    drop(f);
    let store = Store::open_with(dir.path(), &options(), every).unwrap();
    assert_eq!(store.len(), 20);
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), len, "the torn tail is cut");
    store.append(&[r("cod", 20.0, 20)]).unwrap();
    acknowledged_written(&store);
    drop(store);
    let newest = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let len = std::fs::metadata(&newest).unwrap().len();
    for to in [len / 2, 0] {
        OpenOptions::new().write(true).open(&newest).unwrap().set_len(to).unwrap();
        let (path, reason) = damaged(Store::open(dir.path(), &options()).unwrap_err());
        assert_eq!(path, newest);
        assert_eq!(reason, format!("shortened: {to} bytes, but {len} were acknowledged"));
    }
    // A damaged record before the acknowledged position is not a torn tail either.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), &options(), every).unwrap();
    for t in 0..3 {
        store.append(&[r("cod", t as f64, t)]).unwrap();
    }
    acknowledged_written(&store);
    drop(store);
    let path = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path(), &options()).unwrap_err();
    assert!(matches!(&e, StoreError::Corrupt { reason, .. } if reason.contains("acknowledged position")), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
}

#[test]
fn repair_of_a_never_sealed_segment_counts_what_is_left_of_it_and_says_so() {
    let (dir, _) = crashed_after_20_acknowledged();
    let newest = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let len = std::fs::metadata(&newest).unwrap().len();
    OpenOptions::new().write(true).open(&newest).unwrap().set_len(len / 2).unwrap();
    let lost = repair_all(dir.path());
    assert_eq!(lost.len(), 1);
    assert!(!lost[0].sealed);
    let whole = records(&std::fs::read(dir.path().join("damaged").join(newest.file_name().unwrap())).unwrap());
    // Group and batch records alternate; the batches whole in what is left are counted.
    assert_eq!(lost[0].readings(), (whole.len() / 2) as u64);
    assert!(lost[0].undecoded_bytes > 0);
    assert_eq!(Store::open(dir.path(), &options()).unwrap().len(), 0);
}

#[test]
fn a_segment_gone_with_its_content_file_is_still_found_and_counted_from_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let segments = written(dir.path(), 40);
    let n = segments[2];
    std::fs::remove_file(log::segment_path(dir.path(), n)).unwrap();
    std::fs::remove_file(manifest::content_path(dir.path(), n)).unwrap();
    let (path, reason) = damaged(Store::open(dir.path(), &options()).unwrap_err());
    assert_eq!(path, log::segment_path(dir.path(), n));
    let sealed = reason.split("sealed with ").nth(1).unwrap().to_string();
    let damage = repair::find(dir.path()).unwrap().unwrap();
    assert!(damage.lost.is_empty());
    assert!(damage.what.contains("cannot be named"), "{}", damage.what);
    repair::set_aside(dir.path(), &damage).unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    let readings: usize = sealed.split(" readings").next().unwrap().split(", ").nth(1).unwrap().parse().unwrap();
    assert_eq!(store.len() + readings, 80, "{sealed}");
}

proptest::proptest! {
    /// A batch's readings grouped by series come out as a stable sort by series puts them,
    /// whether counted into place (ids close together) or sorted (ids far apart).
    #[test]
    fn a_batch_is_grouped_by_series_in_batch_order(
        ids in proptest::collection::vec(0u32..u32::MAX, 0..300),
        close in proptest::bool::ANY,
    ) {
        let id = |id: u32| if close { 1000 + id % 12 } else { id };
        let inserted: Vec<(u32, i64, usize)> = ids.iter().enumerate().map(|(i, v)| (id(*v), i as i64 * 7 - 50, i)).collect();
        let mut expected = inserted.clone();
        expected.sort_by_key(|r| r.0);
        proptest::prop_assert_eq!(by_series(&inserted), expected);
    }
}
