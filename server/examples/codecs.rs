//! The column codecs of sealed history (`store/codec.rs`) beside the candidates they were
//! chosen from, on columns shaped like the field's: per data shape and codec, bytes per
//! point, encode and decode ns per point, and the size and decode-time ratios to the
//! baseline (times: delta-of-delta varints of ns; values: raw `f64` bits).
//!
//! Values: analysers' random walks at a fixed decimal resolution with noise, steps and
//! plateaus, conversions that are not exact decimals, and lab grab samples. Times: one a
//! minute or one a second, on whole seconds or stamped in ns with jitter, with gaps and an
//! out-of-order backfill. A block is a day: 1 440 points at one a minute, 86 400 at one a
//! second.
//!
//! Then the realistic readings of `eitwatch-load --realistic` (its walk and instrument
//! table), a day of one a minute per block, per instrument and over all of them.
//!
//! `cargo run --release -p eitwatch-server --example codecs`

use std::hint::black_box;

use eitwatch_config::catalog::Catalog;
use eitwatch_config::reading::Kind;
use std::time::Instant;

#[allow(dead_code)]
#[path = "../src/store/codec.rs"]
mod codec;
#[allow(dead_code)] // The codec's rounding, at the path the codec names it by.
#[path = "../src/num.rs"]
mod num;

/// splitmix64: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }
    /// About normal, mean 0, standard deviation `sd` (a sum of four uniforms).
    fn normal(&mut self, sd: f64) -> f64 {
        let sum: f64 = (0..4).map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64).sum();
        (sum - 2.0) * sd * 3f64.sqrt()
    }
}

/// An analyser's reading in counts of its resolution: a slow walk, noise of a count or two,
/// now and then a step (a process change) or a plateau (the value held).
fn walk_counts(rng: &mut Rng, n: usize, start: f64, drift_sd: f64, noise_sd: f64, min: f64) -> Vec<i64> {
    let (mut level, mut out, mut hold) = (start, Vec::with_capacity(n), 0u64);
    let mut last = start.round() as i64;
    for _ in 0..n {
        if hold > 0 {
            hold -= 1;
            out.push(last);
            continue;
        }
        level += rng.normal(drift_sd);
        if rng.chance(2) {
            level += rng.normal(start * 0.2);
        }
        level = level.max(min);
        last = (level + rng.normal(noise_sd)).round().max(min) as i64;
        if rng.chance(5) {
            hold = rng.below(120);
        }
        out.push(last);
    }
    out
}

fn decimals(counts: &[i64], decimals: i32) -> Vec<f64> {
    // What an agent's parser gives for the text the analyser sends.
    counts
        .iter()
        .map(|&c| format!("{:.*}", decimals as usize, c as f64 / 10f64.powi(decimals)).parse().unwrap_or(0.0))
        .collect()
}

/// `values` in `unit` converted to the parameter's canonical unit, as ingest converts them.
fn canonical(kind: Kind, code: &str, unit: &str, values: &[f64]) -> Vec<f64> {
    let catalog = Catalog::builtin();
    values.iter().map(|&v| catalog.to_canonical(kind, code, v, unit).unwrap_or(f64::NAN)).collect()
}

