//! What a server has judged of f1 over a fixed past range (so the clock moving on between
//! starts changes nothing in it), as one JSON value: two servers, or one before and after a
//! restart or a restore, compared answer for answer.

use std::time::Duration;

use super::TestServer;
use super::lp::minutes;

const MINUTE_NS: i64 = 60_000_000_000;
const HOUR_NS: i64 = 60 * MINUTE_NS;
const DAY_NS: i64 = 24 * HOUR_NS;

/// f1's periods, episodes, availability days and revisions over `from_ns..to_ns`, and the
/// ids, keys and states of the alerts `alerts_path` lists (`/api/v1/alerts`, or with
/// `?factory=`).
pub async fn answers(server: &TestServer, from_ns: i64, to_ns: i64, alerts_path: &str) -> serde_json::Value {
    let range = |t: i64| jiff::Timestamp::from_nanosecond(t as i128).expect("time").to_string();
    let (from, to) = (range(from_ns), range(to_ns));
    let periods = server.get_json(&format!("/api/v1/periods?factory=f1&from={from}&to={to}&max_rows=100000")).await;
    let episodes = server.get_json(&format!("/api/v1/episodes?factory=f1&from={from}&to={to}")).await;
    let availability = server.get_json(&format!("/api/v1/availability?factory=f1&from={from}&to={to}")).await;
    let revisions = server.get_json("/api/v1/revisions?factory=f1").await;
    let alerts = server.get_json(alerts_path).await;
    let alerts: Vec<serde_json::Value> = alerts["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| serde_json::json!([a["id"], a["key"], a["state"]]))
        .collect();
    serde_json::json!({
        "periods": periods["periods"],
        "episodes": episodes["episodes"],
        "availability": availability["days"],
        "revisions": revisions["revisions"],
        "alerts": alerts,
    })
}

/// [`answers`] once the engine has ticked over what was written (two reads a few ticks
/// apart agree): a batch's flashes come at once, the hours it leaves empty at the next tick.
pub async fn settled(server: &TestServer, from_ns: i64, to_ns: i64, alerts_path: &str) -> serde_json::Value {
    let mut last = answers(server, from_ns, to_ns, alerts_path).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let now = answers(server, from_ns, to_ns, alerts_path).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the answers kept changing: {last}");
}

/// Three hours of one-minute so2 and o2 readings at the start of each of `days` days from
/// `start`; the second hour of the second day at 1200 ppm (beyond 950), the rest at 100.
pub fn history(start: i64, days: i64) -> String {
    let mut body = String::new();
    for d in 0..days {
        for h in 0..3 {
            let t = start + d * DAY_NS + h * HOUR_NS;
            let so2 = if (d, h) == (1, 1) { 1200.0 } else { 100.0 };
            body.push_str(&minutes("emission", "f1", "stack-1", "so2", so2, t, 60));
            body.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, t, 60));
        }
    }
    body
}
