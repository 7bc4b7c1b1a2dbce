//! The alert book fed by the engine's conditions, as the monitor feeds it: lifecycle,
//! deduplication across restarts, per-kind policies, a torn log; the archive: compaction,
//! its crash points, reads of the history, a log written before the archive existed.

use eitwatch_config::server_config::{AlertsSection, ServerConfig};

use std::ops::ControlFlow;
use std::path::Path;

use super::{Ack, Alert, AlertBook, Limits, State, archive};
use crate::compliance::period::{HOUR_NS, SECOND_NS};
use crate::compliance::tests::{effluent, engine, minutes, periods, t0};
use crate::compliance::{AlertKind, Condition, Engine, Outcome, PeriodView, Severity};

#[test]
fn restart_in_the_middle_of_a_period_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let first_half = {
        let mut r = minutes("f1", "so2", 1000.0, t0(), 30);
        r.extend(minutes("f1", "o2", 7.0, t0(), 30));
        r
    };
    let second_half = {
        let mut r = minutes("f1", "so2", 1000.0, t0() + 30 * 60 * SECOND_NS, 30);
        r.extend(minutes("f1", "o2", 7.0, t0() + 30 * 60 * SECOND_NS, 30));
        r
    };
    let mid = t0() + 30 * 60 * SECOND_NS;
    // Uninterrupted.
    let (mut a, clock_a) = engine(mid);
    a.ingest(&first_half);
    a.tick();
    // "Before the restart": the same, with an alert book.
    let (mut b, _) = engine(mid);
    b.ingest(&first_half);
    b.tick();
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    assert!(book.reconcile(&b.conditions(), mid).expect("reconcile").is_empty(), "an open hour alerts nothing");
    drop((b, book));
    // "After": rebuilt from the stored readings, then the rest of the hour arrives.
    let (mut c, clock_c) = engine(mid);
    c.set_replaying(true);
    c.ingest(&first_half);
    c.tick();
    c.set_replaying(false);
    for (e, clock) in [(&mut a, &clock_a), (&mut c, &clock_c)] {
        clock.set(t0() + HOUR_NS + SECOND_NS);
        e.ingest(&second_half);
        e.tick();
    }
    let strip = |v: Vec<PeriodView>| v.into_iter().map(|p| p.period).collect::<Vec<_>>();
    let (pa, pc) = (strip(periods(&a, "f1", "so2")), strip(periods(&c, "f1", "so2")));
    assert_eq!(pa, pc);
    assert_eq!((pc[0].valid, pc[0].value, pc[0].outcome), (60, Some(1000.0), Outcome::Exceeds));
    assert!(c.take_revisions().is_empty(), "closing an open period is not a revision");
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    let now = t0() + HOUR_NS + SECOND_NS;
    // Exceedances only: the registry's other points never report and go silent meanwhile.
    let exceedances = |e: &Engine| -> Vec<Condition> {
        e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).collect()
    };
    let opened = book.reconcile(&exceedances(&c), now).expect("reconcile");
    assert_eq!(opened.len(), 1);
    assert_eq!((opened[0].kind, opened[0].state), (AlertKind::Exceedance, State::Firing));
    drop(book);
    // A second restart: the same conditions raise nothing again.
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    assert!(book.reconcile(&exceedances(&c), now + SECOND_NS).expect("reconcile").is_empty());
    assert_eq!(book.len(), 1);
}

