//! One segment file: its header, its records, and the scan that validates them.
//! The format is described in the [module doc](super).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use eitwatch_config::reading::{Kind, Quality, Reading, Source};

/// First bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"EWOUTBOX";
/// Format version written after the magic.
pub(crate) const VERSION: u32 = 1;
/// Header: magic, version (u32 LE), reserved (u32, zero), first id (u64 LE).
pub(crate) const HEADER_LEN: u64 = 24;
/// Record frame: payload length (u32 LE), CRC-32 (u32 LE) of id + payload, id (u64 LE).
pub(crate) const FRAME_LEN: usize = 16;
/// No record is longer: a length beyond it is garbage (a torn or overwritten frame).
pub(crate) const MAX_PAYLOAD: u32 = 64 * 1024;
/// The index keeps the offset of every id that is a multiple of this, to seek near any id.
pub(crate) const INDEX_EVERY: u64 = 512;
const TAG_READING: u8 = 1;

/// The file name of the segment whose first record has `first_id`.
pub(crate) fn file_name(first_id: u64) -> String {
    format!("{first_id:020}.seg")
}

/// The first id of a segment file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

pub(crate) fn header(first_id: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_id.to_le_bytes());
    h
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Ids and catalog codes are short; a longer string is cut at 65535 bytes, on a char boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Appends the framed record of `reading` with `id` to `out`.
pub(crate) fn encode(id: u64, reading: &Reading, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    out.push(TAG_READING);
    out.push(match reading.kind {
        Kind::Effluent => 0,
        Kind::Emission => 1,
        Kind::Ambient => 2,
    });
    out.push(match reading.quality {
        Quality::Valid => 0,
        Quality::Suspect => 1,
        Quality::Invalid => 2,
        Quality::Maintenance => 3,
        Quality::Calibration => 4,
    });
    out.push(match reading.source {
        Source::Instrument => 0,
        Source::Lab => 1,
    });
    out.push(u8::from(reading.below_detection_limit));
    out.extend_from_slice(&reading.time_ns.to_le_bytes());
    out.extend_from_slice(&reading.value.to_bits().to_le_bytes());
    push_str(out, &reading.factory);
    push_str(out, &reading.point);
    push_str(out, &reading.parameter);
    let payload_len = (out.len() - start - FRAME_LEN) as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&id.to_le_bytes());
    crc.update(&out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&id.to_le_bytes());
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Decodes a payload whose checksum matched.
pub(crate) fn decode(payload: &[u8]) -> Option<Reading> {
    let mut c = Cursor(payload);
    if c.u8()? != TAG_READING {
        return None;
    }
    let kind = [Kind::Effluent, Kind::Emission, Kind::Ambient].get(c.u8()? as usize).copied()?;
    let quality = Quality::ALL.get(c.u8()? as usize).copied()?;
    let source = [Source::Instrument, Source::Lab].get(c.u8()? as usize).copied()?;
    let below_detection_limit = c.u8()? != 0;
    let time_ns = c.u64()? as i64;
    let value = f64::from_bits(c.u64()?);
    let factory = c.string()?;
    let point = c.string()?;
    let parameter = c.string()?;
    c.0.is_empty().then_some(Reading {
        kind,
        factory,
        point,
        parameter,
        value,
        time_ns,
        quality,
        source,
        below_detection_limit,
    })
}

/// What one record read gave.
pub(crate) enum Next {
    /// A whole, checked record.
    Record { id: u64, reading: Reading, len: u64 },
    /// Clean end of file.
    End,
    /// A short or corrupt record: what a torn write leaves, or damage.
    Bad(String),
}

/// Reads records of one segment sequentially.
pub(crate) struct Reader {
    file: BufReader<File>,
    payload: Vec<u8>,
    /// Offset of the next record.
    pub(crate) offset: u64,
    /// Read no record starting at or beyond this offset (the durable length).
    limit: u64,
    /// See [`Reader::skip_below`].
    skip_below: u64,
}

