//! The engine's state: per series, hourly aggregates of its readings and its newest
//! readings; the judged periods of every (series, limit) "track"; revisions; and what they
//! add up to (conditions for alerts, episodes, availability, status).
//!
//! Judgements are functions of the readings and gap records alone, never of their arrival
//! order: each reading goes into the aggregate of its hour (counts, and a sum kept exactly
//! in integer nano-units, so the order of additions cannot change a mean); a period (an
//! hour, or a Bangkok day of 24 hours) is recomputed from its hours whenever a reading (or
//! a gap touching it) arrives, and closes when the clock passes its end. The engine keeps
//! no copy of the readings beyond the newest few per series (for fault detection): memory
//! grows by one aggregate per series and hour. It relies on the store handing each reading
//! over once (ingest passes only readings the store did not have). A closed
//! period whose result changes is a **revision**, kept with what it was, what it became,
//! when and why. The revisions are kept in their log and read back at a start.
//!
//! Every closed Bangkok day goes to a judgement day file ([`super::days`]) when it closes
//! ([`Engine::days_to_write`], again only when late data changes it); memory holds the
//! recent days only: [`Engine::evict`] drops each closed day older than `recent_days` whose
//! file holds it. Queries over history read those files in their range, and a reading (a
//! gap, a correction) for a day on disk loads it back first. These reads are the engine's
//! only I/O. Its open state is checkpointed ([`Engine::checkpoint`], [`Engine::restore`],
//! in `persist`), naming the day files; a start restores it, reads the recent days' files
//! back and judges what the store's log holds after it (`replaying`: nothing recomputed
//! then counts as a revision).

use std::collections::{BTreeMap, HashMap};

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

use eitwatch_config::Catalog;
use eitwatch_config::reading::{Kind, Quality, Reading};
use eitwatch_config::site::{Point, Registry};
use eitwatch_config::standards::{Averaging, Standards, Verdict};
use serde::{Deserialize, Serialize};

pub use eitwatch_config::server_config::{AlertKind, Severity};

use crate::alerts::text::{Detail, What};

use super::checkpoint::{self, Applied, Dec, Enc};
use super::clock::Clock;
use super::days::{self, DayFiles};
use super::faults::Recent;
use super::grab::{self, Grabs};
use super::judge::{LimitUsed, limits_for, o2_corrected};
use super::period::{self, DAY_NS, SECOND_NS, availability_pct, bounds, expected, sufficient};
use super::timeline::Timeline;
use crate::names::Names;

mod persist;

/// The O₂ parameter used for corrections.
const O2: &str = "o2";

/// Engine settings (from `[compliance]`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A point is "no data" after this many expected intervals without a reading.
    pub no_data_after_intervals: u32,
    /// Bangkok days kept in memory (today included); older ones go to the judgement days
    /// on disk, when the engine has them ([`Engine::archive_to`]).
    pub recent_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { no_data_after_intervals: 3, recent_days: 7 }
    }
}

/// One series: a parameter at a point. The names are shared (the engine keeps one
/// allocation per distinct name): a series holds three pointers, not three strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    /// Factory id.
    pub factory: Arc<str>,
    /// Point id.
    pub point: Arc<str>,
    /// Parameter code.
    pub parameter: Arc<str>,
}

/// The hash of a series' names, as the engine's series table keeps it.
fn hash_names(factory: &str, point: &str, parameter: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    (factory, point, parameter).hash(&mut h);
    h.finish()
}

fn hash_id(id: &SeriesId) -> u64 {
    hash_names(&id.factory, &id.point, &id.parameter)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    quality: Quality,
    not_detected: bool,
}

/// A value in units of 1e-9, rounded: sums of these are exact whatever the order.
fn nano(value: f64) -> i128 {
    let n = crate::num::round(value * 1e9);
    // Through i64 when it fits (one instruction; a direct i128 conversion is a library call).
    if n.abs() < 9.0e18 { n as i64 as i128 } else { n as i128 }
}

/// Readings of one hour of one series. Packed to 8-byte alignment: an hour's entry in a
/// series' timeline is then 40 bytes, not 48 (an `i128` would align it to 16).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed(8))]
struct Acc {
    valid: u32,
    excluded: u32,
    /// Sum of the valid values in units of 1e-9, exact whatever the order of additions.
    sum_nano: i128,
    /// A valid reading not flagged "not detected".
    detected: bool,
}

impl Acc {
    fn add(&mut self, s: Sample) {
        if s.quality.is_judged() {
            self.valid += 1;
            self.sum_nano += nano(s.value);
            self.detected |= !s.not_detected;
        } else {
            self.excluded += 1;
        }
    }
    fn merge(mut self, o: &Acc) -> Acc {
        self.valid += o.valid;
        self.excluded += o.excluded;
        self.sum_nano += o.sum_nano;
        self.detected |= o.detected;
        self
    }
    fn mean(&self) -> Option<f64> {
        (self.valid > 0).then(|| self.sum_nano as f64 / 1e9 / self.valid as f64)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct DayCount {
    valid: u32,
    excluded: u32,
}

#[derive(Debug)]
struct Series {
    id: SeriesId,
    area: Arc<str>,
    kind: Kind,
    point: Arc<Point>,
    /// Hour start → its readings' aggregate.
    hours: Timeline<Acc>,
    /// The newest readings, for fault detection.
    recent: Recent,
    days: Timeline<DayCount>,
    /// Its first Bangkok day with a reading, wherever that day is now (memory or disk), as
    /// a day number ([`day_number`]; `i32::MAX`: none): 4 bytes, in what was padding.
    first_day: i32,
    /// Its tracks' indices (created together, so contiguous).
    tracks: (u32, u32),
}

impl Series {
    fn tracks(&self) -> std::ops::Range<usize> {
        self.tracks.0 as usize..self.tracks.1 as usize
    }
}

/// The result of a judged period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Within the limit.
    Compliant,
    /// Beyond it.
    Exceeds,
    /// Too few valid readings to judge: never compliant.
    InsufficientData,
    /// The value could not be brought to the limit's basis (no valid O₂ in the period).
    CannotCorrect,
}

impl Outcome {
    /// Its code in a checkpoint.
    pub(super) fn code(self) -> u8 {
        match self {
            Outcome::Compliant => 0,
            Outcome::Exceeds => 1,
            Outcome::InsufficientData => 2,
            Outcome::CannotCorrect => 3,
        }
    }

    /// The outcome of a checkpoint's code.
    pub(super) fn of_code(code: u8) -> Result<Outcome, String> {
        Ok(match code {
            0 => Outcome::Compliant,
            1 => Outcome::Exceeds,
            2 => Outcome::InsufficientData,
            3 => Outcome::CannotCorrect,
            _ => return Err(format!("outcome code {code}, expected 0 to 3")),
        })
    }
}

/// One judged period (an instant for instantaneous limits).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End (exclusive); equal to start for an instant.
    pub end_ns: i64,
    /// Whether the clock has passed its end: a closed period is final unless late data revise it.
    pub closed: bool,
    /// The result.
    pub outcome: Outcome,
    /// The judged value in the limit's unit (O₂-corrected where the limit asks).
    pub value: Option<f64>,
    /// Mean of the valid readings in the limit's unit, before any correction.
    pub measured: Option<f64>,
    /// Mean measured O₂ (%) of the period, where a correction used it.
    pub o2_pct: Option<f64>,
    /// Valid readings.
    pub valid: u32,
    /// Expected readings (from the point's interval).
    pub expected: u32,
    /// Readings kept but excluded (maintenance, calibration, suspect, invalid).
    pub excluded: u32,
    /// valid / expected, percent.
    pub availability_pct: f64,
    /// Why it is not judged, or what a reader should know.
    pub reason: Option<String>,
    /// Judgements it stands for: 1 for a fixed period or a grab sample; for an hour's
    /// compliant (or not correctable) grab samples summarised in one entry, how many.
    pub samples: u32,
}

/// What a period said, for revisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The result.
    pub outcome: Outcome,
    /// The judged value.
    pub value: Option<f64>,
    /// Valid readings.
    pub valid: u32,
}

/// A closed period's result changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// `factory/point/parameter/limit id`.
    pub track: String,
    /// Factory id.
    pub factory: String,
    /// Point id.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// The limit's id.
    pub limit: String,
    /// The period's start.
    pub start_ns: i64,
    /// What it was.
    pub was: Summary,
    /// What it became.
    pub became: Summary,
    /// When (engine clock).
    pub at_ns: i64,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Reading,
    Gap,
}