#[test]
fn alert_lifecycle_pending_firing_acknowledged_resolved() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    let (mut e, _) = engine(t0() + HOUR_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let exceedances =
        |e: &Engine| e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).collect::<Vec<_>>();
    let conditions = exceedances(&e);
    let book = AlertBook::open(&path, AlertsSection { for_s: 60, ..AlertsSection::default() }).expect("book");
    let opened = book.reconcile(&conditions, t0() + HOUR_NS).expect("reconcile");
    assert_eq!((opened.len(), opened[0].state), (1, State::Pending));
    assert!(book.reconcile(&conditions, t0() + HOUR_NS + 59 * SECOND_NS).expect("reconcile").is_empty());
    let fired = book.reconcile(&conditions, t0() + HOUR_NS + 60 * SECOND_NS).expect("reconcile");
    assert_eq!((fired[0].state, fired[0].firing_ns), (State::Firing, Some(t0() + HOUR_NS + 60 * SECOND_NS)));
    let acked = book.ack(fired[0].id, "write token abc", "sampling again", t0() + 2 * HOUR_NS).expect("ack");
    assert_eq!(acked.state, State::Acknowledged);
    assert!(book.ack(fired[0].id, "someone", "", t0() + 2 * HOUR_NS).is_err(), "once");
    e.ingest(&[effluent("cod", 100.0, t0() + SECOND_NS)]);
    let resolved = book.reconcile(&exceedances(&e), t0() + 3 * HOUR_NS).expect("reconcile");
    assert_eq!((resolved[0].state, resolved[0].resolved_ns), (State::Resolved, Some(t0() + 3 * HOUR_NS)));
    drop(book);
    let book = AlertBook::open(&path, AlertsSection { for_s: 60, ..AlertsSection::default() }).expect("reopen");
    let kept = &all(&book)[0];
    assert_eq!(kept.state, State::Resolved);
    let ack = kept.ack.as_ref().expect("ack kept");
    assert_eq!(
        (ack.by.as_str(), ack.comment.as_str(), ack.at_ns),
        ("write token abc", "sampling again", t0() + 2 * HOUR_NS)
    );
}

#[test]
fn an_exceedance_ended_within_the_same_batch_still_alerts_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut e, _) = engine(t0() + SECOND_NS);
    e.ingest(&[effluent("cod", 130.0, t0()), effluent("cod", 100.0, t0() + 1)]);
    let ongoing = e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).count();
    assert_eq!(ongoing, 0, "the newest grab sample is compliant");
    let flashes = e.take_flashes();
    assert_eq!((flashes.len(), flashes[0].value), (1, Some(130.0)));
    assert!(e.take_flashes().is_empty(), "taken once");
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    let opened = book.reconcile(&flashes, t0() + SECOND_NS).expect("reconcile");
    assert_eq!((opened.len(), opened[0].state, opened[0].value), (1, State::Firing, Some(130.0)));
    let resolved = book.reconcile(&[], t0() + 2 * SECOND_NS).expect("reconcile");
    assert_eq!(resolved[0].state, State::Resolved);
}

#[test]
fn raising_between_passes_opens_new_alerts_and_resolves_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut e, _) = engine(t0() + SECOND_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let first = e.take_flashes();
    e.ingest(&[effluent("cod", 100.0, t0() + SECOND_NS), effluent("bod", 30.0, t0() + SECOND_NS)]);
    let second = e.take_flashes();
    assert_eq!((first.len(), second.len()), (1, 1), "one exceeding COD, one exceeding BOD");
    let book = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("book");
    let opened = book.raise(&first, t0() + SECOND_NS).expect("raise");
    assert_eq!((opened.len(), opened[0].id, opened[0].value), (1, 1, Some(130.0)));
    // The COD alert is not among these conditions, yet stays: only a full pass resolves.
    let opened = book.raise(&second, t0() + 2 * SECOND_NS).expect("raise");
    assert_eq!((opened.len(), opened[0].id, opened[0].parameter.as_deref()), (1, 2, Some("bod")));
    assert!(book.raise(&second, t0() + 3 * SECOND_NS).expect("raise").is_empty(), "raised once");
    let open = |b: &AlertBook| all(b).iter().filter(|a| a.state != State::Resolved).count();
    assert_eq!(open(&book), 2);
    let resolved = book.reconcile(&second, t0() + 4 * SECOND_NS).expect("reconcile");
    assert_eq!((resolved.len(), resolved[0].id, resolved[0].state), (1, 1, State::Resolved));
    assert_eq!(book.get(2).map(|a| a.state), Some(State::Firing));
    // The log replays to the same book, ids found where they were given.
    let again = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("reopen");
    let states = |b: &AlertBook| all(b).into_iter().map(|a| (a.id, a.key, a.state)).collect::<Vec<_>>();
    assert_eq!(states(&again), states(&book));
    assert_eq!(again.get(1).map(|a| a.state), Some(State::Resolved));
}

