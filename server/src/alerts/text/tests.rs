//! Alert texts from conditions the real engine raised: expected sentences written by hand.

use std::sync::Arc;

use eitwatch_config::reading::{Kind, Reading};
use eitwatch_config::server_config::AlertsSection;

use super::{Lang, date, summary, time};
use crate::alerts::{Alert, AlertBook};
use crate::compliance::clock::ManualClock;
use crate::compliance::period::{DAY_NS, HOUR_NS, SECOND_NS};
use crate::compliance::{AlertKind, Engine, Settings};

/// Brackish receiving water (TDS 12 000 mg/L), a permit for BOD, a stack with an O₂ reference.
const FACTORIES: &str = r#"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3

[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["tds", "ph", "bod", "temp", "cod"]
expected_interval_s = 60
receiving_water_tds_mg_per_l = 12000.0
[area.factory.point.faults]
flatline_after_s = 600
max_change_per_min = { cod = 50.0 }

[[area.factory.point]]
id = "stack-1"
kind = "emission"
parameters = ["so2", "o2"]
expected_interval_s = 60
emission = { source = "boiler", fuel = "heavy_oil", combustion = true }

[[area.factory.permit]]
reference = "P-60"
point = "outfall-1"
parameter = "bod"
max = 60.0
unit = "mg/L"
averaging = "instantaneous"
"#;

/// 2026-12-05 23:36:04.577974866 UTC = 2026-12-06 06:36:04 Bangkok.
fn t0() -> i64 {
    "2026-12-06T06:36:04.577974866+07:00".parse::<jiff::Timestamp>().expect("time").as_nanosecond() as i64
}

fn engine(now_ns: i64) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now_ns));
    (Engine::new(crate::testkit::registry(FACTORIES), clock.clone(), Settings::default()), clock)
}

fn water(parameter: &str, value: f64, t: i64) -> Reading {
    Reading::new(Kind::Effluent, "f1", "outfall-1", parameter, value, t)
}

fn stack(parameter: &str, value: f64, t: i64) -> Reading {
    Reading::new(Kind::Emission, "f1", "stack-1", parameter, value, t)
}

/// The alerts the book opens from the engine's conditions now, by parameter and kind.
fn alerts(e: &Engine, now_ns: i64) -> Vec<Alert> {
    let dir = tempfile::tempdir().expect("tmp");
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    book.reconcile(&e.conditions(), now_ns).expect("reconcile")
}

fn one<'a>(alerts: &'a [Alert], kind: AlertKind, parameter: Option<&str>) -> &'a Alert {
    let found: Vec<_> = alerts.iter().filter(|a| a.kind == kind && a.parameter.as_deref() == parameter).collect();
    assert_eq!(found.len(), 1, "{kind:?} {parameter:?} in {:#?}", alerts.iter().map(|a| &a.key).collect::<Vec<_>>());
    found[0]
}

#[test]
fn times_are_bangkok_local_buddhist_era_in_thai() {
    assert_eq!(time(t0(), Lang::Th), "06/12/2569 06:36 น.");
    assert_eq!(time(t0(), Lang::En), "2026-12-06 06:36 (UTC+7)");
    // 23:36 UTC on the 5th is already the 6th in Bangkok.
    assert_eq!(date(t0(), Lang::Th), "06/12/2569");
    assert_eq!(date(t0(), Lang::En), "2026-12-06");
}

/// The alerts of one morning at the outfall and the stack, judged by the real engine.
fn morning() -> Vec<Alert> {
    let t = t0();
    // 07:00 Bangkok, the next whole hour.
    let hour = t - t.rem_euclid(HOUR_NS) + HOUR_NS;
    let now = hour + HOUR_NS + SECOND_NS;
    let (mut e, _) = engine(now);
    let mut readings = vec![
        // Receiving water 12 000 > 3 000: the bound is max(3 000, 12 000 + 5 000) = 17 000.
        water("tds", 17500.0, t),
        water("ph", 5.4, t),
        // The permit's 60, not the standard's 20; 61.25 shown to BOD's 1 decimal.
        water("bod", 61.25, t),
        // 20 → 400 in a minute: 380 per minute against the 50 allowed.
        water("cod", 20.0, t),
        water("cod", 400.0, t + 60 * SECOND_NS),
        water("temp", 150.0, t),
    ];
    for i in 0..60 {
        readings.push(stack("so2", 2000.0, hour + i * 60 * SECOND_NS));
        readings.push(stack("o2", 7.0, hour + i * 60 * SECOND_NS));
    }
    e.ingest(&readings);
    e.tick();
    alerts(&e, now)
}

