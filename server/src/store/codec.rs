//! Column codecs of sealed history: a series' timestamps and values, each column encoded on
//! its own and decoded back bit for bit.
//!
//! Sensor columns are regular: times one a minute or one a second, often on whole seconds
//! or milliseconds; values random walks at an instrument's fixed decimal resolution (pH
//! 0.01, COD 1 or 0.1 mg/L), with plateaus. Both columns therefore become integers whose
//! consecutive differences are small, stored as frame-of-reference bit-packed blocks or,
//! where smaller, entropy-coded with runs for plateaus and regular times.
//! Values that are not exact decimals (unit conversions, NaN, -0.0) fall back to an XOR of
//! consecutive bit patterns, or raw bits when that would be larger. The choice was measured
//! against the other candidates (`examples/codecs.rs`, `docs/benchmarks.md`).
//!
//! ## Format
//! Every column starts with a mode byte naming its scheme, so a decoder knows which one
//! wrote it and new schemes can be added; `n` (the number of points) is kept by the caller.
//! Integers are little-endian; a *varint* is LEB128 (7 bits a byte, least significant
//! group first, high bit set on all but the last byte, at most 10 bytes); a *zig-zag*
//! varint holds an `i64` `v` as the varint of `(v << 1) ^ (v >> 63)`.
//!
//! `blocks(m)`: m `i64`s in blocks of 128 (the last holds the rest), each block
//! `[min: zig-zag varint][width: u8, 0..=64][⌈len × width / 8⌉ bytes]`: every integer's
//! difference from `min` (wrapping, as a `u64`, which fits in `width` bits) packed in
//! order, least significant bit first, starting at the lowest bit of the block's first
//! byte; the last byte's unused high bits are zero. A block of equal integers is 2–11
//! bytes.
//!
//! `coded(m)`: m `i64`s entropy-coded with a canonical Huffman code made for the column, for
//! differences of an instrument's noise (a few values, each taking about the bits of its
//! information rather than those of the widest in its block) and plateaus (runs of zeros). Each integer
//! is taken as its zig-zag `z` (an unsigned `u64`), and the column is a sequence of tokens,
//! each a symbol and then its `k` extra bits `x`:
//! - symbols `0..=15`: the integer of zig-zag `z` = the symbol; `k = 0`;
//! - symbol `16 + k`, `k` in `0..=31`: a run of `2^k + x` zeros;
//! - symbol `48 + k − 4`, `k` in `4..=63`: the integer of zig-zag `z = 2^k + x`.
//!
//! Layout: `[s: u8, 1..=108]`, then the code lengths of the symbols `0..s` in half bytes,
//! the low half of a byte before its high half: a half `0..=12` is the length of the next
//! symbol (`0`: not used), a half `15` followed by a half `r` stands for `r + 2` symbols not
//! used (`13` and `14` are never written); the halves end with the `s`-th symbol, a last
//! unused half being zero, and the symbols from `s` on are not used. The lengths make a prefix
//! code (`Σ 2^−len ≤ 1`; a code of one symbol has length 1), assigned canonically as
//! DEFLATE does: symbols in order of (length, symbol) take consecutive codes, the first
//! `0`, each next one the previous plus one shifted left by the difference of their
//! lengths. Then the tokens as a bit stream, least significant bit first from the lowest
//! bit of its first byte: a symbol's code from its first (most significant) bit on, then
//! its extra bits least significant first. The tokens hold exactly `m` integers (a run
//! never goes past them); the last byte's unused high bits are zero. `coded(0)` is no
//! bytes at all. The stream's length is not written: a decoder knows its end from `m`.
//!
//! Times, mode `1` (scaled deltas): `[1][e: u8, 0..=18]`, then if `n > 0`
//! `[first time in ns: zig-zag varint]` and `blocks(n − 1)` of `(tᵢ − tᵢ₋₁) / 10^e`, the
//! differences taken with wrapping `i64` arithmetic (any order of times, any values) and
//! all of them multiples of `10^e` ns (the encoder takes the largest such `e`: 9 for times
//! on whole seconds).
//!
//! Times, mode `2` (scaled deltas, coded): `[2][e: u8, 0..=18]`, then if `n > 0` `[first
//! time in ns: zig-zag varint]`, if `n > 1` `[d₁: zig-zag varint]` and `coded(n − 2)` of
//! `dᵢ − dᵢ₋₁` (wrapping), where `dᵢ = (tᵢ − tᵢ₋₁) / 10^e` as in mode 1. The encoder writes it
//! in place of mode 1 when smaller, for 34 times or more: times at a fixed interval are
//! then a run of zeros, an outage two wide integers.
//!
//! Values, by mode:
//! - `0` raw: n × `[f64 bits: u64]`.
//! - `1` decimal: `[1][e: u8, 0..=18]`, then if `n > 0` `[m₀: zig-zag varint]` and
//!   `blocks(n − 1)` of `mᵢ − mᵢ₋₁`, where every value is exactly the `f64` division
//!   `mᵢ as f64 / 10^e` with `|mᵢ| ≤ 2^53` (the encoder takes the smallest such `e`, and
//!   checks each value's bits; -0.0, NaN and infinities are never decimal).
//! - `2` XOR: per value, the XOR `x` of its bits with the previous value's (the first's
//!   with 0): `[0]` when `x = 0`; otherwise `[lz << 4 | len]` then the `len` bytes
//!   (1..=8) of `x` that lie between its `lz` leading and its trailing zero bytes, least
//!   significant first (`lz + len ≤ 8`).
//! - `3` converted: `[3][k: u8, 1..=4]`, k × `[op: u8][c: f64 bits]` (op `0` × c, `1` ÷ c,
//!   `2` + c, `3` − c), `[e: u8, 0..=18]`, then if `n > 0` `[m₀: zig-zag varint]` and
//!   `blocks(n − 1)` of `mᵢ − mᵢ₋₁`: value `i` is the k operations applied in order, in
//!   `f64` arithmetic, to `mᵢ as f64 / 10^e` (`|mᵢ| ≤ 2^53`). For values an agent read as
//!   decimals and the server converted to the canonical unit (ppm of SO₂ from mg/Nm³, K to
//!   °C: not decimals any more), the operations are the conversion's, as the catalog does
//!   it ([`eitwatch_config::catalog::Catalog::conversion`]); the encoder tries each of the
//!   catalog's conversions and takes one only if it gives back every value bit for bit.
//! - `4` decimal, coded: as mode 1 with `coded(n − 1)` in place of `blocks(n − 1)`:
//!   `[4][e: u8, 0..=18]`, then if `n > 0` `[m₀: zig-zag varint]` and `coded(n − 1)` of
//!   `mᵢ − mᵢ₋₁` (wrapping).
//! - `5` converted, coded: as mode 3 with `coded(n − 1)` in place of `blocks(n − 1)`.
//!
//! The encoder writes the smallest of the modes it tries: modes 1 and 4 only when the
//! values are decimal, 3 and 5 only when they are a conversion of decimals, and `coded` in
//! place of `blocks` only when smaller and for 33 values or more (a code table costs a few
//! bytes). Values mode 3 came after files of the first three were written, values modes 4
//! and 5 and times mode 2 after those of the others: they read as before (`testdata/v3`);
//! a build that knows fewer modes refuses a column of a newer one, naming its mode.

/// A column that does not decode: its bytes end early or hold what no encoder wrote.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodecError(pub(crate) String);

const TIMES_SCALED_DELTAS: u8 = 1;
const TIMES_CODED: u8 = 2;
const VALUES_RAW: u8 = 0;
const VALUES_DECIMAL: u8 = 1;
const VALUES_XOR: u8 = 2;
const VALUES_CONVERTED: u8 = 3;
const VALUES_DECIMAL_CODED: u8 = 4;
const VALUES_CONVERTED_CODED: u8 = 5;

/// Operations of a conversion a converted column holds at most.
const MAX_STEPS: usize = 4;
/// The largest exponent the encoder tries for converted values: instruments resolve far
/// coarser than 10^-9.
const MAX_CONVERTED_EXPONENT: usize = 9;

use eitwatch_config::catalog::{Catalog, Step};

/// The conversions the catalog makes: what a converted column may have gone through.
fn conversions() -> &'static [Vec<Step>] {
    static CONVERSIONS: std::sync::OnceLock<Vec<Vec<Step>>> = std::sync::OnceLock::new();
    CONVERSIONS.get_or_init(|| Catalog::builtin().conversions())
}

fn step_code(step: Step) -> (u8, f64) {
    match step {
        Step::Mul(c) => (0, c),
        Step::Div(c) => (1, c),
        Step::Add(c) => (2, c),
        Step::Sub(c) => (3, c),
    }
}

fn step_of(code: u8, c: f64) -> Option<Step> {
    Some(match code {
        0 => Step::Mul(c),
        1 => Step::Div(c),
        2 => Step::Add(c),
        3 => Step::Sub(c),
        _ => return None,
    })
}

fn apply(steps: &[Step], x: f64) -> f64 {
    steps.iter().fold(x, |v, s| s.apply(v))
}