fn value_shapes(n: usize, rng: &mut Rng) -> Vec<(String, Vec<f64>)> {
    let cod = walk_counts(rng, n, 80.0, 0.3, 0.6, 0.0);
    let cod01 = walk_counts(rng, n, 800.0, 3.0, 4.0, 0.0);
    let ph = walk_counts(rng, n, 720.0, 0.5, 1.0, 0.0);
    let temp = walk_counts(rng, n, 305.0, 0.3, 0.4, 0.0);
    let flow = walk_counts(rng, n, 1250.0, 4.0, 6.0, 0.0);
    let tss = walk_counts(rng, n, 350.0, 1.0, 2.0, 0.0);
    let ppm = walk_counts(rng, n, 40.0, 0.3, 0.5, 0.0);
    vec![
        (format!("COD 1 mg/L ×{n}"), decimals(&cod, 0)),
        (format!("COD 0.1 mg/L ×{n}"), decimals(&cod01, 1)),
        (format!("pH 0.01 ×{n}"), decimals(&ph, 2)),
        (format!("temperature 0.1 °C ×{n}"), decimals(&temp, 1)),
        (format!("flow 0.1 m³/h ×{n}"), decimals(&flow, 1)),
        (format!("TSS 0.1 mg/L ×{n}"), decimals(&tss, 1)),
        // SO₂ ppm × 2.86 to mg/Nm³: products, not the nearest doubles to decimals.
        (format!("SO₂ ppm × 2.86 ×{n}"), ppm.iter().map(|&p| p as f64 * 2.86).collect()),
        // What ingest stores when an agent sends another unit than the canonical one: the
        // catalog's conversion of the decimals it read.
        (format!("conv. SO₂ 0.1 mg/Nm³ → ppm ×{n}"), canonical(Kind::Emission, "so2", "mg/Nm3", &decimals(&cod01, 1))),
        (format!("conv. HCl 0.1 ppm → mg/Nm³ ×{n}"), canonical(Kind::Emission, "hcl", "ppm", &decimals(&tss, 1))),
        (format!("conv. temperature 0.1 K → °C ×{n}"), {
            let kelvin: Vec<i64> = temp.iter().map(|t| t + 2731).collect();
            canonical(Kind::Effluent, "temp", "K", &decimals(&kelvin, 1))
        }),
    ]
}

/// `eitwatch-load --realistic`'s instruments (`tests/src/bin/eitwatch-load.rs`): name,
/// level, decimals, and the band the walk stays in.
const INSTRUMENTS: [(&str, f64, u32, f64, f64); 10] = [
    ("cod 0.1 mg/L", 60.0, 1, 5.0, 400.0),
    ("bod 0.1 mg/L", 12.0, 1, 1.0, 100.0),
    ("ph 0.01", 7.2, 2, 5.5, 9.5),
    ("tss 0.1 mg/L", 25.0, 1, 1.0, 200.0),
    ("tds 1 mg/L", 800.0, 0, 100.0, 3000.0),
    ("temp 0.1 °C", 30.0, 1, 20.0, 45.0),
    ("flow 0.1 m³/h", 120.0, 1, 0.0, 600.0),
    ("oil_grease 0.1 mg/L", 2.0, 1, 0.0, 20.0),
    ("tkn 0.1 mg/L", 40.0, 1, 1.0, 200.0),
    ("zn 0.01 mg/L", 1.5, 2, 0.0, 10.0),
];

/// `eitwatch-load`'s `Walk`, in resolution steps: uniform noise of -3..=3 steps, a pull of
/// 1/64 of the distance back to the series' level, and 1 % of steps starting a plateau of
/// 5 to 60 equal readings.
fn realistic_counts(series: u64, level: f64, decimals: u32, low: f64, high: f64, n: usize) -> Vec<i64> {
    let scale = 10f64.powi(decimals as i32);
    let mut rng = Rng(series.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let level = (level * scale).round() as i64;
    let spread = (level / 5).max(1);
    let level = level - spread + rng.below(2 * spread as u64 + 1) as i64;
    let (low, high) = ((low * scale).round() as i64, (high * scale).round() as i64);
    let (mut steps, mut hold) = (level, 0u32);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if hold > 0 {
            hold -= 1;
        } else {
            let r = rng.next();
            if r % 100 == 0 {
                hold = 5 + (r >> 8) as u32 % 56;
            } else {
                let noise = ((r >> 16) % 7) as i64 - 3;
                let pull = (level - steps) / 64;
                steps = (steps + noise + pull).clamp(low, high);
            }
        }
        out.push(steps);
    }
    out
}

