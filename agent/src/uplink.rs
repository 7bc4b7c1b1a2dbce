//! Delivers the outbox to each sink: the eitwatch server (`[uplink]`, sink `server`) and
//! any InfluxDB 2 bucket written directly (`[[influxdb]]`), each with its own cursor.
//!
//! Both speak the InfluxDB v2 write API (`POST /api/v2/write`, line protocol, `Authorization:
//! Token …`), so one HTTP client serves both: the workspace's reqwest 0.13 with rustls, its
//! TLS from the sink's `ca_file` and client certificate when set. The
//! influxdb2 crate is not used: it brings reqwest 0.11 and hyper 0.14, a second HTTP stack.
//!
//! Per sink, one task:
//! - **Batches** by size (`batch_max_readings`) and age (`batch_max_age_ms`), gzip bodies
//!   (`gzip`, default on; a server that refuses them, 415 or a 400 naming Content-Encoding,
//!   gets identity bodies from then on).
//! - **At least once**: a batch leaves the outbox only when the sink answered 2xx; a batch
//!   re-sent after a timeout is harmless (the server stores an identical point once; InfluxDB
//!   overwrites it with itself).
//! - **Errors**: link errors and 5xx are retried with exponential backoff and jitter; 429
//!   and 503 wait for `Retry-After` when given. A batch refused for its content (400, 409,
//!   422) or too large (413, as Telegraf does) is halved until the refused reading is alone,
//!   which then goes to `<data_dir>/dead-letter/<time>-<sink>-<id>.lp` with the sink's
//!   reason beside it (`.reason.txt`); the queue goes on. 401/403/404 (token refused, no such bucket) stop
//!   delivery loudly without dropping anything, retried every `auth_retry_ms`.
//! - **Backfill**: once the sink is more than a batch behind (after an outage), the queue is
//!   split: readings from then on are "live" and go first, each cycle; the backlog follows,
//!   oldest first, at most `backfill_readings_per_s`. Present exceedances reach the server
//!   within a batch age while hours of backlog drain.
//! - **Gap records** (what the full outbox dropped) go before readings: to the server as
//!   JSON on `POST /api/v1/gaps`; to InfluxDB as a `gap` line
//!   (`gap,factory=…,point=… parameters="cod bod",from_ns=…i,to_ns=…i,count=…i,reason="…" <from_ns>`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::line_protocol;
use eitwatch_config::tls::ClientTls;
use reqwest::StatusCode;

use crate::Shutdown;
use crate::backoff::Backoff;
use crate::outbox::{Gap, Outbox, OutboxError};

/// What kind of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// The eitwatch server.
    Server,
    /// InfluxDB 2 (or anything taking its write API).
    Influx,
}

/// One sink, from `[uplink]` or `[[influxdb]]`.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Name (cursor, logs, metrics).
    pub name: String,
    /// Kind.
    pub kind: SinkKind,
    /// Base URL.
    pub url: String,
    /// Token.
    pub token: String,
    /// Organisation.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// Largest batch.
    pub batch_max_readings: usize,
    /// Oldest a live reading waits before its batch leaves.
    pub batch_max_age: Duration,
    /// Per request.
    pub timeout: Duration,
    /// gzip bodies.
    pub gzip: bool,
    /// Backlog rate; 0 unlimited.
    pub backfill_readings_per_s: u64,
    /// Retry interval once the token is refused.
    pub auth_retry: Duration,
    /// Where refused batches go.
    pub dead_letter_dir: PathBuf,
    /// `ca_file`: the CA(s) trusted for the sink's certificate.
    pub ca_file: Option<String>,
    /// `client_cert_file`: the agent's certificate, for mTLS.
    pub client_cert_file: Option<String>,
    /// `client_key_file`: its key.
    pub client_key_file: Option<String>,
}

