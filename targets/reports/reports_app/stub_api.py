"""A stand-in for the external API the fetch jobs call, standard library only, on 127.0.0.1.

The worker starts one in a daemon thread on a free loopback port the first time a fetch job
needs it (unless REPORTS_EXTERNAL_API_URL names another). `python -m reports_app.stub_api
--port N` serves it on its own. Routes (GET):

- /rates: exchange rates as JSON;
- /slow?seconds=S: the same after S seconds (at most 30), to exercise the timeout;
- /flaky?key=K&fail=N: 503 for the first N calls with this key, then 200, to exercise retries;
- /status/CODE: that status with a JSON body;
- anything else: 404.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
MAX_SLOW_S = 30.0

_flaky_calls: dict[str, int] = {}
_flaky_lock = threading.Lock()
_server: StubServer | None = None
_server_lock = threading.Lock()

RATES = {"USD": 1.0842, "GBP": 0.8571, "JPY": 162.37, "CHF": 0.9531, "SEK": 11.482}


class Handler(BaseHTTPRequestHandler):
    server_version = "reports-stub-api/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        if path == "/rates":
            self._answer(200, {"base": query.get("base", "EUR"), "rates": RATES})
        elif path == "/slow":
            try:
                seconds = min(MAX_SLOW_S, max(0.0, float(query.get("seconds", "1"))))
            except ValueError:
                self._answer(400, {"error": "seconds must be a number"})
                return
            time.sleep(seconds)
            self._answer(200, {"slept_s": seconds, "rates": RATES})
        elif path == "/flaky":
            key = query.get("key", "")
            try:
                fail = int(query.get("fail", "1"))
            except ValueError:
                self._answer(400, {"error": "fail must be a whole number"})
                return
            with _flaky_lock:
                calls = _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
            if calls <= fail:
                self._answer(503, {"error": "try again", "call": calls})
            else:
                self._answer(200, {"call": calls, "rates": RATES})
        elif path.startswith("/status/") and path[len("/status/") :].isdigit():
            code = int(path[len("/status/") :])
            self._answer(code if 200 <= code <= 599 else 400, {"status": code})
        else:
            self._answer(404, {"error": f"no route {path}"})


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (its timeout) before the answer: not the stub's problem
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(port: int = 0) -> StubServer:
    return StubServer((LOOPBACK, port), Handler)


def ensure_started() -> str:
    """Serve the stub in a daemon thread of this process (once); its base URL."""
    global _server
    with _server_lock:
        if _server is None:
            server = make_server(0)
            thread = threading.Thread(
                target=server.serve_forever, name="reports-stub-api", daemon=True
            )
            thread.start()
            _server = server
        return f"http://{LOOPBACK}:{_server.server_address[1]}"


def stop() -> None:
    global _server
    with _server_lock:
        if _server is not None:
            _server.shutdown()
            _server.server_close()
            _server = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = make_server(args.port)
    print(f"stub API on http://{LOOPBACK}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
