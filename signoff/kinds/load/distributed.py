"""Distributed [[load]]: what Locust workers send their master, and what the harness reads back.

Every worker (local, or `signoff worker` on another machine) sends its measurements to the master
over Locust's own message channel (`runner.send_message(MESSAGE, batch)`), never through a shared
disk: every request's exact time (raw, not a histogram: the merge has no error at all), its event
loop lag and its own CPU, about every 0.5 s and once more before each of its stats reports. The
master (loadtests/signoff_times.py, with a `Receiver`) writes them into the files the harness
already reads for local runs, one set per worker: `times-worker-<n>.jsonl`, `lag-worker-<n>.jsonl`
and `cpu-worker-<n>.jsonl` (and `users-worker-<n>.jsonl`: the users it had running as it sent
each batch, which the concurrency goal reads: Locust's master hears of its workers' users only
in their stats reports, every 3 s, so its stats history showed a short claim's users seconds
late), and as it quits `reported-<pid>.json`: how many requests each worker's
last stats report that reached the master covered (the harness counts only those, as Locust's
stats do), how many it received, who each worker was and which workers were lost mid-run.

Locust delivers one worker's messages in order (one ZeroMQ connection), so every request a stats
report counts arrived before that report. Times are re-stamped on the master's clock: each batch
carries the worker's clock when it was sent, and the smallest difference seen (master clock at
receipt minus worker clock at sending: the clocks' offset plus the quickest delivery) so far is
taken off the times of each batch as it arrives (they serve the plots and the lag's window;
milliseconds of delivery do not matter there, and the percentiles do not use them).

Pure functions and plain files: imported by the plugin inside Locust processes and by the
harness (which never imports Locust), so nothing here imports Locust or gevent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from signoff.kinds.load.stats import Generator, Sample, Users, generator_load, users_from_counts
from signoff.locust_files import tail_lines

MESSAGE = "signoff_times"  # the custom message type: a worker's batch of measurements
BATCH_EVERY = 0.5  # seconds between a worker's batches
SILENT_AFTER = 3.0  # seconds without a batch while the test runs: the worker is lost
WORKER_PREFIX = "worker-"


def worker_label(index: int) -> str:
    """The name of the worker Locust numbers `index` (0-based, in the order they connected):
    the stem of its files (times-worker-1.jsonl) and its name in the evidence."""
    return f"{WORKER_PREFIX}{index + 1}"


def make_batch(
    *,
    pid: int,
    host: str,
    now: float,
    times: Sequence[Sequence[Any]],
    lag: Sequence[Sequence[float]],
    cpu: Sequence[Sequence[float]],
    users: int,
    sent: int,
) -> dict[str, Any]:
    """One worker batch: rows as short lists (they go through msgpack): times [t, name, method,
    ms, ok], lag [t, ms late], cpu [t, percent of a core]; `sent`: the request times this
    worker has sent, this batch's included."""
    return {
        "pid": pid,
        "host": host,
        "now": now,
        "times": [list(r) for r in times],
        "lag": [list(r) for r in lag],
        "cpu": [list(r) for r in cpu],
        "users": users,
        "sent": sent,
    }


@dataclass
class WorkerSeen:
    """What the master knows of one worker."""

    label: str
    client_id: str
    host: str = ""
    pid: int = 0
    offset: float | None = None  # master clock minus worker clock (the smallest seen)
    received: int = 0  # request times received
    sent: int = 0  # what the worker said it had sent, by its last batch
    reported: int = 0  # request times its last stats report covered
    users_peak: int = 0
    last_seen: float = 0.0  # master clock of its last batch
    lost: str | None = None  # how it was lost mid-run, as evidence words

    def words(self) -> str:
        """ "worker-2 (host h1, pid 4711)": how the evidence names a worker."""
        parts = [f"host {self.host}" if self.host else "", f"pid {self.pid}" if self.pid else ""]
        who = ", ".join(p for p in parts if p)
        return f"{self.label} ({who})" if who else self.label


