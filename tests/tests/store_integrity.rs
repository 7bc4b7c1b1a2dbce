//! The store knows its segments, through the real server binary: a segment of acknowledged
//! batches gone missing stops the start naming it; `eitwatch-server repair` sets it aside,
//! the server starts, `GET /api/v1/gaps` says exactly what was lost, and every other
//! acknowledged reading is still there.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use support::*;

const T0_S: i64 = 1_795_000_000; // 2026-11-18T08:26:40Z
const LINES: i64 = 20;
const BATCHES: i64 = 30;

/// Batch `b` of f1: 20 lines of cod and ph, each at its own second.
fn batch(b: i64) -> String {
    (0..LINES)
        .map(|l| {
            let n = b * LINES + l;
            format!("effluent,factory=f1,point=outfall-1 cod={},ph=7.5 {}\n", 50 + n % 17, (T0_S + n) * 1_000_000_000)
        })
        .collect()
}

async fn stored_times(server: &TestServer) -> BTreeSet<(String, i64)> {
    let (status, readings) = server.readings(None, "factory=f1").await;
    assert_eq!(status, 200);
    readings
        .iter()
        .map(|r| (r["parameter"].as_str().expect("parameter").to_string(), r["time_ns"].as_i64().expect("time")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_segment_stops_the_start_and_repair_records_exactly_what_was_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::builder(dir.path())
        .factory_tokens(&["f1"])
        .config_tail("[store]\nsegment_max_bytes = 4096\n")
        .start()
        .await;
    for b in 0..BATCHES {
        assert_eq!(server.write_as("f1", batch(b)).await, 204, "batch {b}");
    }
    let all = stored_times(&server).await;
    assert_eq!(all.len() as i64, BATCHES * LINES * 2);

    // A crash, then a segment of acknowledged batches in the middle of the log is gone.
    server.kill();
    let store = server.data_dir().join("store");
    let mut segments: Vec<_> = std::fs::read_dir(&store)
        .expect("store dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg") && std::fs::metadata(p).expect("meta").len() > 0)
        .collect();
    segments.sort();
    assert!(segments.len() >= 4, "{segments:?}");
    let middle = segments[segments.len() / 2].clone();
    let name = middle.file_name().expect("name").to_string_lossy().into_owned();
    std::fs::remove_file(&middle).expect("delete a segment");

    let log = server.restart_refused().await;
    assert!(log.contains(&name) && log.contains("missing"), "the refusal names the segment: {log}");
    assert!(log.contains("eitwatch-server repair --data-dir"), "and says what to do: {log}");

    let out = Command::new(bin("eitwatch-server"))
        .args(["repair", "--data-dir"])
        .arg(server.data_dir())
        .output()
        .expect("run repair");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "repair: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&name), "{stdout}");

    server.restart().await;
    let gaps = server.get_json("/api/v1/gaps?factory=f1").await;
    let gaps: Vec<_> = gaps["gaps"]
        .as_array()
        .expect("gaps")
        .iter()
        .filter(|g| g["reason"].as_str().is_some_and(|r| r.contains(&name)))
        .cloned()
        .collect();
    assert_eq!(gaps.len(), 2, "one gap per series the segment held: {gaps:?}");
    let left = stored_times(&server).await;
    assert!(left.is_subset(&all));
    let lost: BTreeSet<_> = all.difference(&left).cloned().collect();
    assert!(!lost.is_empty());
    let counted: u64 = gaps.iter().map(|g| g["count"].as_u64().expect("count")).sum();
    assert_eq!(counted, lost.len() as u64, "the gaps count exactly the readings gone");
    for g in &gaps {
        let parameter = g["parameters"][0].as_str().expect("parameter");
        let times: Vec<i64> = lost.iter().filter(|(p, _)| p == parameter).map(|(_, t)| *t).collect();
        assert_eq!(
            (g["from_ns"].as_i64(), g["to_ns"].as_i64(), g["count"].as_u64()),
            (times.first().copied(), times.last().copied(), Some(times.len() as u64)),
            "{parameter}"
        );
    }
    assert!(server.data_dir().join("store/damaged").is_dir() || !middle.exists());

    // Repair is done: the next start needs none, and writes go on.
    assert_eq!(server.write_as("f1", batch(BATCHES)).await, 204);
    server.restart().await;
    assert_eq!(stored_times(&server).await.len(), left.len() + (LINES * 2) as usize);
}
