"""[[load]] claims: Locust against the run's served target (`signoff.server`).

Locust runs in its own processes (importing it monkey-patches with gevent), headless, for the
claim's `duration`, with its users and spawn rate, against the server's loopback address. With
`processes > 1` it is a master and that many workers (`--expect-workers`, a bounded wait). Every
Locust process loads `loadtests/signoff_times.py` next to the locustfile (the bundled
`loadtests/async_endpoints.py`, driven by [load.flow], unless the claim names its own), which
logs every request's exact time; the percentiles come from those (see `load_stats`), never from
Locust's rounded buckets. In distributed mode (`processes > 1`, or `signoff load --master` with
workers started by `signoff worker` on other machines) the workers load the same files (or get
them from the master: `-f -`) and send their times to it over Locust's message channel; the
master writes them where a local run's are (`signoff.kinds.load.distributed`), so both are read
alike. The counts are the requests Locust's own stats count (the plugin's docstring says how),
checked against Locust's `locust_stats.csv`: a difference is in the
evidence. Locust's CSV, HTML and log are kept in the report folder, under `load/<claim>/`.

While the test runs, every 0.5 s, the harness samples the CPU of each Locust process (of the
master only, when distributed: each worker samples its own and sends it) and the resident
memory of the server and its children. A Locust process above 90% of a core in more than 20% of
the samples makes the claim `error`, naming the worker: the figures would be the generator's. So
does a worker lost mid-run (Locust marks it missing, it left, or its measurements stopped).

With [target.server] memory_limit, each sample also reads what the target's memory cgroup
holds (`signoff.cgroup`: the anonymous and shared memory of the server and its background
processes, page cache left out) and the OOM killer's kills in it. `max_fraction` is judged on
the highest sample during the load; `settles_below` on samples taken every 0.25 s after Locust
has stopped, until the group holds less than that fraction of the limit or `settles_within`
(and its tolerance) has passed. A process OOM-killed during the claim makes it fail, whatever
else was seen, with the kill first.

The verdict: `error` when Locust could not run, saturated, or never had all its users running
(or did not keep them); otherwise `fails` when a percentile is above its bound (no tolerance:
a true 104 ms p95 fails a 100 ms bound), the failure ratio is above `failure_ratio`, the
throughput is below `min_rps`, or memory is above `max_rss` or grew more than `max_growth`, or
(with memory_limit) above `max_fraction` of the limit, or not back under `settles_below` in time.
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
from signoff.cgroup import size_words
from signoff.claims.model import ClaimRef, LoadClaim, Memory
from signoff.context import RunContext
from signoff.engine.timing import tolerance
from signoff.errors import UsageError
from signoff.kinds.load.distributed import (
    WorkerFigures,
    combine_loads,
    read_workers,
    users_now,
    workers_users,
)
from signoff.kinds.load.memory_log import write_memory_log
from signoff.kinds.load.progress import locust_progress
from signoff.kinds.load.stats import (
    LATE_MS,
    SATURATED_CPU,
    SATURATED_SHARE,
    Generator,
    LimitFigures,
    MemoryFigures,
    NameStats,
    Sample,
    Settling,
    Times,
    Users,
    by_name,
    find_name,
    generator_load,
    limit_figures,
    locust_counts,
    memory_figures,
    read_lag,
    read_times,
    request_counts,
    users_from_history,
)
from signoff.locust_files import started_at
from signoff.report import live
from signoff.server import TargetServer, log_tail, server_or_error
from signoff.services.base import free_port
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict

LOADTESTS = bundled.loadtests()
BUNDLED_FLOW = LOADTESTS / "async_endpoints.py"
TIMES_PLUGIN = LOADTESTS / "signoff_times.py"
SAMPLE_EVERY = 0.5  # seconds
SETTLE_EVERY = 0.25  # seconds between samples of the memory cgroup after the load
WORKERS_WAIT = 20  # seconds the master waits for its workers
STOP_TIMEOUT = 2  # seconds Locust gives running users to finish at the end
MARGIN = 30.0  # seconds past the expected end before Locust is killed
ALLOW_REMOTE_ENV = "SIGNOFF_ALLOW_REMOTE"
MASTER_ENV = "SIGNOFF_LOAD_MASTER"  # HOST:PORT: `signoff load --master` binds its master there
EXPECT_WORKERS_ENV = "SIGNOFF_LOAD_EXPECT_WORKERS"  # and waits for this many `signoff worker`s
HOST_ENV = "SIGNOFF_LOAD_HOST"  # `--host URL`: load this target, not the served one
DEFAULT_BIND = "127.0.0.1:5557"  # Locust's own default port, on loopback
REMOTE_WORKERS_WAIT = 300  # seconds a `--master` waits for workers started by hand


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _remote_allowed(allow_remote: bool | None) -> bool:
    return os.environ.get(ALLOW_REMOTE_ENV) == "1" if allow_remote is None else allow_remote


def check_host(url: str, allow_remote: bool | None = None) -> None:
    """Refuse (UsageError) a load target that is not on loopback (127.0.0.0/8, ::1, localhost)
    unless remote targets are allowed (`--allow-remote`, which sets SIGNOFF_ALLOW_REMOTE=1)."""
    host = urlsplit(url).hostname or ""
    if not is_loopback(host) and not _remote_allowed(allow_remote):
        raise UsageError(
            f"load goes to loopback only: {host or url!r} is not a loopback address "
            "(use --allow-remote to load another machine)"
        )


def parse_address(text: str, what: str, allow_remote: bool | None = None) -> tuple[str, int]:
    """HOST:PORT (or [v6]:PORT) of a Locust master; UsageError when it is malformed, or not on
    loopback without --allow-remote: Locust's master and workers trust each other (no
    authentication; a worker runs the code its master sends, a master counts what any worker
    sends), so signoff keeps that protocol on loopback unless told otherwise."""
    parts = urlsplit(f"tcp://{text}")
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        host, port = "", None
    if not host or port is None or port == 0:
        raise UsageError(f"{what}: expected HOST:PORT (like {DEFAULT_BIND}), found {text!r}")
    if not is_loopback(host) and not _remote_allowed(allow_remote):
        raise UsageError(
            f"{what}: {host!r} is not a loopback address; Locust's master and workers do not "
            "authenticate each other (use --allow-remote on a network you trust)"
        )
    return host, port


@dataclass(frozen=True)
class GivenTarget:
    """A target given by URL (`signoff load --master --host URL`, for workers on other
    machines, which cannot reach the served target on this machine's loopback): signoff did not
    start it, so nothing of it is sampled."""

    base_url: str

    def memory(self) -> None:
        return None

    def pids(self) -> list[int]:
        return []


@dataclass(frozen=True)
class Master:
    """A distributed run's Locust master: where it listens, how many workers it waits for (and
    how long), and whether signoff starts them (`processes > 1`) or people do (`--master`)."""

    host: str
    port: int
    workers: int
    wait: float
    by_hand: bool


def master_of(spec: LoadClaim) -> Master | None:
    """The claim's master: `signoff load --master` (SIGNOFF_LOAD_MASTER), or processes > 1 on
    a free loopback port; None for one local Locust process."""
    bind = os.environ.get(MASTER_ENV)
    if bind:
        host, port = parse_address(bind, "--bind")
        workers = int(os.environ.get(EXPECT_WORKERS_ENV) or 1)
        return Master(host, port, workers, REMOTE_WORKERS_WAIT, by_hand=True)
    if spec.processes > 1:
        return Master("127.0.0.1", free_port(), spec.processes, WORKERS_WAIT, by_hand=False)
    return None


def worker_argv(host: str, port: int, files: str | None = None, *, quiet: bool = True) -> list[str]:
    """A Locust worker of the master at host:port (what `signoff worker` runs): with `files`
    (the same locustfiles as the master's, comma-separated, signoff's plugin among them), or
    else `-f -`: Locust's own download of the master's locustfiles as it starts. A failed
    request is no failure of the worker (the claim judges): it exits 0 after a run."""
    argv = [sys.executable, "-m", "locust", "-f", files or "-", "--exit-code-on-error", "0"]
    if quiet:
        argv.append("--skip-log-setup")
    return [*argv, "--worker", "--master-host", host, "--master-port", str(port)]


FLOW_FILE = "signoff_flow.py"


def flow_file(spec: LoadClaim, folder: Path) -> Path:
    """The bundled flow with the claim's [load.flow] written in, for workers that get their
    locustfiles from the master: a worker on another machine has no SIGNOFF_FLOW."""
    assert spec.flow is not None
    flow = json.dumps(spec.flow.model_dump(mode="json"))
    path = folder / FLOW_FILE
    path.write_text(
        f'"""Written by signoff for [[load]] {spec.name!r}: the bundled async-job flow with the '
        'claim\'s [load.flow], for Locust workers that get it from the master."""\n\n'
        "import os\n\n"
        f'os.environ["SIGNOFF_FLOW"] = {flow!r}\n\n'
        "from signoff._loadtests.async_endpoints import AsyncJobUser  # noqa: E402,F401\n",
        encoding="utf-8",
    )
    return path


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
    limit: int | None = None  # [target.server] memory_limit, when the target runs under one
    oom_base: int = 0  # the OOM kills in the target's group before the claim
    oom: str | None = None  # what the OOM killer did during the claim, as evidence words
    settling: Settling | None = None
    notes: list[str] = field(default_factory=list)
    master: Master | None = None  # a distributed run's master

    @property
    def log(self) -> Path:
        return self.folder / "locust.log"


