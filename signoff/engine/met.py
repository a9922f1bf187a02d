"""A fault the call never meets proves nothing: how many connections of the claim's own process
met its fault, while the fault was in force, in the measured steps (never in a warmup).

Four witnesses, each blind somewhere:
- the claim's proxy (`FaultState.met`): connections it accepted while the fault was in force,
  and open (pooled) ones that carried the client's bytes while it was. With refuse, kill and
  blackhole it accepts nothing: nothing listens, or the SYN is dropped.
- the child's audit hook: every `connect` to the proxy's address made from Python code.
  A connect made in C code (libpq's, under psycopg) is out of its sight.
- the child's sockets, sampled while the measured steps run (blackhole only): a connect nobody
  answers stays SYN-SENT for its whole timeout, whatever code made it.
- the call's own error (refuse and kill only): a refused connect lasts microseconds, but a
  client that names the address it was refused by (libpq: `connection to server at
  "127.0.0.1", port 41235 failed: Connection refused`) saw it happen.

Counting each connection once: with hang, reset, latency and slow the proxy accepts every
connect, so it has counted each one the hook saw, and the larger of the two counts is taken.
With refuse, kill and blackhole the proxy's count is of connections opened before the fault
(pooled), and the new attempts are seen only on the client side, where one attempt may be seen
by the hook, the sockets and the error at once: the largest of those three, plus the proxy's.

With several faults at once (`faults = {...}`, `FaultWindows`), each is counted on its own proxy
and each must be met: a chain that skips a link it claims to try is caught this way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

import psutil

from signoff.engine.runner import ChildResult, Event, OnTick
from signoff.faults.controller import FaultState, faulted
from signoff.faults.model import Fault
from signoff.verdict import Verdict

if TYPE_CHECKING:  # the run context is the caller's: the engine imports no kind, nor the run
    from signoff.context import ClaimSetup, RunContext

NOT_LISTENING = ("refuse", "kill", "blackhole")  # the proxy accepts no new connection
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_REFUSAL = re.compile(r"refused|ECONNREFUSED|Errno 111\b", re.IGNORECASE)


@dataclass(frozen=True)
class Met:
    """The connections that met one fault. `at_proxy`: counted by the proxy; `attempts`: new
    connects seen on the client side (refuse, kill, blackhole only; `seen_by` says how)."""

    fault: Fault
    service: str
    at_proxy: int = 0
    attempts: int = 0
    seen_by: str = ""  # "hook", "sockets" or "error": the witness of `attempts`

    @property
    def total(self) -> int:
        return self.at_proxy + self.attempts

    def describe(self) -> str:
        """ "2 connections met the hang", "1 connect refused", or why the claim proves nothing."""
        if self.total == 0:
            return f"the call never connected to {self.service}: the {self.fault} was not exercised"
        if self.fault.kind not in NOT_LISTENING:
            return f"{_count(self.at_proxy, 'connection')} met the {self.fault}"
        parts = []
        if self.at_proxy:
            parts.append(f"{_count(self.at_proxy, 'open connection')} met the {self.fault}")
        if self.attempts:
            what = "never answered" if self.fault.kind == "blackhole" else "refused"
            parts.append(f"{_count(self.attempts, 'connect')} {what}")
            if self.seen_by == "error":
                parts[-1] += " (named by the call's own error: a connect made in C code)"
            elif self.seen_by == "sockets":
                parts[-1] += " (seen SYN-SENT among its sockets: a connect made in C code)"
        return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def missing_targets(
    faults: Iterable[str], services: Collection[str], proxies: Collection[str]
) -> list[str]:
    """The faulted names the run has no service, dependency or proxy for."""
    return [name for name in faults if name not in services or name not in proxies]


def missing_evidence(missing: Sequence[str]) -> str:
    """The evidence of a claim whose faults name what the run does not have."""
    verb = "is" if len(missing) == 1 else "are"
    names = " and ".join(missing)
    return f"could not check: {names} {verb} not among the run's services and dependencies"


def describe_faults(faults: Mapping[str, Fault]) -> str:
    """ "redis kill", or "edge_tts refuse, coqui_tts hang": a claim's faults, for its budget."""
    return ", ".join(f"{name} {fault}" for name, fault in faults.items())


