//! Columns of the engine's compact files (judgement days, the checkpoint's open days): the
//! store's codecs ([`crate::store::codec`]) for integers, times and values, and two column
//! shapes of the engine's own, period keys and exact sums.
//!
//! A column's length is never written in it: the reader knows it from an earlier column.
//! `ints(n)` is the codec's `blocks(n)` (frame-of-reference bit-packed blocks of 128),
//! `times(n)` its scaled-deltas times column, `values(n)` its values column (decimal, XOR or
//! raw, bit for bit); a *varint* is LEB128, a *zig-zag varint* an `i64` as the codec keeps it.

use crate::store::codec::{self, CodecError};

use super::period::{DAY_NS, HOUR_NS};

/// Writes columns.
#[derive(Debug, Default)]
pub(super) struct ColWriter {
    pub(super) out: Vec<u8>,
}

impl ColWriter {
    pub(super) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(super) fn uvar(&mut self, v: u64) {
        codec::put_varint(&mut self.out, v);
    }
    pub(super) fn str(&mut self, s: &str) {
        self.uvar(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    pub(super) fn ints(&mut self, v: &[i64]) {
        codec::put_blocks(v, &mut self.out);
    }
    pub(super) fn times(&mut self, v: &[i64]) {
        codec::encode_times(v, &mut self.out);
    }
    pub(super) fn values(&mut self, v: &[f64]) {
        codec::encode_values(v, &mut self.out);
    }

    /// The period starts of several lists (each ascending), within the day from `day`: mode
    /// `0` when every start is a whole hour of that day, `ints(lists)` of masks (bit h: the
    /// hour h of the day), else mode `1`, `ints(lists)` of counts and `times(Σ)` of the starts.
    pub(super) fn keys(&mut self, day: i64, counts: &[usize], keys: &[i64]) {
        let hour_of = |k: i64| {
            let offset = k.checked_sub(day)?;
            (0..DAY_NS).contains(&offset).then_some(())?;
            (offset % HOUR_NS == 0).then_some(offset / HOUR_NS)
        };
        let mut masks = Vec::with_capacity(counts.len());
        let mut at = 0;
        for &n in counts {
            let mut mask = 0i64;
            for &k in &keys[at..at + n] {
                match hour_of(k) {
                    Some(h) => mask |= 1 << h,
                    None => {
                        self.u8(1);
                        self.ints(&counts.iter().map(|&n| n as i64).collect::<Vec<_>>());
                        self.times(keys);
                        return;
                    }
                }
            }
            masks.push(mask);
            at += n;
        }
        self.u8(0);
        self.ints(&masks);
    }

    /// Exact sums (`i128`): mode `1`, when every sum divided by the largest power of ten
    /// `10^e` dividing them all fits an `i64`: `[e: u8]`, `ints` of each list's first quotient,
    /// `ints` of the differences of the others from the one before in their list; else mode
    /// `0`: each sum as 16 bytes little-endian.
    pub(super) fn sums(&mut self, counts: &[usize], sums: &[i128]) {
        let mut e = 18u32;
        for &s in sums {
            while e > 0 && s % 10i128.pow(e) != 0 {
                e -= 1;
            }
        }
        let unit = 10i128.pow(e);
        let scaled: Option<Vec<i64>> = sums.iter().map(|&s| i64::try_from(s / unit).ok()).collect();
        let Some(scaled) = scaled else {
            self.u8(0);
            for s in sums {
                self.out.extend_from_slice(&s.to_le_bytes());
            }
            return;
        };
        self.u8(1);
        self.u8(e as u8);
        let (mut firsts, mut deltas) = (Vec::new(), Vec::with_capacity(scaled.len()));
        let mut at = 0;
        for &n in counts {
            let list = &scaled[at..at + n];
            if let Some(&first) = list.first() {
                firsts.push(first);
            }
            deltas.extend(list.windows(2).map(|w| w[1].wrapping_sub(w[0])));
            at += n;
        }
        self.ints(&firsts);
        self.ints(&deltas);
    }
}

/// Reads what [`ColWriter`] wrote; every error names what was being read and where.
#[derive(Debug)]
pub(super) struct ColReader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Bytes read per column (`what`, shape), for measuring a format.
    #[cfg(test)]
    pub(super) tally: std::collections::BTreeMap<String, usize>,
}

impl<'a> ColReader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> ColReader<'a> {
        ColReader {
            bytes,
            at: 0,
            #[cfg(test)]
            tally: std::collections::BTreeMap::new(),
        }
    }
    #[cfg(test)]
    fn note(&mut self, what: &str, shape: &str, from: usize) {
        *self.tally.entry(format!("{what} [{shape}]")).or_default() += self.at - from;
    }
    #[cfg(not(test))]
    #[inline]
    fn note(&mut self, _what: &str, _shape: &str, _from: usize) {}
    /// All the bytes read from.
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub(super) fn at(&self) -> usize {
        self.at
    }
    pub(super) fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        if n > self.bytes.len() - self.at {
            return Err(format!("byte {}: {what}: {n} bytes, {} left", self.at, self.bytes.len() - self.at));
        }
        self.at += n;
        self.note(what, "skip", self.at - n);
        Ok(())
    }
    pub(super) fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
    fn fail(&self, what: &str, e: CodecError) -> String {
        format!("byte {}: {what}: {e}", self.at)
    }
    /// At most this many items can be in what remains (a block of 128 takes 2 bytes or more):
    /// a damaged count cannot ask for a huge allocation.
    fn bounded(&self, what: &str, n: usize) -> Result<usize, String> {
        let most = (self.bytes.len() - self.at).saturating_add(1).saturating_mul(64);
        if n > most {
            return Err(format!("byte {}: {what}: {n} items cannot fit in what remains", self.at));
        }
        Ok(n)
    }
    pub(super) fn u8(&mut self, what: &str) -> Result<u8, String> {
        let Some(&b) = self.bytes.get(self.at) else {
            return Err(format!("byte {}: {what}: the bytes end", self.at));
        };
        self.at += 1;
        self.note(what, "u8", self.at - 1);
        Ok(b)
    }
    pub(super) fn uvar(&mut self, what: &str) -> Result<u64, String> {
        let from = self.at;
        let v = codec::get_varint(self.bytes, &mut self.at).map_err(|e| self.fail(what, e))?;
        self.note(what, "varint", from);
        Ok(v)
    }
    /// A count, bounded by what remains.
    pub(super) fn count(&mut self, what: &str) -> Result<usize, String> {
        let n = usize::try_from(self.uvar(what)?).unwrap_or(usize::MAX);
        self.bounded(what, n)
    }
    pub(super) fn str(&mut self, what: &str) -> Result<String, String> {
        let n = usize::try_from(self.uvar(what)?).unwrap_or(usize::MAX);
        let Some(bytes) = self.bytes.get(self.at..self.at.saturating_add(n)) else {
            return Err(format!("byte {}: {what}: {n} bytes, {} left", self.at, self.bytes.len() - self.at));
        };
        let s = std::str::from_utf8(bytes).map_err(|e| format!("byte {}: {what}: {e}", self.at))?;
        self.at += n;
        self.note(what, "str", self.at - n);
        Ok(s.to_string())
    }
    pub(super) fn ints(&mut self, what: &str, n: usize) -> Result<Vec<i64>, String> {
        let mut out = Vec::with_capacity(self.bounded(what, n)?);
        let from = self.at;
        codec::get_blocks(self.bytes, &mut self.at, n, |v| out.push(v)).map_err(|e| self.fail(what, e))?;
        self.note(what, "ints", from);
        Ok(out)
    }
    /// `ints` that must each lie in `0..=max`.
    pub(super) fn uints(&mut self, what: &str, n: usize, max: u64) -> Result<Vec<u64>, String> {
        let at = self.at;
        let ints = self.ints(what, n)?;
        ints.into_iter()
            .map(|v| {
                u64::try_from(v)
                    .ok()
                    .filter(|v| *v <= max)
                    .ok_or_else(|| format!("byte {at}: {what}: {v} is not in 0..={max}"))
            })
            .collect()
    }
    pub(super) fn times(&mut self, what: &str, n: usize) -> Result<Vec<i64>, String> {
        let mut out = Vec::with_capacity(self.bounded(what, n)?);
        let read = codec::decode_times(&self.bytes[self.at..], n, &mut out).map_err(|e| self.fail(what, e))?;
        self.at += read;
        self.note(what, "times", self.at - read);
        Ok(out)
    }
    pub(super) fn values(&mut self, what: &str, n: usize) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(self.bounded(what, n)?);
        let read = codec::decode_values(&self.bytes[self.at..], n, &mut out).map_err(|e| self.fail(what, e))?;
        self.at += read;
        self.note(what, "values", self.at - read);
        Ok(out)
    }

    /// What [`ColWriter::keys`] wrote for `lists` lists: each list's count, and the starts.
    pub(super) fn keys(&mut self, what: &str, day: i64, lists: usize) -> Result<(Vec<usize>, Vec<i64>), String> {
        match self.u8(what)? {
            0 => {
                let masks = self.uints(what, lists, (1 << 24) - 1)?;
                let counts = masks.iter().map(|m| m.count_ones() as usize).collect();
                let mut keys = Vec::new();
                for m in masks {
                    keys.extend((0..24).filter(|h| m & (1 << h) != 0).map(|h| day + h * HOUR_NS));
                }
                Ok((counts, keys))
            }
            1 => {
                let counts: Vec<usize> =
                    self.uints(what, lists, u32::MAX.into())?.into_iter().map(|c| c as usize).collect();
                let total = counts.iter().try_fold(0usize, |a, c| a.checked_add(*c)).unwrap_or(usize::MAX);
                let keys = self.times(what, total)?;
                for (i, list) in split(&keys, &counts).enumerate() {
                    if list.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("byte {}: {what}: list {i}: starts out of order", self.at));
                    }
                }
                Ok((counts, keys))
            }
            mode => Err(format!("byte {}: {what}: mode {mode}, expected 0 or 1", self.at - 1)),
        }
    }

    /// What [`ColWriter::sums`] wrote for lists of `counts` sums.
    pub(super) fn sums(&mut self, what: &str, counts: &[usize]) -> Result<Vec<i128>, String> {
        let total: usize = counts.iter().sum();
        match self.u8(what)? {
            0 => {
                let n = total.checked_mul(16).filter(|n| *n <= self.bytes.len() - self.at);
                let Some(n) = n else { return Err(format!("byte {}: {what}: {total} raw sums do not fit", self.at)) };
                let out = self.bytes[self.at..self.at + n]
                    .chunks_exact(16)
                    .map(|c| {
                        let mut w = [0u8; 16];
                        w.copy_from_slice(c);
                        i128::from_le_bytes(w)
                    })
                    .collect();
                self.at += n;
                self.note(what, "raw sums", self.at - n);
                Ok(out)
            }
            1 => {
                let e = u32::from(self.u8(what)?);
                if e > 18 {
                    return Err(format!("byte {}: {what}: units of 10^{e}, the most is 10^18", self.at - 1));
                }
                let unit = 10i128.pow(e);
                let lists = counts.iter().filter(|c| **c > 0).count();
                let firsts = self.ints(what, lists)?;
                let deltas = self.ints(what, total - lists)?;
                let (mut firsts, mut deltas) = (firsts.into_iter(), deltas.into_iter());
                let mut out = Vec::with_capacity(total);
                for &n in counts.iter().filter(|c| **c > 0) {
                    let mut s = firsts.next().unwrap_or_default();
                    out.push(i128::from(s) * unit);
                    for _ in 1..n {
                        s = s.wrapping_add(deltas.next().unwrap_or_default());
                        out.push(i128::from(s) * unit);
                    }
                }
                Ok(out)
            }
            mode => Err(format!("byte {}: {what}: mode {mode}, expected 0 or 1", self.at - 1)),
        }
    }
}