impl Reader {
    /// Opens `path` and checks its header against `first_id` (when known).
    pub(crate) fn open(
        path: &Path,
        first_id: Option<u64>,
        limit: u64,
    ) -> std::io::Result<Result<(Reader, u64), String>> {
        Reader::open_at(path, first_id, limit, HEADER_LEN)
    }

    /// [`Reader::open`], reading from `offset` (a record start taken from the index).
    pub(crate) fn open_at(
        path: &Path,
        first_id: Option<u64>,
        limit: u64,
        offset: u64,
    ) -> std::io::Result<Result<(Reader, u64), String>> {
        let mut file = File::open(path)?;
        let mut h = [0u8; HEADER_LEN as usize];
        if let Err(e) = file.read_exact(&mut h) {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(Err("header is short".into()))
            } else {
                Err(e)
            };
        }
        if h[..8] != MAGIC {
            return Ok(Err("not an outbox segment (bad magic)".into()));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != VERSION {
            return Ok(Err(format!("segment format version {version}, this agent reads {VERSION}")));
        }
        let id = u64::from_le_bytes(h[16..24].try_into().unwrap_or_default());
        if first_id.is_some_and(|f| f != id) {
            return Ok(Err(format!("header says first id {id}, the file name another")));
        }
        if offset != HEADER_LEN {
            file.seek(SeekFrom::Start(offset))?;
        }
        // No larger than what is to be read: after the records of a preallocated segment come
        // megabytes of zeros, which a larger buffer would copy in (and keep resident) for nothing.
        let capacity = limit.saturating_sub(offset).clamp(8 << 10, 256 << 10) as usize;
        let reader = Reader {
            file: BufReader::with_capacity(capacity, file),
            payload: Vec::new(),
            offset,
            limit,
            skip_below: 0,
        };
        Ok(Ok((reader, id)))
    }

    /// From now on, records with a lower id are checked but not decoded nor returned: a
    /// read starts at an index point up to [`INDEX_EVERY`] records before the id it wants.
    pub(crate) fn skip_below(&mut self, id: u64) {
        self.skip_below = id;
    }

    /// The next record.
    pub(crate) fn next(&mut self) -> std::io::Result<Next> {
        loop {
            if let Some(next) = self.next_or_skipped()? {
                return Ok(next);
            }
        }
    }

