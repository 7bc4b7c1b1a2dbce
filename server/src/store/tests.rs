#![allow(clippy::unwrap_used)] // Tests: a failure is the panic.

use std::io::Write as _;

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
    drop(store);
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(values(&store, "cod"), vec![(10, 130.0), (11, 50.0)]);
    assert_eq!(values(&store, "bod"), vec![(5, 1.0)]);
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
    let store = Store::open(dir.path(), &options()).unwrap();
    store.append(&[r("cod", 1.0, 1)]).unwrap();
    store.append(&[r("cod", 2.0, 2), r("cod", 3.0, 3)]).unwrap();
    drop(store);
    let path = log::segment_path(dir.path(), log::list_segments(dir.path()).unwrap()[0]);
    let full = std::fs::metadata(&path).unwrap().len();
    // The second record: header + one point entry (22 bytes); cut 5 of its bytes.
    OpenOptions::new().write(true).open(&path).unwrap().set_len(full - 5).unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    assert_eq!(values(&store, "cod"), vec![(1, 1.0)], "the cut record's batch is gone whole");
    // A flipped byte inside the last record fails its checksum: cut too.
    store.append(&[r("cod", 4.0, 4)]).unwrap();
    drop(store);
    let last = log::segment_path(dir.path(), *log::list_segments(dir.path()).unwrap().last().unwrap());
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&last, &bytes).unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
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
    // Delete the first segments (what retention does): the rest still decode.
    std::fs::remove_file(log::segment_path(dir.path(), segments[0])).unwrap();
    std::fs::remove_file(log::segment_path(dir.path(), segments[1])).unwrap();
    let store = Store::open(dir.path(), &small).unwrap();
    let cod = values(&store, "cod");
    assert_eq!(cod.last(), Some(&(39, 39.0)));
    assert!(cod.len() < 40 && cod.len() > 20, "{}", cod.len());
    assert!(cod.windows(2).all(|w| w[1].0 == w[0].0 + 1), "a contiguous tail survives");
}

