//! The compliance engine across restarts, against the real server binary: a start resumes
//! from the engine's checkpoint and judges only the log written after it; a SIGKILL between
//! checkpoints loses no judgement and raises no alert twice; what it answers equals a full
//! rebuild from every stored reading, late data for an old day included.

mod support;

use std::path::Path;
use std::time::Duration;

use support::judged::history;
use support::lp::minutes;
use support::site::Site;
use support::{TestServer, wait_for};

const MINUTE_NS: i64 = 60_000_000_000;
const HOUR_NS: i64 = 60 * MINUTE_NS;
const DAY_NS: i64 = 24 * HOUR_NS;

/// f1's judged history over a fixed past range, with every alert.
async fn answers(server: &TestServer, from_ns: i64, to_ns: i64) -> serde_json::Value {
    support::judged::answers(server, from_ns, to_ns, "/api/v1/alerts").await
}

async fn settled(server: &TestServer, from_ns: i64, to_ns: i64) -> serde_json::Value {
    support::judged::settled(server, from_ns, to_ns, "/api/v1/alerts").await
}

/// The store position the checkpoint file says it judged up to (segment, offset), if any.
fn checkpointed(data: &Path) -> Option<(u64, u64)> {
    let bytes = std::fs::read(data.join("compliance.checkpoint")).ok()?;
    let word = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    assert_eq!(bytes.get(..8), Some(&b"EITWCKPT"[..]), "the checkpoint's magic");
    Some((word(24)?, word(32)?))
}

