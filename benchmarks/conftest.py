"""The benchmarks' fixtures, and the hook that puts the derived ratios (ratios.py) into the JSON
pytest-benchmark saves. Benchmarks record figures; they assert nothing about time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks import ratios
from signoff.faults.proxy import ProxyHub


@pytest.fixture(autouse=True, scope="session")
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pidfiles and folder records of what the benchmarks start go to a folder of their own,
    never among those of a `signoff run` on the same machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGNOFF_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture(scope="module")
def hub() -> Iterator[ProxyHub]:
    with ProxyHub() as running:
        yield running


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    output_json["signoff_ratios"] = ratios.compute(output_json.get("benchmarks", []))
