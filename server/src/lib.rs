//! eitwatch's provincial server.
//!
//! In data-flow order:
//! - [`auth`]: tokens (write, read, admin), stored hashed; a write token pins its factory;
//! - [`ingest`]: `POST /api/v2/write` and `/write` as InfluxDB takes them, validated against
//!   the catalog and the site registry, accepted whole or refused whole;
//! - [`store`]: the embedded, append-only store in the data directory;
//! - [`influxdb`]: writes every stored reading through to InfluxDB 2, from the store's log;
//! - [`compliance`]: judges each reading against the limits that cover its point;
//! - [`alerts`]: exceedance alerts, kept in the data directory;
//! - [`gaps`]: what agents had to drop (gap records), kept in the data directory;
//! - [`api`]: the HTTP surface (health, write, read API).

pub mod alerts;
pub mod api;
pub mod auth;
pub mod compliance;
pub mod gaps;
pub mod influxdb;
pub mod ingest;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eitwatch_config::server_config::ServerConfig;
use eitwatch_config::site::Registry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or a file in it.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The store's log could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The listen address.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    /// The loaded `server.toml`.
    pub config: ServerConfig,
    /// Factories and points, from the config.
    pub registry: Registry,
    /// Tokens.
    pub tokens: auth::Tokens,
    /// Readings.
    pub store: store::Store,
    /// Alerts.
    pub alerts: alerts::AlertBook,
    /// Admission under load and the audit log of the write endpoints.
    pub ingest: ingest::Ingest,
    /// Gap records agents sent (readings their outbox had to drop).
    pub gaps: gaps::GapLog,
}

/// Shared state of the HTTP handlers.
pub type AppState = Arc<App>;

impl App {
    /// Opens the data directory (store, tokens, alerts) for this config.
    pub fn open(config: ServerConfig) -> Result<App, StartError> {
        let dir = PathBuf::from(&config.server.data_dir);
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Io { path: dir.clone(), source })?;
        if dir.join("readings.log").exists() {
            tracing::warn!(path = %dir.join("readings.log").display(), "A store log of the walking skeleton is not read: its readings are not in the store");
        }
        let store = store::Store::open(&dir.join("store"), &config.store)?;
        let alerts = alerts::AlertBook::open(&dir.join("alerts.json"))
            .map_err(|source| StartError::Io { path: dir.join("alerts.json"), source })?;
        let ingest = ingest::Ingest::new(&config, &dir);
        let gaps = gaps::GapLog::open(&dir.join("gaps.log"))
            .map_err(|source| StartError::Io { path: dir.join("gaps.log"), source })?;
        Ok(App {
            registry: Registry::new(config.area.clone()),
            tokens: auth::Tokens::new(&dir),
            store,
            alerts,
            ingest,
            gaps,
            config,
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        Path::new(&self.config.server.data_dir)
    }
}

/// A server bound to its address and serving until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), StartError> {
    let listen = config.server.listen.clone();
    let app = Arc::new(App::open(config)?);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| StartError::Listen { address: listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { address: listen, source })?;
    // Tests and scripts learn a port-0 address from this file, written once accepting.
    let addr_file = app.data_dir().join("listen-address");
    std::fs::write(&addr_file, addr.to_string()).map_err(|source| StartError::Io { path: addr_file, source })?;
    tracing::info!(%addr, readings = app.store.len(), "Server listening");
    spawn_retention(app.clone());
    if let Some(influx) = app.config.influxdb.clone() {
        influxdb::spawn(app.clone(), influx, app.data_dir().join("influxdb.cursor"));
    }
    let router = api::router(app).into_make_service_with_connect_info::<SocketAddr>();
    let handle = tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(shutdown).await });
    Ok((addr, handle))
}

/// Applies the store's retention hourly, off the async threads (it may delete files).
fn spawn_retention(app: AppState) {
    if app.config.store.retention_days.is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        every.tick().await;
        loop {
            every.tick().await;
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || app.store.apply_retention()).await;
        }
    });
}
