//! The agent's `/metrics` (Prometheus text format 0.0.4): outbox size and, per sink, queue
//! depth, oldest undelivered age, delivered / retried / dead-lettered / dropped counts,
//! pending gap records and whether delivery is stopped; per MQTT source, the messages it
//! could not take, by reason. Served on `[agent] metrics_listen`;
//! the bound address is written to `<data_dir>/metrics-address` (useful with port 0).
//! `eitwatch-agent status` prints the same figures from the files.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

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

/// Appends one metric family: its help, its type and its rows (labels, value).
fn family(out: &mut String, name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// Renders the MQTT sources' dead-letter counts as Prometheus text.
pub fn render_mqtt(dead_letters: &DeadLetters) -> String {
    let mut out = String::new();
    let rows = dead_letters
        .counts()
        .into_iter()
        .map(|(source, reason, n)| (format!("{{source=\"{source}\",reason=\"{}\"}}", reason.as_str()), n as f64))
        .collect();
    family(
        &mut out,
        "eitwatch_mqtt_dead_letters_total",
        "MQTT messages acknowledged but not taken (too_large, malformed, unrouted), recorded in mqtt-dead-letters.jsonl.",
        "counter",
        rows,
    );
    out
}

/// Renders a status as Prometheus text; `now_ns` for ages.
pub fn render(status: &Status, now_ns: i64) -> String {
    let mut out = String::new();
    let mut gauge =
        |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| family(&mut out, name, help, kind, rows);
    gauge(
        "eitwatch_outbox_appended_total",
        "Readings appended to the outbox since it was created.",
        "counter",
        vec![(String::new(), status.appended as f64)],
    );
    gauge(
        "eitwatch_outbox_bytes",
        "Bytes of outbox segment files.",
        "gauge",
        vec![(String::new(), status.bytes as f64)],
    );
    gauge(
        "eitwatch_outbox_max_bytes",
        "Configured outbox bound.",
        "gauge",
        vec![(String::new(), status.max_bytes as f64)],
    );
    gauge("eitwatch_outbox_segments", "Outbox segment files.", "gauge", vec![(String::new(), status.segments as f64)]);
    gauge(
        "eitwatch_outbox_append_errors_total",
        "Outbox writes that failed since start.",
        "counter",
        vec![(String::new(), status.append_errors as f64)],
    );
    let per_sink = |f: &dyn Fn(&crate::outbox::SinkStatus) -> f64| -> Vec<(String, f64)> {
        status.sinks.iter().map(|s| (format!("{{sink=\"{}\"}}", s.name), f(s))).collect()
    };
    gauge("eitwatch_sink_queue_depth", "Readings waiting for this sink.", "gauge", per_sink(&|s| s.depth as f64));
    gauge(
        "eitwatch_sink_oldest_undelivered_age_seconds",
        "Age of the oldest reading waiting for this sink (0 when none waits).",
        "gauge",
        per_sink(&|s| s.oldest_undelivered_ns.map_or(0.0, |t| (now_ns - t).max(0) as f64 / 1e9)),
    );
    gauge(
        "eitwatch_sink_delivered_total",
        "Readings the sink accepted.",
        "counter",
        per_sink(&|s| s.ledger.delivered as f64),
    );
    gauge(
        "eitwatch_sink_retried_total",
        "Delivery attempts that failed and were retried.",
        "counter",
        per_sink(&|s| s.ledger.retried as f64),
    );
    gauge(
        "eitwatch_sink_dead_lettered_total",
        "Readings the sink refused for their content, kept in dead-letter files.",
        "counter",
        per_sink(&|s| s.ledger.dead_lettered as f64),
    );
    gauge(
        "eitwatch_sink_dropped_total",
        "Readings dropped undelivered because the outbox was full (reported by gap records).",
        "counter",
        per_sink(&|s| s.ledger.dropped as f64),
    );
    gauge(
        "eitwatch_sink_gaps_pending",
        "Gap records waiting for delivery.",
        "gauge",
        per_sink(&|s| s.ledger.gaps.len() as f64),
    );
    gauge(
        "eitwatch_sink_stopped",
        "1 while delivery is stopped because the sink refuses the token or bucket.",
        "gauge",
        per_sink(&|s| f64::from(u8::from(s.ledger.stopped.is_some()))),
    );
    out
}

async fn metrics(State(watched): State<Watched>) -> impl IntoResponse {
    let outbox = watched.outbox.clone();
    let status = tokio::task::spawn_blocking(move || outbox.status()).await;
    match status {
        Ok(s) => {
            let text = render(&s, crate::now_ns()) + &render_mqtt(&watched.mqtt_dead_letters);
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