impl SinkConfig {
    /// Every sink of an agent config: `server` first.
    pub fn all(config: &AgentConfig) -> Vec<SinkConfig> {
        let dead_letter_dir = PathBuf::from(&config.agent.data_dir).join("dead-letter");
        let u = &config.uplink;
        let mut out = vec![SinkConfig {
            name: "server".into(),
            kind: SinkKind::Server,
            url: u.url.clone(),
            token: u.token.0.clone(),
            org: u.org.clone(),
            bucket: u.bucket.clone(),
            batch_max_readings: u.batch_max_readings,
            batch_max_age: Duration::from_millis(u.batch_max_age_ms),
            timeout: Duration::from_millis(u.timeout_ms),
            gzip: u.gzip,
            backfill_readings_per_s: u.backfill_readings_per_s,
            auth_retry: Duration::from_millis(u.auth_retry_ms),
            dead_letter_dir: dead_letter_dir.clone(),
            ca_file: u.ca_file.clone(),
            client_cert_file: u.client_cert_file.clone(),
            client_key_file: u.client_key_file.clone(),
        }];
        out.extend(config.influxdb.iter().map(|i| SinkConfig {
            name: i.name.clone(),
            kind: SinkKind::Influx,
            url: i.url.clone(),
            token: i.token.0.clone(),
            org: i.org.clone(),
            bucket: i.bucket.clone(),
            batch_max_readings: i.batch_max_readings,
            batch_max_age: Duration::from_millis(i.batch_max_age_ms),
            timeout: Duration::from_millis(i.timeout_ms),
            gzip: i.gzip,
            backfill_readings_per_s: i.backfill_readings_per_s,
            auth_retry: Duration::from_millis(i.auth_retry_ms),
            dead_letter_dir: dead_letter_dir.clone(),
            ca_file: i.ca_file.clone(),
            client_cert_file: i.client_cert_file.clone(),
            client_key_file: i.client_key_file.clone(),
        }));
        out
    }
}

/// Why an uplink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The HTTP client.
    #[error("sink {sink}: {reason}")]
    Client {
        /// Sink name.
        sink: String,
        /// Why.
        reason: String,
    },
}

/// One sink's delivery task.
#[derive(Debug)]
pub struct Uplink {
    sink: SinkConfig,
    client: reqwest::Client,
    write_url: reqwest::Url,
    gaps_url: reqwest::Url,
    gzip: bool,
}

/// How a sink answered.
#[derive(Debug)]
enum Outcome {
    Delivered,
    /// The content is refused (400, 409, 422): split, then dead-letter.
    Refused(String),
    /// 413: split.
    TooLarge(String),
    /// 401/403/404: stop until fixed.
    Stopped(String),
    /// Link error, 5xx, 429.
    Retry(String, Option<Duration>),
}

/// What a cycle step did.
enum Step {
    /// Something moved (or must be tried again at once).
    Progress,
    /// Wait this long (backoff, Retry-After, token refused).
    Wait(Duration),
}

/// Limits the backlog to `rate` readings per second, in bursts of up to one batch.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    cap: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, cap: usize) -> Bucket {
        Bucket { rate: rate as f64, tokens: cap as f64, cap: cap as f64, at: Instant::now() }
    }
    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.cap);
        self.at = now;
    }
    /// The smallest batch worth sending: a second's worth (or all that is wanted).
    fn min_chunk(&self, want: u64) -> f64 {
        (want as f64).min(self.rate.max(1.0)).min(self.cap)
    }
    /// How many may go now, given that `want` would; 0 means wait [`Bucket::wait`].
    fn allow(&mut self, want: u64) -> u64 {
        if self.rate <= 0.0 {
            return want;
        }
        self.refill();
        if self.tokens >= self.min_chunk(want) { (self.tokens.floor() as u64).min(want) } else { 0 }
    }
    fn wait(&self, want: u64) -> Duration {
        Duration::from_secs_f64(((self.min_chunk(want) - self.tokens) / self.rate).max(0.001))
    }
    fn spend(&mut self, n: u64) {
        if self.rate > 0.0 {
            self.tokens -= n as f64;
        }
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(v).ok()?;
    let ms = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// A gap as one InfluxDB line.
pub fn gap_line(gap: &Gap) -> String {
    let esc_tag = |s: &str| s.replace(',', "\\,").replace('=', "\\=").replace(' ', "\\ ");
    let esc_str = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "gap,factory={},point={} parameters=\"{}\",from_ns={}i,to_ns={}i,count={}i,reason=\"{}\" {}\n",
        esc_tag(&gap.factory),
        esc_tag(&gap.point),
        esc_str(&gap.parameters.join(" ")),
        gap.from_ns,
        gap.to_ns,
        gap.count,
        esc_str(&gap.reason),
        gap.from_ns
    )
}

