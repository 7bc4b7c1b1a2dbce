//! Tokens: created, listed and revoked by the admin command, stored as SHA-256 hashes in
//! `<data_dir>/tokens.json`, never logged. Three kinds:
//! - **write**: one factory's; pins every line it writes to that factory (and reads it);
//!   created with `--partial-writes`, its batches are written in part (see [`crate::ingest`]);
//! - **read**: the read API, for every factory or one;
//! - **admin**: the read API for everything.
//!
//! Each token has a short public id (`token list`, the audit log, `token revoke <id>`); the
//! secret is printed once at creation. A running server notices a changed token file at the
//! next request (new tokens and revocations alike), without a restart.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Grant {
    /// Write (and read) one factory's readings.
    #[serde(alias = "factory")]
    Write {
        /// The factory id.
        factory: String,
    },
    /// Read every factory's data, or one factory's.
    Read {
        /// The one factory, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factory: Option<String>,
    },
    /// Read everything; administer.
    Admin,
}

impl Grant {
    /// `write`, `read` or `admin`.
    pub fn kind(&self) -> &'static str {
        match self {
            Grant::Write { .. } => "write",
            Grant::Read { .. } => "read",
            Grant::Admin => "admin",
        }
    }

    /// The factory a token is limited to, if any.
    pub fn factory(&self) -> Option<&str> {
        match self {
            Grant::Write { factory } => Some(factory),
            Grant::Read { factory } => factory.as_deref(),
            Grant::Admin => None,
        }
    }
}

/// A presented token that is known and not revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    /// The token's public id.
    pub id: String,
    /// What it may do.
    pub grant: Grant,
    /// Its batches are written in part: the valid lines stored, the others refused.
    pub partial_writes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    /// Public id; files written before ids existed get the hash's first 12 hex digits.
    #[serde(default)]
    id: String,
    sha256: String,
    #[serde(flatten)]
    grant: Grant,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    partial_writes: bool,
}

/// A token as `token list` shows it: never the secret, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// What it may do.
    #[serde(flatten)]
    pub grant: Grant,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it was revoked, if it was.
    pub revoked: Option<String>,
    /// A write token whose batches are written in part.
    pub partial_writes: bool,
}

/// Why a token file could not be read or written, or a command not done.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The token file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not a token list.
    #[error("{path}: not a token list: {source}")]
    Format {
        /// The token file.
        path: PathBuf,
        /// The failure.
        source: serde_json::Error,
    },
    /// No randomness from the OS.
    #[error("no randomness for a token: {0}")]
    Random(String),
    /// `token revoke` with an id the file does not hold.
    #[error("{path}: no token with id \"{id}\" (see `token list`)")]
    UnknownId {
        /// The token file.
        path: PathBuf,
        /// The id given.
        id: String,
    },
}

/// What identifies one version of the token file: a rename gives a new inode, an edit a new
/// length or mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

#[derive(Debug)]
struct Cache {
    stamp: Option<Stamp>,
    list: Vec<StoredToken>,
}

/// The server's tokens.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    cache: RwLock<Cache>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

fn read(path: &Path) -> Result<Vec<StoredToken>, TokenError> {
    let mut list: Vec<StoredToken> = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| TokenError::Format { path: path.to_path_buf(), source })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(TokenError::Io { path: path.to_path_buf(), source }),
    };
    for t in list.iter_mut().filter(|t| t.id.is_empty()) {
        t.id = t.sha256.chars().take(12).collect();
    }
    Ok(list)
}

/// Writes the list whole ([`crate::files::replace`]): a crash leaves the old or the new.
fn write(path: &Path, list: &[StoredToken]) -> Result<(), TokenError> {
    let text = serde_json::to_vec_pretty(list).map_err(|source| TokenError::Format { path: path.into(), source })?;
    // Hashes only, but nobody else's business: owner read/write.
    crate::files::replace(path, &path.with_extension("json.tmp"), &text, 0o600)
        .map(drop)
        .map_err(|e| TokenError::Io { path: e.path, source: e.source })
}

fn random_hex(n: usize) -> Result<String, TokenError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

impl Tokens {
    /// The tokens of a data directory.
    pub fn new(data_dir: &Path) -> Tokens {
        let path = token_file(data_dir);
        let tokens = Tokens { path, cache: RwLock::new(Cache { stamp: None, list: Vec::new() }) };
        tokens.refresh();
        tokens
    }

