//! Backups of a running server's data directory, made by the server itself, and their
//! restore into a new data directory.
//!
//! ## What a backup is
//! A directory laid out as a data directory, plus `backup.json` ([`BackupManifest`]: format,
//! time, server version, the store's log position P, the engine checkpoint's position, and
//! every file with its size and SHA-256). It holds:
//! - the store as of P ([`crate::store::Snapshot`]): its manifest, the partition files it
//!   names (hard links when on the same file system: they never change), the segments it
//!   has not dropped, the one being written cut at P;
//! - `compliance.checkpoint`, taken for the backup at P itself (the checkpoint's position is
//!   taken with every write between storing and handing over to the engine shut out, and
//!   the store's snapshot is taken in the same moment), and the judgement day files it
//!   names: a restored server resumes from it and replays nothing;
//! - `gaps.log` and `corrections.log` cut at the records that checkpoint had judged;
//! - every other file of the data directory as it is once the store's files are copied
//!   (tokens, the registry log, alerts (`alerts.log`, then the archive `alerts/`),
//!   revisions, the audit log, notifications, deviations, dead letters,
//!   `indicators.toml`), files before directories, JSON-lines logs cut at their last whole
//!   line; `influxdb.cursor` no later than P. Not `listen-address` (the running server's).
//!
//! Ingest goes on throughout: the store is held (no write) only while P and its file list
//! are taken, and its maintenance deletes nothing until the copy is done ([`Store::pin`]).
//! The backup is written to `<dir>.partial` and renamed to `<dir>` once complete and
//! synced: a directory named as asked is a whole backup.
//!
//! ## Restore
//! [`verify`] checks every file against `backup.json` (present, size, SHA-256) and every
//! partition file block by block (CRC-32s, decoding); [`restore`] does that, refuses a
//! target that is not empty, copies, then opens the restored store (which checks its
//! manifest, segments and files as a start does), writes its log into partition files and
//! reports what it holds.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::App;
use crate::compliance::CheckpointError;
use crate::store::{self, LogPosition, Store, StoreError};

/// The format of `backup.json` this build writes and reads.
pub const FORMAT: u32 = 1;
/// The manifest's file name in a backup.
pub const MANIFEST: &str = "backup.json";

/// Files of the data directory a backup does not copy as they are: the store and the
/// engine's files (copied as of P), the logs cut at the checkpoint, and the running
/// server's own address.
const NOT_AS_IS: &[&str] =
    &["store", "judgements", "compliance.checkpoint", "gaps.log", "corrections.log", "listen-address"];

/// `backup.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// Format of this file: 1.
    pub format: u32,
    /// When the store's snapshot was taken (RFC 3339).
    pub taken: String,
    /// The server's version.
    pub server_version: String,
    /// The store's log position P: every reading acknowledged before the backup began is
    /// before it, none after it is in the backup.
    pub store_position: Position,
    /// How far the engine's checkpoint in the backup had judged the logs.
    pub compliance: Judged,
    /// Every file but this one, its path relative to the backup, in the order written.
    pub files: Vec<BackedUp>,
}

/// A position in the store's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in it.
    pub offset: u64,
}

impl From<LogPosition> for Position {
    fn from(p: LogPosition) -> Position {
        Position { segment: p.segment, offset: p.offset }
    }
}

