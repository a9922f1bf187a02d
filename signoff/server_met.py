"""Whether a claim's fault met the served target ([[http]], [[websocket]]): "a fault the call
never meets proves nothing" (shared/CLAIMS.md).

Counted while the fault is in force, from the moment it is until the last request is answered:

- `met`: the server's connections that met the fault at its proxy (`FaultProxy.met`): accepted
  while the fault was in force, or already open and carrying the server's bytes while it was.
- `attempts`, for the faults whose connects never reach the proxy (refuse, kill: nothing
  listens; blackhole: the SYN is dropped): the server's connect attempts to the proxy's address,
  from its connect log (an `app` served by signoff, see `_signoff_connects.py`) and, under
  blackhole, from its sockets seen in SYN-SENT towards the proxy (psutil, every 20 ms: this also
  sees a `command` server and connects made in C).
- `background_met`: the same proxy count for the background processes (their own proxies). Not
  counted as the request meeting the fault: a worker polling its broker meets every redis fault
  whatever the request did. Their refused connects are not seen at all.

Nothing met and nothing attempted: the fault was not exercised (the claim is `error`), unless
signoff could not have seen an attempt; then `unseen` says why (also `error`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

from signoff.faults.model import Fault, FaultKind
from signoff.faults.proxy import FaultProxy
from signoff.server import TargetServer

PROXY_BLIND: tuple[FaultKind, ...] = ("refuse", "kill", "blackhole")  # never reach the proxy
CLOSES_OPEN: tuple[FaultKind, ...] = ("refuse", "kill", "reset")  # close open connections
SAMPLE_EVERY = 0.02
SETTLE = 0.05  # nothing seen: let the proxy's loop accept what the kernel already queued
JOIN_TIMEOUT = 2.0
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::ffff:127.0.0.1")


@dataclass
class Met:
    """What met one claim's fault (see the module's doc)."""

    kind: FaultKind
    met: int = 0
    attempts: int = 0
    background_met: int | None = None  # None: no background processes
    unseen: str | None = None  # why an attempt could have gone unseen, when none was seen

    @property
    def exercised(self) -> bool:
        return self.met > 0 or self.attempts > 0

    def summary(self) -> str:
        """ "3 connections met the hang", "2 connect attempts refused"; "" for none."""
        parts: list[str] = []
        if self.met:
            parts.append(f"{_count(self.met, 'connection')} met the {_NOUNS[self.kind]}")
        if self.attempts:
            how = "blackholed" if self.kind == "blackhole" else "refused"
            parts.append(f"{_count(self.attempts, 'connect attempt')} {how}")
        return " and ".join(parts)

    def seen(self) -> str:
        """What was seen when nothing met the fault, for the evidence."""
        looked = "no connection of the server met it at the proxy"
        if self.kind in PROXY_BLIND:
            looked += " and no connect attempt to the proxy was seen"
        return looked

    def background_note(self) -> str:
        """ "" or why the background processes' meetings are not the request's."""
        if not self.background_met:
            return ""
        return (
            f"; the background processes met it on {_count(self.background_met, 'connection')}"
            ", which does not count: they reach it on their own, whatever the request does"
        )

    def measured(self) -> dict[str, int]:
        """`connections_met` (as [[timeouts]] has it): at the proxy plus the connect attempts;
        `connect_attempts`: those seen on the server's side (the faults the proxy cannot see)."""
        figures = {"connections_met": self.met + self.attempts}
        if self.kind in PROXY_BLIND:
            figures["connect_attempts"] = self.attempts
        if self.background_met is not None:
            figures["background_met"] = self.background_met
        return figures


_NOUNS: dict[str, str] = {
    "hang": "hang",
    "blackhole": "blackhole",
    "refuse": "refusal",
    "reset": "reset",
    "latency": "latency",
    "slow": "slow answers",
    "kill": "kill",
}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _is_proxy(address: tuple[str, int], proxy: FaultProxy) -> bool:
    host, port = address
    return port == proxy.address[1] and (host == proxy.address[0] or host in LOOPBACK_NAMES)


class FaultWatch:
    """Counts what meets `fault` on `service` between `start()` and `stop()`. `open_before`: the
    server's connections open through the proxy just before the fault came."""

    def __init__(
        self, server: TargetServer, service: str, fault: Fault, open_before: int = 0
    ) -> None:
        self.server = server
        self.service = service
        self.kind = fault.kind
        self.proxy = server.proxies[service]
        self.background = server.background_proxies.get(service)
        self.open_before = open_before
        self._met0 = 0
        self._bg0 = 0
        self._mark = 0
        self._syn_ports: set[int] = set()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        """Once the fault is in force."""
        self._met0 = self.proxy.met
        self._bg0 = self.background.met if self.background is not None else 0
        self._mark = self.server.connects_mark()
        if self.kind == "blackhole":
            self._sampler = threading.Thread(
                target=self._sample_loop, name="signoff-syn-sent", daemon=True
            )
            self._sampler.start()

    def stop(self) -> Met:
        """After the last request; before the fault is lifted."""
        met = self._read()
        if not met.exercised:
            time.sleep(SETTLE)
            met = self._read()
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(JOIN_TIMEOUT)
            self._sample()
            met.attempts = max(met.attempts, len(self._syn_ports))
        if not met.exercised:
            met.unseen = self._why_unseen()
        return met

    def _read(self) -> Met:
        attempts = 0
        if self.kind in PROXY_BLIND:
            logged = self.server.connects_since(self._mark)
            attempts = sum(1 for address in logged if _is_proxy(address, self.proxy))
        return Met(
            self.kind,
            met=self.proxy.met - self._met0,
            attempts=max(attempts, len(self._syn_ports)),
            background_met=(
                None
                if self.background is None or not self.server.background
                else self.background.met - self._bg0
            ),
        )

    def _why_unseen(self) -> str | None:
        if self.kind in ("refuse", "kill"):
            refused = "a refused connect never reaches the proxy"
            if self.server.connects_path is None:
                return (
                    f"{refused}, and the server is the claims file's own command, whose "
                    "connects signoff cannot watch (it can for an `app` it serves)"
                )
            blind = self.server.connects_blind()
            if blind:
                return (
                    f"{refused}, and the server imported {' and '.join(blind)}, whose connects "
                    "signoff cannot see"
                )
        if self.open_closed_by_fault:
            return (
                f"the server held {_count(self.open_before, 'connection')} to {self.service} "
                f"open when the {self.kind} closed {'it' if self.open_before == 1 else 'them'}, "
                "and a client's use of a connection already closed under it is not seen"
            )
        return None

    @property
    def open_closed_by_fault(self) -> bool:
        return self.kind in CLOSES_OPEN and self.open_before > 0

    def _sample_loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(SAMPLE_EVERY):
                return

    def _sample(self) -> None:
        """The server's sockets in SYN-SENT towards the proxy: blackholed connect attempts."""
        for pid in self.server.pids():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            for conn in conns:
                if (
                    conn.status == psutil.CONN_SYN_SENT
                    and conn.raddr
                    and _is_proxy((conn.raddr.ip, conn.raddr.port), self.proxy)
                ):
                    self._syn_ports.add(conn.laddr.port)
