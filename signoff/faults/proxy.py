"""A small TCP proxy per claim that can hang, blackhole, refuse, reset, delay or trickle.

Nothing on PyPI or in Debian ships Toxiproxy's server, so this is signoff's own. Every proxy of
a run lives on ONE asyncio event loop in ONE daemon thread (the `ProxyHub`); the public API is
synchronous, thread-safe, and every call has a deadline.

A proxy keeps its address for its whole life, across every fault: a socket bound to its port
(never listening) holds the port while the listener is closed (`refuse`) or swapped for a
full-backlog one (`blackhole`).

What each fault does (see shared/CLAIMS.md "## Faults"):

- None: bytes pass both ways.
- hang: new connections are accepted and never answered (the upstream is never contacted);
  existing connections stop forwarding in both directions.
- blackhole: connects are never answered at TCP level (the client stays in SYN-SENT): the
  listener is replaced by one of backlog 0 whose accept queue holds one connection of the
  proxy's own, never accepted. Existing connections stall as under hang.
- refuse: nothing listens on the port (ECONNREFUSED); existing connections are closed.
- reset: connections are reset (RST) once accepted; existing ones are reset too.
- latency:D: every chunk from the upstream reaches the client D after it arrived (order kept;
  chunks that arrive together leave together, the delay does not add up).
- slow:R: bytes from the upstream reach the client at R bytes/s, in small paced chunks.
- kill: the server is down: nothing listens on the port (new connections get ECONNREFUSED,
  as from a dead server's host) and existing connections are reset. Lifting it listens again.

Lifting hang or blackhole (setting any other fault, or None) CLOSES the connections they
stalled: their streams may have lost bytes in the middle of a request, so the honest thing is
what a client of a restarted server sees, a dropped connection; clients reconnect.

`met` counts the client connections that met a fault: accepted while one was in force, or
already open and carrying bytes from the client while one was (each connection once per fault).
A refused or blackholed connect never reaches the proxy: only the client side can see those.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar

from signoff.errors import HarnessError, ServiceError
from signoff.faults.model import Fault

log = logging.getLogger(__name__)

T = TypeVar("T")

UPSTREAM_CONNECT_TIMEOUT = 10.0  # a proxied connection gives up on its upstream after this
CALL_TIMEOUT = 5.0  # deadline of each synchronous call into the hub's loop
CHUNK = 65536
_STALLING = ("hang", "blackhole")
_Mode = Literal["listen", "refuse", "blackhole", "closed"]


class _Closed(Exception):
    """The connection was closed while waiting."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProxyHub:
    """One event loop in one daemon thread, serving every FaultProxy of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proxies: list[FaultProxy] = []
        self._closed = False

    def start(self) -> None:
        """Start the loop thread (once; later calls do nothing)."""
        with self._lock:
            if self._closed:
                raise HarnessError("the proxy hub is closed")
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(loop, ready), name="signoff-proxy-hub", daemon=True
            )
            thread.start()
            if not ready.wait(CALL_TIMEOUT):
                loop.call_soon_threadsafe(loop.stop)
                raise HarnessError("the proxy hub's event loop did not start within 5 s")
            self._loop, self._thread = loop, thread

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
            loop.close()

    @property
    def running(self) -> bool:
        """The loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def proxy(self, upstream: tuple[str, int]) -> FaultProxy:
        """A new pass-through proxy to `upstream` (a loopback address) on 127.0.0.1:<free port>."""
        host, port = upstream
        if not _is_loopback(host):
            raise HarnessError(
                f"signoff only puts faults between loopback addresses; {host}:{port} is not one"
            )
        self.start()
        proxy = FaultProxy(self, (host, int(port)))
        self.call(proxy._open)
        with self._lock:
            self._proxies.append(proxy)
        return proxy

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = CALL_TIMEOUT) -> T:
        """Run the coroutine `make()` on the hub's loop and wait for it, at most `timeout`."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive() or loop.is_closed():
            raise HarnessError("the proxy hub is not running")
        if threading.current_thread() is thread:
            raise HarnessError("a synchronous proxy call from the hub's own thread would deadlock")
        future = asyncio.run_coroutine_threadsafe(make(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise HarnessError(f"the proxy hub did not answer within {timeout:g} s") from None

    def close(self, timeout: float = 5.0) -> None:
        """Close every proxy and connection and stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proxies, self._proxies = self._proxies, []
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        deadline = time.monotonic() + timeout

        async def close_all() -> None:
            for proxy in proxies:
                await proxy._close()

        try:
            self.call(close_all, timeout=max(0.1, timeout / 2))
        except HarnessError as exc:
            log.warning("closing the proxies: %s", exc)
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(max(0.1, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("the proxy hub's thread did not stop within %g s", timeout)

    def _forget(self, proxy: FaultProxy) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._proxies.remove(proxy)

    def __enter__(self) -> ProxyHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _port_socket(port: int = 0) -> socket.socket:
    """A proxy's socket, bound to a port of its own on 127.0.0.1 for the proxy's life. A port
    the kernel picks (bound without SO_REUSEADDR: one nobody uses) is bound again by number, so
    that the bind outlives a shutdown() (a port picked by the kernel is given back when its
    socket stops listening); SO_REUSEADDR is then cleared, so no other socket can bind the
    port while it does not listen."""
    if port == 0:
        picker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        picker.bind(("127.0.0.1", 0))
        picker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = picker.getsockname()[1]
    else:
        picker = None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HarnessError(f"could not bind proxy port {port}: {exc}") from exc
    finally:
        if picker is not None:
            picker.close()
    return sock


class FaultProxy:
    """A TCP proxy from `address` (127.0.0.1, stable for its life) to `upstream`."""

    def __init__(self, hub: ProxyHub, upstream: tuple[str, int]) -> None:
        self._hub = hub
        self.upstream = upstream
        self._fault: Fault | None = None
        self._mode: _Mode = "closed"
        self._closed = False
        self._conns: set[_Conn] = set()
        self._met = 0
        self._epoch = 0  # bumped at every fault change: a connection meets each fault once
        self._probes: dict[int, asyncio.Future[str | None]] = {}
        self._switching = asyncio.Lock()  # one fault change at a time
        self._socket = _port_socket()
        self.address: tuple[str, int] = ("127.0.0.1", self._socket.getsockname()[1])
        self._listening = False  # the port socket listens (modes listen and blackhole)
        self._listener: socket.socket | None = None
        self._hole: socket.socket | None = None
        self._filler: socket.socket | None = None

    def __repr__(self) -> str:
        host, port = self.upstream
        return f"<FaultProxy {self.address[0]}:{self.address[1]} -> {host}:{port} {self._fault}>"

    @property
    def fault(self) -> Fault | None:
        """The fault in force (None: pass-through)."""
        return self._fault

    @property
    def met(self) -> int:
        """Client connections that met a fault so far (see the module's doc); it only grows,
        so a claim reads it before and after its fault."""
        return self._met

    @property
    def connections(self) -> int:
        """Client connections currently open through this proxy."""
        return len(self._conns)

    def set_fault(self, fault: Fault | None) -> None:
        """Put `fault` in force for new and existing connections; returns once it is."""
        self._hub.call(lambda: self._apply(fault))

    def check(self, timeout: float = 2.0) -> None:
        """Raise ServiceError unless a new connection through the proxy reaches the upstream."""
        error = self._hub.call(lambda: self._probe(timeout), timeout=timeout + CALL_TIMEOUT)
        if error is not None:
            raise ServiceError(f"proxy {self.address[0]}:{self.address[1]}: {error}")

    def close(self) -> None:
        """Stop listening, free the port and close every connection. Idempotent."""
        if self._closed:
            return
        self._hub._forget(self)
        with contextlib.suppress(HarnessError):  # the hub is gone: so is everything it served
            self._hub.call(self._close)

    # -- on the hub's loop ---------------------------------------------------------------

    async def _open(self) -> None:
        async with self._switching:
            await self._set_mode("listen")

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._switching:
            await self._set_mode("closed")
        for conn in list(self._conns):
            conn.close()
        for future in self._probes.values():
            if not future.done():
                future.set_result("the proxy was closed")
        await asyncio.sleep(0)  # let aborted transports close their sockets

    async def _apply(self, fault: Fault | None) -> None:
        async with self._switching:
            await self._apply_now(fault)

    async def _apply_now(self, fault: Fault | None) -> None:
        if self._closed:
            raise HarnessError(f"{self!r} is closed")
        self._fault = fault
        self._epoch += 1
        kind = fault.kind if fault else None
        if kind in ("refuse", "kill"):
            await self._set_mode("refuse")
        elif kind == "blackhole":
            await self._set_mode("blackhole")
        else:
            await self._set_mode("listen")
        for conn in list(self._conns):
            if kind in _STALLING:
                conn.stalled = True
            elif kind in ("reset", "kill"):
                conn.close(reset=True)
            elif kind == "refuse" or conn.stalled:
                conn.close()
        await asyncio.sleep(0)  # let aborted transports close their sockets

    async def _set_mode(self, mode: _Mode) -> None:
        if mode == self._mode:
            return
        loop = asyncio.get_running_loop()
        if self._listener is not None:
            loop.remove_reader(self._listener.fileno())
            # Clients whose connect() already returned are existing connections: accept them
            # so the new fault treats them as such, rather than the kernel resetting them.
            self._accept(self._listener, limit=1024)
        if self._filler is not None:
            self._filler.close()
        self._listener = self._filler = self._hole = None
        if self._listening:
            self._stop_listening()
        self._mode = "refuse" if mode != "closed" else "closed"  # until the new mode is set up
        if mode == "closed":
            self._socket.close()
        elif mode == "listen":
            self._listen(128)
            self._listener = self._socket
            loop.add_reader(self._socket.fileno(), self._accept, self._socket)
        elif mode == "blackhole":
            # Backlog 0 and one connection of our own in the accept queue, never accepted:
            # the queue is full, so the kernel drops every later SYN; clients stay SYN-SENT.
            self._listen(0)
            self._hole = self._socket
            self._filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._filler.setblocking(False)
            try:
                async with asyncio.timeout(CALL_TIMEOUT / 2):
                    await loop.sock_connect(self._filler, self.address)
            except (OSError, TimeoutError) as exc:
                raise HarnessError(f"could not fill the blackhole's accept queue: {exc}") from exc
        self._mode = mode

    def _listen(self, backlog: int) -> None:
        # SO_REUSEADDR while it listens: the connections it accepts inherit it, and listen()
        # again after a fault checks the port against them (without it: "Address in use")
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.listen(backlog)
        self._listening = True

    def _stop_listening(self) -> None:
        """Connections are refused from now on, and the port stays ours: on Linux, shutdown()
        of a listening socket ends its listening and keeps its bind (listen() again resumes),
        and without SO_REUSEADDR meanwhile no other socket can bind the port, as one could
        when the listener was closed and bound again (seen with two runs side by side: a
        server took the port, and lifting the fault failed with "Address already in use").
        Elsewhere: closed and bound again."""
        self._listening = False
        try:
            self._socket.shutdown(socket.SHUT_RD)
        except OSError:
            self._socket.close()
            self._socket = _port_socket(self.address[1])
        else:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)

    def _accept(self, listener: socket.socket, limit: int = 64) -> None:
        """The listener is readable: accept what is waiting (a reader callback, no task, so a
        socket once accepted is never lost to a cancellation)."""
        loop = asyncio.get_running_loop()
        for _ in range(limit):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: pause, then try again
                log.warning("proxy %s: accept failed: %s", self.address, exc)
                loop.remove_reader(listener.fileno())
                loop.call_later(0.1, self._resume_accepting, listener)
                return
            sock.setblocking(False)
            try:
                conn = _Conn(self, sock)
            except OSError:  # the client is already gone
                sock.close()
                continue
            self._conns.add(conn)
            if self._fault is not None and not conn.is_probe:
                conn.met_fault()
            conn.task = loop.create_task(conn.run())

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener is self._listener and listener.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    def _count_meeting(self, conn: _Conn) -> None:
        if conn.met_epoch != self._epoch:
            conn.met_epoch = self._epoch
            self._met += 1

    def _report(self, port: int, error: str | None) -> None:
        """A connection from local port `port` reached its upstream (error None) or not."""
        future = self._probes.pop(port, None)
        if future is not None and not future.done():
            future.set_result(error)

    async def _probe(self, timeout: float) -> str | None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        port = 0
        try:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            future: asyncio.Future[str | None] = loop.create_future()
            self._probes[port] = future
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, self.address)
                return await future
        except TimeoutError:
            return f"no answer within {timeout:g} s (fault in force: {self._fault})"
        except OSError as exc:
            return f"could not connect: {exc}"
        finally:
            self._probes.pop(port, None)
            sock.close()


