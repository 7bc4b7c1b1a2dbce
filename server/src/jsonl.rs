//! The server's append-only JSON-lines logs (alerts, revisions, gaps, corrections, analyser
//! deviations, registry changes): one record per line, a batch written in one `write` and
//! `fdatasync`ed before anyone is told it is stored.
//!
//! A crash mid-write leaves a last line without its newline: it was never acknowledged, so
//! reading skips it, and [`cut_torn_tail`] removes it before the next append (otherwise the
//! next record would be glued to the fragment and the log would no longer read back). A
//! complete line that does not parse is damage, reported with the file and line.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every complete record of the log at `path` (none if it does not exist), oldest first.
pub fn read<T: DeserializeOwned>(path: &Path) -> std::io::Result<Vec<T>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let Some(line) = line.strip_suffix(b"\n") else {
            tracing::warn!(file = %path.display(), bytes = line.len(), "Skipping a torn last line (a write never acknowledged)");
            break;
        };
        out.push(serde_json::from_slice(line).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: line {}: {e}", path.display(), i + 1))
        })?);
    }
    Ok(out)
}

/// Cuts a torn last line off `file` (opened for reading and writing); returns the bytes cut.
pub fn cut_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(nl) = part.iter().rposition(|&b| b == b'\n') {
            end = start + nl as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(len - end)
}

/// Opens (or creates) the log at `path` for appending, its torn last line cut.
pub fn open(path: &Path) -> std::io::Result<File> {
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let cut = cut_torn_tail(&mut file)?;
    if cut > 0 {
        tracing::warn!(file = %path.display(), cut_bytes = cut, "Torn last line cut (a write never acknowledged)");
    }
    Ok(file)
}

/// Appends `records`, one line each, in one write, and syncs them.
pub fn append<T: Serialize>(file: &mut File, records: &[T]) -> std::io::Result<()> {
    append_with(file, records, usize::MAX)
}

/// [`append`] for records that each stand alone (alert operations, revisions), written
/// every `CHUNK_BYTES`: thousands of them (an outage's alerts) need no buffer of their size.
/// A crash in between leaves whole lines (a torn last one is cut at open), synced or not.
pub fn append_each<T: Serialize>(file: &mut File, records: &[T]) -> std::io::Result<()> {
    append_with(file, records, CHUNK_BYTES)
}

const CHUNK_BYTES: usize = 256 * 1024;

/// `records` as JSON lines, one a record (a log written whole).
pub fn lines<T: Serialize>(records: &[T]) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for r in records {
        serde_json::to_writer(&mut bytes, r).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

fn append_with<T: Serialize>(file: &mut File, records: &[T], chunk_bytes: usize) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    for r in records {
        serde_json::to_writer(&mut bytes, r).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        if bytes.len() >= chunk_bytes {
            file.write_all(&bytes)?;
            bytes.clear();
        }
    }
    file.write_all(&bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_is_skipped_then_cut_before_the_next_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        std::fs::write(&path, "1\n2\n{\"tor").expect("write");
        assert_eq!(read::<u32>(&path).expect("read"), [1, 2]);
        let mut file = open(&path).expect("open");
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "1\n2\n");
        append(&mut file, &[3u32, 4]).expect("append");
        assert_eq!(read::<u32>(&path).expect("read"), [1, 2, 3, 4]);
        // A fragment longer than one chunk, and a file that is nothing but a fragment.
        std::fs::write(&path, format!("7\n{}", "x".repeat(10_000))).expect("write");
        assert_eq!(cut_torn_tail(&mut open(&path).expect("open")).expect("cut"), 0, "cut at open already");
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "7\n");
        std::fs::write(&path, "x".repeat(5000)).expect("write");
        drop(open(&path).expect("open"));
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0);
        // Damage in a complete line names the file and line.
        std::fs::write(&path, "1\nnope\n2\n").expect("write");
        let error = read::<u32>(&path).expect_err("damage");
        assert!(error.to_string().ends_with("x.log: line 2: expected ident at line 1 column 2"), "{error}");
    }
}
