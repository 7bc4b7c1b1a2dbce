//! Bounded reads end to end: `GET /api/v1/readings` answers a page at a time (`limit`,
//! `next_cursor`), streams it, keeps each client to a few reads at once, and holds up
//! neither writes nor `/health` while millions of readings go out.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use support::site::EFFLUENT_FIVE;
use support::{Area, Factory, Point, Site, TestServer, http};

const MINUTE_NS: i64 = 60_000_000_000;

/// The first minute of `minutes` minutes ending a day ago (the minutes after them are free
/// for writes while reads run).
fn start_ns(minutes: i64) -> i64 {
    let now_ns =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos())
            .expect("ns");
    // On the hour, so that buckets of a few minutes hold whole minutes.
    (now_ns / MINUTE_NS - minutes - 1440) / 60 * 60 * MINUTE_NS
}

/// A factory's effluent readings, one line a minute per outfall: values as an outfall's
/// instruments give them (COD, BOD, pH, TSS, temperature drifting around their levels).
fn lines(factory: &str, outfalls: usize, from_minute: i64, minutes: i64, t0_ns: i64) -> String {
    let mut out = String::with_capacity((minutes as usize) * outfalls * 90);
    for m in from_minute..from_minute + minutes {
        for o in 1..=outfalls {
            let w = ((m * 7 + o as i64 * 13) % 100) as f64 / 100.0;
            out.push_str(&format!(
                "effluent,factory={factory},point=outfall-{o} cod={:.1},bod={:.1},ph={:.2},tss={:.1},temp={:.1} {}\n",
                40.0 + 30.0 * w,
                12.0 + 10.0 * w,
                6.8 + 0.8 * w,
                20.0 + 25.0 * w,
                28.0 + 4.0 * w,
                t0_ns + m * MINUTE_NS
            ));
        }
    }
    out
}

async fn write(server: &TestServer, factory: &str, body: String) {
    let (status, text) = server.post(server.token(factory), "/api/v2/write?org=eitwatch&bucket=eitwatch", body).await;
    assert_eq!(status, 204, "write of {factory}: {text}");
}

/// The fields of a reading the paging is checked on.
#[derive(Debug, Deserialize, PartialEq)]
struct Reading {
    factory: String,
    point: String,
    parameter: String,
    time_ns: i64,
    value: f64,
}

#[derive(Debug, Deserialize)]
struct ReadingsPage {
    readings: Vec<Reading>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Bucket {
    start_ns: i64,
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Series {
    factory: String,
    point: String,
    parameter: String,
    buckets: Vec<Bucket>,
}

#[derive(Debug, Deserialize)]
struct BucketsPage {
    series: Vec<Series>,
    next_cursor: Option<String>,
}

/// Every page of a query, following `next_cursor` to the end.
async fn pages<P: serde::de::DeserializeOwned>(
    server: &TestServer,
    token: &str,
    query: &str,
    cursor_of: impl Fn(&P) -> Option<String>,
) -> Vec<P> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/readings?{query}&cursor={c}"),
            None => format!("/api/v1/readings?{query}"),
        };
        // A page of 100 000 readings from a debug build, beside seven others on two cores,
        // takes longer than the harness client's 10 s.
        let r = reader()
            .get(format!("{}{q}", server.url()))
            .header("Authorization", format!("Token {token}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {q}: {e}"));
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap_or_else(|e| panic!("GET {q}: {e}"));
        assert_eq!(status, 200, "GET {q}: {}", String::from_utf8_lossy(&body));
        let page: P = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {q}: not a page: {e}"));
        cursor = cursor_of(&page);
        out.push(page);
        if cursor.is_none() {
            return out;
        }
    }
}