impl Uplink {
    /// Builds the HTTP client of one sink.
    pub fn new(sink: SinkConfig) -> Result<Uplink, UplinkError> {
        crate::install_tls_provider();
        let fail = |reason: String| UplinkError::Client { sink: sink.name.clone(), reason };
        let mut builder = reqwest::Client::builder().timeout(sink.timeout);
        let tls = ClientTls {
            ca_file: sink.ca_file.as_deref(),
            client_cert_file: sink.client_cert_file.as_deref(),
            client_key_file: sink.client_key_file.as_deref(),
        };
        if let Some(tls) = eitwatch_config::tls::client_config(&tls).map_err(|e| fail(format!("{}: {e}", e.key)))? {
            builder = builder.tls_backend_preconfigured(tls);
        } else if !sink.url.trim_start().to_ascii_lowercase().starts_with("https:") {
            // A plain-HTTP sink never does TLS: without this the client loads and parses
            // every system root certificate at start (8 % of the agent's instructions in a
            // 10 s benchmark run, and their pages and heap stay with the process). A redirect
            // to https is then refused (no trusted root) rather than followed.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let client = builder.build().map_err(|e| fail(e.to_string()))?;
        let base = sink.url.trim_end_matches('/');
        let write_url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v2/write"),
            [("org", sink.org.as_str()), ("bucket", sink.bucket.as_str()), ("precision", "ns")],
        )
        .map_err(|e| fail(format!("url {}: {e}", sink.url)))?;
        let gaps_url =
            reqwest::Url::parse(&format!("{base}/api/v1/gaps")).map_err(|e| fail(format!("url {}: {e}", sink.url)))?;
        let gzip = sink.gzip;
        Ok(Uplink { sink, client, write_url, gaps_url, gzip })
    }

    /// `body` is shared, not copied, by the caller (kept for a dead letter) and here (kept
    /// for a resend without gzip): at 10 000 readings/s a batch is a third of a megabyte.
    async fn post(&mut self, url: reqwest::Url, body: Bytes, json: bool) -> Outcome {
        let request = self
            .client
            .post(url.clone())
            .header(reqwest::header::AUTHORIZATION, format!("Token {}", self.sink.token))
            .header(reqwest::header::CONTENT_TYPE, if json { "application/json" } else { "text/plain; charset=utf-8" });
        // Gap records are small JSON: never compressed, the gaps endpoint takes identity bodies.
        let compress = self.gzip && !json;
        let (plain, request) = if compress {
            let gzipped = gzip(&body);
            (Some(body), request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(gzipped))
        } else {
            (None, request.body(body))
        };
        let response = match request.send().await {
            Ok(r) => r,
            // reqwest's own text names only the URL; the cause (a refused certificate, a
            // refused connection) is further down the chain.
            Err(e) => return Outcome::Retry(eitwatch_config::tls::with_causes(&e), None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v.to_str().ok()?))
            .map(|d| d.min(Duration::from_secs(600)));
        let text = response.text().await.unwrap_or_default();
        let why = format!("{status}: {}", text.trim());
        if let Some(plain) = plain.filter(|_| {
            status == StatusCode::UNSUPPORTED_MEDIA_TYPE
                || (status == StatusCode::BAD_REQUEST && text.contains("Content-Encoding"))
        }) {
            tracing::warn!(sink = %self.sink.name, reason = %why, "The sink refuses gzip bodies; sending them uncompressed from now on");
            self.gzip = false;
            return Box::pin(self.post(url, plain, json)).await;
        }
        match status {
            s if s.is_success() => Outcome::Delivered,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Outcome::Stopped(why),
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge(why),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Outcome::Retry(why, retry_after),
            s if s.is_client_error() && s != StatusCode::REQUEST_TIMEOUT => Outcome::Refused(why),
            _ => Outcome::Retry(why, None),
        }
    }

