#!/usr/bin/env bash
# History benchmark, side by side in one run: the same realistic readings (eitwatch-load
# --realistic: 100 factories × 10 effluent parameters = 1 000 series, random walks at
# instrument resolution, one reading a minute going back from now, bodies of 5 000 readings
# of one factory from 4 connections, a factory's consecutive bodies in flight together so
# they land out of order, as a back-fill after an outage) into
#   1. eitwatch-server (release build, a registry of the factories, a token per factory),
#   2. VictoriaMetrics (Debian's; /api/v2/write, its query cache off),
# at each history size of SIZES (readings; default 20 M ≈ 14 days and 200 M ≈ 139 days),
# each from an empty data directory. For each target and size it prints:
#   - ingest rate, readings/s of wall time and per CPU second of the target (all threads);
#   - RSS growth per reading during ingest;
#   - bytes on disk per reading (the whole data directory, after a clean stop), and for
#     eitwatch its day files apart (files per day, bytes a reading) and the log left;
#   - restart: start until /health answers, and RSS then (after 2 s more);
#   - latency (median of 5, after one warm-up) of a year-long chart of one series
#     (GET /api/v1/readings?…&every_s=3600 vs query_range of avg_over_time(…[1h]) step
#     3600) and of one day of its raw readings (GET /api/v1/readings vs /api/v1/export);
# then eitwatch / VictoriaMetrics ratios and the goals of issue #15 as met / not met.
# With ROUNDS=n, each size runs n rounds of both targets in turn (each from an empty data
# directory), and the ratios and goals take each figure's median over the rounds: other
# work on a shared machine slows whichever target runs at that moment, and one round can
# swing a ratio by a quarter.
#
#   scripts/bench-history.sh                        # both sizes (≈ 1 h on 2 cores)
#   SIZES=20000000 scripts/bench-history.sh         # 20 M only
#   EITWATCH_SERVER=/tmp/main-server SIZES=20000000 scripts/bench-history.sh   # another build
#   TARGETS=eitwatch scripts/bench-history.sh       # one target
#   ROUNDS=3 scripts/bench-history.sh               # medians of three rounds
#   PERF_OUT=/tmp/history TARGETS=eitwatch SIZES=20000000 scripts/bench-history.sh   # perf record
#       of the target during ingest, every thread (/tmp/history.eitwatch.20000000; `perf report -i …`;
#       PERF_CALL_GRAPH=dwarf for stacks through code built without frame pointers)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-site.sh
SIZES=${SIZES:-20000000 200000000}
FACTORIES=${FACTORIES:-100}
PARAMETERS=10
POINTS=5000
CONNECTIONS=${CONNECTIONS:-4}
SERIES=$((FACTORIES * PARAMETERS))
TARGETS=${TARGETS:-eitwatch victoriametrics}
ROUNDS=${ROUNDS:-1}
want() { [[ " $TARGETS " == *" $1 "* ]]; }

if want victoriametrics && ! command -v victoria-metrics >/dev/null 2>&1; then
  echo "bench: apt-get install victoria-metrics"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null
fi

echo "bench: cargo build --release (eitwatch-server, eitwatch-load)"
cargo build --release -q -p eitwatch-server -p eitwatch-tests --bin eitwatch-server --bin eitwatch-load
SERVER=${EITWATCH_SERVER:-target/release/eitwatch-server}
LOAD=target/release/eitwatch-load