#[derive(Debug)]
struct Track {
    /// Its series' index in `Engine::series`.
    at: u32,
    limit: Arc<LimitUsed>,
    judged: Judged,
}

/// What a track judged: one or the other, so a track carries the state of its kind only.
#[derive(Debug, Clone)]
enum Judged {
    /// Periods of a fixed-period limit.
    Fixed(Fixed),
    /// Grab samples of an instantaneous limit.
    Grab(Grabs),
}

#[derive(Debug, Default, Clone)]
struct Fixed {
    periods: BTreeMap<i64, Period>,
    /// Periods to judge again (a reading, a gap or a correction arrived).
    dirty: BTreeMap<i64, Cause>,
    /// Start of the earliest period to fill (the first sample's).
    fill_from: Option<i64>,
    /// Start of the next period the tick has not filled yet.
    filled_to: Option<i64>,
}

/// The periods of a track that has none (an instantaneous limit's).
static NO_PERIODS: BTreeMap<i64, Period> = BTreeMap::new();
/// The grab samples of a track that has none (a fixed-period limit's).
static NO_GRABS: Grabs = Grabs::new();

/// A gap record, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct GapInfo {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameters that lost readings (empty: all).
    pub parameters: Vec<String>,
    /// Oldest dropped reading.
    pub from_ns: i64,
    /// Newest dropped reading.
    pub to_ns: i64,
    /// Readings dropped.
    pub count: u64,
    /// The agent's reason.
    pub reason: String,
}

/// A correction of one stored reading, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionInfo {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Measurement time of the reading.
    pub time_ns: i64,
    /// The value judged so far.
    pub was: f64,
    /// The value to judge from now on.
    pub value: f64,
    /// The reading's quality.
    pub quality: Quality,
    /// The reading's "not detected" flag.
    pub not_detected: bool,
    /// Why (kept in the revisions it causes).
    pub reason: String,
}

/// A condition that holds now; the alert book turns it into one alert while it lasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// Identifies the ongoing condition: one alert per key at a time.
    pub key: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter, where the condition is about one.
    pub parameter: Option<String>,
    /// What its text needs beyond these fields ([`crate::alerts::text`] words it).
    pub detail: Option<Box<Detail>>,
    /// The value that made it, in the limit's unit where there is one.
    pub value: Option<f64>,
    /// The limit, for exceedances (boxed: most conditions have none, and inline it would
    /// double the size of every one).
    pub limit: Option<Box<LimitUsed>>,
    /// Measurement time it started at.
    pub since_ns: i64,
    /// The deadline, for deadline conditions.
    pub deadline_ns: Option<i64>,
}

/// A run of consecutive exceeding periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    /// Area.
    pub area: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// The limit exceeded.
    pub limit: LimitUsed,
    /// Start of the first period.
    pub start_ns: i64,
    /// End of the last period (its instant, for grab samples).
    pub end_ns: i64,
    /// Periods (or grab samples) in it.
    pub periods: u32,
    /// The value furthest beyond the limit.
    pub peak: f64,
    /// Mean of the periods' values.
    pub mean: f64,
    /// Whether its last period is the latest judged one (it may go on).
    pub ongoing: bool,
}

/// A day's availability of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayAvailability {
    /// Area.
    pub area: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Start of the Bangkok day.
    pub day_start_ns: i64,
    /// The day, Bangkok time (`2026-11-23`).
    pub day: String,
    /// Valid readings.
    pub valid: u32,
    /// Readings excluded (maintenance, calibration, suspect, invalid).
    pub excluded: u32,
    /// Expected readings.
    pub expected: u32,
    /// valid / expected, percent.
    pub availability_pct: f64,
    /// The threshold (percent).
    pub threshold_pct: f64,
    /// Whether it meets the threshold; `None` for a day not over yet.
    pub meets: Option<bool>,
}

/// A no-data incident and its fault-notification clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Measurement time of the last reading before the silence.
    pub since_ns: i64,
    /// The factory must notify DIW by then: end of the next Bangkok day.
    pub notify_by_ns: i64,
    /// And restore transmission by then: 7 days.
    pub restore_by_ns: i64,
}

/// A judged period with what it belongs to, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodView {
    /// Area.
    pub area: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// The limit used.
    pub limit: LimitUsed,
    /// The period.
    #[serde(flatten)]
    pub period: Period,
    /// Start in Bangkok time.
    pub start_local: String,
    /// Its revisions, oldest first.
    pub revisions: Vec<Revision>,
}

/// Which series a query covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this factory (a token's scope).
    pub scope: Option<String>,
    /// Area id.
    pub area: Option<String>,
    /// Factory id.
    pub factory: Option<String>,
    /// Point id.
    pub point: Option<String>,
    /// Parameter code.
    pub parameter: Option<String>,
    /// From (inclusive), ns.
    pub from_ns: Option<i64>,
    /// To (exclusive), ns.
    pub to_ns: Option<i64>,
}

impl Filter {
    fn covers(&self, area: &str, factory: &str, point: &str, parameter: &str) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.scope, factory)
            && eq(&self.area, area)
            && eq(&self.factory, factory)
            && eq(&self.point, point)
            && eq(&self.parameter, parameter)
    }
    fn covers_series(&self, s: &Series) -> bool {
        self.covers(&s.area, &s.id.factory, &s.id.point, &s.id.parameter)
    }
    fn range(&self) -> (i64, i64) {
        (self.from_ns.unwrap_or(i64::MIN), self.to_ns.unwrap_or(i64::MAX))
    }
}

/// A reading the store took, as the engine judges it, naming its series by the store's id
/// (`Store::append_rows`): no names to copy or hash per reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The store's id of its series.
    pub series: u32,
    /// Measurement time.
    pub time_ns: i64,
    /// Canonical-unit value.
    pub value: f64,
    /// Quality flag.
    pub quality: Quality,
    /// The value is a detection limit the result was below.
    pub below_detection_limit: bool,
}

/// `Engine::by_store_id` for a store series not seen yet.
const NOT_SEEN: u32 = u32::MAX;

/// The compliance engine: time from its clock, I/O only to read judgement days.
#[derive(Debug)]
pub struct Engine {
    registry: Registry,
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// Every series, in the order first seen (an index never changes: series are kept).
    series: Vec<Series>,
    /// Indices in `series`, found by their names' hash (`hash_names`): a slot is 4 bytes,
    /// where a map keyed by the id would hold a copy of it.
    series_at: HashTable<u32>,
    names: Names,
    /// The store's series id → index in `series`, as far as seen (`NOT_SEEN` otherwise):
    /// readings that come with their store ids are found without hashing their strings.
    by_store_id: Vec<u32>,
    tracks: Vec<Track>,
    /// Shared by the series of one point, and by every track applying the same limit: a
    /// series costs its own state, not a copy of its point and limits.
    points: FxHashMap<(Arc<str>, Arc<str>), Arc<Point>>,
    limits: HashMap<String, Arc<LimitUsed>>,
    /// A point's O₂ series → the tracks corrected with it.
    o2_dependents: FxHashMap<SeriesId, Vec<usize>>,
    /// When this engine began to watch: a registered point that has never reported counts
    /// as silent since then (no earlier time is known).
    watched_since_ns: i64,
    /// Points added to the registry while the engine ran (factory, point, when): their
    /// silence counts from then, not from the engine's start. Few: registry changes are rare.
    added: Vec<(String, String, i64)>,
    gaps: Vec<GapInfo>,
    revisions: HashMap<(String, i64), Vec<Revision>>,
    new_revisions: Vec<Revision>,
    /// (track, period start) → the correction that marked it, for its revision's reason.
    corrections: HashMap<(usize, i64), String>,
    /// Exceedances judged since the last call of `take_flashes`, even those a later
    /// period already ended: each must reach the alert book once.
    flashes: Vec<Condition>,
    /// The tracks a grab sample's flash is among `flashes` for: the alert book takes the
    /// first condition of a key in a batch, so a track's later exceeding samples add none.
    flashed: FxHashSet<usize>,
    replaying: bool,
    /// A period was marked for recomputation since the last `settle` (else it has nothing
    /// to do: a batch of grab samples alone marks none).
    marked: bool,
    /// Where closed days older than the recent ones go; none: everything stays in memory.
    day_files: Option<Arc<DayFiles>>,
    /// Days on disk, not in memory: day start → the generation of its file.
    archived: BTreeMap<i64, u32>,
    /// The end of the last archived day (`i64::MIN`: none): a reading before it may belong
    /// to a day on disk, one after it never does (one comparison a reading).
    archived_end: i64,
    /// Closed days in memory whose day file is written: day start → its generation and a
    /// stamp of its bytes (a day whose state no longer encodes to them is written again).
    written: BTreeMap<i64, persist::Written>,
    /// The end of the last day put in `written` (`i64::MIN`: none): a change before it may
    /// be to a written day's state, one after it never is (one comparison a reading).
    written_end: i64,
    /// Written days whose state may have changed since (a period judged again there).
    touched: std::collections::BTreeSet<i64>,
    /// Any written day's state may have changed (late data, a correction): the next
    /// checkpoint encodes every closed day to compare it with its file.
    touched_all: bool,
    /// The generation the next day file written takes.
    next_generation: u32,
}

