"""The probe primitive: run target code in a fresh interpreter with a hard deadline.

Every claim kind measures target code through `run_import` or `run_call`, or `run_steps` for
several steps in one process with barriers where the parent changes the world (lifts a fault)
before the child goes on. The code runs in the target's own interpreter (`child.py`, a
standalone script), never in the harness. The deadline counts from the moment the child starts
its measured step, so interpreter start-up is not charged to the target. At the deadline the
child's faulthandler has dumped every thread's stack; the parent reads the child's open sockets,
then kills its whole process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any, Literal

import psutil

from signoff import processes
from signoff.engine import startups
from signoff.errors import HarnessError, UsageError

CHILD_SCRIPT = Path(__file__).with_name("child.py")
STARTUP_TIMEOUT = 30.0  # interpreter start-up, before the measured step; not the target's time
MIN_IMPORT_TIMEOUT = 10.0  # run_call: the callable's module may take this long to import
DUMP_GRACE = 0.5  # after the deadline: how long faulthandler gets to finish its dump
FINISH_TIMEOUT = 10.0  # after the step: to write the result (repr of the value, say)
EXIT_TIMEOUT = 5.0  # after the result: to exit
STDERR_TAIL = 4000
TICK = 0.05  # seconds between two looks at a running child, when someone is interested
IMPORTTIME_TOP = 10

_IMPORTTIME_ROW = re.compile(r"^import time:\s+(\d+)\s*\|\s*(\d+)\s*\|\s*(\S.*)$")
_MARKER = "signoff-probe: "
_THREAD_LINE = re.compile(
    r"^(Current thread|Thread) (0x[0-9a-fA-F]+)( \(most recent call first\):)$"
)

Outcome = Literal["returned", "raised", "hung", "crashed"]
OnTick = Callable[[int, str], None]  # (the child's pid, the step it is in or its phase)


@dataclass(frozen=True)
class TargetProcess:
    """How to start a target process."""

    python: str  # interpreter path
    pythonpath: tuple[str, ...]  # absolute folders, first on sys.path
    env: Mapping[str, str]  # added to os.environ for the child (service URLs, target env, ...)
    cwd: str


@dataclass(frozen=True)
class Event:
    """A side effect seen in the child."""

    kind: str  # "network" | "subprocess" | "thread" | "warning"
    detail: str  # "connect 127.0.0.1:6379", "Popen ['git', ...]", "thread Thread-1 (worker)"
    where: str  # "core/tasks.py:12", or "?"
    at: float  # seconds since the child started the step it happened in
    step: str = "import"  # that step: "import" or "call"


@dataclass(frozen=True)
class Attempt:
    """One call of a poll step."""

    ended: float  # seconds from the start of the poll step to the end of this call
    seconds: float  # this call's own wall time
    outcome: str  # "returned" | "raised"
    type: str  # "module:QualName" of what it returned, or of the exception
    instance: bool  # whether that is an instance of the poll step's `until_not`


@dataclass(frozen=True)
class ChildResult:
    """What happened in the child. See `run_import` and `run_call`."""

    outcome: Outcome
    step: str  # "import" or "call": where it ended
    seconds: float | None  # measured in the child: the duration of `step`; None if hung/crashed
    elapsed: float  # wall seconds seen by the parent, spawn to end
    result_type: str | None = None  # "module:QualName" of the return value
    result_mro: tuple[str, ...] = ()
    result_repr: str | None = None  # truncated to 200 chars (_signoff_probe_places.REPR_MAX)
    exc_type: str | None = None  # "module:QualName", e.g. "redis.exceptions:TimeoutError"
    exc_mro: tuple[str, ...] = ()
    exc_message: str | None = None  # truncated to 500 chars (MESSAGE_MAX there)
    exc_where: str | None = None  # innermost target frame "core/x.py:12"
    traceback: str | None = None
    cycle: tuple[str, ...] | None = None  # circular import: ("core", "core.admin_ui", "core")
    stacks: str | None = None  # on hang: faulthandler's dump of every thread, main thread first
    sockets: tuple[str, ...] = ()  # on hang: "127.0.0.1:53422 -> 127.0.0.1:6379 SYN_SENT"
    events: tuple[Event, ...] = ()
    importtime: tuple[tuple[str, float], ...] = ()  # (module, cumulative s), slowest first
    stderr: str = ""  # tail of the child's stderr
    returncode: int | None = None
    # run_steps only: which classes (by the name of the step that resolved them) the result,
    # or the exception, is an instance of; and a poll step's every call
    instance_of: Mapping[str, bool] = field(default_factory=dict)
    attempts: tuple[Attempt, ...] = ()
    # run_steps, a call step with `as_json`: the returned value as JSON text, or why not
    result_json: str | None = None
    result_json_error: str | None = None

    @property
    def waiting_on(self) -> str | None:
        """On hang: the peer it is stuck on. A connecting socket, else an established one (the
        latest one connected to first), else the address of the last network event."""
        if self.outcome != "hung":
            return None
        peers: dict[str, list[str]] = {"SYN_SENT": [], "ESTABLISHED": []}
        for line in self.sockets:
            head, _, status = line.rpartition(" ")
            if " -> " in head and status in peers:
                peers[status].append(head.split(" -> ", 1)[1])
        if peers["SYN_SENT"]:
            return peers["SYN_SENT"][-1]
        connected = [_event_address(e) for e in reversed(self.events) if e.kind == "network"]
        for address in connected:
            if address in peers["ESTABLISHED"]:
                return address
        if peers["ESTABLISHED"]:
            return peers["ESTABLISHED"][-1]
        return connected[0] if connected else None


def _event_address(event: Event) -> str:
    return event.detail.split(" ", 1)[-1]


def run_import(
    target: TargetProcess,
    module: str,
    *,
    timeout: float,
    importtime: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> ChildResult:
    """Import `module` in a fresh interpreter; `timeout` seconds from the start of the import.

    `seconds` is the import's wall time. With `importtime`, the child runs with
    `-X importtime` and `importtime` holds its slowest rows (which slows the import a little).
    `on_event`, if given, is called with each side effect as the child reports it, while the
    child runs (from the calling thread), and for the last ones before this returns.
    """
    _check_timeout(timeout)
    spec = {
        "mode": "import",
        "module": module,
        "attr": "",
        "import_timeout": timeout,
        "timeout": timeout,
        "importtime": importtime,
    }
    return _run(target, spec, importtime=importtime, on_event=on_event)


def run_call(
    target: TargetProcess,
    ref: str,
    *,
    timeout: float,
    import_timeout: float | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_tick: OnTick | None = None,
) -> ChildResult:
    """Call `module:attr` (or `module:attr.method`) with no arguments in a fresh interpreter.

    The import of `module` (and the lookup of `attr`) is step "import", bounded by
    `import_timeout` (default: `timeout`, at least 10 s); the call is step "call", bounded by
    `timeout`. `seconds` is the call's wall time. A coroutine returned by the call is run to
    completion with asyncio.run, inside the call's time. `on_event`: as for `run_import`.
    `on_tick(pid, phase)`, if given, is called every TICK seconds while the child runs (from the
    calling thread), with the child's pid and what it is doing ("import", "call", ...).
    """
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise UsageError(f"not a callable reference 'module:attr': {ref!r}")
    _check_timeout(timeout)
    if import_timeout is None:
        import_timeout = max(timeout, MIN_IMPORT_TIMEOUT)
    _check_timeout(import_timeout)
    spec = {
        "mode": "call",
        "module": module,
        "attr": attr,
        "import_timeout": import_timeout,
        "timeout": timeout,
        "importtime": False,
    }
    return _run(target, spec, importtime=False, on_event=on_event, on_tick=on_tick)


StepOp = Literal["resolve", "call", "poll", "barrier"]
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED = frozenset({"startup", "finish", "barrier", "end", "eof"})


@dataclass(frozen=True)
class Step:
    """One step of `run_steps`. Each step's result is kept under its `name` for later steps.

    - "resolve": import `ref` ("module:attr[.attr]") and keep the object; with `is_class`, an
      object that is not a class fails the step (TypeError).
    - "call": call the object kept under `func` (or its attribute `attr`: a method of an
      earlier call's result) with `args` and `kwargs` (JSON values; none by default); keep
      what it returns. With `as_json`, the result's `result_json` is the returned value as
      JSON (values JSON has no type for are written as their str()), or `result_json_error`
      says why it could not be.
    - "poll": call `func` again and again, `every` seconds apart, for at most `for_s` seconds,
      until it returns something that is not an instance of the class kept under `until_not`.
      The result is the last call's; `attempts` lists every call.
    - "barrier": wait until the parent's `on_barrier` answers; False ends the steps there.

    `classify` (call, poll): names of resolved classes; the result's `instance_of` tells which
    of them the returned value (or the raised exception) is an instance of. `timeout` bounds
    the step (for a barrier: how long the child waits for the answer before it gives up). A
    step that needs a value an earlier step did not give (it raised) ends the steps there.
    """

    name: str
    op: StepOp
    timeout: float
    ref: str = ""
    is_class: bool = False
    func: str = ""
    attr: str = ""
    classify: tuple[str, ...] = ()
    until_not: str = ""
    every: float = 0.2
    for_s: float = 0.0
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    as_json: bool = False


@dataclass(frozen=True)
class StepsResult:
    """What `run_steps` saw. `steps`: one result per step that ran, in order; a step still
    running at its deadline is there as "hung" (with stacks and sockets), one the child died
    in as "crashed". `barriers`: each barrier reached and the answer ("go", "stop", or
    "timeout" when the parent did not answer in time)."""

    outcome: Literal["ended", "hung", "crashed"]
    steps: tuple[ChildResult, ...]
    barriers: Mapping[str, str]
    elapsed: float
    events: tuple[Event, ...]
    stderr: str
    returncode: int | None

    def get(self, name: str) -> ChildResult | None:
        """The result of step `name`, or None when it did not run."""
        return next((r for r in self.steps if r.step == name), None)


def run_steps(
    target: TargetProcess,
    steps: Sequence[Step],
    *,
    on_barrier: Callable[[str, tuple[ChildResult, ...]], bool] | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_tick: OnTick | None = None,
) -> StepsResult:
    """Run `steps` one after another in ONE fresh interpreter of the target.

    At a barrier the child stops and `on_barrier(name, results so far)` is called (from the
    calling thread; the child waits, up to the barrier's own timeout): it may change the world
    (lift a fault, say); True lets the child go on, False ends the steps. Each other step is
    bounded by its `timeout` from the moment the child starts it; at that deadline the child's
    stacks are read and its process group killed, as for `run_call`. An exception raised by
    `on_barrier` kills the child and propagates. `on_event`: as for `run_import`; `on_tick`: as
    for `run_call` (the phase is a step's name).
    """
    _check_steps(steps)
    limits = {s.name: s.timeout for s in steps if s.op != "barrier"}
    spec = {"mode": "steps", "steps": [asdict(s) for s in steps]}
    with _child(target, spec, importtime=False) as child:
        tail = _EventTail(child.tmp / "events", on_event) if on_event is not None else None
        watch = _Watch(deadline=child.started + STARTUP_TIMEOUT)
        barriers: dict[str, str] = {}
        while True:
            watch = _watch(child.proc, child.status_r, watch, limits, tail, on_tick)
            if watch.phase != "barrier":
                break
            done = _step_results(child.tmp / "result", {"elapsed": 0.0})
            go = True if on_barrier is None else on_barrier(watch.barrier, done)
            child.answer("go" if go else "stop")
            barriers[watch.barrier] = "go" if go else "stop"
            # the child writes down the barrier, then starts its next step or ends
            watch.phase, watch.deadline = "finish", time.monotonic() + FINISH_TIMEOUT
        descendants = _descendants(child.proc)
        if watch.phase == "end":
            child.release()
        result = _conclude_steps(child, watch, limits, descendants, target, barriers)
        if tail is not None:
            tail.read()
        return result


def _check_steps(steps: Sequence[Step]) -> None:
    seen: set[str] = set()
    kept: set[str] = set()
    for step in steps:
        if not _STEP_NAME.match(step.name) or step.name in _RESERVED:
            raise ValueError(f"not a usable step name: {step.name!r}")
        if step.name in seen:
            raise ValueError(f"two steps are named {step.name!r}")
        seen.add(step.name)
        _check_timeout(step.timeout)
        if step.op == "resolve":
            module, sep, _ = step.ref.partition(":")
            if not sep or not module:
                raise UsageError(f"not a reference 'module:attr': {step.ref!r}")
        elif step.op in ("call", "poll"):
            wanted = [step.func, *step.classify] + ([step.until_not] if step.op == "poll" else [])
            unknown = [w for w in wanted if w not in kept]
            if unknown:
                raise ValueError(f"step {step.name!r} needs {unknown[0]!r}, kept by no step before")
            if step.op == "poll" and not (step.every > 0 and step.for_s >= 0):
                raise ValueError(f"step {step.name!r}: every must be > 0 and for_s >= 0")
        elif step.op != "barrier":
            raise ValueError(f"step {step.name!r}: unknown op {step.op!r}")
        if step.op != "barrier":
            kept.add(step.name)


def _step_results(path: Path, base: Mapping[str, Any]) -> tuple[ChildResult, ...]:
    """The results of the steps done so far (the result file's JSON lines), barriers left out."""
    results = []
    for record in _records(path):
        if record.get("outcome") in ("returned", "raised"):
            results.append(_from_record(record, {"elapsed": 0.0, **base}))
    return tuple(results)


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # cut short by a kill
        if isinstance(record, dict) and isinstance(record.get("step"), str):
            records.append(record)
    return records


def _conclude_steps(
    child: _Child,
    watch: _Watch,
    limits: Mapping[str, float],
    descendants: Sequence[psutil.Process],
    target: TargetProcess,
    barriers: dict[str, str],
) -> StepsResult:
    stacks, sockets = _end_child(child, watch, limits, descendants)
    elapsed = time.monotonic() - child.started
    returncode = child.proc.returncode
    events, threads = _read_events(child.tmp / "events")
    stderr_text = _stderr_tail(child.tmp / "stderr")
    if watch.phase == "startup":
        raise HarnessError(
            f"the target's interpreter {target.python!r} did not start within "
            f"{STARTUP_TIMEOUT:.0f} s; stderr:\n{stderr_text}"
        )
    base = {"elapsed": elapsed, "stderr": stderr_text, "returncode": returncode}
    done = [
        dataclasses.replace(r, events=tuple(e for e in events if e.step == r.step))
        for r in _step_results(child.tmp / "result", base)
    ]
    for record in _records(child.tmp / "result"):
        if record.get("outcome") not in ("returned", "raised"):
            barriers[record["step"]] = str(record.get("outcome"))
    ran = {r.step for r in done}
    outcome: Literal["ended", "hung", "crashed"] = "ended"
    if watch.phase in limits and watch.step not in ran:
        outcome = "hung"
        done.append(
            _unfinished(
                "hung",
                watch.step,
                base,
                tuple(e for e in events if e.step == watch.step),
                stacks=_annotate(stacks, threads),
                sockets=sockets,
            )
        )
    elif watch.phase != "end":
        outcome = "crashed"
        note = ""
        if watch.phase == "finish":
            note = (
                f"\nsignoff: the child did not go on within {FINISH_TIMEOUT:.0f} s "
                f"after step {watch.step} ended"
            )
        if watch.step not in ran and watch.step in limits:
            step_events = tuple(e for e in events if e.step == watch.step)
            done.append(
                _unfinished(
                    "crashed", watch.step, {**base, "stderr": stderr_text + note}, step_events
                )
            )
        stderr_text += note
    return StepsResult(
        outcome=outcome,
        steps=tuple(done),
        barriers=barriers,
        elapsed=elapsed,
        events=events,
        stderr=stderr_text,
        returncode=returncode,
    )


def _unfinished(
    outcome: Outcome,
    step: str,
    base: Mapping[str, Any],
    events: tuple[Event, ...],
    *,
    stacks: str | None = None,
    sockets: tuple[str, ...] = (),
) -> ChildResult:
    return ChildResult(
        outcome=outcome,
        step=step,
        seconds=None,
        elapsed=float(base["elapsed"]),
        stacks=stacks,
        sockets=sockets,
        events=events,
        stderr=str(base["stderr"]),
        returncode=base["returncode"],
    )


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ValueError(f"a probe timeout must be positive, not {timeout!r}")


def _poll(fd: int, timeout: float) -> bool:
    """Whether `fd` is readable within `timeout` seconds."""
    readable, _, _ = select.select([fd], [], [], max(timeout, 0.0))
    return bool(readable)


@dataclass
class _Watch:
    """The parent's view of the child while it runs."""

    step: str = "import"
    phase: str = "startup"  # startup | <a step's name> | finish | barrier | end | eof
    deadline: float = 0.0
    buffer: bytes = b""
    barrier: str = ""  # phase "barrier": the barrier the child waits at


_PAUSES = ("end", "barrier")  # the child waits for the parent: stop watching


def target_env(target: TargetProcess) -> dict[str, str]:
    """The environment of a target process: ours, the target's, its pythonpath first."""
    env = dict(os.environ)
    env.update(target.env)
    paths = [*target.pythonpath]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


@dataclass
class _Child:
    """A started probe child: its process, its folder, and the parent's ends of its pipes."""

    proc: Popen[bytes]
    tmp: Path
    status_r: int
    release_w: int
    started: float  # time.monotonic() at spawn

    def answer(self, line: str) -> None:
        """Answer a barrier. A child gone meanwhile does not read it: that is no error."""
        with contextlib.suppress(OSError):
            os.write(self.release_w, (line + "\n").encode())

    def release(self) -> None:
        """The go-ahead to exit, after "end"."""
        if self.release_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self.release_w, b"x")  # even if a fork holds the pipe open
        os.close(self.release_w)
        self.release_w = -1


@contextlib.contextmanager
def _child(target: TargetProcess, spec: dict[str, Any], *, importtime: bool) -> Iterator[_Child]:
    """Start child.py with `spec`; on leaving, kill whatever is still running, remove its files."""
    tmp = processes.temp_folder("signoff-probe-")  # recorded: a kill -9 leaves it to the reaper
    status_r, status_w = os.pipe()
    release_r, release_w = os.pipe()
    proc: Popen[bytes] | None = None
    child: _Child | None = None
    try:
        files = {name: str(tmp / name) for name in ("events", "stacks", "result")}
        spec = {
            **spec,
            **files,
            "pythonpath": [os.path.abspath(p) for p in target.pythonpath],
            "status_fd": status_w,
            "release_fd": release_r,
        }
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(spec))
        argv = [
            target.python,
            "-u",
            *(["-X", "importtime"] if importtime else []),
            str(CHILD_SCRIPT),
            str(spec_path),
        ]
        place = startups.take()  # given back when its import step ends (_watch)
        started = time.monotonic()
        with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
            try:
                proc = processes.spawn(
                    argv,
                    role="probe",
                    stdout=out,
                    stderr=err,
                    cwd=target.cwd,
                    env=target_env(target),
                    pass_fds=(status_w, release_r),
                )
            except OSError as exc:
                if place is not None:
                    place.release()
                raise HarnessError(
                    f"cannot start the target's interpreter "
                    f"{target.python!r} in {target.cwd!r}: {exc}"
                ) from exc
        startups.hold(proc.pid, place)
        os.close(status_w)
        os.close(release_r)
        status_w = release_r = -1
        child = _Child(proc, tmp, status_r, release_w, started)
        yield child
    finally:
        if child is not None:
            release_w = child.release_w
        for fd in (status_r, status_w, release_r, release_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if proc is not None:
            startups.give_back(proc.pid)
        if proc is not None and proc.returncode is None:
            # KeyboardInterrupt or a harness error: nothing stays behind
            _kill_all(proc, _descendants(proc))
        processes.remove_folder(tmp)


def _run(
    target: TargetProcess,
    spec: dict[str, Any],
    *,
    importtime: bool,
    on_event: Callable[[Event], None] | None = None,
    on_tick: OnTick | None = None,
) -> ChildResult:
    limits = {"import": float(spec["import_timeout"]), "call": float(spec["timeout"])}
    with _child(target, spec, importtime=importtime) as child:
        tail = _EventTail(child.tmp / "events", on_event) if on_event is not None else None
        start = _Watch(deadline=child.started + STARTUP_TIMEOUT)
        watch = _watch(child.proc, child.status_r, start, limits, tail, on_tick)
        descendants = _descendants(child.proc)
        if watch.phase == "end":
            child.release()
        result = _conclude(child, watch, limits, descendants, target, importtime)
        if tail is not None:
            tail.read()  # the events written after the last look
        return result


class _EventTail:
    """Hands each complete new line of the events file to `on_event`, as it is written."""

    def __init__(self, path: Path, on_event: Callable[[Event], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.offset = 0
        self.partial = b""

    def read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return  # not created yet
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            event = _parse_event(line.decode("utf-8", "replace"))
            if isinstance(event, Event):
                self.on_event(event)


def _watch(
    proc: Popen[bytes],
    status_r: int,
    watch: _Watch,
    limits: Mapping[str, float],
    tail: _EventTail | None = None,
    on_tick: OnTick | None = None,
) -> _Watch:
    """Follow the child's status lines until it ends, dies, waits at a barrier or overruns a
    deadline. `limits`: each step's timeout, by name."""
    # how often the events file is looked at, and on_tick called
    tick = 0.25 if tail is None and on_tick is None else TICK
    while True:
        if tail is not None:
            tail.read()
        if on_tick is not None:
            on_tick(proc.pid, watch.phase)
        now = time.monotonic()
        if now >= watch.deadline:
            _drain(status_r, watch, limits, now)  # a line that came in just in time counts
            if watch.phase in _PAUSES or watch.deadline <= now:
                return watch
            continue
        if _poll(status_r, min(watch.deadline - now, tick)):
            data = os.read(status_r, 4096)
            if not data:
                watch.phase = "eof"
                return watch
            _lines(watch, data, limits, time.monotonic())
            if watch.phase not in ("startup", "import"):
                startups.give_back(proc.pid)
            if watch.phase in _PAUSES:
                return watch
        elif proc.poll() is not None:
            # died while something it forked still holds the pipe open
            _drain(status_r, watch, limits, time.monotonic())
            if watch.phase != "end":
                watch.phase = "eof"
            return watch


def _drain(status_r: int, watch: _Watch, limits: Mapping[str, float], now: float) -> None:
    while _poll(status_r, 0):
        data = os.read(status_r, 4096)
        if not data:
            return
        _lines(watch, data, limits, now)


def _lines(watch: _Watch, data: bytes, limits: Mapping[str, float], now: float) -> None:
    watch.buffer += data
    *lines, watch.buffer = watch.buffer.split(b"\n")
    for raw in lines:
        words = raw.decode("utf-8", "replace").split()
        if not words:
            continue
        if words[0] == "step" and len(words) > 1 and words[1] in limits:
            watch.step = watch.phase = words[1]
            watch.deadline = now + limits[words[1]]
        elif words[0] == "done":
            watch.phase = "finish"
            watch.deadline = now + FINISH_TIMEOUT
        elif words[0] == "end":
            watch.phase = "end"
        elif words[0] == "wait" and len(words) > 1:
            watch.phase = "barrier"
            watch.barrier = words[1]


def _descendants(proc: Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(proc: Popen[bytes], descendants: Sequence[psutil.Process]) -> None:
    """Kill the child's process group, and what it started in sessions of their own."""
    processes.kill(proc)
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()
    give_up = time.monotonic() + EXIT_TIMEOUT
    while any(_alive(p) for p in descendants) and time.monotonic() < give_up:
        time.sleep(0.02)


def _alive(proc: psutil.Process) -> bool:
    """Running: neither gone nor a zombie (an orphan's zombie waits for init, not for us)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _conclude(
    child: _Child,
    watch: _Watch,
    limits: Mapping[str, float],
    descendants: Sequence[psutil.Process],
    target: TargetProcess,
    importtime: bool,
) -> ChildResult:
    proc, tmp = child.proc, child.tmp
    stacks, sockets = _end_child(child, watch, limits, descendants)
    elapsed = time.monotonic() - child.started
    returncode = proc.returncode  # -9 when it had to be killed

    events, threads = _read_events(tmp / "events")
    stderr_text = _stderr_tail(tmp / "stderr")
    rows = _importtime(tmp / "stderr") if importtime else ()
    base: dict[str, Any] = dict(
        step=watch.step,
        seconds=None,
        elapsed=elapsed,
        events=events,
        importtime=rows,
        stderr=stderr_text,
        returncode=returncode,
    )
    if watch.phase == "startup":
        raise HarnessError(
            f"the target's interpreter {target.python!r} did not start within "
            f"{STARTUP_TIMEOUT:.0f} s; stderr:\n{stderr_text}"
        )
    if watch.phase in limits:
        return ChildResult(
            outcome="hung", **{**base, "stacks": _annotate(stacks, threads), "sockets": sockets}
        )
    result = _read_result(tmp / "result")
    if watch.phase != "end" or result is None:
        note = ""
        if watch.phase == "finish":
            note = (
                f"\nsignoff: the child did not write its result within "
                f"{FINISH_TIMEOUT:.0f} s after the {watch.step} ended"
            )
        return ChildResult(outcome="crashed", **{**base, "stderr": stderr_text + note})
    return _from_record(result, base)


def _end_child(
    child: _Child, watch: _Watch, limits: Mapping[str, float], descendants: Sequence[psutil.Process]
) -> tuple[str | None, tuple[str, ...]]:
    """Let the child exit (or read its stacks and sockets if a step overran), then kill what is
    left of it. (stacks, sockets): what a hung step left."""
    stacks: str | None = None
    sockets: tuple[str, ...] = ()
    if watch.phase in ("end", "eof"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=EXIT_TIMEOUT)
    elif watch.phase in limits:
        stacks = _wait_for_dump(child.tmp / "stacks")
        sockets = _sockets(child.proc, descendants)
    _kill_all(child.proc, descendants)
    return stacks, sockets


def _from_record(result: Mapping[str, Any], base: Mapping[str, Any]) -> ChildResult:
    """A ChildResult from one result record the child wrote, over `base` (the run's fields)."""
    return ChildResult(
        outcome=result["outcome"],
        **{
            **base,
            "step": result["step"],
            "seconds": result["seconds"],
            "result_type": result.get("result_type"),
            "result_mro": tuple(result.get("result_mro") or ()),
            "result_repr": result.get("result_repr"),
            "exc_type": result.get("exc_type"),
            "exc_mro": tuple(result.get("exc_mro") or ()),
            "exc_message": result.get("exc_message"),
            "exc_where": result.get("exc_where"),
            "traceback": result.get("traceback"),
            "cycle": tuple(result["cycle"]) if result.get("cycle") else None,
            "instance_of": dict(result.get("instance_of") or {}),
            "attempts": tuple(_attempt(a) for a in result.get("attempts") or ()),
            "result_json": result.get("result_json"),
            "result_json_error": result.get("result_json_error"),
        },
    )


def _attempt(row: Sequence[Any]) -> Attempt:
    ended, seconds, outcome, type_name, instance = row
    return Attempt(float(ended), float(seconds), str(outcome), str(type_name), bool(instance))


def _wait_for_dump(path: Path) -> str | None:
    """faulthandler fires at the deadline; give it DUMP_GRACE to finish writing."""
    give_up = time.monotonic() + DUMP_GRACE
    last = -1
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size > 0 and size == last:
            break
        if time.monotonic() >= give_up:
            break
        last = size
        time.sleep(0.05)
    text = path.read_text(errors="replace") if path.exists() else ""
    return text or None


def _fmt_addr(addr: Any) -> str:
    ip, port = addr[0], addr[1]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _sockets(proc: Popen[bytes], descendants: Sequence[psutil.Process]) -> tuple[str, ...]:
    """The inet sockets the child (and what it started) has open."""
    lines: list[str] = []
    for pid in [proc.pid, *(d.pid for d in descendants)]:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for conn in conns:
            if not conn.laddr:
                continue
            local = _fmt_addr(conn.laddr)
            if conn.raddr:
                lines.append(f"{local} -> {_fmt_addr(conn.raddr)} {conn.status}")
            else:
                lines.append(f"{local} {conn.status}")
    return tuple(lines)


def _read_events(path: Path) -> tuple[tuple[Event, ...], dict[int, str]]:
    events: list[Event] = []
    threads: dict[int, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return (), {}
    for line in text.splitlines():
        parsed = _parse_event(line)
        if isinstance(parsed, Event):
            events.append(parsed)
        elif parsed is not None:
            threads[parsed[0]] = parsed[1]
    return tuple(events), threads


def _parse_event(line: str) -> Event | tuple[int, str] | None:
    """One line of the events file: an Event, a thread's (ident, name), or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None  # the last line of a killed child may be cut short
    if not isinstance(record, dict):
        return None
    kind = record.get("kind")
    if kind == "_thread":
        if isinstance(record.get("ident"), int):
            return record["ident"], str(record.get("name"))
        return None
    if not isinstance(kind, str):
        return None
    return Event(
        kind=kind,
        detail=str(record.get("detail", "")),
        where=str(record.get("where", "?")),
        at=float(record.get("at", 0.0)),
        step=str(record.get("step", "import")),
    )


def _annotate(stacks: str | None, threads: Mapping[int, str]) -> str | None:
    """Name the threads of a faulthandler dump, put the main thread first, drop child.py."""
    if not stacks:
        return stacks
    head: list[str] = []
    blocks: list[list[str]] = []
    main: int | None = None
    own_frames = f'File "{CHILD_SCRIPT}"'
    for line in stacks.splitlines():
        if own_frames in line:
            continue  # the harness's own frames, under the target's
        match = _THREAD_LINE.match(line)
        if match:
            ident = int(match[2], 16)
            name = threads.get(ident)
            if name == "MainThread":
                main = len(blocks)
            label = f"{match[1]} {match[2]}" + (f" [{name}]" if name else "") + match[3]
            blocks.append([label])
        elif blocks:
            blocks[-1].append(line)
        else:
            head.append(line)
    if main is not None:
        blocks.insert(0, blocks.pop(main))
    return "\n".join(head + [line for block in blocks for line in block]) + "\n"


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _tail_bytes(path: Path, size: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - size, 0))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stderr_tail(path: Path) -> str:
    text = _tail_bytes(path, 64 * 1024)
    lines = [
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith(("import time:", _MARKER))
    ]
    return "".join(lines)[-STDERR_TAIL:]


def _importtime(path: Path) -> tuple[tuple[str, float], ...]:
    """-X importtime rows written during the import step, slowest (cumulative) first."""
    rows: list[tuple[str, float]] = []
    inside = False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(_MARKER):
                    inside = "start" in line
                    continue
                match = _IMPORTTIME_ROW.match(line) if inside else None
                if match:
                    rows.append((match[3].strip(), int(match[2]) / 1e6))
    except OSError:
        return ()
    rows.sort(key=lambda row: row[1], reverse=True)
    return tuple(rows[:IMPORTTIME_TOP])
