//! Tokens: created by an admin command, stored as SHA-256 hashes in `<data_dir>/tokens.json`,
//! never logged. A write token belongs to one factory and pins every line it writes to it.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Grant {
    /// Write (and read) one factory's readings.
    Factory {
        /// The factory id.
        factory: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    sha256: String,
    #[serde(flatten)]
    grant: Grant,
    created: String,
}

/// Why a token file could not be read or written.
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
}

/// The server's tokens.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    cache: RwLock<Vec<StoredToken>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn read(path: &Path) -> Result<Vec<StoredToken>, TokenError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| TokenError::Format { path: path.to_path_buf(), source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(TokenError::Io { path: path.to_path_buf(), source }),
    }
}

impl Tokens {
    /// The tokens of a data directory.
    pub fn new(data_dir: &Path) -> Tokens {
        let path = data_dir.join("tokens.json");
        let cache = read(&path).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Cannot read tokens; every token is refused until fixed");
            Vec::new()
        });
        Tokens { path, cache: RwLock::new(cache) }
    }

    /// What a presented token grants, if anything. An unknown token re-reads the file once,
    /// so tokens created by the admin command work without a restart.
    pub fn check(&self, token: &str) -> Option<Grant> {
        let h = hash(token);
        let find = |list: &[StoredToken]| list.iter().find(|t| t.sha256 == h).map(|t| t.grant.clone());
        if let Some(g) = self.cache.read().ok().and_then(|c| find(&c)) {
            return Some(g);
        }
        let fresh = read(&self.path).ok()?;
        let found = find(&fresh);
        if let Ok(mut cache) = self.cache.write() {
            *cache = fresh;
        }
        found
    }

    /// Creates a token for one factory, stores its hash, and returns it (shown once).
    pub fn create(data_dir: &Path, factory: &str) -> Result<String, TokenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| TokenError::Io { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join("tokens.json");
        let mut list = read(&path)?;
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = format!("ewf_{}", hex::encode(bytes));
        list.push(StoredToken {
            sha256: hash(&token),
            grant: Grant::Factory { factory: factory.to_string() },
            created: jiff::Timestamp::now().to_string(),
        });
        let tmp = path.with_extension("json.tmp");
        let text =
            serde_json::to_vec_pretty(&list).map_err(|source| TokenError::Format { path: path.clone(), source })?;
        std::fs::write(&tmp, text).map_err(|source| TokenError::Io { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| TokenError::Io { path: path.clone(), source })?;
        Ok(token)
    }
}