/// Per instrument, day blocks of 1 440 readings (one a minute) of `series` series, `days`
/// days each, as the agent parses the text `eitwatch-load` sends.
fn realistic_shapes(series: u64, days: usize) -> Vec<(String, Vec<Vec<f64>>)> {
    INSTRUMENTS
        .iter()
        .enumerate()
        .map(|(p, &(name, level, dec, low, high))| {
            let columns = (0..series)
                .flat_map(|f| {
                    let counts = realistic_counts(f * 16 + p as u64, level, dec, low, high, 1440 * days);
                    counts.chunks(1440).map(|day| decimals(day, dec as i32)).collect::<Vec<_>>()
                })
                .collect();
            (format!("{name} ×1440, {series} series × {days} days"), columns)
        })
        .collect()
}

fn time_shapes(rng: &mut Rng) -> Vec<(String, Vec<i64>)> {
    let day_ns = 1_796_000_000_000_000_000i64; // 2026-12-01 in ns, a whole minute
    let second = 1_000_000_000i64;
    let minute_exact: Vec<i64> = (0..1440).map(|i| day_ns + i * 60 * second).collect();
    let second_exact: Vec<i64> = (0..86_400).map(|i| day_ns + i * second).collect();
    let mut jitter = |n: i64, interval: i64, jitter_ns: i64, unit: i64| -> Vec<i64> {
        (0..n).map(|i| day_ns + i * interval + (rng.below(jitter_ns as u64) as i64 / unit) * unit).collect()
    };
    let second_ms = jitter(86_400, second, 20_000_000, 1_000_000);
    let second_ns = jitter(86_400, second, 5_000_000, 1);
    let minute_ns = jitter(1440, 60 * second, 5_000_000, 1);
    // Two outages of 2 h and 20 min.
    let mut minute_gaps: Vec<i64> = minute_exact.clone();
    minute_gaps.retain(|t| {
        let m = (t - day_ns) / (60 * second);
        !(300..420).contains(&m) && !(900..920).contains(&m)
    });
    // An agent's backfill after an outage arrives after newer points.
    let mut second_backfill = second_exact.clone();
    second_backfill[40_000..50_000].rotate_left(6_000);
    let grab: Vec<i64> = [8 * 3600 + 812, 10 * 3600 + 1544, 13 * 3600 + 203, 15 * 3600 + 3100]
        .iter()
        .map(|s| day_ns + s * second + rng.below(1000) as i64 * 1_000_000)
        .collect();
    vec![
        ("1/min, whole minutes ×1440".into(), minute_exact),
        ("1/min, ns jitter ≤ 5 ms ×1440".into(), minute_ns),
        ("1/min, whole minutes, 2 gaps".into(), minute_gaps),
        ("1/s, whole seconds ×86400".into(), second_exact),
        ("1/s, ms jitter ≤ 20 ms ×86400".into(), second_ms),
        ("1/s, ns jitter ≤ 5 ms ×86400".into(), second_ns),
        ("1/s, whole, backfill out of order".into(), second_backfill),
        ("lab grab samples ×4".into(), grab),
    ]
}

/// One candidate: a name, its encoder and its decoder.
struct Codec<T> {
    name: &'static str,
    encode: fn(&[T], &mut Vec<u8>),
    decode: fn(&[u8], usize, &mut Vec<T>),
}

/// Encode and decode ns per point, repeated over about 2 M points.
fn time_it<T>(codec: &Codec<T>, data: &[T]) -> (usize, f64, f64) {
    let rounds = (2_000_000 / data.len().max(1)).clamp(3, 20_000);
    let mut bytes = Vec::new();
    let started = Instant::now();
    for _ in 0..rounds {
        bytes.clear();
        (codec.encode)(black_box(data), &mut bytes);
    }
    let encode_ns = started.elapsed().as_nanos() as f64 / (rounds * data.len()) as f64;
    let mut out = Vec::with_capacity(data.len());
    let started = Instant::now();
    for _ in 0..rounds {
        out.clear();
        (codec.decode)(black_box(&bytes), data.len(), &mut out);
    }
    let decode_ns = started.elapsed().as_nanos() as f64 / (rounds * data.len()) as f64;
    assert_eq!(out.len(), data.len(), "{} decodes every point", codec.name);
    (bytes.len(), encode_ns, decode_ns)
}

fn report<T: Clone>(shape: &str, data: &[T], codecs: &[Codec<T>], same: impl Fn(&[T], &[T]) -> bool) {
    report_columns(shape, &[data.to_vec()], codecs, same);
}

