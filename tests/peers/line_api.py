"""A local LINE Messaging API push endpoint for the notification tests.

Usage: line_api.py LOG PORT TOKEN [--too-many N] [--retry-after S]

Checks each `POST /v2/bot/message/push` against the documented shape and answers as LINE
does: 401 without `Authorization: Bearer TOKEN`; 400 for a bad `X-Line-Retry-Key` (not a
UUID) or body (`to` a string; `messages` 1 to 5 objects of `type` "text" with a `text` of 1 to
5000 characters); 409 for a retry key already accepted; the first N requests answered 429
with `Retry-After: S`; else 200 `{"sentMessages": [{"id", "quoteToken"}]}` with an
`X-Line-Request-Id`. Every request is appended to LOG as one JSON line: the time, the status
answered, the problem found (if any), the headers and the body. Prints "ready PORT".
"""

import argparse
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def problem_of(body):
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if not isinstance(body.get("to"), str) or not body["to"]:
        return "to: must be a user, group or room id"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not 1 <= len(msgs) <= 5:
        return "messages: must be 1 to 5 message objects"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("type") != "text":
            return f"messages[{i}].type: must be text"
        t = m.get("text")
        if not isinstance(t, str) or not 1 <= len(t) <= 5000:
            return f"messages[{i}].text: must be 1 to 5000 characters"
    extra = set(body) - {"to", "messages", "notificationDisabled", "customAggregationUnits"}
    if extra:
        return f"unknown properties: {sorted(extra)}"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("port", type=int)
    p.add_argument("token")
    p.add_argument("--too-many", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=1)
    a = p.parse_args()
    lock = threading.Lock()
    state = {"requests": 0, "accepted": {}}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Line-Request-Id", str(uuid.uuid4()))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            key = self.headers.get("X-Line-Retry-Key")
            with lock:
                state["requests"] += 1
                n = state["requests"]
                problem, status, reply, headers = None, 200, None, []
                if self.path != "/v2/bot/message/push":
                    problem, status, reply = f"path {self.path}", 404, {"message": "Not found"}
                elif self.headers.get("Authorization") != f"Bearer {a.token}":
                    problem, status = "authorization", 401
                    reply = {"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}
                elif not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    problem, status, reply = "content-type", 400, {"message": "The request body has 1 error(s)"}
                elif key is not None and not UUID.match(key):
                    problem, status, reply = "retry key", 400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}
                elif (bad := problem_of(body)) is not None:
                    problem, status = bad, 400
                    reply = {"message": "The request body has 1 error(s)", "details": [{"message": bad}]}
                elif key is not None and key in state["accepted"]:
                    status = 409
                    reply = {"message": "The retry key is already accepted", "sentMessages": state["accepted"][key]}
                elif n <= a.too_many:
                    status, reply = 429, {"message": "Too Many Requests"}
                    headers = [("Retry-After", str(a.retry_after))]
                else:
                    sent = [{"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex} for _ in body["messages"]]
                    if key is not None:
                        state["accepted"][key] = sent
                    reply = {"sentMessages": sent}
                with open(a.log, "a") as f:
                    f.write(json.dumps({
                        "at": time.time(),
                        "status": status,
                        "problem": problem,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }, ensure_ascii=False) + "\n")
            self.answer(status, reply, headers)

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"ready {a.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
