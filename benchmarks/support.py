"""What the benchmarks share: a run context built from a claims file's text (as `signoff run`
builds one, without services unless a benchmark starts them), the loopback TCP upstream in a
process of its own, and small socket helpers. Every wait has a deadline."""

from __future__ import annotations

import contextlib
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from signoff import processes
from signoff.checks import expand_claims
from signoff.claims import ClaimRef, load_claims
from signoff.context import RunContext
from signoff.faults.proxy import ProxyHub
from signoff.ledger import Ledger
from signoff.report.run_info import RunInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPSTREAM_SCRIPT = HERE / "tcp_upstream.py"
Address = tuple[str, int]


def claims_context(
    folder: Path, text: str, hub: ProxyHub, deadline_s: float = 600.0
) -> tuple[RunContext, list[ClaimRef]]:
    """The run context of the claims file `text` (written to folder/signoff.toml and loaded as
    `signoff run` loads it) and its claims, reports under folder/report."""
    path = folder / "signoff.toml"
    path.write_text(text)
    claims = load_claims(path, runnable=True)
    report = folder / "report"
    ctx = RunContext(
        claims=claims,
        report_dir=report,
        ledger=Ledger(report / "ledger.jsonl"),
        info=RunInfo(target=claims.target.name, claims_file=str(claims.path)),
        deadline=time.monotonic() + deadline_s,
        hub=hub,
    )
    return ctx, expand_claims(claims)


@contextlib.contextmanager
def tcp_upstream(timeout: float = 10.0) -> Iterator[Address]:
    """tcp_upstream.py running in its own process; its address. Stopped on exit."""
    proc = processes.spawn(
        [sys.executable, str(UPSTREAM_SCRIPT)],
        role="bench-upstream",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = _read_port(proc, timeout)
        yield ("127.0.0.1", port)
    finally:
        processes.stop(proc, grace=2.0)
        if proc.stdout is not None:
            proc.stdout.close()


def _read_port(proc: subprocess.Popen[str], timeout: float) -> int:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if readable else ""
    if not line.isdigit():
        raise RuntimeError(
            f"{UPSTREAM_SCRIPT.name} did not print its port within {timeout:g} s"
            f" (printed {line!r}, exit status {proc.poll()})"
        )
    return int(line)


def connect(address: Address, mode: bytes, timeout: float = 10.0) -> socket.socket:
    """A connection to the upstream (directly or through a proxy) in `mode` (b"e" or b"s")."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mode)
    return sock


def receive(sock: socket.socket, size: int) -> None:
    """Read exactly `size` bytes (the socket's timeout bounds each read)."""
    view = memoryview(bytearray(min(size, 1 << 20)))
    left = size
    while left > 0:
        got = sock.recv_into(view, min(left, len(view)))
        if got == 0:
            raise ConnectionError(f"the upstream closed with {left} of {size} bytes unread")
        left -= got


def echo_roundtrip(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    receive(sock, len(payload))


def bulk(sock: socket.socket, size: int) -> None:
    sock.sendall(b"%d\n" % size)
    receive(sock, size)


def interpreter_start(argv: Sequence[str] = ("-c", "pass"), timeout: float = 30.0) -> None:
    """One run of this interpreter, to its exit."""
    subprocess.run([sys.executable, *argv], check=True, timeout=timeout, capture_output=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
