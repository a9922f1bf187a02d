"""[[load]] claims: Locust against the run's served target (`signoff.server`).

Locust runs in its own processes (importing it monkey-patches with gevent), headless, for the
claim's `duration`, with its users and spawn rate, against the server's loopback address. With
`processes > 1` it is a master and that many workers (`--expect-workers`, a bounded wait). Every
Locust process loads `loadtests/signoff_times.py` next to the locustfile (the bundled
`loadtests/async_endpoints.py`, driven by [load.flow], unless the claim names its own), which
logs every request's exact time; the percentiles come from those (see `load_stats`), never from
Locust's rounded buckets. The counts are the requests Locust's own stats count (the plugin's
docstring says how), checked against Locust's `locust_stats.csv`: a difference is in the
evidence. Locust's CSV, HTML and log are kept in the report folder, under `load/<claim>/`.

While the test runs, every 0.5 s, the harness samples the CPU of each Locust process and the
resident memory of the server and its children. A Locust process above 90% of a core in more
than 20% of the samples makes the claim `error`: the figures would be the generator's.

The verdict: `error` when Locust could not run, saturated, or never had all its users running
(or did not keep them); otherwise `fails` when a percentile is above its bound (no tolerance:
a true 104 ms p95 fails a 100 ms bound), the failure ratio is above `failure_ratio`, the
throughput is below `min_rps`, or memory is above `max_rss` or grew more than `max_growth`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from signoff import bundled, processes
from signoff.claims.model import ClaimRef, LoadClaim
from signoff.context import RunContext
from signoff.errors import UsageError
from signoff.kinds.load.stats import (
    LATE_MS,
    SATURATED_CPU,
    SATURATED_SHARE,
    Generator,
    MemoryFigures,
    NameStats,
    Sample,
    Times,
    Users,
    by_name,
    find_name,
    generator_load,
    locust_counts,
    memory_figures,
    read_lag,
    read_times,
    request_counts,
    users_from_history,
)
from signoff.server import TargetServer, log_tail, server_or_error
from signoff.services.base import free_port
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict

LOADTESTS = bundled.loadtests()
BUNDLED_FLOW = LOADTESTS / "async_endpoints.py"
TIMES_PLUGIN = LOADTESTS / "signoff_times.py"
SAMPLE_EVERY = 0.5  # seconds
WORKERS_WAIT = 20  # seconds the master waits for its workers
STOP_TIMEOUT = 2  # seconds Locust gives running users to finish at the end
MARGIN = 30.0  # seconds past the expected end before Locust is killed
ALLOW_REMOTE_ENV = "SIGNOFF_ALLOW_REMOTE"


def check_host(url: str, allow_remote: bool | None = None) -> None:
    """Refuse (UsageError) a load target that is not on loopback (127.0.0.0/8, ::1, localhost)
    unless remote targets are allowed (`--allow-remote`, which sets SIGNOFF_ALLOW_REMOTE=1)."""
    if allow_remote is None:
        allow_remote = os.environ.get(ALLOW_REMOTE_ENV) == "1"
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    if not allow_remote:
        raise UsageError(
            f"load goes to loopback only: {host or url!r} is not a loopback address "
            "(use --allow-remote to load another machine)"
        )


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "claim"


@dataclass
class LocustRun:
    folder: Path
    prefix: Path  # Locust's --csv prefix
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    started: float | None = None  # unix time the test started (first started-<pid> mark)
    exit_codes: list[int | None] = field(default_factory=list)
    killed: bool = False
    problem: str | None = None

    @property
    def log(self) -> Path:
        return self.folder / "locust.log"


def locust_argv(
    spec: LoadClaim, host: str, prefix: Path, html: Path, *, role: str = "local", port: int = 0
) -> list[str]:
    """The Locust command line for one process: `role` local, master or worker."""
    locustfile = spec.locustfile if spec.locustfile is not None else BUNDLED_FLOW
    files = f"{locustfile},{TIMES_PLUGIN}"
    argv = [sys.executable, "-m", "locust", "-f", files, "--host", host, "--skip-log-setup"]
    if role == "worker":
        return [*argv, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    argv += [
        "--headless",
        "--users",
        str(spec.users),
        "--spawn-rate",
        f"{spec.spawn_rate:g}",
        "--run-time",
        f"{max(1, math.ceil(spec.duration))}s",
        "--stop-timeout",
        str(STOP_TIMEOUT),
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--html",
        str(html),
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]
    if role == "master":
        argv += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(spec.processes),
            "--expect-workers-max-wait",
            str(WORKERS_WAIT),
        ]
    return argv


def _environment(server: TargetServer, spec: LoadClaim, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SIGNOFF_LOAD_DIR"] = str(folder)
    env["SIGNOFF_FLOW"] = json.dumps(spec.flow.model_dump(mode="json")) if spec.flow else ""
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cpu_of(proc: subprocess.Popen[bytes], handles: dict[int, psutil.Process]) -> float | None:
    handle = handles.get(proc.pid)
    try:
        if handle is None:
            handle = handles[proc.pid] = psutil.Process(proc.pid)
            handle.cpu_percent(None)  # the first call only starts the count
            return None
        return handle.cpu_percent(None)
    except psutil.Error:
        return None


def _rss_of(pids: list[int]) -> int | None:
    total = 0
    seen = False
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
            seen = True
    return total if seen else None


def run_locust(
    ctx: RunContext, server: TargetServer, spec: LoadClaim, folder: Path, deadline: float
) -> LocustRun:
    """Run Locust for the claim, sampling CPU and memory, and stop every process it started."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [
        *folder.glob("times-*.jsonl"),
        *folder.glob("lag-*.jsonl"),
        *folder.glob("started-*"),
        *folder.glob("reported-*.json"),
    ]:
        old.unlink()
    run = LocustRun(folder=folder, prefix=folder / "locust")
    html = folder / "locust.html"
    env = _environment(server, spec, folder)
    cwd = str(ctx.claims.path.parent)
    handles: dict[int, psutil.Process] = {}
    try:
        with open(run.log, "ab") as log:
            popen: dict[str, Any] = {"stdout": log, "stderr": subprocess.STDOUT, "env": env}
            if spec.processes > 1:
                port = free_port()
                master = locust_argv(
                    spec, server.base_url, run.prefix, html, role="master", port=port
                )
                run.procs.append(processes.spawn(master, role="locust-master", cwd=cwd, **popen))
                worker = locust_argv(
                    spec, server.base_url, run.prefix, html, role="worker", port=port
                )
                for i in range(spec.processes):
                    run.procs.append(
                        processes.spawn(worker, role=f"locust-worker-{i + 1}", cwd=cwd, **popen)
                    )
            else:
                argv = locust_argv(spec, server.base_url, run.prefix, html)
                run.procs.append(processes.spawn(argv, role="locust", cwd=cwd, **popen))
            leader = run.procs[0]
            end: float | None = None
            while leader.poll() is None:
                now = time.monotonic()
                if now >= deadline:
                    run.killed = True
                    run.problem = "Locust was still running at its deadline; killed"
                    break
                if run.started is None:
                    marks = sorted(folder.glob("started-*"))
                    if marks:
                        with contextlib.suppress(OSError, ValueError):
                            run.started = float(marks[0].read_text().split()[0])
                        run.started = run.started or time.time()
                        end = now + spec.duration
                        for proc in run.procs:  # start the CPU counts
                            _cpu_of(proc, handles)
                elif end is not None and now <= end:
                    cpu = {p.pid: c for p in run.procs if (c := _cpu_of(p, handles)) is not None}
                    run.samples.append(
                        Sample(time.time() - run.started, cpu, _rss_of(server.pids()))
                    )
                time.sleep(SAMPLE_EVERY)
            # the master ends by itself; workers follow it, give them a moment
            for proc in run.procs[1:]:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.1, min(5.0, deadline - time.monotonic())))
    except OSError as exc:
        run.problem = f"could not start Locust: {exc}"
    finally:
        for proc in run.procs:
            processes.stop(proc, grace=2.0)
        run.exit_codes = [proc.returncode for proc in run.procs]
    return run


