//! Backup and restore of a running server, against the real binary: a backup taken while a
//! steady write load goes on, with the store flushing, merging closed days and rotating its
//! log meanwhile, restores into a new data directory on which a server starts with every
//! reading acknowledged before the backup began, none that was never acknowledged, and the
//! same alerts and judgements; a damaged backup is refused, naming the file.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::judged::history;
use support::site::Site;
use support::{TestServer, bin, wait_for};

const MINUTE_NS: i64 = 60_000_000_000;
const HOUR_NS: i64 = 60 * MINUTE_NS;
const DAY_NS: i64 = 24 * HOUR_NS;

/// Small log segments and memtable, so that the load rotates the log, flushes day files and
/// merges closed days while the backup runs; a checkpoint every second, and judgement days
/// older than two days on disk.
const CONFIG: &str = "[store]\nsegment_max_bytes = 8192\nmemtable_max_readings = 1000\n\
                      [compliance]\ntick_ms = 200\ncheckpoint_interval_s = 1\nrecent_days = 2";

/// Readings per batch of the load.
const BATCH: i64 = 10;

fn builder(dir: &Path) -> support::server::TestServerBuilder {
    TestServer::builder(dir).site(Site::area_one()).config_tail(CONFIG)
}

/// f1's judged history over a fixed past range and its alerts: the load writes f2 only.
async fn answers(server: &TestServer, from_ns: i64, to_ns: i64) -> serde_json::Value {
    support::judged::answers(server, from_ns, to_ns, "/api/v1/alerts?factory=f1").await
}

async fn settled(server: &TestServer, from_ns: i64, to_ns: i64) -> serde_json::Value {
    support::judged::settled(server, from_ns, to_ns, "/api/v1/alerts?factory=f1").await
}

/// One acknowledged batch of the load: when its 204 came, and its (time, value) readings.
type Acked = (Instant, Vec<(i64, f64)>);

/// Writes a batch of f2's cod every few ms, one minute apart from `start_ns`, recording each
/// batch acknowledged, until `stop` (or until the readings reach an hour ago).
fn spawn_load(
    server: &TestServer,
    start_ns: i64,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Acked>> {
    let (url, token) = (server.url().to_string(), server.token("f2").to_string());
    let limit_ns = jiff::Timestamp::now().as_nanosecond() as i64 - HOUR_NS;
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut n = 0i64;
        while !stop.load(Ordering::Acquire) && start_ns + (n + BATCH) * MINUTE_NS < limit_ns {
            let batch: Vec<(i64, f64)> =
                (n..n + BATCH).map(|i| (start_ns + i * MINUTE_NS, (i % 97) as f64 + 0.25)).collect();
            let body: String =
                batch.iter().map(|(t, v)| format!("effluent,factory=f2,point=outfall-1 cod={v} {t}\n")).collect();
            let (status, text) = support::server::write(&url, &token, body).await.expect("a write");
            assert_eq!(status, 204, "a load batch: {text}");
            acked.push((Instant::now(), batch));
            count.store(acked.len(), Ordering::Release);
            n += BATCH;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        acked
    })
}

/// Runs `eitwatch-server <args…>` to its end: success, stdout, stderr.
async fn command(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bin("eitwatch-server")).args(&args).output().expect("eitwatch-server runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("the command's thread")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let dst = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &dst);
        } else {
            std::fs::copy(&path, &dst).expect("copy");
        }
    }
}

