use super::*;

fn r(p: &str, v: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "f1", "outfall-1", p, v, t)
}

#[test]
fn appends_survive_reopen_and_resends_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.log");
    let store = Store::open(&path).unwrap();
    let batch = vec![r("cod", 85.0, 1), r("cod", 90.0, 2), r("ph", 7.1, 1)];
    let (fresh, a) = store.append(&batch).unwrap();
    assert_eq!((fresh.len(), a), (3, Appended { stored: 3, duplicates: 0 }));
    let (fresh, a) = store.append(&batch).unwrap();
    assert_eq!((fresh.len(), a), (0, Appended { stored: 0, duplicates: 3 }));
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.len(), 3);
    let cod = store.query(|k| k.parameter == "cod", i64::MIN, i64::MAX);
    assert_eq!(cod.iter().map(|(_, t, s)| (*t, s.value)).collect::<Vec<_>>(), vec![(1, 85.0), (2, 90.0)]);
}

#[test]
fn a_rewrite_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("readings.log")).unwrap();
    store.append(&[r("cod", 130.0, 10)]).unwrap();
    let e = store.append(&[r("cod", 50.0, 11), r("cod", 100.0, 10)]).unwrap_err();
    assert!(
        matches!(e, StoreError::Rewrite { time_ns: 10, stored, offered, .. } if stored == 130.0 && offered == 100.0)
    );
    assert_eq!(store.len(), 1, "nothing of the refused batch is stored");
    // A conflict inside one batch is a rewrite too.
    assert!(store.append(&[r("bod", 1.0, 5), r("bod", 2.0, 5)]).is_err());
    assert_eq!(store.len(), 1);
}

#[test]
fn a_torn_tail_is_cut_and_acknowledged_batches_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.log");
    let store = Store::open(&path).unwrap();
    store.append(&[r("cod", 1.0, 1)]).unwrap();
    store.append(&[r("cod", 2.0, 2)]).unwrap();
    drop(store);
    let full = std::fs::metadata(&path).unwrap().len();
    // A power cut in the middle of the third record: half a record on disk.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, b'e', b'f']).unwrap();
    drop(f);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), full, "the torn tail is cut");
    store.append(&[r("cod", 3.0, 3)]).unwrap();
    drop(store);
    assert_eq!(Store::open(&path).unwrap().len(), 3);
}
