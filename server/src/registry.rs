//! The site registry managed through the API: areas, factories (DIW registration number,
//! category), monitoring points and permits, created and updated with an admin token, every
//! change recorded with who (the token's id) and when.
//!
//! A [`Change`] is an upsert by id (a permit by reference, point and parameter) of an area,
//! a factory, a point or a permit; changes are applied whole or not at all, and the
//! resulting registry is validated as a config file is, every problem named. A registry
//! file (`[[area]]` tables, the schema of `server.toml`'s registry) amounts to one change per
//! area, factory, point and permit in it ([`changes_of`]). The API is in [`crate::http`].
//!
//! On disk: `<data_dir>/registry.log`, append-only JSON lines, synced before the answer. The
//! current registry is `server.toml`'s areas with the log replayed over them. The compliance
//! registry is replaced whole once the change is on disk ([`crate::App::set_registry`]):
//! ingest, gap records, the board, indicators, deviations and the compliance engine use it
//! at once, and a restart starts from it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eitwatch_config::Catalog;
use eitwatch_config::problems::{Problems, Validate};
use eitwatch_config::site::{Area, Factory, Permit, Point, Registry, validate_areas};
use serde::{Deserialize, Serialize};

/// One change of the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create or update an area (its factories are kept).
    Area {
        /// Id.
        id: String,
        /// Name in English.
        name_en: String,
        /// Name in Thai.
        name_th: String,
        /// Province.
        province: String,
        /// EIT phase.
        #[serde(default)]
        phase: Option<u8>,
    },
    /// Create or update a factory in an area (its points and permits are kept).
    Factory {
        /// The area it belongs to.
        area: String,
        /// Id.
        id: String,
        /// Name as registered.
        name: String,
        /// DIW registration number.
        #[serde(default)]
        diw_registration: Option<String>,
        /// Category 1, 2 or 3.
        category: u8,
    },
    /// Create or replace a monitoring point of a factory.
    Point {
        /// The factory.
        factory: String,
        /// The point, as in `server.toml`.
        point: Point,
    },
    /// Create or replace a permit of a factory (same reference, point and parameter).
    Permit {
        /// The factory.
        factory: String,
        /// The permit, as in `server.toml`.
        permit: Permit,
    },
}

/// A recorded change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// When (server clock), ns.
    pub at_ns: i64,
    /// When, Bangkok time.
    pub at_local: String,
    /// Who: `admin token <id>`.
    pub by: String,
    /// What.
    pub change: Change,
}

/// Applies one change to a list of areas; the caller validates the result.
pub fn apply(areas: &mut Vec<Area>, change: &Change) -> Result<(), String> {
    let factory_mut = |areas: &mut Vec<Area>, id: &str| -> Result<usize, String> {
        areas
            .iter()
            .position(|a| a.factory.iter().any(|f| f.id == id))
            .ok_or_else(|| format!("factory: \"{id}\" is not registered"))
    };
    match change.clone() {
        Change::Area { id, name_en, name_th, province, phase } => match areas.iter_mut().find(|a| a.id == id) {
            Some(a) => (a.name_en, a.name_th, a.province, a.phase) = (name_en, name_th, province, phase),
            None => areas.push(Area { id, name_en, name_th, province, phase, factory: Vec::new() }),
        },
        Change::Factory { area, id, name, diw_registration, category } => {
            if let Some(other) = areas.iter().find(|a| a.id != area && a.factory.iter().any(|f| f.id == id)) {
                return Err(format!("id: factory \"{id}\" is registered in area \"{}\"", other.id));
            }
            let a =
                areas.iter_mut().find(|a| a.id == area).ok_or_else(|| format!("area: \"{area}\" is not registered"))?;
            match a.factory.iter_mut().find(|f| f.id == id) {
                Some(f) => (f.name, f.diw_registration, f.category) = (name, diw_registration, category),
                None => a.factory.push(Factory {
                    id,
                    name,
                    diw_registration,
                    category,
                    point: Vec::new(),
                    permit: Vec::new(),
                }),
            }
        }
        Change::Point { factory, point } => {
            let a = factory_mut(areas, &factory)?;
            let f = areas[a].factory.iter_mut().find(|f| f.id == factory).ok_or("factory vanished")?;
            match f.point.iter_mut().find(|p| p.id == point.id) {
                Some(p) => *p = point,
                None => f.point.push(point),
            }
        }
        Change::Permit { factory, permit } => {
            let a = factory_mut(areas, &factory)?;
            let f = areas[a].factory.iter_mut().find(|f| f.id == factory).ok_or("factory vanished")?;
            let same = |p: &Permit| {
                p.reference == permit.reference && p.point == permit.point && p.parameter == permit.parameter
            };
            match f.permit.iter_mut().find(|p| same(p)) {
                Some(p) => *p = permit,
                None => f.permit.push(permit),
            }
        }
    }
    Ok(())
}

