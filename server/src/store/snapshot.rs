//! Pins and snapshots: what a backup of a running store copies, and what keeps it on disk
//! while it is copied.
//!
//! A [`Pin`] ([`Store::pin`]) stops maintenance from deleting or replacing any file while it
//! lives: compaction, retention and segment retirement skip their rounds (flushes go on:
//! they only add files). Taking it waits for a round already running to finish, so once it
//! is held every file the manifest names stays where it is.
//!
//! [`Pin::snapshot`] then takes, under the commit lock (no group commit and no manifest line
//! in between), the log position P up to which everything is durable and the files that
//! make up the store as of P, by the names the manifest gives them: the manifest itself (its
//! length then), the partition files it names, the segments it has not dropped (a sealed
//! one whole, the one being written up to P), and the sealed segments' content files. A
//! copy of exactly those bytes is a store that opens as the running one would after a
//! crash at P: its partition files are those named, its last segment is unsealed and ends
//! on a record boundary, and the log from the last flush's position replays into the
//! memtable.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::{LogPosition, Store, StoreError, lock, log, manifest, partition};

/// Keeps every file of the store on disk while it lives (see the module doc).
#[derive(Debug)]
pub struct Pin<'a> {
    store: &'a Store,
}

/// One file of a snapshot, by its path relative to the store's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// `manifest`, `parts/<file>`, `<n>.seg`, `<n>.content.json`.
    pub name: String,
    /// The bytes of it that belong to the snapshot (its first `bytes`).
    pub bytes: u64,
    /// Never changed once written (a partition file, a sealed segment, a content file): it
    /// may be hard-linked instead of copied.
    pub immutable: bool,
}

/// The store's files as of one log position.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Everything acknowledged before the snapshot is before this position.
    pub position: LogPosition,
    /// The files, the manifest first.
    pub files: Vec<SnapshotFile>,
}