def locust_argv(
    spec: LoadClaim,
    host: str,
    prefix: Path,
    html: Path,
    *,
    role: str = "local",
    port: int = 0,
    master: Master | None = None,
    locustfile: Path | None = None,
) -> list[str]:
    """The Locust command line for one process: `role` local, master or worker (a worker of
    127.0.0.1:`port`, or of `master`, getting the locustfiles from it)."""
    if role == "worker":
        if master is None:
            return worker_argv("127.0.0.1", port)
        return worker_argv(master.host, master.port)
    if locustfile is None:
        locustfile = spec.locustfile if spec.locustfile is not None else BUNDLED_FLOW
    files = f"{locustfile},{TIMES_PLUGIN}"
    argv = [sys.executable, "-m", "locust", "-f", files, "--host", host, "--skip-log-setup"]
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
        if master is None:
            master = Master("127.0.0.1", port, spec.processes, WORKERS_WAIT, by_hand=False)
        argv += [
            "--master",
            "--master-bind-host",
            master.host,
            "--master-bind-port",
            str(master.port),
            "--expect-workers",
            str(master.workers),
            "--expect-workers-max-wait",
            f"{master.wait:g}",
        ]
    return argv


def _environment(
    server: TargetServer | GivenTarget, spec: LoadClaim, folder: Path
) -> dict[str, str]:
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
    ctx: RunContext,
    server: TargetServer | GivenTarget,
    spec: LoadClaim,
    folder: Path,
    deadline: float,
    master: Master | None = None,
) -> LocustRun:
    """Run Locust for the claim, sampling CPU and memory, and stop every process it started.
    With a `master`, its workers (unless started by hand) load the same files and send it their
    measurements; only the master's CPU is sampled here, the workers send their own."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [
        *folder.glob("times-*.jsonl"),
        *folder.glob("lag-*.jsonl"),
        *folder.glob("cpu-*.jsonl"),
        *folder.glob("started-*"),
        *folder.glob("reported-*.json"),
    ]:
        old.unlink()
    run = LocustRun(folder=folder, prefix=folder / "locust", master=master)
    html = folder / "locust.html"
    env = _environment(server, spec, folder)
    cwd = str(ctx.claims.path.parent)
    handles: dict[int, psutil.Process] = {}
    history = Path(f"{run.prefix}_stats_history.csv")
    try:
        with open(run.log, "ab") as log:
            popen: dict[str, Any] = {"stdout": log, "stderr": subprocess.STDOUT, "env": env}
            if master is not None:
                locustfile = spec.locustfile
                if locustfile is None:
                    locustfile = flow_file(spec, folder)
                argv = locust_argv(
                    spec,
                    server.base_url,
                    run.prefix,
                    html,
                    role="master",
                    master=master,
                    locustfile=locustfile,
                )
                run.procs.append(processes.spawn(argv, role="locust-master", cwd=cwd, **popen))
                # the same files as the master's (a locustfile may import its neighbours);
                # nothing else shared: the workers send their measurements over the protocol
                files = f"{locustfile},{TIMES_PLUGIN}"
                worker_env = {k: v for k, v in env.items() if k != "SIGNOFF_LOAD_DIR"}
                for i in range(0 if master.by_hand else master.workers):
                    run.procs.append(
                        processes.spawn(
                            worker_argv(master.host, master.port, files),
                            role=f"locust-worker-{i + 1}",
                            cwd=cwd,
                            **{**popen, "env": worker_env},
                        )
                    )
            else:
                argv = locust_argv(spec, server.base_url, run.prefix, html)
                run.procs.append(processes.spawn(argv, role="locust", cwd=cwd, **popen))
            leader = run.procs[0]
            sampled = run.procs[:1] if master is not None else run.procs
            if master is not None and master.by_hand:
                live.note(
                    f"Locust's master listens on {master.host}:{master.port} for "
                    f"{master.workers} workers (signoff worker --master HOST:PORT)"
                )
            end: float | None = None
            while leader.poll() is None:
                now = time.monotonic()
                if now >= deadline:
                    run.killed = True
                    run.problem = "Locust was still running at its deadline; killed"
                    break
                if run.started is None:
                    run.started = started_at(folder)
                    if run.started is not None:
                        end = now + spec.duration
                        for proc in sampled:  # start the CPU counts
                            _cpu_of(proc, handles)
                elif end is not None and now <= end:
                    cpu = {p.pid: c for p in sampled if (c := _cpu_of(p, handles)) is not None}
                    usage = server.memory()
                    run.samples.append(
                        Sample(
                            time.time() - run.started,
                            cpu,
                            _rss_of(server.pids()),
                            group_held=None if usage is None else usage.held,
                            oom_kills=None if usage is None else usage.oom_kills,
                        )
                    )
                if live.showing():
                    users = None if master is None else users_now(folder, time.time())
                    live.note(locust_progress(history, users) or "Locust is starting its users")
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
    given = os.environ.get(HOST_ENV)
    server: TargetServer | None = None
    target: TargetServer | GivenTarget
    if given:
        target = GivenTarget(given.rstrip("/"))
    else:
        server = server_or_error(ctx, verdict, started)
        if server is None:
            return verdict
        target = server
    try:
        check_host(target.base_url)
    except UsageError as exc:
        verdict.status = "error"
        verdict.evidence = f"not checked: {exc}"
        verdict.duration_s = time.monotonic() - started
        return verdict
    folder = ctx.report_dir / "load" / slug(spec.name)
    try:
        master = master_of(spec)
    except UsageError as exc:
        verdict.status = "error"
        verdict.evidence = f"not checked: {exc}"
        verdict.duration_s = time.monotonic() - started
        return verdict
    if master is not None:
        verdict.budget["workers"] = master.workers
    expected = spec.duration + STOP_TIMEOUT + 15 + (master.wait if master is not None else 0)
    deadline = time.monotonic() + min(expected + MARGIN, max(5.0, ctx.remaining() + MARGIN))
    restarted = None if server is None else next(iter(server.take_restart_note()), None)
    group = None if server is None else server.group
    oom_base = 0 if group is None else group.oom_kills()
    if group is not None and spec.memory is not None and spec.memory.needs_limit:
        verdict.budget["memory"]["memory_limit"] = group.limit
    run = run_locust(ctx, target, spec, folder, deadline, master)
    if server is None:
        run.notes.append(
            f"the target was given by URL ({target.base_url}): signoff did not start it and "
            "sampled none of its memory"
        )
    settled_from = None
    if server is not None and group is not None:
        run.limit, run.oom_base = group.limit, oom_base
        memory = spec.memory
        if memory is not None and memory.settles_below is not None and not run.problem:
            live.note("the load is over: waiting for the target's memory to settle")
            settled_from = time.time()
            run.settling = watch_settling(server, memory, group.limit, ctx.remaining())
        run.oom = _oom_words(server, group.oom_kills() - oom_base)
    if restarted:
        run.notes.append(restarted)
    judge(verdict, spec, run)
    write_memory_log(folder, run.samples, run.started, run.settling, settled_from)
    if server is not None and not server.alive and run.oom is None:
        verdict.evidence += f"\nnote: {server.exit_words()} during this claim"
    verdict.duration_s = time.monotonic() - started
    return verdict


def watch_settling(server: TargetServer, memory: Memory, limit: int, remaining: float) -> Settling:
    """Sample the target's memory cgroup from now (the load has ended) until it holds less than
    `settles_below` of the limit, `settles_within` and its tolerance have passed, the server
    exits, or the run's deadline (`remaining` seconds from now) comes."""
    assert memory.settles_below is not None
    settling = Settling(
        limit, memory.settles_below, memory.settles_within + tolerance(memory.settles_within)
    )
    start = time.monotonic()
    while True:
        t = time.monotonic() - start
        usage = server.memory()
        if not server.alive:  # a dead server's memory is freed: no settling to see
            settling.problem = f"{server.exit_words()} {t:.1f} s after the load ended"
            return settling
        if usage is None:
            settling.problem = "the target's memory cgroup could not be read"
            return settling
        settling.samples.append((t, usage.held))
        if usage.held < settling.below * limit or t >= settling.window:
            return settling
        if t >= remaining:
            settling.problem = (
                f"the run's deadline came {t:.1f} s after the load ended, before "
                f"settles_within ({format_duration(memory.settles_within)})"
            )
            return settling
        time.sleep(min(SETTLE_EVERY, max(0.0, start + settling.window - time.monotonic())))


