//! Column codecs of sealed history: a series' timestamps and values, each column encoded on
//! its own and decoded back bit for bit.
//!
//! Times: zig-zag varint delta-of-deltas (one byte a point at a regular interval).
//! Values: the `f64` bits, little-endian.

/// A column that does not decode: its bytes end early or hold what no encoder wrote.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodecError(pub(crate) String);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Result<u64, CodecError> {
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

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `times_ns` (any order, any values) to `out`.
pub(crate) fn encode_times(times_ns: &[i64], out: &mut Vec<u8>) {
    let (mut previous, mut delta) = (0i64, 0i64);
    for &t in times_ns {
        let d = t.wrapping_sub(previous);
        put_varint(out, zigzag(d.wrapping_sub(delta)));
        (previous, delta) = (t, d);
    }
}

/// Decodes `n` times from the start of `bytes` into `out`; returns the bytes read.
pub(crate) fn decode_times(bytes: &[u8], n: usize, out: &mut Vec<i64>) -> Result<usize, CodecError> {
    let (mut at, mut previous, mut delta) = (0usize, 0i64, 0i64);
    out.reserve(n);
    for _ in 0..n {
        delta = delta.wrapping_add(unzigzag(get_varint(bytes, &mut at)?));
        previous = previous.wrapping_add(delta);
        out.push(previous);
    }
    Ok(at)
}

/// Appends `values` (any bits, NaN and -0 included) to `out`.
pub(crate) fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Decodes `n` values from the start of `bytes` into `out`; returns the bytes read.
pub(crate) fn decode_values(bytes: &[u8], n: usize, out: &mut Vec<f64>) -> Result<usize, CodecError> {
    let len = n.checked_mul(8).filter(|&len| len <= bytes.len());
    let Some(len) = len else {
        return Err(CodecError(format!("{n} values need {} bytes, {} left", n.saturating_mul(8), bytes.len())));
    };
    out.extend(bytes[..len].chunks_exact(8).map(|b| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        f64::from_bits(u64::from_le_bytes(w))
    }));
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_values_round_trip_bit_for_bit() {
        let times = [i64::MIN, -1, 0, 1_000_000_000, 2_000_000_000, 2_000_000_001, i64::MAX, 5];
        let values = [0.0, -0.0, f64::NAN, f64::INFINITY, 7.25, -1e300, f64::MIN_POSITIVE, 88.91];
        let mut bytes = Vec::new();
        encode_times(&times, &mut bytes);
        let split = bytes.len();
        encode_values(&values, &mut bytes);
        let (mut t, mut v) = (Vec::new(), Vec::new());
        assert_eq!(decode_times(&bytes, times.len(), &mut t).unwrap(), split);
        assert_eq!(decode_values(&bytes[split..], values.len(), &mut v).unwrap(), bytes.len() - split);
        assert_eq!(t, times);
        assert_eq!(v.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.map(f64::to_bits));
    }

    #[test]
    fn a_cut_column_is_an_error() {
        let mut bytes = Vec::new();
        encode_times(&[1, 300, 1_000_000], &mut bytes);
        assert!(decode_times(&bytes[..bytes.len() - 1], 3, &mut Vec::new()).is_err());
        assert!(decode_values(&[0; 15], 2, &mut Vec::new()).is_err());
    }
}
