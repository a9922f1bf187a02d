"""A check's hypothesis run writes nothing under the default .hypothesis/ of the current folder."""

from __future__ import annotations

from pathlib import Path

from hypothesis import configuration, given, settings
from hypothesis import strategies as st

from signoff.engine.hypothesis_home import own_hypothesis_home


def _home() -> Path:
    return configuration.storage_directory(intent_to_write=False).home_directory


def test_a_run_has_a_home_of_its_own_removed_after() -> None:
    default = _home()
    homes: set[Path] = set()

    @own_hypothesis_home
    @settings(max_examples=5, database=None)
    @given(st.integers())
    def prop(number: int) -> None:
        homes.add(_home())

    prop()
    (home,) = homes
    assert home != default
    assert not home.exists()
    assert _home() == default
