//! Files replaced whole (the engine's checkpoint and judgement day files, the live alert log
//! and archive segments, the token list, the dead letters, the InfluxDB cursor, the
//! notification outbox): the new content is written beside the file, synced, renamed over
//! it, and the directory synced. A crash at any point leaves the old file or the new one,
//! whole; a temporary file left behind is replaced by the next write.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A replacement that failed: the file it concerns (the temporary one, the file replaced or
/// its directory) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub(crate) struct ReplaceError {
    /// The file or directory the failed step was on.
    pub(crate) path: PathBuf,
    /// The cause.
    #[source]
    pub(crate) source: std::io::Error,
    /// The new file when it is in place and only the directory's sync failed (a power cut
    /// may still bring back the old one): a handle kept on the old file must move to it.
    /// `None`: the file is as it was.
    pub(crate) replaced: Option<File>,
}

/// Replaces the file at `path` with `bytes`, written first to `tmp` (in the same directory)
/// with permissions `mode` (`0o600` for what is nobody else's business). Returns the new
/// file, open for reading and appending.
pub(crate) fn replace(path: &Path, tmp: &Path, bytes: &[u8], mode: u32) -> Result<File, ReplaceError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReplaceError { path, source, replaced: None }
    };
    let written = (|| {
        match std::fs::remove_file(tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(file)
    })();
    let file = written.map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        at(tmp)(e)
    })?;
    std::fs::rename(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        at(path)(e)
    })?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(file),
        Err(source) => Err(ReplaceError { path: dir.to_path_buf(), source, replaced: Some(file) }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_its_leftover_temporary_file_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (path, tmp) = (dir.path().join("state"), dir.path().join("state.tmp"));
        std::fs::write(&path, b"old").unwrap();
        std::fs::write(&tmp, b"a leftover of a crash, longer than the new content").unwrap();
        let mut file = replace(&path, &tmp, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!tmp.exists());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // The handle returned appends to the file now at `path`.
        file.write_all(b"+more").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new+more");
    }

    #[test]
    fn a_failed_replacement_names_the_file_and_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, b"old").unwrap();
        let tmp = dir.path().join("missing").join("state.tmp");
        let e = replace(&path, &tmp, b"new", 0o644).unwrap_err();
        assert_eq!(e.path, tmp);
        assert!(e.replaced.is_none());
        assert!(e.to_string().starts_with(&tmp.display().to_string()), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
