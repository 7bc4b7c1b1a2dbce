//! `eitwatch-agent probe modbus`: the commissioning probe. Reads a few registers once and
//! prints them raw and in every decoding (types × byte orders, from every start address),
//! marking the decodings inside a parameter's plausible range and naming the likely one,
//! so that nobody has to guess a byte order or an off-by-one address from a manual.

use std::fmt::Write as _;
use std::time::Duration;

use eitwatch_config::agent_config::{ByteOrder, ModbusTransport, Parity, RegisterTable, RegisterType};
use eitwatch_config::{Catalog, Kind, Parameter};

use super::client;
use super::decode::{Decoding, every_decoding};

/// The probe's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// `host:port` of a Modbus TCP device or gateway.
    #[arg(long, conflicts_with = "serial", required_unless_present = "serial")]
    pub address: Option<String>,
    /// RTU framing over the TCP connection (a transparent serial-to-Ethernet gateway).
    #[arg(long, requires = "address")]
    pub rtu_over_tcp: bool,
    /// Serial device of an RTU bus (`/dev/ttyUSB0`).
    #[arg(long)]
    pub serial: Option<String>,
    /// Serial speed.
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// Serial data bits: 7 or 8.
    #[arg(long, default_value_t = 8)]
    pub data_bits: u8,
    /// Serial parity: none, even or odd.
    #[arg(long, default_value = "none")]
    pub parity: String,
    /// Serial stop bits: 1 or 2.
    #[arg(long, default_value_t = 1)]
    pub stop_bits: u8,
    /// Slave (unit) id.
    #[arg(long, default_value_t = 1)]
    pub slave: u8,
    /// Read holding registers from this address.
    #[arg(long, group = "table")]
    pub holding: Option<u16>,
    /// Read input registers from this address.
    #[arg(long, group = "table")]
    pub input: Option<u16>,
    /// Read coils from this address.
    #[arg(long, group = "table")]
    pub coils: Option<u16>,
    /// Read discrete inputs from this address.
    #[arg(long, group = "table")]
    pub discrete: Option<u16>,
    /// How many registers (or bits) to read.
    #[arg(long, default_value_t = 4)]
    pub count: u16,
    /// How the addresses above count: 0 = protocol addresses, 1 = register numbers from 1.
    #[arg(long, default_value_t = 0)]
    pub address_base: u16,
    /// Catalog parameter the registers should hold (`cod`, `ph`, `so2`): marks the
    /// decodings inside its plausible range and names the likely one.
    #[arg(long)]
    pub parameter: Option<String>,
    /// effluent, emission or ambient, when the parameter code exists in more than one.
    #[arg(long)]
    pub kind: Option<String>,
    /// The unit the device reports in (default: the catalog's unit for the parameter).
    #[arg(long)]
    pub unit: Option<String>,
    /// Time allowed for the connection and the request.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

