"""Imports at once; its callables return, raise, exit or hang when called."""

from __future__ import annotations

import os
import socket
import sys
import time


class Base:
    """A base class, for result_mro."""


class Widget(Base):
    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Widget({self.size})"

    @classmethod
    def create(cls) -> Widget:
        return cls(3)


class ProbeError(Exception):
    """The target's own error hierarchy."""


class ProbeTimeoutError(ProbeError, TimeoutError):
    pass


def make() -> Widget:
    return Widget(7)


def fail() -> None:
    raise ProbeTimeoutError("gave up after 1 s")  # <- fail


def quits() -> None:
    sys.exit(4)


def sleepy() -> None:
    time.sleep(60)  # <- sleepy


def stalls() -> bytes:
    """Talks to PROBE_PORT, which accepts and never answers; no timeout."""
    sock = socket.create_connection(("127.0.0.1", int(os.environ["PROBE_PORT"])))
    return sock.recv(1)  # <- stall


def dies() -> None:
    os._exit(5)


async def amake() -> Widget:
    return Widget(9)


def env_value() -> str:
    return os.environ.get("PROBE_ENV", "<unset>")


def where_am_i() -> tuple[str, str]:
    return sys.path[0], os.getcwd()
