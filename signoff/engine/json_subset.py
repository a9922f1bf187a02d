"""The `json = {...}` rule of [[http]] and [[call]]: the value contains these keys and values.

Tables are matched as subsets, recursively (every expected key present, with a matching value;
other keys ignored); anything else, arrays included, must be equal, with its JSON type (true is
not 1, but 2.0 is 2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EXCERPT_MAX = 200


def json_mismatches(
    actual: Any, expected: Any, path: str = "", *, whole: str = "the body"
) -> list[str]:
    """Where `actual` does not contain `expected`, one line each ("status: expected "ok", got
    "down""); `whole` names the value itself in a line about it ("the body", "the result")."""
    where = path or whole
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected an object, got {short_json(actual)}"]
        problems: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                problems.append(f"{sub}: missing")
            else:
                problems.extend(json_mismatches(actual[key], value, sub, whole=whole))
        return problems
    if not _same(actual, expected):
        return [f"{where}: expected {short_json(expected)}, got {short_json(actual)}"]
    return []


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and not json_mismatches(actual, expected)
    return type(actual) is type(expected) and actual == expected


def short_json(value: Any) -> str:
    """A value as JSON, cut to EXCERPT_MAX characters."""
    return cut(json.dumps(value, ensure_ascii=False, sort_keys=False))


def cut(text: str, limit: int = EXCERPT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