/// As [`report`], over several columns (blocks) of one shape: bytes and times summed.
fn report_columns<T>(shape: &str, columns: &[Vec<T>], codecs: &[Codec<T>], same: impl Fn(&[T], &[T]) -> bool) {
    println!("\n{shape}");
    println!(
        "  {:<34} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "codec", "B/point", "enc ns/pt", "dec ns/pt", "size ×", "decode ×"
    );
    let points: usize = columns.iter().map(Vec::len).sum();
    let mut baseline = None;
    for codec in codecs {
        let (mut len, mut enc, mut dec) = (0, 0.0, 0.0);
        for data in columns {
            let mut bytes = Vec::new();
            (codec.encode)(data, &mut bytes);
            let mut back = Vec::new();
            (codec.decode)(&bytes, data.len(), &mut back);
            assert!(same(data, &back), "{} round trips {shape}", codec.name);
            let (l, e, d) = time_it(codec, data);
            len += l;
            enc += e * data.len() as f64;
            dec += d * data.len() as f64;
        }
        let (enc, dec) = (enc / points as f64, dec / points as f64);
        let (base_len, base_dec) = *baseline.get_or_insert((len as f64, dec));
        println!(
            "  {:<34} {:>9.3} {:>10.1} {:>10.1} {:>9.3} {:>9.2}",
            codec.name,
            len as f64 / points as f64,
            enc,
            dec,
            len as f64 / base_len,
            dec / base_dec
        );
    }
}

// --- Candidates beside the chosen codecs. ---

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    v
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The baseline: zig-zag varint delta-of-deltas of ns.
fn dod_encode(times: &[i64], out: &mut Vec<u8>) {
    let (mut previous, mut delta) = (0i64, 0i64);
    for &t in times {
        let d = t.wrapping_sub(previous);
        put_varint(out, zigzag(d.wrapping_sub(delta)));
        (previous, delta) = (t, d);
    }
}

fn dod_decode(bytes: &[u8], n: usize, out: &mut Vec<i64>) {
    let (mut at, mut previous, mut delta) = (0, 0i64, 0i64);
    for _ in 0..n {
        delta = delta.wrapping_add(unzigzag(get_varint(bytes, &mut at)));
        previous = previous.wrapping_add(delta);
        out.push(previous);
    }
}

/// Delta-of-delta varints after dividing by a common unit of 1 s, 1 ms or 1 ns.
fn dod_unit_encode(times: &[i64], out: &mut Vec<u8>) {
    let unit = [1_000_000_000i64, 1_000_000, 1].into_iter().find(|u| times.iter().all(|t| t % u == 0)).unwrap_or(1);
    out.push(unit.ilog10() as u8);
    let scaled: Vec<i64> = times.iter().map(|t| t / unit).collect();
    dod_encode(&scaled, out);
}

fn dod_unit_decode(bytes: &[u8], n: usize, out: &mut Vec<i64>) {
    let unit = 10i64.pow(u32::from(bytes[0]));
    let start = out.len();
    dod_decode(&bytes[1..], n, out);
    out[start..].iter_mut().for_each(|t| *t = t.wrapping_mul(unit));
}

fn pco_encode<T: pco::data_types::Number>(data: &[T], out: &mut Vec<u8>) {
    match pco::standalone::simple_compress(data, &pco::ChunkConfig::default()) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(e) => panic!("pco: {e}"),
    }
}

fn pco_decode<T: pco::data_types::Number>(bytes: &[u8], _n: usize, out: &mut Vec<T>) {
    match pco::standalone::simple_decompress::<T>(bytes) {
        Ok(v) => out.extend_from_slice(&v),
        Err(e) => panic!("pco: {e}"),
    }
}

/// The decimal exponent and mantissas of `values`, if they are all exact decimals.
fn mantissas(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    let e = (0..=18i32).find(|&e| {
        let p = 10f64.powi(e);
        values.iter().all(|&v| {
            let m = (v * p).round();
            m.abs() <= 9e15 && ((m as i64) as f64 / p).to_bits() == v.to_bits()
        })
    })?;
    let p = 10f64.powi(e);
    Some((e as u8, values.iter().map(|&v| (v * p).round() as i64).collect()))
}

