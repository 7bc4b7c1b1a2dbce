//! Raw source values → canonical readings: the catalog's unit, and the plausible range
//! (outside it a value is kept but marked `suspect`).

use std::collections::HashMap;

use eitwatch_config::agent_config::AgentConfig;
use eitwatch_config::reading::{Kind, Quality, Reading, Source};
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

/// Normalises raw values for the agent's factory: the points indexed once, and each raw
/// value's strings moved into its reading instead of copied (the sources' hot path).
#[derive(Debug, Clone)]
pub struct Normaliser {
    factory: String,
    kinds: HashMap<String, Kind>,
}

impl Normaliser {
    /// Indexes the points of `config`.
    pub fn new(config: &AgentConfig) -> Normaliser {
        Normaliser {
            factory: config.agent.factory.clone(),
            kinds: config.point.iter().map(|p| (p.id.clone(), p.kind)).collect(),
        }
    }

    /// Normalises one raw value; on error the raw value comes back, so that the caller can
    /// name its point and parameter in its log line.
    pub fn normalise(&self, raw: Raw) -> Result<Reading, Box<(NormaliseError, Raw)>> {
        let Some(&kind) = self.kinds.get(&raw.point) else {
            return Err(Box::new((NormaliseError::UnknownPoint(raw.point.clone()), raw)));
        };
        let (value, quality) = match canonical(kind, &raw) {
            Ok(c) => c,
            Err(e) => return Err(Box::new((e, raw))),
        };
        Ok(Reading {
            kind,
            factory: self.factory.clone(),
            point: raw.point,
            parameter: raw.parameter,
            value,
            time_ns: raw.time_ns,
            quality,
            source: Source::Instrument,
            below_detection_limit: false,
        })
    }
}

/// The value in the catalog's canonical unit, and its quality.
fn canonical(kind: Kind, raw: &Raw) -> Result<(f64, Quality), NormaliseError> {
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
    Ok((value, quality))
}
