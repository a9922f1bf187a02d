"""The parent's side of child.py: start it in the target's interpreter, send it requests
one at a time, each with a deadline, and scrub every secret from what comes back.

A request still running at its deadline (plus the time faulthandler needs to dump the stacks)
ends the child: `ChildGone` carries the stacks, and the sub-claim fails with them. So does a child
that dies. Secrets are sent through the request pipe only, and every string the child sends back
(exception messages, reprs, its stderr) has them replaced by "***" before anyone sees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from subprocess import Popen
from typing import Any

from signoff import processes
from signoff.engine.runner import TargetProcess, target_env
from signoff.errors import HarnessError

CHILD_SCRIPT = Path(__file__).with_name("child.py")
STARTUP_TIMEOUT = 30.0  # interpreter start-up, before the import of the target's callables
DUMP_GRACE = 0.5  # after a deadline: for faulthandler to write every thread's stack
EXIT_TIMEOUT = 5.0
STDERR_TAIL = 3000
REDACTED = "***"


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
        self.target = target
        self.refs = dict(refs)
        # longest first, so that a secret containing another is replaced whole
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self.probes = probes
        self.sandbox = dict(sandbox) if sandbox is not None else None
        self.import_timeout = import_timeout
        self.give_up = time.monotonic() + budget
        self.budget = budget
        self.calls = 0
        self.tmp: Path | None = None
        self.proc: Popen[bytes] | None = None
        self.request_w = -1
        self.answer_r = -1
        self.buffer = b""

    def __enter__(self) -> WebhookChild:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="signoff-webhook-"))
        request_r, self.request_w = os.pipe()
        self.answer_r, answer_w = os.pipe()
        argv = [
            self.target.python,
            "-u",
            str(CHILD_SCRIPT),
            str(request_r),
            str(answer_w),
            str(self.tmp / "stacks"),
        ]
        try:
            with open(self.tmp / "output", "wb") as out:
                self.proc = processes.spawn(
                    argv,
                    role="webhook probe",
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.target.cwd,
                    env=target_env(self.target),
                    pass_fds=(request_r, answer_w),
                )
        except OSError as exc:
            raise HarnessError(
                f"cannot start the target's interpreter {self.target.python!r}: {exc}"
            ) from exc
        finally:
            os.close(request_r)
            os.close(answer_w)
        config = {
            "pythonpath": [os.path.abspath(p) for p in self.target.pythonpath],
            "refs": self.refs,
            "probes": self.probes,
            "sandbox": self.sandbox,
            "import_timeout": self.import_timeout,
        }
        self._send(config)
        waited = STARTUP_TIMEOUT + self.import_timeout
        try:
            ready = self._receive(waited, "the import of " + ", ".join(self.refs.values()))
        except ChildGone as gone:
            if gone.outcome == "hung":
                raise ImportFailed(
                    ", ".join(self.refs.values()),
                    f"still importing after {self.import_timeout:.0f} s",
                    gone.stacks or "",
                ) from None
            raise ImportFailed(
                ", ".join(self.refs.values()), "the interpreter died", gone.stderr
            ) from None
        if not ready.get("ready"):
            reason = f"{str(ready.get('exc_type', '?')).replace(':', '.')}: " + str(
                ready.get("exc_message", "")
            )
            raise ImportFailed(str(ready.get("ref", "?")), reason, str(ready.get("traceback", "")))

    def call(self, request: Mapping[str, Any], *, timeout: float, what: str) -> dict[str, Any]:
        """Send one request; its answer, scrubbed of secrets. Raises ChildGone."""
        left = self.give_up - time.monotonic()
        if left <= 0:
            raise ChildGone(
                "slow", what, self.budget, None, f"{self.calls} calls took {self.budget:.0f} s"
            )
        timeout = min(timeout, left)
        self.calls += 1
        self._send({**request, "timeout": timeout})
        answer = self._receive(timeout + DUMP_GRACE, what)
        if "error" in answer:
            raise HarnessError(f"the webhook probe child failed: {answer['error']}")
        return answer

    def _send(self, record: Mapping[str, Any]) -> None:
        data = (json.dumps(record) + "\n").encode()
        try:
            while data:
                written = os.write(self.request_w, data)
                data = data[written:]
        except (BrokenPipeError, OSError):
            pass  # the child is gone: _receive says how

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._gone("hung", what, timeout)
            readable, _, _ = select.select([self.answer_r], [], [], min(left, 1.0))
            if not readable:
                continue
            chunk = os.read(self.answer_r, 1 << 20)
            if not chunk:
                self._gone("crashed", what, timeout)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        record = json.loads(line)
        if not isinstance(record, dict):
            raise HarnessError("the webhook probe child answered something that is not an object")
        scrubbed: dict[str, Any] = _scrub(record, self.secrets)
        return scrubbed

    def _gone(self, outcome: str, what: str, waited: float) -> None:
        stacks = self._stacks() if outcome == "hung" else None
        self._kill()
        raise ChildGone(outcome, what, waited, stacks, self._stderr())

    def _stacks(self) -> str | None:
        assert self.tmp is not None
        path = self.tmp / "stacks"
        give_up = time.monotonic() + DUMP_GRACE
        last = -1
        while time.monotonic() < give_up:
            size = path.stat().st_size if path.exists() else 0
            if size > 0 and size == last:
                break
            last = size
            time.sleep(0.05)
        text = path.read_text(errors="replace") if path.exists() else ""
        return _scrub(text, self.secrets) or None

    def _stderr(self) -> str:
        if self.tmp is None:
            return ""
        try:
            with open(self.tmp / "output", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(f.tell() - 64 * 1024, 0))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        scrubbed: str = _scrub(text, self.secrets)
        return scrubbed[-STDERR_TAIL:]

    def _kill(self) -> None:
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def close(self) -> None:
        if self.request_w >= 0:
            with contextlib.suppress(OSError):
                os.close(self.request_w)  # EOF: the child exits
            self.request_w = -1
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=EXIT_TIMEOUT)
            processes.kill(self.proc)  # its process group, whatever the target started
            self.proc = None
        if self.answer_r >= 0:
            with contextlib.suppress(OSError):
                os.close(self.answer_r)
            self.answer_r = -1
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
