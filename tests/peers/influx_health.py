"""Asks a server its health and readiness with InfluxData's own Python client
(`influxdb-client` from PyPI), as monitoring scripts written for InfluxDB 2 do.

Prints one JSON object: {"health": {name, status, message, version, commit, checks},
"ready": {status, started, up}, "ping": bool, "version": "…"} as the client understood
the answers (`started` in ISO 8601). `health()` turns any failure into status "fail" with
the error as its message; `ready()` raises on a 404.
"""

import argparse
import json
import warnings

from influxdb_client import InfluxDBClient

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
args = parser.parse_args()

warnings.simplefilter("ignore", DeprecationWarning)
with InfluxDBClient(url=args.url, token="none", org="eitwatch") as client:
    health = client.health()
    ready = client.ready()
    print(
        json.dumps(
            {
                "health": {
                    "name": health.name,
                    "status": health.status,
                    "message": health.message,
                    "version": health.version,
                    "commit": health.commit,
                    "checks": [c.to_dict() for c in health.checks or []],
                },
                "ready": {
                    "status": ready.status,
                    "started": ready.started.isoformat() if ready.started else None,
                    "up": ready.up,
                },
                "ping": client.ping(),
                "version": client.version(),
            }
        )
    )
