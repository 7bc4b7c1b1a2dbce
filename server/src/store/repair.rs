//! Starting without a damaged segment, when the operator chooses to (`eitwatch-server
//! repair`): the store refuses to open over a missing, shortened, altered or undecodable
//! segment; [`find`] names the first such segment and what it held, and [`set_aside`] moves
//! it to `<store>/damaged/` (never deletes it: it is evidence, and an expert may recover
//! more of it) and records the drop in the manifest.
//!
//! What a segment held comes from its seal in the manifest, exactly (per series: oldest and
//! newest time, count). A segment that was never sealed (written by a process that crashed)
//! is known only by its records that still pass their checksums; the bytes that do not are
//! counted and reported as such.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use eitwatch_config::server_config::StoreSection;

use super::manifest::{self, SeriesSummary};
use super::{Store, StoreError, log};

/// A segment that stops the store from opening, and what it held.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// Segment number.
    pub segment: u64,
    /// Its file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: String,
    /// Per series, the readings it held that setting it aside loses.
    pub lost: Vec<SeriesSummary>,
    /// Bytes of it that no longer decode (their readings are not in `lost`); 0 when `lost`
    /// comes from the segment's seal, which is exact.
    pub undecoded_bytes: u64,
    /// Whether `lost` comes from the segment's seal (exact), or else from what is left of it
    /// (whatever was cut off it, or never reached the disk, cannot be named).
    pub sealed: bool,
}

impl Damage {
    /// Readings lost, of those known.
    pub fn readings(&self) -> u64 {
        self.lost.iter().map(|s| s.count).sum()
    }
}

/// Opens the store in `dir` as a start would; returns the damage that stops it, if any (a
/// store that opens is closed again at once). Damage outside the segments (an unreadable
/// manifest) is an error: no segment can be set aside for it.
pub fn find(dir: &Path) -> Result<Option<Damage>, StoreError> {
    let (path, what) = match Store::open(dir, &StoreSection::default()) {
        Ok(store) => {
            store.close()?;
            return Ok(None);
        }
        Err(StoreError::Damaged { path, reason }) => (path, reason),
        Err(StoreError::Corrupt { path, offset, reason }) => (path, format!("record at byte {offset}: {reason}")),
        Err(e) => return Err(e),
    };
    let segment = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".seg"))
        .and_then(|n| n.parse::<u64>().ok());
    let Some(segment) = segment else {
        return part_damage(dir, path, what);
    };
    let known = manifest::read(dir).map_err(|reason| StoreError::Damaged { path: manifest::path(dir), reason })?;
    if let Some(manifest::Segment::Sealed { readings, series, .. }) = known.as_ref().and_then(|k| k.get(&segment)) {
        let (lost, what) = match manifest::content(dir, segment) {
            Some(lost) if lost.iter().map(|s| s.count).sum::<u64>() == *readings => (lost, what),
            _ => {
                let content = manifest::content_path(dir, segment);
                let what = format!(
                    "{what}; {} is gone or altered too: its {readings} readings of {series} series cannot be named",
                    content.display()
                );
                (Vec::new(), what)
            }
        };
        return Ok(Some(Damage { segment, path, what, lost, undecoded_bytes: 0, sealed: true }));
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let (lost, undecoded_bytes) = readable(&bytes);
    Ok(Some(Damage { segment, path, what, lost, undecoded_bytes, sealed: false }))
}