#[test]
fn retention_drops_old_readings_and_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let day_ns = 86_400_000_000_000i64;
    let now = now_ns();
    let keep = StoreSection { segment_max_bytes: 4096, retention_days: None };
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
    let n = (index::CHUNK_POINTS * 3) as i64;
    // Even times first (in order), then the odd ones back-filled in reverse.
    let evens: Vec<Reading> = (0..n).map(|i| r("cod", i as f64, 2 * i)).collect();
    store.append(&evens).unwrap();
    let odds: Vec<Reading> = (0..n).rev().map(|i| r("cod", -(i as f64), 2 * i + 1)).collect();
    for batch in odds.chunks(64) {
        store.append(batch).unwrap();
    }
    let got = values(&store, "cod");
    assert_eq!(got.len() as i64, 2 * n);
    assert!(got.iter().enumerate().all(|(i, (t, _))| *t == i as i64));
    let k = index::CHUNK_POINTS as i64 + 5;
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
    let check = |store: &Store| {
        let got: Vec<Reading> =
            store.query(|_| true, i64::MIN, i64::MAX).iter().map(|(k, t, s)| k.reading(*t, s)).collect();
        assert_eq!(got.len(), batch.len());
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
    let store = Store::open(dir.path(), &options()).unwrap();
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
    let store = Store::open(dir.path(), &options()).unwrap();
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
fn a_series_keeps_its_points_as_a_sorted_map_does_through_appends_back_fills_removals_and_pruning() {
    let mut index = index::Index::default();
    let key =
        SeriesKey { factory: "f1".into(), point: "outfall-1".into(), kind: Kind::Effluent, parameter: "cod".into() };
    let id = index.intern_key(key);
    let mut model: BTreeMap<i64, Stored> = BTreeMap::new();
    // A fixed pseudo-random walk (64-bit LCG): mostly appends, some back-fills into open
    // and packed chunks, removals (a refused batch's undo) and pruning (retention).
    let mut x = 7u64;
    let mut next = move |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n
    };
    let mut end = 0i64;
    let scan = |index: &index::Index, from: i64, to: i64| {
        let mut out = Vec::new();
        index.series[id as usize].scan(from, to, |t, s| out.push((t, s)));
        out
    };
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
                assert_eq!(index.get(id, end), None);
                index.insert(id, end, &stored);
                model.insert(end, stored);
            }
            12..=16 => {
                let t = next(end as u64 + 1) as i64;
                assert_eq!(index.get(id, t), model.get(&t).copied(), "at {t}");
                if let std::collections::btree_map::Entry::Vacant(e) = model.entry(t) {
                    index.insert(id, t, &stored);
                    e.insert(stored);
                }
            }
            17..=18 if !model.is_empty() => {
                let t = *model.keys().nth(next(model.len() as u64) as usize).unwrap();
                index.remove(id, t);
                model.remove(&t);
            }
            _ if step % 10 == 0 => {
                let cutoff = next(end as u64 + 1) as i64 / 4;
                let before = model.len();
                model.retain(|t, _| *t >= cutoff);
                assert_eq!(index.prune(cutoff), before - model.len());
            }
            _ => {}
        }
        if step % 500 == 0 || step == 5999 {
            assert_eq!(index.len(), model.len());
            let all: Vec<(i64, Stored)> = model.iter().map(|(t, s)| (*t, *s)).collect();
            assert_eq!(scan(&index, i64::MIN, i64::MAX), all, "after step {step}");
            let (from, to) = (end / 3, end / 2);
            let part: Vec<(i64, Stored)> = model.range(from..to).map(|(t, s)| (*t, *s)).collect();
            assert_eq!(scan(&index, from, to), part);
        }
    }
    assert!(model.len() > 3 * index::CHUNK_POINTS, "several chunks, packed and open: {}", model.len());
}

#[test]
fn a_series_emptied_by_an_undo_or_by_retention_takes_points_again() {
    let mut index = index::Index::default();
    let key =
        SeriesKey { factory: "f1".into(), point: "outfall-1".into(), kind: Kind::Effluent, parameter: "cod".into() };
    let id = index.intern_key(key);
    let points = |index: &index::Index| {
        let mut out = Vec::new();
        index.series[id as usize].scan(i64::MIN, i64::MAX, |t, s| out.push((t, s.value)));
        out
    };
    // A new series' first point undone (a refused batch), then stored for good.
    index.insert(id, 5, &Stored::of_value(1.0));
    index.remove(id, 5);
    assert_eq!((index.len(), index.get(id, 5)), (0, None));
    index.insert(id, 7, &Stored::of_value(2.0));
    assert_eq!(points(&index), [(7, 2.0)]);
    // Past one chunk, then every chunk dropped by retention.
    let n = 2 * index::CHUNK_POINTS as i64 + 3;
    for t in 10..10 + n {
        index.insert(id, t, &Stored::of_value(t as f64));
    }
    assert_eq!(index.len(), n as usize + 1);
    assert_eq!(index.prune(1_000), n as usize + 1);
    assert_eq!((index.len(), points(&index)), (0, vec![]));
    index.insert(id, 2_000, &Stored::of_value(3.0));
    index.insert(id, 1_500, &Stored::of_value(4.0));
    assert_eq!(points(&index), [(1_500, 4.0), (2_000, 3.0)]);
}

#[test]
fn a_read_in_slices_or_resumed_anywhere_gives_each_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options()).unwrap();
    // Three series sharing every time, across several chunks each.
    let n = 3 * index::CHUNK_POINTS as i64;
    let batch: Vec<Reading> =
        ["bod", "cod", "ph"].iter().flat_map(|p| (0..n).map(move |t| r(p, t as f64, 10 * t))).collect();
    store.append(&batch).unwrap();
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