def check_load(ctx: RunContext, claim_id: str, spec: LoadClaim) -> Verdict:
    started = time.monotonic()
    verdict = Verdict(claim_id, "load", "holds", budget=_budget(spec))
    server = server_or_error(ctx, verdict, started)
    if server is None:
        return verdict
    try:
        check_host(server.base_url)
    except UsageError as exc:
        verdict.status = "error"
        verdict.evidence = f"not checked: {exc}"
        verdict.duration_s = time.monotonic() - started
        return verdict
    folder = ctx.report_dir / "load" / slug(spec.name)
    expected = spec.duration + STOP_TIMEOUT + 15 + (WORKERS_WAIT if spec.processes > 1 else 0)
    deadline = time.monotonic() + min(expected + MARGIN, max(5.0, ctx.remaining() + MARGIN))
    run = run_locust(ctx, server, spec, folder, deadline)
    judge(verdict, spec, run)
    if not server.alive:
        verdict.evidence += "\nnote: the server exited during this claim"
    verdict.duration_s = time.monotonic() - started
    return verdict


def _budget(spec: LoadClaim) -> dict[str, Any]:
    budget: dict[str, Any] = {
        "users": spec.users,
        "spawn_rate": spec.spawn_rate,
        "duration_s": spec.duration,
        "processes": spec.processes,
        "failure_ratio": spec.failure_ratio,
        "percentile_method": "nearest rank of every request's exact time; no tolerance",
    }
    if spec.min_rps is not None:
        budget["min_rps"] = spec.min_rps
    if spec.latency:
        budget["latency_s"] = {k: v.bounds() for k, v in spec.latency.items()}
    if spec.memory is not None:
        budget["memory"] = {
            k: v
            for k, v in (("max_rss", spec.memory.max_rss), ("max_growth", spec.memory.max_growth))
            if v is not None
        }
    return budget


