"""Writes points to an InfluxDB v2 write endpoint with InfluxData's own Python client
(`influxdb-client` from PyPI), the way a factory's script or gateway would.

Reads a JSON list of points from stdin:
  [{"measurement": "effluent", "tags": {...}, "fields": {"cod": 85.25, "ph": 7}, "time": 1795300000}, ...]
`time` is in --precision units (omitted: the server's receive time). Integers are written
as the client writes Python ints (`7i`), floats as floats.

Modes:
  synchronous  one write_api.write() call with every point; exits 0 on 204.
  batching     the client's batching write_api (background batches, retries); exits 0 when
               every batch was acknowledged, 1 if the error callback fired.
  expect-error one synchronous write that must fail; prints {"status": N, "message": "..."}
               as the client understood the server's error body, and exits 0.
"""

import argparse
import json
import sys

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions
from influxdb_client.rest import ApiException

PRECISIONS = {"ns": WritePrecision.NS, "us": WritePrecision.US, "ms": WritePrecision.MS, "s": WritePrecision.S}


def points(spec, precision):
    out = []
    for p in spec:
        point = Point(p["measurement"])
        for k, v in p.get("tags", {}).items():
            point = point.tag(k, v)
        for k, v in p["fields"].items():
            point = point.field(k, v)
        if "time" in p:
            point = point.time(p["time"], precision)
        out.append(point)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--org", default="eitwatch")
    ap.add_argument("--bucket", default="eitwatch")
    ap.add_argument("--precision", default="ns", choices=sorted(PRECISIONS))
    ap.add_argument("--mode", default="synchronous", choices=["synchronous", "batching", "expect-error"])
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--max-retries", type=int, default=0, help="batching: retries of a 429/503 (honouring Retry-After)")
    args = ap.parse_args()
    precision = PRECISIONS[args.precision]
    records = points(json.load(sys.stdin), precision)

    with InfluxDBClient(url=args.url, token=args.token, org=args.org, enable_gzip=args.gzip) as client:
        if args.mode == "synchronous":
            client.write_api(write_options=SYNCHRONOUS).write(args.bucket, args.org, records, write_precision=precision)
            print(json.dumps({"written": len(records)}))
            return 0
        if args.mode == "expect-error":
            try:
                client.write_api(write_options=SYNCHRONOUS).write(
                    args.bucket, args.org, records, write_precision=precision
                )
            except (ApiException, InfluxDBError) as e:
                status = getattr(e, "status", None) or getattr(getattr(e, "response", None), "status", None)
                message = getattr(e, "message", None) or str(e)
                print(json.dumps({"status": status, "message": message}))
                return 0
            print(json.dumps({"status": 204, "message": "unexpected success"}))
            return 1
        errors = []
        successes = []
        options = WriteOptions(
            batch_size=args.batch_size, flush_interval=200, max_retries=args.max_retries, retry_interval=100
        )
        with client.write_api(
            write_options=options,
            success_callback=lambda conf, data: successes.append(len(data)),
            error_callback=lambda conf, data, e: errors.append(str(e)),
        ) as write_api:
            write_api.write(args.bucket, args.org, records, write_precision=precision)
        # Leaving the block flushes and waits for every batch.
        if errors:
            print(json.dumps({"errors": errors}))
            return 1
        print(json.dumps({"written": len(records), "batches": len(successes)}))
        return 0


if __name__ == "__main__":
    sys.exit(main())
