"""The claim kinds: one registry, from which every list of kinds is derived (the claims file's
sections, `--only`, which suite runs which kind, which kinds need the services or the served
target, and the check of each kind).

A kind's code lives in `signoff/kinds/<section>/`; its check is named here by "module:function"
and imported only when a claim of that kind is checked, so hypothesis or Locust load only when
needed. Kinds from other installed packages register a `Kind` under the entry point group
`signoff.kinds` (see docs/adding-a-kind.md)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from signoff.claims.model import ClaimRef
    from signoff.context import RunContext
    from signoff.verdict import Verdict

ENTRY_POINT_GROUP = "signoff.kinds"
OTHER_SUITE = "other"  # the suite (suites/test_other_kinds.py) of kinds without one of their own


@dataclass(frozen=True)
class Kind:
    """One kind of claim. `check` is "module:function", a function (ctx, ref) -> Verdict; None
    when this version has no probe for the kind (its claims are `error`, never skipped)."""

    name: str  # the claim id's prefix and the word of `--only`: "timeout"
    section: str  # the claims file's key: "timeouts"
    check: str | None
    suite: str = OTHER_SUITE  # the suites/ module that runs its claims: suites/test_<suite>.py
    services: bool = False  # its probes need the services up
    server: bool = False  # its claims need [target.server]
    named: bool = True  # an array of tables, each claim with a name unique in the section
    # claims side by side (signoff.schedule): a kind whose figure is CPU time runs in the quiet
    # lane, alone (True: every claim; a tuple: those sub-claims, "time" of "cron:time"); the
    # claims of kinds with the same `group` run one at a time
    quiet: bool | tuple[str, ...] = False
    group: str | None = None
    # a kind from another package: the model of one table of its section (an in-tree kind has
    # a field of its own in signoff.claims.model.ClaimsFile, typed for mypy)
    model: type[BaseModel] | None = None


BUILTIN: tuple[Kind, ...] = (
    Kind(
        "import",
        "imports",
        "signoff.kinds.imports.check:check",
        suite="imports",
        services=True,
        named=False,
        quiet=True,
    ),
    Kind(
        "timeout", "timeouts", "signoff.kinds.timeouts.check:check", suite="timeouts", services=True
    ),
    Kind(
        "degradation",
        "degradation",
        "signoff.kinds.degradation.check:check",
        suite="degradation",
        services=True,
    ),
    Kind(
        "http",
        "http",
        "signoff.kinds.http.check:check",
        suite="http",
        services=True,
        server=True,
        quiet=True,  # its figures are the served target's answer times
    ),
    # hypothesis (cron's and the webhooks' cases) is not thread-safe: one claim at a time
    Kind(
        "cron",
        "cron",
        "signoff.kinds.cron.check:check",
        suite="cron",
        named=False,
        quiet=("time",),
        group="hypothesis",
    ),
    Kind(
        "webhook",
        "webhooks",
        "signoff.kinds.webhooks.check:check",
        suite="webhooks",
        named=False,
        quiet=("constant-time",),
        group="hypothesis",
    ),
    Kind(
        "load",
        "load",
        "signoff.kinds.load.check:check",
        suite="load",
        services=True,
        server=True,
        quiet=True,
    ),
    Kind(
        "websocket",
        "websocket",
        "signoff.kinds.websocket.check:check",
        suite="websocket",
        services=True,
        server=True,
    ),
    Kind("call", "call", "signoff.kinds.call.check:check", suite="call", services=True),
    Kind("sql", "sql", "signoff.kinds.sql.check:check", suite="sql", services=True),
)


@functools.cache
def all_kinds() -> tuple[Kind, ...]:
    """The built-in kinds, then those other installed packages register, in name order."""
    found: list[Kind] = []
    known = {kind.name for kind in BUILTIN} | {kind.section for kind in BUILTIN}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        kind = point.load()
        if not isinstance(kind, Kind):
            raise TypeError(
                f"entry point {point.name} = {point.value!r} of group {ENTRY_POINT_GROUP} is "
                f"a {type(kind).__name__}, not a signoff.kinds.Kind"
            )
        if kind.name in known or kind.section in known:
            raise ValueError(
                f"entry point {point.name} = {point.value!r}: the kind {kind.name!r} (section "
                f"{kind.section!r}) is taken"
            )
        known |= {kind.name, kind.section}
        found.append(kind)
    return (*BUILTIN, *found)


def plugin_kinds() -> tuple[Kind, ...]:
    return all_kinds()[len(BUILTIN) :]


def names() -> tuple[str, ...]:
    return tuple(kind.name for kind in all_kinds())


def by_name(name: str) -> Kind:
    for kind in all_kinds():
        if kind.name == name:
            return kind
    raise KeyError(name)


def from_word(word: str) -> str:
    """`--only` accepts a claim kind ("import") or its section's name ("imports")."""
    for kind in all_kinds():
        if word in (kind.name, kind.section):
            return kind.name
    raise ValueError(f"unknown claim kind {word!r}; expected one of {', '.join(names())}")


def in_suite(suite: str) -> tuple[str, ...]:
    """The kinds whose claims suites/test_<suite>.py runs."""
    return tuple(kind.name for kind in all_kinds() if kind.suite == suite)


def needs_services(ref: ClaimRef) -> bool:
    """Whether this claim's probe needs the services up (a section may say it does not, with
    `with_services = false`)."""
    return by_name(ref.kind).services and getattr(ref.spec, "with_services", True) is not False


def is_quiet(ref: ClaimRef) -> bool:
    """Whether this claim's figure is CPU time, so that it runs while nothing else does."""
    quiet = by_name(ref.kind).quiet
    if isinstance(quiet, bool):
        return quiet
    return ref.id.removeprefix(f"{ref.kind}:") in quiet


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """Run one claim's check; a kind this version has no probe for is `error`, never skipped."""
    kind = by_name(ref.kind)
    if kind.check is None:
        from signoff.verdict import Verdict

        return Verdict(
            ref.id, ref.kind, "error", evidence=f"not checked: no {ref.kind} probe in this version"
        )
    function: Callable[[Any, Any], Verdict] = _load(kind.check)
    return function(ctx, ref)


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