    /// Writes a refused body and the reason beside it; fsynced before the batch leaves the outbox.
    fn dead_letter(&self, first_id: u64, ext: &str, body: &[u8], reason: &str) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        let dir = &self.sink.dead_letter_dir;
        std::fs::create_dir_all(dir)?;
        let time = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        let stem = format!("{time}-{}-{first_id}", self.sink.name);
        let path = dir.join(format!("{stem}.{ext}"));
        for (p, bytes) in [(path.clone(), body), (dir.join(format!("{stem}.reason.txt")), reason.as_bytes())] {
            let mut f = std::fs::File::create(&p)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::File::open(dir)?.sync_all()?;
        Ok(path)
    }

    fn outbox_failed(&self, error: OutboxError, backoff: &mut Backoff) -> Step {
        let delay = backoff.next();
        tracing::error!(sink = %self.sink.name, %error, retry_in_ms = delay.as_millis() as u64, "Outbox error in delivery");
        Step::Wait(delay)
    }

    /// Sends one batch of ids from `from` (below `to`, at most `max`), and settles it.
    async fn send_batch(
        &mut self,
        outbox: &Outbox,
        from: u64,
        to: u64,
        max: usize,
        limit: &mut usize,
        backoff: &mut Backoff,
    ) -> (Step, u64) {
        let batch = match outbox.read(from, to, max) {
            Ok(b) => b,
            Err(e) => return (self.outbox_failed(e, backoff), 0),
        };
        // Nothing readable (the ids were just dropped, or damage): look again shortly.
        let Some(last) = batch.last().map(|(id, _)| *id) else { return (Step::Wait(Duration::from_millis(100)), 0) };
        let n = batch.len() as u64;
        let readings: Vec<_> = batch.into_iter().map(|(_, r)| r).collect();
        let body = Bytes::from(line_protocol::encode(&readings).into_bytes());
        drop(readings);
        let settled = match self.post(self.write_url.clone(), body.clone(), false).await {
            Outcome::Delivered => {
                backoff.reset();
                *limit = self.sink.batch_max_readings;
                if let Err(e) = outbox.set_stopped(&self.sink.name, None) {
                    tracing::warn!(sink = %self.sink.name, error = %e, "Cannot record that delivery resumed");
                }
                tracing::debug!(sink = %self.sink.name, from, readings = n, "Batch delivered");
                outbox.delivered(&self.sink.name, from, last + 1, n)
            }
            Outcome::TooLarge(reason) if n > 1 => {
                // As Telegraf does: halve until the body fits; the size is learnt again per
                // batch (the next starts full), so a raised server limit is used at once.
                *limit = (n as usize / 2).max(1);
                tracing::info!(sink = %self.sink.name, readings = n, %reason, "Batch too large for the sink (413); splitting it");
                return (Step::Progress, 0);
            }
            Outcome::Refused(reason) if n > 1 => {
                // Halve until the refused reading is alone; the good ones around it get through.
                *limit = (n as usize / 2).max(1);
                tracing::debug!(sink = %self.sink.name, readings = n, %reason, "Batch refused; splitting it");
                return (Step::Progress, 0);
            }
            Outcome::Refused(reason) | Outcome::TooLarge(reason) => {
                match self.dead_letter(from, "lp", &body, &reason) {
                    Ok(path) => {
                        tracing::error!(sink = %self.sink.name, readings = n, %reason, file = %path.display(), "Sink refused a reading for its content; dead-lettered, the queue goes on");
                    }
                    Err(error) => {
                        tracing::error!(sink = %self.sink.name, %error, "Cannot write the dead-letter file; keeping the batch");
                        return (Step::Wait(backoff.next()), 0);
                    }
                }
                *limit = self.sink.batch_max_readings;
                outbox.dead_lettered(&self.sink.name, from, last + 1, n)
            }
            Outcome::Stopped(reason) => return (self.stopped(outbox, reason), 0),
            Outcome::Retry(reason, after) => return (self.retry(outbox, reason, after, backoff), 0),
        };
        match settled {
            Ok(()) => (Step::Progress, n),
            Err(e) => (self.outbox_failed(e, backoff), 0),
        }
    }

