//! The durable outbox and delivery log: `<data_dir>/notify/outbox.log`, one JSON operation a
//! line, synced before it counts. A notification is queued (or held by the rate limit) before
//! anything is sent, so a crash or a channel down loses none: at the next start every
//! notification not yet sent or given up is delivered again. The same log is the delivery log
//! (`GET /api/v1/notifications`) and remembers what was told already (an alert's firing,
//! resolution, escalation; a recipient's digest of a day), so a restart tells nothing twice.
//!
//! ## Operations (`"op"` names each)
//! - `queue` `{n}`: a notification, every field of [`Notification`].
//! - `attempt` `{id, at_ns, answer, next_ns}`: a failed attempt, retried at `next_ns`.
//! - `sent` / `failed` `{id, at_ns, answer}`: taken, or refused for good.
//! - `merge` `{ids, into}`: held notifications told in summary `into`.
//! - `told` `{key}`: told already: `fired:<alert>`, `resolved:<alert>`, `escalated:<alert>`,
//!   `digest:<recipient>:<Bangkok date YYYY-MM-DD>`.
//! - `next` `{id}`: ids from `id` on are free (written by compaction: finished notifications
//!   it drops must not have their ids given again).
//! - `recent` `{recipient, to, created_ns}`: the rate limit's count for one address, its
//!   notifications' creation times; replaces what `queue` operations before it counted.
//!
//! ## Compaction
//! Once the log has grown by `max(COMPACT_MIN_LINES, lines kept by the last compaction)` lines
//! (counted from the start of the file at open), [`Outbox::compact`] rewrites it: `next`,
//! then a `queue` of every notification kept as it is now, then `told` of every key kept,
//! then `recent` of every address counted. Written to `outbox.log.tmp`, synced, renamed over
//! the log, the directory synced; a `.tmp` left by a crash before the rename is removed at
//! open (the log it would have replaced is whole). Kept:
//! - every notification not finished (queued, held), and the newest `KEEP_FINISHED`
//!   finished ones (sent, failed, summarised): the delivery log is a recent window;
//! - the `told` keys still checked: an alert's keys until its resolution is told (or the
//!   caller says it is resolved and gone: `done`), a digest's key for its own day.
//!   [`super::Notifier`] tells a resolution only when `fired:<id>` is told, so an alert
//!   whose keys are gone is told nothing more;
//! - the rate limit's creation times since the caller's `since_ns`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// SMTP.
    Email,
    /// LINE Messaging API push.
    Line,
}

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An alert fired.
    Fired,
    /// An alert resolved.
    Resolved,
    /// A critical alert unacknowledged after the wait.
    Escalated,
    /// Alerts the rate limit held, told at once.
    Summary,
    /// The daily digest.
    Digest,
    /// `notify test`.
    Test,
}

/// Where a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be sent (again, after `next_ns`).
    Queued,
    /// Held by the rate limit, to go in a summary.
    Held,
    /// Told in summary notification `into`.
    Summarised,
    /// The channel took it.
    Sent,
    /// The channel refused it for good.
    Failed,
}

/// One message to one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique, increasing.
    pub id: u64,
    /// The recipient's id.
    pub recipient: String,
    /// The channel.
    pub channel: Channel,
    /// The address: an e-mail address or a LINE id.
    pub to: String,
    /// What it tells.
    pub purpose: Purpose,
    /// The alert it tells of.
    #[serde(default)]
    pub alert: Option<u64>,
    /// The factory it concerns.
    #[serde(default)]
    pub factory: Option<String>,
    /// Subject.
    pub subject: String,
    /// Plain text (LINE: subject and text).
    pub text: String,
    /// HTML (e-mail).
    #[serde(default)]
    pub html: String,
    /// The alert in one line, for a summary (held notifications).
    #[serde(default)]
    pub line: String,
    /// When it was made (server clock), ns.
    pub created_ns: i64,
    /// Where it is.
    pub status: Status,
    /// Attempts made.
    pub attempts: u32,
    /// Not to be attempted before, ns.
    pub next_ns: i64,
    /// What the channel answered last.
    #[serde(default)]
    pub answer: Option<String>,
    /// When it was sent or given up, ns.
    #[serde(default)]
    pub done_ns: Option<i64>,
    /// The summary it went into.
    #[serde(default)]
    pub into: Option<u64>,
    /// Idempotency key of its retries (LINE's `X-Line-Retry-Key`), a UUID.
    pub retry_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Queue { n: Box<Notification> },
    Attempt { id: u64, at_ns: i64, answer: String, next_ns: i64 },
    Sent { id: u64, at_ns: i64, answer: String },
    Failed { id: u64, at_ns: i64, answer: String },
    Merge { ids: Vec<u64>, into: u64 },
    Told { key: String },
    Next { id: u64 },
    Recent { recipient: String, to: String, created_ns: Vec<i64> },
}

