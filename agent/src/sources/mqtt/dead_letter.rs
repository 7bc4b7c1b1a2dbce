//! MQTT messages a source cannot take: over `max_message_bytes`, undecodable, or on a topic
//! no subscription template matches. Each is acknowledged like any other message (a message
//! the broker sent again forever would stop the source for good) and recorded instead of
//! stored: one JSON line in `<data_dir>/mqtt-dead-letters.jsonl` with its time, source,
//! topic, size, reason and first bytes, written and fsynced before the acknowledgement, and
//! counted per source and reason for `/metrics`.
//!
//! The file is bounded: past [`ROTATE_BYTES`] it becomes `mqtt-dead-letters.jsonl.1`
//! (replacing the one before), so a publisher sending nothing but bad messages cannot fill
//! the disk the outbox needs.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::excerpt;

/// Size past which the file is rotated.
pub const ROTATE_BYTES: u64 = 1 << 20;

/// Why a message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Its payload is over the source's `max_message_bytes`.
    TooLarge,
    /// Its payload does not decode as the subscription's payload format says.
    Malformed,
    /// Its topic matches no subscription template.
    Unrouted,
}

impl Reason {
    /// Every reason, in the order of the metric's rows.
    pub const ALL: [Reason; 3] = [Reason::TooLarge, Reason::Malformed, Reason::Unrouted];

    /// The name in the file and the metric's `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
            Reason::Unrouted => "unrouted",
        }
    }
}

/// One message not taken: a line of the file.
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetter {
    pub(crate) time: String,
    pub(crate) source: String,
    pub(crate) topic: String,
    pub(crate) bytes: usize,
    pub(crate) reason: Reason,
    /// The reason in words (the decoder's error, the limit exceeded).
    pub(crate) detail: String,
    /// The payload's first bytes, printable.
    pub(crate) excerpt: String,
}

impl DeadLetter {
    pub(crate) fn new(source: &str, topic: &str, payload: &[u8], reason: Reason, detail: String) -> DeadLetter {
        DeadLetter {
            time: jiff::Timestamp::now().to_string(),
            source: source.to_string(),
            topic: topic.to_string(),
            bytes: payload.len(),
            reason,
            detail,
            excerpt: excerpt(payload),
        }
    }
}

/// The dead-letter file and the counts, shared by every MQTT source of the agent.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    counts: Mutex<BTreeMap<(String, Reason), u64>>,
    /// Held while writing, so that two sources do not rotate the file at once.
    file: Mutex<()>,
}

impl DeadLetters {
    /// Dead letters of `sources` (their names: each has a zero count from the start), kept in
    /// `data_dir`.
    pub fn new<'a>(data_dir: &Path, sources: impl IntoIterator<Item = &'a str>) -> DeadLetters {
        let counts = sources.into_iter().flat_map(|s| Reason::ALL.map(|r| ((s.to_string(), r), 0))).collect();
        DeadLetters { path: data_dir.join("mqtt-dead-letters.jsonl"), counts: Mutex::new(counts), file: Mutex::new(()) }
    }

    /// The file the dead letters go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts per (source, reason), in that order.
    pub fn counts(&self) -> Vec<(String, Reason, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().map(|((s, r), n)| (s.clone(), *r, *n)).collect()
    }

    /// Counts `letters` and appends them to the file, durably, off the runtime's thread.
    pub(crate) async fn record(self: &Arc<Self>, letters: Vec<DeadLetter>) -> std::io::Result<()> {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            for l in &letters {
                *counts.entry((l.source.clone(), l.reason)).or_insert(0) += 1;
            }
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.append(&letters)).await.map_err(std::io::Error::other)?
    }

    fn append(&self, letters: &[DeadLetter]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for l in letters {
            serde_json::to_writer(&mut text, l)?;
            text.push(b'\n');
        }
        let _writing = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= ROTATE_BYTES) {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, rotated)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&text)?;
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dead_letters_are_counted_written_as_json_lines_and_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let letters = Arc::new(DeadLetters::new(dir.path(), ["plant"]));
        let big = vec![b'x'; 3000];
        letters
            .record(vec![DeadLetter::new("plant", "f1/o1/cod", &big, Reason::TooLarge, "over 1024".into())])
            .await
            .expect("record");
        let text = std::fs::read_to_string(letters.path()).expect("file");
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON line");
        assert_eq!(line["topic"], "f1/o1/cod");
        assert_eq!(line["bytes"], 3000);
        assert_eq!(line["reason"], "too_large");
        assert_eq!(line["source"], "plant");
        let counts = letters.counts();
        assert!(counts.contains(&("plant".into(), Reason::TooLarge, 1)), "{counts:?}");
        assert!(counts.contains(&("plant".into(), Reason::Malformed, 0)), "{counts:?}");

        // Past the bound the file starts again, the old one kept beside it.
        let many: Vec<DeadLetter> = (0..ROTATE_BYTES / 100)
            .map(|_| DeadLetter::new("plant", "t", b"{", Reason::Malformed, "x".repeat(100)))
            .collect();
        letters.record(many).await.expect("record");
        letters
            .record(vec![DeadLetter::new("plant", "last", b"", Reason::Unrouted, String::new())])
            .await
            .expect("record");
        let rotated = dir.path().join("mqtt-dead-letters.jsonl.1");
        assert!(std::fs::metadata(&rotated).expect("rotated").len() >= ROTATE_BYTES);
        let now = std::fs::read_to_string(letters.path()).expect("file");
        assert_eq!(now.lines().count(), 1, "{now}");
        assert!(now.contains("\"topic\":\"last\""), "{now}");
    }
}
