use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn builtin_catalog_covers_the_effluent_standard_and_cems_list() {
    let c = Catalog::builtin();
    for code in [
        "ph",
        "temp",
        "color",
        "tds",
        "tss",
        "bod",
        "cod",
        "sulfide",
        "cyanide",
        "oil_grease",
        "formaldehyde",
        "phenols",
        "free_chlorine",
        "pesticide",
        "tkn",
        "zn",
        "cr6",
        "cr3",
        "as",
        "cu",
        "hg",
        "cd",
        "ba",
        "se",
        "pb",
        "ni",
        "mn",
        "flow",
    ] {
        assert!(c.get(Kind::Effluent, code).is_some(), "effluent {code}");
    }
    for code in ["opacity", "tsp", "so2", "nox", "co", "o2", "trs", "h2s", "hg", "hcl", "flow", "temp"] {
        assert!(c.get(Kind::Emission, code).is_some(), "emission {code}");
    }
    assert_eq!(c.get(Kind::Effluent, "cod").and_then(|p| p.name_th.as_deref()), Some("ซีโอดี"));
}

#[test]
fn so2_ppm_to_mg_per_nm3_uses_molar_volume_at_25_c() {
    // 100 ppm SO2 × 64.066 g/mol / 24.45 L/mol = 262.02 mg/Nm³ (hand-computed).
    let c = Catalog::builtin();
    let mg = c.from_canonical(Kind::Emission, "so2", 100.0, "mg/Nm3").unwrap();
    assert!(close(mg, 100.0 * 64.066 / 24.45), "{mg}");
    assert!(close(mg, 262.0286298568507), "{mg}");
    let back = c.to_canonical(Kind::Emission, "so2", mg, "mg/m³").unwrap();
    assert!(close(back, 100.0));
    // HCl is canonical in mg/Nm³: 10 ppm → 10 × 36.461 / 24.45 = 14.9125 mg/Nm³.
    assert!(close(c.to_canonical(Kind::Emission, "hcl", 10.0, "ppm").unwrap(), 10.0 * 36.461 / 24.45));
}

#[test]
fn linear_conversions() {
    let c = Catalog::builtin();
    assert!(close(c.to_canonical(Kind::Effluent, "cod", 85_000.0, "µg/l").unwrap(), 85.0));
    assert!(close(c.to_canonical(Kind::Effluent, "temp", 104.0, "°F").unwrap(), 40.0));
    assert!(close(c.to_canonical(Kind::Effluent, "temp", 313.15, "K").unwrap(), 40.0));
    assert!(close(c.to_canonical(Kind::Effluent, "flow", 2400.0, "m3/d").unwrap(), 100.0));
    assert!(close(c.to_canonical(Kind::Effluent, "flow", 10.0, "L/s").unwrap(), 36.0));
    assert!(close(c.from_canonical(Kind::Effluent, "temp", 40.0, "degF").unwrap(), 104.0));
}

#[test]
fn a_unit_of_the_wrong_dimension_is_named() {
    let c = Catalog::builtin();
    let e = c.to_canonical(Kind::Effluent, "cod", 1.0, "ppm2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "parameter \"cod\" does not accept unit \"ppm2\", expected one of: mg/L, ug/L, g/L, g/m3, ppm, ppb"
    );
    assert!(c.to_canonical(Kind::Emission, "tsp", 1.0, "ppm").is_err(), "dust has no molar mass");
    assert_eq!(
        c.to_canonical(Kind::Effluent, "so2", 1.0, "ppm").unwrap_err().to_string(),
        "unknown effluent parameter \"so2\""
    );
}

#[test]
fn plausible_range() {
    let c = Catalog::builtin();
    assert!(c.is_plausible(Kind::Effluent, "ph", 7.0));
    assert!(!c.is_plausible(Kind::Effluent, "ph", 15.0));
    assert!(!c.is_plausible(Kind::Emission, "o2", 22.0));
    assert!(!c.is_plausible(Kind::Effluent, "nope", 1.0));
}

/// The allocation-free path of the conversions must agree with `normalise_unit`: each
/// spelling it takes as is is one the catalog uses and one `normalise_unit` keeps.
#[test]
fn catalog_spellings_are_every_unit_and_normalise_to_themselves() {
    use Dimension::*;
    let mut units: Vec<&str> =
        [WaterConcentration, GasConcentration, DustConcentration, Temperature, WaterFlow, GasFlow, Percent, Ph, Colour]
            .into_iter()
            .flat_map(|d| dimension_units(d).iter().map(|(u, _)| *u))
            .collect();
    units.sort();
    units.dedup();
    let mut spellings = CATALOG_SPELLINGS.to_vec();
    spellings.sort();
    assert_eq!(spellings, units);
    for u in CATALOG_SPELLINGS {
        assert_eq!(normalise_unit(u), *u);
        assert!(matches!(normalised(u), std::borrow::Cow::Borrowed(_)), "{u}");
    }
    assert_eq!(normalised("mg/m³"), "mg/Nm3", "other spellings still fold");
}