/// Lines appended before a compaction is considered, at least.
const COMPACT_MIN_LINES: u64 = 4096;

/// Finished notifications (sent, failed, summarised) a compaction keeps, the newest.
pub const KEEP_FINISHED: usize = 1000;

/// The outbox's state: every notification, and what was told.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    file: std::fs::File,
    list: Vec<Notification>,
    told: BTreeSet<String>,
    /// Creation times of the notifications counted by the rate limit, per (recipient, address).
    recent: HashMap<(String, String), VecDeque<i64>>,
    /// The next id: above every id ever given.
    next_id: u64,
    /// Lines in the log.
    lines: u64,
    /// Lines the last compaction wrote (0 before any since the open; the log's lines when
    /// the last one failed).
    kept_lines: u64,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("outbox.log");
        let tmp = tmp_path(&path);
        match std::fs::remove_file(&tmp) {
            Ok(()) => tracing::warn!(file = %tmp.display(), "Removed a compaction never finished; the log is whole"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", tmp.display()))),
        }
        let mut outbox = Outbox {
            file: crate::jsonl::open(&path)?,
            path,
            list: Vec::new(),
            told: BTreeSet::new(),
            recent: HashMap::new(),
            next_id: 1,
            lines: 0,
            kept_lines: 0,
        };
        for op in crate::jsonl::read::<Op>(&outbox.path)? {
            outbox.apply(op);
            outbox.lines += 1;
        }
        Ok(outbox)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Queue { n } => {
                if matches!(n.purpose, Purpose::Fired | Purpose::Resolved | Purpose::Escalated | Purpose::Summary)
                    && n.status != Status::Held
                {
                    self.recent.entry((n.recipient.clone(), n.to.clone())).or_default().push_back(n.created_ns);
                }
                self.next_id = self.next_id.max(n.id.saturating_add(1));
                self.list.push(*n);
            }
            Op::Attempt { id, at_ns: _, answer, next_ns } => {
                if let Some(n) = self.get_mut(id) {
                    n.attempts += 1;
                    n.answer = Some(answer);
                    n.next_ns = next_ns;
                }
            }
            Op::Sent { id, at_ns, answer } => self.finish(id, at_ns, answer, Status::Sent),
            Op::Failed { id, at_ns, answer } => self.finish(id, at_ns, answer, Status::Failed),
            Op::Merge { ids, into } => {
                for id in ids {
                    if let Some(n) = self.get_mut(id) {
                        n.status = Status::Summarised;
                        n.into = Some(into);
                    }
                }
            }
            Op::Told { key } => {
                self.told.insert(key);
            }
            Op::Next { id } => self.next_id = self.next_id.max(id),
            Op::Recent { recipient, to, created_ns } => {
                self.recent.insert((recipient, to), created_ns.into());
            }
        }
    }

    fn finish(&mut self, id: u64, at_ns: i64, answer: String, status: Status) {
        if let Some(n) = self.get_mut(id) {
            n.attempts += 1;
            n.answer = Some(answer);
            n.done_ns = Some(at_ns);
            n.status = status;
        }
    }

    fn index(&self, id: u64) -> Option<usize> {
        // Ids are given in increasing order; a list out of order is searched whole.
        match self.list.binary_search_by_key(&id, |n| n.id) {
            Ok(at) => Some(at),
            Err(_) => self.list.iter().position(|n| n.id == id),
        }
    }

    fn get(&self, id: u64) -> Option<&Notification> {
        self.index(id).map(|at| &self.list[at])
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Notification> {
        self.index(id).map(|at| &mut self.list[at])
    }

    fn write(&mut self, ops: &[Op]) -> std::io::Result<()> {
        crate::jsonl::append(&mut self.file, ops)?;
        self.lines += ops.len() as u64;
        Ok(())
    }

    /// The next id.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Whether the log has grown enough since the last compaction (or the open) to be
    /// compacted: by `COMPACT_MIN_LINES` at least, and by as many lines as the last
    /// compaction kept, so rewriting costs at most two lines per line appended.
    pub fn needs_compaction(&self) -> bool {
        self.lines.saturating_sub(self.kept_lines) >= COMPACT_MIN_LINES.max(self.kept_lines)
    }

    /// The alerts with a `told` key whose resolution is not told: those a compaction keeps
    /// the keys of unless the caller finds them resolved and gone.
    pub fn untold_resolutions(&self) -> BTreeSet<u64> {
        let mut ids = BTreeSet::new();
        for key in &self.told {
            if let Some((kind, id)) = alert_key(key) {
                if kind == "resolved" {
                    continue;
                }
                if !self.told.contains(&format!("resolved:{id}")) {
                    ids.insert(id);
                }
            }
        }
        ids
    }

    /// Rewrites the log with what still matters (see the module doc): notifications not
    /// finished and the newest [`KEEP_FINISHED`] finished, the `told` keys still checked
    /// (alerts in `done` need none; digests of days before `today`, a Bangkok date
    /// `YYYY-MM-DD`, neither), the rate limit's times since `since_ns`. An error before the
    /// rename leaves the log and the state as before, and the next try waits until the log
    /// has doubled.
    pub fn compact(&mut self, today: &str, since_ns: i64, done: &BTreeSet<u64>) -> std::io::Result<()> {
        let finished = self.list.iter().filter(|n| !matches!(n.status, Status::Queued | Status::Held)).count();
        let mut drop_finished = finished.saturating_sub(KEEP_FINISHED);
        let mut list = Vec::with_capacity(self.list.len() - drop_finished);
        for n in &self.list {
            if drop_finished > 0 && !matches!(n.status, Status::Queued | Status::Held) {
                drop_finished -= 1;
                continue;
            }
            list.push(n.clone());
        }
        let told: BTreeSet<String> = self.told.iter().filter(|k| self.still_checked(k, today, done)).cloned().collect();
        let mut recent: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for (key, times) in &self.recent {
            let times: Vec<i64> = times.iter().copied().filter(|&t| t >= since_ns).collect();
            if !times.is_empty() {
                recent.insert(key.clone(), times);
            }
        }
        // Every address of a kept notification gets its count, so the `queue` operations
        // before count nothing twice.
        for n in &list {
            recent.entry((n.recipient.clone(), n.to.clone())).or_default();
        }
        let mut ops = Vec::with_capacity(1 + list.len() + told.len() + recent.len());
        ops.push(Op::Next { id: self.next_id });
        ops.extend(list.iter().map(|n| Op::Queue { n: Box::new(n.clone()) }));
        ops.extend(told.iter().map(|k| Op::Told { key: k.clone() }));
        ops.extend(recent.iter().map(|((recipient, to), times)| Op::Recent {
            recipient: recipient.clone(),
            to: to.clone(),
            created_ns: times.clone(),
        }));
        let lines = ops.len() as u64;
        let bytes = crate::jsonl::lines(&ops)?;
        let (file, unsynced) = match crate::files::replace(&self.path, &tmp_path(&self.path), &bytes, 0o666) {
            Ok(file) => (file, None),
            Err(mut e) => {
                let error = std::io::Error::new(e.source.kind(), e.to_string());
                match e.replaced.take() {
                    // Only the directory's sync failed: the compacted log is in place, and
                    // a crash may bring back the one before, whole, compacted again later.
                    Some(file) => (file, Some(error)),
                    None => {
                        // Tried again once the log has doubled, not at every operation.
                        self.kept_lines = self.lines;
                        return Err(error);
                    }
                }
            }
        };
        // The handle written is the log's file now: appends go on from there.
        self.file = file;
        tracing::info!(
            file = %self.path.display(),
            lines_before = self.lines,
            lines_after = lines,
            notifications_before = self.list.len(),
            notifications_after = list.len(),
            told_before = self.told.len(),
            told_after = told.len(),
            "Notification outbox compacted"
        );
        self.list = list;
        self.told = told;
        self.recent = recent.into_iter().filter(|(_, t)| !t.is_empty()).map(|(k, t)| (k, t.into())).collect();
        self.lines = lines;
        self.kept_lines = lines;
        unsynced.map_or(Ok(()), Err)
    }

    fn still_checked(&self, key: &str, today: &str, done: &BTreeSet<u64>) -> bool {
        if let Some((_, id)) = alert_key(key) {
            return !done.contains(&id) && !self.told.contains(&format!("resolved:{id}"));
        }
        if let Some(rest) = key.strip_prefix("digest:") {
            return rest.rsplit_once(':').is_none_or(|(_, day)| day >= today);
        }
        true
    }

    /// Whether `key` was told already.
    pub fn told(&self, key: &str) -> bool {
        self.told.contains(key)
    }

    /// Notifications counted by the rate limit for `(recipient, to)` since `since_ns`.
    pub fn recent(&mut self, recipient: &str, to: &str, since_ns: i64) -> usize {
        let Some(q) = self.recent.get_mut(&(recipient.to_string(), to.to_string())) else { return 0 };
        while q.front().is_some_and(|&t| t < since_ns) {
            q.pop_front();
        }
        q.len()
    }

    /// Queues notifications and records `told` keys, all in one write: a crash leaves all or
    /// none of them.
    pub fn queue(&mut self, list: Vec<Notification>, told: &[String]) -> std::io::Result<()> {
        let mut ops: Vec<Op> = list.into_iter().map(|n| Op::Queue { n: Box::new(n) }).collect();
        ops.extend(told.iter().map(|k| Op::Told { key: k.clone() }));
        if ops.is_empty() {
            return Ok(());
        }
        self.write(&ops)?;
        for op in ops {
            self.apply(op);
        }
        Ok(())
    }

    /// Records the outcome of an attempt.
    pub fn record(&mut self, id: u64, outcome: Outcome, at_ns: i64) -> std::io::Result<()> {
        let op = match outcome {
            Outcome::Sent(answer) => Op::Sent { id, at_ns, answer },
            Outcome::Retry { answer, next_ns } => Op::Attempt { id, at_ns, answer, next_ns },
            Outcome::Failed(answer) => Op::Failed { id, at_ns, answer },
        };
        self.write(std::slice::from_ref(&op))?;
        self.apply(op);
        Ok(())
    }

    /// Replaces held notifications by their summary, in one write.
    pub fn merge(&mut self, ids: Vec<u64>, summary: Notification) -> std::io::Result<()> {
        let into = summary.id;
        let ops = [Op::Queue { n: Box::new(summary) }, Op::Merge { ids, into }];
        self.write(&ops)?;
        for op in ops {
            self.apply(op);
        }
        Ok(())
    }

    /// The queued notifications due at `now_ns`, oldest first.
    pub fn due(&self, now_ns: i64) -> Vec<Notification> {
        self.list.iter().filter(|n| n.status == Status::Queued && n.next_ns <= now_ns).cloned().collect()
    }

    /// When the next queued notification falls due.
    pub fn next_due_ns(&self) -> Option<i64> {
        self.list.iter().filter(|n| n.status == Status::Queued).map(|n| n.next_ns).min()
    }

    /// Held notifications grouped by (recipient, channel, address), with the oldest's time.
    pub fn held(&self) -> Vec<Held> {
        let mut groups: Vec<Held> = Vec::new();
        for n in self.list.iter().filter(|n| n.status == Status::Held) {
            let key = (n.recipient.clone(), n.channel, n.to.clone());
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => {
                    g.1 = g.1.min(n.created_ns);
                    g.2.push(n.id);
                }
                None => groups.push((key, n.created_ns, vec![n.id])),
            }
        }
        groups
    }

    /// A notification by id.
    pub fn find(&self, id: u64) -> Option<&Notification> {
        self.get(id)
    }

    /// Every notification, newest first, that `keep` accepts, at most `limit`.
    pub fn list(&self, keep: impl Fn(&Notification) -> bool, limit: usize) -> Vec<Notification> {
        self.list.iter().rev().filter(|n| keep(n)).take(limit).cloned().collect()
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// `fired:7` → `("fired", 7)`, for the keys of an alert.
fn alert_key(key: &str) -> Option<(&str, u64)> {
    let (kind, id) = key.split_once(':')?;
    matches!(kind, "fired" | "resolved" | "escalated").then_some(())?;
    Some((kind, id.parse().ok()?))
}

/// Held notifications of one (recipient, channel, address): when the oldest was made, and
/// their ids.
pub type Held = ((String, Channel, String), i64, Vec<u64>);

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Taken: the channel's answer.
    Sent(String),
    /// Not now: try again at `next_ns`.
    Retry {
        /// The channel's answer or the error.
        answer: String,
        /// When to try again.
        next_ns: i64,
    },
    /// Refused for good.
    Failed(String),
}

