//! Alerts to people: e-mail ([`email`]) and LINE ([`line`](mod@line)) messages when an alert fires or
//! resolves, escalation of a critical alert left unacknowledged, a daily digest, and the
//! rate limit that turns a storm into a summary; every message through a durable outbox.
//!
//! The flow: the alert book's changes arrive as events ([`crate::events::Events`]); an alert
//! that fires is routed to the recipients whose subscriptions cover it ([`recipients`]), one
//! notification per address, rendered ([`message`]) and written to the outbox ([`outbox`])
//! before anything is sent. A pending alert that resolves before `for_s` never fired, so it
//! is told to nobody. The delivery task sends what is due, records each answer, and retries
//! failures with doubling waits (a 429's `Retry-After` when longer) until the channel takes
//! the message or refuses it for good. Once a (recipient, address) got `rate_max` messages
//! within `rate_window_s`, further alerts are held and told in one summary when the oldest
//! held is `rate_window_s` old. The same task escalates critical alerts still firing and
//! unacknowledged `escalation.after_s` after they fired, and sends each recipient's digest
//! of the day before once its `digest_at` (Bangkok) has passed.

pub mod digest;
pub mod email;
pub mod line;
pub mod message;
pub mod outbox;
pub mod recipients;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eitwatch_config::notify_config::{NotifySection, Recipient, minutes_of_day};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::alerts::{Alert, State};
use crate::compliance::Severity;
use message::Telling;
use outbox::{Channel, Notification, Outbox, Outcome, Purpose, Status};

/// Why notifications could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The outbox or the recipients' log.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// `[notify.email]`.
    #[error(transparent)]
    Email(#[from] email::EmailError),
    /// `[notify.line]`.
    #[error(transparent)]
    Line(#[from] line::LineError),
}

/// Counts since the start, for the delivery log's answer and the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Notifications queued (not held).
    pub queued: AtomicU64,
    /// Taken by the channel.
    pub sent: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Refused for good.
    pub failed: AtomicU64,
    /// Held by the rate limit.
    pub held: AtomicU64,
    /// Summaries made of held ones.
    pub summaries: AtomicU64,
    /// Alerts escalated.
    pub escalations: AtomicU64,
    /// Digests queued.
    pub digests: AtomicU64,
    /// Deliveries through e-mail.
    pub email: ChannelCounters,
    /// Deliveries through LINE.
    pub line: ChannelCounters,
}

/// One channel's deliveries since the start, for the metrics.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// Taken by the channel.
    pub sent: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Refused for good.
    pub failed: AtomicU64,
}

/// [`Counters`] read at one moment.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CountersSnapshot {
    /// Notifications queued (not held).
    pub queued: u64,
    /// Taken by the channel.
    pub sent: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Refused for good.
    pub failed: u64,
    /// Held by the rate limit.
    pub held: u64,
    /// Summaries made of held ones.
    pub summaries: u64,
    /// Alerts escalated.
    pub escalations: u64,
    /// Digests queued.
    pub digests: u64,
}

impl Counters {
    /// The counters of one channel.
    pub fn channel(&self, channel: Channel) -> &ChannelCounters {
        match channel {
            Channel::Email => &self.email,
            Channel::Line => &self.line,
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            queued: get(&self.queued),
            sent: get(&self.sent),
            retried: get(&self.retried),
            failed: get(&self.failed),
            held: get(&self.held),
            summaries: get(&self.summaries),
            escalations: get(&self.escalations),
            digests: get(&self.digests),
        }
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// The channels a notifier sends through.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    email: Option<email::Email>,
    line: Option<line::Line>,
}

impl Channels {
    /// The channels `[notify]` configures (a secret's variable missing is an error).
    pub fn new(config: &NotifySection) -> Result<Channels, NotifyError> {
        let email = config.email.as_ref().map(email::Email::new).transpose()?;
        let line = config.line.as_ref().map(line::Line::new).transpose()?;
        Ok(Channels { email, line })
    }

