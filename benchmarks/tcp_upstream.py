"""A loopback TCP upstream for the fault proxy's benchmarks, in a process of its own (so its
threads do not share the benchmark's GIL with the proxy hub). Standard library only.

    python tcp_upstream.py      # prints its port on one line, then serves until killed

A connection's first byte picks what it gets: b"e" an echo (every byte sent comes back),
b"s" a source (each line "N\\n" is answered with N zero bytes)."""

from __future__ import annotations

import socket
import socketserver

CHUNK = 1 << 16
ZEROS = bytes(CHUNK)


class Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = sock.recv(1)
        if mode == b"e":
            while data := sock.recv(CHUNK):
                sock.sendall(data)
        elif mode == b"s":
            with sock.makefile("rb") as lines:
                for line in lines:
                    left = int(line)
                    while left > 0:
                        sent = sock.send(ZEROS[: min(left, CHUNK)])
                        left -= sent


def main() -> None:
    with Upstream(("127.0.0.1", 0), Handler) as server:
        print(server.server_address[1], flush=True)
        server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
