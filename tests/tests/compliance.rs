//! The compliance engine end to end, against the real server binary: judged periods with
//! exact values from written readings, alerts on the SSE stream, acknowledgement rights,
//! restarts that lose nothing and raise nothing twice.

mod support;

use std::time::Duration;

use support::lp::minutes;
use support::webhook::WebhookReceiver;
use support::{TestServer, wait_for};

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("timestamp").as_nanosecond() as i64
}

#[tokio::test]
async fn an_hourly_emission_limit_is_judged_with_o2_correction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::judging(dir.path()).start().await;
    // A closed hour in the past: 2026-11-22 08:00–09:00 Bangkok. SO₂ 800 ppm at 12 % O₂.
    let hour = ts("2026-11-22T01:00:00Z");
    let mut body = minutes("emission", "f1", "stack-1", "so2", 800.0, hour, 60);
    body.push_str(&minutes("emission", "f1", "stack-1", "o2", 12.0, hour, 60));
    assert_eq!(server.write_as("f1", body).await, 204);

    let period = wait_for("the judged hour", Duration::from_secs(30), || async {
        let v = server.get_json(
            "/api/v1/periods?factory=f1&parameter=so2&averaging=hourly&from=2026-11-22T01:00:00Z&to=2026-11-22T02:00:00Z"
        )
        .await;
        v["periods"].as_array().and_then(|p| p.first().cloned()).filter(|p| p["valid"] == 60)
    })
    .await;
    // 800 × (21 − 7) / (21 − 12) = 11200 / 9 ppm, over the 950 ppm heavy-oil boiler limit.
    let value = period["value"].as_f64().expect("value");
    assert!((value - 11200.0 / 9.0).abs() < 1e-9, "{period}");
    assert_eq!(period["measured"].as_f64(), Some(800.0));
    assert_eq!(period["o2_pct"].as_f64(), Some(12.0));
    assert_eq!(period["outcome"], "exceeds");
    assert_eq!((period["valid"].as_u64(), period["expected"].as_u64()), (Some(60), Some(60)));
    assert_eq!(period["start_local"], "2026-11-22T08:00:00+07:00");
    assert_eq!(period["limit"]["standard"], "moi-air-2549");
    assert_eq!(period["limit"]["describe"], "≤ 950 ppm");
    assert_eq!(period["limit"]["reference_o2_pct"].as_f64(), Some(7.0));

    let alerts = server.alerts("exceedance", 1).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0]["parameter"].as_str(), alerts[0]["severity"].as_str()), (Some("so2"), Some("critical")));
    assert!((alerts[0]["value"].as_f64().expect("value") - 11200.0 / 9.0).abs() < 1e-9);
    let episodes = server.get_json("/api/v1/episodes?factory=f1&parameter=so2").await;
    let episodes = episodes["episodes"].as_array().expect("episodes").clone();
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!((episodes[0]["start_ns"].as_i64(), episodes[0]["periods"].as_u64()), (Some(hour), Some(1)));
    // Status: the hours since are judged "insufficient data" (nothing came), yet the
    // exceedance stays open: only a compliant period ends it, not an outage. The hours without
    // data are judged, and no data found, at the engine's next tick (`tick_ms`), not at once.
    // The status reads the engine's judgements and then the alert book: a tick may fall
    // between the two reads, so both are waited for.
    let status = wait_for("the silent hours judged", Duration::from_secs(10), || {
        let server = &server;
        async move {
            let status = server.get_json("/api/v1/status?factory=f1&parameter=so2").await;
            let series = &status["series"][0];
            let silent =
                series["open_alerts"].as_array().is_some_and(|open| open.iter().any(|a| a["kind"] == "no_data"));
            let judged = series["judgements"][0]["current"]["outcome"] == "insufficient_data";
            (silent && judged).then_some(status)
        }
    })
    .await;
    let series = &status["series"][0];
    let open: Vec<_> =
        series["open_alerts"].as_array().expect("open alerts").iter().map(|a| a["kind"].clone()).collect();
    assert!(open.contains(&"exceedance".into()) && open.contains(&"no_data".into()), "{open:?}");
    assert_eq!(series["latest"]["value"].as_f64(), Some(800.0));
    assert_eq!(status["incidents"][0]["point"], "stack-1", "the silent stack is an incident with its deadlines");
    // Availability of that Bangkok day: 60 valid of 86 400 / 60 = 1 440 expected, below 80 %.
    let days = server.get_json("/api/v1/availability?factory=f1&parameter=so2&from=2026-11-22T00:00:00%2B07:00").await;
    let day = &days["days"][0];
    assert_eq!(
        (day["day"].as_str(), day["valid"].as_u64(), day["expected"].as_u64()),
        (Some("2026-11-22"), Some(60), Some(1440))
    );
    assert!((day["availability_pct"].as_f64().expect("pct") - 6000.0 / 1440.0).abs() < 1e-9);
    assert_eq!(day["meets"].as_bool(), Some(false));
    // The OpenAPI document is served and names the routes.
    let openapi = server.get_json("/api/v1/openapi.json").await;
    for route in [
        "/api/v1/periods",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/events",
        "/api/v1/availability",
        "/api/v1/corrections",
        "/api/v1/indicators",
        "/api/v1/deviations",
        "/api/v1/registry/changes",
    ] {
        assert!(openapi["paths"].get(route).is_some(), "{route} in the OpenAPI document");
    }
}