class Receiver:
    """The master's side: writes each worker's batches into its files in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.workers: dict[str, WorkerSeen] = {}  # by client id
        self._files: dict[tuple[str, str], IO[str]] = {}
        self._names: dict[str, str] = {}  # request names and methods, JSON-encoded

    def worker(self, client_id: str, index: int) -> WorkerSeen:
        seen = self.workers.get(client_id)
        if seen is None:
            seen = self.workers[client_id] = WorkerSeen(worker_label(index), client_id)
        return seen

    def _out(self, label: str, kind: str) -> IO[str]:
        out = self._files.get((label, kind))
        if out is None:
            path = self.folder / f"{kind}-{label}.jsonl"
            out = self._files[(label, kind)] = open(path, "a", buffering=1 << 16)  # noqa: SIM115
        return out

    def receive(self, client_id: str, index: int, batch: dict[str, Any], now: float) -> WorkerSeen:
        """Write one batch (`now`: the master's clock as it arrived)."""
        seen = self.worker(client_id, index)
        seen.host = str(batch.get("host", seen.host))
        seen.pid = int(batch.get("pid", seen.pid) or 0)
        offset = now - float(batch.get("now", now))
        seen.offset = offset if seen.offset is None else min(seen.offset, offset)
        shift = seen.offset
        seen.last_seen = now
        users = int(batch.get("users", 0) or 0)
        seen.users_peak = max(seen.users_peak, users)
        sent_at = round(float(batch.get("now", now)) + shift, 3)
        self._out(seen.label, "users").write(json.dumps({"t": sent_at, "users": users}) + "\n")
        seen.sent = max(seen.sent, int(batch.get("sent", 0) or 0))
        rows = batch.get("times") or []
        if rows:
            out = self._out(seen.label, "times")
            out.write("".join(self._line(row, shift) for row in rows))
            seen.received += len(rows)
        for kind, key in (("lag", "lag"), ("cpu", "cpu")):
            values = batch.get(key) or []
            if values:
                out = self._out(seen.label, kind)
                for t, value in values:
                    out.write(json.dumps({"t": round(t + shift, 3), key: value}) + "\n")
        return seen

    def _line(self, row: Sequence[Any], shift: float) -> str:
        """One times line, as json.dumps would write it, faster: the master writes every
        request of every worker (measured: 7.4 us a request with json.dumps of a dict, 1.4 us
        this way; at 100,000 requests a second, 0.14 s of the master's second, not 0.74)."""
        t, name, method, ms, ok = row
        names = self._names
        n = names.get(name)
        if n is None:
            n = names[name] = json.dumps(name)
        m = names.get(method)
        if m is None:
            m = names[method] = json.dumps(method)
        ms_text = repr(ms) if type(ms) is float and math.isfinite(ms) else json.dumps(ms)
        ok_text = "true" if ok else "false"
        at = repr(round(t + shift, 4))
        return f'{{"t": {at}, "n": {n}, "m": {m}, "ms": {ms_text}, "ok": {ok_text}}}\n'

    def reported(self, client_id: str, index: int, logged: int) -> None:
        """A stats report of this worker reached the master, covering its first `logged`."""
        seen = self.worker(client_id, index)
        seen.reported = max(seen.reported, logged)

    def flush(self) -> None:
        for out in self._files.values():
            if not out.closed:
                out.flush()

    def summary(self) -> dict[str, Any]:
        """reported-<pid>.json: `workers` (label -> requests covered by its reports: what
        stats.read_times counts) and `seen` (label -> what else the master knows of it)."""
        self.flush()
        return {
            "workers": {w.label: w.reported for w in self.workers.values()},
            "seen": {
                w.label: {
                    "client_id": w.client_id,
                    "host": w.host,
                    "pid": w.pid,
                    "received": w.received,
                    "sent": w.sent,
                    "users_peak": w.users_peak,
                    "clock_offset_s": None if w.offset is None else round(w.offset, 4),
                    "lost": w.lost,
                }
                for w in self.workers.values()
            },
        }


def lost_words(state: str | None, since_start: float, silent_from: float | None = None) -> str:
    """Why a worker is lost, as evidence: Locust marked it missing (its heartbeats stopped), it
    left the master (quit), or its batches stopped (`silent_from`: its last one, in seconds
    into the test; `since_start`: now)."""
    at = f"{since_start:.1f} s into the test"
    if state == "missing":
        return f"stopped sending heartbeats: Locust marked it missing {at}"
    if silent_from is not None:
        return (
            f"sent no measurement after {max(0.0, silent_from):.1f} s into the test (none "
            f"for {since_start - silent_from:.1f} s)"
        )
    return f"left the master {at}"


# -- the harness's side ---------------------------------------------------------------------


@dataclass
class WorkerFigures:
    """One worker of a finished run, from the master's reported-<pid>.json and its files."""

    label: str
    host: str = ""
    pid: int = 0
    received: int = 0
    sent: int = 0
    reported: int = 0
    users_peak: int = 0
    lost: str | None = None
    load: Generator = field(default_factory=Generator)

    def words(self) -> str:
        return WorkerSeen(self.label, "", self.host, self.pid).words()


def read_workers(folder: Path, start: float | None, end: float | None) -> list[WorkerFigures]:
    """The workers a distributed run's master heard from (none in a local run), each with its
    generator load (CPU and loop lag it measured itself) between `start` and `end`."""
    doc: dict[str, Any] = {}
    for path in sorted(folder.glob("reported-*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        break
    workers: list[WorkerFigures] = []
    seen = doc.get("seen") if isinstance(doc.get("seen"), dict) else {}
    reported = doc.get("workers") if isinstance(doc.get("workers"), dict) else {}
    assert isinstance(seen, dict) and isinstance(reported, dict)
    for label in sorted(set(seen) | set(reported), key=_label_order):
        info = seen.get(label) or {}
        figures = WorkerFigures(
            label,
            host=str(info.get("host", "")),
            pid=int(info.get("pid", 0) or 0),
            received=int(info.get("received", 0) or 0),
            sent=int(info.get("sent", 0) or 0),
            reported=int(reported.get(label, 0) or 0),
            users_peak=int(info.get("users_peak", 0) or 0),
            lost=info.get("lost") or None,
        )
        if start is not None and end is not None:
            cpu = _rows(folder / f"cpu-{label}.jsonl", "cpu", start, end)
            lag = [v for _, v in _rows(folder / f"lag-{label}.jsonl", "lag", start, end)]
            figures.load = worker_load(cpu, lag)
        workers.append(figures)
    return workers


def read_users(folder: Path) -> dict[str, list[tuple[float, int]]]:
    """Each worker's users running as it sent each batch (users-worker-<n>.jsonl: master's
    clock, time order), by worker label; empty for a local run."""
    counts: dict[str, list[tuple[float, int]]] = {}
    for path in sorted(folder.glob(f"users-{WORKER_PREFIX}*.jsonl")):
        rows = _rows(path, "users", -math.inf, math.inf)
        counts[path.stem.removeprefix("users-")] = [(t, int(n)) for t, n in sorted(rows)]
    return counts


def merged_users(
    counts: Mapping[str, Sequence[tuple[float, int]]], silent_after: float = SILENT_AFTER
) -> list[tuple[float, int]]:
    """The users running across all workers over time: each worker's latest count (a step
    function), added up at every time one of them changes. A worker's count lasts until its next
    batch, or `silent_after` if none came by then: a worker that went silent is lost, and its
    users with it (counting them would hold a goal no one held)."""
    changes: list[tuple[float, str, int]] = []
    for label, rows in counts.items():
        for i, (t, users) in enumerate(rows):
            changes.append((t, label, users))
            after = rows[i + 1][0] if i + 1 < len(rows) else math.inf
            if after - t > silent_after:
                changes.append((t + silent_after, label, 0))
    changes.sort(key=lambda c: c[0])
    latest: dict[str, int] = {}
    merged: list[tuple[float, int]] = []
    for i, (t, label, users) in enumerate(changes):
        latest[label] = users
        if i + 1 < len(changes) and changes[i + 1][0] == t:
            continue  # several workers at the same time: one point, once all are in
        merged.append((t, sum(latest.values())))
    return merged


USERS_TAIL_BYTES = 4096  # a users line is some 30 bytes: the last minute of batches


def users_now(folder: Path, now: float, silent_after: float = SILENT_AFTER) -> int | None:
    """The users running across all workers at `now` (the master's clock), for the live
    display, by merged_users' rule at one time: each worker's latest count, unless it has been
    silent for `silent_after`. It reads only the files' last lines: it runs every half second
    beside the load, and whole files grow with the run. None before any worker sent a count."""
    total, seen = 0, False
    for path in folder.glob(f"users-{WORKER_PREFIX}*.jsonl"):
        rows = []
        for line in tail_lines(path, USERS_TAIL_BYTES) or []:
            try:
                row = json.loads(line)
                rows.append((float(row["t"]), int(row["users"])))
            except (ValueError, KeyError, TypeError):
                continue  # a line still being written
        latest = max((r for r in rows if r[0] <= now), default=None)
        if latest is not None:
            seen = True
            total += latest[1] if now - latest[0] < silent_after else 0
    return total if seen else None


def workers_users(
    folder: Path, wanted: int, duration: float, start: float, stop_margin: float = 2.0
) -> Users | None:
    """The concurrency goal from the workers' own counts, measured from the test's `start`
    (the master's clock), with users_from_history's rules; None when no worker sent a count."""
    merged = merged_users(read_users(folder))
    if not merged:
        return None
    return users_from_counts(merged, wanted, duration, start, stop_margin, source="workers")


def _label_order(label: str) -> tuple[int, str]:
    found = re.fullmatch(rf"{WORKER_PREFIX}(\d+)", label)
    return (int(found.group(1)) if found else 1 << 30, label)


def _rows(path: Path, key: str, start: float, end: float) -> list[tuple[float, float]]:
    rows: list[tuple[float, float]] = []
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
                t = float(row["t"])
                if start <= t <= end:
                    rows.append((t, float(row[key])))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed master
    return rows


def worker_load(cpu: Iterable[tuple[float, float]], lags: Sequence[float]) -> Generator:
    """A worker's generator load from what it measured itself: its CPU samples (percent of a
    core, every BATCH_EVERY) and its loop lags, judged as the harness judges a local process."""
    return generator_load([Sample(t, {0: c}, None) for t, c in cpu], lags)


def combine_loads(loads: Iterable[Generator]) -> Generator:
    """Several processes' loads as one, for the claim's `generator_cpu` figures: counts added,
    peaks the highest (each process is also judged on its own)."""
    total = Generator()
    for g in loads:
        total.samples += g.samples
        total.saturated += g.saturated
        total.peak_cpu = max(total.peak_cpu, g.peak_cpu)
        total.busiest.extend(g.busiest)
        total.ticks += g.ticks
        total.late += g.late
        total.worst_lag_ms = max(total.worst_lag_ms, g.worst_lag_ms)
        total.late_s += g.late_s
        total.ticked_s += g.ticked_s
    return total