def judge(verdict: Verdict, spec: LoadClaim, run: LocustRun) -> None:
    """Turn the run's records into the verdict's status, figures and evidence."""
    times = read_times(run.folder)
    requests = times.requests
    http = [r for r in requests if r.method != "JOB"]
    jobs = len(requests) - len(http)
    stats = by_name(requests)
    lags = []
    if run.started is not None:
        lags = read_lag(run.folder, run.started, run.started + spec.duration)
    gen = generator_load(run.samples, lags)
    users = users_from_history(Path(f"{run.prefix}_stats_history.csv"), spec.users, spec.duration)
    mem = memory_figures(run.samples, spec.duration)
    failures = sum(1 for r in http if not r.ok)
    ratio = failures / len(http) if http else 0.0
    rps = len(http) / spec.duration
    verdict.measured = _measured(stats, http, failures, ratio, rps, gen, users, mem)
    counts = _counts(times, Path(f"{run.prefix}_stats.csv"), verdict.measured)
    files = "".join(f"\n{line}" for line in counts) + f"\nLocust's report: {run.folder}"
    problems = _problems(run, http, gen, users)
    if problems:
        verdict.status = "error"
        verdict.evidence = "not checked: " + "; ".join(problems) + files
        if not http or run.problem:
            verdict.details = log_tail(run.log)
        return
    fails: list[str] = []
    seen: list[str] = []
    for key, bounds in spec.latency.items():
        name = find_name(stats, key)
        if name is None:
            fails.append(f"{key}: no request of that name (names: {', '.join(sorted(stats))})")
            continue
        figures = stats[name].seconds
        for which, bound in bounds.bounds().items():
            got = figures[which]
            words = f"{key} {which} {format_duration(got)} (bound {format_duration(bound)})"
            (fails if got > bound else seen).append(words)
    if ratio > spec.failure_ratio:
        fails.append(
            f"failure ratio {ratio:.2%} ({failures} of {len(http)}) above {spec.failure_ratio:.2%}"
        )
    if spec.min_rps is not None and rps < spec.min_rps:
        fails.append(f"{rps:.1f} requests/s, below min_rps {spec.min_rps:g}")
    if spec.memory is not None:
        if mem is None:
            verdict.status = "error"
            verdict.evidence = f"not checked: the server's memory could not be sampled{files}"
            return
        if spec.memory.max_rss is not None:
            words = f"max rss {format_size(mem.max_rss)} (bound {format_size(spec.memory.max_rss)})"
            (fails if mem.max_rss > spec.memory.max_rss else seen).append(words)
        if spec.memory.max_growth is not None:
            words = (
                f"memory grew {format_size(max(0, mem.growth))} from "
                f"{format_size(mem.baseline)} to {format_size(mem.end)} "
                f"(bound {format_size(spec.memory.max_growth)})"
            )
            (fails if mem.growth > spec.memory.max_growth else seen).append(words)
    # Locust's Aggregated row counts the flow's job timings as requests too
    also = f" (and {jobs} job timings, which Locust counts as requests)" if jobs else ""
    summary = (
        f"{spec.users} users held for {format_duration(spec.duration)}: {len(http)} HTTP "
        f"requests{also}, {rps:.1f}/s, {ratio:.2%} failed; generator CPU peak "
        f"{gen.peak_cpu:.0f}%"
    )
    if fails:
        verdict.status = "fails"
        verdict.evidence = "; ".join(fails) + f"\n{summary}{files}"
    else:
        verdict.status = "holds"
        verdict.evidence = "; ".join([*seen, summary]) + files


