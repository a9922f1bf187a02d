"""Budget and measured figures in a few words, the same in every report."""

from __future__ import annotations

from typing import Any

from signoff.units import format_duration


def describe(figures: dict[str, Any]) -> str:
    """{"median_s": 0.043, "repeat": 5} -> "median 43 ms, repeat 5"."""
    parts = []
    for key, value in figures.items():
        if isinstance(value, list) or value is None:
            continue
        label = key.removesuffix("_s").replace("_", " ")
        if (key.endswith("_s") or key == "seconds") and isinstance(value, int | float):
            parts.append(f"{label} {format_duration(float(value))}")
        else:
            parts.append(f"{label} {value}")
    return ", ".join(parts)