#[test]
fn alert_kinds_have_their_own_for_and_severity() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy: ServerConfig = eitwatch_config::problems::load(
        "[server]\ndata_dir = \"/x\"\n[alerts]\nfor_s = 0\n[alerts.kind.no_data]\nfor_s = 600\nseverity = \"critical\"\n",
        "test.toml",
    )
    .expect("config");
    let book = AlertBook::open(&dir.path().join("alerts.log"), policy.alerts).expect("book");
    // f1 reported nothing for an hour: no-data conditions for its points, and a COD exceedance.
    let (mut e, _) = engine(t0() + HOUR_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let conditions = e.conditions();
    let changed = book.reconcile(&conditions, t0() + HOUR_NS).expect("reconcile");
    let of = |alerts: &[crate::alerts::Alert], kind| {
        alerts.iter().filter(|a| a.kind == kind).map(|a| (a.state, a.severity)).collect::<Vec<_>>()
    };
    assert_eq!(of(&changed, AlertKind::Exceedance), [(State::Firing, Severity::Critical)]);
    let no_data = of(&changed, AlertKind::NoData);
    assert!(!no_data.is_empty() && no_data.iter().all(|a| *a == (State::Pending, Severity::Critical)), "{no_data:?}");
    let later = book.reconcile(&conditions, t0() + HOUR_NS + 600 * SECOND_NS).expect("reconcile");
    assert_eq!(of(&later, AlertKind::NoData).len(), no_data.len());
    assert!(later.iter().all(|a| a.kind == AlertKind::NoData && a.state == State::Firing));
}

#[test]
fn an_alert_log_torn_by_a_crash_still_takes_the_next_alert() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    let (mut e, _) = engine(t0() + HOUR_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let exceedances: Vec<Condition> = e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).collect();
    let book = AlertBook::open(&path, AlertsSection::default()).expect("book");
    assert_eq!(book.reconcile(&exceedances, t0() + HOUR_NS).expect("reconcile").len(), 1);
    drop(book);
    // A crash in the middle of the next line.
    std::fs::OpenOptions::new().append(true).open(&path).expect("open").write_all(b"{\"op\":\"fi").expect("torn");
    let book = AlertBook::open(&path, AlertsSection::default()).expect("reopen cuts the torn line");
    e.ingest(&[effluent("ph", 12.0, t0())]);
    let more: Vec<Condition> = e.conditions().into_iter().filter(|c| c.kind == AlertKind::Exceedance).collect();
    assert_eq!(book.reconcile(&more, t0() + HOUR_NS).expect("reconcile").len(), 1, "the pH alert");
    drop(book);
    let book = AlertBook::open(&path, AlertsSection::default()).expect("reads back whole");
    assert_eq!(all(&book).len(), 2);
}

/// Every alert, newest first.
fn all(book: &AlertBook) -> Vec<Alert> {
    let mut out = Vec::new();
    book.history(i64::MIN, i64::MAX, |a| {
        out.push(a);
        ControlFlow::Continue(())
    })
    .expect("history");
    out
}

/// An exceedance condition of its own key, starting at `since_ns`.
fn condition(n: u64, since_ns: i64) -> Condition {
    let (mut e, _) = engine(t0() + HOUR_NS);
    e.ingest(&[effluent("cod", 130.0, t0())]);
    let mut c = e.conditions().into_iter().find(|c| c.kind == AlertKind::Exceedance).expect("a COD exceedance");
    c.key = format!("{}#{n}", c.key);
    c.value = Some(130.0 + n as f64 / 8.0);
    c.since_ns = since_ns;
    c
}

