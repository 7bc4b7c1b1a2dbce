//! Sealed partitions: immutable files of one Bangkok day's readings, per series in column
//! blocks, in `<store>/parts/`.
//!
//! A file is named `<day>_<NNNNNNNNNN>.part`: the day (days since 1970-01-01 in Bangkok
//! time, UTC+7, no daylight saving) and a number unique in the store. It is written under
//! `<name>.tmp`, synced, renamed and the directory synced before the manifest names it; a
//! file the manifest does not name is the leftover of a flush or compaction that did not
//! finish, and is deleted at open.
//!
//! ## Format (version 2), all fixed-width integers little-endian
//! A *varint* is LEB128, a *zig-zag varint* an `i64` as the codec keeps it (`codec.rs`).
//! ```text
//! header  "EITPART\n" | version: u16 | level: u8 | 0: u8 | day: i64
//! blocks  per block: time codec: u8 | value codec: u8 | flag codec: u8
//!                    | times bytes: varint | values bytes: varint
//!                    | times | values | flags (the rest of the block)
//! index   DEFLATE (RFC 1951, raw) of:
//!         series: varint, then per series (in the order its blocks are written):
//!           kind: u8 | factory, point, parameter: varint length + UTF-8 | blocks: varint,
//!           then per block (in time order): bytes: varint | readings: varint
//!             | first time − the day's first nanosecond: zig-zag varint
//!             | last time − first time: varint | CRC-32 of the block: u32
//! footer  index offset: u64 | index bytes: u32 | index CRC-32: u32 | "EITPEND\n"
//! ```
//! Blocks lie end to end from the header on, in the index's order, so a block's offset is
//! the header's size plus the bytes of the blocks before it, and the last one ends where the
//! index starts. The index CRC-32 is of the index's bytes as stored (deflated); it inflates
//! to at most [`MAX_INDEX_BYTES`].
//!
//! A block holds at most [`BLOCK_POINTS`] readings of one series, by time. Codec ids: times
//! `1` = `codec::encode_times`; values `1` = `codec::encode_values`; flags `0` = one byte a
//! reading (see `log::flags_of`), `1` = runs of `[flags: u8][run: varint]`, `2` = one byte,
//! the flags of every reading of the block. A reader refuses a codec id it does not know,
//! naming the file and block. The codec's columns name their own mode (`codec.rs`): values
//! modes 3 (converted), 4 and 5 (entropy-coded) and times mode 2 are newer than the others,
//! so a build without them refuses such a block, naming its mode.
//!
//! Version 1 files are read as well: their blocks start `time codec: u8 | value codec: u8 |
//! flag codec: u8 | 0: u8 | times bytes: u32 | values bytes: u32 | flags bytes: u32`, and
//! their index is not deflated: `series: u32`, per series `kind: u8`, the three names as
//! `u16 length + UTF-8`, `blocks: u32`, per block `offset: u64 | bytes: u32 | readings: u32 |
//! first time: i64 | last time: i64 | CRC-32: u32`. A compaction rewrites a day in
//! version 2.
//!
//! Level 0 files are flushes of the memtable (runs), their columns in the packed modes only;
//! level 1 files are a closed day's files merged into one (compaction), its columns the
//! smallest; level 2 files are level-0 files of a day still being filled merged into one,
//! in the packed modes too, a series' blocks copied byte for byte when they follow one
//! another in time (the day's files are all merged into a level-1 file once it is no longer
//! filled). A day may have several files; their readings never overlap (a reading
//! is stored once).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use eitwatch_config::reading::Kind;

use super::codec;
use super::log::{flags_of, get_varint, put_varint, stored_of};
use super::{SeriesKey, StoreError, Stored};

/// The first bytes of a partition file.
const MAGIC: &[u8; 8] = b"EITPART\n";
/// The last bytes of a partition file.
const END_MAGIC: &[u8; 8] = b"EITPEND\n";
/// The format version this build writes; it reads this one and [`VERSION_1`].
pub(crate) const VERSION: u16 = 2;
/// The first format, still read.
const VERSION_1: u16 = 1;
/// The most bytes an index inflates to: 64 MiB, far above a day of a province's series.
const MAX_INDEX_BYTES: u64 = 64 << 20;
const HEADER_BYTES: usize = 8 + 2 + 1 + 1 + 8;
const FOOTER_BYTES: usize = 8 + 4 + 4 + 8;
/// A file's level: a flush of the memtable, its columns packed.
pub(crate) const LEVEL_FLUSHED: u8 = 0;
/// A file's level: a closed day's files merged into one, its columns the smallest.
pub(crate) const LEVEL_DAY: u8 = 1;
/// A file's level: the flushed files of a day still being filled merged into one, packed.
pub(crate) const LEVEL_FILLING: u8 = 2;

/// Readings in a block at most: a day of one-second readings of a series reads as 22 blocks.
pub(crate) const BLOCK_POINTS: usize = 4096;