/// The number after `word` in `text` ("… 1234 readings …").
fn number_before(text: &str, word: &str) -> Option<u64> {
    let at = text.find(&format!(" {word}"))?;
    text[..at].rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn a_backup_under_load_restores_every_acknowledged_reading_and_the_same_judgements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source =
        builder(&dir.path().join("source")).factory_tokens(&["f1", "f2"]).read_token().admin_token().start().await;

    // Four closed days of f1 with one exceeding hour: an episode, an alert, judgement days.
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let start = (now / DAY_NS - 5) * DAY_NS;
    let (from, to) = (start, start + 4 * DAY_NS);
    assert_eq!(source.write_as("f1", history(start, 4)).await, 204);
    wait_for("the exceeding hour's episode", Duration::from_secs(30), || async {
        let v = source.get_json("/api/v1/episodes?factory=f1").await;
        v["episodes"].as_array().filter(|e| e.len() == 1).cloned()
    })
    .await;
    let judged = settled(&source, from, to).await;
    assert_eq!(judged["episodes"][0]["start_ns"], start + DAY_NS + HOUR_NS, "{judged}");
    let exceedance = |v: &serde_json::Value| {
        v["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a[1].as_str().is_some_and(|k| k.starts_with("exceedance/f1"))))
    };
    assert!(exceedance(&judged), "{}", judged["alerts"]);

    // The load: f2's cod from six days ago, ten minutes of readings per batch, so that it
    // crosses Bangkok days (a day file each, closed days merged) and rotates the log.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let load = spawn_load(&source, (now / DAY_NS - 6) * DAY_NS, stop.clone(), count.clone());
    // 100 batches are ≈ 20 KB of log: two rotations at least, whenever the first merge comes.
    wait_for("the load to flush and merge day files and rotate the log", Duration::from_secs(60), || {
        let (log, batches) = (source.log(), count.load(Ordering::Acquire));
        async move { (log.contains("Store compacted a closed day") && batches >= 100).then_some(()) }
    })
    .await;

    // The backup, while the load goes on.
    let backup = dir.path().join("backup");
    let began = Instant::now();
    let (ok, stdout, stderr) = command(vec![
        "backup".into(),
        "--to".into(),
        backup.display().to_string(),
        "--url".into(),
        source.url().into(),
        "--token".into(),
        source.admin_token().into(),
    ])
    .await;
    let ended = Instant::now();
    assert!(ok, "backup: {stdout}{stderr}");
    assert!(stdout.starts_with(&format!("backup {}", backup.display())), "{stdout}");
    assert!(!dir.path().join("backup.partial").exists());
    // The load went on after the backup, then stops.
    let at_end = count.load(Ordering::Acquire);
    wait_for("batches acknowledged after the backup", Duration::from_secs(30), || {
        let n = count.load(Ordering::Acquire);
        async move { (n >= at_end + 3).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Release);
    let acked = load.await.expect("the load");
    let during = acked.iter().filter(|(t, _)| *t >= began && *t < ended).count();
    let after = acked.iter().filter(|(t, _)| *t >= ended).count();
    assert!(after > 0, "the server took writes after the backup ({} batches in all)", acked.len());
    assert_eq!(judged, answers(&source, from, to).await, "the load changed nothing of f1's judgements or the alerts");

    // The backup holds several day files, segments and judgement days.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("backup.json")).expect("backup.json")).expect("JSON");
    let files: Vec<&str> =
        manifest["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    let count =
        |prefix: &str, suffix: &str| files.iter().filter(|f| f.starts_with(prefix) && f.ends_with(suffix)).count();
    assert!(count("store/parts/", ".part") >= 2, "{files:?}");
    // The log rotated (small segments), and the segments in day files and checkpointed
    // were retired: the backup holds those not yet retired.
    assert!(manifest["store_position"]["segment"].as_u64().is_some_and(|n| n > 2), "{manifest}");
    assert!(count("store/", ".seg") >= 1, "{files:?}");
    assert!(count("judgements/", ".jdg") >= 1, "{files:?}");
    for must in ["store/manifest", "compliance.checkpoint", "tokens.json", "alerts.log"] {
        assert!(files.contains(&must), "{must} in {files:?}");
    }
    assert!(!files.contains(&"listen-address"), "{files:?}");
    assert_eq!(
        manifest["compliance"]["store"], manifest["store_position"],
        "the checkpoint was taken at the snapshot's position"
    );

    let (ok, stdout, stderr) =
        command(vec!["restore".into(), "--from".into(), backup.display().to_string(), "--check-only".into()]).await;
    assert!(ok && stdout.contains("all intact"), "{stdout}{stderr}");

    // Damaged copies are refused, naming the file; nothing is restored.
    let part = files.iter().find(|f| f.starts_with("store/parts/")).expect("a day file").to_string();
    let flipped = dir.path().join("flipped");
    copy_dir(&backup, &flipped);
    let path = flipped.join(&part);
    let mut bytes = std::fs::read(&path).expect("the day file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).expect("flip a byte");
    let target = dir.path().join("refused");
    let (ok, stdout, stderr) = command(vec![
        "restore".into(),
        "--from".into(),
        flipped.display().to_string(),
        "--data-dir".into(),
        target.display().to_string(),
    ])
    .await;
    assert!(!ok, "{stdout}");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("SHA-256"), "{stderr}");
    assert!(!target.exists(), "nothing restored");
    let segment = files.iter().find(|f| f.ends_with(".seg")).expect("a segment").to_string();
    let missing = dir.path().join("missing");
    copy_dir(&backup, &missing);
    std::fs::remove_file(missing.join(&segment)).expect("remove a segment");
    let (ok, stdout, stderr) = command(vec![
        "restore".into(),
        "--from".into(),
        missing.display().to_string(),
        "--data-dir".into(),
        target.display().to_string(),
    ])
    .await;
    assert!(!ok, "{stdout}");
    assert!(stderr.contains(&missing.join(&segment).display().to_string()) && stderr.contains("missing"), "{stderr}");
    // A target that is not empty is refused.
    let (ok, _, stderr) = command(vec![
        "restore".into(),
        "--from".into(),
        backup.display().to_string(),
        "--data-dir".into(),
        source.data_dir().display().to_string(),
    ])
    .await;
    assert!(!ok && stderr.contains("not empty"), "{stderr}");

    // Restore into a new data directory and start a server there.
    let restored_dir = dir.path().join("restored");
    let (ok, stdout, stderr) = command(vec![
        "restore".into(),
        "--from".into(),
        backup.display().to_string(),
        "--data-dir".into(),
        restored_dir.join("server").display().to_string(),
    ])
    .await;
    assert!(ok, "restore: {stdout}{stderr}");
    let restored = builder(&restored_dir).start().await;

    // Every reading acknowledged before the backup began, none never acknowledged: whole
    // batches, a prefix of those acknowledged.
    let got: Vec<(i64, f64)> = restored.series("f2", "cod").await;
    let by_time: BTreeMap<i64, f64> = acked.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    for (t, v) in &got {
        assert_eq!(by_time.get(t), Some(v), "a restored reading at {t} was acknowledged with this value");
    }
    let whole = acked.iter().take_while(|(_, b)| got.binary_search_by_key(&b[0].0, |(t, _)| *t).is_ok()).count();
    let expected: Vec<(i64, f64)> = acked[..whole].iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert_eq!(got, expected, "whole batches, in the order acknowledged");
    let before = acked.iter().filter(|(t, _)| *t < began).count();
    assert!(whole >= before, "{whole} batches restored, {before} acknowledged before the backup began");
    assert!(whole <= before + during, "{whole} batches restored, {} acknowledged by its end", before + during);
    let f1_readings = 4 * 3 * 60 * 2;
    assert_eq!(number_before(&stdout, "readings"), Some((f1_readings + got.len()) as u64), "{stdout}");
    assert_eq!(restored.series("f1", "so2").await.len(), 4 * 3 * 60);

    // The same judgements and alerts, resumed from the backup's checkpoint.
    assert_eq!(settled(&restored, from, to).await, judged);
    let log = restored.log();
    assert!(log.contains("Compliance resumed from its checkpoint"), "{log}");
    // The source's tokens came along.
    let (status, _) = restored.get_json_as(source.read_token(), "/api/v1/alerts").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_backup_is_refused_without_an_admin_token_or_into_an_existing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = builder(&dir.path().join("source")).factory_tokens(&["f1"]).admin_token().start().await;
    let to = dir.path().join("b").display().to_string();
    let body = serde_json::json!({ "to": to });
    let (status, _) = source.post_json(source.token("f1"), "/api/v1/admin/backup", body.clone()).await;
    assert_eq!(status, 403);
    let (status, v) =
        source.post_json(source.admin_token(), "/api/v1/admin/backup", serde_json::json!({ "to": "relative" })).await;
    assert_eq!((status, v["message"].as_str().is_some_and(|m| m.contains("absolute"))), (400, true), "{v}");
    let inside = source.data_dir().join("backup").display().to_string();
    let (status, v) =
        source.post_json(source.admin_token(), "/api/v1/admin/backup", serde_json::json!({ "to": inside })).await;
    assert_eq!((status, v["message"].as_str().is_some_and(|m| m.contains("inside"))), (400, true), "{v}");
    let (status, v) = source.post_json(source.admin_token(), "/api/v1/admin/backup", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["to"], to);
    let (status, v) = source.post_json(source.admin_token(), "/api/v1/admin/backup", body).await;
    assert_eq!((status, v["message"].as_str().is_some_and(|m| m.contains("exists"))), (400, true), "{v}");
}
