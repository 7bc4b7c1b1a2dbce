#!/usr/bin/env bash
# Agent benchmark: eitwatch-agent beside the usual integrator's agent (a Python script with
# paho-mqtt and influxdb-client, tests/peers/python_agent.py), both subscribed at once to the
# same QoS 1 stream from mosquitto and both writing batches to the same minimal InfluxDB v2
# write endpoint (tests/peers/http_sink.py, which counts what each delivered). Two phases:
# 1 000 and 10 000 readings/s, SECONDS each (default 20), published with QoS 1 by
# agent/examples/mqtt_load.rs. Per agent and phase: CPU (% of one
# core, from /proc/<pid>/stat over the phase, drain included), peak RSS (VmHWM), and the
# anonymous and file-backed parts of the RSS at the end of the phase (RssAnon: heap and
# stacks; RssFile: pages of the program's and its libraries' files), then the ratios
# Python / eitwatch, and PSS beside them (shared library pages divided among the processes
# that map them; the goal is on peak RSS). BENCH_SMAPS=DIR keeps both agents'
# /proc/<pid>/smaps at the end of each phase, for the memory per mapping. Everything on
# 127.0.0.1; peers started here, killed at exit. The agent runs with its defaults
# (ack_linger_ms, commit_interval_ms); AGENT_TOML adds lines to its [[mqtt]] table, e.g.
# AGENT_TOML='ack_linger_ms = 10' to compare another linger.
#
#   bash scripts/bench-agent.sh [SECONDS]
#   AGENT_BIN=/tmp/old-eitwatch-agent bash scripts/bench-agent.sh   # another build instead
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-20}

bash scripts/install-peers.sh >/dev/null
venv=.peers/venv
py="$venv/bin/python"
if ! "$py" -c 'import paho.mqtt, influxdb_client' >/dev/null 2>&1; then
  echo "bench-agent: pip install paho-mqtt influxdb-client into $venv"
  "$py" -m pip install -q paho-mqtt influxdb-client
fi
# The agent as shipped (agent/shipped/build.sh: profile agent-release, glibc static); the
# load generator is an ordinary build of the same profile.
shipped=$(bash agent/shipped/build.sh -q)
cargo build --profile agent-release -q -p eitwatch-agent --example mqtt_load
agent_bin=${AGENT_BIN:-$shipped}
load_bin=target/agent-release/examples/mqtt_load

rig_name=bench-agent
. agent/shipped/rig.sh
mq=$(free_port); sink=$(free_port)
rig_peers "$mq" "$sink"
rig_agent_config "http://127.0.0.1:$sink" "127.0.0.1:$mq" \
  "$(printf 'batch_max_readings = 5000\nbatch_max_age_ms = 1000')" "${AGENT_TOML:-}"
RUST_LOG=warn setsid "$agent_bin" --config "$work/agent.toml" >"$work/agent.log" 2>&1 & rust_pid=$!; pids+=($rust_pid)
setsid "$py" tests/peers/python_agent.py --broker-port "$mq" --url "http://127.0.0.1:$sink" --token python \
  >"$work/python.log" 2>&1 & python_pid=$!; pids+=($python_pid)
