"""A background process: writes its pid and REDIS_URL to $HTTP_TARGET_WORKER_FILE (when set),
then waits to be stopped; with --poll-redis it PINGs redis every 50 ms meanwhile, on one
connection (reconnecting when it fails), as a worker polling its broker does."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from httpapp.checks import TIMEOUT, redis_address

POLL_EVERY = 0.05


def main() -> None:
    path = os.environ.get("HTTP_TARGET_WORKER_FILE")
    if path:
        with open(path + ".tmp", "w") as out:
            out.write(f"{os.getpid()} {os.environ.get('REDIS_URL', '')}\n")
        os.replace(path + ".tmp", path)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if "--poll-redis" in sys.argv[1:]:
        poll_redis()
    while True:
        time.sleep(1)


def poll_redis() -> None:
    while True:
        try:
            with socket.create_connection(redis_address(), timeout=TIMEOUT) as sock:
                while True:
                    sock.sendall(b"PING\r\n")
                    if not sock.recv(64).startswith(b"+PONG"):
                        break
                    time.sleep(POLL_EVERY)
        except OSError:
            time.sleep(POLL_EVERY)


if __name__ == "__main__":
    main()
