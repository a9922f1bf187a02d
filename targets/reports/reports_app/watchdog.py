"""A client-side deadline for calls blocked on a socket that has no timeout of its own.

libpq (psycopg) bounds a connect (connect_timeout) and the server bounds a statement
(statement_timeout), but a query on an OPEN connection to a server that stopped answering
waits for ever: nothing on the client side gives up. The watchdog does. A caller arms it with
the socket's file descriptor and a number of seconds; if it is not disarmed by then, the
watchdog shuts the socket down (shutdown(2) on a duplicate of the descriptor), so the blocked
read returns at once with an error, and the caller sees a broken connection instead of a hang.

One daemon thread serves every armed socket; it is started on the first `arm`, never at import.
Before shutting a socket down, the watchdog checks it is still the same connection (its local
and remote addresses), so a descriptor number reused by another socket is never touched.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class _Armed:
    deadline: float
    fd: int
    addresses: tuple[object, object]
    thread: int


_cond = threading.Condition()
_armed: dict[object, _Armed] = {}
_heap: list[tuple[float, int, object]] = []
_order = itertools.count()
_fired_threads: set[int] = set()
_thread: threading.Thread | None = None


def _addresses(fd: int) -> tuple[object, object] | None:
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return sock.getsockname(), sock.getpeername()
    except OSError:
        return None


def arm(key: object, fd: int, seconds: float) -> None:
    """Shut down socket `fd` if `key` is still armed `seconds` from now."""
    global _thread
    addresses = _addresses(fd)
    if addresses is None:
        return
    deadline = time.monotonic() + seconds
    with _cond:
        _armed[key] = _Armed(deadline, fd, addresses, threading.get_ident())
        heapq.heappush(_heap, (deadline, next(_order), key))
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="reports-watchdog", daemon=True)
            _thread.start()
        _cond.notify()


def disarm(key: object) -> None:
    with _cond:
        _armed.pop(key, None)


def fired_for_this_thread() -> bool:
    """Whether the watchdog cut a socket armed by this thread (since the last time asked)."""
    ident = threading.get_ident()
    with _cond:
        if ident in _fired_threads:
            _fired_threads.discard(ident)
            return True
        return False


def _run() -> None:
    while True:
        with _cond:
            now = time.monotonic()
            while _heap and (
                _heap[0][2] not in _armed or _armed[_heap[0][2]].deadline != _heap[0][0]
            ):
                heapq.heappop(_heap)  # disarmed, or armed again later
            if not _heap:
                _cond.wait()
                continue
            deadline, _, key = _heap[0]
            if deadline > now:
                _cond.wait(deadline - now)
                continue
            heapq.heappop(_heap)
            entry = _armed.pop(key)
            if _addresses(entry.fd) == entry.addresses:
                with contextlib.suppress(OSError), socket.socket(fileno=os.dup(entry.fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
                _fired_threads.add(entry.thread)