#[test]
fn every_parameter_has_a_display_precision_and_a_typeset_unit() {
    let c = Catalog::builtin();
    let shown = |kind, code| {
        let p = c.get(kind, code).expect(code);
        (p.display_decimals, p.unit_display.as_str())
    };
    assert_eq!(shown(Kind::Effluent, "ph"), (2, ""));
    assert_eq!(shown(Kind::Effluent, "cod"), (0, "mg/L"));
    assert_eq!(shown(Kind::Effluent, "bod"), (1, "mg/L"));
    assert_eq!(shown(Kind::Effluent, "tss"), (0, "mg/L"));
    assert_eq!(shown(Kind::Effluent, "tds"), (0, "mg/L"));
    assert_eq!(shown(Kind::Effluent, "temp"), (1, "°C"));
    assert_eq!(shown(Kind::Effluent, "flow"), (1, "m³/h"));
    assert_eq!(shown(Kind::Emission, "tsp"), (1, "mg/Nm³"));
    assert_eq!(shown(Kind::Emission, "o2"), (1, "%"));
    for p in c.iter() {
        assert!(!p.unit_display.contains('3'), "{} {}: {}", p.kind, p.code, p.unit_display);
        assert!(!p.unit_display.contains("deg"), "{} {}: {}", p.kind, p.code, p.unit_display);
    }
}

#[test]
fn values_are_formatted_to_the_display_precision() {
    let c = Catalog::builtin();
    let cod = c.get(Kind::Effluent, "cod").expect("cod");
    let ph = c.get(Kind::Effluent, "ph").expect("ph");
    assert_eq!(cod.format(122.8939437866211), "123");
    assert_eq!(cod.round(88.91004283674441), 89.0);
    assert_eq!(ph.format(5.4), "5.40");
    assert_eq!(ph.format(7.125), "7.13", "half away from zero (7.125 is exact in binary)");
    assert_eq!(format_decimals(-0.0001, 2), "0.00");
    assert_eq!(format_decimals(33.333333333333336, 1), "33.3");
    assert_eq!(format_decimals(f64::NAN, 1), "NaN");
    assert_eq!(format_grouped(17000.0, 0), "17,000");
    assert_eq!(format_grouped(-1234567.891, 2), "-1,234,567.89");
    assert_eq!(format_grouped(999.0, 0), "999");
    assert_eq!(format_grouped(0.5, 1), "0.5");
}

#[test]
fn a_catalog_whose_display_unit_is_not_its_unit_typeset_is_refused() {
    let text = r#"
[[parameter]]
kind = "effluent"
code = "temp"
name_en = "Temperature"
dimension = "temperature"
unit = "degC"
unit_display = "degC"
display_decimals = 1
plausible = [0.0, 100.0]
"#;
    let e = Catalog::from_toml(text).expect_err("degC is written °C");
    assert!(e.contains("temp") && e.contains("°C"), "{e}");
}

#[test]
fn conversion_steps_give_the_same_bits_as_to_canonical() {
    let catalog = Catalog::builtin();
    let mut checked = 0;
    for p in catalog.iter() {
        for (unit, _) in dimension_units(p.dimension) {
            let steps = catalog.conversion(p.kind, &p.code, unit).unwrap();
            for m in (-3000i64..3000).step_by(7) {
                for scale in [1.0, 10.0, 100.0, 1000.0] {
                    let x = m as f64 / scale;
                    let want = catalog.to_canonical(p.kind, &p.code, x, unit).unwrap();
                    let got = steps.iter().fold(x, |v, s| s.apply(v));
                    assert_eq!(got.to_bits(), want.to_bits(), "{} {x} {unit}: {steps:?}", p.code);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100_000, "{checked}");
    assert!(catalog.conversion(Kind::Effluent, "cod", "mg/L").unwrap().is_empty());
    assert_eq!(catalog.conversion(Kind::Effluent, "temp", "K").unwrap(), [Step::Add(-273.15)]);
    let so2 = catalog.conversion(Kind::Emission, "so2", "mg/Nm3").unwrap();
    assert_eq!(so2, [Step::Mul(MOLAR_VOLUME_L_PER_MOL / 64.066)], "so2 is kept in ppm");
    let all = catalog.conversions();
    assert!(all.contains(&so2) && !all.iter().any(Vec::is_empty));
}
