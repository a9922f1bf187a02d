"""A [[websocket]] claim's faults, in force on the served target's proxies for the whole
measurement (the server's own proxy for each service or dependency, and the background
processes' when there is one), each counted by the served target's FaultWatch: a fault the
server never met proves nothing, and with several each one must be met."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from signoff.context import RunContext
from signoff.engine.met import ExitsItsStack, missing_targets
from signoff.faults.controller import FaultState, faulted
from signoff.faults.model import Fault
from signoff.server import TargetServer
from signoff.server_met import FaultWatch, Met


def _fault_watch(server: TargetServer, name: str, fault: Fault, open_before: int) -> FaultWatch:
    return FaultWatch(server, name, fault, open_before=open_before)


class ServerFaults(ExitsItsStack):
    """`with ServerFaults(ctx, server, planned) as faults:` every fault in force for the block
    (none when `missing` names what the run does not have); `faults.met()` before it ends."""

    def __init__(self, ctx: RunContext, server: TargetServer, planned: Mapping[str, Fault]):
        self.ctx = ctx
        self.server = server
        self.planned = dict(planned)
        self.missing = missing_targets(planned, ctx.services, server.proxies)
        self.states: list[FaultState] = []
        self._watches: dict[str, FaultWatch] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ServerFaults:
        if self.missing:
            return self
        try:
            for name, fault in self.planned.items():
                proxy = self.server.proxies[name]
                watch = _fault_watch(self.server, name, fault, proxy.connections)
                background = self.server.background_proxies.get(name)
                if background is not None:
                    # lifted last, once the service answers again
                    background.set_fault(fault)
                    self._stack.callback(background.set_fault, None)
                self.states.append(
                    self._stack.enter_context(
                        faulted(fault, service=self.ctx.services[name], proxy=proxy)
                    )
                )
                watch.start()
                self._watches[name] = watch
        except BaseException:
            self._stack.close()
            raise
        return self

    def met(self) -> dict[str, Met]:
        """What met each fault, by service; once, while the faults are still in force."""
        return {name: watch.stop() for name, watch in self._watches.items()}

    def notes(self) -> list[str]:
        return [state.note for state in self.states if state.note]
