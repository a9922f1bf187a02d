"""The fault proxy's cost with no fault in force (signoff.faults.proxy: ProxyHub, FaultProxy):
the latency it adds to a round trip, and its throughput, each against a direct connection to
the same upstream. The upstream is tcp_upstream.py in a process of its own, and the embedded
Redis for a real client's PING. All on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from pytest_benchmark.fixture import BenchmarkFixture

from signoff.faults.proxy import FaultProxy, ProxyHub
from signoff.services import Service, start_services, stop_services

from .support import Address, bulk, connect, echo_roundtrip, tcp_upstream

ROUTES = ["direct", "proxy"]
PAYLOAD = b"x" * 64
BULK = 32 << 20
BULK_ROUNDS = 10
RouteTo = Callable[[str, Address], Address]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Address]:
    with tcp_upstream() as address:
        yield address


@pytest.fixture(scope="module")
def embedded_redis() -> Iterator[Service]:
    services = start_services(["redis"], backend="embedded", timeout=60)
    try:
        yield services["redis"]
    finally:
        stop_services(services)


@pytest.fixture
def route_to(hub: ProxyHub) -> Iterator[RouteTo]:
    """`route_to(route, upstream)`: the address to connect to, direct or through a new proxy."""
    made: list[FaultProxy] = []

    def to(route: str, upstream: Address) -> Address:
        if route == "direct":
            return upstream
        proxy = hub.proxy(upstream)
        made.append(proxy)
        return proxy.address

    yield to
    for proxy in made:
        proxy.close()


@pytest.mark.parametrize("route", ROUTES)
def test_echo_roundtrip(
    benchmark: BenchmarkFixture, route: str, upstream: Address, route_to: RouteTo
) -> None:
    with connect(route_to(route, upstream), b"e") as sock:
        echo_roundtrip(sock, PAYLOAD)  # the connection is up end to end before the clock
        benchmark(echo_roundtrip, sock, PAYLOAD)
    benchmark.extra_info["payload_bytes"] = len(PAYLOAD)


@pytest.mark.parametrize("route", ROUTES)
def test_redis_ping(
    benchmark: BenchmarkFixture, route: str, embedded_redis: Service, route_to: RouteTo
) -> None:
    host, port = route_to(route, (embedded_redis.host, embedded_redis.port))
    client = redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        assert client.ping()
        benchmark(client.ping)
    finally:
        client.close()


@pytest.mark.parametrize("route", ROUTES)
def test_bulk_read(
    benchmark: BenchmarkFixture, route: str, upstream: Address, route_to: RouteTo
) -> None:
    with connect(route_to(route, upstream), b"s") as sock:
        bulk(sock, 1 << 20)  # the connection is up end to end before the clock
        benchmark.pedantic(bulk, args=(sock, BULK), rounds=BULK_ROUNDS, warmup_rounds=1)
    benchmark.extra_info["bytes"] = BULK
    benchmark.extra_info["bytes_per_s"] = BULK / benchmark.stats.stats.median