#[test]
fn a_tds_grab_sample_states_the_limit_the_receiving_water_rule_applied() {
    let alerts = morning();
    let a = one(&alerts, AlertKind::Exceedance, Some("tds"));
    assert_eq!(
        summary(a, Lang::En),
        "Total dissolved solids grab sample at 2026-12-06 06:36 (UTC+7): 17,500 mg/L, above the applied limit of \
         17,000 mg/L (Standards for Controlling Effluent Discharge from Factories, B.E. 2560, clause 5.4; \
         receiving-water TDS rule: the receiving water's 12,000 mg/L + 5,000 mg/L, in place of the standard's \
         3,000 mg/L)."
    );
    assert_eq!(
        summary(a, Lang::Th),
        "ของแข็งละลายน้ำทั้งหมด ตัวอย่างแบบจ้วงเมื่อ 06/12/2569 06:36 น.: 17,500 mg/L เกินค่ามาตรฐานที่ใช้ \
         17,000 mg/L (ตามประกาศกำหนดมาตรฐานควบคุมการระบายน้ำทิ้งจากโรงงาน พ.ศ. 2560 ข้อ 5.4; เกณฑ์ TDS \
         ของแหล่งน้ำรับ: TDS ของแหล่งน้ำรับ 12,000 mg/L + 5,000 mg/L แทนค่ามาตรฐาน 3,000 mg/L)"
    );
    // The API keeps the full value.
    assert_eq!(a.value, Some(17500.0));
}

#[test]
fn a_low_ph_is_below_the_range_and_a_permit_is_named() {
    let alerts = morning();
    let ph = one(&alerts, AlertKind::Exceedance, Some("ph"));
    assert_eq!(
        summary(ph, Lang::En),
        "pH grab sample at 2026-12-06 06:36 (UTC+7): 5.40, below the range 5.5–9 (Standards for Controlling \
         Effluent Discharge from Factories, B.E. 2560, clause 5.1)."
    );
    assert!(
        summary(ph, Lang::Th)
            .starts_with("ความเป็นกรดและด่าง ตัวอย่างแบบจ้วงเมื่อ 06/12/2569 06:36 น.: 5.40 ต่ำกว่าช่วงที่กำหนด 5.5–9 (ตามประกาศ")
    );
    let bod = one(&alerts, AlertKind::Exceedance, Some("bod"));
    assert_eq!(
        summary(bod, Lang::En),
        "Biochemical oxygen demand (BOD) grab sample at 2026-12-06 06:36 (UTC+7): 61.3 mg/L, above the applied \
         limit of 60 mg/L (permit P-60)."
    );
    assert_eq!(
        summary(bod, Lang::Th),
        "บีโอดี ตัวอย่างแบบจ้วงเมื่อ 06/12/2569 06:36 น.: 61.3 mg/L เกินค่ามาตรฐานที่ใช้ 60 mg/L (ตามใบอนุญาต P-60)"
    );
}

#[test]
fn an_hourly_exceedance_names_its_period_and_the_o2_reference() {
    let alerts = morning();
    let so2 = one(&alerts, AlertKind::Exceedance, Some("so2"));
    let en = summary(so2, Lang::En);
    let th = summary(so2, Lang::Th);
    assert!(en.starts_with("Sulfur dioxide hourly mean of the hour from 2026-12-06 07:00 (UTC+7): "), "{en}");
    assert!(en.contains("% O₂"), "{en}");
    assert!(th.starts_with("ก๊าซซัลเฟอร์ไดออกไซด์ ค่าเฉลี่ยรายชั่วโมงของชั่วโมงที่เริ่ม 06/12/2569 07:00 น.: "), "{th}");
    assert!(th.contains("ปรับเทียบที่ออกซิเจน"), "{th}");
}

#[test]
fn sensor_faults_have_units_and_thai_names() {
    let alerts = morning();
    let spike = alerts.iter().find(|a| a.key.starts_with("sensor_fault/spike/")).expect("spike");
    assert_eq!(
        summary(spike, Lang::En),
        "Chemical oxygen demand (COD) jumped from 20 mg/L to 400 mg/L at 2026-12-06 06:37 (UTC+7) (380 mg/L per \
         minute, more than the 50 mg/L per minute allowed)."
    );
    assert_eq!(
        summary(spike, Lang::Th),
        "ซีโอดี เปลี่ยนจาก 20 mg/L เป็น 400 mg/L เมื่อ 06/12/2569 06:37 น. (380 mg/L ต่อนาที เกินอัตราที่กำหนด 50 mg/L \
         ต่อนาที)"
    );
    let implausible = alerts.iter().find(|a| a.key.starts_with("sensor_fault/implausible/")).expect("implausible");
    assert_eq!(
        summary(implausible, Lang::En),
        "Temperature reads 150.0 °C at 2026-12-06 06:36 (UTC+7), outside its plausible range 0–100 °C."
    );
    assert_eq!(
        summary(implausible, Lang::Th),
        "อุณหภูมิ อ่านได้ 150.0 °C เมื่อ 06/12/2569 06:36 น. อยู่นอกช่วงที่เป็นไปได้ 0–100 °C"
    );
}

