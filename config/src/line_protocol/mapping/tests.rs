use super::*;
use crate::line_protocol::{DecodeContext, Precision, decode_with};
use crate::problems::load;
use crate::reading::{Quality, Reading, Source};
use crate::server_config::ServerConfig;

/// A Telegraf `inputs.modbus` device (`name = "analyser"`, slave 1) mapped to mm-foods'
/// outfall; a vendor logger naming its stations by number.
const TOML: &str = r#"
[server]
data_dir = "/tmp/x"
[[ingest.mapping]]
measurement = "modbus"
tags = { name = "analyser" }
kind = "effluent"
point = "outfall-1"
other_fields = "ignore"
fields = { cod_mg_l = { parameter = "cod", unit = "mg/L" }, flow_l_s = { parameter = "flow", unit = "L/s" }, ph = { parameter = "ph" } }
[[ingest.mapping]]
measurement = "logger"
kind = "effluent"
factory_tag = "site"
point_tag = "station"
point_values = { "1" = "outfall-1", "2" = "outfall-2" }
fields = { tss_g_l = { parameter = "tss", unit = "g/L" } }
"#;

fn mappings() -> Vec<Mapping> {
    load::<ServerConfig>(TOML, "server.toml").expect("valid").ingest.mapping
}

fn decode(body: &str, mappings: &[Mapping]) -> Result<Vec<Reading>, String> {
    let cx = DecodeContext { precision: Precision::S, default_time_ns: 7, mappings, factory: Some("mm-foods") };
    let mut out = Vec::new();
    decode_with(body, &cx, |_, r| {
        out.append(r);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn a_telegraf_modbus_line_becomes_readings_in_canonical_units() {
    let m = mappings();
    let body = "modbus,host=gw,name=analyser,slave_id=1,type=holding_register cod_mg_l=85.25,flow_l_s=12.5,ph=7i,status=3i 1795300000\n";
    let rs = decode(body, &m).expect("accepted");
    let t = 1_795_300_000_000_000_000;
    assert_eq!(
        rs,
        vec![
            Reading::new(Kind::Effluent, "mm-foods", "outfall-1", "cod", 85.25, t),
            // 12.5 L/s × 3.6 = 45 m³/h
            Reading::new(Kind::Effluent, "mm-foods", "outfall-1", "flow", 45.0, t),
            Reading::new(Kind::Effluent, "mm-foods", "outfall-1", "ph", 7.0, t),
        ]
    );
    assert!(rs.iter().all(|r| r.quality == Quality::Valid && r.source == Source::Instrument));
}

#[test]
fn a_logger_names_factory_and_point_by_tags() {
    let m = mappings();
    let rs = decode("logger,site=mm-ceramics,station=2 tss_g_l=0.125\n", &m).expect("accepted");
    // 0.125 g/L = 125 mg/L; no timestamp: the receive time.
    assert_eq!(rs, vec![Reading::new(Kind::Effluent, "mm-ceramics", "outfall-2", "tss", 125.0, 7)]);
}

#[test]
fn mapped_lines_are_refused_naming_the_problem() {
    let m = mappings();
    let cases = [
        ("modbus,name=other cod_mg_l=1 1", "no [[ingest.mapping]] matches the line's tags"),
        ("scada,name=analyser cod_mg_l=1 1", "unknown measurement \"scada\""),
        ("logger,site=f,station=3 tss_g_l=1 1", "tag station=\"3\" is not one of the mapping's point_values"),
        ("logger,station=1 tss_g_l=1 1", "missing tag site"),
        (
            "logger,site=f,station=1 tds=1 1",
            "field tds: not a field of the mapping for \"logger\", expected one of: tss_g_l",
        ),
        ("logger,site=f,station=1 tss_g_l=true 1", "field tss_g_l: a boolean"),
        ("logger,site=f,station=1 tss_g_l=\"x\" 1", "field tss_g_l: a string"),
        ("modbus,name=analyser status=1 1", "no field of the mapping in the line"),
    ];
    for (body, reason) in cases {
        let e = decode(body, &m).expect_err("refused");
        assert!(e.starts_with("line 1: ") && e.contains(reason), "{body}: {e}");
    }
}

#[test]
fn bad_mappings_are_refused_at_load_with_their_key_paths() {
    let text = r#"
[server]
data_dir = "/tmp/x"
[[ingest.mapping]]
measurement = "effluent"
kind = "effluent"
fields = { a = { parameter = "nope" }, b = { parameter = "cod", unit = "furlongs" } }
"#;
    let problems = load::<ServerConfig>(text, "server.toml").expect_err("refused").to_string();
    for expected in [
        "server.toml: ingest.mapping[0].measurement: \"effluent\" is a canonical measurement",
        "server.toml: ingest.mapping[0].point: give exactly one of point (a fixed id) or point_tag",
        "server.toml: ingest.mapping[0].fields.a.parameter: unknown effluent parameter \"nope\"",
        "server.toml: ingest.mapping[0].fields.b.unit: parameter \"cod\" does not accept unit \"furlongs\"",
    ] {
        assert!(problems.contains(expected), "missing {expected:?} in:\n{problems}");
    }
}