#[tokio::test]
async fn sse_delivers_an_alert_after_a_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::judging(dir.path()).start().await;
    let mut events = server.events().await;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let status = server.write_as("f2", format!("effluent,factory=f2,point=outfall-1 cod=135.5 {now}\n")).await;
    assert_eq!(status, 204);
    let alert = events.alert_containing("\"kind\":\"exceedance\"", Duration::from_secs(20)).await;
    assert_eq!((alert["factory"].as_str(), alert["parameter"].as_str()), (Some("f2"), Some("cod")));
    assert_eq!((alert["state"].as_str(), alert["value"].as_f64()), (Some("firing"), Some(135.5)));
    assert_eq!(alert["limit"]["clause"], "5.7");
}

#[tokio::test]
async fn ack_rights_ack_survives_a_restart_and_no_alert_is_raised_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::judging(dir.path()).start().await;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    assert_eq!(server.write_as("f1", format!("effluent,factory=f1,point=outfall-1 cod=150 {now}\n")).await, 204);
    let alerts = server.alerts("exceedance", 1).await;
    let id = alerts[0]["id"].as_u64().expect("id");

    assert_eq!(ack(&server, server.read_token(), id, "x").await.0, 403, "a read token may not");
    assert_eq!(ack(&server, server.token("f2"), id, "x").await.0, 403, "another factory's write token may not");
    assert_eq!(ack(&server, "nonsense", id, "x").await.0, 401);
    assert_eq!(ack(&server, server.admin_token(), 9999, "x").await.0, 404);
    let (status, body) = ack(&server, server.token("f1"), id, "sampling again at 10:00").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alert"]["state"], "acknowledged");
    assert_eq!(ack(&server, server.admin_token(), id, "again").await.0, 409, "acknowledged once");

    server.restart().await;
    let alerts = server.get_json("/api/v1/alerts?kind=exceedance").await;
    let alerts = alerts["alerts"].as_array().expect("alerts").clone();
    assert_eq!(alerts.len(), 1, "the same condition after a restart is the same alert: {alerts:?}");
    assert_eq!((alerts[0]["id"].as_u64(), alerts[0]["state"].as_str()), (Some(id), Some("acknowledged")));
    assert_eq!(alerts[0]["ack"]["comment"], "sampling again at 10:00");
    assert!(alerts[0]["ack"]["by"].as_str().is_some_and(|b| b.starts_with("write token ")), "{}", alerts[0]);

    // A later exceeding reading of the same ongoing condition raises nothing new either.
    let later = now + 60_000_000_000;
    assert_eq!(server.write_as("f1", format!("effluent,factory=f1,point=outfall-1 cod=160 {later}\n")).await, 204);
    wait_for("the later reading judged", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/periods?factory=f1&parameter=cod").await;
        v["periods"].as_array().filter(|p| p.len() == 2).map(|_| ())
    })
    .await;
    server.restart().await;
    let alerts = server.get_json("/api/v1/alerts?kind=exceedance").await;
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(1));
    // The judgements came back from the store.
    let periods = server.get_json("/api/v1/periods?factory=f1&parameter=cod").await;
    let values: Vec<_> = periods["periods"].as_array().expect("periods").iter().map(|p| p["value"].as_f64()).collect();
    assert_eq!(values, [Some(150.0), Some(160.0)]);
}

