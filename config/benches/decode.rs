//! Line-protocol decoding, side by side: InfluxData's parser alone (the floor: what any
//! server that takes line protocol must pay) against eitwatch's decode (the same parser plus
//! the mapping to readings). Prints points/s for each and the ratio. Run through
//! `scripts/bench-line-protocol.sh`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use eitwatch_config::line_protocol::{DecodeContext, Precision, decode_each, decode_rows};
use influxdb_line_protocol::split_lines;

const FACTORIES: usize = 1000;
const PARAMETERS: [&str; 10] = ["cod", "bod", "tss", "ph", "temp", "flow", "tds", "oil_grease", "colour", "tkn"];

fn body() -> String {
    let mut out = String::new();
    for f in 0..FACTORIES {
        out.push_str(&format!("effluent,factory=factory-{f:04},point=outfall-1 "));
        for (i, p) in PARAMETERS.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{p}={}", 10.0 + (f * 7 + i * 13) as f64 / 8.0));
        }
        out.push_str(&format!(" {}\n", 1_795_300_000_000_000_000_i64 + f as i64));
    }
    out
}

/// Runs `f` over the body for about `time`; returns points per second.
fn rate(body: &str, time: Duration, mut f: impl FnMut(&str) -> usize) -> f64 {
    let points_per_body = FACTORIES * PARAMETERS.len();
    assert_eq!(f(body), points_per_body, "every point decoded");
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < time {
        black_box(f(black_box(body)));
        rounds += 1;
    }
    rounds as f64 * points_per_body as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let body = body();
    let time = Duration::from_secs(3);
    let parser = rate(&body, time, |b| {
        split_lines(b)
            .filter_map(|l| influxdb_line_protocol::parse_lines(l).next())
            .map(|l| l.map_or(0, |l| l.field_set.len()))
            .sum()
    });
    let decode = rate(&body, time, |b| {
        let mut n = 0;
        decode_each(b, Precision::Ns, 0, |_, r| {
            n += r.len();
            Ok(())
        })
        .map_or(0, |()| n)
    });
    // As the server does: every row of the body kept in one batch, names borrowed from it.
    let cx = DecodeContext::canonical(Precision::Ns, 0);
    let rows = rate(&body, time, |b| {
        let mut batch = Vec::with_capacity(FACTORIES * PARAMETERS.len());
        let decoded = decode_rows(b, &cx, |_, r| {
            batch.append(r);
            Ok(())
        });
        decoded.map_or(0, |()| batch.len())
    });
    println!("body: {FACTORIES} lines x {} fields = {} points, {} bytes", PARAMETERS.len(), FACTORIES * 10, body.len());
    println!("influxdb-line-protocol parse only : {:>12.0} points/s", parser);
    println!("eitwatch decode (parse + readings): {:>12.0} points/s", decode);
    println!("ratio decode / parse only         : {:>12.2}", decode / parser);
    println!("decode into a batch of rows       : {:>12.0} points/s", rows);
}
