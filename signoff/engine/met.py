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
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import psutil

from signoff.engine.runner import ChildResult, Event, OnTick
from signoff.faults.controller import FaultState, faulted
from signoff.faults.model import Fault

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


class FaultWindow:
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

    def __enter__(self) -> FaultWindow:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # an error inside the block reaches `faulted`, which never masks it
        return bool(self._stack.__exit__(exc_type, exc, tb))
