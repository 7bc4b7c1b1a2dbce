//! The embedded store through the real server binary: acknowledged writes survive SIGKILL,
//! downsampling over HTTP, and the write-through to a real VictoriaMetrics (InfluxDB v2
//! write API) that loses nothing while it is down and receives everything exactly once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::server::write;
use support::victoria::Vm;
use support::*;

const T0_S: i64 = 1_795_000_000; // 2026-11-18T08:26:40Z
const PARAMETERS: [&str; 5] = ["cod", "bod", "ph", "tss", "temp"];
const LINES: i64 = 50;

/// Batch `b` of factory f1: 50 lines, 5 parameters each, at its own seconds.
fn batch(factory: &str, b: i64) -> (String, Vec<(String, i64, f64)>) {
    let mut body = String::new();
    let mut points = Vec::new();
    for l in 0..LINES {
        let n = b * LINES + l;
        let t = (T0_S + n) * 1_000_000_000;
        // Within the effluent limits (no alerts), exact in binary.
        let values = [
            50.0 + (n % 17) as f64,
            5.0 + (n % 11) as f64 * 0.5,
            7.0 + (n % 8) as f64 * 0.125,
            20.0 + (n % 13) as f64 * 0.75,
            25.0 + (n % 9) as f64 * 0.5,
        ];
        let fields: Vec<String> = PARAMETERS.iter().zip(&values).map(|(p, v)| format!("{p}={v}")).collect();
        body.push_str(&format!("effluent,factory={factory},point=outfall-1 {} {t}\n", fields.join(",")));
        points.extend(PARAMETERS.iter().zip(&values).map(|(p, v)| (p.to_string(), t, *v)));
    }
    (body, points)
}

async fn stored(url: &str, factory: &str) -> BTreeMap<(String, i64), f64> {
    let v = get_json(&format!("{url}/api/v1/readings?factory={factory}")).await;
    v["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| {
            let key = (r["parameter"].as_str().expect("parameter").to_string(), r["time_ns"].as_i64().expect("time"));
            (key, r["value"].as_f64().expect("value"))
        })
        .collect()
}