/// `[e: u8]` and pco (standalone) of the decimal mantissas; raw bits after a 255 otherwise.
fn pco_mantissas_encode(values: &[f64], out: &mut Vec<u8>) {
    let Some((e, ints)) = mantissas(values) else {
        out.push(255);
        return raw_encode(values, out);
    };
    out.push(e);
    pco_encode(&ints, out);
}

fn pco_mantissas_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    if bytes[0] == 255 {
        return raw_decode(&bytes[1..], n, out);
    }
    let p = 10f64.powi(i32::from(bytes[0]));
    let mut ints = Vec::with_capacity(n);
    pco_decode::<i64>(&bytes[1..], n, &mut ints);
    out.extend(ints.iter().map(|&m| m as f64 / p));
}

/// The store's decimal mode with bit-packed blocks only (mode 1), for comparison.
fn packed_values_encode(values: &[f64], out: &mut Vec<u8>) {
    let Some((e, ints)) = mantissas(values) else {
        out.push(255);
        return raw_encode(values, out);
    };
    out.push(e);
    if let Some(&first) = ints.first() {
        codec::put_varint(out, codec::zigzag(first));
        let deltas: Vec<i64> = ints.windows(2).map(|w| w[1] - w[0]).collect();
        codec::put_blocks(&deltas, out);
    }
}

fn packed_values_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    if bytes[0] == 255 {
        return raw_decode(&bytes[1..], n, out);
    }
    let p = 10f64.powi(i32::from(bytes[0]));
    let mut at = 1;
    if n == 0 {
        return;
    }
    let Ok(first) = codec::get_varint(bytes, &mut at) else { panic!("first mantissa") };
    let mut m = codec::unzigzag(first);
    out.push(m as f64 / p);
    let read = codec::get_blocks(bytes, &mut at, n - 1, |d| {
        m += d;
        out.push(m as f64 / p);
    });
    if let Err(e) = read {
        panic!("{e}");
    }
}

fn raw_encode(values: &[f64], out: &mut Vec<u8>) {
    values.iter().for_each(|v| out.extend_from_slice(&v.to_bits().to_le_bytes()));
}

fn raw_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    out.extend(bytes.chunks_exact(8).take(n).map(|b| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        f64::from_bits(u64::from_le_bytes(w))
    }));
}

/// The in-memory index's XOR scheme (`store/index.rs`, `pack`), values only.
fn xor_encode(values: &[f64], out: &mut Vec<u8>) {
    let mut previous = 0u64;
    for v in values {
        let x = v.to_bits() ^ previous;
        previous = v.to_bits();
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

fn xor_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    let (mut at, mut previous) = (0, 0u64);
    for _ in 0..n {
        let header = bytes.get(at).copied().unwrap_or(0);
        at += 1;
        if header != 0 {
            let (lz, len) = (usize::from(header >> 4), usize::from(header & 0x0f));
            let mut word = [0u8; 8];
            let part = bytes.get(at..at + len).unwrap_or(&[]);
            word[..part.len()].copy_from_slice(part);
            at += len;
            previous ^= u64::from_le_bytes(word) << (8usize.saturating_sub(lz + len) * 8);
        }
        out.push(f64::from_bits(previous));
    }
}

/// Decimal scaling then zig-zag varints of the differences (no bit-packing); raw bits
/// after a 255 when the values are not decimals.
fn decimal_varint_encode(values: &[f64], out: &mut Vec<u8>) {
    let e = (0..=18usize).find(|&e| {
        let p = 10f64.powi(e as i32);
        values.iter().all(|&v| {
            let m = (v * p).round();
            m.abs() <= 9e15 && (m / p).to_bits() == v.to_bits()
        })
    });
    let Some(e) = e else {
        out.push(255);
        return raw_encode(values, out);
    };
    let p = 10f64.powi(e as i32);
    out.push(e as u8);
    let mut previous = 0i64;
    for &v in values {
        let m = (v * p).round() as i64;
        put_varint(out, zigzag(m - previous));
        previous = m;
    }
}

fn decimal_varint_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    if bytes[0] == 255 {
        return raw_decode(&bytes[1..], n, out);
    }
    let p = 10f64.powi(i32::from(bytes[0]));
    let (mut at, mut m) = (1, 0i64);
    for _ in 0..n {
        m += unzigzag(get_varint(bytes, &mut at));
        out.push(m as f64 / p);
    }
}

