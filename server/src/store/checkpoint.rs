//! `<store>/acknowledged`: how far the open segment is known to have been acknowledged,
//! so that a start after a crash cuts a torn tail only past it. The manifest seals a segment
//! only once it is finished; this bounds the one still being written.
//!
//! 20 bytes, rewritten in place: `[segment: u64 LE][offset: u64 LE][crc32 of the 16: u32 LE]`.
//! A thread of its own writes it (and `fdatasync`s it) at most once an interval, when the
//! durable position moved: never on a writer's path, so a write still costs one sync. It
//! lags by up to the interval, so it is a lower bound: what lies before it was acknowledged;
//! what lies after it may or may not have been.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::LogPosition;

/// The file's name in the store directory.
const FILE: &str = "acknowledged";
const BYTES: usize = 20;

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The position last written, if the file is there and whole.
pub(crate) fn read(dir: &Path) -> Option<LogPosition> {
    let bytes = std::fs::read(path(dir)).ok()?;
    let bytes: &[u8; BYTES] = bytes.get(..BYTES)?.try_into().ok()?;
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if crc32fast::hash(&bytes[..16]) != crc {
        tracing::warn!(path = %path(dir).display(), "The acknowledged-position file does not check out; not used");
        return None;
    }
    let segment = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let offset = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    Some(LogPosition { segment, offset })
}

fn write(file: &File, at: LogPosition) -> std::io::Result<()> {
    let mut bytes = [0u8; BYTES];
    bytes[..8].copy_from_slice(&at.segment.to_le_bytes());
    bytes[8..16].copy_from_slice(&at.offset.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..16]);
    bytes[16..].copy_from_slice(&crc.to_le_bytes());
    file.write_all_at(&bytes, 0)?;
    file.sync_data()
}

/// Starts the thread that follows `durable` every `every`; it ends with the store.
pub(crate) fn spawn(dir: &Path, mut durable: watch::Receiver<LogPosition>, every: Duration) -> std::io::Result<()> {
    let path = path(dir);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    std::thread::Builder::new().name("store-acknowledged".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            match durable.has_changed() {
                Err(_) => return,
                Ok(false) => {}
                Ok(true) => {
                    let at = *durable.borrow_and_update();
                    if let Err(error) = write(&file, at) {
                        tracing::warn!(path = %path.display(), %error, "Cannot write the acknowledged position");
                    }
                }
            }
        }
    })?;
    Ok(())
}
