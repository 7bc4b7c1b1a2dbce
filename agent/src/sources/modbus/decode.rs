//! Register words → numbers, by type and byte order. Knows nothing of devices or config
//! files, so the poller and the commissioning probe decode the same way.

use eitwatch_config::agent_config::{ByteOrder, RegisterType};

/// Decodes a value from its registers (as read, in wire order) by type and byte order.
/// `bit` picks a bit of a single register for [`RegisterType::Bit`]; a coil or discrete
/// input arrives as one word holding 0 or 1 and is read with `bit = None`.
/// `None` when there are fewer words than the type needs.
pub fn decode(words: &[u16], kind: RegisterType, order: ByteOrder, bit: Option<u8>) -> Option<f64> {
    let n = kind.registers() as usize;
    let words = words.get(..n)?;
    if kind == RegisterType::Bit {
        return Some(((words[0] >> bit.unwrap_or(0).min(15)) & 1) as f64);
    }
    // Put the bytes in big-endian (ABCD…) order, whatever order they came in. The letters
    // name the bytes of the big-endian value in the order they arrive: CDAB is "words
    // swapped", BADC "bytes swapped in each word", DCBA both. For 64-bit values the same
    // rule spans four words (EdgeX #335: swaps broken for 64-bit values).
    let mut ordered = [0u16; 4];
    ordered[..n].copy_from_slice(words);
    let ordered = &mut ordered[..n];
    if matches!(order, ByteOrder::CDAB | ByteOrder::DCBA) {
        ordered.reverse();
    }
    if matches!(order, ByteOrder::BADC | ByteOrder::DCBA) {
        ordered.iter_mut().for_each(|w| *w = w.swap_bytes());
    }
    let mut bytes = [0u8; 8];
    for (i, w) in ordered.iter().enumerate() {
        bytes[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
    }
    let [a, b, c, d, e, f, g, h] = bytes;
    Some(match kind {
        RegisterType::U16 => u16::from_be_bytes([a, b]) as f64,
        RegisterType::I16 => i16::from_be_bytes([a, b]) as f64,
        RegisterType::U32 => u32::from_be_bytes([a, b, c, d]) as f64,
        RegisterType::I32 => i32::from_be_bytes([a, b, c, d]) as f64,
        RegisterType::U64 => u64::from_be_bytes(bytes) as f64,
        RegisterType::I64 => i64::from_be_bytes(bytes) as f64,
        RegisterType::F32 => f32::from_be_bytes([a, b, c, d]) as f64,
        RegisterType::F64 => f64::from_be_bytes([a, b, c, d, e, f, g, h]),
        RegisterType::Bit => return None,
    })
}

/// Encodes a value into wire-order words: the inverse of [`decode`], for tests and the
/// simulated device.
pub fn encode(value: f64, kind: RegisterType, order: ByteOrder) -> Vec<u16> {
    let be: Vec<u8> = match kind {
        RegisterType::U16 | RegisterType::Bit => (value as u16).to_be_bytes().to_vec(),
        RegisterType::I16 => (value as i16).to_be_bytes().to_vec(),
        RegisterType::U32 => (value as u32).to_be_bytes().to_vec(),
        RegisterType::I32 => (value as i32).to_be_bytes().to_vec(),
        RegisterType::U64 => (value as u64).to_be_bytes().to_vec(),
        RegisterType::I64 => (value as i64).to_be_bytes().to_vec(),
        RegisterType::F32 => (value as f32).to_be_bytes().to_vec(),
        RegisterType::F64 => value.to_be_bytes().to_vec(),
    };
    let mut words: Vec<u16> = be.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    if matches!(order, ByteOrder::BADC | ByteOrder::DCBA) {
        words.iter_mut().for_each(|w| *w = w.swap_bytes());
    }
    if matches!(order, ByteOrder::CDAB | ByteOrder::DCBA) {
        words.reverse();
    }
    words
}

/// One way of reading some words, for the commissioning probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoding {
    /// Index of the first word used, from the first word read.
    pub offset: usize,
    /// Type.
    pub kind: RegisterType,
    /// Byte order (for 16-bit types only ABCD and BADC differ).
    pub order: ByteOrder,
    /// The value.
    pub value: f64,
}