const TIMES_CODEC: u8 = 1;
const VALUES_CODEC: u8 = 1;
const FLAGS_RAW: u8 = 0;
const FLAGS_RUNS: u8 = 1;
const FLAGS_ONE: u8 = 2;

/// Nanoseconds in a day.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
/// Bangkok's offset from UTC.
const BANGKOK_NS: i64 = 7 * 3_600_000_000_000;

/// The Bangkok day of a time (days since 1970-01-01 in UTC+7).
pub(crate) fn day_of(time_ns: i64) -> i64 {
    time_ns.saturating_add(BANGKOK_NS).div_euclid(DAY_NS)
}

/// The first nanosecond of a Bangkok day.
pub(crate) fn day_start(day: i64) -> i64 {
    day.saturating_mul(DAY_NS).saturating_sub(BANGKOK_NS)
}

/// The first nanosecond after a Bangkok day (`i64::MAX` for the last day time can name).
pub(crate) fn day_end(day: i64) -> i64 {
    day.checked_add(1).and_then(|d| d.checked_mul(DAY_NS)).map_or(i64::MAX, |t| t.saturating_sub(BANGKOK_NS))
}

/// The directory of the partition files in a store directory.
pub(crate) fn dir(store: &Path) -> PathBuf {
    store.join("parts")
}

/// A partition file's name.
pub(crate) fn file_name(day: i64, n: u64) -> String {
    format!("{day}_{n:010}.part")
}

/// The number in a partition file's name.
pub(crate) fn number_of(name: &str) -> Option<u64> {
    name.strip_suffix(".part")?.rsplit_once('_')?.1.parse().ok()
}

/// Where one series' block is in a file, what it holds, and its checksum.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockRef {
    /// The store's series id.
    pub(crate) series: u32,
    pub(crate) offset: u64,
    pub(crate) bytes: u32,
    pub(crate) count: u32,
    pub(crate) first_ns: i64,
    pub(crate) last_ns: i64,
    crc32: u32,
}

/// An open partition file and its block index (by series id, then time).
///
/// The block index is held while the file is in use ([`Part::blocks_of`] reads it back when
/// it was let go) and let go by [`Part::release_index`] when unused since the last call: the
/// store keeps the indexes of the days being read and written, not of all history.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) name: String,
    /// The number in its name.
    pub(crate) number: u64,
    path: PathBuf,
    pub(crate) day: i64,
    pub(crate) level: u8,
    /// Its format version.
    version: u16,
    pub(crate) bytes: u64,
    pub(crate) readings: u64,
    file: File,
    /// The store's id of each series of the index, in the index's order (what reading it
    /// back needs instead of interning its keys again).
    ids: Box<[u32]>,
    /// Where the index is: offset, bytes, CRC-32.
    index_at: (u64, u32, u32),
    blocks: std::sync::Mutex<Option<std::sync::Arc<[BlockRef]>>>,
    /// The index was asked for since the last [`Part::release_index`].
    used: std::sync::atomic::AtomicBool,
}

/// A series id and its first time, last time and readings in a file.
pub(crate) type SeriesSpan = (u32, (i64, i64, u64));

/// One series' blocks of a partition file, by time (they keep its block index in memory).
#[derive(Debug, Clone)]
pub(crate) struct SeriesBlocks {
    all: std::sync::Arc<[BlockRef]>,
    range: std::ops::Range<usize>,
}

impl std::ops::Deref for SeriesBlocks {
    type Target = [BlockRef];
    fn deref(&self) -> &[BlockRef] {
        &self.all[self.range.clone()]
    }
}

fn damaged(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Damaged { path: path.to_path_buf(), reason: reason.into() }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// A little-endian reader over an index, failing on a short read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.bytes.get(self.at..self.at + n).ok_or_else(|| format!("index cut short at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let mut b = [0; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn text(&mut self) -> Result<std::sync::Arc<str>, String> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map(Into::into).map_err(|e| format!("a name is not UTF-8: {e}"))
    }
}

