//! eitwatch's factory agent.
//!
//! In data-flow order:
//! - [`sources`]: Modbus devices polled and MQTT brokers subscribed to, each yielding raw
//!   values (point, parameter, value in the device's unit, time, quality);
//! - [`normalise`]: raw values → canonical [`Reading`]s (catalog unit, plausibility);
//! - [`outbox`]: readings waiting for delivery;
//! - [`uplink`]: batches to the server's InfluxDB v2 write API with the factory's token.
//!
//! [`simulate`] is a simulated factory (Modbus device, MQTT publisher) for the demo.
//!
//! [`Reading`]: eitwatch_config::Reading

pub mod broker;
pub mod normalise;
pub mod outbox;
pub mod simulate;
pub mod sources;
pub mod uplink;

use std::sync::Arc;

use eitwatch_config::agent_config::AgentConfig;
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken as Shutdown;

/// Runs every source and the uplink of `config` until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let outbox = Arc::new(outbox::Outbox::new());
    let mut tasks = JoinSet::new();
    for device in config.modbus.clone() {
        let ctx = sources::Context { config: config.clone(), outbox: outbox.clone(), shutdown: shutdown.clone() };
        tasks.spawn(sources::modbus::run(device, ctx));
    }
    for source in config.mqtt.clone() {
        let ctx = sources::Context { config: config.clone(), outbox: outbox.clone(), shutdown: shutdown.clone() };
        tasks.spawn(sources::mqtt::run(source, ctx));
    }
    let uplink = uplink::Uplink::new(&config.uplink)?;
    tasks.spawn(uplink.run(outbox, shutdown.clone()));
    tracing::info!(factory = %config.agent.factory, modbus = config.modbus.len(), mqtt = config.mqtt.len(), "Agent started");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "An agent task failed");
        }
    }
    Ok(())
}

/// Installs the process-wide TLS provider (rustls with ring); call once at start.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Current time in ns since the epoch.
pub(crate) fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