impl Engine {
    /// An engine over a registry; every registered series starts empty.
    pub fn new(registry: Registry, clock: Arc<dyn Clock>, settings: Settings) -> Engine {
        let watched_since_ns = clock.now_ns();
        let mut engine = Engine {
            registry,
            settings,
            clock,
            series: Vec::new(),
            series_at: HashTable::new(),
            names: Names::default(),
            by_store_id: Vec::new(),
            tracks: Vec::new(),
            o2_dependents: FxHashMap::default(),
            points: FxHashMap::default(),
            limits: HashMap::new(),
            watched_since_ns,
            added: Vec::new(),
            gaps: Vec::new(),
            revisions: HashMap::new(),
            new_revisions: Vec::new(),
            flashes: Vec::new(),
            flashed: Default::default(),
            corrections: HashMap::new(),
            replaying: false,
            marked: false,
            day_files: None,
            archived: BTreeMap::new(),
            archived_end: i64::MIN,
            written: BTreeMap::new(),
            written_end: i64::MIN,
            touched: std::collections::BTreeSet::new(),
            touched_all: false,
            next_generation: 1,
        };
        engine.watch_registered();
        engine
    }

    /// The clock's time.
    pub fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    /// While replaying the store at start, recomputed periods are not revisions.
    pub fn set_replaying(&mut self, replaying: bool) {
        self.replaying = replaying;
    }

    /// Revisions read back from their log.
    pub fn load_revisions(&mut self, revisions: Vec<Revision>) {
        for r in revisions {
            self.revisions.entry((r.track.clone(), r.start_ns)).or_default().push(r);
        }
    }

    /// Exceedances judged since the last call (see [`Engine::conditions`]): passed to the
    /// alert book with the conditions, so an exceedance another reading ended within the
    /// same batch still raises its alert (which then resolves).
    pub fn take_flashes(&mut self) -> Vec<Condition> {
        self.flashed.clear();
        std::mem::take(&mut self.flashes)
    }

    /// Revisions made since the last call, to persist.
    pub fn take_revisions(&mut self) -> Vec<Revision> {
        std::mem::take(&mut self.new_revisions)
    }

    /// The index of a series, if it exists.
    fn find(&self, factory: &str, point: &str, parameter: &str) -> Option<usize> {
        let series = &self.series;
        self.series_at
            .find(hash_names(factory, point, parameter), |&i| {
                let id = &series[i as usize].id;
                *id.parameter == *parameter && *id.point == *point && *id.factory == *factory
            })
            .map(|&i| i as usize)
    }

    /// Creates the series (and its tracks) on first sight; `None` for a point not registered.
    fn series_index(&mut self, factory_id: &str, point_id: &str, parameter: &str) -> Option<usize> {
        if let Some(at) = self.find(factory_id, point_id, parameter) {
            return Some(at);
        }
        let at = self.series.len();
        let (area, factory) = self.registry.factory(factory_id)?;
        let point = factory.point.iter().find(|p| p.id == point_id)?;
        let limits = limits_for(Standards::builtin(), factory, point, parameter);
        let names = &mut self.names;
        let id =
            SeriesId { factory: names.get(factory_id), point: names.get(point_id), parameter: names.get(parameter) };
        let first_track = self.tracks.len();
        for limit in limits {
            let index = self.tracks.len();
            if limit.reference_o2_pct.is_some() {
                let o2 = SeriesId { parameter: self.names.get(O2), ..id.clone() };
                self.o2_dependents.entry(o2).or_default().push(index);
            }
            self.tracks.push(Track {
                at: at as u32,
                judged: match limit.averaging {
                    Averaging::Instantaneous => Judged::Grab(Grabs::default()),
                    _ => Judged::Fixed(Fixed::default()),
                },
                limit: self.limits.entry(format!("{limit:?}")).or_insert_with(|| Arc::new(limit)).clone(),
            });
        }
        let series = Series {
            area: self.names.get(&area.id),
            kind: point.kind,
            point: self
                .points
                .entry((id.factory.clone(), id.point.clone()))
                // Without its parameter list: the series are the engine's own.
                .or_insert_with(|| Arc::new(Point { parameters: Vec::new(), ..point.clone() }))
                .clone(),
            hours: Timeline::default(),
            recent: Recent::default(),
            days: Timeline::default(),
            first_day: i32::MAX,
            tracks: (first_track as u32, self.tracks.len() as u32),
            id,
        };
        self.series.push(series);
        let all = &self.series;
        self.series_at
            .insert_unique(hash_names(factory_id, point_id, parameter), at as u32, |&i| hash_id(&all[i as usize].id));
        Some(at)
    }

    /// Takes accepted readings, in any order. Instantaneous limits are judged at once; the
    /// periods the readings fall in are marked for recomputation (see [`Engine::settle`]).
    pub fn ingest(&mut self, readings: &[Reading]) {
        for r in readings {
            if let Some(at) = self.series_index(&r.factory, &r.point, &r.parameter) {
                let sample = Sample { value: r.value, quality: r.quality, not_detected: r.below_detection_limit };
                self.ingest_one(at, r.time_ns, sample);
            }
        }
        self.settle();
    }

    /// [`Engine::ingest`] for readings the store took, each naming its series by the store's
    /// id: a series is looked up by its names (`key_of`) once, then found by that id.
    pub fn ingest_stored(&mut self, measured: &[Measured], key_of: impl Fn(u32) -> Option<SeriesId>) {
        for m in measured {
            let store_id = m.series as usize;
            let at = match self.by_store_id.get(store_id) {
                Some(&at) if at != NOT_SEEN => at as usize,
                _ => {
                    let Some(at) =
                        key_of(m.series).and_then(|id| self.series_index(&id.factory, &id.point, &id.parameter))
                    else {
                        continue;
                    };
                    if self.by_store_id.len() <= store_id {
                        self.by_store_id.resize(store_id + 1, NOT_SEEN);
                    }
                    self.by_store_id[store_id] = at as u32;
                    at
                }
            };
            let sample = Sample { value: m.value, quality: m.quality, not_detected: m.below_detection_limit };
            self.ingest_one(at, m.time_ns, sample);
        }
        self.settle();
    }

