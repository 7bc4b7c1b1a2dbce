//! The durable outbox and delivery log: `<data_dir>/notify/outbox.log`, one JSON operation a
//! line, synced before it counts. A notification is queued (or held by the rate limit) before
//! anything is sent, so a crash or a channel down loses none: at the next start every
//! notification not yet sent or given up is delivered again. The same log is the delivery log
//! (`GET /api/v1/notifications`) and remembers what was told already (an alert's firing,
//! resolution, escalation; a recipient's digest of a day), so a restart tells nothing twice.

use std::collections::{BTreeSet, HashMap, VecDeque};
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
}

/// The outbox's state: every notification, and what was told.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    file: std::fs::File,
    list: Vec<Notification>,
    told: BTreeSet<String>,
    /// Creation times of the notifications counted by the rate limit, per (recipient, address).
    recent: HashMap<(String, String), VecDeque<i64>>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("outbox.log");
        let mut outbox = Outbox {
            file: crate::jsonl::open(&path)?,
            path,
            list: Vec::new(),
            told: BTreeSet::new(),
            recent: HashMap::new(),
        };
        for op in crate::jsonl::read::<Op>(&outbox.path)? {
            outbox.apply(op);
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

    fn get(&self, id: u64) -> Option<&Notification> {
        // Ids are given in order from 1.
        let at = usize::try_from(id).ok()?.checked_sub(1)?;
        self.list.get(at).filter(|n| n.id == id).or_else(|| self.list.iter().find(|n| n.id == id))
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Notification> {
        let at = usize::try_from(id).ok()?.checked_sub(1)?;
        if self.list.get(at).is_some_and(|n| n.id == id) {
            return self.list.get_mut(at);
        }
        self.list.iter_mut().find(|n| n.id == id)
    }

    fn write(&mut self, ops: &[Op]) -> std::io::Result<()> {
        crate::jsonl::append(&mut self.file, ops)
    }

    /// The next id.
    pub fn next_id(&self) -> u64 {
        self.list.last().map_or(1, |n| n.id + 1)
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

    #[test]
    fn a_uuid_has_version_4_and_its_variant() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]), "{u}");
    }
}
