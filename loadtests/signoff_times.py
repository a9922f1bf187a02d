"""Locust plugin loaded by signoff next to every locustfile (`-f flow.py,signoff_times.py`).

Each Locust process (the local runner, or each worker) appends every request's exact time to
`$SIGNOFF_LOAD_DIR/times-<pid>.jsonl`: one JSON line `{"t": unix time, "n": name, "m": method,
"ms": response time in ms (a float, as Locust measured it, before its bucket rounding), "ok":
true|false}`. When the test starts it writes `started-<pid>` there (the harness measures the
generator's CPU and the target's memory from then on). While the test runs, a greenlet that
sleeps 0.1 s at a time appends how late it woke (ms) to `lag-<pid>.jsonl` (`{"t": ..., "lag":
...}`): a generator whose event loop wakes late is saturated, even when another process takes
the CPU it would need. Not a locustfile of its own: it defines no User.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import IO, Any

import gevent
from locust import events

_DIR = os.environ.get("SIGNOFF_LOAD_DIR", "")
_out: IO[str] | None = None


def _file() -> IO[str] | None:
    global _out
    if _out is None and _DIR:
        path = os.path.join(_DIR, f"times-{os.getpid()}.jsonl")
        _out = open(path, "a", buffering=1 << 16)  # noqa: SIM115 (closed at exit)
    return _out


def _flush() -> None:
    if _out is not None and not _out.closed:
        _out.flush()


TICK = 0.1  # seconds between the event loop lag measures
_lag_loop: Any = None


def _measure_lag() -> None:
    with open(os.path.join(_DIR, f"lag-{os.getpid()}.jsonl"), "a", buffering=1 << 12) as out:
        while True:
            before = time.perf_counter()
            gevent.sleep(TICK)
            late = (time.perf_counter() - before - TICK) * 1000
            out.write(json.dumps({"t": round(time.time(), 3), "lag": round(late, 2)}) + "\n")


@events.test_start.add_listener
def _started(environment: Any, **_: Any) -> None:
    global _lag_loop
    if _DIR:
        with open(os.path.join(_DIR, f"started-{os.getpid()}"), "w") as mark:
            mark.write(f"{time.time()}\n")
        if _lag_loop is None:
            _lag_loop = gevent.spawn(_measure_lag)


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    out = _file()
    if out is not None:
        line = {
            "t": round(time.time(), 4),
            "n": name,
            "m": request_type,
            "ms": response_time,
            "ok": exception is None,
        }
        out.write(json.dumps(line) + "\n")


@events.test_stop.add_listener
def _stopped(environment: Any, **_: Any) -> None:
    global _lag_loop
    if _lag_loop is not None:
        _lag_loop.kill(block=False)
        _lag_loop = None
    _flush()


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    _flush()


atexit.register(_flush)
