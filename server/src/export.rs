//! Readings out to analysts as Apache Parquet: the file pandas, DuckDB and Spark read
//! directly (`GET /api/v1/readings?format=parquet`, `eitwatch-server export readings`).
//!
//! ## The file
//! One row per reading, by series (kind, factory, point, parameter) then time:
//!
//! | column | Parquet type | |
//! |---|---|---|
//! | `time` | INT64, TIMESTAMP(NANOS, UTC) | measurement time |
//! | `factory`, `point`, `kind`, `parameter` | BYTE_ARRAY, STRING | the series |
//! | `value` | DOUBLE | the value in force (a correction's, if corrected), canonical unit |
//! | `unit` | BYTE_ARRAY, STRING | the catalog's canonical unit |
//! | `quality`, `source` | BYTE_ARRAY, STRING | as in the JSON API |
//! | `below_detection_limit` | BOOLEAN | lab "not detected" |
//!
//! Strings are dictionary-encoded, pages compressed with Snappy (pure Rust). The footer's
//! key-value metadata holds JSON: `eitwatch.areas` (id, `name_en`, `name_th`, province),
//! `eitwatch.factories` (id, area, name as registered), `eitwatch.parameters` (kind, code,
//! `name_en`, `name_th`, unit) for what the file holds, `eitwatch.query` (the selection and
//! span asked for) and `eitwatch.version` (the server's version).
//!
//! ## Bounded memory
//! Rows are buffered a row group ([`ROW_GROUP_ROWS`]) at a time; each full group is encoded
//! and its bytes handed on ([`ParquetReadings::take_bytes`]) before the next is read, so an
//! export of a year holds one row group, not the year.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eitwatch_config::Catalog;
use eitwatch_config::reading::{Kind, Quality, Source};
use eitwatch_config::server_config::ServerConfig;
use eitwatch_config::site::Registry;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde::Serialize;

use crate::corrections::CorrectionLog;
use crate::store::{Scan, SeriesKey, Store, Stored};

/// Rows buffered, then written, as one row group (≈ 15 MB of buffers at most: 32 bytes per
/// string cell, shared with its series).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Readings taken from the store at a time (its lock held for one slice only).
const SLICE_READINGS: usize = 4096;

const SCHEMA: &str = "
message reading {
  REQUIRED INT64 time (TIMESTAMP(NANOS,true));
  REQUIRED BYTE_ARRAY factory (STRING);
  REQUIRED BYTE_ARRAY point (STRING);
  REQUIRED BYTE_ARRAY kind (STRING);
  REQUIRED BYTE_ARRAY parameter (STRING);
  REQUIRED DOUBLE value;
  REQUIRED BYTE_ARRAY unit (STRING);
  REQUIRED BYTE_ARRAY quality (STRING);
  REQUIRED BYTE_ARRAY source (STRING);
  REQUIRED BOOLEAN below_detection_limit;
}";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Parquet encoder refused (a bug, or memory).
    #[error("cannot write Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file of the data directory, or the file written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The store does not open.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A server answers at the data directory's listen address.
    #[error(
        "{data_dir}: a server is running on this data directory (it answers at {address}); stop it, \
         or ask it: GET /api/v1/readings?format=parquet"
    )]
    Running {
        /// The data directory.
        data_dir: PathBuf,
        /// Where the server answered.
        address: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

/// What was asked for, recorded in the file's metadata.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Query {
    /// Area id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Factory id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factory: Option<String>,
    /// Point id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// Parameter code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// From (inclusive), ns since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ns: Option<i64>,
    /// To (exclusive), ns since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ns: Option<i64>,
}

/// The names of one series, encoded once and shared by its rows.
struct SeriesNames {
    factory: ByteArray,
    point: ByteArray,
    kind: ByteArray,
    parameter: ByteArray,
    unit: ByteArray,
}

/// One row group's columns.
#[derive(Default)]
struct Rows {
    time: Vec<i64>,
    factory: Vec<ByteArray>,
    point: Vec<ByteArray>,
    kind: Vec<ByteArray>,
    parameter: Vec<ByteArray>,
    value: Vec<f64>,
    unit: Vec<ByteArray>,
    quality: Vec<ByteArray>,
    source: Vec<ByteArray>,
    below_detection_limit: Vec<bool>,
}