    /// Re-reads the file if it changed since last read. A file that cannot be read refuses
    /// every token until fixed: better than trusting a revoked one.
    fn refresh(&self) {
        let now = stamp(&self.path);
        if self.cache.read().is_ok_and(|c| c.stamp == now && now.is_some()) {
            return;
        }
        let list = read(&self.path).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Cannot read tokens; every token is refused until fixed");
            Vec::new()
        });
        if let Ok(mut cache) = self.cache.write() {
            *cache = Cache { stamp: now, list };
        }
    }

    /// What a presented token grants, if it is known and not revoked.
    pub fn check(&self, token: &str) -> Option<Bearer> {
        self.refresh();
        let h = hash(token);
        let cache = self.cache.read().ok()?;
        let t = cache.list.iter().find(|t| t.sha256 == h && t.revoked.is_none())?;
        Some(Bearer { id: t.id.clone(), grant: t.grant.clone(), partial_writes: t.partial_writes })
    }

    /// Creates a token, stores its hash, and returns its id and the token (shown once).
    pub fn create(data_dir: &Path, grant: Grant) -> Result<(String, String), TokenError> {
        Tokens::create_with(data_dir, grant, false)
    }

    /// [`Tokens::create`], with partial writes for a write token (ignored for the others).
    pub fn create_with(data_dir: &Path, grant: Grant, partial_writes: bool) -> Result<(String, String), TokenError> {
        let partial_writes = partial_writes && matches!(grant, Grant::Write { .. });
        std::fs::create_dir_all(data_dir).map_err(|source| TokenError::Io { path: data_dir.to_path_buf(), source })?;
        let path = token_file(data_dir);
        let mut list = read(&path)?;
        let prefix = match grant {
            Grant::Write { .. } => "ewf",
            Grant::Read { .. } => "ewr",
            Grant::Admin => "ewa",
        };
        let token = format!("{prefix}_{}", random_hex(24)?);
        let id = random_hex(6)?;
        list.push(StoredToken {
            id: id.clone(),
            sha256: hash(&token),
            grant,
            created: jiff::Timestamp::now().to_string(),
            revoked: None,
            partial_writes,
        });
        write(&path, &list)?;
        Ok((id, token))
    }

    /// Every token of a data directory, revoked ones included.
    pub fn list(data_dir: &Path) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(read(&token_file(data_dir))?
            .into_iter()
            .map(|t| TokenInfo {
                id: t.id,
                grant: t.grant,
                created: t.created,
                revoked: t.revoked,
                partial_writes: t.partial_writes,
            })
            .collect())
    }

    /// Revokes a token by id; the entry stays, marked, so the audit log's ids keep a meaning.
    /// Returns false if it was already revoked.
    pub fn revoke(data_dir: &Path, id: &str) -> Result<bool, TokenError> {
        let path = token_file(data_dir);
        let mut list = read(&path)?;
        let t = list
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| TokenError::UnknownId { path: path.clone(), id: id.to_string() })?;
        if t.revoked.is_some() {
            return Ok(false);
        }
        t.revoked = Some(jiff::Timestamp::now().to_string());
        write(&path, &list)?;
        Ok(true)
    }
}

/// The token of a request from its `Authorization` header and `p` query parameter, as
/// InfluxDB clients send it: `Authorization: Token …` or
/// `Bearer …` (v2 and v1), `Authorization: Basic` with the token as password, or the `p`
/// query parameter (v1 data loggers: `u=<anything>&p=<token>`).
pub fn presented<'a>(authorization: Option<&'a str>, p_param: Option<&'a str>) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(value) = authorization {
        let (scheme, rest) = value.trim().split_once(' ')?;
        return match scheme {
            "Token" | "Bearer" => Some(rest.trim().into()),
            "Basic" => {
                let decoded = base64_decode(rest.trim())?;
                let text = String::from_utf8(decoded).ok()?;
                let (_, password) = text.split_once(':')?;
                Some(password.to_string().into())
            }
            _ => None,
        };
    }
    p_param.filter(|p| !p.is_empty()).map(Into::into)
}

/// Standard base64 (RFC 4648, padding optional); small enough not to need a crate.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc_4648_vectors() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()), "{encoded}");
        }
        assert_eq!(base64_decode("dTpld2ZfeA==").as_deref(), Some(&b"u:ewf_x"[..]));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Z!=="), None);
    }

    #[test]
    fn tokens_are_created_listed_checked_and_revoked_without_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Tokens::new(dir.path());
        let (wid, write) = Tokens::create(dir.path(), Grant::Write { factory: "f1".into() }).expect("create");
        let (_, read) = Tokens::create(dir.path(), Grant::Read { factory: None }).expect("create");
        let (pid, partial) =
            Tokens::create_with(dir.path(), Grant::Write { factory: "f1".into() }, true).expect("create");
        assert_eq!(
            tokens.check(&write),
            Some(Bearer { id: wid.clone(), grant: Grant::Write { factory: "f1".into() }, partial_writes: false })
        );
        assert_eq!(
            tokens.check(&partial),
            Some(Bearer { id: pid, grant: Grant::Write { factory: "f1".into() }, partial_writes: true })
        );
        assert_eq!(tokens.check(&read).map(|b| b.grant), Some(Grant::Read { factory: None }));
        assert_eq!(tokens.check("ewf_nope"), None);
        let text = std::fs::read_to_string(dir.path().join("tokens.json")).expect("file");
        assert!(!text.contains(&write) && text.contains(&hash(&write)), "only the hash is stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("tokens.json")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        assert!(Tokens::revoke(dir.path(), &wid).expect("revoke"));
        assert_eq!(tokens.check(&write), None, "a revoked token is refused by the running instance");
        assert!(!Tokens::revoke(dir.path(), &wid).expect("again"));
        assert!(matches!(Tokens::revoke(dir.path(), "nope"), Err(TokenError::UnknownId { .. })));
        let list = Tokens::list(dir.path()).expect("list");
        assert_eq!(list.len(), 3);
        assert!(list[0].revoked.is_some() && list[1].revoked.is_none());
        assert_eq!(list.iter().map(|t| t.partial_writes).collect::<Vec<_>>(), [false, false, true]);
    }

    #[test]
    fn a_token_file_of_the_first_version_still_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = format!(
            r#"[{{"sha256": "{}", "role": "factory", "factory": "f1", "created": "2026-11-01T00:00:00Z"}}]"#,
            hash("ewf_old")
        );
        std::fs::write(dir.path().join("tokens.json"), old).expect("write");
        let b = Tokens::new(dir.path()).check("ewf_old").expect("known");
        assert_eq!(b.grant, Grant::Write { factory: "f1".into() });
        assert_eq!(b.id, hash("ewf_old")[..12]);
    }
}
