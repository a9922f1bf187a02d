"""Locust plugin loaded by signoff next to every locustfile (`-f flow.py,signoff_times.py`).

A local runner (one Locust process) appends every request's exact time to
`$SIGNOFF_LOAD_DIR/times-<pid>.jsonl`: one JSON line `{"t": unix time, "n": name, "m": method,
"ms": response time in ms (a float, as Locust measured it, before its bucket rounding), "ok":
true|false}`. When the test starts it writes `started-<pid>` there (the harness measures the
generator's CPU and the target's memory from then on). While the test runs, a greenlet that
sleeps 0.1 s at a time appends how late it woke (ms) to `lag-<pid>.jsonl` (`{"t": ..., "lag":
...}`): a generator whose event loop wakes late is saturated, even when another process takes
the CPU it would need. Not a locustfile of its own: it defines no User.

In distributed mode (a master and workers, on one machine or many) the workers write nothing:
each sends its request times, loop lags and CPU to the master over Locust's message channel
(`signoff.kinds.load.distributed`: the batch format, and the master's `Receiver`, which writes
them into `times-worker-<n>.jsonl`, `lag-worker-<n>.jsonl` and `cpu-worker-<n>.jsonl` in the
master's `$SIGNOFF_LOAD_DIR`). The master writes its own `started-<pid>` and `lag-<pid>.jsonl`,
and watches its workers: one Locust marks missing (no heartbeat), one that leaves, or one whose
batches stop while the test runs is lost, and named in `reported-<pid>.json`.

The figures count the requests Locust's own stats count. Both come from the same `request`
event, but Locust's `<prefix>_stats.csv` is rewritten by a greenlet once a second and never
after the test stops, so it lacked the last second of requests (a 5 s run: 250 in the CSV, 310
in the exact times and in Locust's own HTML report). When Locust quits, the local runner or the
master rewrites the CSV files (`_stats`, `_failures`, `_exceptions`) from its final stats, with
Locust's own writer. In distributed mode a worker's requests reach the master's stats only in
its reports, and the master stops listening 0.5 s after telling the workers to quit (a worker
finishing a slow request reports later; its last periodic report can be 3 s old). So a worker
told to stop reports at once, and before each report it sends every request time it has not
sent yet, then puts in the report how many it has logged: Locust delivers one worker's messages
in order, so the master has those times before the report. The master writes, per worker, the
count of its last report it received to `reported-<pid>.json`, and the harness counts only
those: what is left out are requests that ended while Locust was stopping its users, after the
run's duration.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

import gevent
import psutil
from locust import events, stats
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from signoff.kinds.load.distributed import (
    BATCH_EVERY,
    MESSAGE,
    SILENT_AFTER,
    Receiver,
    lost_words,
    make_batch,
)

_DIR = os.environ.get("SIGNOFF_LOAD_DIR", "")
_out: IO[str] | None = None
_logged = 0  # requests logged by this process (written to its file, or queued for the master)
_env: Any = None
REPORT_KEY = "signoff_logged"
TICK = 0.1  # seconds between the event loop lag measures
_lag_loop: Any = None
_started_at: float | None = None  # unix time of this process's test_start

# a worker: what it has not sent to the master yet
_pending: list[list[Any]] = []
_pending_lag: list[list[float]] = []
_pending_cpu: list[list[float]] = []
_sent = 0
_sender: Any = None

# the master: the workers' measurements, and its watch on them
_receiver: Receiver | None = None
_watch: Any = None
_stopping = False


def _worker() -> bool:
    return _env is not None and isinstance(_env.runner, WorkerRunner)


def _master() -> bool:
    return _env is not None and isinstance(_env.runner, MasterRunner)


def _file() -> IO[str] | None:
    global _out
    if _out is None and _DIR:
        path = os.path.join(_DIR, f"times-{os.getpid()}.jsonl")
        _out = open(path, "a", buffering=1 << 16)  # noqa: SIM115 (closed at exit)
    return _out


def _flush() -> None:
    if _out is not None and not _out.closed:
        _out.flush()
    if _receiver is not None:
        _receiver.flush()


def _measure_lag() -> None:
    out = None if _worker() else open(os.path.join(_DIR, f"lag-{os.getpid()}.jsonl"), "a")  # noqa: SIM115
    try:
        while True:
            before = time.perf_counter()
            gevent.sleep(TICK)
            late = (time.perf_counter() - before - TICK) * 1000
            row = [round(time.time(), 3), round(late, 2)]
            if out is None:
                _pending_lag.append(row)
            else:
                out.write(json.dumps({"t": row[0], "lag": row[1]}) + "\n")
    finally:
        if out is not None:
            out.close()


# -- a worker: batches to the master ---------------------------------------------------------


def _send_pending() -> None:
    """Send what this worker has not sent yet (one message). Sending may yield to the users'
    greenlets, who may log more meanwhile: `_report_flush` sends until nothing is left."""
    global _pending, _pending_lag, _pending_cpu, _sent
    times, lag, cpu = _pending, _pending_lag, _pending_cpu
    _pending, _pending_lag, _pending_cpu = [], [], []
    _sent += len(times)
    runner = _env.runner
    batch = make_batch(
        pid=os.getpid(),
        host=socket.gethostname(),
        now=time.time(),
        times=times,
        lag=lag,
        cpu=cpu,
        users=int(getattr(runner, "user_count", 0) or 0),
        sent=_sent,
    )
    runner.send_message(MESSAGE, batch)


def _send_loop() -> None:
    me = psutil.Process()
    me.cpu_percent(None)  # the first call only starts the count
    while True:
        gevent.sleep(BATCH_EVERY)
        with contextlib.suppress(psutil.Error):
            _pending_cpu.append([round(time.time(), 3), me.cpu_percent(None)])
        try:
            _send_pending()
        except Exception as exc:  # the connection to the master: Locust reconnects, retry later
            sys.stderr.write(f"signoff: could not send measurements to the master: {exc}\n")


# -- the master: the workers' batches and its watch on them ------------------------------------


def _index(client_id: str) -> int:
    return int(_env.runner.get_worker_index(client_id))


def _on_batch(environment: Any, msg: Any, **_: Any) -> None:
    if _receiver is not None and isinstance(msg.data, dict):
        _receiver.receive(msg.node_id, _index(msg.node_id), msg.data, time.time())


def _watch_workers() -> None:
    """While the test runs: a worker Locust marks missing, one that left the master, or one whose
    batches stopped for SILENT_AFTER is lost (the claim is `error`, naming it)."""
    assert _receiver is not None
    known: set[str] = set()
    while True:
        gevent.sleep(BATCH_EVERY)
        if _stopping:
            return
        clients = {c.id: c.state for c in _env.runner.clients.all}
        for client_id, state in clients.items():
            known.add(client_id)
            if state == STATE_MISSING:
                _lose(client_id, state)
        for client_id in known - set(clients):
            _lose(client_id, None)
        _silent_workers()


def _lose(client_id: str, state: str | None) -> None:
    assert _receiver is not None
    seen = _receiver.worker(client_id, _index(client_id))
    if seen.lost is None:
        now = time.time()
        seen.lost = lost_words(state, now - (_started_at or now))


def _silent_workers() -> None:
    """A worker whose batches stopped for SILENT_AFTER is lost, even before Locust marks it
    missing (that takes a few heartbeats), and as the test stops."""
    if _receiver is None or _started_at is None:
        return
    now = time.time()
    for seen in _receiver.workers.values():
        last = seen.last_seen or _started_at
        if seen.lost is None and now - last > SILENT_AFTER:
            seen.lost = lost_words(None, now - _started_at, silent_from=last - _started_at)


# -- Locust's events ---------------------------------------------------------------------------


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _env, _receiver
    _env = environment
    if _master():
        environment.runner.register_message(MESSAGE, _on_batch)
        if _DIR:
            _receiver = Receiver(Path(_DIR))


@events.test_start.add_listener
def _started(environment: Any, **_: Any) -> None:
    global _lag_loop, _sender, _watch, _started_at, _stopping
    _started_at = time.time()
    _stopping = False
    if _worker():
        if _sender is None:
            _sender = gevent.spawn(_send_loop)
        if _lag_loop is None:
            _lag_loop = gevent.spawn(_measure_lag)
        return
    if _DIR:
        # written aside and renamed: the harness polls for the mark and must never read it empty
        partial = os.path.join(_DIR, f".started-{os.getpid()}.partial")
        with open(partial, "w") as mark:
            mark.write(f"{_started_at}\n")
        os.replace(partial, os.path.join(_DIR, f"started-{os.getpid()}"))
        if _lag_loop is None:
            _lag_loop = gevent.spawn(_measure_lag)
        if _receiver is not None and _watch is None:
            _watch = gevent.spawn(_watch_workers)


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    global _logged
    if _worker():
        _logged += 1
        _pending.append(
            [round(time.time(), 4), name, request_type, response_time, exception is None]
        )
        return
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
    global _lag_loop, _sender
    for loop in (_lag_loop, _sender):
        if loop is not None:
            loop.kill(block=False)
    _lag_loop = _sender = None
    _flush()


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    _flush()


@events.report_to_master.add_listener
def _reporting(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """Before each stats report: every request time not sent yet goes first (Locust delivers
    one worker's messages in order), then the count goes into the report. No request is logged
    between the last send and Locust serializing its stats into this report: the loop ends
    only when a check finds nothing pending, and nothing yields after it."""
    for _attempt in range(100):
        if not (_pending or _pending_lag or _pending_cpu):
            break
        try:
            _send_pending()
        except Exception as exc:
            sys.stderr.write(f"signoff: could not send measurements to the master: {exc}\n")
            break
    data[REPORT_KEY] = {"pid": os.getpid(), "logged": _sent}


@events.test_stopping.add_listener
def _report_now(environment: Any, **_: Any) -> None:
    """A worker told to stop reports at once, before it waits for its users to finish: the
    master gives the workers 0.5 s to report after it tells them to quit, and a worker's last
    periodic report can be 3 s old (a 6 s run lost 20 of its 65 requests that way). The
    master, as it stops, names the workers whose batches had stopped."""
    global _stopping
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # Locust's own report (private: there is no public way to send one); should it fail,
        # the regular one still follows
        with contextlib.suppress(Exception):
            runner._send_stats()
    elif _master():
        _silent_workers()
        _stopping = True


@events.worker_report.add_listener
def _received(client_id: str, data: dict[str, Any], **_: Any) -> None:
    mark = data.get(REPORT_KEY)
    if isinstance(mark, dict) and _receiver is not None:
        _receiver.reported(client_id, _index(client_id), int(mark.get("logged", 0)))


@events.quit.add_listener
def _final(**_: Any) -> None:
    """The local runner or the master, as it exits: Locust's CSV files from its final stats,
    and (master) what it received from each worker; a worker says how much it sent."""
    _flush()
    env = _env
    if env is not None and isinstance(env.runner, WorkerRunner):
        sys.stderr.write(f"signoff: sent {_sent} request times to the master\n")
        return
    if env is None or not _DIR:
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
    if _receiver is not None:
        path = os.path.join(_DIR, f"reported-{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump(_receiver.summary(), out)


atexit.register(_flush)