/// The names in a directory, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_day_files_without_a_log_and_the_restart_replays_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;
    // Batches 1 728 apart are a day apart (50 s each): three Bangkok days, all closed.
    let mut want = BTreeMap::new();
    for b in [0i64, 1, 2, 1728, 1729, 3456] {
        let (body, points) = batch("f1", b);
        assert_eq!(server.write_as("f1", body).await, 204);
        want.extend(points.into_iter().map(|(p, t, v)| ((p, t), v)));
    }
    assert_eq!(want.len(), 6 * 50 * 5);
    let stopped = server.stop();
    assert!(stopped.contains("Store closed: its last segment sealed and retired"), "{stopped}");
    let store = server.data_dir().join("store");
    let left: Vec<String> = names(&store).into_iter().filter(|n| n != "acknowledged").collect();
    assert_eq!(left, ["manifest", "parts"], "no log segment after a clean stop");
    let days: Vec<String> =
        names(&store.join("parts")).iter().map(|n| n.split('_').next().expect("day").into()).collect();
    let mut distinct = days.clone();
    distinct.dedup();
    assert_eq!((days.len(), distinct.len()), (3, 3), "one file per day: {days:?}");

    server.restart().await;
    let log = server.log();
    assert_eq!(logged_number(&log, "Store opened", "replayed"), Some(0), "{log}");
    assert_eq!(logged_number(&log, "Compliance resumed from its checkpoint", "readings"), Some(0), "{log}");
    assert!(!log.contains("Compliance rebuilt") && !log.contains("cannot be used"), "{log}");
    assert_eq!(stored(server.url(), "f1").await, want, "every reading back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_sigkill_and_batches_stay_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;
    let token = server.token("f1").to_string();
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let sent = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (url, token, acked, sent, count) =
            (server.url().to_string(), token.clone(), acked.clone(), sent.clone(), count.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..500i64 {
                let b = w * 1000 + i;
                sent.lock().expect("lock").insert(b);
                match write(&url, &token, batch("f1", b).0).await {
                    Ok((204, _)) => {
                        acked.lock().expect("lock").insert(b);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => panic!("batch {b}: {status} {body}"),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    wait_for("40 acknowledged batches", Duration::from_secs(60), || {
        let n = count.load(Ordering::SeqCst);
        async move { (n >= 40).then_some(()) }
    })
    .await;
    // SIGKILL while the writers still have batches in flight.
    server.kill();
    for w in writers {
        w.await.expect("writer");
    }
    let acked = acked.lock().expect("lock").clone();
    let sent = sent.lock().expect("lock").clone();
    assert!(acked.len() >= 40);

    server.restart().await;
    let got = stored(server.url(), "f1").await;
    let mut whole = 0;
    for b in &sent {
        let points = batch("f1", *b).1;
        let present = points.iter().filter(|(p, t, v)| got.get(&(p.clone(), *t)) == Some(v)).count();
        if acked.contains(b) {
            assert_eq!(present, points.len(), "acknowledged batch {b}: every point back, exact");
        } else {
            assert!(present == 0 || present == points.len(), "batch {b} half stored: {present} of {}", points.len());
        }
        whole += usize::from(present == points.len());
    }
    assert_eq!(got.len(), whole * (LINES as usize) * PARAMETERS.len(), "nothing but whole sent batches is stored");
    eprintln!("sent {} batches, {} acknowledged, {} stored whole after SIGKILL", sent.len(), acked.len(), whole);

    // Re-sending an acknowledged batch after the restart is a duplicate; changing one value is a rewrite.
    let b = *acked.iter().next().expect("one");
    let (body, _) = batch("f1", b);
    assert_eq!(server.write_as("f1", body.clone()).await, 204);
    let changed = body.replacen("cod=", "cod=1", 1);
    let (status, message) = write(server.url(), server.token("f1"), changed).await.expect("write");
    assert_eq!(status, 409, "{message}");
    assert_eq!(stored(server.url(), "f1").await, got, "neither changed the store");
}

#[tokio::test]
async fn readings_downsample_per_bucket_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;
    let s = 1_000_000_000i64;
    let t0 = 1_794_999_960 * s; // a multiple of 60 s
    let body = format!(
        "effluent,factory=f1,point=outfall-1 cod=10,ph=7 {}\neffluent,factory=f1,point=outfall-1 cod=20 {}\n\
         effluent,factory=f1,point=outfall-1 cod=60 {}\neffluent,factory=f1,point=outfall-1 cod=5 {}\n",
        t0,
        t0 + 20 * s,
        t0 + 59 * s,
        t0 + 60 * s
    );
    assert_eq!(server.write_as("f1", body).await, 204);
    let v = server.get_json("/api/v1/readings?factory=f1&parameter=cod&every_s=60").await;
    assert_eq!(v["every_s"], 60);
    let series = v["series"].as_array().expect("series");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["parameter"], "cod");
    assert_eq!(
        series[0]["buckets"],
        serde_json::json!([
            {"start_ns": t0, "count": 3, "min": 10.0, "max": 60.0, "mean": 30.0},
            {"start_ns": t0 + 60 * s, "count": 1, "min": 5.0, "max": 5.0, "mean": 5.0},
        ])
    );
    let r = server.get(None, "/api/v1/readings?every_s=0").await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.expect("body").contains("every_s"));
}

/// Expected VictoriaMetrics samples for batches: `(effluent_<parameter>, factory, ms, value)`.
fn expected(factory: &str, batches: std::ops::Range<i64>) -> Vec<Sample> {
    batches
        .flat_map(|b| batch(factory, b).1)
        .map(|(p, t, v)| (format!("effluent_{p}"), factory.to_string(), t / 1_000_000, v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_is_written_through_to_victoria_metrics_exactly_once_across_its_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = Vm::start(dir.path()).await;
    // Small segments: the write-through follows the log across many of them.
    let extra = format!(
        "[store]\nsegment_max_bytes = 4096\n[influxdb]\nurl = \"http://{}\"\norg = \"lampang\"\nbucket = \"eitwatch\"\ntoken = \"secret-token\"\n\
         batch_max_points = 600\nretry_max_ms = 200\n",
        vm.addr
    );
    let mut server = TestServer::builder(dir.path()).config_tail(&extra).factory_tokens(&["f1", "f2"]).start().await;
    for b in 0..4 {
        for f in ["f1", "f2"] {
            let body = if f == "f2" { only_cod(&batch(f, b).0) } else { batch(f, b).0 };
            assert_eq!(server.write_as(f, body).await, 204);
        }
    }
    let mut want = expected("f1", 0..4);
    want.extend(expected_cod("f2", 0..4));
    want.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let got = wait_for("the first readings in VictoriaMetrics", Duration::from_secs(60), || {
        let (vm, n) = (&vm, want.len());
        async move { Some(vm.export("effluent_").await).filter(|g| g.len() >= n) }
    })
    .await;
    same(&got, &want, "every value and timestamp, once");

    // VictoriaMetrics goes away; the server keeps acknowledging, and the readings wait in its log.
    vm.stop();
    for b in 4..10 {
        assert_eq!(server.write_as("f1", batch("f1", b).0).await, 204);
    }
    assert_eq!(stored(server.url(), "f1").await.len(), 10 * LINES as usize * PARAMETERS.len());
    // The queue is on disk: it outlives a SIGKILL of the server too.
    server.kill();
    server.restart().await;
    assert_eq!(server.write_as("f1", batch("f1", 10).0).await, 204);
    vm.restart().await;
    let want = {
        let mut w = expected("f1", 0..11);
        w.extend(expected_cod("f2", 0..4));
        w.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        w
    };
    let got = wait_for("the queued readings in VictoriaMetrics", Duration::from_secs(60), || {
        let (vm, n) = (&vm, want.len());
        async move { Some(vm.export("effluent_").await).filter(|g| g.len() >= n) }
    })
    .await;
    same(&got, &want, "everything arrived, exactly once");
    let segments = std::fs::read_dir(server.data_dir().join("store")).expect("store dir").count();
    assert!(segments >= 5, "the readings crossed {segments} segments");
    assert!(!server.log().contains("secret-token"), "the InfluxDB token is never logged");
}

/// f2's registry point measures only cod: keep that field of each line.
fn only_cod(body: &str) -> String {
    body.lines()
        .map(|l| {
            let (head, rest) = l.split_once(' ').expect("fields");
            let (fields, t) = rest.rsplit_once(' ').expect("time");
            let cod = fields.split(',').find(|f| f.starts_with("cod=")).expect("cod");
            format!("{head} {cod} {t}\n")
        })
        .collect()
}

fn expected_cod(factory: &str, batches: std::ops::Range<i64>) -> Vec<Sample> {
    expected(factory, batches).into_iter().filter(|(m, ..)| m == "effluent_cod").collect()
}

type Sample = (String, String, i64, f64);

/// Asserts equal sample lists, showing the first difference rather than thousands of samples.
fn same(got: &[Sample], want: &[Sample], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|i| got[*i] != want[*i]) {
        panic!("{what}: sample {i}: got {:?}, want {:?}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: sample counts");
}
