//! eitwatch's provincial server.
//!
//! In data-flow order:
//! - [`auth`]: tokens (write, read, admin), stored hashed; a write token pins its factory;
//! - [`ingest`]: `POST /api/v2/write` and `/write` as InfluxDB takes them, validated against
//!   the catalog and the site registry, accepted whole or refused whole;
//! - [`store`]: the embedded, append-only store in the data directory;
//! - [`influxdb`]: writes every stored reading through to InfluxDB 2, from the store's log;
//!   [`limit_series`] writes the applied limits beside them, for Grafana;
//! - [`compliance`]: judges every limit (periods, availability, O₂ correction, late-data
//!   revisions, episodes, faults, deadlines) and returns conditions and revisions;
//! - [`monitor`]: the compliance engine on its own thread, feeding the alert book and events;
//! - [`alerts`]: the alert book (pending → firing → acknowledged → resolved): a live log,
//!   resolved history archived;
//! - [`events`] and [`webhooks`]: alert changes live over SSE and to configured webhooks;
//! - [`notify`]: alerts to people by e-mail and LINE (escalation, daily digest, rate limit),
//!   through a durable outbox;
//! - [`gaps`]: what agents had to drop (gap records), kept in the data directory;
//! - [`corrections`]: new records that correct stored readings, judged instead of them;
//! - [`registry`]: the site registry changed through the API, logged, shared live;
//! - [`indicators`] and [`deviations`]: the EIT assessment's environmental indicators with
//!   their evidence, and the analysers' laboratory comparisons;
//! - [`export`]: readings out to analysts as Apache Parquet files;
//! - [`backup`]: consistent backups of the running server's data directory, and their restore;
//! - [`jsonl`]: the append-only JSON-lines logs the modules above keep;
//! - [`metrics`]: the counters and gauges of `GET /metrics` (Prometheus text);
//! - [`http`]: the HTTP surface (health, write, read API, the built-in board), its OpenAPI
//!   document generated from its routes.

pub mod alerts;
pub mod auth;
pub mod backup;
pub mod compliance;
pub mod corrections;
pub mod deviations;
pub mod events;
pub mod export;
mod files;
pub mod gaps;
pub mod http;
pub mod indicators;
pub mod influxdb;
pub mod ingest;
pub mod jsonl;
pub mod limit_series;
pub mod metrics;
pub mod monitor;
mod names;
pub mod notify;
mod num;
pub mod registry;
pub mod store;
#[cfg(test)]
mod testkit;
pub mod webhooks;

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
    /// Notifications could not be set up (`[notify]`, `<data_dir>/notify/`).
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
    /// `[server.tls]`: a certificate, key or client CA file.
    #[error("server.tls.{}: {error}", error.key)]
    Tls {
        /// The file and what is wrong with it.
        error: eitwatch_config::tls::TlsError,
    },
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
    /// Factories and points: the config's, with the registry log's changes; replaced whole
    /// when an admin changes it (read it with [`App::registry`]).
    registry: std::sync::RwLock<Arc<Registry>>,
    /// Tokens.
    pub tokens: auth::Tokens,
    /// Readings.
    pub store: Arc<store::Store>,
    /// Alerts (also held by the compliance thread).
    pub alerts: Arc<alerts::AlertBook>,
    /// The compliance engine on its thread, feeding the alert book and the events.
    pub compliance: monitor::Monitor,
    /// Live events (SSE, webhooks).
    pub events: events::Events,
    /// The clock judgements and alerts are stamped with.
    pub clock: Arc<dyn compliance::Clock>,
    /// Admission under load and the audit log of the write endpoints.
    pub ingest: ingest::Ingest,
    /// Gap records agents sent (readings their outbox had to drop).
    pub gaps: Arc<gaps::GapLog>,
    /// Corrections of stored readings.
    pub corrections: Arc<corrections::CorrectionLog>,
    /// Alerts to people (e-mail, LINE), their outbox and recipients.
    pub notify: Arc<notify::Notifier>,
    /// What `/metrics` reports, counted since the start.
    pub metrics: Arc<metrics::Metrics>,
}

/// Shared state of the HTTP handlers.
pub type AppState = Arc<App>;

