"""How many target interpreters may start at once: with claims side by side, a dozen fresh
interpreters importing the target on two cores would slow down the measured calls of the
claims already running (a "fails at once" claim went from 210 ms to 1.15 s). A start holds a
place from its spawn to the end of its import step; the measured step is never held back.

No limit unless `limit(n)` set one (claims one after another need none)."""

from __future__ import annotations

import threading

WAIT_S = 30.0  # a start never waits longer for a place than this: then it goes ahead anyway

_lock = threading.Lock()
_places: threading.BoundedSemaphore | None = None
_holding: dict[int, threading.BoundedSemaphore] = {}  # child pid -> the place it holds


def limit(n: int | None) -> None:
    """At most `n` starts at once from now on; None: no limit."""
    global _places
    with _lock:
        _places = threading.BoundedSemaphore(n) if n else None


def take() -> threading.BoundedSemaphore | None:
    """Wait for a place (up to WAIT_S); the semaphore to give it back to, or None."""
    places = _places
    if places is None or not places.acquire(timeout=WAIT_S):
        return None
    return places


def hold(pid: int, places: threading.BoundedSemaphore | None) -> None:
    """The child `pid` holds the place `take` gave."""
    if places is not None:
        with _lock:
            _holding[pid] = places


def give_back(pid: int) -> None:
    """The child `pid` is done starting (or gone): its place, if it holds one, is free."""
    with _lock:
        places = _holding.pop(pid, None)
    if places is not None:
        places.release()
