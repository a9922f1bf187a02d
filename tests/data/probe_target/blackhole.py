"""Connects at import time to PROBE_PORT, where nobody ever answers, with no timeout."""

import os
import socket

_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_sock.connect(("127.0.0.1", int(os.environ["PROBE_PORT"])))  # <- blackhole
