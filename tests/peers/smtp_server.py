"""An SMTP server (aiosmtpd) that keeps every message it receives, for the notification tests.

Usage: smtp_server.py OUT_DIR PORT [--user U --password P] [--cert PEM --key KEY]

Each message's DATA is written whole to OUT_DIR/NNNN.eml (through a temporary name, so a
reader never sees half of one). With --user, AUTH (PLAIN or LOGIN) is required; with --cert,
STARTTLS is offered and required before anything else. Prints "ready PORT" once listening.
"""

import argparse
import os
import signal
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Keep:
    def __init__(self, out):
        self.out = out
        self.count = len([n for n in os.listdir(out) if n.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.out, f"{self.count:04d}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as %04d" % self.count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("port", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    kw = {}
    if a.user:

        def authenticate(server, session, envelope, mechanism, data):
            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == a.user
                and data.password.decode() == a.password
            )
            return AuthResult(success=ok)

        kw.update(authenticator=authenticate, auth_required=True, auth_require_tls=bool(a.cert))
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kw.update(tls_context=ctx, require_starttls=True)
    controller = Controller(Keep(a.out), hostname="127.0.0.1", port=a.port, **kw)
    controller.start()
    print(f"ready {a.port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), os._exit(0)))
    signal.pause()


if __name__ == "__main__":
    main()
