//! Columns of the engine's compact files (judgement days, the checkpoint's open days): the
//! store's codecs ([`crate::store::codec`]) for integers, times and values, and column
//! shapes of the engine's own: period keys, exact sums, and decimals with an exponent per
//! list (lists: one per series or track, in a column over all of them).
//!
//! A column's length is never written in it: the reader knows it from an earlier column.
//! `ints(n)` is the codec's `blocks(n)` (frame-of-reference bit-packed blocks of 128),
//! `times(n)` its times column, `values(n)` its values column (decimal, converted, XOR or raw,
//! packed or entropy-coded as the codec chooses, bit for bit); a *varint* is LEB128, a *zig-zag varint* an `i64` as the codec keeps it.

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

    /// Values of several lists (`decimals(counts)`): mode `1` when every value is a
    /// decimal (`m as f64 / 10^e` bit for bit, `|m| ≤ 2^53`, as the codec's decimal values):
    /// `ints(lists)` of each list's `e` (the smallest that serves all its values), `ints` of
    /// each non-empty list's first `m`, `ints` of the differences of the others from the one
    /// before in their list; else mode `0`, `values(Σ)`.
    pub(super) fn decimals(&mut self, counts: &[usize], values: &[f64]) {
        let Some((exponents, mantissas)) = per_list_decimals(counts, values) else {
            self.u8(0);
            self.values(values);
            return;
        };
        self.u8(1);
        self.ints(&exponents);
        self.firsts_and_deltas(counts, &mantissas);
    }

    /// `ints` of each non-empty list's first item, `ints` of the differences of the others
    /// from the one before in their list (wrapping).
    fn firsts_and_deltas(&mut self, counts: &[usize], items: &[i64]) {
        let (mut firsts, mut deltas) = (Vec::new(), Vec::with_capacity(items.len()));
        for list in split(items, counts) {
            if let Some(&first) = list.first() {
                firsts.push(first);
            }
            deltas.extend(list.windows(2).map(|w| w[1].wrapping_sub(w[0])));
        }
        self.ints(&firsts);
        self.ints(&deltas);
    }

    /// Exact sums (`i128`) with a unit per list: mode `2`, when each list's sums divided by
    /// the largest power of ten `10^e` dividing them all fit an `i64`: `ints(lists)` of each
    /// list's `e` (0..=18), then as mode `1` the quotients' firsts and differences; else as
    /// [`ColWriter::sums`].
    pub(super) fn sums_per_list(&mut self, counts: &[usize], sums: &[i128]) {
        let mut exponents = Vec::with_capacity(counts.len());
        let mut scaled = Vec::with_capacity(sums.len());
        for list in split(sums, counts) {
            let e = if list.is_empty() { 0 } else { largest_power_dividing(list) };
            let unit = 10i128.pow(e);
            for &s in list {
                let Ok(q) = i64::try_from(s / unit) else {
                    self.sums(counts, sums);
                    return;
                };
                scaled.push(q);
            }
            exponents.push(i64::from(e));
        }
        self.u8(2);
        self.ints(&exponents);
        self.firsts_and_deltas(counts, &scaled);
    }

    /// Exact sums (`i128`): mode `1`, when every sum divided by the largest power of ten
    /// `10^e` dividing them all fits an `i64`: `[e: u8]`, `ints` of each list's first quotient,
    /// `ints` of the differences of the others from the one before in their list; else mode
    /// `0`: each sum as 16 bytes little-endian.
    pub(super) fn sums(&mut self, counts: &[usize], sums: &[i128]) {
        let e = largest_power_dividing(sums);
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
        self.firsts_and_deltas(counts, &scaled);
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

    /// What [`ColWriter::decimals`] wrote for lists of `counts` values.
    pub(super) fn decimals(&mut self, what: &str, counts: &[usize]) -> Result<Vec<f64>, String> {
        let total = counts.iter().try_fold(0usize, |a, c| a.checked_add(*c)).unwrap_or(usize::MAX);
        match self.u8(what)? {
            0 => self.values(what, total),
            1 => {
                let at = self.at;
                let exponents = self.uints(what, counts.len(), 18)?;
                let mantissas = self.firsts_and_deltas(what, counts)?;
                let mut out = Vec::with_capacity(mantissas.len());
                for (list, &e) in split(&mantissas, counts).zip(&exponents) {
                    let unit = 10f64.powi(e as i32);
                    for &m in list {
                        if m.unsigned_abs() > 1 << 53 {
                            return Err(format!("byte {at}: {what}: mantissa {m} beyond 2^53"));
                        }
                        out.push(m as f64 / unit);
                    }
                }
                Ok(out)
            }
            mode => Err(format!("byte {}: {what}: mode {mode}, expected 0 or 1", self.at - 1)),
        }
    }

    /// What [`ColWriter::firsts_and_deltas`] wrote for lists of `counts` items.
    fn firsts_and_deltas(&mut self, what: &str, counts: &[usize]) -> Result<Vec<i64>, String> {
        let total = counts.iter().try_fold(0usize, |a, c| a.checked_add(*c)).unwrap_or(usize::MAX);
        let lists = counts.iter().filter(|c| **c > 0).count();
        let firsts = self.ints(what, lists)?;
        let deltas = self.ints(what, total - lists)?;
        let (mut firsts, mut deltas) = (firsts.into_iter(), deltas.into_iter());
        let mut out = Vec::with_capacity(total);
        for &n in counts.iter().filter(|c| **c > 0) {
            let mut v = firsts.next().unwrap_or_default();
            out.push(v);
            for _ in 1..n {
                v = v.wrapping_add(deltas.next().unwrap_or_default());
                out.push(v);
            }
        }
        Ok(out)
    }

    /// What [`ColWriter::sums`] or [`ColWriter::sums_per_list`] wrote for lists of `counts`
    /// sums.
    pub(super) fn sums(&mut self, what: &str, counts: &[usize]) -> Result<Vec<i128>, String> {
        let total: usize = counts.iter().sum();
        match self.u8(what)? {
            2 => {
                let exponents = self.uints(what, counts.len(), 18)?;
                let scaled = self.firsts_and_deltas(what, counts)?;
                let mut out = Vec::with_capacity(total);
                for (list, &e) in split(&scaled, counts).zip(&exponents) {
                    let unit = 10i128.pow(e as u32);
                    out.extend(list.iter().map(|&q| i128::from(q) * unit));
                }
                Ok(out)
            }
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
                Ok(self.firsts_and_deltas(what, counts)?.into_iter().map(|q| i128::from(q) * unit).collect())
            }
            mode => Err(format!("byte {}: {what}: mode {mode}, expected 0, 1 or 2", self.at - 1)),
        }
    }
}