fn chosen_times_encode(times: &[i64], out: &mut Vec<u8>) {
    codec::encode_times(times, out);
}

fn chosen_times_decode(bytes: &[u8], n: usize, out: &mut Vec<i64>) {
    if let Err(e) = codec::decode_times(bytes, n, out) {
        panic!("{e}");
    }
}

fn chosen_values_encode(values: &[f64], out: &mut Vec<u8>) {
    codec::encode_values(values, out);
}

fn chosen_values_decode(bytes: &[u8], n: usize, out: &mut Vec<f64>) {
    if let Err(e) = codec::decode_values(bytes, n, out) {
        panic!("{e}");
    }
}

fn main() {
    let mut rng = Rng(15);
    let times = [
        Codec { name: "baseline: dod varint of ns", encode: dod_encode, decode: dod_decode },
        Codec { name: "dod varint in 1 s / 1 ms / 1 ns", encode: dod_unit_encode, decode: dod_unit_decode },
        Codec { name: "pco (standalone, level 8)", encode: pco_encode::<i64>, decode: pco_decode::<i64> },
        Codec { name: "chosen: scaled deltas, packed/coded", encode: chosen_times_encode, decode: chosen_times_decode },
    ];
    println!("TIMES");
    for (shape, data) in time_shapes(&mut rng) {
        report(&shape, &data, &times, |a, b| a == b);
    }
    let bits_equal = |a: &[f64], b: &[f64]| a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits()));
    let values = [
        Codec { name: "baseline: raw f64", encode: raw_encode, decode: raw_decode },
        Codec { name: "XOR bytes (index.rs pack)", encode: xor_encode, decode: xor_decode },
        Codec { name: "decimal, delta varint", encode: decimal_varint_encode, decode: decimal_varint_decode },
        Codec { name: "pco (standalone, level 8)", encode: pco_encode::<f64>, decode: pco_decode::<f64> },
        Codec { name: "pco of decimal mantissas", encode: pco_mantissas_encode, decode: pco_mantissas_decode },
        Codec { name: "decimal, packed blocks (mode 1)", encode: packed_values_encode, decode: packed_values_decode },
        Codec { name: "chosen: dec./conv. packed/coded", encode: chosen_values_encode, decode: chosen_values_decode },
    ];
    println!("\nVALUES");
    for n in [1440, 86_400] {
        for (shape, data) in value_shapes(n, &mut rng) {
            report(&shape, &data, &values, bits_equal);
        }
    }
    let grab = decimals(&[2310, 1870, 2540, 2120], 1);
    report("lab grab samples (BOD 0.1 mg/L) ×4", &grab, &values, bits_equal);
    println!("\nREALISTIC VALUES (eitwatch-load --realistic, one a minute, a day a block)");
    let (mut all, mut points) = (vec![0usize; values.len()], 0usize);
    for (shape, columns) in realistic_shapes(8, 4) {
        report_columns(&shape, &columns, &values, bits_equal);
        points += columns.iter().map(Vec::len).sum::<usize>();
        for (codec, total) in values.iter().zip(&mut all) {
            *total += columns
                .iter()
                .map(|c| {
                    let mut bytes = Vec::new();
                    (codec.encode)(c, &mut bytes);
                    bytes.len()
                })
                .sum::<usize>();
        }
    }
    println!("\nall instruments, {points} points");
    for (codec, total) in values.iter().zip(&all) {
        println!("  {:<34} {:>9.3} B/point", codec.name, *total as f64 / points as f64);
    }
}