/// Integers a bit-packed block holds.
const BLOCK_LEN: usize = 128;
/// The largest decimal exponent: 10^18 is the largest power of ten in an `i64`, and every
/// power of ten up to it is exact in an `f64`.
const MAX_EXPONENT: usize = 18;
const POW10_I64: [i64; MAX_EXPONENT + 1] = {
    let mut p = [1i64; MAX_EXPONENT + 1];
    let mut k = 1;
    while k <= MAX_EXPONENT {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};
const POW10_F64: [f64; MAX_EXPONENT + 1] = {
    let mut p = [1f64; MAX_EXPONENT + 1];
    let mut k = 1;
    while k <= MAX_EXPONENT {
        p[k] = p[k - 1] * 10.0;
        k += 1;
    }
    p
};
/// Integers up to this magnitude are exact in an `f64`.
const EXACT_F64_INT: f64 = 9_007_199_254_740_992.0;

/// A column of `n` points in `blocks` takes more than `n / 64` bytes (a block of 128 equal
/// integers is 2 bytes), so a decoder reserves no more than this for `bytes`; a `coded`
/// column's runs may hold more points, for which its output grows as it decodes.
fn reservable(n: usize, bytes: &[u8]) -> usize {
    n.min(bytes.len().saturating_mul(BLOCK_LEN / 2).saturating_add(1))
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(bytes: &[u8], at: &mut usize) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = bytes.get(*at) else {
            return Err(CodecError(format!("varint cut at byte {at}", at = *at)));
        };
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(CodecError(format!("varint longer than 10 bytes before byte {at}", at = *at)))
}

fn get_byte(bytes: &[u8], at: &mut usize, what: &str) -> Result<u8, CodecError> {
    let Some(&b) = bytes.get(*at) else {
        return Err(CodecError(format!("{what} missing: the column ends at byte {at}", at = *at)));
    };
    *at += 1;
    Ok(b)
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `blocks(ints.len())` (module doc) to `out`.
pub(crate) fn put_blocks(ints: &[i64], out: &mut Vec<u8>) {
    for block in ints.chunks(BLOCK_LEN) {
        let min = block.iter().copied().min().unwrap_or(0);
        let span = block.iter().fold(0u64, |span, &v| span | v.wrapping_sub(min) as u64);
        let width = 64 - span.leading_zeros();
        put_varint(out, zigzag(min));
        out.push(width as u8);
        if width == 0 {
            continue;
        }
        let (mut acc, mut bits) = (0u128, 0u32);
        for &v in block {
            acc |= u128::from(v.wrapping_sub(min) as u64) << bits;
            bits += width;
            if bits >= 64 {
                out.extend_from_slice(&(acc as u64).to_le_bytes());
                acc >>= 64;
                bits -= 64;
            }
        }
        out.extend_from_slice(&(acc as u64).to_le_bytes()[..bits.div_ceil(8) as usize]);
    }
}

/// The bytes [`put_blocks`] would append for `ints`, without packing them.
fn blocks_len(ints: &[i64]) -> usize {
    ints.chunks(BLOCK_LEN)
        .map(|block| {
            let min = block.iter().copied().min().unwrap_or(0);
            let span = block.iter().fold(0u64, |span, &v| span | v.wrapping_sub(min) as u64);
            let width = (64 - span.leading_zeros()) as usize;
            varint_len(zigzag(min)) + 1 + (block.len() * width).div_ceil(8)
        })
        .sum()
}

/// The bytes of `v` as a varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads `blocks(count)` from `bytes` at `at`, giving each integer to `each` in order.
pub(crate) fn get_blocks(
    bytes: &[u8],
    at: &mut usize,
    count: usize,
    mut each: impl FnMut(i64),
) -> Result<(), CodecError> {
    let mut left = count;
    while left > 0 {
        let len = left.min(BLOCK_LEN);
        let start = *at;
        let min = unzigzag(get_varint(bytes, at)?);
        let width = u32::from(get_byte(bytes, at, "a block's bit width")?);
        if width > 64 {
            return Err(CodecError(format!("the block at byte {start} has a bit width of {width}, over 64")));
        }
        let packed_len = (len * width as usize).div_ceil(8);
        let Some(packed) = bytes.get(*at..*at + packed_len) else {
            return Err(CodecError(format!(
                "the block at byte {start} needs {packed_len} bytes of {len} × {width} bits, {} left",
                bytes.len() - *at
            )));
        };
        *at += packed_len;
        if width == 0 {
            (0..len).for_each(|_| each(min));
        } else {
            let mask = u64::MAX >> (64 - width);
            let (mut acc, mut bits, mut next) = (0u128, 0u32, packed.iter());
            for _ in 0..len {
                while bits < width {
                    acc |= u128::from(next.next().copied().unwrap_or(0)) << bits;
                    bits += 8;
                }
                each(min.wrapping_add((acc as u64 & mask) as i64));
                acc >>= width;
                bits -= width;
            }
        }
        left -= len;
    }
    Ok(())
}

/// Symbols of `coded(m)` (module doc): literals, then runs of zero, then wide integers.
const LITERALS: usize = 16;
const RUN_BASE: usize = LITERALS;
/// Run symbols: lengths `[2^k, 2^(k+1))` for `k` in `0..32`.
const RUN_KINDS: usize = 32;
const WIDE_BASE: usize = RUN_BASE + RUN_KINDS;
/// The first wide symbol's exponent: zig-zag integers from `2^4 = LITERALS`.
const WIDE_FIRST_BITS: usize = 4;
const SYMBOLS: usize = WIDE_BASE + 64 - WIDE_FIRST_BITS;
/// The longest code: a decoder's lookup table has at most `2^12` entries.
const MAX_CODE_BITS: u32 = 12;
/// The fewest differences the encoder tries `coded` for: below, a code table outweighs
/// what it saves, and its making costs more than the column.
const MIN_CODED: usize = 32;
/// The longest run one run symbol holds.
const MAX_RUN: u64 = (1 << RUN_KINDS) - 1;
/// Shortest runs of zero the encoder tries writing as run symbols (shorter ones as literal
/// zeros); `usize::MAX`: never.
const RUN_THRESHOLDS: [usize; 12] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, usize::MAX];

/// A symbol and its extra bits: `(symbol, extra bits, their count)`.
fn wide_symbol(z: u64) -> (usize, u64, u32) {
    let k = 63 - z.leading_zeros();
    (WIDE_BASE + k as usize - WIDE_FIRST_BITS, z - (1 << k), k)
}

fn run_symbol(len: u64) -> (usize, u64, u32) {
    let k = 63 - len.leading_zeros();
    (RUN_BASE + k as usize, len - (1 << k), k)
}

/// Code lengths (0: unused) of a Huffman code for `freq`, none over [`MAX_CODE_BITS`]; a
/// single used symbol gets 1.
fn code_lengths(freq: &[u64; SYMBOLS]) -> [u8; SYMBOLS] {
    let mut weights = *freq;
    loop {
        let mut lengths = [0u8; SYMBOLS];
        // Nodes: leaves first, then merged ones; `parent` links up.
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>> =
            (0..SYMBOLS).filter(|&s| weights[s] > 0).map(|s| std::cmp::Reverse((weights[s], s))).collect();
        if heap.len() == 1 {
            if let Some(std::cmp::Reverse((_, s))) = heap.pop() {
                lengths[s] = 1;
            }
            return lengths;
        }
        let mut parent = vec![usize::MAX; SYMBOLS];
        while heap.len() > 1 {
            let (Some(std::cmp::Reverse((wa, a))), Some(std::cmp::Reverse((wb, b)))) = (heap.pop(), heap.pop()) else {
                break;
            };
            let node = parent.len();
            parent.push(usize::MAX);
            parent[a] = node;
            parent[b] = node;
            heap.push(std::cmp::Reverse((wa + wb, node)));
        }
        let mut depth = vec![0u32; parent.len()];
        // Parents come after their children: depths from the root down.
        for node in (0..parent.len()).rev() {
            if parent[node] != usize::MAX {
                depth[node] = depth[parent[node]] + 1;
            }
        }
        let mut longest = 0;
        for s in 0..SYMBOLS {
            if weights[s] > 0 {
                lengths[s] = depth[s] as u8;
                longest = longest.max(depth[s]);
            }
        }
        if longest <= MAX_CODE_BITS {
            return lengths;
        }
        // Flatter weights give shorter longest codes.
        weights.iter_mut().filter(|w| **w > 0).for_each(|w| *w = (*w).div_ceil(2));
    }
}

/// Canonical codes of `lengths`, each bit-reversed (its first bit the lowest), as the
/// stream holds them least significant bit first.
fn canonical_codes(lengths: &[u8]) -> Vec<u32> {
    let mut codes = vec![0u32; lengths.len()];
    let mut code = 0u32;
    for len in 1..=MAX_CODE_BITS as u8 {
        for (s, _) in lengths.iter().enumerate().filter(|&(_, &l)| l == len) {
            codes[s] = code.reverse_bits() >> (32 - u32::from(len));
            code += 1;
        }
        code <<= 1;
    }
    codes
}

/// A token of `coded(m)`: a symbol and its extra bits.
#[derive(Clone, Copy)]
struct Token {
    symbol: usize,
    extra: u64,
    extra_bits: u32,
}

/// The tokens of `ints` with runs of at least `threshold` zeros as run symbols.
fn tokens(ints: &[i64], threshold: usize, out: &mut Vec<Token>) {
    out.clear();
    let mut i = 0;
    while i < ints.len() {
        let z = zigzag(ints[i]);
        if z == 0 {
            let run = ints[i..].iter().take_while(|&&d| d == 0).count();
            if run >= threshold {
                let mut left = run as u64;
                while left > 0 {
                    let len = left.min(MAX_RUN);
                    let (symbol, extra, extra_bits) = run_symbol(len);
                    out.push(Token { symbol, extra, extra_bits });
                    left -= len;
                }
            } else {
                out.extend((0..run).map(|_| Token { symbol: 0, extra: 0, extra_bits: 0 }));
            }
            i += run;
            continue;
        }
        out.push(if z < LITERALS as u64 {
            Token { symbol: z as usize, extra: 0, extra_bits: 0 }
        } else {
            let (symbol, extra, extra_bits) = wide_symbol(z);
            Token { symbol, extra, extra_bits }
        });
        i += 1;
    }
}

/// Writes bits least significant first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter<'_> {
    /// Appends the low `count` (at most 32) bits of `v`.
    fn put(&mut self, v: u64, count: u32) {
        self.acc |= (v & ((1u64 << count) - 1)) << self.bits;
        self.bits += count;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn put_wide(&mut self, v: u64, count: u32) {
        if count > 32 {
            self.put(v, 32);
            self.put(v >> 32, count - 32);
        } else {
            self.put(v, count);
        }
    }

    fn finish(self) {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// In a code length table, a half byte standing for unused symbols (2 to 17, in the half
/// after it).
const UNUSED_RUN: u8 = 15;

/// Appends `[s: u8]` and the code length halves of `lengths` (module doc).
fn put_lengths(lengths: &[u8; SYMBOLS], out: &mut Vec<u8>) {
    let table_symbols = lengths.iter().rposition(|&l| l > 0).map_or(0, |s| s + 1);
    out.push(table_symbols as u8);
    let mut halves = Vec::with_capacity(table_symbols);
    let mut s = 0;
    while s < table_symbols {
        let unused = lengths[s..table_symbols].iter().take_while(|&&l| l == 0).count().min(17);
        if unused >= 3 {
            halves.extend_from_slice(&[UNUSED_RUN, unused as u8 - 2]);
            s += unused;
        } else {
            halves.push(lengths[s]);
            s += 1;
        }
    }
    out.extend(halves.chunks(2).map(|pair| pair[0] | pair.get(1).map_or(0, |h| h << 4)));
}

/// Appends `coded(ints.len())` (module doc) to `out`; nothing for no integers.
pub(crate) fn put_coded(ints: &[i64], out: &mut Vec<u8>) {
    if ints.is_empty() {
        return;
    }
    // Symbols of the integers other than zero (the same at every threshold), and the runs
    // of zeros.
    let (mut base, mut base_extra_bits, mut runs) = ([0u64; SYMBOLS], 0u64, Vec::new());
    let mut i = 0;
    while i < ints.len() {
        let run = ints[i..].iter().take_while(|&&d| d == 0).count();
        if run > 0 {
            runs.push(run as u64);
            i += run;
            continue;
        }
        let z = zigzag(ints[i]);
        if z < LITERALS as u64 {
            base[z as usize] += 1;
        } else {
            let (symbol, _, extra_bits) = wide_symbol(z);
            base[symbol] += 1;
            base_extra_bits += u64::from(extra_bits);
        }
        i += 1;
    }
    let mut best: Option<(u64, usize, [u8; SYMBOLS])> = None;
    let mut table = Vec::new();
    let mut previous = 0;
    for threshold in RUN_THRESHOLDS {
        // The same tokens as the threshold before when no run lies between the two.
        if previous > 0 && !runs.iter().any(|&run| (previous as u64..threshold as u64).contains(&run)) {
            continue;
        }
        previous = threshold;
        let (mut freq, mut extra_bits) = (base, base_extra_bits);
        for &run in &runs {
            if run < threshold as u64 {
                freq[0] += run;
                continue;
            }
            let mut left = run;
            while left > 0 {
                let len = left.min(MAX_RUN);
                let (symbol, _, bits) = run_symbol(len);
                freq[symbol] += 1;
                extra_bits += u64::from(bits);
                left -= len;
            }
        }
        let lengths = code_lengths(&freq);
        table.clear();
        put_lengths(&lengths, &mut table);
        let bits =
            extra_bits + 8 * table.len() as u64 + (0..SYMBOLS).map(|s| freq[s] * u64::from(lengths[s])).sum::<u64>();
        if best.as_ref().is_none_or(|&(b, _, _)| bits < b) {
            best = Some((bits, threshold, lengths));
        }
    }
    let Some((_, threshold, lengths)) = best else {
        return;
    };
    let mut candidate = Vec::with_capacity(ints.len());
    tokens(ints, threshold, &mut candidate);
    put_lengths(&lengths, out);
    let codes = canonical_codes(&lengths);
    let mut writer = BitWriter { out, acc: 0, bits: 0 };
    for t in candidate {
        writer.put(u64::from(codes[t.symbol]), u32::from(lengths[t.symbol]));
        writer.put_wide(t.extra, t.extra_bits);
    }
    writer.finish();
}

/// Reads bits least significant first from a byte slice; past its end, zeros, which a
/// decoder refuses to take (see [`BitReader::check`]).
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits taken.
    pos: usize,
}

impl BitReader<'_> {
    /// The next `count` (at most 32) bits, not taken.
    fn peek(&self, count: u32) -> u64 {
        let byte = self.pos / 8;
        let word = match self.bytes.get(byte..byte + 8) {
            Some(b) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                u64::from_le_bytes(w)
            }
            None => {
                let mut w = [0u8; 8];
                let tail = self.bytes.get(byte..).unwrap_or(&[]);
                w[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(w)
            }
        };
        (word >> (self.pos % 8)) & ((1u64 << count) - 1)
    }

    fn take(&mut self, count: u32) -> u64 {
        if count > 32 {
            let low = self.peek(32);
            self.pos += 32;
            let high = self.peek(count - 32);
            self.pos += (count - 32) as usize;
            return low | (high << 32);
        }
        let v = self.peek(count);
        self.pos += count as usize;
        v
    }

    /// An error if more bits were taken than the slice holds.
    fn check(&self, what: &str) -> Result<(), CodecError> {
        if self.pos > self.bytes.len() * 8 {
            return Err(CodecError(format!(
                "{what} needs bit {} of a coded stream of {} bytes: the column is cut short",
                self.pos,
                self.bytes.len()
            )));
        }
        Ok(())
    }
}

/// A lookup table entry with no code: a pattern the code table leaves free.
const NO_CODE: u16 = u16::MAX;

/// Reads `coded(count)` from `bytes` at `at`, giving each integer to `each` in order.
pub(crate) fn get_coded(
    bytes: &[u8],
    at: &mut usize,
    count: usize,
    mut each: impl FnMut(i64),
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let start = *at;
    let table_symbols = usize::from(get_byte(bytes, at, "a coded stream's symbol count")?);
    if table_symbols == 0 || table_symbols > SYMBOLS {
        return Err(CodecError(format!(
            "the coded stream at byte {start} has code lengths for {table_symbols} symbols: 1 to {SYMBOLS}"
        )));
    }
    let mut lengths = [0u8; SYMBOLS];
    let (mut symbol, mut half) = (0, 0);
    let mut next_half = || {
        let byte = bytes.get(*at + half / 2).ok_or_else(|| {
            CodecError(format!(
                "the coded stream at byte {start}: its code lengths are cut short at byte {}",
                *at + half / 2
            ))
        })?;
        let v = (byte >> (4 * (half % 2))) & 0x0f;
        half += 1;
        Ok::<u8, CodecError>(v)
    };
    while symbol < table_symbols {
        match next_half()? {
            UNUSED_RUN => {
                let run = usize::from(next_half()?) + 2;
                if symbol + run > table_symbols {
                    return Err(CodecError(format!(
                        "the coded stream at byte {start} has {run} unused symbols from symbol {symbol}, past its {table_symbols}"
                    )));
                }
                symbol += run;
            }
            length if u32::from(length) <= MAX_CODE_BITS => {
                lengths[symbol] = length;
                symbol += 1;
            }
            length => {
                return Err(CodecError(format!(
                    "the coded stream at byte {start} gives symbol {symbol} a code of {length} bits, over {MAX_CODE_BITS}"
                )));
            }
        }
    }
    *at += half.div_ceil(2);
    let longest = u32::from(lengths.iter().copied().max().unwrap_or(0));
    if longest == 0 {
        return Err(CodecError(format!("the coded stream at byte {start} has no code")));
    }
    // Kraft's inequality: more codes than the lengths have room for are no prefix code.
    let room: u64 = lengths.iter().filter(|&&l| l > 0).map(|&l| 1u64 << (longest - u32::from(l))).sum();
    if room > 1 << longest {
        return Err(CodecError(format!("the coded stream at byte {start} has code lengths that are no prefix code")));
    }
    let codes = canonical_codes(&lengths);
    let mut table = vec![NO_CODE; 1 << longest];
    for s in (0..SYMBOLS).filter(|&s| lengths[s] > 0) {
        let len = u32::from(lengths[s]);
        for high in 0..1u32 << (longest - len) {
            table[(codes[s] | (high << len)) as usize] = ((s as u16) << 4) | len as u16;
        }
    }
    let mut reader = BitReader { bytes: &bytes[*at..], pos: 0 };
    let mut left = count;
    while left > 0 {
        let entry = table[reader.peek(longest) as usize];
        if entry == NO_CODE {
            return Err(CodecError(format!(
                "the coded stream at byte {start}: bit {} starts no code of its table",
                reader.pos
            )));
        }
        reader.pos += usize::from(entry & 0x0f);
        let symbol = usize::from(entry >> 4);
        if symbol < LITERALS {
            each(unzigzag(symbol as u64));
            left -= 1;
        } else if symbol < WIDE_BASE {
            let k = (symbol - RUN_BASE) as u32;
            let run = (1u64 << k) + reader.take(k);
            if run > left as u64 {
                return Err(CodecError(format!(
                    "the coded stream at byte {start}: a run of {run} zeros at bit {} with {left} integers left",
                    reader.pos
                )));
            }
            (0..run).for_each(|_| each(0));
            left -= run as usize;
        } else {
            let k = (symbol - WIDE_BASE + WIDE_FIRST_BITS) as u32;
            each(unzigzag((1u64 << k) + reader.take(k)));
            left -= 1;
        }
        reader.check("an integer")?;
    }
    *at += reader.pos.div_ceil(8);
    Ok(())
}

/// Appends `times_ns` (any order, any values) to `out`.
pub(crate) fn encode_times(times_ns: &[i64], out: &mut Vec<u8>) {
    encode_times_with(times_ns, Effort::Smallest, out);
}

/// How hard an encoder tries: the smallest column, or only the packed modes (a column
/// rewritten soon, such as a memtable flush that compaction merges, need not pay for
/// entropy coding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effort {
    Smallest,
    Packed,
}