    fn ingest_one(&mut self, at: usize, time_ns: i64, sample: Sample) {
        if time_ns < self.archived_end {
            self.load_archived(period::day(time_ns).0);
        }
        if time_ns < self.written_end {
            self.touched_all = true;
        }
        let series = &mut self.series[at];
        series.hours.entry(bounds(Averaging::Hourly, time_ns).0, Acc::default).add(sample);
        series.recent.add(time_ns, sample.value, sample.quality);
        let day_start = period::day(time_ns).0;
        series.first_day = series.first_day.min(day_number(day_start));
        let day = series.days.entry(day_start, DayCount::default);
        let judged = sample.quality.is_judged();
        if judged {
            day.valid += 1;
        } else {
            day.excluded += 1;
        }
        for t in series.tracks() {
            let averaging = self.tracks[t].limit.averaging;
            if averaging == Averaging::Instantaneous {
                if judged {
                    let (series, track) = (&self.series[at], &self.tracks[t]);
                    let limit = &track.limit;
                    let (judged, value) = if limit.catalog_unit && limit.reference_o2_pct.is_none() {
                        // The common case, judged as `judge_instant` would without building
                        // its period: the value as measured, in the limit's unit already.
                        let outcome = match limit.compare(&series.point, sample.value, sample.not_detected) {
                            Verdict::Compliant => Outcome::Compliant,
                            Verdict::Exceeds => Outcome::Exceeds,
                        };
                        (grab::Sample::measured(sample.value, outcome), sample.value)
                    } else {
                        let p = self.judge_instant(series, track, time_ns, sample);
                        (grab::Sample::of(&p), p.value.unwrap_or(f64::NAN))
                    };
                    if judged.outcome() == Outcome::Exceeds && !self.replaying && self.flashed.insert(t) {
                        let p = self.judge_instant(series, track, time_ns, sample);
                        self.flashes.push(exceedance(series, track, &p, p.start_ns));
                    }
                    let beyond = beyond(limit, &series.point, value);
                    if let Some(grabs) = self.tracks[t].grabs_mut() {
                        if grabs.add(time_ns, judged, beyond) {
                            self.touched_all = true;
                        }
                    }
                }
            } else {
                let start = bounds(averaging, time_ns).0;
                if let Some(f) = self.tracks[t].fixed_mut() {
                    f.dirty.insert(start, Cause::Reading);
                    self.marked = true;
                    if f.fill_from.is_none_or(|from| start < from) {
                        // Older than anything seen: the tick fills from here again.
                        f.fill_from = Some(start);
                        f.filled_to = None;
                    }
                }
            }
        }
        let id = &self.series[at].id;
        if *id.parameter == *O2
            && let Some(dependents) = self.o2_dependents.get(id)
        {
            for &t in dependents {
                let track = &mut self.tracks[t];
                let start = bounds(track.limit.averaging, time_ns).0;
                if let Some(f) = track.fixed_mut() {
                    f.dirty.insert(start, Cause::Reading);
                    self.marked = true;
                }
            }
        }
    }

    /// Takes a correction: the reading at `time_ns` is judged with its new value from now on.
    /// Fixed periods holding it are recomputed (a revision if closed); a grab sample is
    /// judged again, and a changed result is a revision naming the correction.
    pub fn correct(&mut self, c: &CorrectionInfo) {
        if !c.quality.is_judged() {
            return;
        }
        let Some(at) = self.series_index(&c.factory, &c.point, &c.parameter) else { return };
        if c.time_ns < self.archived_end {
            self.load_archived(period::day(c.time_ns).0);
        }
        self.touched_all = true;
        let id = self.series[at].id.clone();
        let series = &mut self.series[at];
        let hour = bounds(Averaging::Hourly, c.time_ns).0;
        if let Some(acc) = series.hours.get_mut(hour) {
            acc.sum_nano += nano(c.value) - nano(c.was);
        }
        let mut dependents: Vec<usize> = series.tracks().collect();
        if c.parameter == O2 {
            dependents.extend(self.o2_dependents.get(&id).into_iter().flatten().copied());
        }
        let now = self.now_ns();
        for t in dependents {
            let averaging = self.tracks[t].limit.averaging;
            if let Some(f) = self.tracks[t].fixed_mut() {
                let start = bounds(averaging, c.time_ns).0;
                f.dirty.insert(start, Cause::Reading);
                self.marked = true;
                if !self.replaying {
                    self.corrections.insert((t, start), c.reason.clone());
                }
                continue;
            }
            if self.tracks[t].at as usize != at {
                continue;
            }
            let (series, track) = (&self.series[at], &self.tracks[t]);
            let sample = |value| Sample { value, quality: c.quality, not_detected: c.not_detected };
            let old = self.judge_instant(series, track, c.time_ns, sample(c.was));
            let new = self.judge_instant(series, track, c.time_ns, sample(c.value));
            let new_beyond = beyond(&track.limit, &series.point, new.value.unwrap_or(f64::NAN));
            if new.outcome == Outcome::Exceeds && old.outcome != Outcome::Exceeds && !self.replaying {
                self.flashes.push(exceedance(series, track, &new, new.start_ns));
            }
            let changed = old.outcome != new.outcome || old.value != new.value;
            let revision = (changed && !self.replaying).then(|| Revision {
                track: track.key(series),
                factory: id.factory.to_string(),
                point: id.point.to_string(),
                parameter: id.parameter.to_string(),
                limit: track.limit.id.clone(),
                start_ns: c.time_ns,
                was: Summary { outcome: old.outcome, value: old.value, valid: 1 },
                became: Summary { outcome: new.outcome, value: new.value, valid: 1 },
                at_ns: now,
                reason: format!("the grab sample was {}", c.reason),
            });
            if let Some(grabs) = self.tracks[t].grabs_mut() {
                grabs.remove(c.time_ns, &grab::Sample::of(&old));
                grabs.add(c.time_ns, grab::Sample::of(&new), new_beyond);
            }
            if let Some(r) = revision {
                self.revisions.entry((r.track.clone(), r.start_ns)).or_default().push(r.clone());
                self.new_revisions.push(r);
            }
        }
        self.settle();
    }

    /// Forgets what was measured before the Bangkok day holding `cutoff_ns`: the store's
    /// retention drops those readings, and the engine keeps their judgements no longer.
    pub fn forget_before(&mut self, cutoff_ns: i64) {
        let cutoff = period::day(cutoff_ns).0;
        for s in &mut self.series {
            s.hours.forget_before(cutoff);
            s.days.forget_before(cutoff);
        }
        for t in &mut self.tracks {
            match &mut t.judged {
                Judged::Fixed(f) => {
                    f.periods = f.periods.split_off(&cutoff);
                    f.dirty = f.dirty.split_off(&cutoff);
                    f.fill_from = f.fill_from.map(|from| from.max(cutoff));
                }
                Judged::Grab(grabs) => grabs.forget_before(cutoff),
            }
        }
        self.revisions.retain(|(_, start), _| *start >= cutoff);
        self.gaps.retain(|g| g.to_ns >= cutoff);
        // Whole days on disk: their files go after the next checkpoint, which no longer names them.
        self.archived = self.archived.split_off(&cutoff);
        self.written = self.written.split_off(&cutoff);
        self.archived_end = self.archived.keys().next_back().map_or(i64::MIN, |d| d + DAY_NS);
        for s in &mut self.series {
            // No day before the cutoff is judged any more (`i32::MAX`, none, stays).
            s.first_day = s.first_day.max(day_number(cutoff));
        }
    }

    /// Takes a gap record: the periods it overlaps are recomputed, the gap's reason named
    /// in those that lack data.
    pub fn gap(&mut self, gap: GapInfo) {
        let on_disk: Vec<i64> = self.archived.range(period::day(gap.from_ns).0..=gap.to_ns).map(|(d, _)| *d).collect();
        for day in on_disk {
            self.load_archived(day);
        }
        for track in &mut self.tracks {
            let s = &self.series[track.at as usize].id;
            if *s.factory != *gap.factory
                || *s.point != *gap.point
                || !(gap.parameters.is_empty() || gap.parameters.iter().any(|p| **p == *s.parameter))
            {
                continue;
            }
            let averaging = track.limit.averaging;
            let Some(f) = track.fixed_mut() else { continue };
            let mut start = bounds(averaging, gap.from_ns).0;
            let mut guard = 0;
            while start <= gap.to_ns && guard < 10_000 {
                f.dirty.insert(start, Cause::Gap);
                self.marked = true;
                start = bounds(averaging, start).1;
                guard += 1;
            }
        }
        self.gaps.push(gap);
        self.settle();
    }

    /// Recomputes the marked periods that are closed (a late reading's, a gap's); open ones,
    /// and those marked before the last settle that closed since, wait for the tick, so a busy
    /// stream costs one recomputation per period per tick.
    pub fn settle(&mut self) {
        if !std::mem::take(&mut self.marked) {
            return;
        }
        let now = self.now_ns();
        for t in 0..self.tracks.len() {
            let averaging = self.tracks[t].limit.averaging;
            let Some(f) = self.tracks[t].fixed_mut() else { continue };
            if f.dirty.is_empty() {
                continue;
            }
            let closed: Vec<(i64, Cause)> =
                f.dirty.iter().filter(|(s, _)| bounds(averaging, **s).1 <= now).map(|(s, c)| (*s, *c)).collect();
            for (start, _) in &closed {
                f.dirty.remove(start);
            }
            for (start, cause) in closed {
                self.rejudge(t, start, cause);
            }
        }
    }