class _Conn:
    """One client connection and, once it is let through, its upstream connection."""

    def __init__(self, proxy: FaultProxy, sock: socket.socket) -> None:
        self.proxy = proxy
        self.sock = sock
        self.peer_port: int = sock.getpeername()[1]
        self.is_probe = self.peer_port in proxy._probes  # the harness's own check, not a client
        self.met_epoch = -1
        self.stalled = False
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._closed_event = asyncio.Event()
        self._client: asyncio.StreamWriter | None = None
        self._upstream: asyncio.StreamWriter | None = None
        self._next_send = 0.0

    def met_fault(self) -> None:
        """This connection met the fault in force (counted once per fault)."""
        self.proxy._count_meeting(self)

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self._closed_event.set()
        self.proxy._conns.discard(self)
        self.proxy._report(self.peer_port, f"closed by the proxy (fault: {self.proxy.fault})")
        if reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for writer in (self._client, self._upstream):
            if writer is not None:
                writer.transport.abort()
        if self._client is None:
            self.sock.close()
        current = asyncio.current_task()
        for task in [*self._pumps, self.task]:
            if task is not None and task is not current:
                task.cancel()

    async def gate(self) -> None:
        """Return at once, unless the connection is stalled: then wait until it is closed."""
        if self.stalled:
            await self._closed_event.wait()
        if self.closed:
            raise _Closed

    async def run(self) -> None:
        try:
            await self._run()
        except (_Closed, asyncio.CancelledError):
            pass
        except (OSError, RuntimeError) as exc:
            log.debug("proxy %s: connection ended: %s", self.proxy.address, exc)
        finally:
            self.close()

    async def _run(self) -> None:
        kind = self.proxy.fault.kind if self.proxy.fault else None
        if kind == "reset":
            self.close(reset=True)
            return
        if kind in ("kill", "refuse"):  # accepted just before the listener closed
            self.close(reset=kind == "kill")
            return
        if kind in _STALLING:  # blackhole: accepted just before it came in force
            self.stalled = True
        await self.gate()
        client_reader, self._client = await asyncio.open_connection(sock=self.sock, limit=CHUNK)
        host, port = self.proxy.upstream
        try:
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT):
                up_reader, self._upstream = await asyncio.open_connection(host, port, limit=CHUNK)
        except (OSError, TimeoutError) as exc:
            self.proxy._report(self.peer_port, f"upstream {host}:{port}: {exc or 'timed out'}")
            return
        if self.closed:
            self._upstream.transport.abort()
            return
        await self.gate()
        self.proxy._report(self.peer_port, None)
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(maxsize=16)
        loop = asyncio.get_running_loop()
        self._pumps = [
            loop.create_task(self._pump(client_reader, self._upstream)),
            loop.create_task(self._read_down(up_reader, queue)),
            loop.create_task(self._write_down(queue, self._client)),
        ]
        done, _ = await asyncio.wait(self._pumps, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: the connection just ends

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to upstream: bytes as they come, unless stalled. Read before the gate, so a
        client writing on a stalled connection is seen to meet the fault (its bytes wait here
        instead of in the kernel's buffer)."""
        while True:
            data = await reader.read(CHUNK)
            if data and self.proxy.fault is not None and not self.is_probe:
                self.met_fault()
            await self.gate()
            if not data:
                writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    async def _read_down(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes] | None]
    ) -> None:
        """Upstream to client, first half: stamp each chunk with its arrival time."""
        loop = asyncio.get_running_loop()
        while True:
            await self.gate()
            data = await reader.read(CHUNK)
            if not data:
                await queue.put(None)
                return
            await queue.put((loop.time(), data))

    async def _write_down(
        self, queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter
    ) -> None:
        """Upstream to client, second half: deliver each chunk as the fault in force says."""
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            await self.gate()
            if item is None:
                writer.write_eof()
                return
            arrived, data = item
            fault = self.proxy.fault
            if fault is not None and fault.kind == "latency" and fault.amount:
                delay = arrived + fault.amount - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.gate()
            await self._deliver(data, writer)

    async def _deliver(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            fault = self.proxy.fault
            if fault is None or fault.kind != "slow" or not fault.amount:
                writer.write(view)
                await writer.drain()
                return
            rate = fault.amount
            piece = view[: max(1, min(CHUNK, int(rate / 10)))]  # about ten writes a second
            wait = self._next_send - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                await self.gate()
            writer.write(piece)
            await writer.drain()
            self._next_send = max(self._next_send, loop.time()) + len(piece) / rate
            view = view[len(piece) :]
