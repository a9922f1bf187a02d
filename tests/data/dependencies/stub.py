"""A stand-in for an HTTP dependency of a target (a TTS engine, say), for the tests of
tests/test_dependencies.py: `python stub.py --port PORT [--mode ok|crash|unready]`.

ok: GET /health answers 200; GET /env/NAME answers the value of $NAME in this process (so a
test can see the environment signoff gave it); any other GET answers "hello from the stub".
crash: writes why to stderr and exits 3 at once. unready: listens, but /health answers 503.
"""

from __future__ import annotations

import argparse
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    unready = False

    def do_GET(self) -> None:
        if self.path == "/health":
            status, body = (503, "starting") if self.unready else (200, "ok")
        elif self.path.startswith("/env/"):
            status, body = 200, os.environ.get(self.path.removeprefix("/env/"), "")
        else:
            status, body = 200, "hello from the stub"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"stub: {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("ok", "crash", "unready"), default="ok")
    args = parser.parse_args()
    if args.mode == "crash":
        print("stub: cannot load the voices: voices.json is missing", file=sys.stderr)
        raise SystemExit(3)
    Handler.unready = args.mode == "unready"
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"stub: listening on 127.0.0.1:{args.port} in {os.getcwd()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
