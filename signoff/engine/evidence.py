"""Turning a child's raw result into the few lines a person needs: where it is stuck, what it
was waiting on, which exception, which cycle."""

from __future__ import annotations

import re
from collections.abc import Sequence

from signoff.engine.runner import ChildResult
from signoff.units import format_duration

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def relative_to_roots(path: str, roots: Sequence[str]) -> str | None:
    for root in roots:
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix) and "-packages/" not in path[len(prefix) :]:
            return path[len(prefix) :]
    return None


def stuck_frame(stacks: str | None, roots: Sequence[str]) -> str | None:
    """The innermost frame of target code in the first thread of a faulthandler dump that has
    one ("core/tasks.py:12 in connect"). The probe puts the main thread first; each thread's
    frames are listed most recent call first."""
    if not stacks:
        return None
    for line in stacks.splitlines():
        match = _FRAME.match(line)
        if not match:
            continue
        rel = relative_to_roots(match["file"], roots)
        if rel is not None:
            return f"{rel}:{match['line']} in {match['func']}"
    return None


def describe_exception(result: ChildResult) -> str:
    name = (result.exc_type or "?").replace(":", ".")
    text = f"{name}: {result.exc_message}" if result.exc_message else name
    if result.exc_where:
        text += f" (at {result.exc_where})"
    return text


def describe_hang(
    result: ChildResult,
    what: str,
    waited: float,
    roots: Sequence[str],
    *,
    budget: float | None = None,
    is_hang: bool = False,
) -> str:
    """A call still running when the probe stopped watching it at `waited` seconds. It is not
    said to hang (it might have given up a moment later), unless `is_hang`: the claims file
    itself defines "still running after `waited`" as a hang (an import's `timeout`). `budget`:
    the time the claim allows, to give how far past it the call was still running."""
    if is_hang:
        head = f"hangs: {what} still running after {format_duration(waited)}"
    else:
        head = f"{what} still running when watching stopped at {format_duration(waited)}"
    if budget is not None and budget > 0:
        ratio = waited / budget
        head += f", {ratio:.1f}x" if ratio < 10 else f", {ratio:.0f}x"
        head += f" the {format_duration(budget)} claimed"
    lines = [head + (f", waiting on {result.waiting_on}" if result.waiting_on else "")]
    frame = stuck_frame(result.stacks, roots)
    if frame:
        lines.append(f"stuck at {frame}")
    return "\n".join(lines)


def hang_details(result: ChildResult) -> str:
    parts = []
    if result.sockets:
        parts.append("open sockets:\n" + "\n".join(f"  {s}" for s in result.sockets))
    if result.stacks:
        parts.append("stacks of every thread at the deadline:\n" + result.stacks.rstrip())
    return "\n\n".join(parts)


def crash_details(result: ChildResult) -> str:
    return "\n\n".join(x for x in (result.traceback or "", result.stderr.strip()) if x)


def raised_matches(expected: str, mro: tuple[str, ...]) -> bool:
    """Whether a class named "pkg.mod:Name" (or a bare builtin "ValueError") is in the raised
    exception's MRO. A package may name a class it re-exports: "redis:TimeoutError" matches
    "redis.exceptions:TimeoutError"."""
    module, _, name = expected.rpartition(":")
    module = module or "builtins"
    for entry in mro:
        mod, _, qual = entry.rpartition(":")
        if qual == name and (mod == module or mod.startswith(module + ".")):
            return True
    return False