/// A random UUID (version 4), for LINE's `X-Line-Retry-Key`.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: a key from the clock still differs per notification.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u64, status: Status) -> Notification {
        Notification {
            id,
            recipient: "r".into(),
            channel: Channel::Email,
            to: "a@b.th".into(),
            purpose: Purpose::Fired,
            alert: Some(id),
            factory: Some("f1".into()),
            subject: "s".into(),
            text: "t".into(),
            html: String::new(),
            line: String::new(),
            created_ns: 10,
            status,
            attempts: 0,
            next_ns: 0,
            answer: None,
            done_ns: None,
            into: None,
            retry_key: uuid_v4(),
        }
    }

    #[test]
    fn what_is_not_sent_is_queued_again_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Outbox::open(dir.path()).expect("open");
        o.queue(vec![n(1, Status::Queued), n(2, Status::Queued), n(3, Status::Held)], &["fire:1".into()])
            .expect("queue");
        o.record(1, Outcome::Sent("250 ok".into()), 20).expect("sent");
        o.record(2, Outcome::Retry { answer: "connection refused".into(), next_ns: 99 }, 20).expect("retry");
        drop(o);
        let mut o = Outbox::open(dir.path()).expect("reopen");
        assert!(o.told("fire:1") && !o.told("fire:2"));
        assert_eq!(o.due(98).len(), 0);
        let due = o.due(99);
        assert_eq!((due.len(), due[0].id, due[0].attempts), (1, 2, 1));
        assert_eq!(o.find(1).map(|n| n.status), Some(Status::Sent));
        assert_eq!(o.held().len(), 1);
        o.merge(vec![3], n(4, Status::Queued)).expect("merge");
        o.record(4, Outcome::Failed("550 no such user".into()), 30).expect("failed");
        drop(o);
        let o = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(o.find(3).map(|n| (n.status, n.into)), Some((Status::Summarised, Some(4))));
        assert_eq!(o.find(4).map(|n| n.status), Some(Status::Failed));
        // Fired, queued and not held: 1, 2 and the summary 4 count against the rate limit.
        let mut o = o;
        assert_eq!(o.recent("r", "a@b.th", 0), 3);
    }

    fn lines(o: &Outbox) -> usize {
        std::fs::read_to_string(o.path()).expect("log").lines().count()
    }

    #[test]
    fn compaction_keeps_what_is_unfinished_the_newest_finished_the_keys_checked_and_the_rate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Outbox::open(dir.path()).expect("open");
        // 1..=1500 finished (sent), 1501 queued, 1502 held, then 1503 summarising 1502 and
        // still queued: 1503 notifications, 1 + 1 not finished.
        let mut list: Vec<Notification> = (1..=1502).map(|id| n(id, Status::Queued)).collect();
        list[1501].status = Status::Held;
        for (i, x) in list.iter_mut().enumerate() {
            x.created_ns = 1000 + i as i64;
        }
        let told: Vec<String> = vec![
            "fired:1".into(),
            "resolved:1".into(),
            "escalated:1".into(),
            "fired:2".into(),
            "escalated:2".into(),
            "fired:3".into(),
            "fired:4".into(),
            "digest:r:x:2026-12-05".into(),
            "digest:r:x:2026-12-06".into(),
        ];
        o.queue(list, &told).expect("queue");
        for id in 1..=1500 {
            o.record(id, Outcome::Sent("250 ok".into()), 5000).expect("sent");
        }
        let mut summary = n(1503, Status::Queued);
        summary.purpose = Purpose::Summary;
        summary.created_ns = 4000;
        o.merge(vec![1502], summary).expect("merge");
        // 1502 queue, 9 told, 1500 sent, 2 of the merge.
        assert_eq!((o.lines, lines(&o)), (3013, 3013));
        assert!(!o.needs_compaction());
        assert_eq!(o.untold_resolutions(), BTreeSet::from([2, 3, 4]));
        // Alert 3 resolved and gone; 2 and 4 live. Rate window from 2400: counted are the
        // queued ones created 2400..=2500 (ids 1401..=1501) and the summary at 4000.
        o.compact("2026-12-06", 2400, &BTreeSet::from([3])).expect("compact");
        // Finished: 1..=1500 sent and 1502 summarised; kept: the newest 1000 of them (1502,
        // 502..=1500) and 1501, 1503. Lines: next, 1002 notifications, 4 keys, 1 address.
        assert_eq!((o.lines, o.kept_lines, lines(&o)), (1008, 1008, 1008));
        let ids: Vec<u64> = o.list(|_| true, usize::MAX).iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 1002);
        assert_eq!((ids[0], ids[1], ids[2], ids[1001]), (1503, 1502, 1501, 502));
        assert_eq!(o.next_id(), 1504);
        let keys: Vec<&str> = o.told.iter().map(String::as_str).collect();
        assert_eq!(keys, ["digest:r:x:2026-12-06", "escalated:2", "fired:2", "fired:4"]);
        assert_eq!(o.recent("r", "a@b.th", 0), 102);
        assert!(!dir.path().join("outbox.log.tmp").exists());
        // Appends go to the compacted log, and a reopen reads the same.
        o.record(1501, Outcome::Sent("250 ok".into()), 6000).expect("sent");
        drop(o);
        let mut o = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(o.list(|_| true, usize::MAX).len(), 1002);
        assert_eq!(o.find(1501).map(|n| n.status), Some(Status::Sent));
        assert_eq!(o.find(1502).map(|n| (n.status, n.into)), Some((Status::Summarised, Some(1503))));
        assert_eq!((o.find(501), o.find(502).map(|n| n.id)), (None, Some(502)));
        assert_eq!((o.next_id(), o.due(i64::MAX).len()), (1504, 1));
        assert!(o.told("fired:2") && o.told("fired:4") && !o.told("fired:1") && !o.told("fired:3"));
        assert!(o.told("digest:r:x:2026-12-06") && !o.told("digest:r:x:2026-12-05"));
        assert_eq!(o.recent("r", "a@b.th", 0), 102);
        assert_eq!(o.recent("r", "a@b.th", 2451), 51);
        assert_eq!(o.lines, 1009);
    }

    #[test]
    fn compaction_comes_once_the_log_grew_by_what_it_kept_and_ids_go_on_when_nothing_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Outbox::open(dir.path()).expect("open");
        let keys = |from: u64, to: u64| (from..to).map(|i| format!("resolved:{i}")).collect::<Vec<String>>();
        o.queue(vec![n(1, Status::Queued)], &keys(0, 4093)).expect("queue");
        o.record(1, Outcome::Failed("550 no".into()), 20).expect("failed");
        assert!(!o.needs_compaction(), "4095 lines");
        o.queue(vec![], &["fired:9999".into()]).expect("queue");
        assert!(o.needs_compaction(), "4096 lines");
        o.compact("2026-12-06", 0, &BTreeSet::new()).expect("compact");
        // next, the failed notification, fired:9999 (its resolution untold), its address.
        assert_eq!(lines(&o), 4);
        assert!(o.told("fired:9999") && !o.told("resolved:0"));
        o.list.clear();
        // Alert 9999 gone, the rate limit's time (10) out of the window.
        o.compact("2026-12-06", 11, &BTreeSet::from([9999])).expect("compact");
        assert_eq!(std::fs::read_to_string(o.path()).expect("log"), "{\"op\":\"next\",\"id\":2}\n");
        drop(o);
        let o = Outbox::open(dir.path()).expect("reopen");
        assert_eq!((o.next_id(), o.told.len(), o.list.len()), (2, 0, 0));
        // Counted from the start of the file at open: its line and 4095 more.
        let mut o = o;
        o.queue(vec![], &keys(0, 4094)).expect("queue");
        assert!(!o.needs_compaction(), "4095 lines");
        o.queue(vec![], &keys(5000, 5001)).expect("queue");
        assert!(o.needs_compaction(), "4096 lines");
        // A compaction that cannot write leaves the log as it was and waits for it to double.
        std::fs::create_dir(dir.path().join("outbox.log.tmp")).expect("mkdir");
        let before = std::fs::read_to_string(o.path()).expect("log");
        let error = o.compact("2026-12-06", 0, &BTreeSet::new()).expect_err("a directory in the way");
        assert!(error.to_string().contains("outbox.log.tmp"), "{error}");
        assert_eq!(std::fs::read_to_string(o.path()).expect("log"), before);
        assert_eq!((o.told.len(), o.lines), (4095, 4096));
        assert!(!o.needs_compaction());
        o.queue(vec![], &keys(6000, 6000 + 4095)).expect("queue");
        assert!(!o.needs_compaction(), "8191 lines");
        o.queue(vec![], &keys(20_000, 20_001)).expect("queue");
        assert!(o.needs_compaction(), "8192 lines");
    }

    #[test]
    fn a_compaction_left_unfinished_is_removed_at_open_and_a_log_of_the_format_before_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Operations as written before compaction existed (no `next`, no `recent`).
        let mut a = n(1, Status::Queued);
        a.retry_key = "k1".into();
        let queue = serde_json::to_string(&serde_json::json!({"op": "queue", "n": a})).expect("json");
        let log = format!(
            "{queue}\n{}\n{}\n",
            r#"{"op":"sent","id":1,"at_ns":20,"answer":"250 ok"}"#, r#"{"op":"told","key":"fired:1"}"#
        );
        std::fs::write(dir.path().join("outbox.log"), &log).expect("write");
        std::fs::write(dir.path().join("outbox.log.tmp"), "{\"op\":\"next\",\"id\":1}\n").expect("write");
        let mut o = Outbox::open(dir.path()).expect("open");
        assert!(!dir.path().join("outbox.log.tmp").exists());
        assert_eq!(std::fs::read_to_string(o.path()).expect("log"), log);
        assert_eq!((o.next_id(), o.lines, o.find(1).map(|n| n.status)), (2, 3, Some(Status::Sent)));
        assert!(o.told("fired:1"));
        assert_eq!(o.recent("r", "a@b.th", 0), 1);
    }

    #[test]
    fn a_uuid_has_version_4_and_its_variant() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]), "{u}");
    }
}