/// Runs the probe and returns the report to print.
pub async fn run(args: &ProbeArgs) -> Result<String, String> {
    let transport = match (&args.address, &args.serial) {
        (Some(address), _) if args.rtu_over_tcp => ModbusTransport::RtuOverTcp { address: address.clone() },
        (Some(address), _) => ModbusTransport::Tcp { address: address.clone() },
        (None, Some(port)) => ModbusTransport::Rtu {
            port: port.clone(),
            baud: args.baud,
            data_bits: args.data_bits,
            parity: match args.parity.as_str() {
                "none" => Parity::None,
                "even" => Parity::Even,
                "odd" => Parity::Odd,
                other => return Err(format!("--parity {other}: expected none, even or odd")),
            },
            stop_bits: args.stop_bits,
        },
        (None, None) => return Err("give --address host:port or --serial /dev/ttyX".into()),
    };
    let (table, address) = match (args.holding, args.input, args.coils, args.discrete) {
        (Some(a), ..) => (RegisterTable::Holding, a),
        (_, Some(a), ..) => (RegisterTable::Input, a),
        (_, _, Some(a), _) => (RegisterTable::Coil, a),
        (.., Some(a)) => (RegisterTable::Discrete, a),
        _ => return Err("give one of --holding, --input, --coils, --discrete with the first address".into()),
    };
    let start = address
        .checked_sub(args.address_base)
        .ok_or_else(|| format!("address {address} is below --address-base {}", args.address_base))?;
    let max = if table.is_bits() { 2000 } else { 125 };
    if args.count == 0 || args.count > max {
        return Err(format!("--count {}: expected 1 to {max}", args.count));
    }
    let parameter = match &args.parameter {
        Some(code) => Some(find_parameter(code, args.kind.as_deref())?),
        None => None,
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut connection = client::connect(&transport, timeout).await.map_err(|e| e.to_string())?;
    let words = connection
        .read(args.slave, table, start, args.count, timeout)
        .await
        .map_err(|e| format!("slave {} {} {address}: {e}", args.slave, table.as_str()))?;
    connection.close().await;
    Ok(report(&words, table, start, args.address_base, parameter, args.unit.as_deref()))
}

fn find_parameter(code: &str, kind: Option<&str>) -> Result<&'static Parameter, String> {
    let catalog = Catalog::builtin();
    let kinds: Vec<Kind> = match kind {
        Some(k) => vec![k.parse()?],
        None => Kind::ALL.to_vec(),
    };
    let found: Vec<&Parameter> = kinds.iter().filter_map(|&k| catalog.get(k, code)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("unknown parameter \"{code}\"")),
        _ => Err(format!("\"{code}\" exists for several kinds: add --kind effluent|emission|ambient")),
    }
}

/// The conventional register number (40001 style) of a protocol address, for manuals.
fn register_number(table: RegisterTable, address: u16) -> u32 {
    let base = match table {
        RegisterTable::Coil => 1,
        RegisterTable::Discrete => 10_001,
        RegisterTable::Input => 30_001,
        RegisterTable::Holding => 40_001,
    };
    base + u32::from(address)
}

fn type_rank(kind: RegisterType) -> u8 {
    // Analysers mostly publish f32; then plain 16-bit words; 64-bit values are rare.
    match kind {
        RegisterType::F32 => 0,
        RegisterType::U16 => 1,
        RegisterType::I16 => 2,
        RegisterType::U32 => 3,
        RegisterType::I32 => 4,
        RegisterType::F64 => 5,
        RegisterType::U64 => 6,
        RegisterType::I64 => 7,
        RegisterType::Bit => 8,
    }
}

fn order_rank(order: ByteOrder) -> u8 {
    match order {
        ByteOrder::ABCD => 0,
        ByteOrder::CDAB => 1,
        ByteOrder::BADC => 2,
        ByteOrder::DCBA => 3,
    }
}

/// A value as instruments report it: at most 3 decimals (within f32 precision), and for a
/// float a magnitude between 0.001 and 10⁶. A wrong byte order of a float gives digits all the
/// way down, a tiny denormal-like number, or a huge whole one (an integer read as a float).
fn is_tidy(v: f64, kind: RegisterType) -> bool {
    let r = (v * 1000.0).round() / 1000.0;
    let float = matches!(kind, RegisterType::F32 | RegisterType::F64);
    v == 0.0 || (r != 0.0 && (v - r).abs() <= 1e-6 * v.abs() && (!float || (1e-3..1e6).contains(&v.abs())))
}