/// A partition file that stops the open: what it held per series, from its own index if
/// that still reads, else only its count from the manifest (the series cannot be named).
fn part_damage(dir: &Path, path: PathBuf, what: String) -> Result<Option<Damage>, StoreError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let Some(number) = super::partition::number_of(&name) else {
        return Err(StoreError::Damaged { path, reason: what });
    };
    let known = manifest::read_all(dir).map_err(|reason| StoreError::Damaged { path: manifest::path(dir), reason })?;
    let readings = known.as_ref().and_then(|k| k.parts.get(&name)).map_or(0, |p| p.readings);
    let mut keys = Vec::new();
    let read = super::partition::Part::open(&path, |key| {
        keys.push(key);
        keys.len() as u32 - 1
    });
    let (lost, what, sealed) = match read {
        Ok(part) if part.readings == readings => {
            let summary = part.summary().unwrap_or_default();
            let lost = manifest::summaries(summary.iter().map(|(id, stats)| (&keys[*id as usize], *stats)));
            (lost, what, true)
        }
        _ => (Vec::new(), format!("{what}; its {readings} readings cannot be named by series"), false),
    };
    Ok(Some(Damage { segment: number, path, what, lost, undecoded_bytes: 0, sealed }))
}

/// What the records of a segment that still pass their checksums hold, and how many bytes
/// do not.
fn readable(bytes: &[u8]) -> (Vec<SeriesSummary>, u64) {
    let mut defs = HashMap::new();
    let mut by_key: HashMap<super::SeriesKey, (i64, i64, u64)> = HashMap::new();
    let mut undecoded = 0u64;
    let mut at = 0usize;
    while at < bytes.len() {
        let decoded = log::record_at(bytes, at).and_then(|payload| {
            let mut points = Vec::new();
            log::decode_record(payload, &mut defs, |entry| {
                if let log::Entry::Point { time_ns, key: Some(key), .. } = entry {
                    points.push((key.clone(), time_ns));
                }
            })
            .ok()?;
            Some((payload.len(), points))
        });
        match decoded {
            Some((len, points)) => {
                for (key, t) in points {
                    let e = by_key.entry(key).or_insert((i64::MAX, i64::MIN, 0));
                    *e = (e.0.min(t), e.1.max(t), e.2 + 1);
                }
                at += log::HEADER_BYTES + len;
            }
            None => {
                let next = log::group_after(bytes, at).unwrap_or(bytes.len());
                undecoded += (next - at) as u64;
                at = next;
            }
        }
    }
    let lost = manifest::summaries(by_key.iter().map(|(key, stats)| (key, *stats)));
    (lost, undecoded)
}

/// Records the drop of the damaged segment in the manifest, then moves its file (if any) to
/// `<dir>/damaged/`; returns where it went. Record what was lost (gap records) before this.
pub fn set_aside(dir: &Path, damage: &Damage) -> Result<Option<PathBuf>, StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let manifest_path = manifest::path(dir);
    let part = damage.path.extension().is_some_and(|e| e == "part");
    if manifest::read(dir).map_err(|reason| StoreError::Damaged { path: manifest_path.clone(), reason })?.is_some() {
        let mut file = manifest::open(dir).map_err(io(&manifest_path))?;
        let line = match part {
            true => {
                let name = damage.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                manifest::Line::Parts { add: Vec::new(), remove: vec![name], through: None }
            }
            false => manifest::Line::Drop {
                segment: damage.segment,
                reason: format!("set aside by repair: {}", damage.what),
            },
        };
        manifest::append(&mut file, &[line]).map_err(io(&manifest_path))?;
    }
    let aside = dir.join("damaged");
    let content = manifest::content_path(dir, damage.segment);
    if !part && content.exists() {
        std::fs::create_dir_all(&aside).map_err(io(&aside))?;
        let name = content.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        std::fs::rename(&content, aside.join(name)).map_err(io(&content))?;
    }
    if !damage.path.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(&aside).map_err(io(&aside))?;
    let name = damage.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A segment number is never reused, but a repair may meet one that an earlier repair's
    // crash left behind.
    let mut to = aside.join(&name);
    let mut n = 1;
    while to.exists() {
        to = aside.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(&damage.path, &to).map_err(io(&damage.path))?;
    super::sync_dir(&aside).map_err(io(&aside))?;
    super::sync_dir(dir).map_err(io(dir))?;
    if part {
        let parts = super::partition::dir(dir);
        super::sync_dir(&parts).map_err(io(&parts))?;
    }
    Ok(Some(to))
}
