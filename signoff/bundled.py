"""Where the folders signoff ships inside its package are: the claim suites, their fixtures and
the Locust files. In a checkout they are the top-level suites/, fixtures/ and loadtests/; the
wheel carries them as signoff._suites, signoff._fixtures and signoff._loadtests (setup.py maps
them), and an editable install maps those names onto the checkout's folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from signoff.errors import HarnessError


def _folder(package: str) -> Path:
    # find_spec, not import: pytest imports the suites itself, under its own module names
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            f"{package} is not installed with signoff: reinstall it (pip install signoff, or "
            "pip install -e . in a checkout)"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def suites() -> Path:
    """The claim suites pytest runs: one test per claim."""
    return _folder("signoff._suites")


def loadtests() -> Path:
    """The Locust files: the bundled async-job flow and signoff's timing plugin."""
    return _folder("signoff._loadtests")