#[test]
fn a_flatline_states_how_long() {
    let t = t0();
    let now = t + 11 * 60 * SECOND_NS;
    let (mut e, _) = engine(now);
    e.ingest(&(0..=10).map(|i| water("temp", 25.0, t + i * 60 * SECOND_NS)).collect::<Vec<_>>());
    e.tick();
    let alerts = alerts(&e, now);
    let flat = alerts.iter().find(|a| a.key.starts_with("sensor_fault/flatline/")).expect("flatline");
    assert_eq!(
        summary(flat, Lang::En),
        "Temperature has read 25.0 °C unchanged since 2026-12-06 06:36 (UTC+7) (flatline: 10 minutes or longer)."
    );
    assert_eq!(summary(flat, Lang::Th), "อุณหภูมิ ค่าคงที่ 25.0 °C ตั้งแต่ 06/12/2569 06:36 น. (ไม่เปลี่ยนแปลงนานถึง 10 นาที)");
}

#[test]
fn silence_availability_and_deadlines_in_both_languages() {
    let t = t0();
    // Two days on: the 7th (Bangkok) had no reading at all.
    let now = t + 2 * DAY_NS;
    let (mut e, _) = engine(now);
    e.ingest(&[water("cod", 20.0, t)]);
    e.tick();
    let alerts = alerts(&e, now);
    let no_data = one(&alerts, AlertKind::NoData, None);
    let no_data = [no_data].into_iter().find(|a| a.point == "outfall-1").expect("outfall");
    assert_eq!(summary(no_data, Lang::En), "No reading from point outfall-1 since 2026-12-06 06:36 (UTC+7).");
    assert_eq!(summary(no_data, Lang::Th), "ไม่ได้รับข้อมูลจากจุดตรวจวัด outfall-1 ตั้งแต่ 06/12/2569 06:36 น.");
    // Notify by the end of the next Bangkok day (the 7th), so overdue on the 8th.
    let overdue = alerts.iter().find(|a| a.key.starts_with("deadline/notify_overdue/f1/outfall-1/")).expect("overdue");
    assert_eq!(
        summary(overdue, Lang::En),
        "No data from point outfall-1 since 2026-12-06 06:36 (UTC+7): the DIW notification was due by 2026-12-08 \
         00:00 (UTC+7)."
    );
    assert_eq!(
        summary(overdue, Lang::Th),
        "ไม่มีข้อมูลจากจุดตรวจวัด outfall-1 ตั้งแต่ 06/12/2569 06:36 น.: เลยกำหนดแจ้งกรมโรงงานอุตสาหกรรม (ภายใน \
         08/12/2569 00:00 น.)"
    );
    let cod = alerts
        .iter()
        .find(|a| a.kind == AlertKind::Availability && a.parameter.as_deref() == Some("cod"))
        .expect("cod availability");
    assert_eq!(
        summary(cod, Lang::En),
        "Chemical oxygen demand (COD) on 2026-12-07: 0 valid of 1,440 expected readings (0.0 %, below the 80 % \
         required)."
    );
    assert_eq!(summary(cod, Lang::Th), "ซีโอดี วันที่ 07/12/2569: ข้อมูลที่ใช้ได้ 0 จาก 1,440 ค่าที่ควรได้รับ (0.0 % ต่ำกว่าเกณฑ์ 80 %)");
}

#[test]
fn no_thai_text_carries_a_code_or_an_iso_time() {
    let mut alerts = morning();
    let t = t0();
    let (mut e, _) = engine(t + 2 * DAY_NS);
    e.ingest(&[water("cod", 20.0, t)]);
    e.tick();
    alerts.extend(self::alerts(&e, t + 2 * DAY_NS));
    let kinds: std::collections::BTreeSet<_> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds.len(), 5, "every kind: {kinds:?}");
    for a in &alerts {
        let th = summary(a, Lang::Th);
        for code in ["tds", "bod", "cod", "so2", "o2 ", "temp", "moi-", "degC", "m3", "+07:00", "2026"] {
            assert!(!th.contains(code), "{code} in {th}");
        }
        let en = summary(a, Lang::En);
        assert!(!en.contains("+07:00") && !en.contains("degC") && !en.contains("moi-"), "{en}");
        // Its JSON carries both.
        let json = serde_json::to_value(a).expect("json");
        assert_eq!((json["summary"].as_str(), json["summary_th"].as_str()), (Some(en.as_str()), Some(th.as_str())));
    }
}

#[test]
fn an_exceeding_value_is_never_shown_rounded_onto_its_bound() {
    let t = t0();
    let (mut e, _) = engine(t + HOUR_NS);
    // BOD to 1 decimal: 60.04 would read 60.0 against the permit's 60.
    e.ingest(&[water("bod", 60.04, t)]);
    e.tick();
    let alerts = alerts(&e, t + HOUR_NS);
    let bod = one(&alerts, AlertKind::Exceedance, Some("bod"));
    assert!(
        summary(bod, Lang::En).contains(": 60.04 mg/L, above the applied limit of 60 mg/L"),
        "{}",
        summary(bod, Lang::En)
    );
}