const SMALL: Limits = Limits { keep_resolved: 2, segment_alerts: 3 };

/// `n` alerts, each opened then resolved a second later, alert 2 acknowledged before it
/// resolves; the book's limits `limits`. Every alert as it was last changed, by id.
fn resolved_alerts(path: &Path, limits: Limits, n: u64) -> Vec<Alert> {
    let book = AlertBook::open_with(path, AlertsSection::default(), limits).expect("book");
    let c = condition(0, t0());
    let mut out = Vec::new();
    for i in 1..=n {
        let now = t0() + HOUR_NS + i as i64 * 10 * SECOND_NS;
        let mut ci = c.clone();
        ci.key = format!("{}#{i}", c.key);
        ci.since_ns = t0() + i as i64 * 60 * SECOND_NS;
        let opened = book.reconcile(std::slice::from_ref(&ci), now).expect("open");
        assert_eq!((opened.len(), opened[0].id), (1, i));
        if i == 2 {
            book.ack(2, "write token abc", "seen", now + 1).expect("ack");
        }
        let resolved = book.reconcile(&[], now + SECOND_NS).expect("resolve");
        assert_eq!((resolved.len(), resolved[0].state), (1, State::Resolved));
        out.push(stored(&resolved[0]));
    }
    out
}

/// An alert as the log keeps it (the engine's own fields of its limit are not kept).
fn stored(a: &Alert) -> Alert {
    serde_json::from_value(serde_json::to_value(a).expect("json")).expect("alert")
}

/// `n` resolved alerts at `path` (as [`resolved_alerts`]), all but the 2 newest archived
/// in segments of 3.
pub(crate) fn archived_alerts(path: &Path, n: u64) -> Vec<Alert> {
    resolved_alerts(path, SMALL, n)
}

fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).expect("log").lines().count()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir.join("alerts")) {
        Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn resolved_alerts_are_archived_and_read_back_exactly() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    // 2 kept + 3 per segment: alerts 1-3 archived at the 5th resolution, 4-6 at the 8th.
    let expected = resolved_alerts(&path, SMALL, 9);
    assert_eq!(segment_files(dir.path()), ["00000001.seg", "00000002.seg"]);
    assert_eq!(archive::read(&dir.path().join("alerts/00000001.seg")).expect("segment"), expected[..3]);
    assert_eq!(archive::read(&dir.path().join("alerts/00000002.seg")).expect("segment"), expected[3..6]);
    // The log holds alerts 7, 8 and 9: opened by the rewrite (7, 8), opened and resolved (9).
    assert_eq!(log_lines(&path), 4);
    let log = std::fs::read_to_string(&path).expect("log");
    assert!(log.contains("\"key\"") && !log.contains("summary"), "the texts are worded when sent: {log}");
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("reopen");
    let newest_first: Vec<Alert> = expected.iter().rev().cloned().collect();
    assert_eq!(all(&book), newest_first);
    assert_eq!(book.len(), 9);
    assert_eq!(book.get(2), Some(expected[1].clone()));
    let ack = book.get(2).and_then(|a| a.ack).expect("the acknowledgement archived");
    assert_eq!((ack.by.as_str(), ack.comment.as_str()), ("write token abc", "seen"));
    assert_eq!(book.get(10), None);
    // Several at once: two from each segment, one from the log, an unknown one left out.
    let many = book.get_many(&[1, 3, 5, 6, 8, 42].into_iter().collect());
    let want: Vec<(u64, Alert)> = [1, 3, 5, 6, 8].iter().map(|&id| (id, expected[id as usize - 1].clone())).collect();
    assert_eq!(many.into_iter().collect::<Vec<_>>(), want);
    assert_eq!(book.lock().live.len(), 3, "only the log's alerts in memory");
    // The next alert takes the next id.
    let opened = book.reconcile(&[condition(99, t0())], t0() + 3 * HOUR_NS).expect("open");
    assert_eq!(opened[0].id, 10);
    // A span: alerts 4 to 7 started at t0 + 4..=7 min.
    let mut ids = Vec::new();
    book.history(t0() + 4 * 60 * SECOND_NS, t0() + 8 * 60 * SECOND_NS, |a| {
        ids.push(a.id);
        ControlFlow::Continue(())
    })
    .expect("history");
    assert_eq!(ids, [7, 6, 5, 4]);
    // Stopping early.
    let mut first = Vec::new();
    book.history(i64::MIN, i64::MAX, |a| {
        first.push(a.id);
        if first.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .expect("history");
    assert_eq!(first, [10, 9]);
}

#[test]
fn an_archived_alert_is_acknowledged_once_and_keeps_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    let expected = resolved_alerts(&path, SMALL, 5);
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("reopen");
    let acked = stored(&book.ack(1, "admin token root", "late", t0() + 5 * HOUR_NS).expect("ack"));
    let mut want = expected[0].clone();
    want.ack = Some(Box::new(Ack { by: "admin token root".into(), at_ns: t0() + 5 * HOUR_NS, comment: "late".into() }));
    assert_eq!((acked.clone(), acked.state), (want.clone(), State::Resolved));
    assert_eq!(book.get(1), Some(want.clone()));
    assert!(matches!(book.ack(1, "x", "", t0()), Err(super::AckError::Already { id: 1, .. })));
    assert!(matches!(book.ack(2, "x", "", t0()), Err(super::AckError::Already { id: 2, .. })));
    assert!(matches!(book.ack(77, "x", "", t0()), Err(super::AckError::NotFound(77))));
    drop(book);
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("reopen");
    assert_eq!(book.get(1), Some(want.clone()));
    // A crash after the acknowledgement was logged, before its segment was replaced: the
    // segment as it was, the log with the acknowledgement.
    std::fs::write(dir.path().join("alerts/00000001.seg.tmp"), b"half").expect("tmp");
    drop(book);
    let segment = dir.path().join("alerts/00000001.seg");
    let mut before: Vec<Alert> = archive::read(&segment).expect("segment");
    before[0].ack = None;
    let mut archive = archive::Archive::open(&dir.path().join("alerts")).expect("archive");
    archive.replace(1, &before[0]).expect("replace");
    let op = r#"{"op":"ack","id":1,"ack":{"by":"admin token root","at_ns":1795410000000000000,"comment":"late"}}"#;
    let mut log = std::fs::read_to_string(&path).expect("log");
    log.push_str(op);
    log.push('\n');
    std::fs::write(&path, log).expect("log");
    assert_eq!(t0() + 5 * HOUR_NS, 1_795_410_000_000_000_000);
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("reopen");
    assert_eq!(book.get(1), Some(want));
    assert_eq!(archive::read(&segment).expect("segment")[0].ack, expected_ack());
    assert_eq!(segment_files(dir.path()), ["00000001.seg"], "the unfinished write removed");
}

fn expected_ack() -> Option<Box<Ack>> {
    Some(Box::new(Ack { by: "admin token root".into(), at_ns: t0() + 5 * HOUR_NS, comment: "late".into() }))
}

/// Every file state a compaction passes through, each reopened: nothing lost, nothing
/// taken twice.
#[test]
fn a_compaction_interrupted_anywhere_loses_nothing_and_doubles_nothing() {
    let root = tempfile::tempdir().expect("tmp");
    // The log before the compaction: 8 resolved alerts, none archived.
    let full = root.path().join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    let never = Limits { keep_resolved: usize::MAX / 2, segment_alerts: 1 };
    let expected = resolved_alerts(&full.join("alerts.log"), never, 8);
    assert!(segment_files(&full).is_empty());
    // The same compacted: segments 1 (alerts 1-3) and 2 (4-6), the log with 7 and 8.
    let done = root.path().join("done");
    copy_dir(&full, &done);
    drop(AlertBook::open_with(&done.join("alerts.log"), AlertsSection::default(), SMALL).expect("compacts"));
    assert_eq!(segment_files(&done), ["00000001.seg", "00000002.seg"]);
    assert_eq!(log_lines(&done.join("alerts.log")), 2);
    let seg = |n: u32| std::fs::read(done.join(format!("alerts/{n:08}.seg"))).expect("segment");
    let compacted_log = std::fs::read(done.join("alerts.log")).expect("log");
    let full_log = std::fs::read(full.join("alerts.log")).expect("log");
    type State_ = (&'static str, Vec<(&'static str, Vec<u8>)>);
    let states: Vec<State_> = vec![
        ("segment 1 half written", vec![("alerts/00000001.seg.tmp", seg(1)[..40].to_vec())]),
        ("segment 1 written, not renamed", vec![("alerts/00000001.seg.tmp", seg(1))]),
        ("segment 1 renamed", vec![("alerts/00000001.seg", seg(1))]),
        ("segment 2 written", vec![("alerts/00000001.seg", seg(1)), ("alerts/00000002.seg.tmp", seg(2))]),
        ("both segments renamed", vec![("alerts/00000001.seg", seg(1)), ("alerts/00000002.seg", seg(2))]),
        (
            "the log rewritten, not renamed",
            vec![
                ("alerts/00000001.seg", seg(1)),
                ("alerts/00000002.seg", seg(2)),
                ("alerts.log.tmp", compacted_log.clone()),
            ],
        ),
    ];
    let newest_first: Vec<Alert> = expected.iter().rev().cloned().collect();
    for (what, files) in states {
        let dir = root.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(dir.join("alerts")).expect("mkdir");
        std::fs::write(dir.join("alerts.log"), &full_log).expect("log");
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("file");
        }
        for round in 0..2 {
            let book = AlertBook::open_with(&dir.join("alerts.log"), AlertsSection::default(), SMALL).expect(what);
            assert_eq!(all(&book), newest_first, "{what}, open {round}");
            assert_eq!(book.len(), 8, "{what}");
            assert_eq!(book.get(5), Some(expected[4].clone()), "{what}");
        }
        // Settled as an uninterrupted compaction leaves it.
        assert_eq!(segment_files(&dir), ["00000001.seg", "00000002.seg"], "{what}");
        assert_eq!(std::fs::read(dir.join("alerts.log")).expect("log"), compacted_log, "{what}");
        assert!(!dir.join("alerts.log.tmp").exists(), "{what}");
    }
}

