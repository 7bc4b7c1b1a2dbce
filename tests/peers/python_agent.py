"""The usual integrator's agent, for the benchmark: paho-mqtt subscribes, influxdb-client
writes batches to an InfluxDB v2 write API. It does the same job as eitwatch-agent on the
benchmark's load: JSON {"value", "time" (epoch ms)} on bench/<point>/<parameter>, QoS 1,
to line protocol effluent,factory=…,point=… <parameter>=<value> <time>.

    python python_agent.py --broker-port N --url http://127.0.0.1:M --token T
"""
import argparse
import json
import signal
import sys

import paho.mqtt.client as mqtt
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import WriteOptions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker-port", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--factory", default="f1")
    args = parser.parse_args()

    influx = InfluxDBClient(url=args.url, token=args.token, org="eitwatch")
    write = influx.write_api(write_options=WriteOptions(batch_size=5000, flush_interval=1000))

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe("bench/+/+", qos=1)

    def on_message(client, userdata, message):
        try:
            _, point, parameter = message.topic.split("/")
            body = json.loads(message.payload)
            p = (Point("effluent").tag("factory", args.factory).tag("point", point)
                 .field(parameter, float(body["value"])).time(int(body["time"]), WritePrecision.MS))
            write.write(bucket="eitwatch", record=p)
        except (ValueError, KeyError) as e:
            print(f"malformed on {message.topic}: {e}", file=sys.stderr)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="python-agent", clean_session=False)
    client.on_connect = on_connect
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", args.broker_port)

    def stop(*_):
        client.disconnect()
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    client.loop_forever()
    write.close()
    influx.close()


if __name__ == "__main__":
    main()