work=$(mktemp -d /tmp/eitwatch-history.XXXXXX)
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
# KEEP=1 keeps the work directory (data directories, config, tokens) for a look afterwards.
trap 'stop; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
now_ms() { date +%s%3N; }
wait_health() { # url; prints the ms it took
  local t0; t0=$(now_ms)
  for _ in $(seq 60000); do
    curl -sf -o /dev/null "$1" && { echo $(( $(now_ms) - t0 )); return 0; }
    sleep 0.02
  done
  echo "bench: $1 did not answer" >&2; return 1
}
# Median of 5 timed GETs (after one warm-up), in ms; fails unless each answers 200.
latency_ms() { # url
  local times=() code t
  curl -sf -o /dev/null "$1" || { echo "bench: GET $1 failed" >&2; return 1; }
  for _ in 1 2 3 4 5; do
    read -r code t < <(curl -s -o "$work/answer" -w '%{http_code} %{time_total}\n' "$1")
    [ "$code" = 200 ] || { echo "bench: GET $1: $code $(head -c 300 "$work/answer")" >&2; return 1; }
    times+=("$t")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk 'NR == 3 { printf "%.1f", $1 * 1000 }'
  echo "    GET ${1%%\?*}: $(wc -c <"$work/answer") bytes answered" >&2
}

# The newest reading is at END_S (whole minutes); the chart's year and the raw day end there.
END_S=$(( $(date +%s) / 60 * 60 - 60 ))
YEAR_FROM_S=$(( END_S - 365 * 86400 + 60 ))
DAY_TO_S=$(( END_S - 86400 + 60 ))
DAY_FROM_S=$(( DAY_TO_S - 86400 ))
rfc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# eitwatch's config: the factories in one area, anonymous reads from loopback.
data="$work/eitwatch"
conf="$work/server.toml"
tokens="$work/tokens.txt"
if want eitwatch; then
  bench_server_toml "$data" "$FACTORIES" >"$conf"
  "$SERVER" check-config "$conf" >/dev/null
  bench_tokens "$SERVER" "$work/eitwatch-tokens" "$FACTORIES" >"$tokens"
fi

start_eitwatch() { # fresh|again
  if [ "$1" = fresh ]; then rm -rf "$data"; cp -a "$work/eitwatch-tokens" "$data"; fi
  rm -f "$data/listen-address"
  RUST_LOG=${EITWATCH_LOG:-warn} setsid "$SERVER" --config "$conf" >>"$work/eitwatch.log" 2>&1 &
  pid=$!
  local t0; t0=$(now_ms)
  for _ in $(seq 60000); do [ -s "$data/listen-address" ] && break; sleep 0.02; done
  base="http://$(cat "$data/listen-address")"
  local rest; rest=$(wait_health "$base/health")
  started_ms=$(( $(now_ms) - t0 ))
  : "$rest"
  write_url="$base/api/v2/write?org=bench&bucket=bench&precision=ns"
  disk_dir=$data
  chart_url="$base/api/v1/readings?factory=f0001&point=outfall-1&parameter=cod&from=$(rfc "$YEAR_FROM_S")&to=$(rfc $((END_S + 60)))&every_s=3600"
  day_url="$base/api/v1/readings?factory=f0001&point=outfall-1&parameter=cod&from=$(rfc "$DAY_FROM_S")&to=$(rfc "$DAY_TO_S")"
  load_tokens=(--tokens "$tokens")
}

vm_port=""
start_vm() { # fresh|again
  if [ "$1" = fresh ]; then rm -rf "$work/vm"; vm_port=$(free_port); fi
  local t0; t0=$(now_ms)
  setsid victoria-metrics -httpListenAddr="127.0.0.1:$vm_port" -storageDataPath="$work/vm" \
    -retentionPeriod=100y -search.latencyOffset=1s -search.disableCache -loggerLevel=ERROR >>"$work/vm.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$vm_port"
  wait_health "$base/health" >/dev/null
  started_ms=$(( $(now_ms) - t0 ))
  write_url="$base/api/v2/write?org=bench&bucket=bench&precision=ns"
  disk_dir="$work/vm"
  local sel='effluent_cod{factory="f0001",point="outfall-1"}'
  chart_url="$base/api/v1/query_range?query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "avg_over_time($sel[1h])")&start=$YEAR_FROM_S&end=$END_S&step=3600"
  day_url="$base/api/v1/export?match[]=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$sel")&start=$DAY_FROM_S&end=$((DAY_TO_S - 1))"
  load_tokens=()
}

