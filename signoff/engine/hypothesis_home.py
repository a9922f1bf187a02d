"""Hypothesis writes under .hypothesis/ in the current folder (a constants cache, even with
database=None): a check run inside a user's project must not leave that folder there."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from hypothesis import configuration

P = ParamSpec("P")
T = TypeVar("T")


def own_hypothesis_home(run: Callable[P, T]) -> Callable[P, T]:
    """Run `run` with hypothesis's home in a temporary folder, removed after; the previous
    home (None: hypothesis's default) is put back. Put it above @settings and @given."""

    @functools.wraps(run)
    def in_own_home(*args: P.args, **kwargs: P.kwargs) -> T:
        old = getattr(configuration, "__hypothesis_home_directory", None)
        home = tempfile.mkdtemp(prefix="signoff-hypothesis-")
        configuration.set_hypothesis_home_dir(home)
        try:
            return run(*args, **kwargs)
        finally:
            configuration.set_hypothesis_home_dir(old)
            shutil.rmtree(home, ignore_errors=True)

    return in_own_home
