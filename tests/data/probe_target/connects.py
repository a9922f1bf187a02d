"""Connects at import time to PROBE_PORT, then hangs up."""

import os
import socket


def _ping(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):  # <- connect
        pass


_ping(int(os.environ["PROBE_PORT"]))