impl Rows {
    fn clear(&mut self) {
        *self = Rows::default();
    }
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// A Parquet file of readings being written: rows go in ([`ParquetReadings::push`]), bytes
/// come out a row group at a time ([`ParquetReadings::take_bytes`]), then the footer
/// ([`ParquetReadings::finish`]).
pub struct ParquetReadings {
    writer: SerializedFileWriter<Vec<u8>>,
    rows: Rows,
    registry: Arc<Registry>,
    query: Query,
    /// The series last pushed, and its names.
    current: Option<(SeriesKey, SeriesNames)>,
    qualities: Vec<ByteArray>,
    sources: [ByteArray; 2],
    factories: BTreeSet<Arc<str>>,
    parameters: BTreeSet<(Kind, Arc<str>)>,
    count: u64,
}

impl std::fmt::Debug for ParquetReadings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetReadings").field("query", &self.query).field("rows", &self.count).finish()
    }
}

impl ParquetReadings {
    /// A new file for the readings of `query`; `registry` names the factories and areas.
    pub fn new(registry: Arc<Registry>, query: Query) -> Result<ParquetReadings, ExportError> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("eitwatch-server {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), schema, Arc::new(properties))?;
        Ok(ParquetReadings {
            writer,
            rows: Rows::default(),
            registry,
            query,
            current: None,
            qualities: Quality::ALL.iter().map(|q| text(q.as_str())).collect(),
            sources: [text("instrument"), text("lab")],
            factories: BTreeSet::new(),
            parameters: BTreeSet::new(),
            count: 0,
        })
    }

    /// Readings written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a reading (`value`: the value in force); writes a row group when one is full.
    pub fn push(&mut self, key: &SeriesKey, time_ns: i64, value: f64, stored: &Stored) -> Result<(), ExportError> {
        if self.current.as_ref().is_none_or(|(k, _)| k != key) {
            let unit = Catalog::builtin().get(key.kind, &key.parameter).map_or("", |p| p.unit.as_str());
            let names = SeriesNames {
                factory: text(&key.factory),
                point: text(&key.point),
                kind: text(key.kind.as_str()),
                parameter: text(&key.parameter),
                unit: text(unit),
            };
            self.factories.insert(key.factory.clone());
            self.parameters.insert((key.kind, key.parameter.clone()));
            self.current = Some((key.clone(), names));
        }
        let Some((_, names)) = &self.current else { return Ok(()) };
        let r = &mut self.rows;
        r.time.push(time_ns);
        r.factory.push(names.factory.clone());
        r.point.push(names.point.clone());
        r.kind.push(names.kind.clone());
        r.parameter.push(names.parameter.clone());
        r.value.push(value);
        r.unit.push(names.unit.clone());
        let q = Quality::ALL.iter().position(|q| *q == stored.quality).unwrap_or(0);
        r.quality.push(self.qualities[q].clone());
        r.source.push(self.sources[usize::from(stored.source == Source::Lab)].clone());
        r.below_detection_limit.push(stored.below_detection_limit);
        self.count += 1;
        if r.time.len() >= ROW_GROUP_ROWS {
            self.write_row_group()?;
        }
        Ok(())
    }

    fn write_row_group(&mut self) -> Result<(), ExportError> {
        if self.rows.time.is_empty() {
            return Ok(());
        }
        let r = &self.rows;
        let mut group = self.writer.next_row_group()?;
        let mut column = 0;
        while let Some(mut c) = group.next_column()? {
            match column {
                0 => c.typed::<Int64Type>().write_batch(&r.time, None, None)?,
                1 => c.typed::<ByteArrayType>().write_batch(&r.factory, None, None)?,
                2 => c.typed::<ByteArrayType>().write_batch(&r.point, None, None)?,
                3 => c.typed::<ByteArrayType>().write_batch(&r.kind, None, None)?,
                4 => c.typed::<ByteArrayType>().write_batch(&r.parameter, None, None)?,
                5 => c.typed::<DoubleType>().write_batch(&r.value, None, None)?,
                6 => c.typed::<ByteArrayType>().write_batch(&r.unit, None, None)?,
                7 => c.typed::<ByteArrayType>().write_batch(&r.quality, None, None)?,
                8 => c.typed::<ByteArrayType>().write_batch(&r.source, None, None)?,
                _ => c.typed::<BoolType>().write_batch(&r.below_detection_limit, None, None)?,
            };
            c.close()?;
            column += 1;
        }
        group.close()?;
        self.rows.clear();
        Ok(())
    }

    /// The file's bytes encoded since the last call (whole row groups; empty while one fills).
    pub fn take_bytes(&mut self) -> Result<Vec<u8>, ExportError> {
        self.writer.flush().map_err(|e| ExportError::Parquet(e.into()))?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }

    /// Writes the last row group, the metadata and the footer; the bytes not yet taken.
    pub fn finish(mut self) -> Result<Vec<u8>, ExportError> {
        self.write_row_group()?;
        for (key, value) in self.metadata() {
            self.writer.append_key_value_metadata(KeyValue::new(key.to_string(), value));
        }
        self.writer.finish()?;
        self.take_bytes()
    }

    /// The names of what the file holds, the query and the version, as JSON.
    fn metadata(&self) -> Vec<(&'static str, String)> {
        #[derive(Serialize)]
        struct AreaNames<'a> {
            id: &'a str,
            name_en: &'a str,
            name_th: &'a str,
            province: &'a str,
        }
        #[derive(Serialize)]
        struct FactoryNames<'a> {
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            area: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct ParameterNames<'a> {
            kind: Kind,
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            name_en: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name_th: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            unit: Option<&'a str>,
        }
        let mut areas = BTreeMap::new();
        let factories: Vec<FactoryNames<'_>> = self
            .factories
            .iter()
            .map(|id| {
                let found = self.registry.factory(id);
                if let Some((area, _)) = found {
                    areas.insert(area.id.as_str(), area);
                }
                FactoryNames { id, area: found.map(|(a, _)| a.id.as_str()), name: found.map(|(_, f)| f.name.as_str()) }
            })
            .collect();
        // An area asked for is named even when it has no readings in the span.
        if let Some(a) = self.query.area.as_deref().and_then(|a| self.registry.areas().iter().find(|x| x.id == a)) {
            areas.insert(a.id.as_str(), a);
        }
        let areas: Vec<AreaNames<'_>> = areas
            .values()
            .map(|a| AreaNames { id: &a.id, name_en: &a.name_en, name_th: &a.name_th, province: &a.province })
            .collect();
        let parameters: Vec<ParameterNames<'_>> = self
            .parameters
            .iter()
            .map(|(kind, code)| {
                let p = Catalog::builtin().get(*kind, code);
                ParameterNames {
                    kind: *kind,
                    code,
                    name_en: p.map(|p| p.name_en.as_str()),
                    name_th: p.and_then(|p| p.name_th.as_deref()),
                    unit: p.map(|p| p.unit.as_str()),
                }
            })
            .collect();
        vec![
            ("eitwatch.areas", json(&areas)),
            ("eitwatch.factories", json(&factories)),
            ("eitwatch.parameters", json(&parameters)),
            ("eitwatch.query", json(&self.query)),
            ("eitwatch.version", env!("CARGO_PKG_VERSION").to_string()),
        ]
    }
}

/// Plain structs of names serialize without fail.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An export of a store's scan, a row group at a time: [`ReadingsExport::next_piece`] reads
/// the store until a row group's bytes are ready, then the footer.
#[derive(Debug)]
pub struct ReadingsExport {
    scan: Scan,
    file: Option<ParquetReadings>,
    slice: Vec<(usize, i64, Stored)>,
}

impl ReadingsExport {
    /// An export of `scan` (already filtered to what the reader may see).
    pub fn new(scan: Scan, registry: Arc<Registry>, query: Query) -> Result<ReadingsExport, ExportError> {
        Ok(ReadingsExport { scan, file: Some(ParquetReadings::new(registry, query)?), slice: Vec::new() })
    }

