//! Write-through to InfluxDB 2: every reading the store accepts is posted to
//! `[influxdb] url` (`/api/v2/write`, line protocol, `Authorization: Token …`).
//!
//! The queue is the store's own log: a cursor (`<data_dir>/influxdb.cursor`, segment and
//! byte offset) follows the segments up to what is durable, and moves on (and is saved)
//! only after InfluxDB answered 2xx. So InfluxDB being down loses nothing (the log keeps
//! it), delays nothing else (ingest and compliance never wait on this task), and catches up
//! when it returns. A crash between InfluxDB's answer and the cursor's save re-sends that
//! one batch; InfluxDB keeps one point per series and timestamp, so the re-send changes
//! nothing there.
//!
//! The v2 write call is made with the workspace's reqwest 0.13: the influxdb2 crate (0.5.2)
//! would bring reqwest 0.11 and hyper 0.14, a second HTTP stack beside axum's hyper 1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use eitwatch_config::line_protocol;
use eitwatch_config::server_config::InfluxdbSection;

use crate::AppState;
use crate::store::log::{self, LogPosition};
use crate::store::replay::Reader;

/// Starts the write-through task.
pub fn spawn(app: AppState, config: InfluxdbSection, cursor_path: PathBuf) {
    tokio::spawn(async move {
        if let Err(error) = run(app, config, cursor_path).await {
            tracing::error!(%error, "InfluxDB write-through stopped");
        }
    });
}

/// A batch ready to post: line protocol, how many readings, and where the cursor goes after.
#[derive(Debug)]
struct Batch {
    body: String,
    readings: usize,
    next: LogPosition,
}

/// The next batch after `at`, reading no further than `durable`; `None` when caught up.
fn next_batch(
    reader: &mut Reader,
    at: LogPosition,
    durable: LogPosition,
    max_points: usize,
) -> std::io::Result<Option<Batch>> {
    Ok(reader.next_batch(at, durable, max_points)?.map(|b| Batch {
        body: line_protocol::encode(&b.readings),
        readings: b.readings.len(),
        next: b.next,
    }))
}

/// The HTTP client of `[influxdb]`: its `ca_file` and client certificate when set.
pub(crate) fn client(config: &InfluxdbSection) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    let tls = eitwatch_config::tls::client_config(&config.tls()).map_err(|e| format!("influxdb.{}: {e}", e.key))?;
    if let Some(tls) = tls {
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

async fn run(app: AppState, config: InfluxdbSection, cursor_path: PathBuf) -> Result<(), String> {
    let dir = app.store.dir().to_path_buf();
    let mut durable = app.store.durable();
    let mut url = reqwest::Url::parse(&config.url)
        .and_then(|u| u.join("api/v2/write"))
        .map_err(|e| format!("influxdb.url \"{}\": {e}", config.url))?;
    url.query_pairs_mut()
        .append_pair("org", &config.org)
        .append_pair("bucket", &config.bucket)
        .append_pair("precision", "ns");
    let client = client(&config)?;
    let mut cursor = load_cursor(&cursor_path, &dir);
    app.store.hold("influxdb", cursor);
    let mut reader = Reader::new(&dir);
    tracing::info!(url = %config.url, bucket = %config.bucket, segment = cursor.segment, offset = cursor.offset, "InfluxDB write-through started");
    let mut down_since: Option<std::time::Instant> = None;
    let lag = &app.metrics.write_through;
    lag.started();
    let max_points = config.batch_max_points;
    loop {
        let until = *durable.borrow_and_update();
        let (batch, back) = {
            let mut r = reader;
            tokio::task::spawn_blocking(move || {
                let batch = next_batch(&mut r, cursor, until, max_points);
                (batch, r)
            })
            .await
            .map_err(|e| e.to_string())?
        };
        reader = back;
        let batch = match batch {
            Ok(Some(b)) => {
                lag.behind();
                b
            }
            Ok(None) => {
                let logged = app.metrics.logged_readings.load(std::sync::atomic::Ordering::Relaxed);
                lag.caught_up(logged, jiff::Timestamp::now().as_nanosecond() as i64);
                if durable.changed().await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Err(error) => {
                // Damage in a segment (which the store would refuse at its next start) or an
                // I/O error: say so, and try again rather than give up on the queue.
                tracing::error!(%error, segment = cursor.segment, offset = cursor.offset, "Cannot read the store log for InfluxDB; retrying");
                tokio::time::sleep(Duration::from_millis(config.retry_max_ms.max(1000))).await;
                continue;
            }
        };
        let mut delay = Duration::from_millis(100);
        // Only group records (no readings) in this stretch of the log: nothing to post.
        let mut posted = batch.readings == 0;
        while !posted {
            let sent = client
                .post(url.clone())
                .header("Authorization", format!("Token {}", config.token))
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(batch.body.clone())
                .send()
                .await;
            let problem = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => {
                    let status = r.status();
                    Some(format!("{status}: {}", r.text().await.unwrap_or_default()))
                }
                Err(e) => Some(eitwatch_config::tls::with_causes(&e)),
            };
            match problem {
                None => posted = true,
                Some(problem) => {
                    if down_since.is_none() {
                        tracing::warn!(url = %config.url, %problem, "InfluxDB write failed; readings stay queued in the store log, retrying");
                        down_since = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(config.retry_max_ms.max(100)));
                }
            }
        }
        lag.written(batch.readings);
        if let Some(since) = down_since.take() {
            tracing::info!(url = %config.url, down_s = since.elapsed().as_secs(), "InfluxDB reachable again; catching up");
        }
        tracing::debug!(
            readings = batch.readings,
            segment = batch.next.segment,
            offset = batch.next.offset,
            "Wrote through to InfluxDB"
        );
        cursor = batch.next;
        let path = cursor_path.clone();
        let saved = tokio::task::spawn_blocking(move || save_cursor(&path, cursor)).await.map_err(|e| e.to_string())?;
        if saved.is_ok() {
            app.store.hold("influxdb", cursor);
        }
        if let Err(error) = saved {
            // Sending goes on; after a restart the batches since the last saved cursor are
            // sent again, which InfluxDB absorbs (one point per series and time).
            tracing::error!(path = %cursor_path.display(), %error, "Cannot save the InfluxDB cursor");
        }
    }
}

/// The saved cursor, or the start of the oldest segment (a newly configured InfluxDB gets
/// the whole history).
fn load_cursor(path: &Path, dir: &Path) -> LogPosition {
    let saved = std::fs::read_to_string(path).ok().and_then(|text| {
        let (segment, offset) = text.trim().split_once(' ')?;
        Some(LogPosition { segment: segment.parse().ok()?, offset: offset.parse().ok()? })
    });
    saved.unwrap_or_else(|| {
        let first = log::list_segments(dir).ok().and_then(|s| s.first().copied()).unwrap_or(1);
        LogPosition { segment: first, offset: 0 }
    })
}

fn save_cursor(path: &Path, at: LogPosition) -> Result<(), crate::files::ReplaceError> {
    let text = format!("{} {}\n", at.segment, at.offset);
    crate::files::replace(path, &path.with_extension("tmp"), text.as_bytes(), 0o666).map(drop)
}
