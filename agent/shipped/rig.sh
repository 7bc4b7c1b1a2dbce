# The agent benchmark's rig, sourced by scripts/bench-agent.sh, agent/shipped/link-order.sh
# and agent/shipped/check-names.sh: one copy, so that the link order is recorded on the
# workload the benchmark measures. mosquitto and tests/peers/http_sink.py on loopback, and
# an agent of 100 points subscribed to `bench/{point}/{parameter}` (JSON, mg/L, epoch ms).
#
# The sourcing script sets `py` (the venv's python) and `rig_name` (for its messages); the
# rig makes `work` (a temporary directory) and `pids`, and removes and kills them at exit.
work=$(mktemp -d)
pids=()
rig_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap rig_cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # what, command…
  local what=$1; shift
  for _ in $(seq 1 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$rig_name: timed out waiting for $what" >&2; exit 1
}

# rig_peers MQTT_PORT SINK_PORT: mosquitto and the sink, started and answering.
rig_peers() {
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 100\nmax_queued_messages 1000000\n' "$1" >"$work/mosquitto.conf"
  setsid /usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
  setsid "$py" tests/peers/http_sink.py --port "$2" >"$work/sink.log" 2>&1 & pids+=($!)
  wait_for mosquitto bash -c "echo >/dev/tcp/127.0.0.1/$1"
  wait_for "the sink" bash -c "echo >/dev/tcp/127.0.0.1/$2"
}

# sink_count SINK_PORT TOKEN: readings the sink has from the writer with that token.
sink_count() {
  "$py" -c "import json,urllib.request;print(json.loads(urllib.request.urlopen('http://127.0.0.1:$1/counts').read()).get('$2',0))"
}

# rig_agent_config UPLINK_URL BROKER [UPLINK_LINES] [MQTT_LINES]: writes $work/agent.toml.
rig_agent_config() {
  {
    printf '[agent]\nfactory = "f1"\ndata_dir = "%s/agent"\n' "$work"
    for i in $(seq 0 99); do printf '[[point]]\nid = "p%s"\nkind = "effluent"\n' "$i"; done
    printf '[uplink]\nurl = "%s"\ntoken = "eitwatch"\n%s\n' "$1" "${3:-}"
    printf '[[mqtt]]\nname = "bench"\nbroker = "%s"\nclient_id = "eitwatch-agent"\nqos = 1\n%s\n' "$2" "${4:-}"
    printf '[[mqtt.subscription]]\ntopic = "bench/{point}/{parameter}"\npayload = "json"\nunit = "mg/L"\ntime_format = "epoch_ms"\n'
  } >"$work/agent.toml"
}