    fn stopped(&self, outbox: &Outbox, reason: String) -> Step {
        let depth = outbox.sink(&self.sink.name).map(|s| s.depth(outbox.durable_end())).unwrap_or(0);
        tracing::error!(sink = %self.sink.name, %reason, waiting = depth, retry_in_ms = self.sink.auth_retry.as_millis() as u64,
            "DELIVERY STOPPED: the sink refuses the token or the bucket; nothing is dropped, fix the config or token");
        if let Err(e) = outbox.set_stopped(&self.sink.name, Some(reason)) {
            tracing::warn!(sink = %self.sink.name, error = %e, "Cannot record the stop in the ledger");
        }
        Step::Wait(self.sink.auth_retry)
    }

    fn retry(&self, outbox: &Outbox, reason: String, after: Option<Duration>, backoff: &mut Backoff) -> Step {
        let _ = outbox.retried(&self.sink.name);
        let delay = after.unwrap_or_else(|| backoff.next());
        tracing::warn!(sink = %self.sink.name, %reason, retry_in_ms = delay.as_millis() as u64, "Delivery failed; will retry");
        Step::Wait(delay)
    }

    async fn send_gap(&mut self, outbox: &Outbox, gap: &Gap, backoff: &mut Backoff) -> Step {
        let (url, body, json) = match self.sink.kind {
            SinkKind::Server => {
                let body = serde_json::to_vec(&serde_json::json!({ "gaps": [gap] })).unwrap_or_default();
                (self.gaps_url.clone(), Bytes::from(body), true)
            }
            SinkKind::Influx => (self.write_url.clone(), Bytes::from(gap_line(gap).into_bytes()), false),
        };
        let name = self.sink.name.clone();
        match self.post(url, body.clone(), json).await {
            Outcome::Delivered => {
                backoff.reset();
                tracing::info!(sink = %name, point = %gap.point, count = gap.count, from_ns = gap.from_ns, to_ns = gap.to_ns, "Gap record delivered");
                match outbox.gap_delivered(&name, &gap.id) {
                    Ok(()) => Step::Progress,
                    Err(e) => self.outbox_failed(e, backoff),
                }
            }
            Outcome::Refused(reason) | Outcome::TooLarge(reason) => {
                match self.dead_letter(0, if json { "gap.json" } else { "gap.lp" }, &body, &reason) {
                    Ok(path) => {
                        tracing::error!(sink = %name, %reason, file = %path.display(), "Sink refused a gap record; dead-lettered")
                    }
                    Err(error) => {
                        tracing::error!(sink = %name, %error, "Cannot write the dead-letter file; keeping the gap");
                        return Step::Wait(backoff.next());
                    }
                }
                match outbox.gap_delivered(&name, &gap.id) {
                    Ok(()) => Step::Progress,
                    Err(e) => self.outbox_failed(e, backoff),
                }
            }
            Outcome::Stopped(reason) => self.stopped(outbox, reason),
            Outcome::Retry(reason, after) => self.retry(outbox, reason, after, backoff),
        }
    }

