//! The gap record: readings an agent's outbox had to drop (it was full during an outage),
//! told to the server instead of them, so that the periods they belong to are judged
//! "insufficient data" and never mistaken for compliance.
//!
//! Agents send it as JSON on `POST /api/v1/gaps` (`{"gaps": [Gap, …]}`), and to an InfluxDB
//! sink as a `gap` line.

use serde::{Deserialize, Serialize};

/// What an agent's outbox had to drop: one point's readings over a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    /// Unique per agent outbox: outbox id, first dropped id, point.
    pub id: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// `effluent`, `emission` or `ambient`.
    pub kind: String,
    /// Parameters that had readings dropped, sorted.
    pub parameters: Vec<String>,
    /// Time of the oldest dropped reading, ns since the epoch.
    pub from_ns: i64,
    /// Time of the newest dropped reading, ns since the epoch.
    pub to_ns: i64,
    /// Readings dropped.
    pub count: u64,
    /// Why (`agent buffer overflow`).
    pub reason: String,
}