    /// Sends one notification; `retry_ms` is the backoff's wait for a transient failure.
    pub async fn send(&self, n: &Notification, now_ns: i64, retry_ms: u64) -> Outcome {
        let retry_at = |wait: Option<Duration>| {
            let wait_ms = wait.map_or(retry_ms, |w| (w.as_millis() as u64).max(retry_ms));
            now_ns.saturating_add((wait_ms as i64).saturating_mul(1_000_000))
        };
        match n.channel {
            Channel::Email => match &self.email {
                None => Outcome::Failed("no [notify.email] configured".into()),
                Some(e) => match e.send(n).await {
                    email::Sent::Ok(a) => Outcome::Sent(a),
                    email::Sent::Transient(a) => Outcome::Retry { answer: a, next_ns: retry_at(None) },
                    email::Sent::Permanent(a) => Outcome::Failed(a),
                },
            },
            Channel::Line => match &self.line {
                None => Outcome::Failed("no [notify.line] configured".into()),
                Some(l) => match l.push(n).await {
                    line::Pushed::Ok(a) => Outcome::Sent(a),
                    line::Pushed::Transient(a, wait) => Outcome::Retry { answer: a, next_ns: retry_at(wait) },
                    line::Pushed::Permanent(a) => Outcome::Failed(a),
                },
            },
        }
    }
}

/// Alert changes routed and queued in one write at most.
const ROUTE_BATCH: usize = 4096;

/// How long after an alert resolved its keys are kept when its resolution was not told: its
/// event is routed within seconds, so one this old was missed (or told nothing: never fired).
const RESOLVED_GRACE_NS: i64 = 600_000_000_000;

/// Notifications of one server.
#[derive(Debug)]
pub struct Notifier {
    config: NotifySection,
    /// The recipients (config and admin API).
    pub recipients: recipients::Recipients,
    outbox: Mutex<Outbox>,
    /// Counts since the start.
    pub counters: Counters,
    channels: Channels,
    wake: tokio::sync::Notify,
    /// Critical alerts that fired and may need escalating: id → when they fired.
    watch: Mutex<BTreeMap<u64, i64>>,
}

/// What the delivery task asks of the server.
pub trait Source: Send + Sync + 'static {
    /// Now, ns (the server's clock).
    fn now_ns(&self) -> i64;
    /// The alerts of `ids` as they are now, by id (an id unknown has none).
    fn alerts(&self, ids: &BTreeSet<u64>) -> BTreeMap<u64, Alert>;
    /// The area of a factory.
    fn area_of(&self, factory: &str) -> String;
    /// The digest of the day before `now_ns`, of what `sees` accepts.
    fn digest(&self, now_ns: i64, sees: &dyn Fn(&str, &str) -> bool) -> digest::Digest;
}

impl Source for crate::App {
    fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    fn alerts(&self, ids: &BTreeSet<u64>) -> BTreeMap<u64, Alert> {
        self.alerts.get_many(ids)
    }

    fn area_of(&self, factory: &str) -> String {
        let registry = self.registry();
        registry
            .areas()
            .iter()
            .find(|a| a.factory.iter().any(|f| f.id == factory))
            .map_or(String::new(), |a| a.id.clone())
    }

    fn digest(&self, now_ns: i64, sees: &dyn Fn(&str, &str) -> bool) -> digest::Digest {
        let registry = self.registry();
        digest::compose(&self.compliance.engine(), &registry, now_ns, sees)
    }
}