wait_for "both agents' subscriptions" bash -c "grep -q 'python-agent' '$work/mosquitto.log' && grep -q 'eitwatch-agent' '$work/mosquitto.log'"
sleep 1 # the SUBSCRIBE follows the CONNECT; a probe cannot tell it apart without a reading

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
file_kb() { awk '/RssFile/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

published=0
start_ms=1795300000000
results=()
for rate in 1000 10000; do
  r0=$(ticks $rust_pid); p0=$(ticks $python_pid); t0=$(date +%s.%N)
  sent=$("$load_bin" "$mq" "$rate" "$SECONDS_PER_PHASE" "$start_ms" 2>>"$work/load.log")
  published=$((published + sent)); start_ms=$((start_ms + 3600000))
  # Drain: both agents must have delivered everything published so far.
  for _ in $(seq 1 600); do
    rc=$(sink_count "$sink" eitwatch); pc=$(sink_count "$sink" python)
    [ "$rc" -ge "$published" ] && [ "$pc" -ge "$published" ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N); r1=$(ticks $rust_pid); p1=$(ticks $python_pid)
  [ "$rc" -ge "$published" ] || echo "bench-agent: eitwatch-agent delivered $rc of $published readings" >&2
  [ "$pc" -ge "$published" ] || echo "bench-agent: the Python agent delivered $pc of $published readings" >&2
  wall=$(awk "BEGIN {print $t1 - $t0}")
  rust_cpu=$(awk "BEGIN {print ($r1 - $r0) / $hz / $wall * 100}")
  python_cpu=$(awk "BEGIN {print ($p1 - $p0) / $hz / $wall * 100}")
  if [ -n "${BENCH_SMAPS:-}" ]; then # per-mapping memory of both agents at the end of the phase
    mkdir -p "$BENCH_SMAPS"
    cp "/proc/$rust_pid/smaps" "$BENCH_SMAPS/eitwatch-$rate.smaps"
    cp "/proc/$python_pid/smaps" "$BENCH_SMAPS/python-$rate.smaps"
  fi
  results+=("$rate $sent $wall $rust_cpu $(hwm_kb $rust_pid) $(anon_kb $rust_pid) $(file_kb $rust_pid) $(pss_kb $rust_pid) $rc $python_cpu $(hwm_kb $python_pid) $(anon_kb $python_pid) $(file_kb $python_pid) $(pss_kb $python_pid) $pc")
done

echo
echo "eitwatch-agent vs Python (paho-mqtt + influxdb-client), MQTT QoS 1 in, InfluxDB v2 write out"
echo "agent: $agent_bin ${AGENT_TOML:-(defaults)}; machine: $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); other builds may have run meanwhile"
# A link order gone stale (names change with dependencies and toolchain) costs resident code.
listed=$(wc -l <agent/shipped/link-order.txt)
found=$(nm --defined-only "$agent_bin" 2>/dev/null | awk '{print $NF}' | sort -u | comm -12 - <(sort -u agent/shipped/link-order.txt) | wc -l)
echo "link order: $found of $listed listed functions are in the binary (bash agent/shipped/link-order.sh renews the list)"
printf '%-8s %-8s %-7s | %-9s %-7s %-9s %-9s %-8s %-10s | %-9s %-7s %-8s %-8s %-8s %-10s | %-9s %-9s %-9s %-9s\n' \
  rate/s sent wall_s "rust_cpu%" rust_MB rust_anon rust_file rust_pss rust_total "py_cpu%" py_MB py_anon py_file py_pss py_total cpu_ratio rss_ratio anon_ratio pss_ratio
mb() { awk "BEGIN {print $1 / 1024}"; }
for line in "${results[@]}"; do
  read -r rate sent wall rcpu rrss ranon rfile rpss rc pcpu prss panon pfile ppss pc <<<"$line"
  printf '%-8s %-8s %-7.1f | %-9.2f %-7.1f %-9.1f %-9.1f %-8.1f %-10s | %-9.2f %-7.1f %-8.1f %-8.1f %-8.1f %-10s | %-9.1f %-9.1f %-9.1f %-9.1f\n' \
    "$rate" "$sent" "$wall" "$rcpu" "$(mb "$rrss")" "$(mb "$ranon")" "$(mb "$rfile")" "$(mb "$rpss")" "$rc" \
    "$pcpu" "$(mb "$prss")" "$(mb "$panon")" "$(mb "$pfile")" "$(mb "$ppss")" "$pc" \
    "$(awk "BEGIN {print $pcpu / ($rcpu + 0.0001)}")" "$(awk "BEGIN {print $prss / $rrss}")" "$(awk "BEGIN {print $panon / $ranon}")" "$(awk "BEGIN {print $ppss / $rpss}")"
done
echo "(totals: readings each agent delivered to the sink, cumulative; *_MB: peak RSS so far (VmHWM: what issue 3's memory goal compares); *_anon and *_file: RssAnon (heap, stacks) and RssFile (pages of the program's and libraries' files, shared and evictable), MB, at the end of the phase; *_pss: proportional set size at the end of the phase (shared pages divided among the processes mapping them), MB)"
cat "$work/load.log"
