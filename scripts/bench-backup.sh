#!/usr/bin/env bash
# Backup benchmark: how long `eitwatch-server backup` takes and how much it writes for a data
# directory of SIZE readings (eitwatch-load --realistic, as scripts/bench-history.sh: 100
# factories × 10 effluent parameters = 1 000 series, one reading a minute going back from
# now), and how long `restore` (checking every file's SHA-256 and every day file's blocks,
# then copying and opening the store) takes. Three backups of the running server:
#   1. idle, to the data directory's file system (day files and sealed segments hard-linked);
#   2. idle, to another file system (/dev/shm: everything copied);
#   3. while a second load writes (to the same file system as 1).
# For each: seconds (the command's wall time), bytes of the backup, bytes it added on the
# data directory's disk; then restore --check-only and restore seconds.
#
#   scripts/bench-backup.sh                  # 20 M readings
#   SIZE=5000000 scripts/bench-backup.sh     # on a busy machine
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-site.sh
SIZE=${SIZE:-20000000}
FACTORIES=${FACTORIES:-100}
PARAMETERS=10
POINTS=5000
CONNECTIONS=${CONNECTIONS:-4}

echo "bench: cargo build --release (eitwatch-server, eitwatch-load)"
cargo build --release -q -p eitwatch-server -p eitwatch-tests --bin eitwatch-server --bin eitwatch-load
SERVER=${EITWATCH_SERVER:-target/release/eitwatch-server}
LOAD=target/release/eitwatch-load

work=$(mktemp -d /tmp/eitwatch-backup.XXXXXX)
other=$(mktemp -d /dev/shm/eitwatch-backup.XXXXXX)
pid=""; load_pid=""
stop() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; load_pid=""; fi
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
trap 'stop; rm -rf "$work" "$other"' EXIT
now_ms() { date +%s%3N; }

data="$work/data"
conf="$work/server.toml"
tokens="$work/tokens.txt"
bench_server_toml "$data" "$FACTORIES" >"$conf"
"$SERVER" check-config "$conf" >/dev/null
bench_tokens "$SERVER" "$data" "$FACTORIES" >"$tokens"
admin=$("$SERVER" token create --data-dir "$data" --admin 2>/dev/null)

RUST_LOG=warn setsid "$SERVER" --config "$conf" >>"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 60000); do [ -s "$data/listen-address" ] && break; sleep 0.02; done
base="http://$(cat "$data/listen-address")"
write_url="$base/api/v2/write?org=bench&bucket=bench&precision=ns"
END_S=$(( $(date +%s) / 60 * 60 - 60 ))

echo "bench: loading $SIZE readings ($FACTORIES factories × $PARAMETERS parameters, one a minute ending $(date -u -d "@$END_S" +%FT%TZ)); work dir $work"
"$LOAD" --realistic --label load --url "$write_url" --tokens "$tokens" --factories "$FACTORIES" \
  --parameters "$PARAMETERS" --points "$POINTS" --connections "$CONNECTIONS" --readings "$SIZE" --end-s "$END_S" | sed 's/^/  /'
# Let maintenance flush the memtable's closed days and merge them.
sleep 15
data_b=$(du -sb "$data" | cut -f1)
echo "bench: data directory $data_b bytes"

results=()
backup() { # label target
  local t0 t1 out size added
  t0=$(now_ms)
  out=$("$SERVER" --config "$conf" backup --to "$2" --token "$admin")
  t1=$(now_ms)
  echo "  $1: $out"
  size=$(du -sb "$2" | cut -f1)
  # What the backup added where the data directory is (hard links count once).
  added=$(( $(du -sbc "$data" "$2" | tail -1 | cut -f1) - $(du -sb "$data" | cut -f1) ))
  # Where its bytes are, from its backup.json.
  python3 - "$2/backup.json" <<'PY'
import json, sys
parts = {}
for f in json.load(open(sys.argv[1]))["files"]:
    p = f["path"]
    kind = ("day files" if p.startswith("store/parts/") else "log segments" if p.endswith(".seg")
            else "judgement days" if p.startswith("judgements/") else "engine checkpoint" if p == "compliance.checkpoint"
            else "other")
    parts[kind] = parts.get(kind, 0) + f["bytes"]
print("    bytes: " + ", ".join(f"{k} {v}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])))
PY
  results+=("$(printf '%-26s %8.2f s %14s B %14s B' "$1" "$(awk -v ms=$((t1 - t0)) 'BEGIN { print ms / 1000 }')" "$size" "$added")")
}

backup "idle, same file system" "$work/backup-1"
backup "idle, other file system" "$other/backup-2"
# A second load, the days before the first (a back-fill: closed days get new runs to merge),
# while the third backup runs.
"$LOAD" --realistic --label during --url "$write_url" --tokens "$tokens" --factories "$FACTORIES" \
  --parameters "$PARAMETERS" --points "$POINTS" --connections "$CONNECTIONS" --readings "$SIZE" \
  --end-s "$(( END_S - SIZE / (FACTORIES * PARAMETERS) * 60 ))" >"$work/load-during.txt" 2>&1 &
load_pid=$!
sleep 5
backup "under load, same fs" "$work/backup-3"
stop

t0=$(now_ms); "$SERVER" restore --from "$work/backup-1" --check-only >/dev/null; t1=$(now_ms)
check_s=$(awk -v ms=$((t1 - t0)) 'BEGIN { print ms / 1000 }')
t0=$(now_ms); restored=$("$SERVER" restore --from "$work/backup-1" --data-dir "$work/restored" 2>/dev/null); t1=$(now_ms)
restore_s=$(awk -v ms=$((t1 - t0)) 'BEGIN { print ms / 1000 }')
echo "  $restored"

echo
echo "bench: summary, $SIZE readings, data directory $data_b bytes ($(nproc) cores; other processes on the machine run meanwhile)"
printf '%-26s %10s %16s %16s\n' backup time "backup size" "added on disk"
printf '%s\n' "${results[@]}"
printf '%-26s %8.2f s\n' "restore --check-only" "$check_s" "restore" "$restore_s"