results=()
run() { # label start size
  local label=$1 start=$2 size=$3
  $start fresh
  local rss0 cpu0 line cpu1 rss1
  rss0=$(rss_kib "$pid"); cpu0=$(cpu_ticks "$pid")
  local perf_pid=""
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -q -F 499 --call-graph "${PERF_CALL_GRAPH:-fp}" -p "$pid" -o "$PERF_OUT.$label.$size" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local TIMEFORMAT='%U %S'
  { time "$LOAD" --realistic --label "$label" --url "$write_url" "${load_tokens[@]}" --factories "$FACTORIES" \
    --parameters "$PARAMETERS" --points "$POINTS" --connections "$CONNECTIONS" --readings "$size" --end-s "$END_S" \
    >"$work/load-line" 2>&3; } 3>&2 2>"$work/load-cpu"
  line=$(cat "$work/load-line")
  cpu1=$(cpu_ticks "$pid"); rss1=$(rss_kib "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  echo "  $line"
  # The load generator shares the machine's cores: its CPU is not the target's, but it
  # bounds the readings/s any target can reach here.
  echo "    eitwatch-load: $(awk '{ printf "%.2f", $1 + $2 }' "$work/load-cpu") CPU s"
  local readings seconds; readings=$(sed -E 's/.* points=([0-9]+).*/\1/' <<<"$line"); seconds=$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")
  # What was written is queryable (VictoriaMetrics makes new series searchable within a second).
  sleep 2
  local chart day
  chart=$(latency_ms "$chart_url"); day=$(latency_ms "$day_url")
  stop
  local disk; disk=$(du -sb "$disk_dir" | cut -f1)
  # Where the bytes are: the largest entries of the data directory (and of a store/ in it).
  # (VictoriaMetrics' directory has no store/: du's complaint about it is not a failure.)
  { du -sb "$disk_dir"/* "$disk_dir"/store/* 2>/dev/null || true; } | sort -rn | head -6 | sed "s|$disk_dir/||; s/^/    du: /"
  if [ -d "$disk_dir/store/parts" ]; then
    # Day files apart from the log: how many per day, and their bytes a reading.
    local parts_b files days
    parts_b=$(du -sb "$disk_dir/store/parts" | cut -f1)
    files=$(find "$disk_dir/store/parts" -name '*.part' | wc -l)
    days=$(find "$disk_dir/store/parts" -name '*.part' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l)
    echo "    day files: $files for $days days, $(awk -v b="$parts_b" -v n="$readings" 'BEGIN { printf "%.3f", b / n }') B/reading; log segments: $(find "$disk_dir/store" -maxdepth 1 -name '*.seg' | wc -l)"
  fi
  $start again
  local restart_ms=$started_ms
  sleep 2
  local rss_restart; rss_restart=$(rss_kib "$pid")
  local chart2 day2
  chart2=$(latency_ms "$chart_url"); day2=$(latency_ms "$day_url")
  stop
  local r
  r=$(awk -v t="$label" -v s="$size" -v n="$readings" -v w="$seconds" -v c=$((cpu1 - cpu0)) -v k="$CLK_TCK" \
      -v r0="$rss0" -v r1="$rss1" -v d="$disk" -v rs="$rss_restart" -v rm="$restart_ms" \
      -v ch="$chart" -v dy="$day" -v ch2="$chart2" -v dy2="$day2" 'BEGIN {
    cpu = c / k
    printf "target=%s size=%d readings=%d rate=%.0f rate_cpu=%.0f rss_growth_b=%.2f disk_b=%.3f rss_restart_mb=%.1f restart_s=%.2f chart_ms=%s day_ms=%s chart_restart_ms=%s day_restart_ms=%s",
      t, s, n, n / w, n / (cpu > 0 ? cpu : 1), (r1 - r0) * 1024 / n, d / n, rs / 1024, rm / 1000, ch, dy, ch2, dy2
  }')
  echo "  $r"
  results+=("$r")
}

echo "bench: $FACTORIES factories × $PARAMETERS parameters = $SERIES series, one reading a minute ending $(rfc "$END_S"); sizes: $SIZES; $POINTS readings/body; $CONNECTIONS connections; work dir $work"
for size in $SIZES; do
  for round in $(seq "$ROUNDS"); do
    echo "bench: $size readings ($(( size / SERIES / 1440 )) days), round $round of $ROUNDS"
    if want eitwatch; then run eitwatch start_eitwatch "$size"; fi
    if want victoriametrics; then run victoriametrics start_vm "$size"; fi
  done
done

echo
echo "bench: summary ($(nproc) cores; other processes on the machine run meanwhile)"
printf '%-16s %11s %12s %12s %12s %10s %12s %10s %10s %9s %13s %11s\n' target readings "readings/s" "per CPU s" "RSS B/rdg" "disk B/rdg" "RSS restart" "restart s" "year ms" "day ms" "year ms (rs)" "day ms (rs)"
get() { sed -E "s/.*[ ^]$2=([^ ]+).*/\1/" <<<" $1"; }
for r in "${results[@]}"; do
  printf '%-16s %11s %12s %12s %12s %10s %10s MB %10s %10s %9s %13s %11s\n' "$(get "$r" target)" "$(get "$r" readings)" "$(get "$r" rate)" \
    "$(get "$r" rate_cpu)" "$(get "$r" rss_growth_b)" "$(get "$r" disk_b)" "$(get "$r" rss_restart_mb)" "$(get "$r" restart_s)" \
    "$(get "$r" chart_ms)" "$(get "$r" day_ms)" "$(get "$r" chart_restart_ms)" "$(get "$r" day_restart_ms)"
done
# A figure of a target and size: its median over the rounds.
of() {
  for r in "${results[@]}"; do if [[ $r == "target=$1 size=$2 "* ]]; then get "$r" "$3"; fi; done |
    sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? v <= g : v >= g; print ok ? "met" : "NOT met" }'; }
for size in $SIZES; do
  e=$(of eitwatch "$size" rate)
  [ -n "$e" ] || continue
  echo
  echo "bench: $size readings, eitwatch / VictoriaMetrics and the goals of issue #15 (medians of $ROUNDS round(s)):"
  v=$(of victoriametrics "$size" rate)
  if [ -n "$v" ]; then
    for m in "disk_b disk/reading <= 1.0" "rss_restart_mb RSS_after_restart <= 1.0" "rate ingest_readings/s >= 1.5"; do
      read -r key name op goal <<<"$m"
      ratio=$(awk -v a="$(of eitwatch "$size" "$key")" -v b="$(of victoriametrics "$size" "$key")" 'BEGIN { printf "%.2f", a / b }')
      printf '  %-22s %8s (goal %s %s): %s\n' "${name//_/ }" "$ratio" "$op" "$goal" "$(verdict "$ratio" "$goal" "$op")"
    done
    for m in "rate_cpu readings_per_CPU_s" "rss_growth_b RSS_growth/reading" "restart_s restart" "chart_ms year_chart" "day_ms raw_day"; do
      read -r key name <<<"$m"
      ratio=$(awk -v a="$(of eitwatch "$size" "$key")" -v b="$(of victoriametrics "$size" "$key")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
      printf '  %-22s %8s\n' "${name//_/ }" "$ratio"
    done
  fi
  r=$(of eitwatch "$size" restart_s); c=$(of eitwatch "$size" chart_restart_ms)
  printf '  %-22s %8s s (goal <= 2 s): %s\n' "restart" "$r" "$(verdict "$r" 2 "<=")"
  printf '  %-22s %8s ms (goal <= 100 ms, after a restart): %s\n' "year chart" "$c" "$(verdict "$c" 100 "<=")"
done
