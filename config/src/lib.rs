//! The vocabulary both sides of eitwatch share.
//!
//! In data-flow order:
//! - [`catalog`]: every parameter eitwatch knows (code, English and Thai names, canonical
//!   unit, accepted units and their conversions, plausible physical range);
//! - [`reading`]: the canonical reading an agent produces and the server stores;
//! - [`gap`]: the record of readings an agent had to drop, sent instead of them;
//! - [`line_protocol`]: the reading's InfluxDB line-protocol form, encoder and decoder;
//! - [`site`]: the site registry, area → factory → monitoring point → parameters;
//! - [`standards`]: the legal limits as data (TOML files shipped in this crate);
//! - [`agent_config`] and [`server_config`]: the schemas of `agent.toml` and `server.toml`,
//!   loaded through [`problems`], which reports every problem with its file and key path;
//! - [`notify_config`]: `[notify]`, who is told of alerts by e-mail and LINE;
//! - [`tls`]: the TLS files the configs name, checked at load, and the HTTP clients' TLS;
//! - [`indicators`]: the EIT indicator definitions (`indicators.toml`);
//! - [`prometheus`]: the Prometheus text both programs' `/metrics` write;
//! - [`logs`]: the log both programs write, as text or JSON lines.

pub mod agent_config;
pub mod catalog;
pub mod gap;
pub mod indicators;
pub mod line_protocol;
pub mod logs;
pub mod notify_config;
pub mod problems;
pub mod prometheus;
pub mod reading;
pub mod server_config;
pub mod site;
pub mod standards;
pub mod tls;

pub use catalog::{Catalog, Parameter};
pub use reading::{Kind, Quality, Reading};