/// `items` cut into consecutive lists of `counts` items.
pub(super) fn split<'a, T>(items: &'a [T], counts: &'a [usize]) -> impl Iterator<Item = &'a [T]> + 'a {
    let mut at = 0;
    counts.iter().map(move |&n| {
        let end = (at + n).min(items.len());
        let list = &items[at.min(end)..end];
        at = end;
        list
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_sums_round_trip_in_both_modes() {
        let day = 1_000 * DAY_NS;
        for (counts, keys) in [
            (vec![3, 0, 2], vec![day, day + HOUR_NS, day + 23 * HOUR_NS, day + 5 * HOUR_NS, day + 6 * HOUR_NS]),
            (vec![2, 1], vec![day + 1, day + HOUR_NS, i64::MIN]),
        ] {
            let mut w = ColWriter::default();
            w.keys(day, &counts, &keys);
            let mut r = ColReader::new(&w.out);
            assert_eq!(r.keys("keys", day, counts.len()), Ok((counts.clone(), keys.clone())));
            assert!(r.done());
        }
        for sums in [vec![600_000_000_000i128, 610_000_000_000, -5, 0], vec![i128::MAX, 1, i128::MIN, 7]] {
            let counts = [2, 0, 2];
            let mut w = ColWriter::default();
            w.sums(&counts, &sums);
            let mut r = ColReader::new(&w.out);
            assert_eq!(r.sums("sums", &counts), Ok(sums.clone()));
            assert!(r.done());
        }
    }
}
