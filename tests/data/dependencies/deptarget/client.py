"""A client of the stub dependency, reached at $STUB_URL (signoff's fault proxy in a run)."""

from __future__ import annotations

import os
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an HTTP proxy


def address() -> str:
    return os.environ["STUB_URL"]


def fetch() -> str:
    """GET the stub; gives up after $STUB_TIMEOUT seconds (1 by default; "none": never)."""
    setting = os.environ.get("STUB_TIMEOUT", "1")
    url = os.environ["STUB_URL"] + "/hello"
    # "none" is the regression: no timeout at all
    answer = _OPENER.open(url) if setting == "none" else _OPENER.open(url, timeout=float(setting))
    with answer:
        return str(answer.read().decode())


def stub_env(name: str = "STUB_URL") -> str:
    """What the stub's own environment holds for `name` (it answers GET /env/NAME)."""
    with _OPENER.open(os.environ["STUB_URL"] + f"/env/{name}", timeout=5) as answer:
        return str(answer.read().decode())
