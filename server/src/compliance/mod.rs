//! Continuous compliance: every limit judged as a regulator would, from the readings ingest
//! accepted and the gap records agents sent. The engine only judges: it returns conditions
//! (what holds now), flashes (what a batch just judged exceeding) and revisions (periods
//! re-judged by late data); [`crate::monitor`] runs it on its own thread and feeds the alert
//! book and the event stream from what it returns.
//!
//! - [`period`]: Bangkok calendar periods, expected readings, availability;
//! - [`judge`]: limits per series (standards, permits), units, O₂ correction, bounds;
//! - [`engine`]: judged periods, late-data revisions, episodes, availability, conditions;
//! - faults (flatline, spike, implausible) and deadlines (the fault-notification clock);
//! - [`clock`]: the time judgements are stamped with (the system's, or a manual one in tests);
//! - [`checkpoint`] and [`days`]: the engine's open state and its closed days on disk.
//!
//! The engine is deterministic: the same readings, gaps and corrections give the same periods,
//! so a start from its checkpoint and the log after it equals a rebuild from the whole store.

pub mod checkpoint;
pub mod clock;
mod columns;
pub mod days;
mod deadlines;
pub mod engine;
mod faults;
mod grab;
pub mod judge;
pub mod period;
#[cfg(test)]
pub(crate) mod tests;
mod timeline;

use std::path::Path;

pub use checkpoint::{Applied, CheckpointError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use days::DayFiles;
pub use engine::{
    AlertKind, Condition, CorrectionInfo, DayAvailability, Engine, Episode, Filter, GapInfo, Incident, Judgement,
    Latest, Measured, Outcome, Period, PeriodView, Revision, SeriesId, SeriesStatus, Settings, Severity,
};
pub use judge::LimitUsed;

/// Reads the revision log back; a torn last line is skipped (and cut when the log is opened).
pub fn load_revisions(path: &Path) -> std::io::Result<Vec<Revision>> {
    crate::jsonl::read(path)
}
