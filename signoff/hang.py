"""`signoff hang`: reproduce a hang locally and show where it is stuck.

The target's services and dependencies are started as for a run, each behind its own fault
proxy, the fault is put in force (by default `hang` on every one of them, the case the seeds
describe),
and the module is imported (or the callable called) in a fresh interpreter, as an import or a
timeout claim would. While it runs, every connect, subprocess and thread it starts is printed
as it happens; at the timeout, the stuck frame, the address it waits on, its open sockets and
the stack of every thread. Exit status: 1 it hangs, 0 it ended in time (returned, raised or
died), 2 bad command line or claims file, 3 the harness could not run, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from signoff import processes
from signoff.claims import ClaimsFile, load_claims
from signoff.context import RunContext
from signoff.engine.evidence import (
    crash_details,
    describe_exception,
    hang_details,
    stuck_frame,
)
from signoff.engine.runner import ChildResult, Event, TargetProcess, run_call, run_import
from signoff.errors import UsageError
from signoff.faults import FAULT_KINDS, Fault, ProxyHub, parse_fault
from signoff.ledger import Ledger
from signoff.report.run_info import RunInfo
from signoff.services import SERVICE_NAMES, Surroundings, start_with_dependencies, stop_services
from signoff.units import format_duration, parse_duration

DEFAULT_TIMEOUT = 10.0  # without --timeout and without [imports].timeout
SERVICES_TIMEOUT = 120.0  # to start the services, before the clock starts
EXIT_HANGS = 1

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"{_NAME}(\.{_NAME})*")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

FaultPlan = dict[str, Fault | None]
"""Per service or dependency of the target, the fault to put in force (None: pass-through)."""


@dataclass(frozen=True)
class HangTarget:
    """What to run: `module` imported, then `attr` called when it is a callable reference."""

    module: str
    attr: str | None

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.attr}" if self.attr else self.module

    @property
    def what(self) -> str:
        return f"call {self.ref}" if self.attr else f"import {self.module}"


def parse_target(text: str) -> HangTarget:
    """`pkg.mod` (imported) or `pkg.mod:attr[.method]` (called); UsageError otherwise."""
    module, sep, attr = text.strip().partition(":")
    if not _DOTTED.fullmatch(module) or (sep and not _DOTTED.fullmatch(attr)):
        raise UsageError(
            f"MODULE_OR_CALLABLE: expected a module (like core.tasks) or a callable "
            f"(like core.health:ping_redis), not {text!r}"
        )
    return HangTarget(module, attr if sep else None)


def parse_faults(values: Sequence[str] | None, services: Sequence[str]) -> FaultPlan:
    """The --fault options against the target's services and dependencies (`services`: their
    names). None or []: `hang` on every one. Each value is SERVICE:FAULT (`redis:hang`,
    `postgres:latency:2s`, `edge_tts:refuse`, `redis:none`), a FAULT for every one (`refuse`),
    or `none` (no fault at all)."""
    if not values:
        return {name: Fault("hang") for name in services}
    plan: FaultPlan = {name: None for name in services}
    named: set[str] = set()
    for value in values:
        text = value.strip()
        head, sep, rest = text.partition(":")
        if text == "none":
            if len(values) > 1:
                raise UsageError("--fault none: means no fault at all; give it alone")
            return plan
        if sep and (head in SERVICE_NAMES or head in services):
            if head not in services:
                used = ", ".join(services) or "none"
                raise UsageError(
                    f"--fault {value}: the target does not use {head} (it uses: {used})"
                )
            if head in named:
                raise UsageError(f"--fault {value}: a second fault for {head}; give one each")
            named.add(head)
            plan[head] = None if rest.strip() == "none" else _fault(value, rest)
        elif sep and head not in FAULT_KINDS:
            known = ", ".join(dict.fromkeys([*SERVICE_NAMES, *services]))
            raise UsageError(
                f"--fault {value}: unknown service {head!r}; expected SERVICE:FAULT with "
                f"SERVICE one of {known} (like redis:hang)"
            )
        else:
            fault = _fault(value, text)
            if not services:
                raise UsageError(
                    f"--fault {value}: the target uses no services nor dependencies ([target])"
                )
            if named or len(values) > 1:
                raise UsageError(
                    f"--fault {value}: a fault for every service; give it alone, or "
                    "SERVICE:FAULT once per service"
                )
            return {name: fault for name in services}
    return plan


def _fault(value: str, text: str) -> Fault:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise UsageError(
            f"--fault {value}: {exc}; give SERVICE:FAULT (like redis:hang), a FAULT for "
            "every service, or none"
        ) from None


def resolve_timeout(value: str | None, claims: ClaimsFile) -> float:
    """--timeout, else [imports].timeout, else 10 s."""
    if value is None:
        return claims.imports.timeout if claims.imports is not None else DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--timeout {value}: {exc}") from None
    if not seconds > 0:
        raise UsageError(f"--timeout {value}: expected a duration above 0, like 5s")
    return seconds


# -- addresses: what the target sees, and what is behind it ---------------------------------


class Addresses:
    """Names the loopback addresses of the services and of their fault proxies."""

    def __init__(self) -> None:
        self._notes: dict[str, str] = {}

    def add(self, port: int, note: str) -> None:
        for host in _LOOPBACK_HOSTS:
            self._notes[f"{host}:{port}"] = note

    def note(self, address: str) -> str | None:
        return self._notes.get(address.strip())

    def annotate(self, address: str) -> str:
        """`address`, with the service behind it when it is one of ours."""
        note = self.note(address)
        return f"{address} ({note})" if note else address

    def annotate_detail(self, detail: str) -> str:
        """An event's detail ("connect 127.0.0.1:41234"), annotated."""
        note = self.note(detail.rsplit(" ", 1)[-1])
        return f"{detail} ({note})" if note else detail

    def annotate_socket(self, line: str) -> str:
        """A socket line ("127.0.0.1:5 -> 127.0.0.1:6 ESTABLISHED"), its peer annotated."""
        head = line.rpartition(" ")[0]
        if " -> " not in head:
            return line
        note = self.note(head.split(" -> ", 1)[1])
        return f"{line} ({note})" if note else line