impl App {
    /// Opens the data directory (store, tokens, alerts) for this config.
    pub fn open(config: ServerConfig) -> Result<App, StartError> {
        App::open_with_clock(config, Arc::new(compliance::SystemClock))
    }

    /// The same with another clock (tests).
    pub fn open_with_clock(config: ServerConfig, clock: Arc<dyn compliance::Clock>) -> Result<App, StartError> {
        let dir = PathBuf::from(&config.server.data_dir);
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Io { path: dir.clone(), source })?;
        if dir.join("readings.log").exists() {
            tracing::warn!(path = %dir.join("readings.log").display(), "A store log of the walking skeleton is not read: its readings are not in the store");
        }
        let store = Arc::new(store::Store::open(&dir.join("store"), &config.store)?);
        let io = |name: &str| {
            let path = dir.join(name);
            move |source| StartError::Io { path, source }
        };
        let alerts = Arc::new(
            alerts::AlertBook::open(&dir.join("alerts.log"), config.alerts.clone()).map_err(io("alerts.log"))?,
        );
        let ingest = ingest::Ingest::new(&config, &dir);
        let gaps = Arc::new(gaps::GapLog::open(&dir.join("gaps.log")).map_err(io("gaps.log"))?);
        let corrections =
            Arc::new(corrections::CorrectionLog::open(&dir.join("corrections.log")).map_err(io("corrections.log"))?);
        let registry = Registry::new(registry::current(&config.area, &dir).map_err(io("registry.log"))?);
        let events = events::Events::new();
        let notify = Arc::new(notify::Notifier::open(&dir, &config.notify)?);

        let metrics = Arc::new(metrics::Metrics::new(jiff::Timestamp::now().as_nanosecond() as i64));
        let started = std::time::Instant::now();
        let settings = compliance::Settings {
            no_data_after_intervals: config.compliance.no_data_after_intervals,
            recent_days: config.compliance.recent_days,
        };
        let day_files = Arc::new(compliance::DayFiles::open(&dir.join("judgements")).map_err(io("judgements"))?);
        let revisions = compliance::load_revisions(&dir.join("revisions.log")).map_err(io("revisions.log"))?;
        let make = || {
            let mut engine = compliance::Engine::new(registry.clone(), clock.clone(), settings);
            engine.load_revisions(revisions.clone());
            engine.archive_to(day_files.clone());
            engine
        };
        let checkpoint_path = dir.join("compliance.checkpoint");
        let sources = monitor::Sources {
            registry: &registry,
            store: &store,
            gaps: &gaps,
            corrections: &corrections,
            alerts: &alerts,
        };
        let (engine, how) =
            monitor::resume(make, &checkpoint_path, sources, clock.now_ns()).map_err(io("alerts.log"))?;
        drop(revisions);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match how {
            monitor::Started::Resumed { replayed } => {
                tracing::info!(readings = replayed, elapsed_ms, "Compliance resumed from its checkpoint")
            }
            monitor::Started::Rebuilt { replayed } => {
                tracing::info!(readings = replayed, elapsed_ms, "Compliance rebuilt from the store")
            }
        }
        // Called on the compliance thread, under the engine's lock, for a series it has not
        // seen by store id: takes the store's index lock briefly. The store never calls out
        // while holding that lock, so the two cannot deadlock.
        let keys = store.clone();
        let checkpointing = monitor::Checkpointing {
            path: checkpoint_path,
            every: std::time::Duration::from_secs(config.compliance.checkpoint_interval_s),
            store: store.clone(),
            gaps: gaps.clone(),
            corrections: corrections.clone(),
            day_files,
        };
        let compliance = monitor::Monitor::start(
            engine,
            move |id| {
                keys.series_key(id).map(|k| compliance::SeriesId {
                    factory: k.factory,
                    point: k.point,
                    parameter: k.parameter,
                })
            },
            alerts.clone(),
            events.clone(),
            dir.join("revisions.log"),
            std::time::Duration::from_millis(config.compliance.tick_ms),
            Some(checkpointing),
        )
        .map_err(io("revisions.log"))?;
        if let monitor::Started::Rebuilt { .. } = how {
            // The next start resumes from here instead of judging every reading again.
            match compliance.checkpoint() {
                Ok(_) => tracing::info!("Compliance checkpointed after its rebuild: later starts resume from it"),
                Err(error) => tracing::error!(%error, "Cannot checkpoint the compliance engine"),
            }
        }
        Ok(App {
            registry: std::sync::RwLock::new(Arc::new(registry)),
            tokens: auth::Tokens::new(&dir),
            store,
            alerts,
            compliance,
            events,
            clock,
            ingest,
            gaps,
            corrections,
            notify,
            metrics,
            config,
        })
    }

    /// The site registry as it is now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the registry (the registry API, after logging the change): ingest, gap
    /// records, the API and the compliance engine use the new one from now on.
    pub fn set_registry(&self, registry: Registry) {
        self.compliance.engine().update_registry(registry.clone());
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        Path::new(&self.config.server.data_dir)
    }
}