/// [`encode_times`] at an [`Effort`].
pub(crate) fn encode_times_with(times_ns: &[i64], effort: Effort, out: &mut Vec<u8>) {
    let deltas: Vec<i64> = times_ns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    // The largest power of ten dividing every difference: times on whole seconds or
    // milliseconds, or at any offset from them at a whole interval, pack in fewer bits.
    let mut e = MAX_EXPONENT;
    for &d in &deltas {
        while e > 0 && d % POW10_I64[e] != 0 {
            e -= 1;
        }
    }
    let Some(&first) = times_ns.first() else {
        out.extend_from_slice(&[TIMES_SCALED_DELTAS, e as u8]);
        return;
    };
    let unit = POW10_I64[e];
    let scaled: Vec<i64> = deltas.iter().map(|d| d / unit).collect();
    let start = out.len();
    if scaled.len() > MIN_CODED && effort == Effort::Smallest {
        // Regular times: differences of differences mostly zero, coded as runs; the packed
        // column is sized without packing it, and written only where it is smaller.
        out.push(TIMES_CODED);
        out.push(e as u8);
        put_varint(out, zigzag(first));
        put_varint(out, zigzag(scaled[0]));
        put_coded(&scaled.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect::<Vec<_>>(), out);
        if out.len() - start < 2 + varint_len(zigzag(first)) + blocks_len(&scaled) {
            return;
        }
        out.truncate(start);
    }
    out.push(TIMES_SCALED_DELTAS);
    out.push(e as u8);
    put_varint(out, zigzag(first));
    put_blocks(&scaled, out);
}

