//! An append-only file whose every append is synced before it returns: the audit log and
//! the unmapped-readings log, which record what a response has already promised.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file, opened at the first append.
#[derive(Debug)]
pub(super) struct SyncedFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl SyncedFile {
    pub(super) fn new(path: PathBuf) -> SyncedFile {
        SyncedFile { path, file: Mutex::new(None) }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` in one write and syncs it.
    pub(super) fn append(&self, text: &str) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let file = guard.as_mut().ok_or_else(|| std::io::Error::other("unreachable: file just opened"))?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}
