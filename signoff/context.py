"""The run's shared state: the claims file, the services and dependencies, the fault proxies,
the ledger and the deadline. The pytest plugin builds one per session; probes receive it."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from signoff.claims import ClaimsFile
from signoff.engine.runner import TargetProcess
from signoff.faults.proxy import FaultProxy, ProxyHub
from signoff.ledger import Ledger
from signoff.report.run_info import RunInfo
from signoff.services import Service


@dataclass
class ClaimSetup:
    """What one claim's target process sees: its own proxy in front of every service and
    dependency (`proxies[name]`), its address in that one's variable (REDIS_URL, EDGE_TTS_URL)."""

    proxies: dict[str, FaultProxy]
    target: TargetProcess


# what stages.finish runs before the services stop (`RunContext.at_finish`)
_AT_FINISH = pytest.StashKey[list[Callable[[], None]]]()


@dataclass
class RunContext:
    claims: ClaimsFile
    report_dir: Path
    ledger: Ledger
    info: RunInfo
    deadline: float  # time.monotonic() value after which no claim starts
    # every service AND every dependency of [target.dependencies], by name: a dependency is a
    # Service too (signoff.services.DependencyService), faulted and proxied the same way
    services: dict[str, Service] = field(default_factory=dict)
    hub: ProxyHub | None = None
    # what a part of the run keeps for the rest of it (the served target, cron's seed), each
    # under its own typed key: `ctx.stash[KEY]`, as pytest's config.stash
    stash: pytest.Stash = field(default_factory=pytest.Stash)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def at_finish(self, callback: Callable[[], None]) -> None:
        """Have `callback` run when the run finishes, while the services still run (to drop what
        a kind made on them: [[sql]]'s database); the last one added runs first."""
        self.stash.setdefault(_AT_FINISH, []).append(callback)

    def run_at_finish(self) -> list[str]:
        """Run (once) the callbacks of `at_finish`; what each that raised said, for the notes."""
        problems = []
        callbacks = self.stash.get(_AT_FINISH, [])
        while callbacks:
            try:
                callbacks.pop()()
            except Exception as exc:
                problems.append(f"at the end of the run: {exc}")
        return problems

    def target_process(
        self, urls: Mapping[str, str], extra_env: Mapping[str, str]
    ) -> TargetProcess:
        """A target process whose services' variables hold `urls` (by service name)."""
        target = self.claims.target
        env = dict(target.env)
        for name, url in urls.items():
            env[self.services[name].url_env] = url
        env.update(extra_env)
        return TargetProcess(
            python=str(target.python),
            pythonpath=tuple(str(p) for p in target.pythonpath),
            env=env,
            cwd=str(self.claims.path.parent),
        )

    @contextlib.contextmanager
    def claim_setup(self, extra_env: Mapping[str, str] | None = None) -> Iterator[ClaimSetup]:
        """A proxy per service and dependency for one claim, closed when the claim ends."""
        assert self.hub is not None, "services are not started"
        proxies: dict[str, FaultProxy] = {}
        try:
            for name, service in self.services.items():
                proxies[name] = self.hub.proxy((service.host, service.port))
            urls = {
                name: self.services[name].url_for(*proxy.address) for name, proxy in proxies.items()
            }
            yield ClaimSetup(proxies, self.target_process(urls, extra_env or {}))
        finally:
            for proxy in proxies.values():
                proxy.close()


def default_report_dir(target: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in target)
    return Path(os.getcwd()) / "reports" / f"{stamp}-{safe}"
