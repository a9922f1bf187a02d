"""The secret values of a claims file, to scrub them from text signoff did not write itself (an
exception's message, an interpreter's stderr) before it reaches a report or a terminal."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from signoff.claims.types import REDACTED, is_secret_key

_SHORTEST = 4  # shorter values ("1", "on") would blank out ordinary text, and guard little


def secret_values(claims: BaseModel) -> list[str]:
    """Every SecretStr's value, and every value of a secret-looking key (env, headers, bodies),
    longest first."""
    found = {v for v in _walk(claims.model_dump(), secret=False) if len(v) >= _SHORTEST}
    return sorted(found, key=len, reverse=True)


def _walk(value: Any, *, secret: bool) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, str):
        if secret:
            yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, secret=secret or (isinstance(key, str) and is_secret_key(key)))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, secret=secret)


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret value replaced by asterisks."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text