def _oom_words(server: TargetServer, kills: int) -> str | None:
    """What the OOM killer did in the target's group during the claim (None: nothing)."""
    if kills <= 0:
        return None
    if server.proc is not None and not server.alive and server.killed_by_limit():
        return server.exit_words()
    group = server.group
    words = "" if group is None else f" ({group.oom_words()})"
    others = "; ".join(server.background_problems())
    return (
        f"the memory limit killed {kills} process{'es' if kills > 1 else ''} of the target"
        f"{words}" + (f": {others}" if others else "")
    )


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
        memory = spec.memory
        budget["memory"] = {
            k: v
            for k, v in (
                ("max_rss", memory.max_rss),
                ("max_growth", memory.max_growth),
                ("max_fraction", memory.max_fraction),
                ("settles_below", memory.settles_below),
            )
            if v is not None
        }
        if memory.settles_below is not None:
            budget["memory"]["settles_within_s"] = memory.settles_within
            budget["memory"]["settles_tolerance_s"] = tolerance(memory.settles_within)
    return budget


def judge(verdict: Verdict, spec: LoadClaim, run: LocustRun) -> None:
    """Turn the run's records into the verdict's status, figures and evidence."""
    times = read_times(run.folder)
    requests = times.requests
    http = [r for r in requests if r.method != "JOB"]
    jobs = len(requests) - len(http)
    stats = by_name(requests)
    window = (None, None) if run.started is None else (run.started, run.started + spec.duration)
    workers = read_workers(run.folder, *window) if run.master is not None else []
    lags = []
    if window[0] is not None and window[1] is not None:
        # distributed: the master's own (lag-<pid>); each worker is judged on its own below
        which = "lag-[0-9]*.jsonl" if run.master is not None else "lag-*.jsonl"
        lags = read_lag(run.folder, window[0], window[1], which)
    gen = generator_load(run.samples, lags)
    loads = [("a Locust process" if run.master is None else "the Locust master", gen)]
    loads += [(w.words(), w.load) for w in workers]
    if workers:
        gen = combine_loads([gen, *(w.load for w in workers)])
    users = _users(run, spec)
    mem = memory_figures(run.samples, spec.duration)
    failures = sum(1 for r in http if not r.ok)
    ratio = failures / len(http) if http else 0.0
    rps = len(http) / spec.duration
    verdict.measured = _measured(stats, http, failures, ratio, rps, gen, users, mem)
    if run.master is not None:
        verdict.measured["workers"] = _workers_measured(workers)
        verdict.measured["merge"] = MERGE_WORDS
    limit = None if run.limit is None else limit_figures(run.samples, run.limit, run.oom_base)
    if run.limit is not None:
        verdict.measured["memory_limit"] = _limit_measured(run, limit)
    lost = any(w.lost for w in workers)
    counts = _counts(times, Path(f"{run.prefix}_stats.csv"), verdict.measured, lost=lost)
    counts += _merge_lines(workers, run.master)
    files = "".join(f"\n{line}" for line in [*counts, *(f"note: {n}" for n in run.notes)])
    files += f"\nLocust's report: {run.folder}"
    problems = _problems(run, http, loads, users, workers)
    # Locust's Aggregated row counts the flow's job timings as requests too
    also = f" (and {jobs} job timings, which Locust counts as requests)" if jobs else ""
    summary = (
        f"{spec.users} users held for {format_duration(spec.duration)}: {len(http)} HTTP "
        f"requests{also}, {rps:.1f}/s, {ratio:.2%} failed; generator CPU peak "
        f"{gen.peak_cpu:.0f}%"
    )
    if run.oom is not None:
        # the limit killing the target is the finding, whatever else the run saw
        verdict.status = "fails"
        besides = f"\nnote: besides, {'; '.join(problems)}" if problems else ""
        oom = _oom_line(run.oom, limit, spec.memory)
        verdict.evidence = f"{oom}\n{summary}{besides}{files}"
        return
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
        unchecked = _judge_memory(spec.memory, mem, limit, run.settling, fails, seen)
        if unchecked is not None:
            verdict.status = "error"
            verdict.evidence = f"not checked: {unchecked}{files}"
            return
    if fails:
        verdict.status = "fails"
        verdict.evidence = "; ".join(fails) + f"\n{summary}{files}"
    else:
        verdict.status = "holds"
        verdict.evidence = "; ".join([*seen, summary]) + files


