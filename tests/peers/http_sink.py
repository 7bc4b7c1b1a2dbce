"""A minimal InfluxDB v2 write endpoint for the agent benchmark: accepts POST /api/v2/write,
answers 204, and counts the lines received per token. GET /counts returns them as JSON.
Its own cost is not measured; it only has to keep up and count.

    python http_sink.py --port N
"""
import argparse
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        token = self.headers.get("Authorization", "").split(" ")[-1]
        # Count readings: one field per reading for both agents' output (wide lines are split).
        n = 0
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                fields = line.split(" ")[1]
                n += sum(1 for f in fields.split(",") if not f.startswith("quality="))
        with lock:
            counts[token] = counts.get(token, 0) + n
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"ready {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