# -- the command ------------------------------------------------------------------------------


def hang(
    target_ref: str,
    *,
    claims_path: str = "signoff.toml",
    faults: Sequence[str] | None = None,
    timeout: str | None = None,
    backend: str = "auto",
    out: TextIO | None = None,
) -> int:
    """Run `signoff hang`; the exit status. Raises UsageError/ClaimsError (exit 2) before
    anything is started, ServiceError/HarnessError (3), KeyboardInterrupt (130)."""
    stream = out if out is not None else sys.stdout
    what = parse_target(target_ref)
    claims = load_claims(claims_path)
    services = [*claims.target.services, *claims.target.dependencies]
    plan = parse_faults(faults, services)
    seconds = resolve_timeout(timeout, claims)

    say = _Printer(stream)

    with _interrupt_on_sigterm():
        for line in processes.reap_leftovers():
            print(f"signoff: stopped a leftover of a killed run: {line}", file=sys.stderr)
        with _services(claims, backend) as ctx, ctx.claim_setup() as setup:
            addresses = Addresses()
            for name, service in ctx.services.items():
                proxy = setup.proxies[name]
                real = f"{service.host}:{service.port}"
                addresses.add(proxy.address[1], f"{name}, via signoff's fault proxy to {real}")
                addresses.add(service.port, f"{name}, directly, not via signoff's fault proxy")
                fault = plan.get(name)
                say(
                    f"{name}: {service.describe()} at {real}; the target reaches it through "
                    f"{proxy.address[0]}:{proxy.address[1]}, fault: {fault or 'none'}"
                )
                proxy.set_fault(fault)
                if fault is not None and fault.kind == "kill":
                    if service.can_kill:
                        service.kill()
                    else:
                        say(f"{name}: cannot be killed here: the proxy emulates the kill")
            say(f"{what.what}: timeout {format_duration(seconds)}; what it connects to:")
            result = _probe(setup.target, what, seconds, _event_printer(say, what, addresses))
            return _report(say, result, what, seconds, setup.target.pythonpath, addresses)


