#!/usr/bin/env bash
# Proves that an agent binary resolves host names: through /etc/hosts (`localhost`) and
# through DNS (a name only agent/shipped/dns_peer.py knows). The shipped agent links glibc
# statically (agent/shipped/build.sh), and a static glibc resolves with its built-in
# "files" and "dns" sources only; this runs it against both.
#
# In a private network and mount namespace (unshare, as root): its own loopback, and its own
# /etc/resolv.conf (bind-mounted, naming the DNS peer on 127.0.0.1:53) that nothing outside
# sees. In it: mosquitto, the DNS peer, tests/peers/http_sink.py; the agent subscribes to
# broker.eitwatch.test (DNS) and delivers to http://localhost (files); READINGS QoS 1
# messages must reach the sink, and the DNS peer must have been asked.
#
#   bash agent/shipped/check-names.sh [AGENT_BIN]   (default: the shipped build)
set -euo pipefail
cd "$(dirname "$0")/../.."
agent_bin=${1:-target/x86_64-unknown-linux-gnu/agent-release/eitwatch-agent}
readings=200
if [ "${CHECK_NAMES_INSIDE:-}" != 1 ]; then
  [ -x "$agent_bin" ] || { echo "check-names: no $agent_bin (bash agent/shipped/build.sh)" >&2; exit 1; }
  command -v ip >/dev/null || { echo "check-names: needs ip (apt-get install iproute2)" >&2; exit 1; }
  bash scripts/install-peers.sh >/dev/null
  cargo build --profile agent-release -q -p eitwatch-agent --example mqtt_load
  exec env CHECK_NAMES_INSIDE=1 unshare --mount --net bash "$0" "$agent_bin"
fi

py=.peers/venv/bin/python
rig_name=check-names
. agent/shipped/rig.sh
ip link set lo up
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf
setsid "$py" agent/shipped/dns_peer.py --port 53 --log "$work/dns.log" >"$work/dns.out" 2>&1 & pids+=($!)
mq=18830; sink=18086 # a namespace of our own: no other process has ports here
rig_peers "$mq" "$sink"
rig_agent_config "http://localhost:$sink" "broker.eitwatch.test:$mq" 'batch_max_age_ms = 200'
RUST_LOG=info setsid "$agent_bin" --config "$work/agent.toml" >"$work/agent.log" 2>&1 & pids+=($!)
wait_for "the agent's subscription (via DNS)" grep -q 'as eitwatch-agent' "$work/mosquitto.log"
sleep 1 # the SUBSCRIBE follows the CONNECT
target/agent-release/examples/mqtt_load "$mq" "$readings" 1 1795300000000 >/dev/null 2>>"$work/load.log"
count() { sink_count "$sink" eitwatch; }
for _ in $(seq 1 300); do [ "$(count)" -ge "$readings" ] && break; sleep 0.1; done
got=$(count)
asked=$(grep -c '^broker.eitwatch.test type 1$' "$work/dns.log" || true)
if [ "$got" -eq "$readings" ] && [ "$asked" -ge 1 ]; then
  echo "check-names: ok: $agent_bin reached broker.eitwatch.test through DNS ($asked A queries) and delivered $got of $readings readings to localhost (/etc/hosts)"
else
  echo "check-names: FAILED: $got of $readings readings delivered, $asked DNS queries for the broker" >&2
  tail -5 "$work/agent.log" >&2
  exit 1
fi