def figures_by_fault(figures: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """The `measured` figures of what met a claim's faults, from each fault's (by service or
    dependency): one fault's as they are; with several, `connections_met` is their sum and
    each fault's figures follow under its name ("connections_met_coqui_tts")."""
    if len(figures) == 1:
        return dict(next(iter(figures.values())))
    merged = {"connections_met": sum(one.get("connections_met", 0) for one in figures.values())}
    for name, one in figures.items():
        merged.update({f"{key}_{name}": value for key, value in one.items()})
    return merged


def as_mets(met: Met | Sequence[Met] | None) -> tuple[Met, ...]:
    """What met a claim's faults, whichever way a caller has it: none, one, or one per fault."""
    if met is None:
        return ()
    return (met,) if isinstance(met, Met) else tuple(met)


def met_lines(mets: Sequence[Met]) -> list[str]:
    """What met each fault, for the evidence: one fault's line as `Met.describe` says it; with
    several, the faults nobody met first ("the call never connected to coqui_tts: ..."), then
    the others, each after its name ("edge_tts: 1 connect refused")."""
    if len(mets) == 1:
        return [mets[0].describe()]
    unmet = [m.describe() for m in mets if m.total == 0]
    return unmet + [f"{m.service}: {m.describe()}" for m in mets if m.total > 0]


def met_figures(mets: Sequence[Met]) -> dict[str, int]:
    """`measured` figures of `mets`: `connections_met`, and each fault's with several."""
    return figures_by_fault({m.service: {"connections_met": m.total} for m in mets})


def judge_met(verdict: Verdict, met: Met | Sequence[Met] | None) -> None:
    """A call that never met one of its faults proves nothing: what would hold is `error`,
    naming the fault nobody met; what fails still fails (it did what the claim says it must
    not), and says so too. `met`: what met the claim's fault, or each of its faults (none: the
    claim put no fault in force, and there is nothing to say)."""
    mets = as_mets(met)
    if not mets:
        return
    verdict.measured.update(met_figures(mets))
    lines = "\n".join(met_lines(mets))
    if any(m.total == 0 for m in mets) and verdict.status == "holds":
        verdict.status = "error"
        verdict.evidence = f"{lines}\n{verdict.evidence}"
    else:
        verdict.evidence += f"\n{lines}"


def count_met(
    fault: Fault,
    service: str,
    *,
    at_proxy: int,
    address: tuple[str, int],
    results: Iterable[ChildResult | None],
    events: Iterable[Event],
    steps: Collection[str],
    sampled: int = 0,
) -> Met:
    """How many connections met `fault` on the proxy at `address`. `results`: the measured
    steps' results (their errors may name a refused connect); `events`: the child's events, of
    which those of `steps` count; `sampled`: SYN-SENT sockets a SocketSampler saw."""
    hooked = connect_attempts(events, address, steps)
    if fault.kind not in NOT_LISTENING:
        return Met(fault, service, at_proxy=max(at_proxy, hooked))
    named = 0
    if fault.kind != "blackhole":
        named = int(any(refused_in_error(r, address[1]) for r in results if r is not None))
    seen = {"hook": hooked, "sockets": sampled if fault.kind == "blackhole" else 0, "error": named}
    seen_by = max(seen, key=lambda k: seen[k])
    attempts = seen[seen_by]
    return Met(fault, service, at_proxy=at_proxy, attempts=attempts, seen_by=seen_by)


def connect_attempts(
    events: Iterable[Event], address: tuple[str, int], steps: Collection[str]
) -> int:
    """The audit hook's `connect` events to `address` (any loopback spelling) in `steps`."""
    return sum(
        1
        for e in events
        if e.kind == "network"
        and e.step in steps
        and e.detail.startswith("connect ")
        and _is_address(e.detail.removeprefix("connect "), address)
    )


def _is_address(text: str, address: tuple[str, int]) -> bool:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    wanted = address[0]
    same_host = host == wanted or (host in _LOOPBACK and wanted in _LOOPBACK)
    return same_host and port == str(address[1])


def refused_in_error(result: ChildResult, port: int) -> bool:
    """Whether the step's exception (its message or its chained traceback) says a connect to
    `port` was refused."""
    for text in (result.exc_message or "", result.traceback or ""):
        if re.search(rf"(?:\bport\s+|:){port}\b", text) and _REFUSAL.search(text):
            return True
    return False


@dataclass
class SocketSampler:
    """`on_tick` for run_call / run_steps: notes the child's sockets connecting to `address`
    (SYN-SENT, by local port) while one of `steps` runs."""

    address: tuple[str, int]
    steps: Collection[str]
    connecting: set[int] = field(default_factory=set)

    def __call__(self, pid: int, phase: str) -> None:
        if phase not in self.steps:
            return
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            return  # gone, or not ours to read: the other witnesses remain
        for conn in conns:
            raddr = conn.raddr
            if (
                raddr
                and conn.status == psutil.CONN_SYN_SENT
                and _is_address(f"{raddr[0]}:{raddr[1]}", self.address)
            ):
                self.connecting.add(conn.laddr[1])

    @property
    def count(self) -> int:
        return len(self.connecting)


class ExitsItsStack:
    """A context manager whose exit is its ExitStack's: what it put in force is lifted, the
    last first, and an error inside the block is never masked."""

    _stack: contextlib.ExitStack

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return bool(self._stack.__exit__(exc_type, exc, tb))


class FaultWindow(ExitsItsStack):
    """A claim's fault (if it has one) on its own proxy: put in force by `put()` (at once, or at
    a warmup's barrier), lifted by `lift()` or when the with-block ends; `met()` then counts the
    connections that met it in the measured `steps`."""

    def __init__(
        self,
        ctx: RunContext,
        setup: ClaimSetup,
        service: str | None,
        fault: Fault | None,
        steps: Collection[str],
    ) -> None:
        self.ctx = ctx
        self.service = service
        self.fault = fault if service is not None else None
        self.steps = steps
        self.proxy = setup.proxies[service] if service is not None and fault is not None else None
        self.sampler: SocketSampler | None = None
        if self.proxy is not None and fault is not None and fault.kind == "blackhole":
            self.sampler = SocketSampler(self.proxy.address, steps)
        self.state: FaultState | None = None
        self._stack = contextlib.ExitStack()

    @property
    def on_tick(self) -> OnTick | None:
        return self.sampler

    @property
    def note(self) -> str | None:
        return self.state.note if self.state is not None else None

    def put(self) -> None:
        """Put the fault in force (once; nothing without a fault)."""
        if self.fault is None or self.proxy is None or self.service is None or self.state:
            return
        self.state = self._stack.enter_context(
            faulted(self.fault, service=self.ctx.services[self.service], proxy=self.proxy)
        )

    def lift(self) -> None:
        """Lift it: a killed server restarts and answers before this returns."""
        self._stack.close()

    def met(self, results: Iterable[ChildResult | None], events: Iterable[Event]) -> Met | None:
        """The connections that met the fault; None when no fault was put in force. Read it
        once the fault is lifted (the proxy's count is final then)."""
        if self.state is None or self.fault is None or self.proxy is None:
            return None
        return count_met(
            self.fault,
            self.state.service,
            at_proxy=self.state.met,
            address=self.proxy.address,
            results=results,
            events=events,
            steps=self.steps,
            sampled=self.sampler.count if self.sampler is not None else 0,
        )


class FaultWindows(ExitsItsStack):
    """Every fault of a claim (`planned_faults()`: {service or dependency: fault}), each on its
    own proxy in a FaultWindow: all put in force by `put()` (at once, or at a warmup's barrier),
    all lifted by `lift()` or when the with-block ends; `met()` counts, for each, the
    connections that met it in the measured `steps`. `missing`: the names the run has no
    service (or proxy) for; the windows are empty then, and the claim cannot be checked."""

    def __init__(
        self,
        ctx: RunContext,
        setup: ClaimSetup,
        faults: Mapping[str, Fault],
        steps: Collection[str],
    ) -> None:
        self.missing = missing_targets(faults, ctx.services, setup.proxies)
        self.windows: list[FaultWindow] = []
        if not self.missing:
            self.windows = [
                FaultWindow(ctx, setup, name, fault, steps) for name, fault in faults.items()
            ]
        self._stack = contextlib.ExitStack()
        for window in self.windows:
            self._stack.enter_context(window)

    def missing_evidence(self) -> str:
        return missing_evidence(self.missing)

    @property
    def on_tick(self) -> OnTick | None:
        ticks = [w.on_tick for w in self.windows if w.on_tick is not None]
        if not ticks:
            return None
        if len(ticks) == 1:
            return ticks[0]

        def every(pid: int, phase: str) -> None:
            for tick in ticks:
                tick(pid, phase)

        return every

    @property
    def note(self) -> str | None:
        notes = [w.note for w in self.windows if w.note]
        return "; ".join(notes) if notes else None

    def put(self) -> None:
        """Put every fault in force (once each)."""
        for window in self.windows:
            window.put()

    def lift(self) -> None:
        """Lift every fault, the last put first; each is lifted even when another's service
        does not come back (that error is raised once all are lifted)."""
        with contextlib.ExitStack() as lifting:
            for window in self.windows:
                lifting.callback(window.lift)

    def met(self, results: Iterable[ChildResult | None], events: Iterable[Event]) -> list[Met]:
        """What met each fault put in force (none when none was); read once they are lifted."""
        results, events = list(results), list(events)
        return [m for w in self.windows if (m := w.met(results, events)) is not None]