class _Printer:
    """Prints and flushes each line at once; a reader that went away (`| head`) does not stop
    the command: it still cleans up and exits with its status."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def __call__(self, line: str) -> None:
        if self.gone:
            return
        try:
            print(line, file=self.stream, flush=True)
        except BrokenPipeError:
            self.gone = True
            with contextlib.suppress(OSError, ValueError):  # no more errors at exit's flush
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)


@contextlib.contextmanager
def _services(claims: ClaimsFile, backend: str) -> Iterator[RunContext]:
    """A run context with the target's services and dependencies and a proxy hub; everything
    stopped after, whatever happens (a second Ctrl-C during the clean-up included)."""
    scratch = tempfile.TemporaryDirectory(prefix="signoff-hang-")  # hang writes no report
    folder = Path(scratch.name)
    ctx = RunContext(
        claims=claims,
        report_dir=folder,
        ledger=Ledger(folder / "ledger.jsonl"),
        info=RunInfo(target=claims.target.name, claims_file=str(claims.path)),
        deadline=time.monotonic() + SERVICES_TIMEOUT,
    )
    try:
        ctx.services = start_with_dependencies(
            list(claims.target.services),
            claims.target.dependencies,
            Surroundings.of(claims, folder),  # a dependency's log goes with the scratch folder
            backend=backend,
            timeout=SERVICES_TIMEOUT,
        )
        ctx.hub = ProxyHub()
        ctx.hub.start()
        yield ctx
    finally:
        with _uninterrupted():
            try:
                if ctx.hub is not None:
                    ctx.hub.close()
                stop_services(ctx.services)
            finally:
                processes.stop_all()
                scratch.cleanup()


@contextlib.contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the command like Ctrl-C (KeyboardInterrupt), so everything is stopped."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: the caller's business
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the clean-up (which has deadlines of its own) runs."""
    try:
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _probe(
    target: TargetProcess, what: HangTarget, seconds: float, on_event: Callable[[Event], None]
) -> ChildResult:
    if what.attr is None:
        return run_import(target, what.module, timeout=seconds, on_event=on_event)
    return run_call(target, what.ref, timeout=seconds, import_timeout=seconds, on_event=on_event)


def _event_printer(
    say: Callable[[str], None], what: HangTarget, addresses: Addresses
) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        step = f"[{event.step}] " if what.attr is not None else ""
        detail = addresses.annotate_detail(event.detail)
        say(f"  {event.at:7.3f} s  {step}{event.kind}: {detail} from {event.where}")

    return on_event


def _report(
    say: Callable[[str], None],
    result: ChildResult,
    what: HangTarget,
    seconds: float,
    roots: Sequence[str],
    addresses: Addresses,
) -> int:
    # a callable whose module never finished importing hangs (or ends) in its import
    label = what.what
    if what.attr is not None and result.step == "import":
        label = f"import {what.module} (before {what.what})"
    if result.outcome == "hung":
        say(f"HANGS: {label} still running after {format_duration(seconds)}")
        frame = stuck_frame(result.stacks, roots)
        say(f"stuck at {frame}" if frame else "stuck at: no frame of the target's own code")
        waiting = result.waiting_on
        say(
            f"waiting on {addresses.annotate(waiting)}"
            if waiting
            else "waiting on: no network peer (not waiting on a connection?)"
        )
        annotated = dataclasses.replace(
            result, sockets=tuple(addresses.annotate_socket(s) for s in result.sockets)
        )
        details = hang_details(annotated)
        if details:
            say("")
            say(details)
        return EXIT_HANGS
    if result.outcome == "crashed" or result.seconds is None:
        say(
            f"{label} ended in {format_duration(result.elapsed)} (interpreter start "
            f"included): its interpreter died (exit status {result.returncode})"
        )
        details = crash_details(result)
        if details:
            say(details)
        return 0
    took = format_duration(result.seconds)
    if result.outcome == "raised":
        say(f"{label} ended in {took}: raised {describe_exception(result)}")
        if result.cycle:
            say("circular import: " + " -> ".join(result.cycle))
        if result.traceback:
            say(result.traceback.rstrip())
        return 0
    value = ""
    if what.attr is not None and result.step == "call":
        value = f" {result.result_repr} ({(result.result_type or '?').replace(':', '.')})"
    say(f"{label} ended in {took}: returned{value}")
    return 0