#[tokio::test]
async fn a_webhook_gets_the_alert_after_a_refused_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = WebhookReceiver::start(1).await;
    let extra = format!(
        "[[webhook]]\nurl = \"{}\"\nkinds = [\"exceedance\"]\nmax_attempts = 3\nretry_initial_ms = 50\n",
        hook.url
    );
    let server = TestServer::judging(dir.path()).config_tail(&extra).start().await;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    assert_eq!(server.write_as("f2", format!("effluent,factory=f2,point=outfall-1 cod=140 {now}\n")).await, 204);
    let bodies = hook.bodies.clone();
    let got = wait_for("two webhook requests", Duration::from_secs(30), || {
        let bodies = bodies.clone();
        async move { Some(bodies.lock().expect("lock").clone()).filter(|b| b.len() >= 2) }
    })
    .await;
    assert_eq!((got[0].0, got[1].0), (500, 204), "refused once, then delivered");
    assert_eq!(got[0].1, got[1].1, "the same delivery, retried");
    assert_eq!(got[1].1["event"], "alert");
    assert_eq!(
        (got[1].1["alert"]["kind"].as_str(), got[1].1["alert"]["value"].as_f64()),
        (Some("exceedance"), Some(140.0))
    );
}

#[tokio::test]
async fn late_data_revises_a_closed_hour_and_a_gap_names_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::judging(dir.path()).start().await;
    let mut events = server.events().await;
    // Hour A (02:00–03:00 UTC, 2026-11-22): 30 of 60 readings first: insufficient data.
    let a = ts("2026-11-22T02:00:00Z");
    let mut first = minutes("emission", "f1", "stack-1", "so2", 100.0, a, 30);
    first.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, a, 30));
    assert_eq!(server.write_as("f1", first).await, 204);
    let query = "/api/v1/periods?factory=f1&parameter=so2&from=2026-11-22T02:00:00Z&to=2026-11-22T03:00:00Z";
    let judged = |valid: u64| {
        let server = &server;
        async move {
            wait_for(&format!("hour A with {valid} valid"), Duration::from_secs(30), || async {
                let v = server.get_json(query).await;
                v["periods"].as_array().and_then(|p| p.first().cloned()).filter(|p| p["valid"] == valid)
            })
            .await
        }
    };
    assert_eq!(judged(30).await["outcome"], "insufficient_data");
    // The back-fill: the other 30 minutes at 1000 ppm. (30 × 100 + 30 × 1000) / 60 = 550 ppm.
    let mut rest = minutes("emission", "f1", "stack-1", "so2", 1000.0, a + 30 * 60_000_000_000, 30);
    rest.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, a + 30 * 60_000_000_000, 30));
    assert_eq!(server.write_as("f1", rest).await, 204);
    let period = judged(60).await;
    assert_eq!((period["outcome"].as_str(), period["value"].as_f64()), (Some("compliant"), Some(550.0)));
    let revision = &period["revisions"][0];
    assert_eq!(
        (revision["was"]["outcome"].as_str(), revision["became"]["outcome"].as_str()),
        (Some("insufficient_data"), Some("compliant"))
    );
    assert!(revision["reason"].as_str().is_some_and(|r| r.starts_with("late data")), "{revision}");
    let listed = server.get_json("/api/v1/revisions?factory=f1").await;
    assert_eq!(listed["revisions"].as_array().map(Vec::len), Some(1));
    // Published live too.
    events.until("event: revision", Duration::from_secs(10)).await;

    // Hour B: 20 readings, and the agent reports it dropped the other 40.
    let b = ts("2026-11-22T04:00:00Z");
    let mut some = minutes("emission", "f1", "stack-1", "so2", 100.0, b, 20);
    some.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, b, 20));
    assert_eq!(server.write_as("f1", some).await, 204);
    let gap = serde_json::json!({"gaps": [{
        "id": "g1", "factory": "f1", "point": "stack-1", "kind": "emission", "parameters": ["so2", "o2"],
        "from_ns": b + 20 * 60_000_000_000_i64, "to_ns": b + 59 * 60_000_000_000_i64, "count": 80,
        "reason": "agent buffer overflow"
    }]});
    let (status, body) = server.post(server.token("f1"), "/api/v1/gaps", gap.to_string()).await;
    assert_eq!(status, 204, "{body}");
    let reason = wait_for("hour B's reason", Duration::from_secs(30), || async {
        let v = server
            .get_json("/api/v1/periods?factory=f1&parameter=so2&from=2026-11-22T04:00:00Z&to=2026-11-22T05:00:00Z")
            .await;
        v["periods"][0]["reason"].as_str().filter(|r| r.contains("agent buffer overflow")).map(str::to_string)
    })
    .await;
    assert!(reason.starts_with("insufficient data — agent buffer overflow"), "{reason}");
}

