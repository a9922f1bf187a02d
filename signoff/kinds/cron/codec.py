"""The cron probe's codec for the serving child (`worker.py`): turns a request into a call of
the target's callable and its result into JSON.

Loaded by path into the TARGET's interpreter, which may not have signoff installed: standard
library only, and nothing at import time but `datetime`.

Request args: {"args": [...], "keep": N}; an argument {"datetime": "ISO"} becomes a naive (or
aware) datetime, anything else is passed as it is. The call is `func(*args)`; a result that is
an iterator rather than a list (a generator, say) is drained inside the call, so its work is
timed. The reply value: {"count": len, "items": the first `keep` items}, each item an ISO string
for a naive datetime, else {"datetime": "ISO", "tz": bool, "type": "module:Name"} for another
datetime and {"type": "module:Name", "repr": "..."} for anything else; a result that is not a
list or a tuple is {"type": ..., "repr": ...} alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

_REPR_MAX = 120


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    return value


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}:{cls.__qualname__}"


def _repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{_type_name(exc)} while formatting>"
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def prepare(func: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    args = [_decode(a) for a in request.get("args", ())]

    def call() -> Any:
        value = func(*args)
        if not isinstance(value, (list, tuple, str, bytes, dict)) and hasattr(value, "__next__"):
            value = list(value)  # an iterator's work is the call's work
        return value

    return call


def _item(value: object) -> str | dict[str, Any]:
    if type(value) is datetime and value.tzinfo is None:
        return value.isoformat()  # the common case, kept small: a reply may hold a thousand
    if isinstance(value, datetime):
        return {
            "datetime": value.isoformat(),
            "tz": value.tzinfo is not None,
            "type": _type_name(value),
        }
    return {"type": _type_name(value), "repr": _repr(value)}


def encode(value: Any, request: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, (list, tuple)):
        return {"type": _type_name(value), "repr": _repr(value)}
    keep = int(request.get("keep", 0))
    return {"count": len(value), "items": [_item(v) for v in value[:keep]]}
