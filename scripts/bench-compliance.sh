#!/usr/bin/env bash
# Compliance benchmark, in one run:
#   1. the engine alone (no HTTP, no store): readings/s through ingest, and through the
#      compliance thread's whole per-batch work (conditions for the alert book, a tick every
#      simulated 10 s), FACTORIES factories × 7 series (4 effluent instantaneous limits,
#      3 emission series with hourly O₂-corrected limits) × SECONDS one-second readings;
#   2. write → SSE alert latency over HTTP against the release server: READINGS_PER_S
#      readings/s in 100 bodies/s for DURATION_S, five exceeding "probe" readings a second;
#      each probe's alert is awaited on GET /api/v1/events. Printed beside the same writes'
#      own 204 latency (the ratio says what judging and alerting add).
#
#   scripts/bench-compliance.sh
#   DURATION_S=60 READINGS_PER_S=20000 FACTORIES=200 scripts/bench-compliance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION_S=${DURATION_S:-30}
READINGS_PER_S=${READINGS_PER_S:-10000}
FACTORIES=${FACTORIES:-100}
SECONDS_SIM=${SECONDS_SIM:-600}
POINTS=$((READINGS_PER_S / 100 / 4))

echo "bench: cargo build --release (eitwatch-server, example bench-compliance)"
cargo build --release -q -p eitwatch-server --bin eitwatch-server --example bench-compliance
SERVER=target/release/eitwatch-server
BENCH=target/release/examples/bench-compliance

echo "== engine alone"
"$BENCH" engine "$FACTORIES" "$SECONDS_SIM"

work=$(mktemp -d /tmp/eitwatch-bench-compliance.XXXXXX)
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$work"' EXIT

{
  cat <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$work/data"
[api]
anonymous_read = "loopback"
[compliance]
tick_ms = 1000
[[area]]
id = "bench"
name_en = "Bench"
name_th = "Bench"
province = "Rayong"
[[area.factory]]
id = "bench"
name = "Bench factory"
category = 3
TOML
  for p in $(seq 0 $((POINTS - 1))); do
    printf '[[area.factory.point]]\nid = "o%d"\nkind = "effluent"\nparameters = ["cod", "bod", "ph", "tss"]\nexpected_interval_s = 1\n' "$p"
  done
  for p in $(seq 0 9); do
    printf '[[area.factory.point]]\nid = "probe-%d"\nkind = "effluent"\nparameters = ["cod"]\nexpected_interval_s = 1\n' "$p"
  done
} > "$work/server.toml"
mkdir -p "$work/data"
token=$("$SERVER" token create --data-dir "$work/data" --factory bench 2>/dev/null)
"$SERVER" --config "$work/server.toml" 2> "$work/server.log" &
pid=$!
for _ in $(seq 300); do [ -s "$work/data/listen-address" ] && break; sleep 0.1; done
url="http://$(cat "$work/data/listen-address")"
echo "== write → SSE alert over HTTP ($url, $POINTS outfalls × 4 parameters + 10 probe outfalls, ${DURATION_S} s)"
"$BENCH" latency "$url" "$token" "$DURATION_S" "$READINGS_PER_S"
echo "server RSS at the end: $(ps -o rss= -p "$pid" | tr -d ' ') KiB"