    /// The next record, or `None` for one skipped (below `skip_below`).
    fn next_or_skipped(&mut self) -> std::io::Result<Option<Next>> {
        if self.offset >= self.limit {
            return Ok(Some(Next::End));
        }
        let mut frame = [0u8; FRAME_LEN];
        match read_full(&mut self.file, &mut frame)? {
            0 => return Ok(Some(Next::End)),
            n if n < FRAME_LEN => return Ok(Some(Next::Bad(format!("short frame ({n} of {FRAME_LEN} bytes)")))),
            _ => {}
        }
        if frame == [0u8; FRAME_LEN] {
            // Preallocated space (never a record: a record's length is never 0). Whether
            // anything torn lies beyond it is for `scan` to tell.
            return Ok(Some(Next::End));
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let id = u64::from_le_bytes(frame[8..16].try_into().unwrap_or_default());
        if len == 0 || len > MAX_PAYLOAD {
            return Ok(Some(Next::Bad(format!("record length {len} out of range"))));
        }
        self.payload.resize(len as usize, 0);
        let got = read_full(&mut self.file, &mut self.payload)?;
        if got < len as usize {
            return Ok(Some(Next::Bad(format!("short record ({got} of {len} bytes)"))));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&frame[8..16]);
        hasher.update(&self.payload);
        if hasher.finalize() != crc {
            return Ok(Some(Next::Bad("checksum mismatch".into())));
        }
        let rec_len = FRAME_LEN as u64 + len as u64;
        if id < self.skip_below {
            self.offset += rec_len;
            return Ok(None);
        }
        let Some(reading) = decode(&self.payload) else {
            return Ok(Some(Next::Bad("checksum matches but the payload does not decode".into())));
        };
        self.offset += rec_len;
        Ok(Some(Next::Record { id, reading, len: rec_len }))
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What a full scan of a segment found.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// One past the last good record's id.
    pub(crate) end_id: u64,
    /// Length up to the end of the last good record.
    pub(crate) valid_len: u64,
    /// The file's length.
    pub(crate) file_len: u64,
    /// Sparse `(id, offset)` index.
    pub(crate) index: Vec<(u64, u64)>,
    /// Why the scan stopped before the end of the data, if it did (a bad record, or bytes
    /// other than zeros after the last record).
    pub(crate) stopped: Option<String>,
    /// One past the last byte that is not zero, from `valid_len` on: the end of what a torn
    /// write left (the zeros beyond are preallocated space).
    pub(crate) dirty_end: u64,
    /// Good records.
    pub(crate) records: u64,
}

/// Scans a whole segment. `Ok(Err(reason))`: the header is unusable.
pub(crate) fn scan(path: &Path, first_id: u64) -> std::io::Result<Result<Scan, String>> {
    let file_len = std::fs::metadata(path)?.len();
    let (mut reader, first) = match Reader::open(path, Some(first_id), u64::MAX)? {
        Ok(r) => r,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut s = Scan {
        end_id: first,
        valid_len: HEADER_LEN,
        file_len,
        index: Vec::new(),
        stopped: None,
        dirty_end: HEADER_LEN,
        records: 0,
    };
    loop {
        let offset = reader.offset;
        match reader.next()? {
            Next::End => break,
            Next::Bad(reason) => {
                s.stopped = Some(reason);
                break;
            }
            Next::Record { id, len, .. } => {
                if id != s.end_id {
                    s.stopped = Some(format!("record id {id} where {} was expected", s.end_id));
                    break;
                }
                if id % INDEX_EVERY == 0 {
                    s.index.push((id, offset));
                }
                s.end_id = id + 1;
                s.valid_len += len;
                s.records += 1;
            }
        }
    }
    s.dirty_end = s.valid_len;
    if s.valid_len < file_len {
        s.dirty_end = last_nonzero_end(path, s.valid_len)?;
        if s.stopped.is_none() && s.dirty_end > s.valid_len {
            s.stopped = Some(format!("{} bytes other than zeros after the last record", s.dirty_end - s.valid_len));
        }
    }
    Ok(Ok(s))
}

/// One past the last byte after `from` that is not zero (`from` if there is none).
/// Reads the whole rest of the file: a torn write may have reached the disk in any order,
/// so zeros right after the last record do not prove that all after them is zero.
fn last_nonzero_end(path: &Path, from: u64) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 << 10];
    let (mut at, mut end) = (from, from);
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            return Ok(end);
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b != 0) {
            end = at + i as u64 + 1;
        }
        at += n as u64;
    }
}

/// Reserves the segment's space up to `len` bytes (the file's length becomes `len`; the new
/// bytes read as zeros), so that a later `fdatasync` of appended records writes their data
/// only and not the inode's size with them. Best effort: where the filesystem cannot
/// reserve, the file stays as it was and appends grow it, as without preallocation.
pub(crate) fn preallocate(file: &File, len: u64) -> std::io::Result<()> {
    let current = file.metadata()?.len();
    if current >= len {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let (Ok(offset), Ok(add)) = (libc::off_t::try_from(current), libc::off_t::try_from(len - current)) else {
            return Ok(());
        };
        // SAFETY: the descriptor is open and owned by `file` for the duration of the call.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, add) };
        if rc == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        // A filesystem without fallocate: a sparse length does the rest of the job (zeros
        // read back; only the size update in fdatasync remains).
        if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(error);
        }
    }
    file.set_len(len)
}

/// Lists the segment files of `dir`, by first id.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_name) {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}
