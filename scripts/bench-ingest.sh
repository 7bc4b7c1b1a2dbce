#!/usr/bin/env bash
# Ingest benchmark, side by side in one run: the same line-protocol load (eitwatch-load:
# FACTORIES factories × 10 effluent parameters, 5 000-point bodies, CONNECTIONS connections,
# DURATION_S seconds) against
#   1. eitwatch-server (release build, embedded store, compliance on, a registry of the
#      factories, a token per factory): it answers 204 only once the batch is fdatasync'd;
#   2. VictoriaMetrics (Debian's), /api/v2/write: it answers before its data reaches disk;
#   3. InfluxDB 1.6 (Debian's), /write: WAL written (and fsync'd) before it answers.
# Prints points/s, p50/p99 latency, memory per active series (RSS growth of a fresh target
# when every series gets its first point, a current one, divided by the series) and the
# target's CPU time per point
# (all its threads, user + system: other load on the machine barely moves it, unlike
# points/s) for each, and eitwatch's ratios.
# Each target runs alone (the previous one is stopped first), on loopback only.
#
#   scripts/bench-ingest.sh                 # 10 s per target
#   DURATION_S=30 CONNECTIONS=16 scripts/bench-ingest.sh
#   TARGETS=eitwatch EITWATCH_SERVER=/tmp/old-server scripts/bench-ingest.sh   # before/after
#   ROUNDS=3 scripts/bench-ingest.sh       # every target three times, in turn; medians and
#       their ratios (this machine's speed drifts by a quarter from one minute to the next)
#   PERF_OUT=/tmp/ingest TARGETS=eitwatch scripts/bench-ingest.sh   # perf record of the target
#       during the timed load, every thread of it (/tmp/ingest.eitwatch; `perf report -i …`;
#       PERF_CALL_GRAPH=dwarf for stacks through code built without frame pointers)
#
# Load shape: each body holds one factory's readings, because a write token pins one factory
# (a body naming another is refused 403), as each factory's agent sends them. InfluxDB 1.6
# gets the same bodies: the often-quoted ~0.8 M points/s for it came from bodies mixing
# hundreds of series per line set, which no eitwatch writer can send, so that shape is not
# run here; its store is measured on the shape eitwatch's writers actually produce.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-site.sh
DURATION_S=${DURATION_S:-10}
CONNECTIONS=${CONNECTIONS:-8}
FACTORIES=${FACTORIES:-1000}
PARAMETERS=10
POINTS=5000
SERIES=$((FACTORIES * PARAMETERS))
TARGETS=${TARGETS:-eitwatch victoriametrics influxdb16}
ROUNDS=${ROUNDS:-1}
want() { [[ " $TARGETS " == *" $1 "* ]]; }

need_apt=()
want victoriametrics && { command -v victoria-metrics >/dev/null 2>&1 || need_apt+=(victoria-metrics); }
want influxdb16 && { command -v influxd >/dev/null 2>&1 || need_apt+=(influxdb); }
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bench: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "bench: cargo build --release (eitwatch-server, eitwatch-load)"
cargo build --release -q -p eitwatch-server -p eitwatch-tests --bin eitwatch-server --bin eitwatch-load
SERVER=${EITWATCH_SERVER:-target/release/eitwatch-server}
LOAD=target/release/eitwatch-load

work=$(mktemp -d /tmp/eitwatch-bench.XXXXXX)
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
# CPU time of a process (all its threads) in clock ticks: user + system.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
wait_http() { # url what
  for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench: $2 did not come up ($1)" >&2; return 1
}
# The timed load's readings start 30 days back, so that however long the run they are never
# in the future; each series is primed with one point just before them.
START_S=$(( $(date +%s) - 30 * 86400 ))
results=()