/// Decodes `n` times from the start of `bytes` into `out`; returns the bytes read.
pub(crate) fn decode_times(bytes: &[u8], n: usize, out: &mut Vec<i64>) -> Result<usize, CodecError> {
    let mut at = 0;
    let mode = get_byte(bytes, &mut at, "the times column's mode")?;
    if mode != TIMES_SCALED_DELTAS && mode != TIMES_CODED {
        return Err(CodecError(format!("times column of unknown mode {mode}")));
    }
    let e = usize::from(get_byte(bytes, &mut at, "the times column's unit")?);
    let Some(&unit) = POW10_I64.get(e) else {
        return Err(CodecError(format!("times column in units of 10^{e} ns: the most is 10^{MAX_EXPONENT}")));
    };
    if n == 0 {
        return Ok(at);
    }
    out.reserve(reservable(n, bytes));
    let mut t = unzigzag(get_varint(bytes, &mut at)?);
    out.push(t);
    if mode == TIMES_SCALED_DELTAS {
        get_blocks(bytes, &mut at, n - 1, |d| {
            t = t.wrapping_add(d.wrapping_mul(unit));
            out.push(t);
        })?;
        return Ok(at);
    }
    if n == 1 {
        return Ok(at);
    }
    let mut d = unzigzag(get_varint(bytes, &mut at)?);
    t = t.wrapping_add(d.wrapping_mul(unit));
    out.push(t);
    get_coded(bytes, &mut at, n - 2, |dd| {
        d = d.wrapping_add(dd);
        t = t.wrapping_add(d.wrapping_mul(unit));
        out.push(t);
    })?;
    Ok(at)
}

/// The smallest exponent `e` making every value `m / 10^e` for an integer `m` (bit for
/// bit), and those integers; `None` when some value is not such a decimal.
fn decimal(values: &[f64]) -> Option<(usize, Vec<i64>)> {
    let exact = |v: f64, e: usize| {
        let m = crate::num::round(v * POW10_F64[e]);
        // Through the integer: -0.0 rounds to -0.0, which no integer gives back.
        (m.abs() <= EXACT_F64_INT && ((m as i64) as f64 / POW10_F64[e]).to_bits() == v.to_bits()).then_some(m)
    };
    let (mut e, mut ints) = (0, Vec::with_capacity(values.len()));
    while ints.len() < values.len() {
        match exact(values[ints.len()], e) {
            Some(m) => ints.push(m as i64),
            None => {
                e += 1;
                if e > MAX_EXPONENT {
                    return None;
                }
                // The values before are checked again at the larger exponent (rarely: a
                // series' first values already need its resolution's).
                ints.clear();
            }
        }
    }
    Some((e, ints))
}

/// The integer `m` for which `steps` applied to `m / 10^e` gives `v` bit for bit, if any.
fn exact_converted(steps: &[Step], v: f64, e: usize) -> Option<i64> {
    let x = steps.iter().rev().fold(v, |y, s| s.undo(y));
    let m = crate::num::round(x * POW10_F64[e]);
    // NaN fails this too.
    if m.abs().partial_cmp(&EXACT_F64_INT) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let m = m as i64;
    // The inverse is rounded too: the decimal may be the one beside.
    [m, m - 1, m + 1].into_iter().find(|&m| apply(steps, m as f64 / POW10_F64[e]).to_bits() == v.to_bits())
}

/// Mode 3 of `values` (module doc) under the catalog conversion that encodes them smallest,
/// each at the smallest exponent that gives back every value bit for bit; `None` when no
/// conversion does.
fn converted(values: &[f64], effort: Effort) -> Option<Vec<u8>> {
    let first = *values.first()?;
    let mut best: Option<Vec<u8>> = None;
    'conversions: for steps in conversions() {
        let Some(mut e) = (0..=MAX_CONVERTED_EXPONENT).find(|&e| exact_converted(steps, first, e).is_some()) else {
            continue;
        };
        for &v in values {
            while exact_converted(steps, v, e).is_none() {
                e += 1;
                if e > MAX_CONVERTED_EXPONENT {
                    continue 'conversions;
                }
            }
        }
        // Every value checked again at the exponent the last one needed.
        let Some(ints) = values.iter().map(|&v| exact_converted(steps, v, e)).collect::<Option<Vec<i64>>>() else {
            continue;
        };
        // Another conversion may fit with coarser integers (µg ÷ 1000 rather than mg).
        let mut out = vec![VALUES_CONVERTED, steps.len() as u8];
        for &step in steps {
            let (code, c) = step_code(step);
            out.push(code);
            out.extend_from_slice(&c.to_bits().to_le_bytes());
        }
        out.push(e as u8);
        if put_ints(&ints, effort, &mut out) {
            out[0] = VALUES_CONVERTED_CODED;
        }
        if best.as_ref().is_none_or(|b| out.len() < b.len()) {
            best = Some(out);
        }
    }
    best
}

/// Appends `[m₀: zig-zag varint]` and the differences as `blocks` or as `coded`, whichever
/// is smaller (`blocks` when even: they decode faster); true when `coded`.
fn put_ints(ints: &[i64], effort: Effort, out: &mut Vec<u8>) -> bool {
    let Some(&first) = ints.first() else {
        return false;
    };
    put_varint(out, zigzag(first));
    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    if deltas.len() < MIN_CODED || effort == Effort::Packed {
        put_blocks(&deltas, out);
        return false;
    }
    // Coded first, packed only where that is smaller: sized without packing.
    let start = out.len();
    put_coded(&deltas, out);
    if out.len() - start < blocks_len(&deltas) {
        return true;
    }
    out.truncate(start);
    put_blocks(&deltas, out);
    false
}