fn reader() -> reqwest::Client {
    eitwatch_agent::install_tls_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client")
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in {status}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_boundaries_inside_a_series_and_at_a_shared_time_neither_lose_nor_repeat_a_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::new().area(
        Area::new("a1", "Area one", "พื้นที่หนึ่ง", "Rayong").factory(
            Factory::new("f1", "Factory one")
                .point(Point::outfall("outfall-1", &EFFLUENT_FIVE))
                .point(Point::outfall("outfall-2", &EFFLUENT_FIVE)),
        ),
    );
    let server = TestServer::builder(dir.path()).site(site).factory_tokens(&["f1"]).start().await;
    let t0 = start_ns(60);
    // Ten series, each a reading a minute: every time is shared by ten readings.
    write(&server, "f1", lines("f1", 2, 0, 12, t0)).await;
    let token = server.token("f1");

    let whole: Vec<ReadingsPage> = pages(&server, token, "limit=1000", |p: &ReadingsPage| p.next_cursor.clone()).await;
    assert_eq!(whole.len(), 1, "one page holds them all");
    let whole = &whole[0].readings;
    assert_eq!(whole.len(), 120);
    for limit in [1, 3, 7, 10, 12, 13, 119, 120] {
        let got: Vec<Reading> =
            pages(&server, token, &format!("limit={limit}"), |p: &ReadingsPage| p.next_cursor.clone())
                .await
                .into_iter()
                .flat_map(|p| {
                    assert!(p.readings.len() <= limit, "a page of {} readings for limit {limit}", p.readings.len());
                    p.readings
                })
                .collect();
        assert_eq!(&got, whole, "pages of {limit}");
    }
    // A page that ends exactly at the last reading says there is no more.
    let (status, last) = server.get_json_as(token, "/api/v1/readings?limit=120").await;
    assert_eq!((status, last.get("next_cursor")), (200, None), "{last}");

    // Buckets of two minutes, a page boundary inside a series or between two.
    let whole: Vec<BucketsPage> =
        pages(&server, token, "every_s=120&limit=1000", |p: &BucketsPage| p.next_cursor.clone()).await;
    let whole = &whole[0].series;
    assert_eq!(whole.iter().map(|s| s.buckets.len()).sum::<usize>(), 60);
    for limit in [1, 4, 6, 7] {
        let mut got: Vec<Series> = Vec::new();
        for page in
            pages(&server, token, &format!("every_s=120&limit={limit}"), |p: &BucketsPage| p.next_cursor.clone()).await
        {
            assert!(page.series.iter().map(|s| s.buckets.len()).sum::<usize>() <= limit);
            for s in page.series {
                match got.last_mut() {
                    Some(last) if (&last.point, &last.parameter) == (&s.point, &s.parameter) => {
                        last.buckets.extend(s.buckets)
                    }
                    _ => got.push(s),
                }
            }
        }
        assert_eq!(&got, whole, "bucket pages of {limit}");
    }

    // What a page cannot be.
    for (query, key) in
        [("limit=0", "limit"), ("limit=1000001", "limit"), ("limit=x", "limit"), ("cursor=nonsense", "cursor")]
    {
        let (status, body) = server.get_json_as(token, &format!("/api/v1/readings?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with(key)), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_time_outside_the_ns_range_is_refused_not_wrapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::builder(dir.path()).factory_tokens(&["f1"]).start().await;
    for (query, key) in [
        ("from=1600-01-01T00:00:00Z", "from"),
        ("to=2300-01-01T00:00:00Z", "to"),
        ("from=1677-09-21T00:00:00Z", "from"),
        ("to=2262-04-12T00:00:00Z", "to"),
        ("from_ns=9223372036854775808", "from_ns"),
        ("to_ns=-9223372036854775809", "to_ns"),
    ] {
        for path in ["/api/v1/readings", "/api/v1/alerts", "/api/v1/gaps"] {
            let (status, body) = server.get_json_as(server.token("f1"), &format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| m.starts_with(key)), "{path}?{query}: {body}");
        }
    }
    // The ends of the range are times.
    let (status, body) = server
        .get_json_as(server.token("f1"), "/api/v1/readings?from=1677-09-22T00:00:00Z&to=2262-04-10T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Factories, each with its token and reader.
const FACTORIES: usize = 8;
const OUTFALLS: usize = 5;
/// Minutes of readings per outfall: 8 × 5 outfalls × 5 parameters × 20 000 = 4 000 000.
const MINUTES: i64 = 20_000;
/// Lines per write (25 000 readings, ≈ 2 MB).
const LINES_PER_WRITE: i64 = 1_000;
/// A page.
const LIMIT: usize = 100_000;
/// How much a server's peak resident memory may grow over what it holds at rest while the
/// eight readers page through everything: 8 reads × 4 MiB (a slice of 4096 readings, its
/// JSON and the piece in flight) + 32 MiB (the allocator's arenas of the threads serving
/// them). docs/operations.md derives it.
const READS_RSS_BOUND_KIB: u64 = (8 * 4 + 32) * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_readers_page_through_four_million_readings_in_bounded_memory_while_writes_go_on() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (1..=FACTORIES).map(|f| format!("f{f}")).collect();
    let area =
        ids.iter().fold(Area::new("a1", "Area one", "พื้นที่หนึ่ง", "Rayong"), |a, id| {
            let f = (1..=OUTFALLS)
                .fold(Factory::new(id, id), |f, o| f.point(Point::outfall(&format!("outfall-{o}"), &EFFLUENT_FIVE)));
            a.factory(f)
        });
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let server =
        Arc::new(TestServer::builder(dir.path()).site(Site::new().area(area)).factory_tokens(&id_refs).start().await);
    let t0 = start_ns(MINUTES);
    let end_ns = t0 + MINUTES * MINUTE_NS;

    let writers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (server, id) = (server.clone(), id.clone());
            tokio::spawn(async move {
                for from in (0..MINUTES).step_by(LINES_PER_WRITE as usize / OUTFALLS) {
                    let n = (LINES_PER_WRITE / OUTFALLS as i64).min(MINUTES - from);
                    write(&server, &id, lines(&id, OUTFALLS, from, n, t0)).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let per_factory = OUTFALLS * EFFLUENT_FIVE.len() * MINUTES as usize;
    eprintln!("wrote {} readings in {:?}", FACTORIES * per_factory, started.elapsed());

    // A client may have four reads in progress: a fifth is told to come back.
    let query = format!("to_ns={end_ns}&limit={LIMIT}");
    let token = server.token("f1");
    let mut held = Vec::new();
    for _ in 0..4 {
        let r = server.get(Some(token), &format!("/api/v1/readings?{query}")).await;
        assert_eq!(r.status().as_u16(), 200);
        held.push(r);
    }
    let refused = server.get(Some(token), &format!("/api/v1/readings?{query}")).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("retry-after").is_some(), "{:?}", refused.headers());
    drop(held);
    // A slot is free again once a read is gone (the server notices the closed connection).
    support::wait_for("a read slot after the held reads closed", Duration::from_secs(30), || async {
        let r = server.get(Some(token), "/api/v1/readings?limit=1").await;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;

    let pid = server.pid();
    // The peak from here on, over what the server holds at rest.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
    let rest_kib = vm_kib(pid, "VmRSS:");

    // While the reads run: /health and writes (after the span read) answer.
    let reading = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (server, reading, probes) = (server.clone(), reading.clone(), probes.clone());
        tokio::spawn(async move {
            let mut minute = MINUTES;
            while reading.load(Ordering::Relaxed) {
                let health = tokio::time::timeout(
                    Duration::from_secs(20),
                    http().get(format!("{}/health", server.url())).send(),
                )
                .await
                .expect("/health answers while the reads run")
                .expect("/health");
                assert_eq!(health.status().as_u16(), 200);
                tokio::time::timeout(
                    Duration::from_secs(20),
                    write(&server, "f1", lines("f1", OUTFALLS, minute, 1, t0)),
                )
                .await
                .expect("a write is stored while the reads run");
                minute += 1;
                probes.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let reads_started = Instant::now();
    let readers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (server, id, query) = (server.clone(), id.clone(), query.clone());
            tokio::spawn(async move {
                let mut count = 0usize;
                let mut last: Option<(String, String, i64)> = None;
                for page in pages(&server, server.token(&id), &query, |p: &ReadingsPage| p.next_cursor.clone()).await {
                    assert!(page.readings.len() <= LIMIT);
                    for r in page.readings {
                        assert_eq!(r.factory, id);
                        let at = (r.point, r.parameter, r.time_ns);
                        // In (series, time) order: a repeat or a step back would show here.
                        assert!(last.as_ref().is_none_or(|l| *l < at), "{last:?} then {at:?}");
                        last = Some(at);
                        count += 1;
                    }
                }
                count
            })
        })
        .collect();
    let mut counts = Vec::new();
    for r in readers {
        counts.push(r.await.expect("reader"));
    }
    let reads_took = reads_started.elapsed();
    reading.store(false, Ordering::Relaxed);
    prober.await.expect("/health and writes answered while the reads ran");

    assert_eq!(counts, vec![per_factory; FACTORIES], "every reading exactly once");
    assert!(probes.load(Ordering::Relaxed) >= 1, "the probes ran during the reads");
    let peak_kib = vm_kib(pid, "VmHWM:");
    eprintln!(
        "read {} readings with {FACTORIES} readers in {reads_took:?}; RSS at rest {rest_kib} KiB, peak {peak_kib} KiB; {} probes; whole test {:?}",
        counts.iter().sum::<usize>(),
        probes.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        peak_kib.saturating_sub(rest_kib) <= READS_RSS_BOUND_KIB,
        "the reads took the server from {rest_kib} KiB to {peak_kib} KiB, more than {READS_RSS_BOUND_KIB} KiB"
    );
}
