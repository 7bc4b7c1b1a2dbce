//! The agent's `/metrics` (Prometheus text format 0.0.4): outbox size and, per sink, queue
//! depth, oldest undelivered age, delivered / retried / dead-lettered / dropped counts,
//! pending gap records and whether delivery is stopped; per MQTT source, the messages it
//! could not take, by reason. Served on `[agent] metrics_listen`;
//! the bound address is written to `<data_dir>/metrics-address` (useful with port 0).
//! `eitwatch-agent status` prints the same figures from the files.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use eitwatch_config::prometheus::{self, Exposition, Type};

use crate::Shutdown;
use crate::outbox::{Outbox, Status};
use crate::sources::mqtt::dead_letter::DeadLetters;

/// What `/metrics` reports on.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The outbox and its sinks.
    pub outbox: Arc<Outbox>,
    /// The MQTT sources' dead letters.
    pub mqtt_dead_letters: Arc<DeadLetters>,
}

/// Renders the MQTT sources' dead-letter counts as Prometheus text.
pub fn render_mqtt(dead_letters: &DeadLetters) -> String {
    let mut out = Exposition::new();
    let mut family = out.family(
        "eitwatch_mqtt_dead_letters_total",
        "MQTT messages acknowledged but not taken (too_large, malformed, unrouted), recorded in mqtt-dead-letters.jsonl.",
        Type::Counter,
    );
    for (source, reason, n) in dead_letters.counts() {
        family.sample(&[("source", &source), ("reason", reason.as_str())], n as f64);
    }
    out.finish()
}

/// Renders a status as Prometheus text; `now_ns` for ages.
pub fn render(status: &Status, now_ns: i64) -> String {
    let mut out = Exposition::new();
    out.single(
        "eitwatch_outbox_appended_total",
        "Readings appended to the outbox since it was created.",
        Type::Counter,
        status.appended as f64,
    );
    out.single("eitwatch_outbox_bytes", "Bytes of outbox segment files.", Type::Gauge, status.bytes as f64);
    out.single("eitwatch_outbox_max_bytes", "Configured outbox bound.", Type::Gauge, status.max_bytes as f64);
    out.single("eitwatch_outbox_segments", "Outbox segment files.", Type::Gauge, status.segments as f64);
    out.single(
        "eitwatch_outbox_append_errors_total",
        "Outbox writes that failed since start.",
        Type::Counter,
        status.append_errors as f64,
    );
    let mut per_sink = |name: &str, help: &str, kind: Type, f: &dyn Fn(&crate::outbox::SinkStatus) -> f64| {
        let mut family = out.family(name, help, kind);
        for s in &status.sinks {
            family.sample(&[("sink", &s.name)], f(s));
        }
    };
    per_sink("eitwatch_sink_queue_depth", "Readings waiting for this sink.", Type::Gauge, &|s| s.depth as f64);
    per_sink(
        "eitwatch_sink_oldest_undelivered_age_seconds",
        "Age of the oldest reading waiting for this sink (0 when none waits).",
        Type::Gauge,
        &|s| s.oldest_undelivered_ns.map_or(0.0, |t| (now_ns - t).max(0) as f64 / 1e9),
    );
    per_sink("eitwatch_sink_delivered_total", "Readings the sink accepted.", Type::Counter, &|s| {
        s.ledger.delivered as f64
    });
    per_sink("eitwatch_sink_retried_total", "Delivery attempts that failed and were retried.", Type::Counter, &|s| {
        s.ledger.retried as f64
    });
    per_sink(
        "eitwatch_sink_dead_lettered_total",
        "Readings the sink refused for their content, kept in dead-letter files.",
        Type::Counter,
        &|s| s.ledger.dead_lettered as f64,
    );
    per_sink(
        "eitwatch_sink_dropped_total",
        "Readings dropped undelivered because the outbox was full (reported by gap records).",
        Type::Counter,
        &|s| s.ledger.dropped as f64,
    );
    per_sink("eitwatch_sink_gaps_pending", "Gap records waiting for delivery.", Type::Gauge, &|s| {
        s.ledger.gaps.len() as f64
    });
    per_sink(
        "eitwatch_sink_stopped",
        "1 while delivery is stopped because the sink refuses the token or bucket.",
        Type::Gauge,
        &|s| f64::from(u8::from(s.ledger.stopped.is_some())),
    );
    out.finish()
}

/// The agent's version, as `eitwatch_build_info{version=…} 1`, and its start time.
fn build_info() -> String {
    let mut out = Exposition::new();
    out.family("eitwatch_build_info", "The running agent's version (always 1).", Type::Gauge)
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    out.single(
        "process_start_time_seconds",
        "When the agent started, seconds since the Unix epoch.",
        Type::Gauge,
        *STARTED_S,
    );
    out.finish()
}

/// When the process started (first asked at the start, by `serve`).
static STARTED_S: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| crate::now_ns() as f64 / 1e9);

async fn metrics(State(watched): State<Watched>) -> impl IntoResponse {
    let outbox = watched.outbox.clone();
    let status = tokio::task::spawn_blocking(move || outbox.status()).await;
    match status {
        Ok(s) => {
            let text = render(&s, crate::now_ns()) + &render_mqtt(&watched.mqtt_dead_letters) + &build_info();
            ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response()
        }
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Binds `listen` and returns the serving future (ends at shutdown).
pub async fn serve(
    listen: &str,
    data_dir: &Path,
    watched: Watched,
    shutdown: Shutdown,
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("agent.metrics_listen {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    std::sync::LazyLock::force(&STARTED_S);
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(data_dir.join("metrics-address"), addr.to_string())?;
    tracing::info!(%addr, "Metrics on /metrics");
    let app = Router::new().route("/metrics", get(metrics)).with_state(watched);
    Ok(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::error!(%error, "Metrics listener failed");
        }
    })
}