/// The number after `key=` in the log line holding `line` (its colour codes left out).
fn logged(log: &str, line: &str, key: &str) -> Option<u64> {
    let l = log.lines().find(|l| l.contains(line))?;
    let mut plain = String::new();
    let mut chars = l.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    let l = plain;
    let at = l.find(&format!("{key}="))? + key.len() + 1;
    l[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[tokio::test]
async fn restarts_resume_from_the_checkpoint_lose_nothing_and_equal_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two days in memory: the older ones go to judgement days on disk at each checkpoint.
    let hourly = "[compliance]\ntick_ms = 200\ncheckpoint_interval_s = 3600\nrecent_days = 2";
    let mut server = TestServer::builder(dir.path())
        .site(Site::area_one())
        .config_tail(hourly)
        .factory_tokens(&["f1", "f2"])
        .read_token()
        .admin_token()
        .start()
        .await;
    let data = server.data_dir().to_path_buf();
    assert!(server.log().contains("No compliance checkpoint"), "{}", server.log());
    // The first start checkpoints at once (an empty engine, before any reading).
    let first = wait_for("the first checkpoint", Duration::from_secs(30), || async { checkpointed(&data) }).await;

    // Five days ago at 00:00 UTC: four days of history, all of it closed.
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let start = (now / DAY_NS - 5) * DAY_NS;
    let (from, to) = (start, start + 4 * DAY_NS);
    assert_eq!(server.write_as("f1", history(start, 4)).await, 204);
    wait_for("the exceeding hour's alert", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/episodes?factory=f1").await;
        v["episodes"].as_array().filter(|e| e.len() == 1).cloned()
    })
    .await;
    let before = settled(&server, from, to).await;
    assert_eq!(before["episodes"].as_array().map(Vec::len), Some(1), "{before}");
    assert_eq!(before["episodes"][0]["start_ns"], start + DAY_NS + HOUR_NS);
    assert_eq!(checkpointed(&data), Some(first), "no checkpoint since: a restart must replay the log");

    // SIGKILL between checkpoints: the start replays what was written after the checkpoint.
    server.restart().await;
    let log = server.log();
    assert_eq!(logged(&log, "Compliance resumed from its checkpoint", "readings"), Some(4 * 3 * 60 * 2), "{log}");
    assert_eq!(answers(&server, from, to).await, before, "nothing lost, no alert raised twice");

    // Late data for day 0's fourth hour (closed, judged without data): a revision.
    let late = start + 3 * HOUR_NS;
    let mut body = minutes("emission", "f1", "stack-1", "so2", 1000.0, late, 60);
    body.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, late, 60));
    assert_eq!(server.write_as("f1", body).await, 204);
    let revised = wait_for("the revision", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/revisions?factory=f1").await;
        v["revisions"].as_array().filter(|r| r.len() == 1).cloned()
    })
    .await;
    assert_eq!(revised[0]["start_ns"], late);
    assert_eq!(
        (revised[0]["was"]["outcome"].as_str(), revised[0]["became"]["outcome"].as_str()),
        (Some("insufficient_data"), Some("exceeds"))
    );
    let with_late = settled(&server, from, to).await;
    assert_eq!(with_late["episodes"].as_array().map(Vec::len), Some(2), "{with_late}");

    server.restart().await;
    assert!(server.log().contains("Compliance resumed from its checkpoint"), "{}", server.log());
    assert_eq!(answers(&server, from, to).await, with_late, "the revision once, the late hour judged");

    // Checkpoints every second: the position moves past what was written, and a restart
    // then replays nothing.
    server.restart_with_config_tail("[compliance]\ntick_ms = 200\ncheckpoint_interval_s = 1\nrecent_days = 2").await;
    let written = wait_for("a checkpoint of everything", Duration::from_secs(30), || async {
        checkpointed(&data).filter(|p| *p > first)
    })
    .await;
    assert!(written > first);
    server.restart().await;
    let log = server.log();
    let replayed = logged(&log, "Compliance resumed from its checkpoint", "readings");
    assert!(replayed.is_some_and(|n| n < 4 * 3 * 60 * 2), "only what came after the checkpoint: {log}");
    assert_eq!(answers(&server, from, to).await, with_late);
    let on_disk = || std::fs::read_dir(data.join("judgements")).map_or(0, |d| d.count());
    assert!(on_disk() >= 4, "the old days are judgement day files: {}", on_disk());

    // Late data for day 1 (on disk by now): loaded back, judged again, revised.
    let late = start + DAY_NS + 4 * HOUR_NS;
    let mut body = minutes("emission", "f1", "stack-1", "so2", 100.0, late, 60);
    body.push_str(&minutes("emission", "f1", "stack-1", "o2", 7.0, late, 60));
    assert_eq!(server.write_as("f1", body).await, 204);
    wait_for("the second revision", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/revisions?factory=f1").await;
        v["revisions"].as_array().filter(|r| r.len() == 2).cloned()
    })
    .await;
    assert!(server.log().contains("Judgement day loaded back"), "{}", server.log());
    let with_late = settled(&server, from, to).await;
    let compliant_late =
        with_late["periods"].as_array().expect("periods").iter().any(|p| p["start_ns"] == late && p["valid"] == 60);
    assert!(compliant_late, "{with_late}");
    server.restart().await;
    assert_eq!(answers(&server, from, to).await, with_late, "after a SIGKILL, from the checkpoint and day files");

    // Without the checkpoint (as a data directory of the previous release): a full rebuild,
    // once, with the same answers; then a checkpoint again.
    server.kill();
    std::fs::remove_file(data.join("compliance.checkpoint")).expect("remove the checkpoint");
    server.restart().await;
    let log = server.log();
    assert!(log.contains("Compliance rebuilt from the store"), "{log}");
    assert!(log.contains("Compliance checkpointed after its rebuild"), "{log}");
    assert_eq!(logged(&log, "Compliance rebuilt from the store", "readings"), Some((4 * 3 + 2) * 60 * 2), "{log}");
    assert_eq!(answers(&server, from, to).await, with_late);
    assert!(checkpointed(&data).is_some());
}

#[tokio::test]
async fn a_damaged_checkpoint_is_not_used_and_the_engine_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::judging(dir.path()).start().await;
    let data = server.data_dir().to_path_buf();
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let start = (now / DAY_NS - 3) * DAY_NS;
    assert_eq!(server.write_as("f1", history(start, 2)).await, 204);
    wait_for("the episode", Duration::from_secs(30), || async {
        let v = server.get_json("/api/v1/episodes?factory=f1").await;
        v["episodes"].as_array().filter(|e| e.len() == 1).cloned()
    })
    .await;
    let before = settled(&server, start, start + 2 * DAY_NS).await;
    server.kill();
    let path = data.join("compliance.checkpoint");
    let mut bytes = std::fs::read(&path).expect("the checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("damage it");
    server.restart().await;
    let log = server.log();
    assert!(log.contains("The compliance checkpoint cannot be used"), "{log}");
    assert!(log.contains("CRC-32 mismatch"), "{log}");
    assert!(log.contains("Compliance rebuilt from the store"), "{log}");
    assert_eq!(answers(&server, start, start + 2 * DAY_NS).await, before);
}