def _counts(times: Times, csv_path: Path, measured: dict[str, Any]) -> list[str]:
    """Check the counts against Locust's own locust_stats.csv: the evidence lines when they
    differ or when requests were left out (see loadtests/signoff_times.py)."""
    lines: list[str] = []
    if times.unreported:
        measured["unreported_requests"] = times.unreported
        lines.append(
            f"{times.unreported} requests that ended after the workers' last report Locust's "
            "master received (sent as the test stopped) are not counted: Locust's stats do not "
            "have them either"
        )
    theirs = locust_counts(csv_path)
    ours = request_counts(times.requests)
    measured["counts_match_locust_csv"] = None if theirs is None else theirs == ours
    if theirs is None or theirs == ours:
        return lines
    differ = [
        f"{_label(method, name)}: {ours.get((method, name), 0)} here, "
        f"{theirs.get((method, name), 0)} there"
        for method, name in sorted(set(ours) | set(theirs))
        if ours.get((method, name), 0) != theirs.get((method, name), 0)
    ]
    lines.append(
        f"note: these counts differ from Locust's {csv_path.name}: {sum(ours.values())} "
        f"requests in signoff's exact times, {sum(theirs.values())} there (its Aggregated row "
        "left out); "
        + "; ".join(differ[:5])
        + (f"; {len(differ) - 5} more names differ" if len(differ) > 5 else "")
    )
    return lines


def _label(method: str, name: str) -> str:
    """How to name a request: "GET /x" for /x, a name that starts with its method as is."""
    return name if not method or name.startswith(f"{method} ") else f"{method} {name}"


def _problems(run: LocustRun, http: list[Any], gen: Generator, users: Users) -> list[str]:
    problems: list[str] = []
    if run.problem:
        problems.append(run.problem)
    if not http:
        tail = log_tail(run.log).splitlines()
        last = f" (its log ends: {tail[-1].strip()})" if tail else ""
        problems.append(f"Locust recorded no request{last}")
        return problems
    if gen.saturated_run:
        problems.append(
            f"the load generator saturated: a Locust process was above {SATURATED_CPU:.0f}% "
            f"of a core in {gen.share:.0%} of the CPU samples and its event loop woke more "
            f"than {LATE_MS:.0f} ms late in {gen.late_share:.0%} of its ticks (worst "
            f"{gen.worst_lag_ms:.0f} ms; more than {SATURATED_SHARE:.0%} is too much): the "
            "figures would be the generator's, not the target's (fewer users, a wait time, or "
            "more processes)"
        )
    if users.reached_at is None and users.full_at is not None:
        problems.append(
            f"the concurrency goal was reached too late: all {users.wanted} users ran only "
            f"{users.full_at:.0f} s into Locust's stats history, which must show them within its "
            f"first {users.window:.0f} s"
        )
    elif users.reached_at is None:
        problems.append(
            f"the concurrency goal was not reached: at most {users.peak} of {users.wanted} "
            "users ran"
        )
    elif users.dropped_to is not None:
        problems.append(
            f"the concurrency goal was not held: {users.wanted} users ran, then only "
            f"{users.dropped_to}"
        )
    return problems


def _measured(
    stats: dict[str, NameStats],
    http: list[Any],
    failures: int,
    ratio: float,
    rps: float,
    gen: Generator,
    users: Users,
    mem: MemoryFigures | None,
) -> dict[str, Any]:
    measured: dict[str, Any] = {
        "requests": len(http),
        "failures": failures,
        "failure_ratio": round(ratio, 5),
        "rps": round(rps, 2),
        "latency_s": {
            name: {"count": s.count, **{k: round(v, 5) for k, v in s.seconds.items()}}
            for name, s in sorted(stats.items())
        },
        "users": {
            "wanted": users.wanted,
            "peak": users.peak,
            "reached_after_s": users.reached_at,
            "held": users.held,
        },
        "generator_cpu": {
            "samples": gen.samples,
            "peak_percent": round(gen.peak_cpu, 1),
            "saturated_share": round(gen.share, 3),
            "loop_ticks": gen.ticks,
            "loop_late_share": round(gen.late_share, 3),
            "loop_worst_lag_ms": round(gen.worst_lag_ms, 1),
        },
    }
    if mem is not None:
        measured["memory"] = {
            "max_rss": mem.max_rss,
            "baseline_rss": mem.baseline,
            "end_rss": mem.end,
            "growth": mem.growth,
            "samples": mem.samples,
        }
    return measured


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, LoadClaim)
    return check_load(ctx, ref.id, ref.spec)