/// A decoded value as a person reads it: whole numbers whole (up to 10¹⁵), others as written
/// when short, else to 7 significant digits (what an f32 holds) without trailing zeros, and beyond 10⁹ or below
/// 10⁻³ in scientific notation: a wrong byte order can decode to 10¹⁸⁰, which f64's
/// `Display` writes out in 181 digits.
fn compact(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && a < 1e15 {
        return format!("{v:.0}");
    }
    if (1e-3..1e9).contains(&a) {
        // Exact as written when short (1234.5625, an f32 exactly).
        let shortest = v.to_string();
        if shortest.len() <= 10 {
            return shortest;
        }
        let decimals = (6 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        return if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    }
    let s = format!("{v:.6e}");
    match s.split_once('e') {
        Some((m, e)) if m.contains('.') => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
        _ => s,
    }
}

/// The likely decoding among the plausible ones: at the address asked for, not zero, tidy,
/// using exactly the registers read (when 1, 2 or 4 were), then the commonest type and order.
fn likely<'a>(plausible: &[&'a Decoding], count: usize) -> Option<&'a Decoding> {
    let exact = matches!(count, 1 | 2 | 4);
    plausible
        .iter()
        .min_by_key(|d| {
            (
                d.offset != 0,
                d.value == 0.0,
                !is_tidy(d.value, d.kind),
                exact && usize::from(d.kind.registers()) != count,
                type_rank(d.kind),
                order_rank(d.order),
            )
        })
        .copied()
}