/// How far a compliance checkpoint had judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Judged {
    /// The store's log.
    pub store: Position,
    /// Gap records.
    pub gaps: u64,
    /// Corrections.
    pub corrections: u64,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackedUp {
    /// Relative to the backup (and to the data directory it restores).
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The target is not a new absolute path, or not empty.
    #[error("{path}: {reason}")]
    Target {
        /// The target.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another backup is being made.
    #[error("a backup is already being made (to {0}); one at a time")]
    Busy(String),
    /// The store refused (its snapshot, or the restored store's check).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine's checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A file of the backup is missing, or differs from `backup.json`.
    #[error("{path}: {reason}; the backup is damaged, nothing was restored")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// The backup being made, if any.
static MAKING: Mutex<Option<PathBuf>> = Mutex::new(None);

/// What [`backup`] made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Made {
    /// The backup's directory.
    pub to: String,
    /// Its `backup.json`.
    pub manifest: BackupManifest,
    /// Bytes of its files.
    pub bytes: u64,
    /// Files hard-linked rather than copied.
    pub linked: usize,
    /// How long it took.
    pub elapsed_ms: u64,
}

/// Backs the running server's data directory up into `to` (absolute, not existing, not
/// inside the data directory), while it goes on taking writes. See the module doc.
pub fn backup(app: &App, to: &Path) -> Result<Made, BackupError> {
    let started = Instant::now();
    let target = |reason: &str| BackupError::Target { path: to.to_path_buf(), reason: reason.into() };
    if !to.is_absolute() || to.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(target("give an absolute path without `..`"));
    }
    let data = app.data_dir();
    let data_abs = std::fs::canonicalize(data).map_err(io(data))?;
    let parent = to.parent().ok_or_else(|| target("has no parent directory"))?;
    let parent_abs = std::fs::canonicalize(parent).map_err(io(parent))?;
    if parent_abs.starts_with(&data_abs) {
        return Err(target("is inside the server's data directory"));
    }
    if to.exists() {
        return Err(target("exists already: a backup goes to a new directory"));
    }
    let _making = {
        let mut making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = making.as_ref() {
            return Err(BackupError::Busy(other.display().to_string()));
        }
        *making = Some(to.to_path_buf());
        Making
    };
    let mut name = to.file_name().ok_or_else(|| target("has no file name"))?.to_os_string();
    name.push(".partial");
    let partial = to.with_file_name(name);
    if partial.exists() {
        tracing::warn!(path = %partial.display(), "Deleting an unfinished backup left by an earlier attempt");
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    let result = write_backup(app, &partial, started);
    let made = match result {
        Ok(made) => made,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, to).map_err(io(to))?;
    sync_dir(&parent_abs)?;
    let made = Made { to: to.display().to_string(), elapsed_ms: started.elapsed().as_millis() as u64, ..made };
    tracing::info!(
        to = %to.display(),
        segment = made.manifest.store_position.segment,
        offset = made.manifest.store_position.offset,
        files = made.manifest.files.len(),
        bytes = made.bytes,
        linked = made.linked,
        elapsed_ms = made.elapsed_ms,
        "Backup made"
    );
    Ok(made)
}

/// Clears [`MAKING`] however the backup ends.
struct Making;

impl Drop for Making {
    fn drop(&mut self) {
        *MAKING.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The backup's files into `out`, then its manifest.
fn write_backup(app: &App, out: &Path, started: Instant) -> Result<Made, BackupError> {
    let data = app.data_dir();
    let store_out = out.join("store");
    std::fs::create_dir_all(store_out.join("parts")).map_err(io(&store_out))?;
    let judgements_out = out.join("judgements");
    std::fs::create_dir_all(&judgements_out).map_err(io(&judgements_out))?;
    let mut w = Writer { root: out.to_path_buf(), files: Vec::new(), bytes: 0, linked: 0 };

    let pin = app.store.pin();
    let mut days_copied: Result<(), BackupError> = Ok(());
    let taken = app.compliance.checkpoint_with(
        |_| Ok(pin.snapshot()),
        |bytes, keep, days| {
            days_copied = (|| {
                w.write("compliance.checkpoint", bytes)?;
                for (day, generation) in keep {
                    let src = days.path(*day, *generation);
                    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    w.link_or_copy(&src, &format!("judgements/{name}"), None)?;
                }
                Ok(())
            })();
            Ok(())
        },
    )?;
    let (applied, snapshot) = taken.ok_or_else(|| BackupError::Target {
        path: out.to_path_buf(),
        reason: "this server does not checkpoint its compliance engine".into(),
    })?;
    let snapshot = snapshot?;
    days_copied?;
    let taken_at = jiff::Timestamp::now().to_string();
    for f in &snapshot.files {
        let src = app.store.dir().join(&f.name);
        let name = format!("store/{}", f.name);
        match f.immutable {
            true => w.link_or_copy(&src, &name, Some(f.bytes))?,
            false => w.copy_prefix(&src, &name, f.bytes)?,
        }
    }
    drop(pin);

    w.copy_lines(&data.join("gaps.log"), "gaps.log", applied.gaps)?;
    w.copy_lines(&data.join("corrections.log"), "corrections.log", applied.corrections)?;
    w.copy_rest(data, "", snapshot.position)?;

    let manifest = BackupManifest {
        format: FORMAT,
        taken: taken_at,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        store_position: snapshot.position.into(),
        compliance: Judged { store: applied.store.into(), gaps: applied.gaps, corrections: applied.corrections },
        files: w.files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| io(out)(std::io::Error::other(e)))?;
    let path = out.join(MANIFEST);
    let mut file = File::create(&path).map_err(io(&path))?;
    file.write_all(&json).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    for dir in [&store_out.join("parts"), &store_out, &judgements_out, &out.to_path_buf()] {
        sync_dir(dir)?;
    }
    Ok(Made {
        to: String::new(),
        manifest,
        bytes: w.bytes,
        linked: w.linked,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Writes a backup's files, recording each with its size and SHA-256.
struct Writer {
    root: PathBuf,
    files: Vec<BackedUp>,
    bytes: u64,
    linked: usize,
}

impl Writer {
    fn record(&mut self, name: &str, bytes: u64, hash: Sha256) {
        self.bytes += bytes;
        self.files.push(BackedUp { path: name.to_string(), bytes, sha256: hex::encode(hash.finalize()) });
    }

    fn dst(&self, name: &str) -> Result<PathBuf, BackupError> {
        let dst = self.root.join(name);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        Ok(dst)
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
        let dst = self.dst(name)?;
        let mut file = File::create(&dst).map_err(io(&dst))?;
        file.write_all(bytes).map_err(io(&dst))?;
        file.sync_all().map_err(io(&dst))?;
        self.record(name, bytes.len() as u64, Sha256::new_with_prefix(bytes));
        Ok(())
    }

    /// A file that never changes: hard-linked (copied across file systems), then hashed;
    /// `bytes`, when known, is checked.
    fn link_or_copy(&mut self, src: &Path, name: &str, bytes: Option<u64>) -> Result<(), BackupError> {
        let dst = self.dst(name)?;
        match std::fs::hard_link(src, &dst) {
            Ok(()) => self.linked += 1,
            Err(_) => {
                std::fs::copy(src, &dst).map_err(io(src))?;
                File::open(&dst).and_then(|f| f.sync_all()).map_err(io(&dst))?;
            }
        }
        let (len, hash) = hash_file(&dst, u64::MAX)?;
        if let Some(expected) = bytes
            && len != expected
        {
            return Err(BackupError::Damaged {
                path: src.to_path_buf(),
                reason: format!("{len} bytes, the store's manifest has {expected}"),
            });
        }
        self.record(name, len, hash);
        Ok(())
    }

    /// The first `bytes` of a file still being appended to.
    fn copy_prefix(&mut self, src: &Path, name: &str, bytes: u64) -> Result<(), BackupError> {
        let dst = self.dst(name)?;
        let mut from = File::open(src).map_err(io(src))?.take(bytes);
        let mut to = File::create(&dst).map_err(io(&dst))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut copied = 0u64;
        loop {
            let n = from.read(&mut buf).map_err(io(src))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            to.write_all(&buf[..n]).map_err(io(&dst))?;
            copied += n as u64;
        }
        if copied != bytes {
            return Err(BackupError::Damaged {
                path: src.to_path_buf(),
                reason: format!("{copied} bytes, the snapshot has {bytes}"),
            });
        }
        to.sync_all().map_err(io(&dst))?;
        self.record(name, copied, hash);
        Ok(())
    }

    /// The first `records` lines of a JSON-lines log (none there: nothing).
    fn copy_lines(&mut self, src: &Path, name: &str, records: u64) -> Result<(), BackupError> {
        let bytes = match std::fs::read(src) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(BackupError::Io { path: src.to_path_buf(), source }),
        };
        let end = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth((records as usize).wrapping_sub(1));
        let end = match (records, end) {
            (0, _) => 0,
            (_, Some((i, _))) => i + 1,
            (_, None) => {
                return Err(BackupError::Damaged {
                    path: src.to_path_buf(),
                    reason: format!("holds fewer than the {records} records the checkpoint judged"),
                });
            }
        };
        self.write(name, &bytes[..end])
    }

    /// Every other file of the data directory under `rel`, as it is now (see the module doc).
    fn copy_rest(&mut self, data: &Path, rel: &str, position: LogPosition) -> Result<(), BackupError> {
        let dir = data.join(rel);
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).map_err(io(&dir))?.filter_map(Result::ok).map(|e| e.path()).collect();
        // Files before directories: `alerts.log` before `alerts/`, so that an alert archived
        // meanwhile is in both copies (taken once at open), never in neither.
        entries.sort_by_key(|p| (p.is_dir(), p.clone()));
        for path in entries {
            let Some(file) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            let name = if rel.is_empty() { file.clone() } else { format!("{rel}/{file}") };
            if (rel.is_empty() && NOT_AS_IS.contains(&file.as_str())) || file.ends_with(".tmp") {
                continue;
            }
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Deleted since listed (a temporary file renamed).
                Err(_) => continue,
            };
            if meta.is_dir() {
                self.copy_rest(data, &name, position)?;
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let mut bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(BackupError::Io { path, source }),
            };
            if file.ends_with(".log") || file.ends_with(".jsonl") {
                // A line being appended now is not part of it.
                let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                bytes.truncate(whole);
            }
            if name == "influxdb.cursor" {
                bytes = cursor_within(&bytes, position);
            }
            self.write(&name, &bytes)?;
            // Tokens stay readable by the server's user only.
            let dst = self.root.join(&name);
            std::fs::set_permissions(&dst, meta.permissions()).map_err(io(&dst))?;
        }
        Ok(())
    }
}

/// The InfluxDB cursor (`<segment> <offset>`), moved back to `position` if past it: the
/// restored store's new segments will be numbered after P's.
fn cursor_within(bytes: &[u8], position: LogPosition) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let parsed = text.trim().split_once(' ').and_then(|(s, o)| Some((s.parse::<u64>().ok()?, o.parse::<u64>().ok()?)));
    match parsed {
        Some(at) if at > (position.segment, position.offset) => {
            format!("{} {}\n", position.segment, position.offset).into_bytes()
        }
        _ => bytes.to_vec(),
    }
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The length and SHA-256 of a file's first `max` bytes.
fn hash_file(path: &Path, max: u64) -> Result<(u64, Sha256), BackupError> {
    let mut file = File::open(path).map_err(io(path))?.take(max);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            return Ok((len, hash));
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
}

/// What a verified backup holds.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its `backup.json`.
    pub manifest: BackupManifest,
    /// Readings in its partition files (the log since the last flush holds more).
    pub part_readings: u64,
    /// Partition files.
    pub part_files: usize,
}

/// Checks a backup without writing anything: every file `backup.json` lists is there with
/// its size and SHA-256, and every partition file reads block by block.
pub fn verify(from: &Path) -> Result<Verified, BackupError> {
    let path = from.join(MANIFEST);
    let damaged = |path: &Path, reason: String| BackupError::Damaged { path: path.to_path_buf(), reason };
    let text = std::fs::read(&path).map_err(|e| damaged(&path, format!("cannot be read: {e}")))?;
    let manifest: BackupManifest =
        serde_json::from_slice(&text).map_err(|e| damaged(&path, format!("not a backup manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(damaged(&path, format!("backup format {}, this build reads {FORMAT}", manifest.format)));
    }
    let (mut part_readings, mut part_files) = (0, 0);
    for f in &manifest.files {
        let rel = Path::new(&f.path);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(damaged(&path, format!("names a file outside the backup: {}", f.path)));
        }
        let file = from.join(rel);
        let meta = std::fs::metadata(&file).map_err(|_| damaged(&file, "missing".into()))?;
        if meta.len() != f.bytes {
            return Err(damaged(&file, format!("{} bytes, backup.json has {}", meta.len(), f.bytes)));
        }
        let (_, hash) = hash_file(&file, u64::MAX)?;
        if hex::encode(hash.finalize()) != f.sha256 {
            return Err(damaged(&file, "its SHA-256 differs from backup.json's".into()));
        }
        if f.path.starts_with("store/parts/") {
            let (_, readings) = store::check_part_file(&file).map_err(|e| match e {
                StoreError::Damaged { reason, .. } => damaged(&file, reason),
                other => BackupError::Store(other),
            })?;
            part_readings += readings;
            part_files += 1;
        }
    }
    Ok(Verified { manifest, part_readings, part_files })
}

/// What a restored data directory holds.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The backup's log position.
    pub store_position: Position,
    /// Readings in the store.
    pub readings: u64,
    /// Series.
    pub series: u64,
    /// Bangkok days with readings.
    pub days: u64,
    /// Alerts (every state).
    pub alerts: u64,
    /// Files restored.
    pub files: usize,
}

/// Verifies the backup in `from` and restores it into `data_dir` (new or empty), then opens
/// the restored store once (which checks it as a start does) and puts its log into
/// partition files. The server is then started on `data_dir`.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Restored, BackupError> {
    let verified = verify(from)?;
    let target = |reason: &str| BackupError::Target { path: data_dir.to_path_buf(), reason: reason.into() };
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(target("not empty: a backup is restored into a new or empty directory"));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io(data_dir))?
        }
        Err(source) => return Err(BackupError::Io { path: data_dir.to_path_buf(), source }),
    }
    for f in &verified.manifest.files {
        let (src, dst) = (from.join(&f.path), data_dir.join(&f.path));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&src, &dst).map_err(io(&src))?;
        File::open(&dst).and_then(|f| f.sync_all()).map_err(io(&dst))?;
    }
    // The directories a start expects, even when empty in the backup.
    for dir in ["store/parts", "judgements"] {
        let d = data_dir.join(dir);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let store_dir = data_dir.join("store");
    let options = eitwatch_config::server_config::StoreSection::default();
    let (readings, series) = {
        let store = Store::open_with(&store_dir, &options, None)?;
        store.flush()?;
        store.close()?;
        (store.len() as u64, store.series_count() as u64)
    };
    let parts = store_dir.join("parts");
    let mut days: Vec<String> = std::fs::read_dir(&parts)
        .map_err(io(&parts))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.split_once('_').map(|(d, _)| d.to_string()))
        .collect();
    days.sort();
    days.dedup();
    let alerts_path = data_dir.join("alerts.log");
    let alerts = crate::alerts::AlertBook::open(&alerts_path, Default::default()).map_err(io(&alerts_path))?;
    let restored = Restored {
        store_position: verified.manifest.store_position,
        readings,
        series,
        days: days.len() as u64,
        alerts: alerts.len(),
        files: verified.manifest.files.len(),
    };
    tracing::info!(
        from = %from.display(),
        data_dir = %data_dir.display(),
        readings,
        series,
        days = restored.days,
        alerts = restored.alerts,
        "Backup restored"
    );
    Ok(restored)
}