fn kind_code(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

impl Part {
    /// Opens a partition file: checks its header, footer and index (not its blocks, whose
    /// checksums are checked as they are read); `intern` gives the store's id of each
    /// series in it.
    pub(crate) fn open(path: &Path, mut intern: impl FnMut(SeriesKey) -> u32) -> Result<Part, StoreError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let file = File::open(path).map_err(io(path))?;
        let bytes = file.metadata().map_err(io(path))?.len();
        if bytes < (HEADER_BYTES + FOOTER_BYTES) as u64 {
            return Err(damaged(path, format!("{bytes} bytes: shorter than a partition file's header and footer")));
        }
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact_at(&mut header, 0).map_err(io(path))?;
        if &header[..8] != MAGIC {
            return Err(damaged(path, "not a partition file (no EITPART magic)"));
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version != VERSION && version != VERSION_1 {
            return Err(damaged(
                path,
                format!("partition format {version}; this build reads {VERSION_1} and {VERSION}"),
            ));
        }
        let level = header[10];
        let mut day = [0u8; 8];
        day.copy_from_slice(&header[12..20]);
        let day = i64::from_le_bytes(day);
        let mut footer = [0u8; FOOTER_BYTES];
        file.read_exact_at(&mut footer, bytes - FOOTER_BYTES as u64).map_err(io(path))?;
        let mut r = Reader { bytes: &footer, at: 0 };
        let (index_offset, index_bytes, index_crc) = (r.u64(), r.u32(), r.u32());
        let (index_offset, index_bytes, index_crc) = (
            index_offset.map_err(|e| damaged(path, e))?,
            index_bytes.map_err(|e| damaged(path, e))?,
            index_crc.map_err(|e| damaged(path, e))?,
        );
        if &footer[16..] != END_MAGIC {
            return Err(damaged(path, "no footer (EITPEND magic): the file is cut short"));
        }
        if index_offset + u64::from(index_bytes) + FOOTER_BYTES as u64 != bytes {
            return Err(damaged(
                path,
                format!("its index at byte {index_offset} ({index_bytes} bytes) does not end at the footer"),
            ));
        }
        let index_at = (index_offset, index_bytes, index_crc);
        let mut ids = Vec::new();
        let blocks = read_index_at(&file, path, version, day, index_at, &mut |key| {
            let id = intern(key);
            ids.push(id);
            id
        })?;
        let readings = blocks.iter().map(|b| u64::from(b.count)).sum();
        let number = number_of(&name).ok_or_else(|| damaged(path, "not named <day>_<number>.part"))?;
        Ok(Part {
            name,
            number,
            path: path.to_path_buf(),
            day,
            level,
            version,
            bytes,
            readings,
            file,
            ids: ids.into(),
            index_at,
            blocks: std::sync::Mutex::new(Some(blocks)),
            used: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The block index, read back from the file if it was let go.
    fn blocks(&self) -> Result<std::sync::Arc<[BlockRef]>, StoreError> {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut held = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(blocks) = held.as_ref() {
            return Ok(blocks.clone());
        }
        let mut next = self.ids.iter();
        let mut fewer = false;
        let blocks = read_index_at(&self.file, &self.path, self.version, self.day, self.index_at, &mut |_| {
            next.next().copied().unwrap_or_else(|| {
                fewer = true;
                u32::MAX
            })
        })?;
        if fewer || next.next().is_some() {
            return Err(damaged(&self.path, "its block index names other series than when it was opened"));
        }
        *held = Some(blocks.clone());
        Ok(blocks)
    }

    /// Lets the block index go if it was not asked for since the last call (or at once,
    /// `now`); returns whether it went.
    pub(crate) fn release_index(&self, now: bool) -> bool {
        if self.used.swap(false, std::sync::atomic::Ordering::Relaxed) && !now {
            return false;
        }
        self.blocks.lock().unwrap_or_else(|p| p.into_inner()).take().is_some()
    }

    /// Whether the block index is in memory.
    #[cfg(test)]
    pub(crate) fn index_held(&self) -> bool {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The blocks of series `id`, by time.
    pub(crate) fn blocks_of(&self, id: u32) -> Result<SeriesBlocks, StoreError> {
        let all = self.blocks()?;
        let a = all.partition_point(|b| b.series < id);
        let b = all.partition_point(|b| b.series <= id);
        Ok(SeriesBlocks { all, range: a..b })
    }

    /// Every series id in the file, ascending.
    pub(crate) fn series(&self) -> Vec<u32> {
        let mut ids = self.ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Per series, (first time, last time, readings): what the file holds.
    pub(crate) fn summary(&self) -> Result<Vec<SeriesSpan>, StoreError> {
        let blocks = self.blocks()?;
        let mut out: Vec<SeriesSpan> = Vec::new();
        for b in blocks.iter() {
            match out.last_mut() {
                Some((s, e)) if *s == b.series => {
                    *e = (e.0.min(b.first_ns), e.1.max(b.last_ns), e.2 + u64::from(b.count));
                }
                _ => out.push((b.series, (b.first_ns, b.last_ns, u64::from(b.count)))),
            }
        }
        Ok(out)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes a block, appending its readings (by time) to `out`.
    pub(crate) fn read_block(&self, b: &BlockRef, out: &mut Vec<(i64, Stored)>) -> Result<(), StoreError> {
        let mut bytes = Vec::new();
        self.block_bytes(b, &mut bytes)?;
        let at = |reason: String| damaged(&self.path, format!("block at byte {}: {reason}", b.offset));
        decode_block(&bytes, self.version, b.count as usize, out).map_err(at)
    }

    /// A block's bytes as stored, checked against its CRC-32, in `bytes`.
    fn block_bytes(&self, b: &BlockRef, bytes: &mut Vec<u8>) -> Result<(), StoreError> {
        bytes.clear();
        bytes.resize(b.bytes as usize, 0);
        self.file.read_exact_at(bytes, b.offset).map_err(io(&self.path))?;
        if crc32fast::hash(bytes) != b.crc32 {
            return Err(damaged(&self.path, format!("block at byte {}: its bytes differ from its CRC-32", b.offset)));
        }
        Ok(())
    }

    /// Whether its blocks are in the format this build writes, so that they can be copied
    /// into a new file as they are.
    pub(crate) fn blocks_copyable(&self) -> bool {
        self.version == VERSION
    }

    /// Appends series `id`'s readings within `[from_ns, to_ns)` to `out`, block by block.
    pub(crate) fn read_range(
        &self,
        id: u32,
        from_ns: i64,
        to_ns: i64,
        out: &mut Vec<(i64, Stored)>,
    ) -> Result<(), StoreError> {
        let mut block = Vec::new();
        for b in self.blocks_of(id)?.iter() {
            if b.last_ns < from_ns || b.first_ns >= to_ns {
                continue;
            }
            block.clear();
            self.read_block(b, &mut block)?;
            out.extend(block.iter().filter(|(t, _)| *t >= from_ns && *t < to_ns));
        }
        Ok(())
    }
}

/// Reads a file's block index (checked against its CRC-32), sorted by series id then time.
fn read_index_at(
    file: &File,
    path: &Path,
    version: u16,
    day: i64,
    (offset, bytes, crc): (u64, u32, u32),
    intern: &mut impl FnMut(SeriesKey) -> u32,
) -> Result<std::sync::Arc<[BlockRef]>, StoreError> {
    let mut index = vec![0u8; bytes as usize];
    file.read_exact_at(&mut index, offset).map_err(io(path))?;
    if crc32fast::hash(&index) != crc {
        return Err(damaged(path, "its block index differs from its CRC-32"));
    }
    let mut blocks = if version == VERSION_1 {
        read_index_v1(&index, offset, intern)
    } else {
        inflate_index(&index).and_then(|index| read_index(&index, offset, day, intern))
    }
    .map_err(|e| damaged(path, e))?;
    blocks.sort_by_key(|b| (b.series, b.first_ns));
    Ok(blocks.into())
}

fn inflate_index(stored: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut index = Vec::new();
    flate2::read::DeflateDecoder::new(stored)
        .take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut index)
        .map_err(|e| format!("its block index does not inflate: {e}"))?;
    if index.len() as u64 > MAX_INDEX_BYTES {
        return Err(format!("its block index inflates to more than {MAX_INDEX_BYTES} bytes"));
    }
    Ok(index)
}

fn deflate_index(index: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::with_capacity(index.len() / 2), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(index);
    e.finish().unwrap_or_default()
}

/// A version 2 index (inflated).
fn read_index(
    index: &[u8],
    index_offset: u64,
    day: i64,
    intern: &mut impl FnMut(SeriesKey) -> u32,
) -> Result<Vec<BlockRef>, String> {
    let at = |e: codec::CodecError| format!("index: {e}");
    let mut i = 0;
    let var = |i: &mut usize| codec::get_varint(index, i).map_err(at);
    let series = var(&mut i)?;
    let day_ns = day_start(day);
    let mut offset = HEADER_BYTES as u64;
    let mut blocks = Vec::new();
    for _ in 0..series {
        let kind = *index.get(i).and_then(|k| Kind::ALL.get(*k as usize)).ok_or("index: unknown series kind")?;
        i += 1;
        let text = |i: &mut usize| -> Result<std::sync::Arc<str>, String> {
            let n = usize::try_from(var(i)?).map_err(|_| "index: a name's length overflows")?;
            let bytes = index.get(*i..i.saturating_add(n)).ok_or("index: a name cut short")?;
            *i += n;
            std::str::from_utf8(bytes).map(Into::into).map_err(|e| format!("index: a name is not UTF-8: {e}"))
        };
        let (factory, point, parameter) = (text(&mut i)?, text(&mut i)?, text(&mut i)?);
        let id = intern(SeriesKey { factory, point, kind, parameter });
        for _ in 0..var(&mut i)? {
            let bytes = u32::try_from(var(&mut i)?).map_err(|_| "index: a block's size overflows")?;
            let count = u32::try_from(var(&mut i)?).map_err(|_| "index: a block's readings overflow")?;
            let first_ns = day_ns.wrapping_add(codec::unzigzag(var(&mut i)?));
            let last_ns = first_ns.wrapping_add(var(&mut i)? as i64);
            let crc = index.get(i..i + 4).ok_or("index: a block's CRC-32 cut short")?;
            i += 4;
            let crc32 = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            if offset + u64::from(bytes) > index_offset {
                return Err(format!("a block at byte {offset} ({bytes} bytes) is outside the blocks"));
            }
            blocks.push(BlockRef { series: id, offset, bytes, count, first_ns, last_ns, crc32 });
            offset += u64::from(bytes);
        }
    }
    if i != index.len() {
        return Err(format!("{} bytes after the last series of the index", index.len() - i));
    }
    if offset != index_offset {
        return Err(format!("its blocks end at byte {offset}, not where its index starts ({index_offset})"));
    }
    Ok(blocks)
}

fn read_index_v1(
    index: &[u8],
    index_offset: u64,
    intern: &mut impl FnMut(SeriesKey) -> u32,
) -> Result<Vec<BlockRef>, String> {
    let mut r = Reader { bytes: index, at: 0 };
    let series = r.u32()?;
    let mut blocks = Vec::new();
    for _ in 0..series {
        let kind = *Kind::ALL.get(r.u8()? as usize).ok_or("unknown series kind")?;
        let (factory, point, parameter) = (r.text()?, r.text()?, r.text()?);
        let id = intern(SeriesKey { factory, point, kind, parameter });
        for _ in 0..r.u32()? {
            let offset = r.u64()?;
            let bytes = r.u32()?;
            let count = r.u32()?;
            let first_ns = r.u64()? as i64;
            let last_ns = r.u64()? as i64;
            let crc32 = r.u32()?;
            if offset < HEADER_BYTES as u64 || offset + u64::from(bytes) > index_offset {
                return Err(format!("a block at byte {offset} ({bytes} bytes) is outside the blocks"));
            }
            blocks.push(BlockRef { series: id, offset, bytes, count, first_ns, last_ns, crc32 });
        }
    }
    if r.at != index.len() {
        return Err(format!("{} bytes after the last series of the index", index.len() - r.at));
    }
    Ok(blocks)
}

fn decode_block(bytes: &[u8], version: u16, n: usize, out: &mut Vec<(i64, Stored)>) -> Result<(), String> {
    let mut r = Reader { bytes, at: 0 };
    let (tc, vc, fc) = (r.u8()?, r.u8()?, r.u8()?);
    let (times_bytes, values_bytes, flags_bytes) = if version == VERSION_1 {
        r.u8()?;
        let (tb, vb, fb) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        (r.take(tb)?, r.take(vb)?, r.take(fb)?)
    } else {
        let mut var = || -> Result<usize, String> {
            let v = codec::get_varint(bytes, &mut r.at).map_err(|e| format!("block header: {e}"))?;
            usize::try_from(v).map_err(|_| "block header: a column's size overflows".to_string())
        };
        let (tb, vb) = (var()?, var()?);
        (r.take(tb)?, r.take(vb)?, &bytes[r.at..])
    };
    let flags_known = fc == FLAGS_RAW || fc == FLAGS_RUNS || (fc == FLAGS_ONE && version != VERSION_1);
    if tc != TIMES_CODEC || vc != VALUES_CODEC || !flags_known {
        return Err(format!("codecs {tc}/{vc}/{fc} unknown to this build"));
    }
    let (mut times, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
    codec::decode_times(times_bytes, n, &mut times).map_err(|e| format!("times: {e}"))?;
    codec::decode_values(values_bytes, n, &mut values).map_err(|e| format!("values: {e}"))?;
    if times.len() != n || values.len() != n {
        return Err(format!("{} times and {} values for {n} readings", times.len(), values.len()));
    }
    let mut flags = Vec::with_capacity(n);
    if fc == FLAGS_RAW {
        flags.extend_from_slice(flags_bytes);
    } else if fc == FLAGS_ONE {
        match flags_bytes {
            [f] => flags.resize(n, *f),
            _ => return Err(format!("{} bytes of one flag byte for the block", flags_bytes.len())),
        }
    } else {
        let mut at = 0;
        while at < flags_bytes.len() {
            let f = flags_bytes[at];
            at += 1;
            let run = get_varint(flags_bytes, &mut at).ok_or("flag run cut short")? as usize;
            if flags.len() + run > n {
                return Err("flag runs longer than the block".into());
            }
            flags.extend(std::iter::repeat_n(f, run));
        }
    }
    if flags.len() != n {
        return Err(format!("{} flags for {n} readings", flags.len()));
    }
    out.reserve(n);
    for ((t, v), f) in times.into_iter().zip(values).zip(flags) {
        out.push((t, stored_of(v, f).ok_or_else(|| format!("bad flags {f:#x}"))?));
    }
    Ok(())
}

fn encode_block(points: &[(i64, Stored)], effort: codec::Effort, out: &mut Vec<u8>) {
    let times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
    let values: Vec<f64> = points.iter().map(|(_, s)| s.value).collect();
    let (mut tbytes, mut vbytes, mut fbytes) = (Vec::new(), Vec::new(), Vec::new());
    codec::encode_times_with(&times, effort, &mut tbytes);
    codec::encode_values_with(&values, effort, &mut vbytes);
    let first = points.first().map(|(_, s)| flags_of(s));
    let flags_codec = if let Some(f) = first.filter(|f| points.iter().all(|(_, s)| flags_of(s) == *f)) {
        fbytes.push(f);
        FLAGS_ONE
    } else {
        let mut i = 0;
        while i < points.len() {
            let f = flags_of(&points[i].1);
            let run = points[i..].iter().take_while(|(_, s)| flags_of(s) == f).count();
            fbytes.push(f);
            put_varint(&mut fbytes, run as u64);
            i += run;
        }
        FLAGS_RUNS
    };
    out.extend_from_slice(&[TIMES_CODEC, VALUES_CODEC, flags_codec]);
    codec::put_varint(out, tbytes.len() as u64);
    codec::put_varint(out, vbytes.len() as u64);
    out.extend_from_slice(&tbytes);
    out.extend_from_slice(&vbytes);
    out.extend_from_slice(&fbytes);
}

/// Writes a partition file under its temporary name, a series at a time (in key order).
pub(crate) struct PartWriter {
    tmp: PathBuf,
    path: PathBuf,
    day: i64,
    level: u8,
    out: std::io::BufWriter<File>,
    offset: u64,
    index: Vec<u8>,
    series: u32,
    /// The store's id of each series added, in order.
    ids: Vec<u32>,
    blocks: Vec<BlockRef>,
    buf: Vec<u8>,
}

impl PartWriter {
    /// Starts `<dir>/<name>.tmp`.
    pub(crate) fn create(dir: &Path, name: &str, day: i64, level: u8) -> Result<PartWriter, StoreError> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&[level, 0]);
        header.extend_from_slice(&day.to_le_bytes());
        out.write_all(&header).map_err(io(&tmp))?;
        Ok(PartWriter {
            tmp,
            path,
            day,
            level,
            out,
            offset: HEADER_BYTES as u64,
            index: Vec::new(),
            series: 0,
            ids: Vec::new(),
            blocks: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Adds one series' readings (by time, none twice).
    pub(crate) fn add(&mut self, id: u32, key: &SeriesKey, points: &[(i64, Stored)]) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let chunks = points.chunks(BLOCK_POINTS);
        self.start_series(id, key, chunks.len());
        // Level 0 and 2 files are merged into their day's level-1 file later.
        let effort = if self.level == LEVEL_DAY { codec::Effort::Smallest } else { codec::Effort::Packed };
        let mut buf = std::mem::take(&mut self.buf);
        for chunk in chunks {
            buf.clear();
            encode_block(chunk, effort, &mut buf);
            let (count, first_ns, last_ns) = (chunk.len() as u32, chunk[0].0, chunk[chunk.len() - 1].0);
            self.put_block(id, &buf, count, first_ns, last_ns, crc32fast::hash(&buf))?;
        }
        self.buf = buf;
        Ok(())
    }

    /// Adds one series' blocks of other files as they are stored, without decoding them:
    /// each of this build's format ([`Part::blocks_copyable`]), in time order, none
    /// overlapping the next (`last_ns < first_ns`).
    pub(crate) fn copy_blocks(
        &mut self,
        id: u32,
        key: &SeriesKey,
        blocks: &[(&Part, BlockRef)],
    ) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        debug_assert!(blocks.iter().all(|(p, _)| p.blocks_copyable()));
        debug_assert!(blocks.windows(2).all(|w| w[0].1.last_ns < w[1].1.first_ns));
        self.start_series(id, key, blocks.len());
        let mut buf = std::mem::take(&mut self.buf);
        for (part, b) in blocks {
            part.block_bytes(b, &mut buf)?;
            self.put_block(id, &buf, b.count, b.first_ns, b.last_ns, b.crc32)?;
        }
        self.buf = buf;
        Ok(())
    }

    /// The index's entry of a series whose `blocks` blocks follow.
    fn start_series(&mut self, id: u32, key: &SeriesKey, blocks: usize) {
        self.series += 1;
        self.ids.push(id);
        self.index.push(kind_code(key.kind));
        for s in [&key.factory, &key.point, &key.parameter] {
            codec::put_varint(&mut self.index, s.len() as u64);
            self.index.extend_from_slice(s.as_bytes());
        }
        codec::put_varint(&mut self.index, blocks as u64);
    }

    /// Writes one block of series `id` and its index entry.
    fn put_block(
        &mut self,
        id: u32,
        bytes: &[u8],
        count: u32,
        first_ns: i64,
        last_ns: i64,
        crc32: u32,
    ) -> Result<(), StoreError> {
        self.out.write_all(bytes).map_err(io(&self.tmp))?;
        let b =
            BlockRef { series: id, offset: self.offset, bytes: bytes.len() as u32, count, first_ns, last_ns, crc32 };
        self.offset += bytes.len() as u64;
        codec::put_varint(&mut self.index, u64::from(b.bytes));
        codec::put_varint(&mut self.index, u64::from(b.count));
        codec::put_varint(&mut self.index, codec::zigzag(b.first_ns.wrapping_sub(day_start(self.day))));
        codec::put_varint(&mut self.index, b.last_ns.wrapping_sub(b.first_ns) as u64);
        self.index.extend_from_slice(&b.crc32.to_le_bytes());
        self.blocks.push(b);
        Ok(())
    }

    /// Readings added.
    pub(crate) fn readings(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.count)).sum()
    }

    /// Writes the index and footer, syncs, and renames the file to its name (the caller
    /// syncs the directory); returns it open.
    pub(crate) fn finish(mut self) -> Result<Part, StoreError> {
        let mut raw = Vec::with_capacity(self.index.len() + 5);
        codec::put_varint(&mut raw, u64::from(self.series));
        raw.extend_from_slice(&self.index);
        let index = deflate_index(&raw);
        let mut footer = Vec::with_capacity(FOOTER_BYTES);
        let index_at = (self.offset, index.len() as u32, crc32fast::hash(&index));
        footer.extend_from_slice(&index_at.0.to_le_bytes());
        footer.extend_from_slice(&index_at.1.to_le_bytes());
        footer.extend_from_slice(&index_at.2.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.out.write_all(&index).map_err(io(&self.tmp))?;
        self.out.write_all(&footer).map_err(io(&self.tmp))?;
        let readings = self.readings();
        let file =
            self.out.into_inner().map_err(|e| StoreError::Io { path: self.tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io(&self.tmp))?;
        drop(file);
        super::crash_point("part-synced");
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        let file = File::open(&self.path).map_err(io(&self.path))?;
        let bytes = self.offset + index.len() as u64 + FOOTER_BYTES as u64;
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        self.blocks.sort_by_key(|b| (b.series, b.first_ns));
        let number = number_of(&name).unwrap_or_default();
        Ok(Part {
            name,
            number,
            path: self.path,
            day: self.day,
            level: self.level,
            version: VERSION,
            bytes,
            readings,
            file,
            ids: self.ids.into(),
            index_at,
            blocks: std::sync::Mutex::new(Some(self.blocks.into())),
            used: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Deletes the temporary file (a write that failed).
    pub(crate) fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Blocks lately decoded to check writes against partitions (a back-filled batch checks
/// the same few blocks over and over), at most [`CACHED_BLOCKS`], the oldest replaced first.
#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    slots: Vec<(CacheKey, Vec<(i64, Stored)>)>,
    next: usize,
}

/// A cached block: its file's number and its offset.
type CacheKey = (u64, u64);

/// Blocks a [`BlockCache`] holds: ≤ 64 × 4096 readings × 24 bytes.
const CACHED_BLOCKS: usize = 64;

impl BlockCache {
    /// Series `id`'s reading at `time_ns` in `part`, reading only a block whose span holds it.
    pub(crate) fn get(&mut self, part: &Part, id: u32, time_ns: i64) -> Result<Option<Stored>, StoreError> {
        let blocks = part.blocks_of(id)?;
        let Some(b) = blocks.iter().find(|b| b.first_ns <= time_ns && time_ns <= b.last_ns) else {
            return Ok(None);
        };
        let key = (part.number, b.offset);
        let slot = match self.slots.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let mut points = Vec::with_capacity(b.count as usize);
                part.read_block(b, &mut points)?;
                if self.slots.len() < CACHED_BLOCKS {
                    self.slots.push((key, points));
                    self.slots.len() - 1
                } else {
                    let i = self.next;
                    self.next = (self.next + 1) % CACHED_BLOCKS;
                    self.slots[i] = (key, points);
                    i
                }
            }
        };
        let points = &self.slots[slot].1;
        let i = points.partition_point(|(t, _)| *t < time_ns);
        Ok(points.get(i).filter(|(t, _)| *t == time_ns).map(|(_, s)| *s))
    }

    /// Forgets the blocks of a file no longer in use.
    pub(crate) fn forget(&mut self, number: u64) {
        self.slots.retain(|((n, _), _)| *n != number);
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parameter: &str) -> SeriesKey {
        SeriesKey { factory: "f-ü".into(), point: "outfall".into(), kind: Kind::Effluent, parameter: parameter.into() }
    }

    fn stored(value: f64, flags: u8) -> Stored {
        stored_of(value, flags).unwrap()
    }

    /// Two series over a Bangkok day: one a reading a minute with one flag value (a block of
    /// one flag byte), one of 5 000 readings with mixed flags (two blocks of flag runs).
    fn day_of_points(day: i64) -> Vec<(SeriesKey, Vec<(i64, Stored)>)> {
        let start = day_start(day);
        let cod =
            (0..1_440).map(|i| (start + i * 60_000_000_000, stored(f64::from(i as i32 % 17) / 10.0, 0))).collect();
        let ph = (0..5_000)
            .map(|i| {
                (start + i * 17_000_000_000 + 3, stored(7.0 + f64::from(i as i32 % 9) / 100.0, (i / 700 % 3) as u8))
            })
            .collect();
        vec![(key("cod"), cod), (key("ph"), ph)]
    }

    fn write(dir: &Path, day: i64, series: &[(SeriesKey, Vec<(i64, Stored)>)]) -> Part {
        let mut w = PartWriter::create(dir, &file_name(day, 7), day, 1).unwrap();
        for (id, (k, points)) in series.iter().enumerate() {
            w.add(id as u32, k, points).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(part: &Part, id: u32) -> Vec<(i64, Stored)> {
        let mut out = Vec::new();
        part.read_range(id, i64::MIN, i64::MAX, &mut out).unwrap();
        out
    }

    #[test]
    fn a_file_reads_back_reading_for_reading_written_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_500;
        let series = day_of_points(day);
        let written = write(dir.path(), day, &series);
        let mut keys = Vec::new();
        let opened = Part::open(&dir.path().join(file_name(day, 7)), |k| {
            keys.push(k);
            keys.len() as u32 - 1
        })
        .unwrap();
        assert_eq!(keys, vec![key("cod"), key("ph")], "names of any length and UTF-8, in order");
        assert_eq!((opened.version, opened.day, opened.level, opened.readings), (VERSION, day, 1, 6_440));
        assert_eq!(opened.bytes, written.bytes);
        for part in [&written, &opened] {
            for (id, (_, points)) in series.iter().enumerate() {
                let got = read_all(part, id as u32);
                assert_eq!(got.len(), points.len());
                for ((t, s), (u, r)) in got.iter().zip(points) {
                    assert_eq!((t, s.value.to_bits(), flags_of(s)), (u, r.value.to_bits(), flags_of(r)));
                }
            }
            let blocks = part.blocks_of(1).unwrap();
            assert_eq!(blocks.len(), 2, "5 000 readings: a block of {BLOCK_POINTS} and one of the rest");
            assert_eq!(
                (blocks[1].count, blocks[1].first_ns),
                (5_000 - BLOCK_POINTS as u32, series[1].1[BLOCK_POINTS].0)
            );
            assert_eq!(blocks[1].last_ns, series[1].1[4_999].0);
        }
        // The minute series' block: 3 codec bytes, two one-byte sizes, the columns and one flag byte.
        let cod = opened.blocks_of(0).unwrap()[0];
        let mut block = vec![0u8; cod.bytes as usize];
        opened.file.read_exact_at(&mut block, cod.offset).unwrap();
        assert_eq!(&block[..3], &[TIMES_CODEC, VALUES_CODEC, FLAGS_ONE]);
        assert_eq!(block.last(), Some(&0), "the one flags byte");
        assert_eq!(cod.offset, HEADER_BYTES as u64, "the first block follows the header");
    }

    /// The mode bytes of the times and values columns of a file's first block.
    fn column_modes(part: &Part) -> (u8, u8) {
        let b = part.blocks_of(0).unwrap()[0];
        let mut block = vec![0u8; b.bytes as usize];
        part.file.read_exact_at(&mut block, b.offset).unwrap();
        let mut at = 3;
        let times_bytes = codec::get_varint(&block, &mut at).unwrap() as usize;
        codec::get_varint(&block, &mut at).unwrap();
        (block[at], block[at + times_bytes])
    }

    #[test]
    fn a_flush_writes_packed_columns_and_a_compaction_the_smallest() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_500;
        let start = day_start(day);
        // A walk of whole-minute readings: coded columns are the smaller.
        let walk: Vec<(i64, Stored)> = (0..1_440)
            .map(|i| (start + i * 60_000_000_000, stored(f64::from((i * 7 % 5) as i32 - 2) / 10.0, 0)))
            .collect();
        let mut sizes = Vec::new();
        for (level, modes) in [(0, (1, 1)), (1, (2, 4)), (2, (1, 1))] {
            let mut w = PartWriter::create(dir.path(), &file_name(day, level.into()), day, level).unwrap();
            w.add(0, &key("cod"), &walk).unwrap();
            let part = w.finish().unwrap();
            assert_eq!(column_modes(&part), modes, "level {level}: times and values modes");
            assert_eq!(read_all(&part, 0).len(), 1_440);
            sizes.push(part.bytes);
        }
        assert!(sizes[1] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn a_damaged_index_or_block_header_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_500;
        let written = write(dir.path(), day, &day_of_points(day));
        let path = dir.path().join(file_name(day, 7));
        let bytes = std::fs::read(&path).unwrap();
        let (index_offset, index_bytes, _) = written.index_at;
        // Every byte of the index changed, its CRC-32 made to match: no panic, an error or
        // (where the change lands in a name or a CRC-32 of a block) an index that still reads.
        for at in index_offset..index_offset + u64::from(index_bytes) {
            let mut b = bytes.clone();
            b[at as usize] ^= 0x5a;
            let crc = crc32fast::hash(&b[index_offset as usize..(index_offset + u64::from(index_bytes)) as usize]);
            let end = b.len() - FOOTER_BYTES + 12;
            b[end..end + 4].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&path, &b).unwrap();
            if let Err(e) = Part::open(&path, |_| 0) {
                assert!(e.to_string().contains(&file_name(day, 7)), "{e}");
            }
        }
        // A block's header cut: its column sizes run past the block.
        let mut b = bytes.clone();
        b[HEADER_BYTES + 3] = 0xff;
        b[HEADER_BYTES + 4] = 0x7f;
        std::fs::write(&path, &b).unwrap();
        let part = Part::open(&path, |k| u32::from(&*k.parameter == "ph")).unwrap();
        let mut out = Vec::new();
        let e = part.read_range(0, i64::MIN, i64::MAX, &mut out).unwrap_err().to_string();
        assert!(e.contains(&file_name(day, 7)) && e.contains("CRC-32"), "{e}");
        assert!(decode_block(&b[HEADER_BYTES..HEADER_BYTES + 40], VERSION, 1_440, &mut out).is_err());
    }
}
