#!/usr/bin/env bash
# Regenerates agent/shipped/link-order.txt: the functions of eitwatch-agent that run, in the
# order of their names, for agent/build.rs to place together in .text (see there why).
#
# Runs the agent as shipped (agent/shipped/build.sh) under valgrind's callgrind on the
# benchmark's workload (scripts/bench-agent.sh: 100 points, MQTT QoS 1 JSON in through
# mosquitto, batches out to tests/peers/http_sink.py) at RATE readings/s for SECONDS, and
# keeps every function of the binary that ran: start-up, the steady state, shutdown. Run it
# after changing the agent or its dependencies, then rebuild; a stale list only costs
# memory (names no longer in the binary are skipped). Names carry hashes and LTO's local
# suffixes, so the list is per build of the toolchain and lock file, like a PGO profile.
#
#   bash agent/shipped/link-order.sh [RATE] [SECONDS]     (defaults 1000 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:-1000}
SECS=${2:-10}
command -v valgrind >/dev/null || { echo "link-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bash scripts/install-peers.sh >/dev/null
py=.peers/venv/bin/python
# The order a list gives changes no name: any build of the same sources names the same functions.
agent_bin=$(bash agent/shipped/build.sh -q)
cargo build --profile agent-release -q -p eitwatch-agent --example mqtt_load
load_bin=target/agent-release/examples/mqtt_load

rig_name=link-order.sh
. agent/shipped/rig.sh
count() { sink_count "$sink" eitwatch; }
mq=$(free_port); sink=$(free_port)
rig_peers "$mq" "$sink"
rig_agent_config "http://127.0.0.1:$sink" "127.0.0.1:$mq" "$(printf 'batch_max_readings = 5000\nbatch_max_age_ms = 1000')"
# Names as in the symbol table (--demangle=no), one file at the agent's exit.
RUST_LOG=warn valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.out" \
  "$agent_bin" --config "$work/agent.toml" >"$work/agent.log" 2>&1 & agent_pid=$!; pids+=($agent_pid)
wait_for "the agent's subscription" grep -q 'eitwatch-agent' "$work/mosquitto.log"
sleep 1
sent=$("$load_bin" "$mq" "$RATE" "$SECS" 1795300000000 2>>"$work/load.log")
for _ in $(seq 1 1200); do [ "$(count)" -ge "$sent" ] && break; sleep 0.1; done
kill -TERM "$agent_pid"
wait "$agent_pid" || true
[ "$(count)" -ge "$sent" ] || { echo "link-order.sh: the agent delivered $(count) of $sent" >&2; exit 1; }

# Functions of the agent's own object that ran (callgrind names files and functions once,
# "(id) name", then by id; a trailing 'N marks a recursion level).
"$py" - "$work/callgrind.out" "$agent_bin" >agent/shipped/link-order.txt <<'EOF'
import re, subprocess, sys
out, binary = sys.argv[1], sys.argv[2]
defined = set(subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.split())
objects, functions, current, ran = {}, {}, None, set()
for line in open(out):
    m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if not m:
        continue
    kind, ident, name = m.groups()
    table = objects if kind.endswith("ob") else functions
    if name:
        table[ident] = name
    if kind == "ob":
        current = objects[ident]
    elif kind == "fn" and current and current.endswith("/eitwatch-agent"):
        ran.add(re.sub(r"'\d+$", "", functions[ident]))
print("\n".join(sorted(n for n in ran if n in defined)))
EOF
echo "link-order.sh: $(wc -l <agent/shipped/link-order.txt) functions ran ($sent readings at $RATE/s); rebuild to link them together"