/// Applies changes in order and validates the result as a config file's registry is.
pub fn apply_all(mut areas: Vec<Area>, changes: &[Change]) -> Result<Vec<Area>, Vec<String>> {
    let mut problems = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if let Err(e) = apply(&mut areas, c) {
            problems.push(format!("change {i}: {e}"));
        }
    }
    let mut p = Problems::default();
    validate_areas(&areas, "area", Catalog::builtin(), &mut p);
    problems.extend(p.list.into_iter().map(|p| format!("{}: {}", p.path, p.message)));
    if problems.is_empty() { Ok(areas) } else { Err(problems) }
}

/// Every change a registry file (`[[area]]` tables) amounts to, in file order.
pub fn changes_of(areas: &[Area]) -> Vec<Change> {
    let mut out = Vec::new();
    for a in areas {
        out.push(Change::Area {
            id: a.id.clone(),
            name_en: a.name_en.clone(),
            name_th: a.name_th.clone(),
            province: a.province.clone(),
            phase: a.phase,
        });
        for f in &a.factory {
            out.push(Change::Factory {
                area: a.id.clone(),
                id: f.id.clone(),
                name: f.name.clone(),
                diw_registration: f.diw_registration.clone(),
                category: f.category,
            });
            out.extend(f.point.iter().map(|p| Change::Point { factory: f.id.clone(), point: p.clone() }));
            out.extend(f.permit.iter().map(|p| Change::Permit { factory: f.id.clone(), permit: p.clone() }));
        }
    }
    out
}

/// A registry file: `[[area]]` tables as in `server.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// The areas.
    #[serde(default)]
    pub area: Vec<Area>,
}

impl Validate for RegistryFile {
    fn validate(&self, problems: &mut Problems) {
        validate_areas(&self.area, "area", Catalog::builtin(), problems);
    }
}

/// The append-only change log.
#[derive(Debug)]
pub struct RegistryLog {
    path: PathBuf,
}

/// One writer at a time per process: the sequence is the line count.
static WRITE: Mutex<()> = Mutex::new(());

impl RegistryLog {
    /// The log of a data directory.
    pub fn new(data_dir: &Path) -> RegistryLog {
        RegistryLog { path: data_dir.join("registry.log") }
    }

    /// Every entry, oldest first; a torn last line (never answered) is skipped.
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        crate::jsonl::read(&self.path)
    }

    /// Applies changes over the current registry (`base` with the log replayed) and, when the
    /// result is valid, records them: all or none. Returns the new areas.
    pub fn record(
        &self,
        base: &[Area],
        changes: Vec<Change>,
        by: &str,
        now_ns: i64,
    ) -> std::io::Result<Result<Vec<Area>, Vec<String>>> {
        let _guard = WRITE.lock().unwrap_or_else(|p| p.into_inner());
        let entries = self.entries()?;
        let areas = match apply_all(replay(base, &entries), &changes) {
            Ok(a) => a,
            Err(problems) => return Ok(Err(problems)),
        };
        let recorded: Vec<Entry> = changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| Entry {
                seq: entries.len() as u64 + i as u64 + 1,
                at_ns: now_ns,
                at_local: crate::compliance::period::local(now_ns),
                by: by.to_string(),
                change,
            })
            .collect();
        crate::jsonl::append(&mut crate::jsonl::open(&self.path)?, &recorded)?;
        Ok(Ok(areas))
    }
}

/// The current registry: `base` (server.toml's areas) with the log of `data_dir` replayed.
/// A logged change that no longer applies (server.toml changed under it) is skipped, logged.
pub fn current(base: &[Area], data_dir: &Path) -> std::io::Result<Vec<Area>> {
    Ok(replay(base, &RegistryLog::new(data_dir).entries()?))
}

fn replay(base: &[Area], entries: &[Entry]) -> Vec<Area> {
    let mut areas = base.to_vec();
    for e in entries {
        let mut next = areas.clone();
        match apply(&mut next, &e.change) {
            Ok(()) => areas = next,
            Err(error) => tracing::warn!(seq = e.seq, %error, "A registry change no longer applies; skipped"),
        }
    }
    areas
}

/// The current registry of a running server, for the API handlers that read it.
pub fn current_of(app: &crate::App) -> std::sync::Arc<Registry> {
    app.registry()
}

#[cfg(test)]
mod tests;