    /// Delivers until shutdown.
    pub async fn run(mut self, outbox: Arc<Outbox>, shutdown: Shutdown) {
        let name = self.sink.name.clone();
        let batch_max = self.sink.batch_max_readings;
        let mut durable = outbox.subscribe();
        let mut backoff = Backoff::new();
        let mut limit = batch_max;
        let mut bucket = Bucket::new(self.sink.backfill_readings_per_s, batch_max);
        // When the oldest unsent live reading was first seen: a batch leaves when full or this old.
        let mut waiting_since: Option<Instant> = None;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let end = *durable.borrow_and_update();
            let Some(state) = outbox.sink(&name) else {
                tracing::error!(sink = %name, "Sink missing from the outbox ledger; delivery not started");
                return;
            };
            // An error wait (backoff, Retry-After, token refused): new readings do not cut it short.
            let mut blocked: Option<Duration> = None;
            // When something becomes due (a batch's age, backfill tokens) if nothing else happens.
            let mut due: Option<Instant> = None;
            let mut progressed = false;

            if let Some(gap) = state.gaps.first() {
                match self.send_gap(&outbox, gap, &mut backoff).await {
                    Step::Progress => continue,
                    Step::Wait(d) => blocked = Some(d),
                }
            } else if state.live.is_none() && end.saturating_sub(state.cursor) > batch_max as u64 {
                // More than a batch behind: new readings go first from here on.
                match outbox.start_live(&name) {
                    Ok(()) => {
                        tracing::info!(sink = %name, backlog = end - state.cursor, "Behind: live readings first, backlog at the backfill rate");
                        continue;
                    }
                    Err(e) => blocked = Some(self.outbox_failed(e, &mut backoff).delay()),
                }
            } else {
                let (stream_from, backlog) = match state.live {
                    Some((s, e)) => (e, Some((state.cursor, s))),
                    None => (state.cursor, None),
                };
                // The live stream (everything, when not split) first.
                let stream_len = end.saturating_sub(stream_from);
                if stream_len == 0 {
                    waiting_since = None;
                } else {
                    let ready_at = *waiting_since.get_or_insert_with(Instant::now) + self.sink.batch_max_age;
                    if stream_len >= limit as u64 || Instant::now() >= ready_at || limit < batch_max {
                        match self.send_batch(&outbox, stream_from, end, limit, &mut limit, &mut backoff).await {
                            (Step::Progress, _) => {
                                waiting_since = None;
                                progressed = true;
                            }
                            (Step::Wait(d), _) => blocked = Some(d),
                        }
                    } else {
                        due = Some(ready_at);
                    }
                }
                // Then one backlog batch, oldest first, within the backfill rate.
                if let (Some((from, to)), None) = (backlog, blocked) {
                    let want = to.saturating_sub(from).min(limit as u64);
                    if want > 0 {
                        let allowed = bucket.allow(want);
                        if allowed == 0 {
                            let at = Instant::now() + bucket.wait(want);
                            due = Some(due.map_or(at, |d| d.min(at)));
                        } else {
                            match self.send_batch(&outbox, from, to, allowed as usize, &mut limit, &mut backoff).await {
                                (Step::Progress, sent) => {
                                    bucket.spend(sent);
                                    progressed = true;
                                }
                                (Step::Wait(d), _) => blocked = Some(d),
                            }
                        }
                    }
                }
            }
            if progressed {
                continue;
            }
            if let Some(d) = blocked {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(d) => {}
                }
                continue;
            }
            let until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(until.into()) => {}
                changed = durable.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

impl Step {
    fn delay(self) -> Duration {
        match self {
            Step::Progress => Duration::ZERO,
            Step::Wait(d) => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_one_influx_line() {
        let gap = Gap {
            id: "x".into(),
            factory: "f1".into(),
            point: "outfall 1".into(),
            kind: "effluent".into(),
            parameters: vec!["bod".into(), "cod".into()],
            from_ns: 10,
            to_ns: 20,
            count: 3,
            reason: "agent \"buffer\" overflow".into(),
        };
        assert_eq!(
            gap_line(&gap),
            "gap,factory=f1,point=outfall\\ 1 parameters=\"bod cod\",from_ns=10i,to_ns=20i,count=3i,reason=\"agent \\\"buffer\\\" overflow\" 10\n"
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "in the past: now");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_backlog_goes_at_the_backfill_rate() {
        let mut b = Bucket::new(20, 40);
        assert_eq!(b.allow(40), 40, "a first batch at once");
        b.spend(40);
        assert_eq!(b.allow(40), 0);
        let wait = b.wait(40);
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "a second's worth: {wait:?}");
        assert_eq!(Bucket::new(0, 40).allow(7), 7, "0: unlimited");
    }
}
