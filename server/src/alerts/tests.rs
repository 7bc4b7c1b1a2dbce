//! The alert book fed by the engine's conditions, as the monitor feeds it: lifecycle,
//! deduplication across restarts, per-kind policies, a torn log.

use eitwatch_config::server_config::{AlertsSection, ServerConfig};

use super::{AlertBook, State};
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
    assert_eq!(book.list().len(), 1);
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
    let kept = &book.list()[0];
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
    let open = |b: &AlertBook| b.list().iter().filter(|a| a.state != State::Resolved).count();
    assert_eq!(open(&book), 2);
    let resolved = book.reconcile(&second, t0() + 4 * SECOND_NS).expect("reconcile");
    assert_eq!((resolved.len(), resolved[0].id, resolved[0].state), (1, 1, State::Resolved));
    assert_eq!(book.get(2).map(|a| a.state), Some(State::Firing));
    // The log replays to the same book, ids found where they were given.
    let again = AlertBook::open(&dir.path().join("alerts.log"), AlertsSection::default()).expect("reopen");
    let states = |b: &AlertBook| b.list().into_iter().map(|a| (a.id, a.key, a.state)).collect::<Vec<_>>();
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
    assert_eq!(book.list().len(), 2);
}