/// The log as the book wrote it before the archive existed (`testdata/README.md`).
#[test]
fn a_log_written_before_the_archive_opens_as_it_is() {
    let dir = tempfile::tempdir().expect("tmp");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alerts/testdata/v1/alerts.log");
    let path = dir.path().join("alerts.log");
    std::fs::copy(&fixture, &path).expect("copy");
    let book = AlertBook::open(&path, AlertsSection::default()).expect("open");
    let got: Vec<(u64, State, Option<i64>, Option<i64>)> =
        all(&book).into_iter().map(|a| (a.id, a.state, a.resolved_ns, a.ack.map(|k| k.at_ns))).collect();
    let (h, s) = (HOUR_NS, SECOND_NS);
    assert_eq!(
        got,
        [
            (5, State::Firing, None, None),
            (4, State::Resolved, Some(t0() + 3 * h), None),
            (3, State::Acknowledged, None, Some(t0() + 2 * h + s)),
            (2, State::Firing, None, None),
            (1, State::Resolved, Some(t0() + 3 * h), Some(t0() + 2 * h)),
        ]
    );
    let cod = book.get(1).expect("alert 1");
    assert_eq!((cod.kind, cod.parameter.as_deref(), cod.value), (AlertKind::Exceedance, Some("cod"), Some(130.0)));
    assert_eq!(cod.limit.as_ref().map(|l| l.max), Some(Some(120.0)));
    assert_eq!(book.open_alerts().iter().map(|a| a.id).collect::<Vec<_>>(), [5, 3, 2]);
    assert_eq!(std::fs::read(&path).expect("log"), std::fs::read(&fixture).expect("fixture"), "left as it is");
    // Compacted into the archive, every alert reads back the same.
    let before = all(&book);
    drop(book);
    let book = AlertBook::open_with(&path, AlertsSection::default(), Limits { keep_resolved: 0, segment_alerts: 1 })
        .expect("compacts");
    assert_eq!(segment_files(dir.path()), ["00000001.seg", "00000002.seg"]);
    assert_eq!(all(&book), before);
    assert_eq!(log_lines(&path), 3, "the open alerts 2, 3 and 5");
}