/// POSTs corrections with a token; returns the status and body text.
async fn correct(server: &TestServer, token: &str, corrections: serde_json::Value) -> (u16, String) {
    server.post(token, "/api/v1/corrections", serde_json::json!({ "corrections": corrections }).to_string()).await
}

/// POSTs an acknowledgement; returns the status and body.
async fn ack(server: &TestServer, token: &str, id: u64, comment: &str) -> (u16, serde_json::Value) {
    server.post_json(token, &format!("/api/v1/alerts/{id}/ack"), serde_json::json!({ "comment": comment })).await
}

#[tokio::test]
async fn a_correction_references_its_reading_and_is_judged_instead_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::judging(dir.path()).start().await;
    let t = jiff::Timestamp::now().as_nanosecond() as i64 - 60_000_000_000;
    assert_eq!(server.write_as("f1", format!("effluent,factory=f1,point=outfall-1 cod=130 {t}\n")).await, 204);
    let alerts = server.alerts("exceedance", 1).await;
    assert_eq!(alerts[0]["value"].as_f64(), Some(130.0));

    let fix = |value: f64, time_ns: i64| {
        serde_json::json!([{"factory": "f1", "point": "outfall-1", "parameter": "cod", "time_ns": time_ns,
            "value": value, "reason": "lab re-analysis: dilution factor entered twice"}])
    };
    // Refused whole, naming the correction and the problem.
    let (status, body) = correct(&server, server.token("f1"), fix(98.0, t + 1)).await;
    assert_eq!(status, 400);
    assert!(body.contains("correction 1 (f1/outfall-1/cod at") && body.contains("no stored reading"), "{body}");
    assert_eq!(correct(&server, server.read_token(), fix(98.0, t)).await.0, 403, "a read token may not");
    assert_eq!(correct(&server, server.token("f2"), fix(98.0, t)).await.0, 403, "another factory's token may not");
    let no_reason = serde_json::json!([{"factory": "f1", "point": "outfall-1", "parameter": "cod", "time_ns": t,
        "value": 98.0, "reason": " "}]);
    assert_eq!(correct(&server, server.token("f1"), no_reason).await.0, 400);
    // Accepted, and a re-send is stored once.
    assert_eq!(correct(&server, server.token("f1"), fix(98.0, t)).await.0, 204);
    assert_eq!(correct(&server, server.token("f1"), fix(98.0, t)).await.0, 204);
    // A rewrite through the write API is still refused: history stays append-only.
    assert_eq!(server.write_as("f1", format!("effluent,factory=f1,point=outfall-1 cod=98 {t}\n")).await, 409);

    /// What the correction changed, the same before and after a restart.
    async fn check(server: &TestServer, t: i64) {
        let readings = server.get_json("/api/v1/readings?factory=f1&parameter=cod").await;
        let r = &readings["readings"][0];
        assert_eq!((r["value"].as_f64(), r["stored_value"].as_f64()), (Some(98.0), Some(130.0)), "{r}");
        let c = r["corrections"].as_array().expect("corrections");
        assert_eq!(c.len(), 1, "stored once: {c:?}");
        assert_eq!((c[0]["was"].as_f64(), c[0]["time_ns"].as_i64()), (Some(130.0), Some(t)));
        assert!(c[0]["by"].as_str().is_some_and(|b| b.starts_with("write token ")), "{}", c[0]);
        // The grab sample is judged at 98 now; its revision names the correction.
        let periods = server.get_json("/api/v1/periods?factory=f1&parameter=cod").await;
        let p = &periods["periods"][0];
        assert_eq!(
            (p["outcome"].as_str(), p["value"].as_f64(), p["samples"].as_u64()),
            (Some("compliant"), Some(98.0), Some(1)),
            "{periods}"
        );
        let revisions = server.get_json("/api/v1/revisions?factory=f1&parameter=cod").await;
        let r = &revisions["revisions"][0];
        assert_eq!(
            (r["was"]["outcome"].as_str(), r["became"]["outcome"].as_str()),
            (Some("exceeds"), Some("compliant"))
        );
        assert!(r["reason"].as_str().is_some_and(|s| s.contains("dilution factor entered twice")), "{r}");
        assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(1));
    }

    wait_for("the exceedance resolved by the correction", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/alerts?kind=exceedance").await;
        v["alerts"].as_array().filter(|a| a.first().is_some_and(|a| a["state"] == "resolved")).map(|_| ())
    })
    .await;
    check(&server, t).await;
    server.restart().await;
    check(&server, t).await;
    let alerts = server.get_json("/api/v1/alerts?kind=exceedance").await;
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(1), "nothing raised again after the restart");
}
