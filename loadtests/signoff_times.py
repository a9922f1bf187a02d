"""Locust plugin loaded by signoff next to every locustfile (`-f flow.py,signoff_times.py`).

Each Locust process (the local runner, or each worker) appends every request's exact time to
`$SIGNOFF_LOAD_DIR/times-<pid>.jsonl`: one JSON line `{"t": unix time, "n": name, "m": method,
"ms": response time in ms (a float, as Locust measured it, before its bucket rounding), "ok":
true|false}`. When the test starts it writes `started-<pid>` there (the harness measures the
generator's CPU and the target's memory from then on). While the test runs, a greenlet that
sleeps 0.1 s at a time appends how late it woke (ms) to `lag-<pid>.jsonl` (`{"t": ..., "lag":
...}`): a generator whose event loop wakes late is saturated, even when another process takes
the CPU it would need. Not a locustfile of its own: it defines no User.

The figures count the requests Locust's own stats count. Both come from the same `request`
event, but Locust's `<prefix>_stats.csv` is rewritten by a greenlet once a second and never
after the test stops, so it lacked the last second of requests (a 5 s run: 250 in the CSV, 310
in the exact times and in Locust's own HTML report). When Locust quits, the local runner or the
master rewrites the CSV files (`_stats`, `_failures`, `_exceptions`) from its final stats, with
Locust's own writer. In distributed mode a worker's requests reach the master's stats only in
its reports, and the master stops listening 0.5 s after telling the workers to quit (a worker
finishing a slow request reports later; its last periodic report can be 3 s old). So a worker
told to stop reports at once, and each report carries how many requests the worker had logged
by then; the master writes the last count it received from each worker to `reported-<pid>.json`
(`{"workers": {"<worker pid>": count}}`), and the harness counts only those: what is left out
are requests that ended while Locust was stopping its users, after the run's duration.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import json
import os
import time
from typing import IO, Any

import gevent
from locust import events, stats
from locust.runners import WorkerRunner

_DIR = os.environ.get("SIGNOFF_LOAD_DIR", "")
_out: IO[str] | None = None
_logged = 0  # requests written to this process's times file
_reported: dict[str, int] = {}  # master: worker pid -> requests it had logged by its last report
_env: Any = None
REPORT_KEY = "signoff_logged"


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
    global _logged
    out = _file()
    if out is not None:
        _logged += 1
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


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _env
    _env = environment


@events.report_to_master.add_listener
def _reporting(client_id: str, data: dict[str, Any], **_: Any) -> None:
    # listeners run one after the other without yielding: no request is logged between this
    # count and Locust's serializing of the same stats into this report
    data[REPORT_KEY] = {"pid": os.getpid(), "logged": _logged}


@events.test_stopping.add_listener
def _report_now(environment: Any, **_: Any) -> None:
    """A worker told to stop reports at once, before it waits for its users to finish: the
    master gives the workers 0.5 s to report after it tells them to quit, and a worker's last
    periodic report can be 3 s old (a 6 s run lost 20 of its 65 requests that way)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # Locust's own report (private: there is no public way to send one); should it fail,
        # the regular one still follows
        with contextlib.suppress(Exception):
            runner._send_stats()


@events.worker_report.add_listener
def _received(client_id: str, data: dict[str, Any], **_: Any) -> None:
    mark = data.get(REPORT_KEY)
    if isinstance(mark, dict):
        pid = str(mark.get("pid"))
        _reported[pid] = max(_reported.get(pid, 0), int(mark.get("logged", 0)))


@events.quit.add_listener
def _final(**_: Any) -> None:
    """The local runner or the master, as it exits: Locust's CSV files from its final stats,
    and (master) the workers' last counts it received."""
    _flush()
    env = _env
    if env is None or not _DIR or isinstance(env.runner, WorkerRunner):
        return
    prefix = getattr(env.parsed_options, "csv_prefix", None)
    if prefix:
        writer = stats.StatsCSV(env, stats.PERCENTILES_TO_REPORT)
        for suffix, write in (
            ("_stats.csv", writer.requests_csv),
            ("_failures.csv", writer.failures_csv),
            ("_exceptions.csv", writer.exceptions_csv),
        ):
            with open(f"{prefix}{suffix}", "w") as out:  # as Locust opens it
                write(csv.writer(out))
    if getattr(env.parsed_options, "master", False):
        path = os.path.join(_DIR, f"reported-{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump({"workers": _reported}, out)


atexit.register(_flush)