/// Reads `[m₀: zig-zag varint]` and `count − 1` differences (`coded` or `blocks`), giving
/// each integer to `each` in order; nothing when `count` is 0.
fn get_ints(
    bytes: &[u8],
    at: &mut usize,
    count: usize,
    coded: bool,
    mut each: impl FnMut(i64),
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let mut m = unzigzag(get_varint(bytes, at)?);
    each(m);
    let mut next = |d: i64| {
        m = m.wrapping_add(d);
        each(m);
    };
    if coded { get_coded(bytes, at, count - 1, &mut next) } else { get_blocks(bytes, at, count - 1, &mut next) }
}

/// Appends `values` (any bits, NaN and -0 included) to `out`.
pub(crate) fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    encode_values_with(values, Effort::Smallest, out);
}

/// [`encode_values`] at an [`Effort`].
pub(crate) fn encode_values_with(values: &[f64], effort: Effort, out: &mut Vec<u8>) {
    let start = out.len();
    let raw_len = 1 + 8 * values.len();
    let mut best_len = raw_len;
    if let Some((e, ints)) = decimal(values) {
        out.push(VALUES_DECIMAL);
        out.push(e as u8);
        if put_ints(&ints, effort, out) {
            out[start] = VALUES_DECIMAL_CODED;
        }
        // At an instrument's resolution a value takes a few bits; only values that need
        // many digits (an exponent of 10 or more) may do better as XOR.
        if out.len() - start <= 2 * values.len() {
            return;
        }
        best_len = best_len.min(out.len() - start);
    }
    if let Some(column) = converted(values, effort) {
        let converted_start = out.len();
        out.extend_from_slice(&column);
        let converted_len = out.len() - converted_start;
        if converted_len < best_len {
            // Better than the decimal written before it, if any: in its place.
            out.copy_within(converted_start.., start);
            out.truncate(start + converted_len);
            best_len = converted_len;
            if converted_len <= 2 * values.len() {
                return;
            }
        } else {
            out.truncate(converted_start);
        }
    }
    let xor_start = out.len();
    put_xor(values, out);
    let xor_len = out.len() - xor_start;
    if xor_len < best_len {
        out.copy_within(xor_start.., start);
        out.truncate(start + xor_len);
        return;
    }
    if xor_start > start && xor_start - start <= raw_len {
        out.truncate(xor_start);
        return;
    }
    out.truncate(start);
    out.push(VALUES_RAW);
    for v in values {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn put_xor(values: &[f64], out: &mut Vec<u8>) {
    out.push(VALUES_XOR);
    let mut previous = 0u64;
    for v in values {
        let bits = v.to_bits();
        let x = bits ^ previous;
        previous = bits;
        if x == 0 {
            out.push(0);
            continue;
        }
        let lz = (x.leading_zeros() / 8) as usize;
        let tz = (x.trailing_zeros() / 8) as usize;
        let len = 8 - lz - tz;
        out.push(((lz as u8) << 4) | len as u8);
        out.extend_from_slice(&(x >> (tz * 8)).to_le_bytes()[..len]);
    }
}

/// Decodes `n` values from the start of `bytes` into `out`; returns the bytes read.
pub(crate) fn decode_values(bytes: &[u8], n: usize, out: &mut Vec<f64>) -> Result<usize, CodecError> {
    let mut at = 0;
    let mode = get_byte(bytes, &mut at, "the values column's mode")?;
    match mode {
        VALUES_RAW => {
            let len = n.checked_mul(8).filter(|&len| len <= bytes.len() - at);
            let Some(len) = len else {
                return Err(CodecError(format!(
                    "{n} raw values need {} bytes, {} left",
                    n.saturating_mul(8),
                    bytes.len() - at
                )));
            };
            out.extend(bytes[at..at + len].chunks_exact(8).map(|b| {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                f64::from_bits(u64::from_le_bytes(w))
            }));
            Ok(at + len)
        }
        VALUES_DECIMAL | VALUES_DECIMAL_CODED => {
            let e = usize::from(get_byte(bytes, &mut at, "the values column's exponent")?);
            let Some(&scale) = POW10_F64.get(e) else {
                return Err(CodecError(format!("decimal values of exponent {e}: the most is {MAX_EXPONENT}")));
            };
            out.reserve(reservable(n, bytes));
            get_ints(bytes, &mut at, n, mode == VALUES_DECIMAL_CODED, |m| out.push(m as f64 / scale))?;
            Ok(at)
        }
        VALUES_CONVERTED | VALUES_CONVERTED_CODED => {
            let k = usize::from(get_byte(bytes, &mut at, "the converted column's operation count")?);
            if k == 0 || k > MAX_STEPS {
                return Err(CodecError(format!("converted values of {k} operations: 1 to {MAX_STEPS}")));
            }
            let mut steps = [Step::Mul(1.0); MAX_STEPS];
            for step in &mut steps[..k] {
                let code = get_byte(bytes, &mut at, "a conversion's operation")?;
                let Some(c) = bytes.get(at..at + 8) else {
                    return Err(CodecError(format!("a conversion's constant at byte {at} is cut short")));
                };
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                at += 8;
                *step = step_of(code, f64::from_bits(u64::from_le_bytes(word)))
                    .ok_or_else(|| CodecError(format!("conversion operation {code} at byte {}", at - 9)))?;
            }
            let steps = &steps[..k];
            let e = usize::from(get_byte(bytes, &mut at, "the converted column's exponent")?);
            let Some(&scale) = POW10_F64.get(e) else {
                return Err(CodecError(format!("converted values of exponent {e}: the most is {MAX_EXPONENT}")));
            };
            out.reserve(reservable(n, bytes));
            get_ints(bytes, &mut at, n, mode == VALUES_CONVERTED_CODED, |m| out.push(apply(steps, m as f64 / scale)))?;
            Ok(at)
        }
        VALUES_XOR => {
            out.reserve(reservable(n, bytes));
            let mut previous = 0u64;
            for _ in 0..n {
                let header = get_byte(bytes, &mut at, "an XOR value's header")?;
                if header != 0 {
                    let (lz, len) = (usize::from(header >> 4), usize::from(header & 0x0f));
                    if len == 0 || lz + len > 8 {
                        return Err(CodecError(format!(
                            "XOR header {header:#04x} at byte {} names {lz} leading and {len} stored bytes",
                            at - 1
                        )));
                    }
                    let Some(part) = bytes.get(at..at + len) else {
                        return Err(CodecError(format!(
                            "XOR value at byte {at} needs {len} bytes, {} left",
                            bytes.len() - at
                        )));
                    };
                    at += len;
                    let mut word = [0u8; 8];
                    word[..len].copy_from_slice(part);
                    previous ^= u64::from_le_bytes(word) << ((8 - lz - len) * 8);
                }
                out.push(f64::from_bits(previous));
            }
            Ok(at)
        }
        _ => Err(CodecError(format!("values column of unknown mode {mode}"))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn times_round_trip(times: &[i64]) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_times(times, &mut bytes);
        let written = bytes.len();
        bytes.extend_from_slice(&[0xff, 0x00, 0x81]); // the next column follows
        let mut back = vec![42];
        assert_eq!(decode_times(&bytes, times.len(), &mut back).unwrap(), written);
        assert_eq!(back[0], 42, "decoding appends");
        assert_eq!(&back[1..], times);
        bytes.truncate(written);
        bytes
    }

    fn values_round_trip(values: &[f64]) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_values(values, &mut bytes);
        let written = bytes.len();
        bytes.extend_from_slice(&[0xff, 0x00, 0x81]);
        let mut back = Vec::new();
        assert_eq!(decode_values(&bytes, values.len(), &mut back).unwrap(), written);
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(values));
        bytes.truncate(written);
        bytes
    }

    /// Every cut of the column is an error; every flipped byte an error or other points, and
    /// neither panics.
    fn damage_is_caught_or_harmless(times: &[i64], values: &[f64]) {
        let (mut t, mut v) = (Vec::new(), Vec::new());
        encode_times(times, &mut t);
        encode_values(values, &mut v);
        for cut in 0..t.len() {
            assert!(decode_times(&t[..cut], times.len(), &mut Vec::new()).is_err(), "times cut at {cut}");
        }
        for cut in 0..v.len() {
            assert!(decode_values(&v[..cut], values.len(), &mut Vec::new()).is_err(), "values cut at {cut}");
        }
        for at in 0..t.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = t.clone();
                damaged[at] ^= flip;
                let mut out = Vec::new();
                if decode_times(&damaged, times.len(), &mut out).is_ok() {
                    assert_eq!(out.len(), times.len());
                }
            }
        }
        for at in 0..v.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = v.clone();
                damaged[at] ^= flip;
                let mut out = Vec::new();
                if decode_values(&damaged, values.len(), &mut out).is_ok() {
                    assert_eq!(out.len(), values.len());
                }
            }
        }
    }

    #[test]
    fn times_and_values_round_trip_bit_for_bit() {
        let times = [i64::MIN, -1, 0, 1_000_000_000, 2_000_000_000, 2_000_000_001, i64::MAX, 5];
        let values = [0.0, -0.0, f64::NAN, f64::INFINITY, 7.25, -1e300, f64::MIN_POSITIVE, 88.91];
        times_round_trip(&times);
        values_round_trip(&values);
        damage_is_caught_or_harmless(&times, &values);
    }

    #[test]
    fn empty_and_single_columns() {
        assert_eq!(times_round_trip(&[]), [TIMES_SCALED_DELTAS, MAX_EXPONENT as u8]);
        assert_eq!(values_round_trip(&[]), [VALUES_RAW]);
        // 3 s: zig-zag 6e9 in 5 varint bytes; no deltas.
        assert_eq!(times_round_trip(&[3_000_000_000]).len(), 2 + 5);
        assert_eq!(values_round_trip(&[-2.5]), [VALUES_DECIMAL, 1, 49]);
        assert_eq!(values_round_trip(&[-0.0])[0], VALUES_XOR);
        damage_is_caught_or_harmless(&[], &[]);
        damage_is_caught_or_harmless(&[7], &[f64::NAN]);
    }

    #[test]
    fn a_day_at_one_a_minute_on_whole_minutes_is_18_bytes() {
        let first = 1_700_000_000_000_000_000i64;
        let times: Vec<i64> = (0..1440).map(|i| first + i * 60_000_000_000).collect();
        // Deltas of 6 × 10^10 ns: unit 10^10, each 6; the first time's zig-zag needs 62
        // bits: 9 bytes. Half an hour: 29 deltas in one block [zig-zag 6 = 12][width 0].
        let mut expected = vec![TIMES_SCALED_DELTAS, 10];
        put_varint(&mut expected, zigzag(first));
        assert_eq!(expected.len(), 2 + 9);
        expected.extend_from_slice(&[12, 0]);
        assert_eq!(times_round_trip(&times[..30]), expected);
        // A day: 12 such blocks (35 bytes), or coded: d₁ = 6, then 1 438 differences of
        // differences, all zero: one run, symbol 16 + 10 (1024..2048) of 1 bit (code 0) after
        // 17 + 9 unused symbols (halves 15 15, 15 7), then 1438 − 1024 = 414 in 10 bits.
        let mut expected = vec![TIMES_CODED, 10];
        put_varint(&mut expected, zigzag(first));
        expected.extend_from_slice(&[12, 27, 0xff, 0x7f, 0x01]);
        expected.extend_from_slice(&(414u16 << 1).to_le_bytes());
        assert_eq!(times_round_trip(&times), expected);
        assert_eq!(expected.len(), 18);
        damage_is_caught_or_harmless(&times[..300], &[]);
        // Two outages, jitter of whole seconds: coded, and every point back.
        let mut gaps: Vec<i64> = (0..1440i64)
            .filter(|m| !(300..420).contains(m) && !(900..920).contains(m))
            .map(|m| first + m * 60_000_000_000 + (m % 7 / 5) * 1_000_000_000)
            .collect();
        assert_eq!(times_round_trip(&gaps)[0], TIMES_CODED);
        gaps.truncate(300);
        damage_is_caught_or_harmless(&gaps, &[]);
    }

    #[test]
    fn coded_times_of_few_points_decode() {
        // What the encoder writes in mode 1 (n ≤ 33) a decoder takes in mode 2 too.
        let mut out = Vec::new();
        assert_eq!(decode_times(&[TIMES_CODED, 9], 0, &mut out).unwrap(), 2);
        assert_eq!(decode_times(&[TIMES_CODED, 9, 6], 1, &mut out).unwrap(), 3);
        assert_eq!(decode_times(&[TIMES_CODED, 9, 6, 120], 2, &mut out).unwrap(), 4);
        assert_eq!(out, [3, 3, 60_000_000_003]);
        // t₀ = 3 ns, d₁ = 60 s, then [1 symbol: zig-zag 1 (−1 s), 1 bit] twice: 59 s, 58 s.
        assert_eq!(decode_times(&[TIMES_CODED, 9, 6, 120, 2, 0x10, 0], 4, &mut out).unwrap(), 7);
        assert_eq!(&out[3..], [3, 60_000_000_003, 119_000_000_003, 177_000_000_003]);
        assert!(
            decode_times(&[TIMES_CODED, 9, 6, 120, 2, 0x10], 4, &mut out)
                .unwrap_err()
                .to_string()
                .contains("cut short")
        );
        assert!(decode_times(&[TIMES_CODED, 19], 0, &mut out).is_err(), "unit over 10^18");
    }

    proptest::proptest! {
        /// The packed column's size, computed without packing, is what packing appends.
        #[test]
        fn blocks_len_is_what_put_blocks_appends(ints in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..700), small in proptest::bool::ANY) {
            let ints: Vec<i64> = ints.into_iter().map(|v| if small { v % 300 } else { v }).collect();
            let mut out = Vec::new();
            put_blocks(&ints, &mut out);
            proptest::prop_assert_eq!(blocks_len(&ints), out.len());
            for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
                out.clear();
                put_varint(&mut out, v);
                proptest::prop_assert_eq!(varint_len(v), out.len());
            }
        }
    }

    #[test]
    fn decimal_values_pack_their_differences() {
        // 700, 701, 701, 699 hundredths: differences 1, 0, -2 from a minimum of -2 are 3, 2,
        // 0 in 2 bits each: 0b00_10_11.
        let bytes = values_round_trip(&[7.0, 7.01, 7.01, 6.99]);
        assert_eq!(bytes, [VALUES_DECIMAL, 2, 0xf8, 0x0a, 3, 2, 0b00_1011]);
    }

    #[test]
    fn jittered_times_pack_in_the_bits_of_their_jitter() {
        // One a second with 0..=3 ms of jitter on whole milliseconds: unit 1 ms, deltas
        // 997..=1003, from a block minimum of 997 or more: at most 3 bits a time.
        let jitter = [0, 3, 1, 2, 0, 0, 3, 2, 1, 1];
        let times: Vec<i64> = (0..1000).map(|i| i * 1_000_000_000 + jitter[i as usize % 10] * 1_000_000).collect();
        let bytes = times_round_trip(&times);
        assert_eq!(bytes[1], 6);
        assert!(bytes.len() <= 2 + 1 + 8 * (3 + 48), "{} bytes", bytes.len());
    }

    #[test]
    fn values_that_are_not_decimals_fall_back() {
        // NO₂ ppm × 46.0055 / 22.414 to mg/m³: products that are not short decimals; decimal,
        // if at all, only with 15 or 16 significant digits: an exponent of 12 or more.
        let factor = 46.0055 / 22.414;
        let converted: Vec<f64> = (0..200).map(|i| f64::from(400 + i % 7) * factor).collect();
        assert!(decimal(&converted).is_none_or(|(e, _)| e >= 12));
        assert!(decimal(&[0.1 * 3.0]).is_none(), "0.30000000000000004: 17 digits");
        let bytes = values_round_trip(&converted);
        let mut xor = Vec::new();
        put_xor(&converted, &mut xor);
        assert!(bytes.len() <= xor.len(), "{} > {} bytes of XOR", bytes.len(), xor.len());
        assert!(bytes.len() > 2 * 200);
        let noise: Vec<f64> = (0..64u64).map(|i| f64::from_bits(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)).collect();
        let bytes = values_round_trip(&noise);
        assert_eq!((bytes[0], bytes.len()), (VALUES_RAW, 1 + 8 * 64));
        let special = [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::NEG_INFINITY,
            f64::from_bits(1),
            -f64::from_bits(0x000f_ffff_ffff_ffff),
            -0.0,
            0.0,
            f64::MAX,
            f64::MIN,
        ];
        values_round_trip(&special);
        damage_is_caught_or_harmless(&[], &special);
        damage_is_caught_or_harmless(&[], &converted[..40]);
    }

    #[test]
    fn what_no_encoder_wrote_is_an_error() {
        let mut out = Vec::new();
        assert!(decode_times(&[9, 0, 0], 1, &mut out).is_err(), "unknown mode");
        assert!(decode_times(&[1, 19, 0], 1, &mut out).is_err(), "unit over 10^18");
        assert!(decode_times(&[1, 0, 0, 0, 65], 2, &mut out).is_err(), "width over 64");
        assert!(decode_values(&[1, 19, 0], 1, &mut out_f64()).is_err(), "exponent over 18");
        assert!(decode_values(&[2, 0x90], 1, &mut out_f64()).is_err(), "XOR header of 0 bytes");
        assert!(decode_values(&[2, 0x45], 1, &mut out_f64()).is_err(), "XOR header of 9 bytes");
        assert!(decode_values(&[4], 0, &mut out_f64()).is_err(), "unknown mode");
        let one = 1.0f64.to_bits().to_le_bytes();
        let converted = |k: u8, op: u8, e: u8| [&[VALUES_CONVERTED, k, op][..], &one, &[e, 2]].concat();
        assert!(decode_values(&converted(1, 0, 2), 1, &mut out_f64()).is_ok());
        assert!(decode_values(&converted(0, 0, 2), 1, &mut out_f64()).is_err(), "no operation");
        assert!(decode_values(&converted(5, 0, 2), 1, &mut out_f64()).is_err(), "5 operations");
        assert!(decode_values(&converted(1, 4, 2), 1, &mut out_f64()).is_err(), "operation 4");
        assert!(decode_values(&converted(1, 0, 19), 1, &mut out_f64()).is_err(), "exponent over 18");
        assert!(decode_values(&[0; 16], 2, &mut out_f64()).is_err(), "raw cut");
        assert!(
            decode_times(&[1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1], 1, &mut out).is_err()
        );
        // A length far beyond what the bytes could hold reserves nothing for it.
        let mut big = Vec::new();
        assert!(decode_times(&[1, 0, 0, 0, 0], usize::MAX, &mut big).is_err());
        assert!(big.capacity() < 1 << 10);
    }

    fn out_f64() -> Vec<f64> {
        Vec::new()
    }

    fn so2_from_mg_per_nm3(x: f64) -> f64 {
        Catalog::builtin().to_canonical(eitwatch_config::reading::Kind::Emission, "so2", x, "mg/Nm3").unwrap()
    }

    #[test]
    fn converted_decimals_pack_as_their_decimals() {
        // mg/Nm³ at 0.1 read by the agent, stored as ppm (× 24.45 / 64.066): not decimals.
        let counts = [1234i64, 1235, 1235, 1233, 1236, 1240, 1239];
        let values: Vec<f64> = counts.iter().map(|&c| so2_from_mg_per_nm3(c as f64 / 10.0)).collect();
        assert!(decimal(&values).is_none_or(|(e, _)| e >= 12));
        let bytes = values_round_trip(&values);
        // [3][1 operation][× c][e = 1][zig-zag 1234 = 2468: 2 bytes], one block of 6
        // differences (1, 0, -2, 3, 4, -1) from -2 in 3 bits: 18 bits, 3 bytes.
        let mut expected = vec![VALUES_CONVERTED, 1, 0];
        expected.extend_from_slice(&(24.45f64 / 64.066).to_bits().to_le_bytes());
        expected.push(1);
        put_varint(&mut expected, zigzag(1234));
        put_blocks(&[1, 0, -2, 3, 4, -1], &mut expected);
        assert_eq!(bytes, expected);
        damage_is_caught_or_harmless(&[], &values);
    }

    #[test]
    fn a_converted_mode_is_refused_unless_every_value_comes_back() {
        let values: Vec<f64> = (0..300).map(|i| so2_from_mg_per_nm3(f64::from(400 + i % 7) / 100.0)).collect();
        assert!([VALUES_CONVERTED, VALUES_CONVERTED_CODED].contains(&values_round_trip(&values)[0]));
        // One value a bit off the conversion, one of a decimal finer than 10^-9, a NaN, a -0.0:
        // each block falls back, and still reads back bit for bit.
        for (at, odd) in [
            (17, f64::from_bits(values[17].to_bits() + 1)),
            (299, so2_from_mg_per_nm3(4.000_000_000_1)),
            (0, f64::NAN),
            (150, -0.0),
        ] {
            let mut block = values.clone();
            block[at] = odd;
            let bytes = values_round_trip(&block);
            assert!(![VALUES_CONVERTED, VALUES_CONVERTED_CODED].contains(&bytes[0]), "{odd} at {at}");
        }
        // Decimals stay decimals; noise stays raw.
        assert_eq!(values_round_trip(&[7.0, 7.01, 6.99])[0], VALUES_DECIMAL);
        let noise: Vec<f64> = (0..64u64).map(|i| f64::from_bits(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)).collect();
        assert_eq!(values_round_trip(&noise)[0], VALUES_RAW);
    }

    fn coded_round_trip(ints: &[i64]) -> Vec<u8> {
        let mut bytes = vec![0xaa];
        put_coded(ints, &mut bytes);
        let written = bytes.len();
        bytes.extend_from_slice(&[0xff, 0x00, 0x81]);
        let (mut at, mut back) = (1, Vec::new());
        get_coded(&bytes, &mut at, ints.len(), |v| back.push(v)).unwrap();
        assert_eq!(at, written, "bytes read");
        assert_eq!(back, ints);
        bytes[1..written].to_vec()
    }

    /// `eitwatch-load --realistic`'s walk (uniform noise of -3..=3, a pull of 1/64 back to
    /// the level, 1 % of steps starting a plateau of 5 to 60), `n` readings in steps.
    fn realistic(seed: u64, level: i64, n: usize) -> Vec<i64> {
        let mut rng = seed;
        let mut next = || {
            rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let (mut steps, mut hold) = (level, 0u64);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if hold > 0 {
                hold -= 1;
            } else {
                let r = next();
                if r % 100 == 0 {
                    hold = 5 + (r >> 8) % 56;
                } else {
                    steps += ((r >> 16) % 7) as i64 - 3 + (level - steps) / 64;
                }
            }
            out.push(steps);
        }
        out
    }

    #[test]
    fn coded_integers_are_their_canonical_codes() {
        assert_eq!(coded_round_trip(&[]), Vec::<u8>::new());
        // Zig-zag 2, 2, 1, 2: symbols 1 and 2 of 1 bit each, codes 0 and 1; lengths of
        // symbols 0..3 (0, 1, 1) in nibbles; bits 1, 1, 0, 1 from the lowest.
        assert_eq!(coded_round_trip(&[1, 1, -1, 1]), [3, 0x10, 0x01, 0b1011]);
        // Ten zeros and a 3 (zig-zag 6): as a run (symbol 19, 3 extra bits) in 2 + 3 bits
        // after a table to symbol 19 (halves 15 4, 1, 15 10, 1: 4 bytes); as ten literal
        // zeros in 11 bits after a table to symbol 6 (halves 1, 15 3, 1: 3 bytes).
        assert_eq!(coded_round_trip(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]), [7, 0xf1, 0x13, 0, 0b100]);
        // A thousand zeros: one run, symbol 16 + 9 (512..1024) of 1 bit (code 0) after 17 + 8
        // unused symbols (halves 15 15, 15 6), then 1000 − 512 = 488 in 9 bits.
        let mut expected = vec![26, 0xff, 0x6f, 0x01];
        expected.extend_from_slice(&(488u16 << 1).to_le_bytes());
        assert_eq!(coded_round_trip(&[0; 1000]), expected);
        // A single integer; the widest ones, in symbols of 63 extra bits; runs among them.
        coded_round_trip(&[5]);
        coded_round_trip(&[i64::MIN, i64::MAX, -1, 0, 0, 0, 1, i64::MIN, 16, -16, 17, 1 << 40]);
        coded_round_trip(&(0..300).map(|i| if i % 50 < 30 { 0 } else { i64::MAX - i }).collect::<Vec<_>>());
        // Symbols of every kind with counts as uneven as they come: the code is limited to
        // 12 bits (a decoder refuses longer ones).
        let mut ints = Vec::new();
        for k in 0..20 {
            ints.extend(std::iter::repeat_n(k % 8 + 1, 1 << (k % 18)));
        }
        ints.extend((4..64).map(|k| unzigzag(1u64 << k)));
        ints.extend((0..32).flat_map(|k| std::iter::repeat_n(0, 1 << (k % 12)).chain([7])));
        coded_round_trip(&ints);
    }

    #[test]
    fn realistic_walks_take_the_coded_mode() {
        for (seed, decimals, level) in [(1, 1, 600), (2, 2, 720), (3, 0, 800), (4, 2, 150)] {
            let values: Vec<f64> =
                realistic(seed, level, 1440).iter().map(|&m| m as f64 / 10f64.powi(decimals)).collect();
            let bytes = values_round_trip(&values);
            assert_eq!((bytes[0], usize::from(bytes[1])), (VALUES_DECIMAL_CODED, decimals as usize));
            let mut packed = vec![VALUES_DECIMAL, decimals as u8];
            let ints = decimal(&values).unwrap().1;
            put_varint(&mut packed, zigzag(ints[0]));
            put_blocks(&ints.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>(), &mut packed);
            // Noise of 7 values takes about log2(7) bits rather than the blocks' 3 or 4, a
            // plateau a run.
            assert!(bytes.len() * 20 < packed.len() * 19, "{} coded, {} packed", bytes.len(), packed.len());
            damage_is_caught_or_harmless(&[], &values[..400]);
        }
        // 32 values (31 differences) are not worth a code table.
        let few: Vec<f64> = realistic(9, 600, 32).iter().map(|&m| m as f64 / 10.0).collect();
        assert_eq!(values_round_trip(&few)[0], VALUES_DECIMAL);
        // Converted (SO₂ read in mg/Nm³ at 0.1, stored in ppm): mode 5.
        let values: Vec<f64> = realistic(5, 1200, 1440).iter().map(|&m| so2_from_mg_per_nm3(m as f64 / 10.0)).collect();
        let bytes = values_round_trip(&values);
        assert_eq!(bytes[0], VALUES_CONVERTED_CODED);
        damage_is_caught_or_harmless(&[], &values[..400]);
    }

    #[test]
    fn coded_edge_columns_round_trip() {
        let coded = |ints: &[i64], e: u8| {
            let mut bytes = vec![VALUES_DECIMAL_CODED, e];
            if let Some(&first) = ints.first() {
                put_varint(&mut bytes, zigzag(first));
                put_coded(&ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect::<Vec<_>>(), &mut bytes);
            }
            let mut back = Vec::new();
            assert_eq!(decode_values(&bytes, ints.len(), &mut back).unwrap(), bytes.len());
            back
        };
        // n = 0 and 1, which the encoder writes in mode 1: a decoder takes them all the same.
        assert!(coded(&[], 2).is_empty());
        assert_eq!(coded(&[-123], 2), [-1.23]);
        // All equal, plateaus, huge jumps, negatives, the largest exponent.
        assert_eq!(coded(&[77; 3000], 1), vec![7.7; 3000]);
        let jumps = [-(1i64 << 53), 1 << 53, 0, -5, -5, -5, 1 << 53];
        let back = coded(&jumps, 18);
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            jumps.iter().map(|&m| (m as f64 / 1e18).to_bits()).collect::<Vec<_>>()
        );
        // And through the encoder, which takes `coded` where it is smaller.
        for values in [
            vec![-2.5; 5000],
            realistic(6, -3000, 3000).iter().map(|&m| m as f64 / 100.0).collect(),
            realistic(7, 0, 2000).iter().map(|&m| m as f64 * 1e-18).collect(),
            realistic(8, 0, 2000)
                .iter()
                .enumerate()
                .map(|(i, &m)| if i % 500 == 7 { 9e15 } else { m as f64 })
                .collect(),
        ] {
            values_round_trip(&values);
        }
    }

    #[test]
    fn a_damaged_coded_column_is_an_error_naming_it() {
        let error = |bytes: &[u8], n: usize| match decode_values(bytes, n, &mut Vec::new()) {
            Err(e) => e.to_string(),
            Ok(read) => panic!("{bytes:?} decoded, {read} bytes"),
        };
        // Mode 4, e = 1, m₀ = 0, then the code table.
        let column = |rest: &[u8]| [&[VALUES_DECIMAL_CODED, 1, 0][..], rest].concat();
        assert!(error(&column(&[]), 2).contains("symbol count missing"));
        assert!(error(&column(&[0]), 2).contains("for 0 symbols"));
        assert!(error(&column(&[109, 0]), 2).contains("for 109 symbols"));
        assert!(error(&column(&[4, 0x10]), 2).contains("code lengths are cut short at byte 5"));
        assert!(error(&column(&[3, 0xf0, 0x01]), 2).contains("3 unused symbols from symbol 1, past its 3"));
        assert!(error(&column(&[3, 0xff]), 2).contains("17 unused symbols from symbol 0"));
        assert!(error(&column(&[2, 0xd0]), 2).contains("a code of 13 bits"));
        assert!(error(&column(&[2, 0x00]), 2).contains("no code"));
        assert!(error(&column(&[3, 0x11, 0x01, 0]), 2).contains("no prefix code"));
        // One symbol (1) of 1 bit: code 0; a 1 bit is no code.
        assert_eq!(decode_values(&column(&[2, 0x10, 0b10]), 2, &mut Vec::new()).unwrap(), 6);
        assert!(error(&column(&[2, 0x10, 0b01]), 3).contains("bit 0 starts no code"));
        // The stream ends before the second integer, or a run goes past the last.
        assert!(error(&column(&[2, 0x10, 0]), 10).contains("cut short"));
        assert!(error(&column(&[18, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0b10]), 3).contains("a run of 3 zeros"));
        // Symbol 107 alone (63 extra bits), its code 0 and then 7 bits of the 63.
        let mut wide = vec![108];
        wide.extend_from_slice(&[0; 53]);
        wide.extend_from_slice(&[0x10, 0xfe]);
        assert!(error(&column(&wide), 2).contains("cut short"));
        // Mode 5 names its cut stream too.
        let one = 1.0f64.to_bits().to_le_bytes();
        let converted = [&[VALUES_CONVERTED_CODED, 1, 0][..], &one, &[1, 0, 2, 0x10]].concat();
        assert!(error(&converted, 3).contains("cut short"));
    }

    /// A random walk at `resolution` (a power of ten) with steps, plateaus and noise.
    fn walk(start: i64, steps: &[(i8, u8)], decimals: i32) -> Vec<f64> {
        let scale = 10f64.powi(decimals);
        let mut m = start;
        let mut values = Vec::new();
        for &(step, repeat) in steps {
            m += i64::from(step);
            for _ in 0..=repeat % 4 {
                values.push(m as f64 / scale);
            }
        }
        values
    }

    proptest! {
        #[test]
        fn any_times_round_trip(times in prop::collection::vec(any::<i64>(), 0..300)) {
            times_round_trip(&times);
        }

        #[test]
        fn shaped_times_round_trip(
            first in -(1i64 << 62)..(1i64 << 62),
            interval_ns in prop::sample::select(vec![1_000_000_000i64, 60_000_000_000, 1_000_000, 7]),
            jitter_ns in prop::collection::vec(prop_oneof![Just(0i64), -5_000_000i64..5_000_000, 0i64..3], 1..600),
            gap in prop::option::of((0usize..600, 1i64..1_000_000_000_000_000)),
            swap in prop::option::of((0usize..600, 0usize..600)),
        ) {
            let mut times: Vec<i64> = jitter_ns.iter().enumerate()
                .map(|(i, j)| first + i as i64 * interval_ns + j).collect();
            if let Some((at, gap)) = gap {
                times.iter_mut().skip(at).for_each(|t| *t += gap);
            }
            if let Some((a, b)) = swap {
                let n = times.len();
                times.swap(a % n, b % n);
            }
            times_round_trip(&times);
        }

        #[test]
        fn coded_integers_round_trip(
            parts in prop::collection::vec(prop_oneof![
                (-3i64..=3).prop_map(|d| vec![d]),
                (1usize..200).prop_map(|n| vec![0; n]),
                any::<i64>().prop_map(|d| vec![d]),
                (-40i64..40).prop_map(|d| vec![d]),
            ], 0..300),
        ) {
            coded_round_trip(&parts.concat());
        }

        #[test]
        fn any_values_round_trip(bits in prop::collection::vec(any::<u64>(), 0..300)) {
            let values: Vec<f64> = bits.into_iter().map(f64::from_bits).collect();
            values_round_trip(&values);
        }

        #[test]
        fn decimal_walks_round_trip_as_decimals(
            start in -1_000_000i64..1_000_000,
            steps in prop::collection::vec((-3i8..=3, any::<u8>()), 1..400),
            decimals in 0i32..=4,
        ) {
            let values = walk(start, &steps, decimals);
            let bytes = values_round_trip(&values);
            prop_assert!(bytes[0] == VALUES_DECIMAL || bytes[0] == VALUES_DECIMAL_CODED);
            prop_assert!(usize::from(bytes[1]) <= decimals as usize);
        }

        #[test]
        fn converted_walks_round_trip_as_their_decimals(
            start in 0i64..100_000,
            steps in prop::collection::vec((-3i8..=3, any::<u8>()), 1..400),
            decimals in 0i32..=3,
            conversion in any::<prop::sample::Index>(),
            tweak in prop::option::of((any::<prop::sample::Index>(), 1u64..3)),
        ) {
            let all = conversions();
            let chosen = &all[conversion.index(all.len())];
            let mut values: Vec<f64> = walk(start, &steps, decimals).into_iter().map(|x| apply(chosen, x)).collect();
            if let Some((at, ulps)) = tweak {
                let i = at.index(values.len());
                values[i] = f64::from_bits(values[i].to_bits() + ulps);
            }
            let bytes = values_round_trip(&values);
            if tweak.is_none() {
                // Some conversions (× 1000, + 273.15) leave decimals decimal; a value or two
                // take fewer bytes raw than with the conversion's steps written before them.
                let converted_len = converted(&values, Effort::Smallest).map_or(usize::MAX, |c| c.len());
                prop_assert!(
                    [VALUES_CONVERTED, VALUES_CONVERTED_CODED, VALUES_DECIMAL, VALUES_DECIMAL_CODED].contains(&bytes[0])
                        || bytes.len() <= converted_len,
                    "{:?}: mode {} in {} bytes, converted {}", chosen, bytes[0], bytes.len(), converted_len
                );
                prop_assert!(
                    bytes.len() <= 2 + 9 * MAX_STEPS + 1 + 10 + 2 * values.len(),
                    "{:?} at {} decimals: mode {}, {:?}, {} bytes for {}", chosen, decimals, bytes[0], &bytes[..30], bytes.len(), values.len()
                );
            }
        }

        #[test]
        fn damaged_shaped_columns_never_panic(
            steps in prop::collection::vec((-3i8..=3, any::<u8>()), 1..60),
            jitter_ns in prop::collection::vec(0i64..2_000_000, 1..60),
            odd in any::<u64>(),
        ) {
            let mut values = walk(700, &steps, 2);
            values.push(f64::from_bits(odd));
            let times: Vec<i64> = jitter_ns.iter().enumerate().map(|(i, j)| i as i64 * 1_000_000_000 + j).collect();
            damage_is_caught_or_harmless(&times, &values);
        }
    }
}