/// Every numeric decoding (types × orders) starting at every word of `words`.
pub fn every_decoding(words: &[u16]) -> Vec<Decoding> {
    let mut out = Vec::new();
    for offset in 0..words.len() {
        for kind in RegisterType::ALL {
            if kind == RegisterType::Bit {
                continue;
            }
            for order in ByteOrder::ALL {
                // A single register has only two orders: AB and BA.
                if kind.registers() == 1 && matches!(order, ByteOrder::DCBA | ByteOrder::CDAB) {
                    continue;
                }
                if let Some(value) = decode(&words[offset..], kind, order, None) {
                    out.push(Decoding { offset, kind, order, value });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_order_of_a_float() {
        // 123.456f32 = 0x42F6E979: A=42 B=F6 C=E9 D=79.
        let v = 123.456f32 as f64;
        assert_eq!(decode(&[0x42F6, 0xE979], RegisterType::F32, ByteOrder::ABCD, None), Some(v));
        assert_eq!(decode(&[0x79E9, 0xF642], RegisterType::F32, ByteOrder::DCBA, None), Some(v));
        assert_eq!(decode(&[0xF642, 0x79E9], RegisterType::F32, ByteOrder::BADC, None), Some(v));
        assert_eq!(decode(&[0xE979, 0x42F6], RegisterType::F32, ByteOrder::CDAB, None), Some(v));
    }

    #[test]
    fn decodes_every_order_of_a_64_bit_value() {
        // 0x0102030405060708: bytes A..H = 01 .. 08.
        let v = 0x0102_0304_0506_0708u64 as f64;
        let u64_of = |w: [u16; 4], o| decode(&w, RegisterType::U64, o, None);
        assert_eq!(u64_of([0x0102, 0x0304, 0x0506, 0x0708], ByteOrder::ABCD), Some(v));
        assert_eq!(u64_of([0x0807, 0x0605, 0x0403, 0x0201], ByteOrder::DCBA), Some(v));
        assert_eq!(u64_of([0x0201, 0x0403, 0x0605, 0x0807], ByteOrder::BADC), Some(v));
        assert_eq!(u64_of([0x0708, 0x0506, 0x0304, 0x0102], ByteOrder::CDAB), Some(v));
    }

    #[test]
    fn decodes_integers_and_bits() {
        assert_eq!(decode(&[0xFFFF], RegisterType::I16, ByteOrder::ABCD, None), Some(-1.0));
        assert_eq!(decode(&[0xFFFF], RegisterType::U16, ByteOrder::ABCD, None), Some(65535.0));
        assert_eq!(decode(&[0x0100], RegisterType::U16, ByteOrder::BADC, None), Some(1.0));
        assert_eq!(decode(&[0x0001, 0x0002], RegisterType::U32, ByteOrder::ABCD, None), Some(65538.0));
        assert_eq!(decode(&[0x0002, 0x0001], RegisterType::U32, ByteOrder::CDAB, None), Some(65538.0));
        assert_eq!(decode(&[0xFFFF, 0xFFFE], RegisterType::I32, ByteOrder::ABCD, None), Some(-2.0));
        assert_eq!(decode(&[0, 0, 0, 5], RegisterType::U64, ByteOrder::ABCD, None), Some(5.0));
        assert_eq!(decode(&[5, 0, 0, 0], RegisterType::U64, ByteOrder::CDAB, None), Some(5.0));
        assert_eq!(decode(&[0x0500, 0, 0, 0], RegisterType::I64, ByteOrder::DCBA, None), Some(5.0));
        let bits = 1.5f64.to_bits();
        let words = [(bits >> 48) as u16, (bits >> 32) as u16, (bits >> 16) as u16, bits as u16];
        assert_eq!(decode(&words, RegisterType::F64, ByteOrder::ABCD, None), Some(1.5));
        assert_eq!(decode(&[0b100], RegisterType::Bit, ByteOrder::ABCD, Some(2)), Some(1.0));
        assert_eq!(decode(&[0b100], RegisterType::Bit, ByteOrder::ABCD, Some(1)), Some(0.0));
        assert_eq!(decode(&[1], RegisterType::F32, ByteOrder::ABCD, None), None, "too few registers");
    }

    #[test]
    fn encode_is_the_inverse_of_decode_for_every_type_and_order() {
        let values = [
            (RegisterType::U16, 65_000.0),
            (RegisterType::I16, -12_345.0),
            (RegisterType::U32, 4_000_000_000.0),
            (RegisterType::I32, -2_000_000_000.0),
            (RegisterType::U64, 9_007_199_254_740_993.0),
            (RegisterType::I64, -9_007_199_254_740_000.0),
            (RegisterType::F32, 85.25),
            (RegisterType::F64, -1234.5678901234),
        ];
        for (kind, value) in values {
            for order in ByteOrder::ALL {
                let words = encode(value, kind, order);
                assert_eq!(words.len(), kind.registers() as usize);
                assert_eq!(decode(&words, kind, order, None), Some(value), "{kind:?} {order:?}");
            }
        }
    }

    #[test]
    fn every_decoding_lists_types_times_orders_at_each_offset() {
        let all = every_decoding(&[0x42F6, 0xE979]);
        // Offset 0: u16/i16 × 2 orders + u32/i32/f32 × 4 orders; offset 1: u16/i16 × 2.
        assert_eq!(all.len(), 4 + 12 + 4);
        let f32_abcd = all.iter().find(|d| d.offset == 0 && d.kind == RegisterType::F32 && d.order == ByteOrder::ABCD);
        assert_eq!(f32_abcd.map(|d| d.value), Some(123.456f32 as f64));
    }
}