/// Gives the pages of freed heap back to the system. Opening (the engine's recent days
/// decoded and merged, the alert log read) frees much more than it keeps, and glibc's
/// malloc returns only the free top of its heap by itself: without this, what the start
/// freed stays resident for good.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A server bound to its address and serving until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), StartError> {
    let listen = config.server.listen.clone();
    let tls =
        config.server.tls.as_ref().map(http::tls_acceptor).transpose().map_err(|error| StartError::Tls { error })?;
    let app = Arc::new(App::open(config)?);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| StartError::Listen { address: listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { address: listen, source })?;
    // Tests and scripts learn a port-0 address from this file, written once accepting.
    let addr_file = app.data_dir().join("listen-address");
    std::fs::write(&addr_file, addr.to_string()).map_err(|source| StartError::Io { path: addr_file, source })?;
    tracing::info!(%addr, tls = tls.is_some(), readings = app.store.len(), "Server listening");
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "Listening without TLS on an address others can reach: tokens cross the network in clear text; add [server.tls]");
    }
    spawn_retention(app.clone());
    webhooks::spawn(&app.config.webhook, &app.events, app.metrics.webhooks.clone());
    let firing = app.alerts.open_alerts().into_iter().filter(|a| a.state == alerts::State::Firing).collect();
    app.notify.spawn(app.clone(), &app.events, firing);
    release_freed_heap();
    if let Some(influx) = app.config.influxdb.clone() {
        limit_series::spawn(app.clone(), influx.clone());
        // Held from the start until the sink registers its cursor: no segment it still
        // needs is retired before it has said where it is.
        app.store.hold("influxdb", store::LogPosition::default());
        influxdb::spawn(app.clone(), influx, app.data_dir().join("influxdb.cursor"));
    }
    // Every reader of the log has registered its hold: segments may go once in partitions.
    app.store.start_retiring();
    store::Store::spawn_maintenance(&app.store, STORE_MAINTAIN_EVERY)
        .map_err(|source| StartError::Io { path: app.store.dir().to_path_buf(), source })?;
    let router = http::router(app.clone());
    let handle = tokio::spawn(async move {
        let served = http::serve(listener, router, &app.config, tls, shutdown).await;
        // Ordered: no request is in flight any more; judge what was handed over, save alerts.
        let _ = tokio::task::spawn_blocking(move || {
            app.compliance.stop();
            // What memory holds goes to the day files, each day's files are merged into one,
            // and the log the readers no longer need goes: the next start replays nothing.
            if let Err(error) = app.store.flush() {
                tracing::warn!(%error, "Cannot flush the store's memtable at shutdown; the log keeps it");
            }
            app.store.maintain_at_stop();
            // Sealed, the last segment is checked at the next start like every other; retired
            // with it once every reader of the log is at its end.
            if let Err(error) = app.store.close() {
                tracing::warn!(%error, "Cannot seal the store's last segment");
            }
        })
        .await;
        served
    });
    Ok((addr, handle))
}

/// How often the store flushes a memtable holding a closed day, merges closed days' files
/// and retires log segments (a memtable past its bound wakes it at once).
const STORE_MAINTAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Applies the store's retention hourly, off the async threads (it may delete files), and
/// has the compliance engine forget the judgements of the readings dropped.
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
            let _ = tokio::task::spawn_blocking(move || {
                app.store.apply_retention();
                if let Some(days) = app.config.store.retention_days {
                    let cutoff_ns = app.clock.now_ns().saturating_sub(i64::from(days) * 86_400_000_000_000);
                    app.compliance.forget_before(cutoff_ns);
                }
            })
            .await;
        }
    });
}
