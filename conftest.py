"""Root pytest configuration for this checkout: the harness's own tests must leave nothing
running behind them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signoff import processes


@pytest.fixture(autouse=True, scope="session")
def _nothing_left_running() -> Iterator[None]:
    yield
    left = processes.running()
    processes.stop_all()
    assert not left, f"tests left processes running: {[p.args for p in left]}"