/// The printed report; `start` is the protocol address of `words[0]`.
pub fn report(
    words: &[u16],
    table: RegisterTable,
    start: u16,
    base: u16,
    parameter: Option<&Parameter>,
    unit: Option<&str>,
) -> String {
    let mut out = String::new();
    let shown = |offset: usize| u32::from(start) + offset as u32 + u32::from(base);
    let _ = writeln!(out, "{} from address {} (address_base = {base}):", table.as_str(), shown(0));
    let _ = writeln!(out, "  {:>8} {:>8} {:>8} {:>6} {:>6}  bits", "address", "protocol", "number", "hex", "u16");
    for (i, w) in words.iter().enumerate() {
        let protocol = u32::from(start) + i as u32;
        let number = register_number(table, start.saturating_add(i as u16));
        let _ = writeln!(out, "  {:>8} {protocol:>8} {number:>8} {w:#06x} {w:>6}  {w:016b}", shown(i));
    }
    if table.is_bits() {
        return out;
    }
    if words.iter().all(|&w| w == 0) {
        let _ =
            writeln!(out, "every register reads 0: no decoding can be told apart; probe while the instrument measures");
        return out;
    }
    let decodings = every_decoding(words);
    let catalog = Catalog::builtin();
    let canonical = |d: &Decoding| -> Option<f64> {
        let p = parameter?;
        catalog.to_canonical(p.kind, &p.code, d.value, unit.unwrap_or(&p.unit)).ok()
    };
    let in_range = |d: &Decoding| -> bool {
        parameter.is_some_and(|p| canonical(d).is_some_and(|v| catalog.is_plausible(p.kind, &p.code, v)))
    };
    let _ = writeln!(out, "decodings (type order at address = value):");
    for d in &decodings {
        let mark = if in_range(d) { "  plausible" } else { "" };
        let order = if d.kind.registers() == 1 { &d.order.as_str()[..2] } else { d.order.as_str() };
        let _ =
            writeln!(out, "  {:<4} {order:<4} at {:>5} = {}{mark}", d.kind.as_str(), shown(d.offset), compact(d.value));
    }
    if let Some(p) = parameter {
        let plausible: Vec<&Decoding> = decodings.iter().filter(|d| in_range(d)).collect();
        let unit = eitwatch_config::catalog::typeset_unit(unit.unwrap_or(&p.unit));
        let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
        let canonical_unit = eitwatch_config::catalog::typeset_unit(&p.unit);
        match likely(&plausible, words.len()) {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "likely for {} ({}, plausible {}..{} {canonical_unit}): type = \"{}\", order = \"{}\", address = {} → {}{unit} ({} plausible decodings in all)",
                    p.code,
                    p.name_en,
                    compact(p.plausible[0]),
                    compact(p.plausible[1]),
                    d.kind.as_str(),
                    d.order.as_str(),
                    shown(d.offset),
                    compact(d.value),
                    plausible.len()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "no decoding lies in {}'s plausible range {}..{} {canonical_unit}: check slave, table, address and unit",
                    p.code,
                    compact(p.plausible[0]),
                    compact(p.plausible[1])
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::decode::encode;

    #[test]
    fn names_the_likely_decoding_of_a_word_swapped_float() {
        // COD 85.25 mg/L as f32 CDAB at holding 100, then an unrelated u16.
        let mut words = encode(85.25, RegisterType::F32, ByteOrder::CDAB);
        words.push(7);
        let cod = find_parameter("cod", None).expect("cod");
        let text = report(&words, RegisterTable::Holding, 100, 0, Some(cod), None);
        assert!(text.contains("type = \"f32\", order = \"CDAB\", address = 100 → 85.25 mg/L"), "{text}");
        assert!(text.contains("f32  CDAB at   100 = 85.25  plausible"), "{text}");
        assert!(text.contains("     100      100    40101 0x8000  32768"), "{text}");
    }

    #[test]
    fn an_integer_is_not_mistaken_for_a_float() {
        // 85250 µg/L as u32 ABCD: f32 CDAB of the same words is 136314896, also "plausible".
        let words = encode(85250.0, RegisterType::U32, ByteOrder::ABCD);
        let cod = find_parameter("cod", None).expect("cod");
        let text = report(&words, RegisterTable::Holding, 10, 0, Some(cod), Some("ug/L"));
        assert!(text.contains("type = \"u32\", order = \"ABCD\", address = 10 → 85250 µg/L"), "{text}");
    }

    #[test]
    fn one_based_addresses_are_shown_as_configured() {
        let words = encode(7.25, RegisterType::F32, ByteOrder::ABCD);
        let ph = find_parameter("ph", Some("effluent")).expect("ph");
        let text = report(&words, RegisterTable::Input, 9, 1, Some(ph), None);
        assert!(text.contains("type = \"f32\", order = \"ABCD\", address = 10 → 7.25 ("), "{text}");
        assert!(text.contains("      10        9    30010"), "{text}");
    }

    #[test]
    fn values_are_written_as_people_read_them() {
        assert_eq!(compact(85.25), "85.25");
        assert_eq!(compact(1234.5625), "1234.5625");
        assert_eq!(compact(136_314_896.0), "136314896");
        assert_eq!(compact(1.0 / 3.0), "0.3333333");
        assert_eq!(compact(122.8939437866211), "122.8939");
        assert_eq!(compact(5.442166420183872e-18), "5.442166e-18");
        assert_eq!(compact(-1.0e180), "-1e180");
        assert_eq!(compact(2.5e10 + 0.5), "2.5e10");
        // A word-swapped f32 of 85.25 decodes to a number of 39 digits as f64 writes it.
        let words = encode(85.25, RegisterType::F32, ByteOrder::CDAB);
        let cod = find_parameter("cod", None).expect("cod");
        let text = report(&words, RegisterTable::Holding, 0, 0, Some(cod), None);
        let longest = text.split_whitespace().map(str::len).max().unwrap_or(0);
        assert!(longest <= 20, "a {longest}-character word in {text}");
    }

    #[test]
    fn zeros_and_implausible_values_say_so() {
        let cod = find_parameter("cod", None).expect("cod");
        let f32 = RegisterType::F32;
        assert!(is_tidy(85.3f32 as f64, f32) && is_tidy(1234.5625, f32) && is_tidy(0.0, f32));
        assert!(!is_tidy(5.442166420183872e-18, f32) && !is_tidy(1.0 / 3.0, f32));
        assert!(!is_tidy(136_314_896.0, f32) && is_tidy(136_314_896.0, RegisterType::U32));
        let text = report(&[0, 0], RegisterTable::Holding, 0, 0, Some(cod), None);
        assert!(text.contains("every register reads 0"), "{text}");
        let ph = find_parameter("ph", Some("effluent")).expect("ph");
        let text =
            report(&encode(-5000.0, RegisterType::I16, ByteOrder::ABCD), RegisterTable::Holding, 0, 0, Some(ph), None);
        assert!(text.contains("no decoding lies in ph's plausible range"), "{text}");
    }
}