def _judge_memory(
    memory: Memory,
    mem: MemoryFigures | None,
    limit: LimitFigures | None,
    settling: Settling | None,
    fails: list[str],
    seen: list[str],
) -> str | None:
    """Add the [load.memory] findings to `fails` and `seen`; or say why they could not be."""
    if memory.max_rss is not None or memory.max_growth is not None:
        if mem is None:
            return "the server's memory could not be sampled"
        if memory.max_rss is not None:
            words = f"max rss {format_size(mem.max_rss)} (bound {format_size(memory.max_rss)})"
            (fails if mem.max_rss > memory.max_rss else seen).append(words)
        if memory.max_growth is not None:
            words = (
                f"memory grew {format_size(max(0, mem.growth))} from "
                f"{format_size(mem.baseline)} to {format_size(mem.end)} "
                f"(bound {format_size(memory.max_growth)})"
            )
            (fails if mem.growth > memory.max_growth else seen).append(words)
    if memory.max_fraction is not None:
        if limit is None:
            return "the target's memory cgroup could not be sampled during the load"
        peak = f"peak {_share(limit.peak, limit.limit)}"
        if limit.peak_fraction > memory.max_fraction:
            fails.append(
                f"{peak}, over the {_pct(memory.max_fraction)} claimed, at {limit.peak_at:.1f} s"
            )
        else:
            seen.append(f"{peak} at {limit.peak_at:.1f} s (at most {_pct(memory.max_fraction)})")
    if memory.settles_below is not None:
        if settling is None or settling.problem is not None or settling.last is None:
            why = "no sample" if settling is None else settling.problem or "no sample"
            return f"settles_below: {why}"
        goal = f"{_pct(settling.below)} within {format_duration(memory.settles_within)}"
        under = settling.under
        if under is not None and limit is not None and limit.peak_fraction <= settling.below:
            # nothing to settle from: say so, rather than "back under" at 0.0 s
            seen.append(
                f"never above {_pct(settling.below)} (peak {_pct(limit.peak_fraction)}), "
                f"{_share(under[1], settling.limit)} after the load ended"
            )
        elif under is not None:
            seen.append(
                f"back under {_pct(settling.below)} {under[0]:.1f} s after the load ended "
                f"({_share(under[1], settling.limit)}; {goal} claimed)"
            )
        else:
            t, held = settling.last
            low_t, low = settling.lowest or settling.last
            fails.append(
                f"still at {_share(held, settling.limit)} {t:.1f} s after the load ended, not "
                f"under the {goal} claimed (lowest {_pct(settling.fraction(low))} at {low_t:.1f} s)"
            )
    return None


