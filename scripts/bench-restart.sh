#!/usr/bin/env bash
# Restart benchmark, side by side in one run on one data directory: the server started
#   1. from the compliance engine's checkpoint (written at the clean stop before; the start
#      judges only the log after it), and
#   2. without it (the checkpoint removed: every stored reading judged again, as a data
#      directory of the release before checkpoints starts, and as every start did then).
# For each: wall time from spawn until /health answers, the engine's own start time (its
# log line), RSS once up. Also the engine thread's pause to encode its checkpoint at the
# clean stop. History: eitwatch-load's readings (FACTORIES factories × 10 effluent
# parameters, one reading a second each) for DURATION_S of sending, starting DAYS back.
#
#   scripts/bench-restart.sh
#   FACTORIES=100 DURATION_S=60 scripts/bench-restart.sh
#   EITWATCH_SERVER=target/debug/eitwatch-server EITWATCH_LOAD=target/debug/eitwatch-load scripts/bench-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FACTORIES=${FACTORIES:-100}
DURATION_S=${DURATION_S:-20}
DAYS=${DAYS:-20}
CONNECTIONS=${CONNECTIONS:-4}

if [ -z "${EITWATCH_SERVER:-}" ]; then
  echo "bench: cargo build --release (eitwatch-server, eitwatch-load)"
  cargo build --release -q -p eitwatch-server -p eitwatch-tests --bin eitwatch-server --bin eitwatch-load
fi
SERVER=${EITWATCH_SERVER:-target/release/eitwatch-server}
LOAD=${EITWATCH_LOAD:-target/release/eitwatch-load}

work=$(mktemp -d /tmp/eitwatch-bench-restart.XXXXXX)
pid=""
stop() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$work"' EXIT

data="$work/data"
conf="$work/server.toml"
{
  printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n\n' "$data"
  printf '[[area]]\nid = "bench"\nname_en = "Bench"\nname_th = "ทดสอบ"\nprovince = "Lampang"\n'
  for i in $(seq 1 "$FACTORIES"); do
    f=$(printf 'f%04d' "$i")
    printf '\n[[area.factory]]\nid = "%s"\nname = "Factory %s"\ncategory = 3\n' "$f" "$f"
    printf '[[area.factory.point]]\nid = "outfall-1"\nkind = "effluent"\nexpected_interval_s = 1\n'
    printf 'parameters = ["cod", "bod", "ph", "tss", "tds", "temp", "flow", "oil_grease", "tkn", "zn"]\n'
  done
} >"$conf"
"$SERVER" check-config "$conf" >/dev/null
tokens="$work/tokens.txt"
for i in $(seq 1 "$FACTORIES"); do
  f=$(printf 'f%04d' "$i")
  echo "$f $("$SERVER" token create --data-dir "$data" --factory "$f" 2>/dev/null)"
done >"$tokens"

n=0
started_ms=0
# Starts the server (sets pid); started_ms: the milliseconds until /health answered.
start() {
  n=$((n + 1))
  rm -f "$data/listen-address"
  local t0; t0=$(date +%s%N)
  "$SERVER" --config "$conf" 2>"$work/server-$n.log" &
  pid=$!
  for _ in $(seq 6000); do
    if [ -s "$data/listen-address" ] && curl -sf -o /dev/null "http://$(cat "$data/listen-address")/health"; then
      started_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
      return 0
    fi
    sleep 0.01
  done
  echo "bench: the server did not come up (see $work/server-$n.log)" >&2
  return 1
}
rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
logged() { # log line key
  sed 's/\x1b\[[0-9;]*m//g' "$1" | { grep "$2" || true; } | tail -1 | sed -E "s/.* $3=([0-9.]+).*/\1/"
}

start
url="http://$(cat "$data/listen-address")"
echo "bench: $FACTORIES factories × 10 parameters; ${DURATION_S} s of eitwatch-load from $DAYS days back; work dir $work"
"$LOAD" --url "$url/api/v2/write?org=bench&bucket=bench&precision=ns" --tokens "$tokens" --factories "$FACTORIES" --connections "$CONNECTIONS" \
  --duration-s "$DURATION_S" --start-s $(( $(date +%s) - DAYS * 86400 ))
stop
encode_ms=$(logged "$work/server-$n.log" "encoded for its checkpoint" encode_ms)
evict_ms=$(logged "$work/server-$n.log" "encoded for its checkpoint" evict_ms)
evicted=$(logged "$work/server-$n.log" "encoded for its checkpoint" days)
day_files=$(find "$data/judgements" -name '*.jdg' | wc -l)
day_bytes=$(du -sb "$data/judgements" | cut -f1)
checkpoint_bytes=$(stat -c %s "$data/compliance.checkpoint")

start
resumed_ms=$started_ms
sleep 1
resumed_rss=$(rss_kib "$pid")
stop
resumed_engine_ms=$(logged "$work/server-$n.log" "Compliance resumed from its checkpoint" elapsed_ms)
stored=$(logged "$work/server-$n.log" "Server listening" readings)

rm "$data/compliance.checkpoint"
start
rebuilt_ms=$started_ms
sleep 1
rebuilt_rss=$(rss_kib "$pid")
stop
rebuilt_engine_ms=$(logged "$work/server-$n.log" "Compliance rebuilt from the store" elapsed_ms)

echo "readings stored: $stored; at the clean stop, on the engine thread: $evicted days written to judgement day files in $evict_ms ms, the checkpoint ($checkpoint_bytes bytes) encoded in $encode_ms ms; judgements/: $day_files files, $day_bytes bytes"
printf '%-34s %12s %12s %10s\n' "start" "until /health" "engine" "RSS KiB"
printf '%-34s %10s ms %9s ms %10s\n' "from the checkpoint" "$resumed_ms" "$resumed_engine_ms" "$resumed_rss"
printf '%-34s %10s ms %9s ms %10s\n' "full rebuild (no checkpoint)" "$rebuilt_ms" "$rebuilt_engine_ms" "$rebuilt_rss"
awk -v a="$rebuilt_ms" -v b="$resumed_ms" -v c="$rebuilt_engine_ms" -v d="$resumed_engine_ms" \
  'BEGIN { printf "ratio rebuild / checkpoint: until /health %.1f×, engine %.1f×\n", a / (b > 0 ? b : 1), c / (d > 0 ? d : 1) }'
