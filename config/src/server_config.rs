//! The schema of `server.toml`: where the server listens and keeps its data, who may read
//! without a token, and the site registry (areas, factories, points). A ready example is
//! `config/examples/server.toml`.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::problems::{Problems, Validate};
use crate::site::{Area, validate_areas};

/// The whole `server.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `[server]`.
    pub server: ServerSection,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiSection,
    /// The site registry.
    #[serde(default)]
    pub area: Vec<Area>,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `address:port` to listen on (port 0: any free port, written to `<data_dir>/listen-address`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of the embedded store, tokens and alerts.
    pub data_dir: String,
    /// A reading stamped further than this in the future is refused.
    #[serde(default = "default_max_future_s")]
    pub max_future_s: u64,
    /// Largest request body accepted, after decompression.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8086".to_string()
}
const fn default_max_future_s() -> u64 {
    300
}
const fn default_max_body_bytes() -> usize {
    32 * 1024 * 1024
}

/// Who may use the read API without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymousRead {
    /// Nobody: every read needs a token.
    #[default]
    Never,
    /// Clients on the loopback interface (the demo).
    Loopback,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Who may read without a token.
    #[serde(default)]
    pub anonymous_read: AnonymousRead,
}

impl Validate for ServerConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push("server.listen", format!("\"{}\" is not address:port", self.server.listen));
        }
        if self.server.data_dir.is_empty() {
            problems.push("server.data_dir", "must not be empty");
        }
        validate_areas(&self.area, "area", Catalog::builtin(), problems);
    }
}
