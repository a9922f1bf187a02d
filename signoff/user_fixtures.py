"""Fixtures for a project's own tests, registered by signoff's pytest plugin (no conftest needed):
a real Redis and Postgres for the test session, and a fault on one of them for one block.

    def test_cache_gives_up(signoff_redis_url, signoff_fault):
        with signoff_fault("redis", "hang") as url:
            ...  # a client of `url` meets the hang; the session's Redis is untouched
        ...      # the fault is lifted and the server answers again

Services start on first use, from the backend `--signoff-services` names (auto: docker, system,
embedded, url), and stop at the end of the session. In a run with --signoff-claims, the run's
own services are used. See docs/pytest.md.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from signoff.plugin import RUN_KEY

if TYPE_CHECKING:  # the services and proxies load when a test first asks for them
    from signoff.faults.model import Fault
    from signoff.faults.proxy import FaultProxy, ProxyHub
    from signoff.services import Service


class ServicePool:
    """The session's services, each started the first time a test asks for it."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._own: dict[str, Service] = {}

    def get(self, name: str) -> Service:
        ctx = self._config.stash.get(RUN_KEY, None)
        if ctx is not None and name in ctx.services:
            return ctx.services[name]
        with self._lock:
            if name not in self._own:
                from signoff.services import start_services

                backend = self._config.getoption("signoff_services")
                self._own.update(start_services([name], backend=backend))
            return self._own[name]

    def stop(self) -> None:
        with self._lock:
            own, self._own = self._own, {}
        if own:
            from signoff.services import stop_services

            stop_services(own)


class FaultOpener:
    """`signoff_fault(service, fault)`: a with-block in which `service` has `fault`."""

    def __init__(self, pool: ServicePool, hub: ProxyHub) -> None:
        self._pool = pool
        self._hub = hub
        self._open: list[FaultProxy] = []

    @contextlib.contextmanager
    def __call__(self, service: str, fault: str | Fault, settle: float = 10.0) -> Iterator[str]:
        """Open a proxy in front of the session's `service` ("redis" or "postgres") with
        `fault` ("hang", "refuse", "latency:2s", ... as in docs/claims.md "Faults") in force;
        yield the URL through it. After the block: the fault is lifted, the service must
        answer again within `settle` seconds (else ServiceError), and the proxy is closed."""
        from signoff.faults.controller import faulted
        from signoff.faults.model import parse_fault

        chosen = parse_fault(fault) if isinstance(fault, str) else fault
        server = self._pool.get(service)
        proxy = self._hub.proxy((server.host, server.port))
        self._open.append(proxy)
        try:
            with faulted(chosen, service=server, proxy=proxy, settle=settle):
                yield server.url_for(*proxy.address)
        finally:
            proxy.close()
            self._open.remove(proxy)

    def close(self) -> None:
        """Close the proxies of blocks a test left open (a generator never finished)."""
        for proxy in self._open:
            proxy.close()
        self._open.clear()


@pytest.fixture(scope="session")
def signoff_service_pool(request: pytest.FixtureRequest) -> Iterator[ServicePool]:
    """The session's Redis and Postgres, started on first use, stopped at session end."""
    pool = ServicePool(request.config)
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="session")
def signoff_redis_url(signoff_service_pool: ServicePool) -> str:
    """The URL of a real Redis server for the session (redis://127.0.0.1:<port>/0)."""
    return signoff_service_pool.get("redis").url


@pytest.fixture(scope="session")
def signoff_postgres_url(signoff_service_pool: ServicePool) -> str:
    """The URL of a real Postgres server for the session (postgresql://...@127.0.0.1:<port>/...)."""
    return signoff_service_pool.get("postgres").url


@pytest.fixture(scope="session")
def signoff_proxy_hub() -> Iterator[ProxyHub]:
    """The event loop thread the fault proxies run on, closed at session end."""
    from signoff.faults.proxy import ProxyHub

    with ProxyHub() as hub:
        yield hub


@pytest.fixture
def signoff_fault(
    signoff_service_pool: ServicePool, signoff_proxy_hub: ProxyHub
) -> Iterator[FaultOpener]:
    """`with signoff_fault("redis", "hang") as url:` a fault on a session service for a block."""
    opener = FaultOpener(signoff_service_pool, signoff_proxy_hub)
    try:
        yield opener
    finally:
        opener.close()
