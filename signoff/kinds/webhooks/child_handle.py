"""The parent's side of the webhook probe: a `Worker` (engine/worker.py) in the target's
interpreter, with child.py as its preload and codec, and every secret scrubbed from what comes
back.

A request still running at its deadline ends the child: `ChildGone` carries the stacks, and the
sub-claim fails with them. So does a child that dies. Secrets are sent in the requests, through
the worker's pipe only, and every string that comes back (exception messages, reprs, stacks, its
stderr, error messages) has them replaced by "***" before anyone sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from signoff.engine.runner import TargetProcess
from signoff.engine.worker import Reply, Worker, WorkerSetupError
from signoff.errors import HarnessError

CHILD_SCRIPT = Path(__file__).with_name("child.py")
REDACTED = "***"
# which of the child's callables each op calls
_CALLS = {"verify": "verify", "timing": "verify", "sign": "sign", "validate": "validate"}


class ChildGone(Exception):
    """The child hung (`outcome` "hung"), died ("crashed") or used up its time ("slow") during
    `what`."""

    def __init__(
        self, outcome: str, what: str, waited: float, stacks: str | None, stderr: str
    ) -> None:
        super().__init__(f"{what}: {outcome}")
        self.outcome = outcome
        self.what = what
        self.waited = waited
        self.stacks = stacks
        self.stderr = stderr


class ImportFailed(Exception):
    """A callable the claims name could not be imported (or is not callable)."""

    def __init__(self, ref: str, reason: str, details: str = "") -> None:
        super().__init__(f"could not import {ref}: {reason}")
        self.ref = ref
        self.reason = reason
        self.details = details


def _scrub(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    return value


class WebhookChild:
    """One webhook probe child. Use as a context manager; `call` sends one request."""

    def __init__(
        self,
        target: TargetProcess,
        refs: Mapping[str, str],
        *,
        secrets: Iterable[str],
        probes: bool = False,
        sandbox: Mapping[str, list[str]] | None = None,
        import_timeout: float = 20.0,
        budget: float = 120.0,
    ) -> None:
        # longest first, so that a secret containing another is replaced whole
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self.give_up = time.monotonic() + budget
        self.budget = budget
        self.calls = 0
        config = {"probes": probes, "sandbox": dict(sandbox) if sandbox is not None else None}
        self.worker = Worker(
            target,
            dict(refs),
            codec=CHILD_SCRIPT,
            preload=CHILD_SCRIPT,
            preload_config=config,
            import_timeout=import_timeout,
            audit=False,  # the sandbox has its own hook; nothing else is watched
        )

    def __enter__(self) -> WebhookChild:
        try:
            self.worker.start()
        except WorkerSetupError as exc:
            self.close()
            raise ImportFailed(
                self._scrub(exc.ref), self._scrub(exc.reason), self._scrub(exc.details)
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.worker.close()

    def _scrub(self, text: str) -> str:
        scrubbed: str = _scrub(text, self.secrets)
        return scrubbed

    def call(self, request: Mapping[str, Any], *, timeout: float, what: str) -> dict[str, Any]:
        """Send one request; its answer, scrubbed of secrets. Raises ChildGone."""
        left = self.give_up - time.monotonic()
        if left <= 0:
            raise ChildGone(
                "slow", what, self.budget, None, f"{self.calls} calls took {self.budget:.0f} s"
            )
        timeout = min(timeout, left)
        self.calls += 1
        try:
            reply = self.worker.call(dict(request), timeout, ref=_CALLS[str(request["op"])])
        except HarnessError as exc:
            raise HarnessError(f"the webhook probe child failed: {self._scrub(str(exc))}") from None
        if reply.outcome in ("hung", "crashed"):
            stacks = self._scrub(reply.stacks) if reply.stacks else None
            raise ChildGone(reply.outcome, what, timeout, stacks, self._scrub(reply.stderr))
        if reply.encode_error:
            raise HarnessError(f"the webhook probe child failed: {self._scrub(reply.encode_error)}")
        answer: dict[str, Any] = _scrub(_answer(reply), self.secrets)
        return answer


def _answer(reply: Reply) -> dict[str, Any]:
    """A reply as the sub-claims read it: outcome, accepted, the exception or the result, and
    what the child observed during the call."""
    answer: dict[str, Any] = {"outcome": reply.outcome, "seconds": reply.seconds}
    if reply.outcome == "raised":
        answer |= {
            "accepted": False,
            "exc_type": reply.exc_type,
            "exc_message": reply.exc_message,
            "where": reply.exc_where,
        }
    else:
        answer |= {"result_type": reply.result_type, **dict(reply.value or {})}
    return answer | dict(reply.observed)
