//! Raw source values → canonical readings: the catalog's unit, and the plausible range
//! (outside it a value is kept but marked `suspect`).

use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::reading::{Quality, Reading};
use eitwatch_config::{Catalog, catalog::UnitError};

/// A value as a source read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// Point id.
    pub point: String,
    /// Parameter code.
    pub parameter: String,
    /// Value in `unit`.
    pub value: f64,
    /// The unit the source reported; empty: already the catalog's canonical unit (line
    /// protocol carries canonical units).
    pub unit: String,
    /// When it was measured, ns since the epoch.
    pub time_ns: i64,
    /// Quality the source reported.
    pub quality: Quality,
}

/// Why a raw value could not become a reading.
#[derive(Debug, thiserror::Error)]
pub enum NormaliseError {
    /// The point is not one of the agent's.
    #[error("unknown point \"{0}\"")]
    UnknownPoint(String),
    /// Unknown parameter or unit.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// NaN or infinite.
    #[error("{parameter}: {value} is not a finite number")]
    NotFinite {
        /// Parameter.
        parameter: String,
        /// Value.
        value: f64,
    },
}

/// Normalises one raw value for the agent's factory.
/// Borrows the raw value: the caller keeps it to name point and parameter in its log line
/// when it cannot be normalised, without a copy of every value that can.
pub fn normalise(config: &AgentConfig, raw: &Raw) -> Result<Reading, NormaliseError> {
    let kind = config.point_kind(&raw.point).ok_or_else(|| NormaliseError::UnknownPoint(raw.point.clone()))?;
    if !raw.value.is_finite() {
        return Err(NormaliseError::NotFinite { parameter: raw.parameter.clone(), value: raw.value });
    }
    let catalog = Catalog::builtin();
    let value = match raw.unit.is_empty() {
        true => catalog.require(kind, &raw.parameter).map(|_| raw.value)?,
        false => catalog.to_canonical(kind, &raw.parameter, raw.value, &raw.unit)?,
    };
    let mut quality = raw.quality;
    if quality == Quality::Valid && !catalog.is_plausible(kind, &raw.parameter, value) {
        quality = Quality::Suspect;
    }
    let mut reading = Reading::new(kind, &config.agent.factory, &raw.point, &raw.parameter, value, raw.time_ns);
    reading.quality = quality;
    Ok(reading)
}