def _oom_line(oom: str, limit: LimitFigures | None, memory: Memory | None) -> str:
    """The evidence of a kill by the memory limit: who, when, the highest sample before it."""
    when = "during the claim"
    if limit is not None and limit.oom_at is not None:
        when = f"{limit.oom_at:.1f} s into the load (sampled every {SAMPLE_EVERY:g} s)"
    words = f"{oom} {when}"
    if limit is not None and limit.before_oom is not None:
        t, held = limit.before_oom
        words += f"; the highest sample before it: {_share(held, limit.limit)} at {t:.1f} s"
    if memory is not None and memory.max_fraction is not None:
        words += f"; over the {_pct(memory.max_fraction)} claimed: it reached the limit"
    return words


def _share(held: int, limit: int) -> str:
    """What a group holds against its limit: "231 MB = 90% of 256 MB"."""
    return f"{size_words(held, limit)} = {_pct(held / limit)} of {size_words(limit)}"


def _pct(fraction: float) -> str:
    """65% or 65.4%: one decimal at most, none when it is 0."""
    return f"{fraction * 100:.1f}".removesuffix(".0") + "%"


def _limit_measured(run: LocustRun, limit: LimitFigures | None) -> dict[str, Any]:
    assert run.limit is not None
    measured: dict[str, Any] = {
        "limit": run.limit,
        "measure": "what the target's memory cgroup holds (memory.stat: anonymous and shared "
        "memory of the server and its background processes; page cache not counted)",
        "oom_killed": run.oom,
    }
    if limit is not None:
        measured.update(
            peak_bytes=limit.peak,
            peak_fraction=round(limit.peak_fraction, 4),
            peak_at_s=round(limit.peak_at, 2),
            samples=limit.samples,
        )
    settling = run.settling
    if settling is not None:
        under = settling.under
        lowest = settling.lowest
        measured["settling"] = {
            "below": settling.below,
            "window_s": round(settling.window, 3),
            "under_after_s": None if under is None else round(under[0], 2),
            "fraction_then": None if under is None else round(settling.fraction(under[1]), 4),
            "lowest_fraction": None if lowest is None else round(settling.fraction(lowest[1]), 4),
            "samples": len(settling.samples),
            "problem": settling.problem,
        }
    return measured