    /// The next bytes of the file, `None` after the last. Blocking: reads the store.
    pub fn next_piece(
        &mut self,
        store: &Store,
        corrections: &CorrectionLog,
    ) -> Option<Result<(Vec<u8>, u64), ExportError>> {
        let file = self.file.as_mut()?;
        let any_corrections = !corrections.is_empty();
        loop {
            if !store.read(&mut self.scan, SLICE_READINGS, &mut self.slice) {
                let file = self.file.take()?;
                let count = file.count();
                return Some(file.finish().map(|b| (b, count)));
            }
            for &(i, t, s) in &self.slice {
                let k = self.scan.key(i);
                let value = match any_corrections {
                    true => corrections.of(&k.factory, &k.point, &k.parameter, t).last().map_or(s.value, |c| c.value),
                    false => s.value,
                };
                if let Err(e) = file.push(k, t, value, &s) {
                    self.file = None;
                    return Some(Err(e));
                }
            }
            match file.take_bytes() {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Some(Ok((b, file.count()))),
                Err(e) => {
                    self.file = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Writes the readings `query` selects from the store of a stopped server's data directory
/// to `out` (to `<out>.partial`, synced, then renamed: never a half file under `out`).
/// The registry (for `area` and the names) is `config`'s areas with the data directory's
/// registry log replayed over them. Returns the readings written.
///
/// The store is opened as the server opens it, so the server must not be running on the
/// directory: one answering at its `listen-address` is refused. Opening starts (and
/// closing seals) one empty segment; nothing else in the directory changes.
pub fn readings_to_file(config: &ServerConfig, data_dir: &Path, query: Query, out: &Path) -> Result<u64, ExportError> {
    let listen_file = data_dir.join("listen-address");
    if let Ok(address) = std::fs::read_to_string(&listen_file) {
        let address = address.trim().to_string();
        let answers = address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(500)).is_ok());
        if answers {
            return Err(ExportError::Running { data_dir: data_dir.to_path_buf(), address });
        }
    }
    let registry = Arc::new(Registry::new(
        crate::registry::current(&config.area, data_dir).map_err(io(&data_dir.join("registry.log")))?,
    ));
    let corrections_path = data_dir.join("corrections.log");
    let corrections = CorrectionLog::open(&corrections_path).map_err(io(&corrections_path))?;
    let store = Store::open(&data_dir.join("store"), &config.store)?;
    let written = write_file(&store, &corrections, registry, query, out);
    let closed = store.close();
    let count = written?;
    closed?;
    Ok(count)
}

fn write_file(
    store: &Store,
    corrections: &CorrectionLog,
    registry: Arc<Registry>,
    query: Query,
    out: &Path,
) -> Result<u64, ExportError> {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let scan = store.scan(
        |k| {
            eq(&query.factory, &k.factory)
                && eq(&query.point, &k.point)
                && eq(&query.parameter, &k.parameter)
                && query
                    .area
                    .as_deref()
                    .is_none_or(|a| registry.factory(&k.factory).is_some_and(|(area, _)| area.id == a))
        },
        query.from_ns.unwrap_or(i64::MIN),
        query.to_ns.unwrap_or(i64::MAX),
        None,
    );
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut export = ReadingsExport::new(scan, registry, query)?;
    let mut count = 0;
    let written = (|| {
        while let Some(piece) = export.next_piece(store, corrections) {
            let (bytes, n) = piece?;
            file.write_all(&bytes).map_err(io(&partial))?;
            count = n;
        }
        file.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, out).map_err(io(out))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map(|()| count)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use parquet::file::reader::{FileReader as _, SerializedFileReader};

    use super::*;

    fn key(parameter: &str) -> SeriesKey {
        SeriesKey { factory: "f1".into(), point: "outfall-1".into(), kind: Kind::Effluent, parameter: parameter.into() }
    }

    /// Bytes come out a whole row group at a time and none between: what the writer holds is
    /// one row group, whatever the file's size; the pieces make one file with every row.
    #[test]
    fn row_groups_leave_as_they_fill_and_the_pieces_make_the_file() {
        let mut file = ParquetReadings::new(Arc::new(Registry::new(Vec::new())), Query::default()).expect("a writer");
        let stored =
            Stored { value: 0.0, quality: Quality::Valid, source: Source::Instrument, below_detection_limit: false };
        let rows = 3 * ROW_GROUP_ROWS + 5;
        let (cod, ph) = (key("cod"), key("ph"));
        let mut pieces = Vec::new();
        for i in 0..rows {
            let k = if i < rows / 2 { &cod } else { &ph };
            file.push(k, i as i64, i as f64 / 10.0, &stored).expect("push");
            let piece = file.take_bytes().expect("bytes");
            match (i + 1) % ROW_GROUP_ROWS {
                0 => assert!(!piece.is_empty(), "row group {} written at row {i}", (i + 1) / ROW_GROUP_ROWS),
                _ => assert!(i == 0 || piece.is_empty(), "row {i}: nothing between row groups"),
            }
            pieces.push(piece);
        }
        assert_eq!(file.count(), rows as u64);
        pieces.push(file.finish().expect("the footer"));
        let mut out = tempfile::tempfile().expect("a temporary file");
        out.write_all(&pieces.concat()).expect("write");
        let reader = SerializedFileReader::new(out).expect("a Parquet file");
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 4);
        assert_eq!(meta.file_metadata().num_rows(), rows as i64);
        let kv = meta.file_metadata().key_value_metadata().expect("key-value metadata");
        let parameters = kv.iter().find(|k| k.key == "eitwatch.parameters").and_then(|k| k.value.clone());
        assert_eq!(
            parameters.as_deref(),
            Some(
                r#"[{"kind":"effluent","code":"cod","name_en":"Chemical oxygen demand (COD)","name_th":"ซีโอดี","unit":"mg/L"},{"kind":"effluent","code":"ph","name_en":"pH","name_th":"ความเป็นกรดและด่าง","unit":"pH"}]"#
            )
        );
    }
}
