"""Which line of the target caused an event, and how much of an exception or a result a
child reports: shared by the probe child (engine/child.py) and the files it loads by path (a
preload such as kinds/webhooks/child.py), which run in the target's own interpreter. Standard
library only; loaded by file path, never put on sys.path, so it cannot shadow a target module.
The child sets `roots` (the target's pythonpath folders, each ending in a separator) and adds
its own files to `own`."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time: the target pays for its own
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import FrameType, TracebackType

# The limits every child report truncates to (characters): an exception's message, a result's
# repr, a traceback (its last part is kept).
MESSAGE_MAX = 500
REPR_MAX = 200
TRACEBACK_MAX = 8000

STDLIB = os.path.dirname(os.__file__) + os.sep
PACKAGES = ("site-packages", "dist-packages")
roots: tuple[str, ...] = ()
own: frozenset[str] = frozenset({os.path.abspath(__file__), os.path.realpath(__file__)})


def target_rel(filename: str) -> str | None:
    """`filename` relative to the target root holding it, unless it is an installed package
    or one of the probe's own files."""
    if filename in own:
        return None
    for root in roots:
        if filename.startswith(root):
            rel = filename[len(root) :]
            if not any(p in rel for p in PACKAGES):
                return rel
    return None


def is_stdlib(filename: str) -> bool:
    if filename.startswith("<") or filename in own:
        return True
    return filename.startswith(STDLIB) and not any(p in filename for p in PACKAGES)


def short(filename: str) -> str:
    """An installed package's file from its package folder on: "redis/connection.py"."""
    for pkg in PACKAGES:
        idx = filename.rfind(pkg + os.sep)
        if idx >= 0:
            return filename[idx + len(pkg) + 1 :]
    return filename


def attribute(places: Iterable[tuple[str, int]]) -> str | None:
    """The innermost target place, else the innermost non-stdlib one. Innermost first."""
    fallback = None
    for filename, lineno in places:
        rel = target_rel(filename)
        if rel is not None:
            return f"{rel}:{lineno}"
        if fallback is None and not is_stdlib(filename):
            fallback = f"{short(filename)}:{lineno}"
    return fallback


def frames(frame: FrameType | None) -> Iterator[tuple[str, int]]:
    """A stack's places, innermost first."""
    while frame is not None:
        yield frame.f_code.co_filename, frame.f_lineno or 0
        frame = frame.f_back


def tb_places(tb: TracebackType | None) -> list[tuple[str, int]]:
    """A traceback's places, innermost first."""
    places = []
    while tb is not None:
        places.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno or 0))
        tb = tb.tb_next
    places.reverse()
    return places


def type_name(cls: type) -> str:
    """ "module:qualname" of a class."""
    module = getattr(cls, "__module__", None) or "?"
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    return f"{module}:{qualname}"


def safe(func: Callable[[], str], limit: int) -> str:
    """What `func` formats (a str() or repr() of the target's), cut to `limit` characters; a
    formatting that raises says so instead."""
    try:
        text = func()
    except Exception as exc:
        text = f"<{type_name(type(exc))} while formatting>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