def _counts(
    times: Times, csv_path: Path, measured: dict[str, Any], *, lost: bool = False
) -> list[str]:
    """Check the counts against Locust's own locust_stats.csv: the evidence lines when they
    differ or when requests were left out (see loadtests/signoff_times.py); `lost`: a worker
    was lost, whose last requests never had a report."""
    lines: list[str] = []
    if times.unreported:
        measured["unreported_requests"] = times.unreported
        when = (
            "a lost worker's, or sent as the test stopped" if lost else "sent as the test stopped"
        )
        lines.append(
            f"{times.unreported} requests that ended after the workers' last report Locust's "
            f"master received ({when}) are not counted: Locust's stats do not have them either"
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


def _users(run: LocustRun, spec: LoadClaim) -> Users:
    """The concurrency goal: distributed, from the workers' own counts (sent every 0.5 s) from
    the test's start; else (or if no worker sent one) from Locust's stats history, whose user
    count a distributed master learns only from its workers' reports, every 3 s (a 6 s claim
    read its 20 users 6 s in, though the workers had them all running at 2 s)."""
    if run.master is not None and run.started is not None:
        users = workers_users(run.folder, spec.users, spec.duration, run.started)
        if users is not None:
            return users
    return users_from_history(Path(f"{run.prefix}_stats_history.csv"), spec.users, spec.duration)


def _problems(
    run: LocustRun,
    http: list[Any],
    loads: list[tuple[str, Generator]],
    users: Users,
    workers: list[WorkerFigures],
) -> list[str]:
    """Why the figures cannot be trusted: Locust did not run, recorded nothing, a generator
    process (`loads`: who, and its load) saturated, a worker was lost, or the users were not
    all running."""
    problems: list[str] = []
    if run.problem:
        problems.append(run.problem)
    if not http:
        tail = log_tail(run.log).splitlines()
        last = f" (its log ends: {tail[-1].strip()})" if tail else ""
        problems.append(f"Locust recorded no request{last}")
        return problems
    for who, gen in loads:
        if gen.saturated_run:
            problems.append(
                f"the load generator saturated: {who} was above {SATURATED_CPU:.0f}% "
                f"of a core in {gen.share:.0%} of the CPU samples and its event loop woke more "
                f"than {LATE_MS:.0f} ms late in {gen.late_share:.0%} of its ticks (worst "
                f"{gen.worst_lag_ms:.0f} ms; more than {SATURATED_SHARE:.0%} is too much): the "
                "figures would be the generator's, not the target's (fewer users, a wait time, "
                "or more processes)"
            )
    for worker in workers:
        if worker.lost is not None:
            problems.append(
                f"{worker.words()} was lost during the test: it {worker.lost}; its users stopped "
                "and its requests after its last report are not counted"
            )
    by = " (by the workers' own counts)" if users.source == "workers" else ""
    if users.reached_at is None and users.full_at is not None:
        where = (
            "the test, by the workers' own counts, which must show them within its"
            if users.source == "workers"
            else "Locust's stats history, which must show them within its"
        )
        problems.append(
            f"the concurrency goal was reached too late: all {users.wanted} users ran only "
            f"{users.full_at:.0f} s into {where} first {users.window:.0f} s"
        )
    elif users.reached_at is None:
        problems.append(
            f"the concurrency goal was not reached: at most {users.peak} of {users.wanted} "
            f"users ran{by}"
        )
    elif users.dropped_to is not None:
        problems.append(
            f"the concurrency goal was not held: {users.wanted} users ran, then only "
            f"{users.dropped_to}{by}"
        )
    return problems


MERGE_WORDS = (
    "raw times: every worker sends each request's exact time to the master over Locust's "
    "message channel; the percentiles of the merge are those of one process (error 0)"
)


def _workers_measured(workers: list[WorkerFigures]) -> dict[str, Any]:
    return {
        w.label: {
            "host": w.host,
            "pid": w.pid,
            "sent": w.sent,
            "received": w.received,
            "counted": w.reported,
            "users_peak": w.users_peak,
            "lost": w.lost,
            "cpu_peak_percent": round(w.load.peak_cpu, 1),
            "saturated_share": round(w.load.share, 3),
            "loop_late_share": round(w.load.late_share, 3),
        }
        for w in workers
    }


def _merge_lines(workers: list[WorkerFigures], master: Master | None) -> list[str]:
    """Evidence lines when the master did not get what its workers sent, or heard from fewer
    workers than it waited for."""
    lines = [
        f"note: {w.words()} sent {w.sent} request times, the master received {w.received}"
        for w in workers
        if w.sent != w.received
    ]
    if master is not None and workers and len(workers) < master.workers:
        lines.append(f"note: {len(workers)} of {master.workers} workers sent measurements")
    return lines


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
