"""Put a fault in force around a block of code, then lift it and wait for the service to answer.

Every fault is applied on the claim's own FaultProxy; `kill` also kills the real server
(when the service can be killed) and restarts it afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from signoff.errors import ServiceError
from signoff.faults.model import Fault
from signoff.faults.proxy import FaultProxy

RETRY_PAUSE = 0.1


class ServiceLike(Protocol):
    """What the controller needs of a service (signoff.services' Service has these members)."""

    @property
    def name(self) -> str: ...

    @property
    def can_kill(self) -> bool: ...

    def kill(self) -> None: ...

    def restart(self, timeout: float) -> None: ...

    def ping(self, timeout: float) -> None: ...

    def url_for(self, host: str, port: int) -> str: ...


@dataclass
class FaultState:
    """What `faulted` did: `emulated` is True when the proxy alone stood in for the fault.
    `met` is how many client connections the proxy saw meet the fault while it was in force
    (set when the fault is lifted; `met_so_far()` reads it while it is)."""

    fault: Fault | None
    service: str
    emulated: bool = False
    note: str | None = None
    met: int = 0
    proxy: FaultProxy | None = None
    met_before: int = 0

    def met_so_far(self) -> int:
        if self.proxy is None:
            return self.met
        return self.proxy.met - self.met_before


@contextmanager
def faulted(
    fault: Fault | None, *, service: ServiceLike, proxy: FaultProxy, settle: float = 10.0
) -> Iterator[FaultState]:
    """Put `fault` in force for the duration of the with-block, then lift it and wait (up to
    `settle` seconds) until the service answers a ping through the proxy again; raise
    ServiceError if it does not.

    `kill` kills the real server too when `service.can_kill`; otherwise the proxy alone
    emulates it (new connections are refused, existing ones reset) and the yielded
    FaultState says so. An error raised inside the block is never masked: a failed recovery
    is then added to it as a note.
    """
    state = FaultState(fault, service.name, proxy=proxy, met_before=proxy.met)
    if fault is None:
        proxy.set_fault(None)
        yield state
        return
    killed = False
    try:
        proxy.set_fault(fault)
        if fault.kind == "kill":
            if service.can_kill:
                service.kill()
                killed = True
            else:
                state.emulated = True
                state.note = (
                    f"{service.name} cannot be killed here (not the harness's own process): "
                    "the proxy emulated the kill; the server itself kept running"
                )
        yield state
    except BaseException as exc:
        state.met = state.met_so_far()
        try:
            _lift(fault, service, proxy, settle, restart=killed)
        except Exception as lift_error:
            exc.add_note(f"and after the fault: {lift_error}")
        raise
    else:
        state.met = state.met_so_far()
        _lift(fault, service, proxy, settle, restart=killed)


def _lift(
    fault: Fault, service: ServiceLike, proxy: FaultProxy, settle: float, *, restart: bool
) -> None:
    deadline = time.monotonic() + settle
    try:
        if restart:
            service.restart(timeout=settle)
    finally:
        proxy.set_fault(None)
    wait_answering(service, proxy, max(0.0, deadline - time.monotonic()), after=str(fault))


def wait_answering(
    service: ServiceLike, proxy: FaultProxy, timeout: float, *, after: str = ""
) -> None:
    """Wait until the service answers a ping and a new connection through `proxy` reaches it."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            service.ping(timeout=max(0.2, min(2.0, left)))
            proxy.check(timeout=max(0.2, min(2.0, left)))
            return
        except Exception as exc:  # whatever the service's client raises while it is not back
            if time.monotonic() + RETRY_PAUSE >= deadline:
                lifted = f" after lifting {after}" if after else ""
                raise ServiceError(
                    f"{service.name} did not answer through the proxy within {timeout:.1f} s"
                    f"{lifted}: {exc}"
                ) from exc
        time.sleep(RETRY_PAUSE)