impl Notifier {
    /// Opens the outbox and the recipients in `<data_dir>/notify/` and sets up the channels.
    pub fn open(data_dir: &Path, config: &NotifySection) -> Result<Notifier, NotifyError> {
        let dir = data_dir.join("notify");
        let io = |source| NotifyError::Io { path: dir.clone(), source };
        let outbox = Outbox::open(&dir).map_err(io)?;
        let recipients = recipients::Recipients::open(&dir, config).map_err(io)?;
        Ok(Notifier {
            config: config.clone(),
            recipients,
            outbox: Mutex::new(outbox),
            counters: Counters::default(),
            channels: Channels::new(config)?,
            wake: tokio::sync::Notify::new(),
            watch: Mutex::new(BTreeMap::new()),
        })
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &NotifySection {
        &self.config
    }

    /// The delivery log, newest first.
    pub fn log(&self, keep: impl Fn(&Notification) -> bool, limit: usize) -> Vec<Notification> {
        self.outbox().list(keep, limit)
    }

    /// Starts the task that routes alert events and delivers (alerts already firing and
    /// critical are watched for escalation).
    pub fn spawn(self: &Arc<Self>, source: Arc<dyn Source>, events: &crate::events::Events, firing: Vec<Alert>) {
        for a in firing {
            self.watch_alert(&a);
        }
        let mut rx = events.subscribe();
        let me = self.clone();
        let src = source.clone();
        tokio::spawn(async move {
            loop {
                // What came at once (a storm) is routed and queued in one write.
                let mut batch = Vec::new();
                let mut next = Some(rx.recv().await);
                while let Some(received) = next.take() {
                    match received {
                        Ok(e) if e.kind == "alert" => match serde_json::from_str::<Alert>(&e.data) {
                            Ok(alert) => batch.push(alert),
                            Err(error) => tracing::error!(%error, "An alert event does not parse; not notified"),
                        },
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::error!(
                                missed = n,
                                "Notifications fell behind; alert changes not told (see /api/v1/alerts)"
                            )
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    if batch.len() < ROUTE_BATCH {
                        next = match rx.try_recv() {
                            Ok(e) => Some(Ok(e)),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                Some(Err(broadcast::error::RecvError::Lagged(n)))
                            }
                            Err(_) => None,
                        };
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let (me, src) = (me.clone(), src.clone());
                let _ = tokio::task::spawn_blocking(move || me.on_alerts(&*src, &batch)).await;
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.run_once(&*source).await;
                let now = source.now_ns();
                let next = me.outbox().next_due_ns().map_or(1000, |t| ((t - now) / 1_000_000).clamp(10, 1000));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(next as u64)) => {}
                    _ = me.wake.notified() => {}
                }
            }
        });
    }

    fn watch_alert(&self, a: &Alert) {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        match (a.state, a.firing_ns) {
            (State::Firing, Some(at)) if a.severity == Severity::Critical && self.config.escalation.is_some() => {
                watch.insert(a.id, at);
            }
            _ => {
                watch.remove(&a.id);
            }
        }
    }

    /// Routes alert changes: a firing alert to its subscribers, a resolution to those who
    /// were told it fired and asked for resolutions; all of them queued in one write.
    pub fn on_alerts(&self, source: &dyn Source, alerts: &[Alert]) {
        let now = source.now_ns();
        let recipients = self.recipients.list();
        let mut outbox = self.outbox();
        let (mut list, mut told) = (Vec::new(), Vec::new());
        for a in alerts {
            self.watch_alert(a);
            let (telling, key) = match a.state {
                State::Firing => (Telling::Fired, format!("fired:{}", a.id)),
                State::Resolved if a.firing_ns.is_some() => (Telling::Resolved, format!("resolved:{}", a.id)),
                _ => continue,
            };
            let fired = format!("fired:{}", a.id);
            let fired_told = outbox.told(&fired) || told.contains(&fired);
            if outbox.told(&key) || told.contains(&key) || (telling == Telling::Resolved && !fired_told) {
                continue;
            }
            let area = source.area_of(&a.factory);
            let to: Vec<Recipient> = recipients
                .iter()
                .filter(|r| {
                    recipients::subscription(r, a, &area).is_some_and(|s| telling == Telling::Fired || s.resolved)
                })
                .cloned()
                .collect();
            let purpose = if telling == Telling::Fired { Purpose::Fired } else { Purpose::Resolved };
            self.notifications(&mut outbox, &to, a, telling, purpose, now, &mut list);
            told.push(key);
        }
        self.queue(&mut outbox, list, &told);
    }

    /// One notification per address of each recipient, held when over the rate limit.
    #[allow(clippy::too_many_arguments)]
    fn notifications(
        &self,
        outbox: &mut Outbox,
        to: &[Recipient],
        a: &Alert,
        telling: Telling,
        purpose: Purpose,
        now: i64,
        list: &mut Vec<Notification>,
    ) {
        let since = now - (self.config.rate_window_s as i64).saturating_mul(1_000_000_000);
        let mut id = outbox.next_id() + list.len() as u64;
        for r in to {
            let m = message::alert(a, telling, r.language, &self.config.board_url);
            for (channel, addr) in addresses(r) {
                let over = outbox.recent(&r.id, addr, since)
                    + list
                        .iter()
                        .filter(|n: &&Notification| n.recipient == r.id && n.to == *addr && n.status == Status::Queued)
                        .count();
                let status = if over >= self.config.rate_max as usize { Status::Held } else { Status::Queued };
                list.push(self.make(
                    id,
                    r,
                    channel,
                    addr,
                    purpose,
                    Some(a),
                    &m,
                    now,
                    status,
                    message::summary_line(a, r.language),
                ));
                id += 1;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &self,
        id: u64,
        r: &Recipient,
        channel: Channel,
        addr: &str,
        purpose: Purpose,
        a: Option<&Alert>,
        m: &message::Message,
        now: i64,
        status: Status,
        line: String,
    ) -> Notification {
        Notification {
            id,
            recipient: r.id.clone(),
            channel,
            to: addr.to_string(),
            purpose,
            alert: a.map(|a| a.id),
            factory: a.map(|a| a.factory.clone()),
            subject: m.subject.clone(),
            text: match channel {
                Channel::Email => m.text.clone(),
                Channel::Line => message::line_text(m),
            },
            html: match channel {
                Channel::Email => m.html.clone(),
                Channel::Line => String::new(),
            },
            line,
            created_ns: now,
            status,
            attempts: 0,
            next_ns: now,
            answer: None,
            done_ns: None,
            into: None,
            retry_key: outbox::uuid_v4(),
        }
    }

    fn queue(&self, outbox: &mut Outbox, list: Vec<Notification>, told: &[String]) {
        let held = list.iter().filter(|n| n.status == Status::Held).count();
        let queued = list.len() - held;
        match outbox.queue(list, told) {
            Ok(()) => {
                add(&self.counters.queued, queued);
                add(&self.counters.held, held);
                if queued > 0 {
                    self.wake.notify_one();
                }
            }
            Err(error) => {
                tracing::error!(path = %outbox.path().display(), %error, told = ?told, "Cannot queue notifications")
            }
        }
    }

    /// One round of the delivery task: send what is due, summarise, escalate, digest.
    pub async fn run_once(&self, source: &dyn Source) {
        let now = source.now_ns();
        let due = self.outbox().due(now);
        for n in due {
            let wait =
                self.config.retry_initial_ms.saturating_mul(1u64 << n.attempts.min(30)).min(self.config.retry_max_ms);
            let outcome = self.channels.send(&n, now, wait).await;
            match &outcome {
                Outcome::Sent(answer) => {
                    add(&self.counters.sent, 1);
                    add(&self.counters.channel(n.channel).sent, 1);
                    tracing::info!(notification = n.id, recipient = %n.recipient, channel = ?n.channel, %answer, "Notification sent");
                }
                Outcome::Retry { answer, .. } => {
                    add(&self.counters.retried, 1);
                    add(&self.counters.channel(n.channel).retried, 1);
                    tracing::warn!(notification = n.id, recipient = %n.recipient, channel = ?n.channel, attempt = n.attempts + 1, %answer, "Notification not delivered; retrying");
                }
                Outcome::Failed(answer) => {
                    add(&self.counters.failed, 1);
                    add(&self.counters.channel(n.channel).failed, 1);
                    tracing::error!(notification = n.id, recipient = %n.recipient, channel = ?n.channel, %answer, "Notification refused for good");
                }
            }
            let mut outbox = self.outbox();
            if let Err(error) = outbox.record(n.id, outcome, source.now_ns()) {
                tracing::error!(path = %outbox.path().display(), %error, "Cannot record a delivery");
            }
        }
        self.summarise(source.now_ns());
        self.escalate(source);
        self.digests(source);
        self.compact(source);
    }

    /// Compacts the outbox once it has grown enough ([`Outbox::needs_compaction`]): the keys
    /// of alerts resolved (told, or `RESOLVED_GRACE_NS` ago, or no longer known) and of past
    /// days' digests go, the finished notifications beyond the newest
    /// [`outbox::KEEP_FINISHED`] too.
    fn compact(&self, source: &dyn Source) {
        let candidates = {
            let outbox = self.outbox();
            if !outbox.needs_compaction() {
                return;
            }
            outbox.untold_resolutions()
        };
        // The book is asked without the outbox's lock: routing goes on meanwhile.
        let now = source.now_ns();
        // Asked all at once: an archived alert's segment is read once, not once per alert.
        let alerts = source.alerts(&candidates);
        let done: BTreeSet<u64> = candidates
            .into_iter()
            .filter(|id| {
                alerts.get(id).is_none_or(|a| {
                    a.state == State::Resolved && a.resolved_ns.is_some_and(|t| now - t >= RESOLVED_GRACE_NS)
                })
            })
            .collect();
        let today = crate::compliance::period::local_date(now);
        let since = now - (self.config.rate_window_s as i64).saturating_mul(1_000_000_000);
        let mut outbox = self.outbox();
        if let Err(error) = outbox.compact(&today, since, &done) {
            tracing::error!(path = %outbox.path().display(), %error, "Cannot compact the notification outbox");
        }
    }

    fn summarise(&self, now: i64) {
        let window = (self.config.rate_window_s as i64).saturating_mul(1_000_000_000);
        let mut outbox = self.outbox();
        for ((rid, channel, addr), oldest, ids) in outbox.held() {
            if now - oldest < window {
                continue;
            }
            let Some(r) = self.recipients.get(&rid) else { continue };
            let lines: Vec<String> = ids.iter().filter_map(|id| outbox.find(*id)).map(|n| n.line.clone()).collect();
            let m = message::summary(&lines, r.language, &self.config.board_url);
            let summary = self.make(
                outbox.next_id(),
                &r,
                channel,
                &addr,
                Purpose::Summary,
                None,
                &m,
                now,
                Status::Queued,
                String::new(),
            );
            match outbox.merge(ids, summary) {
                Ok(()) => {
                    add(&self.counters.summaries, 1);
                    add(&self.counters.queued, 1);
                }
                Err(error) => tracing::error!(path = %outbox.path().display(), %error, "Cannot queue a summary"),
            }
        }
    }

    fn escalate(&self, source: &dyn Source) {
        let Some(esc) = &self.config.escalation else { return };
        let now = source.now_ns();
        let after = (esc.after_s as i64).saturating_mul(1_000_000_000);
        let due: Vec<u64> = {
            let watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
            watch.iter().filter(|&(_, &at)| now - at >= after).map(|(&id, _)| id).collect()
        };
        let mut alerts = source.alerts(&due.iter().copied().collect());
        for id in due {
            self.watch.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            let Some(a) = alerts.remove(&id) else { continue };
            let key = format!("escalated:{id}");
            // Acknowledged or resolved meanwhile: nothing to escalate.
            if a.state != State::Firing {
                continue;
            }
            let mut outbox = self.outbox();
            if outbox.told(&key) {
                continue;
            }
            let to: Vec<Recipient> = esc
                .to
                .iter()
                .filter_map(|id| self.recipients.get(id))
                .filter(|r| recipients::may_see(r, &a.factory))
                .collect();
            let mut list = Vec::new();
            self.notifications(&mut outbox, &to, &a, Telling::Escalated, Purpose::Escalated, now, &mut list);
            add(&self.counters.escalations, 1);
            self.queue(&mut outbox, list, &[key]);
        }
    }

    fn digests(&self, source: &dyn Source) {
        let now = source.now_ns();
        let today = crate::compliance::period::local_date(now);
        let (start, _) = crate::compliance::period::day(now);
        let minute = (now - start) / 60_000_000_000;
        for r in self.recipients.list() {
            let Some(at) = r.digest_at.as_deref().and_then(minutes_of_day) else { continue };
            let key = format!("digest:{}:{today}", r.id);
            if minute < i64::from(at) || self.outbox().told(&key) {
                continue;
            }
            let own = r.factory.clone();
            let subs = r.subscription.clone();
            let sees = move |area: &str, factory: &str| {
                own.as_deref().is_none_or(|o| o == factory)
                    && (subs.is_empty()
                        || subs.iter().any(|s| {
                            (s.areas.is_empty() && s.factories.is_empty())
                                || s.areas.iter().any(|a| a == area)
                                || s.factories.iter().any(|f| f == factory)
                        }))
            };
            let d = source.digest(now, &sees);
            let m = message::digest(&d, r.language, &self.config.board_url);
            let mut outbox = self.outbox();
            let list = (outbox.next_id()..)
                .zip(addresses(&r))
                .map(|(id, (channel, addr))| {
                    self.make(id, &r, channel, addr, Purpose::Digest, None, &m, now, Status::Queued, String::new())
                })
                .collect();
            add(&self.counters.digests, 1);
            self.queue(&mut outbox, list, &[key]);
        }
    }
}

/// `eitwatch-server notify test`: sends the test message to every address of recipient `id`
/// (from `[notify]` and the recipients' log in `data_dir`, which it only reads) at once, not
/// through the outbox; each address with what its channel answered. `None`: no such recipient.
pub async fn send_test(
    data_dir: &Path,
    config: &NotifySection,
    id: &str,
    now_ns: i64,
) -> Result<Option<Vec<(String, Outcome)>>, NotifyError> {
    let dir = data_dir.join("notify");
    let recipients = recipients::Recipients::open(&dir, config)
        .map_err(|source| NotifyError::Io { path: dir.join("recipients.log"), source })?;
    let Some(r) = recipients.get(id) else { return Ok(None) };
    let channels = Channels::new(config)?;
    let m = message::test(&r.id, r.language);
    let mut out = Vec::new();
    for (channel, addr) in addresses(&r) {
        let n = Notification {
            id: 0,
            recipient: r.id.clone(),
            channel,
            to: addr.to_string(),
            purpose: Purpose::Test,
            alert: None,
            factory: None,
            subject: m.subject.clone(),
            text: if channel == Channel::Line { message::line_text(&m) } else { m.text.clone() },
            html: m.html.clone(),
            line: String::new(),
            created_ns: now_ns,
            status: Status::Queued,
            attempts: 0,
            next_ns: now_ns,
            answer: None,
            done_ns: None,
            into: None,
            retry_key: outbox::uuid_v4(),
        };
        let label = match channel {
            Channel::Email => format!("email {addr}"),
            Channel::Line => format!("line {addr}"),
        };
        out.push((label, channels.send(&n, now_ns, 0).await));
    }
    Ok(Some(out))
}

fn addresses(r: &Recipient) -> impl Iterator<Item = (Channel, &str)> {
    r.email.iter().map(|e| (Channel::Email, e.as_str())).chain(r.line.iter().map(|l| (Channel::Line, l.as_str())))
}

#[cfg(test)]
mod tests;
