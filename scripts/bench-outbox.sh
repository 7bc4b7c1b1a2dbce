#!/usr/bin/env bash
# Benchmarks the agent's outbox on this machine's disk, side by side with the physical limit:
#   1. raw disk: sequential write + fdatasync with dd (1 MiB blocks, one fdatasync at the end;
#      and 64 KiB blocks with O_DSYNC, a sync per write);
#   2. durable append rate with the shipped policy (append returns after fdatasync, concurrent
#      appends group-committed): bulk (8 writers x 1000 readings an append) and MQTT-like
#      (64 writers x 1 reading an append); readings/s and the ratio to the raw disk;
#   3. recovery: time to open (scan and checksum every record of) a backlog of RECOVERY_MB;
#   4. backfill: a backlog of BACKFILL_READINGS delivered through the real uplink to a local
#      eitwatch-server (release build), backfill rate unlimited.
# Usage: scripts/bench-outbox.sh   (env: RECOVERY_MB=1024 BACKFILL_READINGS=1000000
#        APPEND_READINGS=5000000 BENCH_DIR=<dir on the disk to test, default /var/tmp>)
set -euo pipefail
cd "$(dirname "$0")/.."

RECOVERY_MB=${RECOVERY_MB:-1024}
BACKFILL_READINGS=${BACKFILL_READINGS:-1000000}
APPEND_READINGS=${APPEND_READINGS:-5000000}
BASE=${BENCH_DIR:-/var/tmp}

cargo build --release -q -p eitwatch-tests --bin bench-outbox -p eitwatch-server --bin eitwatch-server
BIN=target/release
work=$(mktemp -d "$BASE/bench-outbox.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

echo "bench-outbox: working in $work ($(df -h "$work" | awk 'NR==2{print $1", "$2}'))"

# 1. Raw disk.
dd_rate() { # prints MB/s from dd's summary line
  awk '{for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.1f\n", $1 / $(i - 1) / 1e6}'
}
raw_big=$(dd if=/dev/zero of="$work/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 | dd_rate)
rm -f "$work/dd.bin"
raw_dsync=$(dd if=/dev/zero of="$work/dd.bin" bs=64k count=4096 oflag=dsync 2>&1 | tail -1 | dd_rate)
rm -f "$work/dd.bin"
echo "raw disk: dd bs=1M conv=fdatasync: ${raw_big} MB/s; dd bs=64k oflag=dsync: ${raw_dsync} MB/s"

# 2. Durable append.
append() { # label, then bench-outbox append arguments
  local label=$1
  shift
  local out
  out=$("$BIN/bench-outbox" append --dir "$work/append" "$@")
  rm -rf "$work/append"
  echo "$out"
  awk -v l="$label" -v o="$(echo "$out" | field mb_per_s)" -v r="$raw_big" -v d="$raw_dsync" \
    -v rps="$(echo "$out" | field readings_per_s)" 'BEGIN {
    printf "  => append %s: %.0f readings/s, %.1f MB/s = %.2f x dd fdatasync, %.2f x dd dsync\n", l, rps, o, o / r, o / d }'
}
append "bulk (8 writers x 1000)" --readings "$APPEND_READINGS" --batch 1000 --writers 8
append "large (16 writers x 10000)" --readings "$((APPEND_READINGS * 2))" --batch 10000 --writers 16
append "MQTT-like (64 writers x 1)" --readings 200000 --batch 1 --writers 64

# 3. Recovery of a large backlog (about 57 bytes a reading on disk).
recovery_readings=$((RECOVERY_MB * 1024 * 1024 / 57))
"$BIN/bench-outbox" append --dir "$work/backlog" --readings "$recovery_readings" --batch 5000 --writers 4 >/dev/null
recover=$("$BIN/bench-outbox" recover --dir "$work/backlog")
echo "$recover  (page cache warm: the backlog was just written)"
rm -rf "$work/backlog"

# 4. Backfill to a local server.
mkdir -p "$work/server"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/server.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
data_dir = "$work/server"
max_body_bytes = 67108864
[[area]]
id = "bench"
name_en = "Bench"
name_th = "Bench"
province = "Lampang"
[[area.factory]]
id = "f1"
name = "Factory one"
category = 3
[[area.factory.point]]
id = "outfall-1"
kind = "effluent"
parameters = ["cod", "bod", "ph", "tss", "temp"]
EOF
token=$("$BIN/eitwatch-server" token create --data-dir "$work/server" --factory f1)
RUST_LOG=warn "$BIN/eitwatch-server" --config "$work/server.toml" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/bench-outbox" append --dir "$work/backfill" --readings "$BACKFILL_READINGS" --batch 5000 --writers 4 >/dev/null
backfill=$(RUST_LOG=warn "$BIN/bench-outbox" backfill --dir "$work/backfill" --url "http://127.0.0.1:$port" --token "$token" --batch 5000)
echo "$backfill"
rps=$(echo "$backfill" | field readings_per_s)
awk -v r="$rps" 'BEGIN { printf "backfill: %.0f readings/s; 86.4 M readings (24 h at 1000/s) would take %.1f min\n", r, 86400000 / r / 60 }'
echo "(other builds and tests may have run on this machine meanwhile)"
