"""Why a claim ended without a verdict. Every way a run can leave a claim unchecked (the
harness's own exception, Ctrl-C or SIGTERM, services that never started, a suite pytest could
not collect, -x or --maxfail, a test deselected or skipped, a kind no collected suite checks)
is recorded here as the run goes, and `RunEnd.why` gives each such claim its reason: "the run
ended" alone is never an answer."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

from signoff.claims import ClaimRef

_SIGNOFF = Path(__file__).resolve().parent


@dataclass
class RunEnd:
    """What the plugin saw of the run's end. Each field: a reason, or None / empty if it did
    not happen. `claims`: per claim id, why its own test gave no verdict. `collected`: the
    claim ids pytest collected (None until collection is done)."""

    interrupted: str | None = None  # "Ctrl-C", "SIGTERM"
    services: str | None = None  # the services could not be started
    harness_error: str | None = None  # the harness's own exception, outside any claim's check
    collection_errors: list[str] = field(default_factory=list)
    stopped: str | None = None  # pytest stopped early: "stopping after 1 failures"
    collected: set[str] | None = None
    claims: dict[str, str] = field(default_factory=dict)
    exit_status: int | None = None

    def why(self, claim: ClaimRef) -> str:
        """Why `claim` got no verdict: the first reason that applies to it."""
        if claim.id in self.claims:
            return self.claims[claim.id]
        if self.services is not None:
            return f"the services could not be started: {self.services}"
        if self.harness_error is not None:
            return f"the harness itself failed before this claim: {self.harness_error}"
        if self.interrupted is not None:
            return f"the run was interrupted ({self.interrupted}) before this claim"
        if self.collection_errors:
            more = len(self.collection_errors) - 1
            also = f" (and {more} more)" if more else ""
            return (
                f"pytest could not collect the suites, so no claim was checked: "
                f"{self.collection_errors[0]}{also}"
            )
        if self.collected is not None and claim.id not in self.collected:
            return (
                f"no test checks it: none of the suites pytest collected checks {claim.kind} "
                "claims (was pytest given only some of suites/?)"
            )
        if self.stopped is not None:
            return f"pytest stopped the run early ({self.stopped}, -x or --maxfail) before it"
        status = f" (pytest exit status {self.exit_status})" if self.exit_status is not None else ""
        return f"the run ended before this claim, and signoff saw no reason why{status}"


def describe_failure(exc: BaseException) -> str:
    """An exception of the harness, for a person: "KeyError: 'redis' (at
    signoff/kinds/timeouts/check.py:52 in check_timeout)", the place being the innermost frame of
    signoff's own code (else the innermost frame)."""
    text, place = failure_parts(exc)
    return f"{text} (at {place})" if place else text


def failure_parts(exc: BaseException) -> tuple[str, str]:
    """("KeyError: 'redis'", "signoff/kinds/timeouts/check.py:52 in check_timeout"); the place is
    "" when the exception has no traceback."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    text = f"{name}: {exc}" if str(exc) else name
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if _inside_signoff(f.filename)]
    if not frames:
        return text, ""
    frame = (ours or frames)[-1]
    return text, f"{_shown_path(frame.filename)}:{frame.lineno} in {frame.name}"


def _inside_signoff(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(_SIGNOFF)
    except ValueError:
        return False
    return True


def _shown_path(filename: str) -> str:
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(_SIGNOFF.parent))
    except ValueError:
        return str(path)