impl Store {
    /// Pins the store's files (see the module doc); waits for a flush, compaction or
    /// retention round in progress.
    pub fn pin(&self) -> Pin<'_> {
        let _round = lock(&self.flushing);
        self.pins.fetch_add(1, Ordering::AcqRel);
        Pin { store: self }
    }

    /// Whether a [`Pin`] is held: maintenance deletes nothing. Read under `flushing`.
    pub(super) fn pinned(&self) -> bool {
        self.pins.load(Ordering::Acquire) > 0
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        self.store.pins.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pin<'_> {
    /// The store's files as of the durable end of its log now.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let store = self.store;
        let commit = lock(&store.commit);
        let position = LogPosition { segment: commit.segment, offset: commit.offset };
        let manifest_path = manifest::path(&store.dir);
        let damaged = |reason: String| StoreError::Damaged { path: manifest_path.clone(), reason };
        let known = manifest::read_all(&store.dir).map_err(damaged)?.ok_or_else(|| damaged("empty".into()))?;
        let manifest_bytes = std::fs::metadata(&manifest_path)
            .map_err(|source| StoreError::Io { path: manifest_path.clone(), source })?
            .len();
        let mut files = vec![SnapshotFile { name: manifest::FILE.into(), bytes: manifest_bytes, immutable: false }];
        for part in known.parts.values() {
            let name = partition::dir(Path::new("")).join(&part.file).to_string_lossy().into_owned();
            files.push(SnapshotFile { name, bytes: part.bytes, immutable: true });
        }
        for (n, state) in &known.segments {
            let segment = file_name(&log::segment_path(&store.dir, *n));
            match state {
                manifest::Segment::Dropped { .. } => {}
                manifest::Segment::Sealed { bytes, .. } => {
                    files.push(SnapshotFile { name: segment, bytes: *bytes, immutable: true });
                    let content = manifest::content_path(&store.dir, *n);
                    if content.exists() {
                        let bytes = std::fs::metadata(&content)
                            .map_err(|source| StoreError::Io { path: content.clone(), source })?
                            .len();
                        files.push(SnapshotFile { name: file_name(&content), bytes, immutable: true });
                    }
                }
                manifest::Segment::Open if *n == position.segment => {
                    files.push(SnapshotFile { name: segment, bytes: position.offset, immutable: false });
                }
                // Unsealed by a crash and not yet sealed: nothing writes to it any more.
                manifest::Segment::Open => {
                    let path = log::segment_path(&store.dir, *n);
                    let bytes = std::fs::metadata(&path).map_err(|source| StoreError::Io { path, source })?.len();
                    files.push(SnapshotFile { name: segment, bytes, immutable: true });
                }
            }
        }
        drop(commit);
        tracing::info!(
            segment = position.segment,
            offset = position.offset,
            files = files.len(),
            "Store snapshot taken: its files are pinned until copied"
        );
        Ok(Snapshot { position, files })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads every block of the partition file at `path` (header, footer, index and each
/// block's CRC-32 and decoding); returns its Bangkok day (days since the epoch) and its
/// readings.
pub fn check_part_file(path: &Path) -> Result<(i64, u64), StoreError> {
    let mut ids = 0u32;
    let part = partition::Part::open(path, |_| {
        ids += 1;
        ids - 1
    })?;
    let mut points = Vec::new();
    let mut read = 0u64;
    for id in 0..ids {
        for b in part.blocks_of(id)?.iter() {
            points.clear();
            part.read_block(b, &mut points)?;
            read += points.len() as u64;
        }
    }
    if read != part.readings {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            reason: format!("its blocks hold {read} readings, its index {}", part.readings),
        });
    }
    Ok((part.day, part.readings))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failure is the panic.

    use std::io::Read as _;

    use super::*;
    use crate::store::{Reading, StoreSection};
    use eitwatch_config::reading::Kind;

    /// 2026-03-01T00:00:00+07:00.
    const MARCH_1: i64 = 1_772_298_000_000_000_000;
    const MINUTE: i64 = 60_000_000_000;

    /// `n` cod readings a minute apart from `from`, their values numbered from `from`.
    fn readings(from: i64, n: i64) -> Vec<Reading> {
        (from..from + n)
            .map(|i| Reading::new(Kind::Effluent, "f1", "outfall-1", "cod", i as f64, MARCH_1 + i * MINUTE))
            .collect()
    }

    fn copy(store: &Path, snapshot: &Snapshot, to: &Path) {
        for f in &snapshot.files {
            let dst = to.join(&f.name);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            let mut bytes = Vec::new();
            std::fs::File::open(store.join(&f.name)).unwrap().take(f.bytes).read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes.len() as u64, f.bytes, "{}", f.name);
            std::fs::write(dst, bytes).unwrap();
        }
    }

    #[test]
    fn a_pinned_snapshot_keeps_its_files_through_maintenance_and_opens_as_of_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreSection { segment_max_bytes: 4096, ..StoreSection::default() };
        let store = Store::open(dir.path(), &options).unwrap();
        store.start_retiring();
        // Three Bangkok days, flushed in runs: each closed day has several files.
        let day = 24 * 60;
        for chunk in readings(0, 3 * day).chunks(500) {
            store.append(chunk).unwrap();
            store.flush().unwrap();
        }
        store.append(&readings(3 * day, 100)).unwrap();
        let pin = store.pin();
        let snapshot = pin.snapshot().unwrap();
        assert!(snapshot.files.iter().filter(|f| f.name.starts_with("parts/")).count() > 3, "{snapshot:?}");
        assert!(snapshot.files.iter().any(|f| f.name.ends_with(".seg") && !f.immutable), "the segment being written");

        // Written after the snapshot; maintenance as of day 5: merges nothing, retires nothing.
        store.append(&readings(3 * day + 100, 100)).unwrap();
        store.maintain_at(MARCH_1 + 5 * day * MINUTE);
        for f in &snapshot.files {
            let len = std::fs::metadata(dir.path().join(&f.name)).unwrap().len();
            assert!(len >= f.bytes, "{} kept while pinned", f.name);
        }
        let copied = tempfile::tempdir().unwrap();
        copy(dir.path(), &snapshot, copied.path());
        drop(pin);

        // Unpinned: the closed days are merged and their runs deleted.
        store.maintain_at(MARCH_1 + 5 * day * MINUTE);
        let gone = snapshot.files.iter().filter(|f| !dir.path().join(&f.name).exists()).count();
        assert!(gone > 0, "maintenance replaced files once unpinned");

        // The copy opens as the store stood at the snapshot's position.
        let restored = Store::open(copied.path(), &options).unwrap();
        let got: Vec<(i64, f64)> =
            restored.query(|_| true, i64::MIN, i64::MAX).into_iter().map(|(_, t, s)| (t, s.value)).collect();
        let want: Vec<(i64, f64)> = readings(0, 3 * day + 100).iter().map(|r| (r.time_ns, r.value)).collect();
        assert_eq!(got, want);
        for f in snapshot.files.iter().filter(|f| f.name.starts_with("parts/")) {
            check_part_file(&copied.path().join(&f.name)).unwrap();
        }
    }
}
