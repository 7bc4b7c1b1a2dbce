//! The canonical reading: one value of one parameter at one point at one instant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What is measured, which is also the line-protocol measurement name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Water leaving a factory through an outfall.
    Effluent,
    /// Gas leaving a stack.
    Emission,
    /// Ambient air or water around the area.
    Ambient,
}

impl Kind {
    /// Every kind, for error messages.
    pub const ALL: [Kind; 3] = [Kind::Effluent, Kind::Emission, Kind::Ambient];

    /// The line-protocol measurement name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Effluent => "effluent",
            Kind::Emission => "emission",
            Kind::Ambient => "ambient",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind \"{s}\", expected one of: effluent, emission, ambient"))
    }
}

/// How far a reading may be trusted. Only `valid` readings count for compliance;
/// `maintenance` and `calibration` are kept and shown but excluded from judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Measured normally.
    #[default]
    Valid,
    /// Measured, but doubtful (outside the plausible range, a stale register).
    Suspect,
    /// Not a measurement (device error, Modbus exception).
    Invalid,
    /// The instrument was under maintenance.
    Maintenance,
    /// The instrument was being calibrated.
    Calibration,
}

impl Quality {
    /// Every quality, for error messages.
    pub const ALL: [Quality; 5] =
        [Quality::Valid, Quality::Suspect, Quality::Invalid, Quality::Maintenance, Quality::Calibration];

    /// The name used in line protocol and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Valid => "valid",
            Quality::Suspect => "suspect",
            Quality::Invalid => "invalid",
            Quality::Maintenance => "maintenance",
            Quality::Calibration => "calibration",
        }
    }

    /// Whether a reading of this quality takes part in a compliance judgement.
    pub fn is_judged(self) -> bool {
        self == Quality::Valid
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Quality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quality::ALL.into_iter().find(|q| q.as_str() == s).ok_or_else(|| {
            format!("unknown quality \"{s}\", expected one of: valid, suspect, invalid, maintenance, calibration")
        })
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An online instrument (analyser, meter, CEMS).
    #[default]
    Instrument,
    /// A laboratory result for a grab sample.
    Lab,
}

/// One measured value. `value` is in the catalog's canonical unit for `(kind, parameter)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Effluent, emission or ambient.
    pub kind: Kind,
    /// Factory id from the site registry.
    pub factory: String,
    /// Monitoring point id (outfall, stack) within the factory.
    pub point: String,
    /// Catalog parameter code.
    pub parameter: String,
    /// The value, in the canonical unit. For a lab result below the detection limit, the limit.
    pub value: f64,
    /// When it was measured: nanoseconds since the Unix epoch, UTC.
    pub time_ns: i64,
    /// How far it may be trusted.
    pub quality: Quality,
    /// Instrument or laboratory.
    pub source: Source,
    /// A lab result below its detection limit ("not detected"); `value` is then the limit.
    pub below_detection_limit: bool,
}

impl Reading {
    /// A valid instrument reading.
    pub fn new(kind: Kind, factory: &str, point: &str, parameter: &str, value: f64, time_ns: i64) -> Reading {
        Reading {
            kind,
            factory: factory.to_string(),
            point: point.to_string(),
            parameter: parameter.to_string(),
            value,
            time_ns,
            quality: Quality::Valid,
            source: Source::Instrument,
            below_detection_limit: false,
        }
    }

    /// The same reading with another quality.
    pub fn with_quality(mut self, quality: Quality) -> Reading {
        self.quality = quality;
        self
    }
}
