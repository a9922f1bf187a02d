"""Durations and sizes as the claims file writes them: "250us", "5s", "2m", "512MB", "64KiB"."""

from __future__ import annotations

import re

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Zµ/]*)\s*$")

DURATION_HINT = 'a duration like "250ms", "5s", "2m", "365d" or a number of seconds'
SIZE_HINT = 'a size like "512MB", "64KiB" or a number of bytes'


def parse_duration(value: object) -> float:
    """Seconds from a number or a string with a unit. Raises ValueError naming the expectation."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        if not match or match.group(2) not in _DURATION_UNITS:
            raise ValueError(f"expected {DURATION_HINT}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected {DURATION_HINT}")
    if seconds < 0:
        raise ValueError("expected a duration of zero or more")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from a number or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HINT}")
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        unit = match.group(2).lower() if match else None
        if not match or unit not in _SIZE_UNITS:
            raise ValueError(f"expected {SIZE_HINT}")
        size = float(match.group(1)) * _SIZE_UNITS[unit]
    else:
        raise ValueError(f"expected {SIZE_HINT}")
    if size < 0:
        raise ValueError("expected a size of zero or more")
    return int(size)


def parse_rate(value: str) -> float:
    """Bytes per second from "64B/s", "1KiB/s"."""
    if not value.endswith("/s"):
        raise ValueError('expected a rate like "64B/s" or "1KiB/s"')
    return float(parse_size(value[:-2]))


def format_duration(seconds: float) -> str:
    """A duration for people: "250 us", "43 ms", "5.003 s", "2m05s"."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    if seconds < 120:
        return f"{seconds:.3f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:02.0f}s"


def format_size(size: float) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size:.0f} B"
