"""Load for the agent benchmark: publishes JSON readings at a fixed rate, QoS 1, spread over
100 points x 10 parameters (bench/p<i>/<parameter>), for a duration. Prints the count.

    python bench_publisher.py --port N --rate 1000 --seconds 20
"""
import argparse
import json
import time

import paho.mqtt.client as mqtt

# All in mg/L, so one configured unit serves every parameter.
PARAMETERS = ["cod", "bod", "tss", "tds", "zn", "cu", "cd", "ni", "pb", "mn"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--start-ms", type=int, required=True, help="timestamp of the first reading")
    args = parser.parse_args()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{args.start_ms}")
    client.max_inflight_messages_set(10000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    tick = 0.01
    per_tick = args.rate * tick
    sent = 0
    start = time.monotonic()
    due = 0.0
    while time.monotonic() - start < args.seconds:
        due += per_tick
        while sent < int(due):
            i = sent
            point, parameter = f"p{i % 100}", PARAMETERS[(i // 100) % 10]
            # Distinct times per series: one reading per series per (i // 1000) step of 1 ms.
            t = args.start_ms + i // 1000
            payload = json.dumps({"value": 7.0 + (i % 7) * 0.5, "time": t})
            client.publish(f"bench/{point}/{parameter}", payload, qos=1)
            sent += 1
        time.sleep(max(0.0, start + (sent / args.rate) - time.monotonic()))
    # Wait until every QoS 1 publish is acknowledged by the broker.
    while len(client._out_messages) > 0 and time.monotonic() - start < args.seconds + 60:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    print(sent, flush=True)


if __name__ == "__main__":
    main()