# One target, started twice from empty by `$start` (which sets pid and url):
#   1. memory per active series: every series gets one current point. (A point 30 days old
#      would leave eitwatch's no-data and availability alerts standing, 1.3 a series:
#      `cargo run --release -p eitwatch-server --example memory-per-series -- stale`.)
#   2. every series primed just before the load's readings, then the timed load: points/s,
#      latency, CPU and memory per point stored. (Current priming points would turn the
#      load into a back-fill behind them.)
run() { # label start [tokens]
  local label=$1 start=$2 tokens=${3:-}
  local args=(--label "$label" --factories "$FACTORIES" --parameters "$PARAMETERS"
              --points "$POINTS" --connections "$CONNECTIONS")
  [ -n "$tokens" ] && args+=(--tokens "$tokens")
  local rss0 rss1 rss2 line cpu0 cpu1 active0 active1
  $start
  active0=$(rss_kib "$pid")
  "$LOAD" "${args[@]}" --url "$url" --start-s "$(date +%s)" --prime >/dev/null
  sleep 1 # let a store that flushes in the background (VictoriaMetrics) settle before RSS
  active1=$(rss_kib "$pid")
  stop
  $start
  rss0=$(rss_kib "$pid")
  "$LOAD" "${args[@]}" --url "$url" --start-s "$START_S" --prime >/dev/null
  sleep 1
  rss1=$(rss_kib "$pid")
  local perf_pid=""
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -q -F 999 --call-graph "${PERF_CALL_GRAPH:-fp}" -p "$pid" -o "$PERF_OUT.$label" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  cpu0=$(cpu_ticks "$pid")
  line=$("$LOAD" "${args[@]}" --url "$url" --start-s "$START_S" --duration-s "$DURATION_S")
  cpu1=$(cpu_ticks "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  rss2=$(rss_kib "$pid")
  echo "  $line"
  local points; points=$(sed -E 's/.* points=([0-9]+).*/\1/' <<<"$line")
  local per_series=$(( (active1 - active0) * 1024 / SERIES ))
  local per_point; per_point=$(awk -v a="$rss2" -v b="$rss1" -v p="$points" 'BEGIN { printf "%.1f", (a - b) * 1024 / (p > 0 ? p : 1) }')
  # CPU the target spent per point: unlike points/s, barely moved by other load on the machine.
  local cpu_ns; cpu_ns=$(awk -v c=$((cpu1 - cpu0)) -v t="$CLK_TCK" -v p="$points" 'BEGIN { printf "%.0f", c / t * 1e9 / (p > 0 ? p : 1) }')
  echo "  rss_kib: fresh=$active0 active=$active1 (current points); start=$rss0 primed=$rss1 (points 30 days old) after_load=$rss2; bytes/active series=$per_series, primed 30 days back=$(( (rss1 - rss0) * 1024 / SERIES )); bytes/point stored=$per_point; cpu ns/point=$cpu_ns"
  results+=("$line per_series_bytes=$per_series per_point_bytes=$per_point cpu_ns_per_point=$cpu_ns round=$round")
}

echo "bench: $FACTORIES factories × $PARAMETERS parameters = $SERIES series; $POINTS points/body; $CONNECTIONS connections; ${DURATION_S}s per target; work dir $work"

if want eitwatch; then
# 1. eitwatch-server.
data="$work/eitwatch"
conf="$work/server.toml"
bench_server_toml "$data" "$FACTORIES" >"$conf"
"$SERVER" check-config "$conf" >/dev/null
echo "bench: creating $FACTORIES tokens"
tokens="$work/tokens.txt"
bench_tokens "$SERVER" "$work/eitwatch-tokens" "$FACTORIES" >"$tokens"
start_eitwatch() { # an empty data directory but for the tokens
  rm -rf "$data"; cp -a "$work/eitwatch-tokens" "$data"
  RUST_LOG=warn setsid "$SERVER" --config "$conf" >>"$work/eitwatch.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do [ -s "$data/listen-address" ] && break; sleep 0.1; done
  local addr; addr=$(cat "$data/listen-address")
  url="http://$addr/api/v2/write?org=bench&bucket=bench&precision=ns"
  echo "eitwatch-server (embedded store, fdatasync before 204) at $addr"
}
fi

if want victoriametrics; then
# 2. VictoriaMetrics.
start_vm() {
  rm -rf "$work/vm"
  local port; port=$(free_port)
  setsid victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$work/vm" \
    -retentionPeriod=100y -search.latencyOffset=1s -loggerLevel=ERROR >>"$work/vm.log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$port/health" VictoriaMetrics
  url="http://127.0.0.1:$port/api/v2/write?org=bench&bucket=bench&precision=ns"
  echo "VictoriaMetrics $(victoria-metrics -version 2>&1 | head -1) at 127.0.0.1:$port"
}
fi

if want influxdb16; then
# 3. InfluxDB 1.6 (a config file, so that it binds loopback only).
port=$(free_port); rpc=$(free_port)
cat >"$work/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  auth-enabled = false
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
start_influxdb() {
  rm -rf "$work/influx"
  setsid influxd run -config "$work/influxdb.conf" >>"$work/influxdb.log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$port/ping" "InfluxDB 1.6"
  curl -sf -XPOST "http://127.0.0.1:$port/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null
  url="http://127.0.0.1:$port/write?db=bench&precision=ns"
  echo "InfluxDB $(influxd version 2>/dev/null | head -1) at 127.0.0.1:$port"
}
fi

for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "bench: round $round of $ROUNDS"
  if want eitwatch; then
    run eitwatch start_eitwatch "$tokens"
    echo "  store on disk: $(du -sh "$data/store" | cut -f1) in $(ls "$data/store" | wc -l) segment(s)"
    stop
  fi
  if want victoriametrics; then run victoriametrics start_vm; stop; fi
  if want influxdb16; then run influxdb16 start_influxdb; stop; fi
done

echo
echo "bench: summary ($(nproc) cores; other processes on the machine run meanwhile)"
columns=(points_per_s p50_ms p99_ms per_series_bytes per_point_bytes cpu_ns_per_point)
row() { printf '%-16s %6s %14s %10s %10s %16s %14s %14s\n' "$@"; }
row target round points/s p50_ms p99_ms bytes/series bytes/point cpu_ns/point
for r in "${results[@]}"; do
  get() { sed -E "s/.*[ ^]$1=([^ ]+).*/\1/" <<<" $r"; }
  values=(); for c in "${columns[@]}"; do values+=("$(get "$c")"); done
  row "$(get target)" "$(get round)" "${values[@]}"
done
# A target's value of a column in every round, or its median.
field_rounds() { for r in "${results[@]}"; do if [[ $r == "target=$1 "* ]]; then sed -E "s/.* $2=([0-9.]+).*/\\1/" <<<"$r"; fi; done; }
field() { field_rounds "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.15g\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
if [ "$ROUNDS" -gt 1 ]; then
  echo "medians of $ROUNDS rounds:"
  for t in $TARGETS; do
    [ -n "$(field "$t" points_per_s)" ] || continue
    values=(); for c in "${columns[@]}"; do values+=("$(field "$t" "$c")"); done
    row "$t" median "${values[@]}"
  done
fi
e=$(field eitwatch points_per_s); ec=$(field eitwatch cpu_ns_per_point)
for peer in "victoriametrics VictoriaMetrics 1.5" "influxdb16 InfluxDB_1.6 3.0"; do
  read -r id name goal <<<"$peer"
  p=$(field "$id" points_per_s); pc=$(field "$id" cpu_ns_per_point)
  if [ "$ROUNDS" -gt 1 ] && [ -n "$e" ] && [ -n "$p" ]; then
    paste <(field_rounds eitwatch points_per_s) <(field_rounds "$id" points_per_s) |
      awk -v n="${name/_/ }" '{ r = r sprintf(" %.2f", $1 / $2) } END { printf "eitwatch / %s points/s in each round:%s\n", n, r }'
  fi
  if [ -n "$e" ] && [ -n "$p" ]; then
    awk -v e="$e" -v p="$p" -v ec="$ec" -v pc="$pc" -v n="${name/_/ }" -v g="$goal" 'BEGIN {
      printf "eitwatch / %-15s points/s %.2f (goal >= %s); CPU per point %.2f of theirs\n", n, e / p, g, ec / pc
    }'
  fi
done
