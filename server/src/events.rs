//! Live events: alert changes and period revisions, broadcast to the live stream
//! (`GET /api/v1/events`) and to the webhooks.
//!
//! Every event gets an id, increasing by one. The first id of a run is the server's start
//! time in microseconds, so ids keep increasing across restarts and an id from before a
//! restart is recognisably older than anything the server still holds. The last
//! [`REPLAY_EVENTS`] events are kept in memory: a client that reconnects with the last id it
//! saw (`Last-Event-ID`) is sent what it missed, and one whose id is beyond what is kept is
//! told to reload (the API has the full history).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// How many of the latest events a reconnecting client can be replayed.
pub const REPLAY_EVENTS: usize = 10_000;

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Increasing by one per event.
    pub id: u64,
    /// `alert` or `revision`.
    pub kind: &'static str,
    /// The factory it concerns (for token scopes).
    pub factory: String,
    /// The JSON payload.
    pub data: Arc<str>,
}

/// What a client resuming after an id is owed.
#[derive(Debug)]
pub enum Resume {
    /// The events after its id (possibly none), oldest first.
    Replay(Vec<Event>),
    /// Its id is older than the oldest kept (or from no run of this server): it must reload.
    Reload {
        /// The newest event's id (0: none yet): the subscription's events follow it.
        newest: u64,
    },
}

#[derive(Debug)]
struct Ring {
    next_id: u64,
    kept: VecDeque<Event>,
    capacity: usize,
}

impl Ring {
    /// The events after `last_id`.
    fn after(&self, last_id: u64) -> Resume {
        let first_kept = self.kept.front().map_or(self.next_id, |e| e.id);
        // A client that saw `first_kept - 1` misses nothing kept; one older has lost events;
        // one from the future saw ids of a server run whose clock ran ahead.
        if last_id.saturating_add(1) < first_kept || last_id >= self.next_id {
            return Resume::Reload { newest: self.next_id - 1 };
        }
        let skip = (last_id + 1 - first_kept) as usize;
        Resume::Replay(self.kept.iter().skip(skip).cloned().collect())
    }
}

/// The broadcast of events, with the latest kept for replay.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    ring: Arc<Mutex<Ring>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// With room for a burst of 4096 events per subscriber and [`REPLAY_EVENTS`] kept.
    pub fn new() -> Events {
        let start_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Events::with(start_us, REPLAY_EVENTS)
    }

    /// Ids from `first_id`, the latest `capacity` events kept.
    pub fn with(first_id: u64, capacity: usize) -> Events {
        let ring = Ring { next_id: first_id.max(1), kept: VecDeque::new(), capacity: capacity.max(1) };
        Events { tx: broadcast::channel(4096).0, ring: Arc::new(Mutex::new(ring)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event (kept for replay even with no subscriber); its id.
    pub fn publish(&self, kind: &'static str, factory: &str, data: serde_json::Value) -> u64 {
        let mut ring = self.lock();
        let event = Event { id: ring.next_id, kind, factory: factory.to_string(), data: data.to_string().into() };
        ring.next_id += 1;
        if ring.kept.len() == ring.capacity {
            ring.kept.pop_front();
        }
        ring.kept.push_back(event.clone());
        // Sent under the lock: a subscriber taken with `resume` sees every event once, in order.
        let _ = self.tx.send(event);
        ring.next_id - 1
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// A new subscription and what was missed after `last_id`: the replay followed by the
    /// subscription's events is every event after `last_id`, each once.
    pub fn resume(&self, last_id: u64) -> (Resume, broadcast::Receiver<Event>) {
        let ring = self.lock();
        (ring.after(last_id), self.tx.subscribe())
    }

    /// The events after `last_id` (for a subscriber that fell behind its subscription).
    pub fn after(&self, last_id: u64) -> Resume {
        self.lock().after(last_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: Resume) -> Option<Vec<u64>> {
        match r {
            Resume::Replay(v) => Some(v.iter().map(|e| e.id).collect()),
            Resume::Reload { .. } => None,
        }
    }

    #[test]
    fn a_reconnect_gets_what_it_missed_and_beyond_the_ring_a_reload() {
        let events = Events::with(100, 3);
        for i in 0..5 {
            assert_eq!(events.publish("alert", "f1", serde_json::json!({ "n": i })), 100 + i);
        }
        // Kept: 102, 103, 104.
        assert_eq!(ids(events.after(104)), Some(vec![]));
        assert_eq!(ids(events.after(102)), Some(vec![103, 104]));
        assert_eq!(ids(events.after(101)), Some(vec![102, 103, 104]));
        assert_eq!(ids(events.after(100)), None, "101 fell out of the ring");
        assert_eq!(ids(events.after(105)), None, "an id not yet given is from another run");
        assert_eq!(ids(events.after(0)), None);
    }

    #[test]
    fn replay_then_subscription_is_every_event_once() {
        let events = Events::with(1, 10);
        events.publish("alert", "f1", serde_json::json!(1));
        let (resume, mut rx) = events.resume(0);
        events.publish("alert", "f1", serde_json::json!(2));
        assert_eq!(ids(resume), Some(vec![1]));
        assert_eq!(rx.try_recv().map(|e| e.id).ok(), Some(2));
        assert!(rx.try_recv().is_err());
    }
}