    /// Closes periods the clock has passed (judging the hours and days without any reading
    /// as insufficient data) and recomputes open ones.
    pub fn tick(&mut self) {
        let now = self.now_ns();
        for t in 0..self.tracks.len() {
            let averaging = self.tracks[t].limit.averaging;
            let Some(f) = self.tracks[t].fixed_mut() else { continue };
            let dirty = std::mem::take(&mut f.dirty);
            for (start, cause) in dirty {
                self.rejudge(t, start, cause);
            }
            let Some(f) = self.tracks[t].fixed_mut() else { continue };
            let Some(fill_from) = f.fill_from else { continue };
            let current = bounds(averaging, now).0;
            let mut start = f.filled_to.unwrap_or(fill_from);
            while start <= current {
                let end = bounds(averaging, start).1;
                if start < self.archived_end {
                    // Filling back into days on disk (a reading older than any before).
                    self.load_archived(period::day(start).0);
                }
                // Judged already and unchanged (the marked ones were judged above): an open
                // period is re-read only when it gets data or closes.
                let settled = self.tracks[t].periods().get(&start).is_some_and(|p| p.closed || end > now);
                if !settled {
                    self.rejudge(t, start, Cause::Reading);
                }
                start = end;
            }
            if let Some(f) = self.tracks[t].fixed_mut() {
                f.filled_to = Some(current);
            }
        }
    }

    fn rejudge(&mut self, t: usize, start: i64, cause: Cause) {
        if start < self.written_end {
            self.touched.insert(period::day(start).0);
        }
        let new = self.judge_fixed(t, start);
        let now = self.now_ns();
        let track = &mut self.tracks[t];
        let series = &self.series[track.at as usize];
        if let Some(old) = track.periods().get(&start)
            && old.closed
            && !self.replaying
            && (old.outcome != new.outcome || old.value != new.value || old.valid != new.valid)
        {
            let reason = match (self.corrections.remove(&(t, start)), cause) {
                (Some(correction), _) => format!("a reading in the period was {correction}"),
                (None, Cause::Reading) => format!(
                    "late data: readings measured in the period arrived after it closed ({} → {} valid)",
                    old.valid, new.valid
                ),
                (None, Cause::Gap) => "a gap record for the period arrived after it closed".to_string(),
            };
            let revision = Revision {
                track: track.key(series),
                factory: series.id.factory.to_string(),
                point: series.id.point.to_string(),
                parameter: series.id.parameter.to_string(),
                limit: track.limit.id.clone(),
                start_ns: start,
                was: Summary { outcome: old.outcome, value: old.value, valid: old.valid },
                became: Summary { outcome: new.outcome, value: new.value, valid: new.valid },
                at_ns: now,
                reason,
            };
            tracing::info!(factory = %revision.factory, point = %revision.point, parameter = %revision.parameter, start = %period::local(start), was = ?revision.was.outcome, became = ?revision.became.outcome, "Period revised");
            self.revisions.entry((track.key(series), start)).or_default().push(revision.clone());
            self.new_revisions.push(revision);
        }
        let newly_exceeding = new.closed
            && new.outcome == Outcome::Exceeds
            && track.periods().get(&start).is_none_or(|old| !old.closed || old.outcome != Outcome::Exceeds);
        if newly_exceeding && !self.replaying {
            let flash = exceedance(series, track, &new, start);
            self.flashes.push(flash);
        }
        if let Some(f) = track.fixed_mut() {
            f.periods.insert(start, new);
        }
    }

    fn unit_value(&self, series: &Series, limit: &LimitUsed, canonical: f64) -> Result<f64, String> {
        if limit.catalog_unit {
            return Ok(canonical);
        }
        Catalog::builtin()
            .from_canonical(series.kind, &series.id.parameter, canonical, &limit.unit)
            .map_err(|e| e.to_string())
    }

    fn o2_mean(&self, id: &SeriesId, start: i64, end: i64) -> Option<f64> {
        let o2 = &self.series[self.find(&id.factory, &id.point, O2)?];
        let (start, end) = if start == end { bounds(Averaging::Hourly, start) } else { (start, end) };
        o2.hours.range(start, end).iter().fold(Acc::default(), |a, (_, h)| a.merge(h)).mean()
    }

    /// Brings a value to the limit's basis and compares it.
    fn finish(&self, series: &Series, limit: &LimitUsed, mut p: Period, canonical: f64, not_detected: bool) -> Period {
        let measured = match self.unit_value(series, limit, canonical) {
            Ok(v) => v,
            Err(e) => {
                p.outcome = Outcome::CannotCorrect;
                p.reason = Some(format!("cannot convert to {}: {e}", limit.unit));
                return p;
            }
        };
        p.measured = Some(measured);
        let value = match limit.reference_o2_pct {
            None => measured,
            Some(reference) => {
                let end = if p.end_ns == p.start_ns { p.start_ns + 1 } else { p.end_ns };
                let o2 = self.o2_mean(&series.id, p.start_ns, end);
                p.o2_pct = o2;
                match o2.and_then(|o2| o2_corrected(measured, o2, reference)) {
                    Some(v) => v,
                    None => {
                        p.outcome = Outcome::CannotCorrect;
                        p.reason = Some(match o2 {
                            None => {
                                format!("cannot be corrected to {reference} % O₂: no valid O₂ reading in the period")
                            }
                            Some(o2) => format!("cannot be corrected to {reference} % O₂: measured O₂ {o2} % ≥ 21 %"),
                        });
                        return p;
                    }
                }
            }
        };
        p.value = Some(value);
        p.outcome = match limit.compare(&series.point, value, not_detected) {
            Verdict::Compliant => Outcome::Compliant,
            Verdict::Exceeds => Outcome::Exceeds,
        };
        p
    }

    fn judge_instant(&self, series: &Series, track: &Track, time_ns: i64, sample: Sample) -> Period {
        let p = Period {
            start_ns: time_ns,
            end_ns: time_ns,
            closed: true,
            outcome: Outcome::Compliant,
            value: None,
            measured: None,
            o2_pct: None,
            valid: 1,
            expected: 1,
            excluded: 0,
            availability_pct: 100.0,
            reason: None,
            samples: 1,
        };
        self.finish(series, &track.limit, p, sample.value, sample.not_detected)
    }

    fn judge_fixed(&self, t: usize, start: i64) -> Period {
        let track = &self.tracks[t];
        let series = &self.series[track.at as usize];
        let limit = &track.limit;
        let (start, end) = bounds(limit.averaging, start);
        let acc = series.hours.range(start, end).iter().fold(Acc::default(), |a, (_, h)| a.merge(h));
        let (valid, excluded, detected) = (acc.valid, acc.excluded, acc.detected);
        let mean = acc.mean();
        let expected = expected(start, end, series.point.expected_interval_s);
        let availability = availability_pct(valid, expected);
        let mut p = Period {
            start_ns: start,
            end_ns: end,
            closed: self.now_ns() >= end,
            outcome: Outcome::InsufficientData,
            value: None,
            measured: None,
            o2_pct: None,
            valid,
            expected,
            excluded,
            availability_pct: availability,
            reason: None,
            samples: 1,
        };
        if !sufficient(valid, expected, limit.availability_min_pct) {
            let gap = self.gaps.iter().find(|g| {
                *g.factory == *series.id.factory
                    && *g.point == *series.id.point
                    && (g.parameters.is_empty() || g.parameters.iter().any(|p| **p == *series.id.parameter))
                    && g.from_ns < end
                    && g.to_ns >= start
            });
            p.reason = Some(match gap {
                Some(g) => format!(
                    "insufficient data — agent buffer overflow ({}, {} readings dropped); {valid} valid of {expected} expected",
                    g.reason, g.count
                ),
                None => format!(
                    "insufficient data: {valid} valid of {expected} expected readings ({availability:.1} % < {} %){}",
                    limit.availability_min_pct,
                    if excluded > 0 {
                        format!(", {excluded} excluded (maintenance, calibration or not valid)")
                    } else {
                        String::new()
                    }
                ),
            });
            p.measured = mean.and_then(|m| self.unit_value(series, limit, m).ok());
            return p;
        }
        self.finish(series, limit, p, mean.unwrap_or(f64::NAN), !detected)
    }

