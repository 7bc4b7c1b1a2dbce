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

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eitwatch_config::line_protocol;
use eitwatch_config::reading::Reading;
use eitwatch_config::server_config::InfluxdbSection;

use crate::AppState;
use crate::store::log::{self, LogPosition};

/// Starts the write-through task.
pub fn spawn(app: AppState, config: InfluxdbSection, cursor_path: PathBuf) {
    tokio::spawn(async move {
        if let Err(error) = run(app, config, cursor_path).await {
            tracing::error!(%error, "InfluxDB write-through stopped");
        }
    });
}

/// Reads the segments after the cursor.
#[derive(Debug)]
struct Reader {
    dir: PathBuf,
    /// The segment read, its series definitions so far and how far they were read.
    segment: u64,
    defs: HashMap<u32, crate::store::SeriesKey>,
    defs_offset: u64,
}

/// A batch ready to post: line protocol, how many readings, and where the cursor goes after.
#[derive(Debug)]
struct Batch {
    body: String,
    readings: usize,
    next: LogPosition,
}

impl Reader {
    /// The next batch after `at`, reading no further than `durable`; `None` when caught up.
    fn next_batch(
        &mut self,
        at: LogPosition,
        durable: LogPosition,
        max_points: usize,
    ) -> std::io::Result<Option<Batch>> {
        let mut at = at;
        loop {
            if at >= durable {
                return Ok(None);
            }
            let path = log::segment_path(&self.dir, at.segment);
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Deleted (empty at a restart, or expired by retention): go to the next one.
                    let next = log::list_segments(&self.dir)?.into_iter().find(|n| *n > at.segment);
                    match next {
                        Some(n) if n <= durable.segment => {
                            if at.offset > 0 {
                                tracing::warn!(
                                    segment = at.segment,
                                    "A segment was deleted before it was all sent to InfluxDB"
                                );
                            }
                            at = LogPosition { segment: n, offset: 0 };
                            continue;
                        }
                        _ => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            };
            let end = if at.segment < durable.segment { file.metadata()?.len() } else { durable.offset };
            if at.offset >= end {
                if at.segment < durable.segment {
                    at = LogPosition { segment: at.segment + 1, offset: 0 };
                    continue;
                }
                return Ok(None);
            }
            if self.segment != at.segment || self.defs_offset > at.offset {
                self.segment = at.segment;
                self.defs.clear();
                self.defs_offset = 0;
            }
            // Definitions of series come before their first point in a segment: learn the
            // ones before the cursor without sending their points.
            if self.defs_offset < at.offset {
                let mut bytes = vec![0; (at.offset - self.defs_offset) as usize];
                file.read_exact_at(&mut bytes, self.defs_offset)?;
                let mut offset = 0;
                while let Some(payload) = log::record_at(&bytes, offset) {
                    let _ = log::decode_record(payload, &mut self.defs, |_| {});
                    offset += log::HEADER_BYTES + payload.len();
                }
                self.defs_offset = at.offset;
            }
            let want = ((max_points * log::POINT_BYTES + 4096) as u64).min(end - at.offset);
            let mut bytes = vec![0; want as usize];
            file.read_exact_at(&mut bytes, at.offset)?;
            let mut readings: Vec<Reading> = Vec::new();
            let mut offset = 0usize;
            while let Some(payload) = log::record_at(&bytes, offset) {
                if !readings.is_empty() && readings.len() + payload.len() / log::POINT_BYTES > max_points {
                    break;
                }
                log::decode_record(payload, &mut self.defs, |entry| {
                    if let log::Entry::Point { time_ns, stored, key: Some(key), .. } = entry {
                        readings.push(key.reading(time_ns, &stored));
                    }
                })
                .map_err(|reason| std::io::Error::other(format!("{}: {reason}", path.display())))?;
                offset += log::HEADER_BYTES + payload.len();
            }
            if offset == 0 {
                // One record larger than the read: read it whole.
                let mut header = [0u8; log::HEADER_BYTES];
                file.read_exact_at(&mut header, at.offset)?;
                let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
                let whole = (log::HEADER_BYTES as u64 + len).min(end - at.offset);
                bytes = vec![0; whole as usize];
                file.read_exact_at(&mut bytes, at.offset)?;
                let payload = log::record_at(&bytes, 0).ok_or_else(|| {
                    std::io::Error::other(format!("{}: damaged record at byte {}", path.display(), at.offset))
                })?;
                log::decode_record(payload, &mut self.defs, |entry| {
                    if let log::Entry::Point { time_ns, stored, key: Some(key), .. } = entry {
                        readings.push(key.reading(time_ns, &stored));
                    }
                })
                .map_err(|reason| std::io::Error::other(format!("{}: {reason}", path.display())))?;
                offset = bytes.len();
            }
            let next = LogPosition { segment: at.segment, offset: at.offset + offset as u64 };
            self.defs_offset = next.offset;
            return Ok(Some(Batch { body: line_protocol::encode(&readings), readings: readings.len(), next }));
        }
    }
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| format!("HTTP client: {e}"))?;
    let mut cursor = load_cursor(&cursor_path, &dir);
    app.store.hold("influxdb", cursor);
    let mut reader = Reader { dir: dir.clone(), segment: 0, defs: HashMap::new(), defs_offset: 0 };
    tracing::info!(url = %config.url, bucket = %config.bucket, segment = cursor.segment, offset = cursor.offset, "InfluxDB write-through started");
    let mut down_since: Option<std::time::Instant> = None;
    let max_points = config.batch_max_points;
    loop {
        let until = *durable.borrow_and_update();
        let (batch, back) = {
            let mut r = reader;
            tokio::task::spawn_blocking(move || {
                let batch = r.next_batch(cursor, until, max_points);
                (batch, r)
            })
            .await
            .map_err(|e| e.to_string())?
        };
        reader = back;
        let batch = match batch {
            Ok(Some(b)) => b,
            Ok(None) => {
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
                Err(e) => Some(e.to_string()),
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

fn save_cursor(path: &Path, at: LogPosition) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut file, format!("{} {}\n", at.segment, at.offset).as_bytes())?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)
}