/// An alert open while later ones come and go is archived after them: its segment's ids
/// span the others', and the history still comes newest first, each alert once.
#[test]
fn segments_whose_ids_interleave_are_read_in_id_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("book");
    let long = condition(0, t0());
    let at = |i: i64| t0() + HOUR_NS + i * 10 * SECOND_NS;
    assert_eq!(book.reconcile(std::slice::from_ref(&long), at(0)).expect("open")[0].id, 1);
    let mut step = 0;
    let mut next = |with_long: bool| {
        step += 1;
        let c = condition(step as u64, t0() + step * 60 * SECOND_NS);
        let mut now = vec![c];
        if with_long {
            now.push(long.clone());
        }
        book.reconcile(&now, at(step)).expect("open");
        book.reconcile(if with_long { std::slice::from_ref(&long) } else { &[] }, at(step) + 1).expect("resolve");
    };
    // Alerts 2-8 while 1 stays open: 2-4 archived once 2-6 are resolved.
    for _ in 0..7 {
        next(true);
    }
    // 1 resolves as 9 opens (5-8 and 1 resolved): 1, 5, 6 archived; 7-9 once 10 and 11
    // have come and gone.
    next(false);
    next(false);
    next(false);
    let segments = archive::Archive::open(&dir.path().join("alerts")).expect("archive");
    let ranges: Vec<(u64, u64, u32)> = segments.segments().iter().map(|s| (s.first_id, s.last_id, s.count)).collect();
    assert_eq!(ranges, [(2, 4, 3), (1, 6, 3), (7, 9, 3)]);
    let ids: Vec<u64> = all(&book).iter().map(|a| a.id).collect();
    assert_eq!(ids, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(book.get(1).map(|a| (a.state, a.resolved_ns)), Some((State::Resolved, Some(at(8)))));
    assert_eq!(book.len(), 11);
}

/// A log holding the whole history (as written before the archive existed) is archived as
/// it is replayed; an acknowledgement logged after its alert went is carried into the
/// segment.
#[test]
fn a_whole_history_log_is_archived_as_it_is_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("alerts.log");
    let never = Limits { keep_resolved: usize::MAX / 2, segment_alerts: 1 };
    let mut expected = resolved_alerts(&path, never, 6);
    let book = AlertBook::open_with(&path, AlertsSection::default(), never).expect("book");
    let acked = book.ack(1, "admin token root", "after the fact", t0() + 5 * HOUR_NS).expect("ack");
    expected[0].ack = acked.ack;
    drop(book);
    assert_eq!(log_lines(&path), 6 * 2 + 2, "opens, resolutions and the two acknowledgements");
    // 1-3 are archived at the 5th resolution, before the acknowledgement of 1 is read.
    let book = AlertBook::open_with(&path, AlertsSection::default(), SMALL).expect("reopen");
    assert_eq!(segment_files(dir.path()), ["00000001.seg"]);
    assert_eq!(archive::read(&dir.path().join("alerts/00000001.seg")).expect("segment"), expected[..3]);
    assert_eq!(log_lines(&path), 3, "4, 5 and 6 rewritten");
    let newest_first: Vec<Alert> = expected.iter().rev().cloned().collect();
    assert_eq!(all(&book), newest_first);
}
