//! The dead letters of partial writes, `<data_dir>/dead-letters/lines.jsonl`: one JSON
//! object per refused line (token id, factory, when received, precision, line number, the
//! line, why), appended and synced before the write is answered. `dead-letters replay`
//! hands them to ingest again (after a catalog, mapping or registry fix): what is stored
//! leaves the file, what still fails stays with its new reason.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use eitwatch_config::line_protocol::Precision;
use serde::{Deserialize, Serialize};

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// When its batch was received (RFC 3339).
    pub received: String,
    /// The same, in ns since the epoch: the time of a line without a timestamp.
    pub received_ns: i64,
    /// The public id of the token that wrote it.
    pub token_id: String,
    /// The token's factory.
    pub factory: String,
    /// The batch's precision: `ns`, `us`, `ms`, `s`, `m` or `h`.
    pub precision: String,
    /// Its 1-based line number in its batch.
    pub line_number: usize,
    /// The line, whole.
    pub line: String,
    /// Why it was refused (at the last attempt).
    pub reason: String,
}

/// The spelling of a precision in a dead letter (read back by [`Precision::parse_v1`]).
pub(crate) fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Ns => "ns",
        Precision::Us => "us",
        Precision::Ms => "ms",
        Precision::S => "s",
        Precision::M => "m",
        Precision::H => "h",
    }
}

/// Why the dead letters could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file or its directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A record that is not a dead letter.
    #[error("{path}: line {line}: not a dead letter: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Its 1-based line.
        line: usize,
        /// The failure.
        source: serde_json::Error,
    },
}

/// The dead-letter file of a data directory.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    /// Opened at the first append; dropped when a replay replaces the file.
    file: Mutex<Option<File>>,
}

/// The file's path in a data directory.
fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("dead-letters").join("lines.jsonl")
}

/// Every dead letter of a data directory (none if there is no file).
pub fn list(data_dir: &Path) -> Result<Vec<DeadLetter>, DeadLetterError> {
    read(&path(data_dir))
}

fn read(path: &Path) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DeadLetterError::Io { path: path.to_path_buf(), source }),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| DeadLetterError::Format {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

fn encode(letters: &[DeadLetter]) -> String {
    letters.iter().map(|l| serde_json::json!(l).to_string() + "\n").collect()
}

impl DeadLetters {
    /// The dead letters of a data directory (the file is made at the first append).
    pub(super) fn new(data_dir: &Path) -> DeadLetters {
        DeadLetters { path: path(data_dir), file: Mutex::new(None) }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> DeadLetterError {
        let path = path.to_path_buf();
        move |source| DeadLetterError::Io { path, source }
    }

    fn lock(&self) -> MutexGuard<'_, Option<File>> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `letters` in one write and syncs them.
    pub(super) fn append(&self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        let mut guard = self.lock();
        let file = match guard.as_mut() {
            Some(file) => file,
            None => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(self.io(dir))?;
                }
                let file =
                    OpenOptions::new().create(true).append(true).open(&self.path).map_err(self.io(&self.path))?;
                guard.insert(file)
            }
        };
        file.write_all(encode(letters).as_bytes()).map_err(self.io(&self.path))?;
        file.sync_data().map_err(self.io(&self.path))
    }

    /// Reads every dead letter, hands them to `replay`, which returns those still refused,
    /// and writes those back whole (temporary file, sync, rename). Appends wait meanwhile,
    /// so none is lost. Returns how many left the file and how many stay.
    pub(super) fn replay(
        &self,
        replay: impl FnOnce(Vec<DeadLetter>) -> Vec<DeadLetter>,
    ) -> Result<(usize, usize), DeadLetterError> {
        let mut guard = self.lock();
        let letters = read(&self.path)?;
        if letters.is_empty() {
            return Ok((0, 0));
        }
        let before = letters.len();
        let remaining = replay(letters);
        let tmp = self.path.with_extension("jsonl.tmp");
        let replaced = crate::files::replace(&self.path, &tmp, encode(&remaining).as_bytes(), 0o666);
        // The handle may point at the replaced file: the next append opens the one in place.
        *guard = None;
        replaced.map_err(|e| self.io(&e.path)(e.source))?;
        Ok((before - remaining.len(), remaining.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(n: usize) -> DeadLetter {
        DeadLetter {
            received: "2026-11-22T08:26:40Z".into(),
            received_ns: 1_795_300_000_000_000_000,
            token_id: "t1".into(),
            factory: "f1".into(),
            precision: "s".into(),
            line_number: n,
            line: format!("effluent,factory=f1,point=outfall-1 cood={n}"),
            reason: "unknown effluent parameter \"cood\"".into(),
        }
    }

    #[test]
    fn a_replay_keeps_what_still_fails_and_later_appends_go_to_the_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let letters = DeadLetters::new(dir.path());
        assert_eq!(list(dir.path()).expect("none yet"), vec![]);
        letters.append(&[letter(1), letter(2)]).expect("append");
        letters.append(&[letter(3)]).expect("append");
        assert_eq!(list(dir.path()).expect("list"), vec![letter(1), letter(2), letter(3)]);

        let mut seen = Vec::new();
        let counts = letters
            .replay(|all| {
                seen = all.clone();
                all.into_iter().filter(|l| l.line_number == 2).collect()
            })
            .expect("replay");
        assert_eq!(counts, (2, 1));
        assert_eq!(seen.len(), 3);
        assert_eq!(list(dir.path()).expect("list"), vec![letter(2)]);

        // The append handle of the replaced file is not reused.
        letters.append(&[letter(4)]).expect("append");
        assert_eq!(list(dir.path()).expect("list"), vec![letter(2), letter(4)]);
        assert_eq!(letters.replay(|_| Vec::new()).expect("replay"), (2, 0));
        assert_eq!(letters.replay(|_| unreachable!("nothing to replay")).expect("replay"), (0, 0));
    }
}