/// The largest `e` (at most 18) such that `10^e` divides every sum.
fn largest_power_dividing(sums: &[i128]) -> u32 {
    let mut e = 18u32;
    for &s in sums {
        while e > 0 && s % 10i128.pow(e) != 0 {
            e -= 1;
        }
    }
    e
}

/// The smallest `e` (at most 18) with `v` the `f64` division `m as f64 / 10^e`, `|m| ≤ 2^53`.
fn decimal_exponent(v: f64) -> Option<u32> {
    (0..=18u32).find(|&e| mantissa(v, e).is_some())
}

/// `m` with `v` exactly `m as f64 / 10^e`, `|m| ≤ 2^53`.
fn mantissa(v: f64, e: u32) -> Option<i64> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    let unit = 10f64.powi(e as i32);
    let m = (v * unit).round();
    if m.abs() > (1u64 << 53) as f64 {
        return None;
    }
    let m = m as i64;
    ((m as f64 / unit).to_bits() == v.to_bits()).then_some(m)
}

/// Each list's decimal exponent and every value's mantissa at its list's, if all are decimals.
fn per_list_decimals(counts: &[usize], values: &[f64]) -> Option<(Vec<i64>, Vec<i64>)> {
    let mut exponents = Vec::with_capacity(counts.len());
    let mut mantissas = Vec::with_capacity(values.len());
    for list in split(values, counts) {
        let mut e = 0;
        for &v in list {
            e = e.max(decimal_exponent(v)?);
        }
        for &v in list {
            mantissas.push(mantissa(v, e)?);
        }
        exponents.push(i64::from(e));
    }
    Some((exponents, mantissas))
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
        // Both writers' columns read back by the one reader.
        type Write = fn(&mut ColWriter, &[usize], &[i128]);
        for write in [ColWriter::sums_per_list as Write, ColWriter::sums] {
            for sums in [vec![600_000_000_000i128, 610_000_000_000, -5, 0], vec![i128::MAX, 1, i128::MIN, 7]] {
                let counts = [2, 0, 2];
                let mut w = ColWriter::default();
                write(&mut w, &counts, &sums);
                let mut r = ColReader::new(&w.out);
                assert_eq!(r.sums("sums", &counts), Ok(sums.clone()));
                assert!(r.done());
            }
        }
    }

    #[test]
    fn sums_take_a_unit_per_list() {
        // 6e11 and 6.1e11: units of 10^10, quotients 60 and 61; -5: units of 1.
        let mut w = ColWriter::default();
        w.sums_per_list(&[2, 1], &[600_000_000_000, 610_000_000_000, -5]);
        // Mode 2; exponents [10, 0]: min 0, width 4, 0x0A; firsts [60, -5]: min -5 (zig-zag
        // 9), width 7, 65 and 0; the one difference [1]: min 1 (zig-zag 2), width 0.
        assert_eq!(w.out, vec![2, 0, 4, 0x0A, 9, 7, 0x41, 0x00, 2, 0]);
    }

    #[test]
    fn decimals_take_an_exponent_per_list_and_keep_every_bit() {
        let mut w = ColWriter::default();
        w.decimals(&[2], &[0.1, 0.2]);
        // Mode 1; exponents [1], first mantissa [1], the difference [1]: each min 1, width 0.
        assert_eq!(w.out, vec![1, 2, 0, 2, 0, 2, 0]);
        for (counts, values) in [
            (vec![2, 0, 3], vec![1.5, 1.25, 300.0, 301.0, -2.0]),
            (vec![1, 2], vec![7.2, 0.1 + 0.2, 1e300]),
            (vec![3], vec![f64::NAN, -0.0, 5.0]),
        ] {
            let mut w = ColWriter::default();
            w.decimals(&counts, &values);
            let mut r = ColReader::new(&w.out);
            let back = r.decimals("values", &counts).expect("decodes");
            assert!(r.done());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back), bits(&values), "{values:?}");
        }
        let mut w = ColWriter::default();
        w.decimals(&[2, 0, 3], &[1.5, 1.25, 300.0, 301.0, -2.0]);
        assert_eq!(w.out[0], 1, "all decimals");
        // An exponent beyond 18 is refused, naming the column.
        let mut r = ColReader::new(&[1, 38, 0]);
        assert_eq!(r.decimals("nearest", &[1]), Err("byte 1: nearest: 19 is not in 0..=18".to_string()));
    }
}