    fn track_periods<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = (usize, &'a Series, &'a Track)> + 'a {
        self.tracks.iter().enumerate().filter_map(move |(i, t)| {
            let s = &self.series[t.at as usize];
            filter.covers_series(s).then_some((i, s, t))
        })
    }

    /// A track with what the days on disk in `view` add to it (itself when they add nothing).
    fn with_history<'a>(t: &'a Track, i: usize, view: &mut History, merged: &'a mut Option<Track>) -> &'a Track {
        let Some(mut judged) = view.tracks.remove(&i) else { return t };
        judged.absorb(&t.judged);
        merged.insert(Track { at: t.at, limit: t.limit.clone(), judged })
    }

    /// Entries the grab samples of every instantaneous limit keep (exceedances, compliant
    /// stretches, hours): it grows with exceedances and hours, not with readings.
    pub fn grab_entries(&self) -> usize {
        self.tracks.iter().map(|t| t.grabs().entries()).sum()
    }

    /// Judged periods matching a filter, oldest first per track.
    pub fn periods(&self, filter: &Filter, limit: usize) -> Vec<PeriodView> {
        let (from, to) = filter.range();
        let mut out = Vec::new();
        let mut view = self.history(filter, from, to);
        for (i, s, t) in self.track_periods(filter) {
            let mut merged = None;
            let t = Self::with_history(t, i, &mut view, &mut merged);
            for p in t.list(from, to) {
                if out.len() >= limit {
                    return out;
                }
                let start = p.start_ns;
                out.push(PeriodView {
                    area: s.area.to_string(),
                    factory: s.id.factory.to_string(),
                    point: s.id.point.to_string(),
                    parameter: s.id.parameter.to_string(),
                    limit: (*t.limit).clone(),
                    period: p,
                    start_local: period::local(start),
                    revisions: self.revisions.get(&(t.key(s), start)).cloned().unwrap_or_default(),
                });
            }
        }
        out
    }

    /// Every revision matching a filter.
    pub fn revisions(&self, filter: &Filter) -> Vec<Revision> {
        let (from, to) = filter.range();
        let mut list: Vec<Revision> = self
            .revisions
            .values()
            .flatten()
            .filter(|r| {
                let area = self.find(&r.factory, &r.point, &r.parameter).map_or("", |at| &*self.series[at].area);
                filter.covers(area, &r.factory, &r.point, &r.parameter) && r.start_ns >= from && r.start_ns < to
            })
            .cloned()
            .collect();
        list.sort_by_key(|r| (r.at_ns, r.start_ns));
        list
    }

    /// Exceedance episodes matching a filter.
    pub fn episodes(&self, filter: &Filter) -> Vec<Episode> {
        let (from, to) = filter.range();
        let mut out = Vec::new();
        let mut view = self.history(filter, from, to);
        for (i, s, t) in self.track_periods(filter) {
            let mut merged = None;
            let t = Self::with_history(t, i, &mut view, &mut merged);
            let episode = |start_ns: i64, end_ns: i64, values: &[f64], ongoing: bool| {
                let peak = values.iter().copied().fold(f64::NAN, |a, v| {
                    if a.is_nan() || beyond(&t.limit, &s.point, v) > beyond(&t.limit, &s.point, a) { v } else { a }
                });
                Episode {
                    area: s.area.to_string(),
                    factory: s.id.factory.to_string(),
                    point: s.id.point.to_string(),
                    parameter: s.id.parameter.to_string(),
                    limit: (*t.limit).clone(),
                    start_ns,
                    end_ns,
                    periods: values.len() as u32,
                    peak,
                    mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
                    ongoing,
                }
            };
            let overlaps = |start: i64, end: i64| end >= from && start < to;
            if t.limit.averaging == Averaging::Instantaneous {
                for (run, ongoing) in t.grabs().runs() {
                    if overlaps(run.start_ns, run.end_ns) {
                        let values: Vec<f64> = run.samples.iter().filter_map(|s| s.value()).collect();
                        out.push(episode(run.start_ns, run.end_ns, &values, ongoing));
                    }
                }
                continue;
            }
            let mut run: Vec<&Period> = Vec::new();
            let mut flush = |run: &mut Vec<&Period>, ongoing: bool| {
                if let (Some(first), Some(last)) = (run.first(), run.last())
                    && overlaps(first.start_ns, last.end_ns)
                {
                    let values: Vec<f64> = run.iter().filter_map(|p| p.value).collect();
                    out.push(episode(first.start_ns, last.end_ns, &values, ongoing));
                }
                run.clear();
            };
            for p in t.periods().values().filter(|p| p.closed) {
                if p.outcome != Outcome::Exceeds || run.last().is_some_and(|prev| prev.end_ns != p.start_ns) {
                    flush(&mut run, false);
                }
                if p.outcome == Outcome::Exceeds {
                    run.push(p);
                }
            }
            flush(&mut run, true);
        }
        out
    }

    /// Daily availability per series matching a filter, from each series' first day (days
    /// not over yet have `meets: None`).
    pub fn availability(&self, filter: &Filter) -> Vec<DayAvailability> {
        let now = self.now_ns();
        let (from, to) = filter.range();
        let mut out = Vec::new();
        let mut view = self.history(filter, from, to);
        let mut series: Vec<(usize, &Series)> =
            self.series.iter().enumerate().filter(|(_, s)| filter.covers_series(s)).collect();
        series.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        for (i, s) in series {
            let on_disk = view.days.remove(&i).unwrap_or_default();
            let Some(first) = day_start(s.first_day) else { continue };
            let threshold = self.threshold(s);
            let mut day = first.max(period::day(from.max(first)).0);
            let last = period::day(now.min(to.saturating_sub(1))).0;
            let mut guard = 0;
            while day <= last && guard < 3660 {
                let c = s.days.get(day).or_else(|| on_disk.get(day)).copied().unwrap_or_default();
                let expected = expected(day, day + DAY_NS, s.point.expected_interval_s);
                out.push(DayAvailability {
                    area: s.area.to_string(),
                    factory: s.id.factory.to_string(),
                    point: s.id.point.to_string(),
                    parameter: s.id.parameter.to_string(),
                    day_start_ns: day,
                    day: period::local_date(day),
                    valid: c.valid,
                    excluded: c.excluded,
                    expected,
                    availability_pct: availability_pct(c.valid, expected),
                    threshold_pct: threshold,
                    meets: (now >= day + DAY_NS).then(|| sufficient(c.valid, expected, threshold)),
                });
                day += DAY_NS;
                guard += 1;
            }
        }
        out
    }

    fn threshold(&self, s: &Series) -> f64 {
        self.tracks[s.tracks()]
            .iter()
            .map(|t| t.limit.availability_min_pct)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
            .unwrap_or(80.0)
    }

    /// Open no-data incidents with their deadlines.
    pub fn incidents(&self) -> Vec<Incident> {
        let now = self.now_ns();
        let mut point_latest: HashMap<(&str, &str), i64> = HashMap::new();
        for s in self.series.iter() {
            if let Some((t, _, _)) = s.recent.latest() {
                let latest = point_latest.entry((&s.id.factory, &s.id.point)).or_insert(t);
                *latest = (*latest).max(t);
            }
        }
        let mut out = Vec::new();
        for factory in self.registry.areas().iter().flat_map(|a| a.factory.iter()) {
            for p in &factory.point {
                let latest = point_latest.get(&(&factory.id, &p.id)).copied().unwrap_or_else(|| {
                    let added = self.added.iter().find(|(f, q, _)| *f == factory.id && *q == p.id);
                    added.map_or(self.watched_since_ns, |a| a.2)
                });
                let key = (factory.id.clone(), p.id.clone());
                let silent_ns = p
                    .faults
                    .no_data_after_s
                    .unwrap_or(p.expected_interval_s.saturating_mul(self.settings.no_data_after_intervals as u64))
                    as i64
                    * SECOND_NS;
                if now - latest > silent_ns {
                    out.push(Incident {
                        factory: key.0,
                        point: key.1,
                        since_ns: latest,
                        notify_by_ns: period::day(latest).1 + DAY_NS,
                        restore_by_ns: latest + 7 * DAY_NS,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.factory, &a.point).cmp(&(&b.factory, &b.point)));
        out
    }

    /// Every condition that holds now.
    pub fn conditions(&self) -> Vec<Condition> {
        let now = self.now_ns();
        let mut out = Vec::new();
        for t in &self.tracks {
            let s = &self.series[t.at as usize];
            if t.limit.averaging == Averaging::Instantaneous {
                if let Some(start_ns) = t.grabs().ongoing_start()
                    && let Some(p) = t.grabs().latest(&t.limit)
                {
                    out.push(exceedance(s, t, &p, start_ns));
                }
                continue;
            }
            // The latest period that could be judged decides: an exceedance followed by an
            // outage (insufficient data) stays open until a compliant period ends it, rather
            // than "resolving" because the data stopped.
            let judged = || {
                t.periods()
                    .values()
                    .rev()
                    .filter(|p| p.closed && matches!(p.outcome, Outcome::Compliant | Outcome::Exceeds))
            };
            let Some(p) = judged().next() else { continue };
            if p.outcome != Outcome::Exceeds {
                continue;
            }
            let since =
                judged().take_while(|p| p.outcome == Outcome::Exceeds).last().map_or(p.start_ns, |p| p.start_ns);
            out.push(exceedance(s, t, p, since));
        }
        let yesterday = period::day(now).0 - DAY_NS;
        let mut series: Vec<&Series> = self.series.iter().collect();
        series.sort_by(|a, b| a.id.cmp(&b.id));
        for s in &series {
            if day_start(s.first_day).is_some_and(|first| first <= yesterday) {
                let c = s.days.get(yesterday).copied().unwrap_or_default();
                let expected = expected(yesterday, yesterday + DAY_NS, s.point.expected_interval_s);
                let threshold = self.threshold(s);
                if !sufficient(c.valid, expected, threshold) {
                    out.push(Condition {
                        key: format!("availability/{}/{}/{}/{}", s.id.factory, s.id.point, s.id.parameter, yesterday),
                        kind: AlertKind::Availability,
                        severity: Severity::Warning,
                        factory: s.id.factory.to_string(),
                        point: s.id.point.to_string(),
                        parameter: Some(s.id.parameter.to_string()),
                        detail: Some(Box::new(Detail {
                            measurement: Some(s.kind),
                            what: What::Availability { valid: c.valid, expected, threshold_pct: threshold },
                        })),
                        value: Some(availability_pct(c.valid, expected)),
                        limit: None,
                        since_ns: yesterday,
                        deadline_ns: None,
                    });
                }
            }
            out.extend(super::faults::detect(&s.id, s.kind, &s.point, &s.recent));
        }
        for incident in self.incidents() {
            out.push(Condition {
                key: format!("no_data/{}/{}", incident.factory, incident.point),
                kind: AlertKind::NoData,
                severity: Severity::Warning,
                factory: incident.factory.clone(),
                point: incident.point.clone(),
                parameter: None,
                detail: Some(Box::new(Detail { measurement: None, what: What::NoData })),
                value: None,
                limit: None,
                since_ns: incident.since_ns,
                deadline_ns: None,
            });
            out.extend(super::deadlines::conditions(&incident, now));
        }
        out
    }

    /// Latest reading and current judgement per series matching a filter.
    pub fn status(&self, filter: &Filter) -> Vec<SeriesStatus> {
        let mut series: Vec<&Series> = self.series.iter().filter(|s| filter.covers_series(s)).collect();
        series.sort_by(|a, b| a.id.cmp(&b.id));
        series
            .into_iter()
            .map(|s| SeriesStatus {
                area: s.area.to_string(),
                factory: s.id.factory.to_string(),
                point: s.id.point.to_string(),
                parameter: s.id.parameter.to_string(),
                kind: s.kind,
                latest: s.recent.latest().map(|(time_ns, value, quality)| Latest { time_ns, value, quality }),
                judgements: self.tracks[s.tracks()]
                    .iter()
                    .map(|t| {
                        let (current, open) = match t.limit.averaging {
                            Averaging::Instantaneous => (t.grabs().latest(&t.limit), None),
                            _ => (
                                t.periods().values().rev().find(|p| p.closed).cloned(),
                                t.periods().values().next_back().filter(|p| !p.closed).cloned(),
                            ),
                        };
                        let applied_max = t.limit.max_at(&s.point);
                        Judgement { limit: (*t.limit).clone(), applied_max, current, open }
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A series' latest reading and where each of its limits stands ([`Engine::status`]).
#[derive(Debug, Clone, Serialize)]
pub struct SeriesStatus {
    /// Area.
    pub area: String,
    /// Factory.
    pub factory: String,
    /// Point.
    pub point: String,
    /// Parameter.
    pub parameter: String,
    /// Measurement kind.
    pub kind: Kind,
    /// The latest reading, if any.
    pub latest: Option<Latest>,
    /// Per limit: the last closed period (or grab sample) and the open one.
    pub judgements: Vec<Judgement>,
}

/// A series' latest reading.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latest {
    /// Measurement time, ns.
    pub time_ns: i64,
    /// Value, canonical unit.
    pub value: f64,
    /// Quality.
    pub quality: Quality,
}

/// Where one limit of a series stands.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The limit.
    pub limit: LimitUsed,
    /// The upper bound applied at this point: the limit's, or the receiving-water TDS
    /// rule's where it raises it.
    pub applied_max: Option<f64>,
    /// The last closed period, or the latest grab sample.
    pub current: Option<Period>,
    /// The period still open.
    pub open: Option<Period>,
}

impl Track {
    fn periods(&self) -> &BTreeMap<i64, Period> {
        match &self.judged {
            Judged::Fixed(f) => &f.periods,
            Judged::Grab(_) => &NO_PERIODS,
        }
    }

    fn grabs(&self) -> &Grabs {
        match &self.judged {
            Judged::Grab(g) => g,
            Judged::Fixed(_) => &NO_GRABS,
        }
    }

    fn fixed_mut(&mut self) -> Option<&mut Fixed> {
        match &mut self.judged {
            Judged::Fixed(f) => Some(f),
            Judged::Grab(_) => None,
        }
    }

    fn grabs_mut(&mut self) -> Option<&mut Grabs> {
        match &mut self.judged {
            Judged::Grab(g) => Some(g),
            Judged::Fixed(_) => None,
        }
    }

    /// Its key, `factory/point/parameter/limit` (made when asked: a track is judged far more
    /// often than it is named).
    fn key(&self, series: &Series) -> String {
        let s = &series.id;
        format!("{}/{}/{}/{}", s.factory, s.point, s.parameter, self.limit.id)
    }

    /// Judged periods starting in `[from, to)` (for grab samples: exceedances, and hourly
    /// summaries of the others), oldest first.
    fn list(&self, from: i64, to: i64) -> Vec<Period> {
        match self.limit.averaging {
            Averaging::Instantaneous => self.grabs().periods(from, to, &self.limit),
            _ if from >= to => Vec::new(),
            _ => self.periods().range(from..to).map(|(_, p)| p.clone()).collect(),
        }
    }
}

/// How far `v` lies beyond the limit (negative: inside it), in the limit's unit.
fn beyond(limit: &LimitUsed, point: &Point, v: f64) -> f64 {
    let over = limit.max_at(point).map_or(f64::NEG_INFINITY, |m| v - m);
    let under = limit.min.map_or(f64::NEG_INFINITY, |m| m - v);
    over.max(under)
}

/// The exceedance condition of a track, from its period `p` (the episode started at `since`).
fn exceedance(s: &Series, t: &Track, p: &Period, since: i64) -> Condition {
    let applied_max = t.limit.max_at(&s.point);
    let raised = applied_max != t.limit.max;
    Condition {
        key: format!("exceedance/{}", t.key(s)),
        kind: AlertKind::Exceedance,
        severity: Severity::Critical,
        factory: s.id.factory.to_string(),
        point: s.id.point.to_string(),
        parameter: Some(s.id.parameter.to_string()),
        detail: Some(Box::new(Detail {
            measurement: Some(s.kind),
            what: What::Exceedance {
                applied_max,
                receiving_water_tds: raised.then_some(s.point.receiving_water_tds_mg_per_l).flatten(),
                period_start_ns: p.start_ns,
            },
        })),
        value: p.value,
        limit: Some(Box::new((*t.limit).clone())),
        since_ns: since,
        deadline_ns: None,
    }
}

impl Engine {
    /// Takes a changed site registry (the registry API): the series of points it adds are
    /// watched from now on; series already watched keep the limits and point settings
    /// (expected interval, faults) they were created with.
    pub fn update_registry(&mut self, registry: Registry) {
        let now = self.now_ns();
        for f in registry.areas().iter().flat_map(|a| a.factory.iter()) {
            for p in &f.point {
                if self.registry.point(&f.id, &p.id).is_none() {
                    self.added.push((f.id.clone(), p.id.clone(), now));
                }
            }
        }
        self.registry = registry;
        self.watch_registered();
    }

    /// Creates the series of every registered point's parameters (a point that never
    /// reports is then seen as silent).
    fn watch_registered(&mut self) {
        let ids: Vec<(String, String, String)> = self
            .registry
            .areas()
            .iter()
            .flat_map(|a| a.factory.iter())
            .flat_map(|f| {
                f.point
                    .iter()
                    .flat_map(move |p| p.parameters.iter().map(move |code| (f.id.clone(), p.id.clone(), code.clone())))
            })
            .filter(|(f, p, q)| self.find(f, p, q).is_none())
            .collect();
        // Room for the new ones at once (at start, all), not a doubling's slack.
        self.series.reserve_exact(ids.len());
        let all = &self.series;
        self.series_at.reserve(ids.len(), |&i| hash_id(&all[i as usize].id));
        self.tracks.reserve_exact(ids.len());
        for (f, p, q) in ids {
            self.series_index(&f, &p, &q);
        }
    }
}

/// The number of the Bangkok day starting at `day_start_ns` (days since 1970-01-01, Bangkok).
fn day_number(day_start_ns: i64) -> i32 {
    ((day_start_ns + period::BANGKOK_OFFSET_NS).div_euclid(DAY_NS)).clamp(i64::from(i32::MIN), i64::from(i32::MAX - 1))
        as i32
}

/// The start of day number `n`; `None` for `i32::MAX` (no day).
fn day_start(n: i32) -> Option<i64> {
    (n != i32::MAX).then(|| i64::from(n) * DAY_NS - period::BANGKOK_OFFSET_NS)
}

/// What the days on disk hold for a query: per track index its judgements, per series
/// index its day counts.
#[derive(Debug, Default)]
struct History {
    tracks: HashMap<usize, Judged>,
    days: HashMap<usize, Timeline<DayCount>>,
}

impl Judged {
    /// Takes a copy of `other`'s judgements (the kinds match: both are one track's).
    fn absorb(&mut self, other: &Judged) {
        match (self, other) {
            (Judged::Fixed(a), Judged::Fixed(b)) => {
                a.periods.extend(b.periods.iter().map(|(k, v)| (*k, v.clone())));
            }
            (Judged::Grab(a), Judged::Grab(b)) => a.merge(b.clone()),
            _ => {}
        }
    }

    fn same_kind(&self, other: &Judged) -> bool {
        matches!((self, other), (Judged::Fixed(_), Judged::Fixed(_)) | (Judged::Grab(_), Judged::Grab(_)))
    }
}

/// One series' state on one day, as a judgement day file holds it.
struct DaySeries {
    factory: String,
    point: String,
    parameter: String,
    hours: Timeline<Acc>,
    day: Option<DayCount>,
    /// Per track, in the series' order: the limit's id and what it judged that day.
    tracks: Vec<(String, Judged)>,
}

impl Engine {
    /// Closed days older than `[compliance] recent_days` go to `files` at each checkpoint
    /// ([`Engine::evict`]), and come back when late data needs them.
    pub fn archive_to(&mut self, files: Arc<DayFiles>) {
        self.next_generation = self.next_generation.max(files.max_generation() + 1);
        self.day_files = Some(files);
    }

    /// The days on disk and not in memory: day start → generation.
    pub fn archived(&self) -> &BTreeMap<i64, u32> {
        &self.archived
    }

    /// Every day file the next checkpoint names (day start → generation): the days on disk
    /// only, and those in memory whose file is written.
    pub fn named_days(&self) -> BTreeMap<i64, u32> {
        let mut named = self.archived.clone();
        named.extend(self.written.iter().map(|(d, w)| (*d, w.generation)));
        named
    }

    /// Entries kept in memory: hourly aggregates, day counts, judged periods, grab entries.
    /// Bounded by the recent days once older ones are on disk.
    pub fn entries_in_memory(&self) -> usize {
        let series: usize = self.series.iter().map(|s| s.hours.len() + s.days.len()).sum();
        let periods: usize = self.tracks.iter().map(|t| t.periods().len()).sum();
        series + periods + self.grab_entries()
    }

    /// The judgements of the days on disk overlapping `[from, to)` of the series `filter`
    /// covers, read one day file at a time.
    fn history(&self, filter: &Filter, from: i64, to: i64) -> History {
        let mut view = History::default();
        let Some(files) = &self.day_files else { return view };
        let first = period::day(from).0;
        for (&day, &generation) in self.archived.range(first..) {
            if day >= to {
                break;
            }
            let decoded =
                files.read(day, generation).map_err(|e| e.to_string()).and_then(|b: Vec<u8>| persist::decode_day(&b));
            let series = match decoded {
                Ok((_, series)) => series,
                Err(error) => {
                    tracing::error!(day = %period::local_date(day), %error, "Cannot read a judgement day: the answer lacks it");
                    continue;
                }
            };
            for ds in series {
                let Some(at) = self.find(&ds.factory, &ds.point, &ds.parameter) else { continue };
                let s = &self.series[at];
                if !filter.covers_series(s) {
                    continue;
                }
                if let Some(c) = ds.day {
                    view.days.entry(at).or_default().insert(day, c);
                }
                for (t, (limit, judged)) in s.tracks().zip(ds.tracks) {
                    if self.tracks[t].limit.id != limit || !self.tracks[t].judged.same_kind(&judged) {
                        continue;
                    }
                    match view.tracks.get_mut(&t) {
                        Some(have) => have.absorb(&judged),
                        None => {
                            view.tracks.insert(t, judged);
                        }
                    }
                }
            }
        }
        view
    }

    /// Brings a day on disk back into memory (late data, a gap record, a correction for it).
    fn load_archived(&mut self, day: i64) {
        let Some(generation) = self.archived.remove(&day) else { return };
        self.archived_end = self.archived.keys().next_back().map_or(i64::MIN, |d| d + DAY_NS);
        let Some(files) = self.day_files.clone() else { return };
        let loaded = files.read(day, generation).map_err(|e| e.to_string()).and_then(|b: Vec<u8>| {
            self.load_day(&b)?;
            Ok(b)
        });
        match loaded {
            Ok(bytes) => {
                // In memory again, and its file as it was loaded: the next checkpoint writes
                // it again only if what arrives changes it.
                self.written.insert(day, persist::Written::of(generation, &bytes));
                self.written_end = self.written_end.max(day + DAY_NS);
                tracing::info!(day = %period::local_date(day), "Judgement day loaded back to judge late data");
            }
            Err(error) => tracing::error!(
                day = %period::local_date(day),
                %error,
                "Cannot load a judgement day back: the day is judged again from what arrives now"
            ),
        }
    }
}

#[cfg(test)]
mod unit_tests {
    /// Memory per series and per hour (issue 5: under 1 KiB a series): upper bounds, so a
    /// new field may fit in padding but growth costs every series and shows here.
    #[test]
    fn sizes_of_what_every_series_and_hour_holds() {
        assert!(size_of::<(i64, super::Acc)>() <= 40, "an hour's aggregate: one per series an hour");
        assert!(size_of::<super::Track>() <= 120, "a track: one per series and limit");
        assert!(size_of::<super::Series>() <= 208, "a series: one per point and parameter");
    }

    #[test]
    fn nano_equals_the_direct_conversion_on_both_paths() {
        let values = [
            0.0,
            -0.0,
            1.5e-9,
            2.5e-9,
            -2.5e-9,
            123.456_789_012,
            -8_999_999_999.0,
            9.0e9,
            9.3e9,
            -9.3e9,
            1e30,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for v in values {
            assert_eq!(super::nano(v), (v * 1e9).round() as i128, "{v}");
        }
        assert_eq!(super::nano(9.3e9), 9_300_000_000_000_000_000, "past i64: the i128 path");
    }
}
