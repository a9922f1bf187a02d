"""A getter whose answer a test switches from outside: FLAG_FILE exists or not. For the probe
runner's own tests (barriers, polls), no service needed."""

from __future__ import annotations

import os
import time


class Real:
    pass


class StandIn:
    def fail(self) -> None:
        raise LookupError("nothing here")

    def fine(self) -> int:
        return 1


def get() -> Real | StandIn:
    return Real() if os.path.exists(os.environ["FLAG_FILE"]) else StandIn()


def get_or_raise() -> Real:
    if os.path.exists(os.environ["FLAG_FILE"]):
        return Real()
    raise ConnectionError("not yet")


def sleep_forever() -> None:
    while True:
        time.sleep(0.05)  # <- sleeping


NOT_A_CLASS = 42
