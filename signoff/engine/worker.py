"""A persistent probe child: one callable of the target, called many times, each call with its
own deadline.

`run_call` starts a fresh interpreter per call: right for one call, far too slow for the
thousands a property-based claim makes. A `Worker` starts `child.py` in mode "serve" once (in
the target's interpreter, with its pythonpath and environment), which imports the callable and
then serves calls sent over a pipe. A codec (a standard-library-only file the child loads by
path) turns each request's JSON arguments into a call and the result into JSON, so any argument
types can cross. Each call's time is measured in the child around the call alone.

A kind that needs more of the child gives it a preload (a standard-library-only file too, loaded
before the target is imported, with a JSON config: patches of the clock, spies, a sandbox) and
several named callables, one of which each request names; the preload may be the codec as well.
Whatever crosses the pipe (a secret, say) is never written to a file.

A call still running at its deadline is "hung": faulthandler has dumped every thread's stack, the
worker is killed, and the next call starts a new one (the import is paid again, off the clock).
A worker that dies is "crashed", with its stderr, and is restarted the same way. A worker whose
import raises, hangs or cannot resolve a class raises `WorkerSetupError`: nothing can be called.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn

from signoff.engine import startups
from signoff.engine.runner import (
    FINISH_TIMEOUT,
    MIN_IMPORT_TIMEOUT,
    STARTUP_TIMEOUT,
    TargetProcess,
    _annotate,
    _Child,
    _child,
    _descendants,
    _kill_all,
    _poll,
    _read_events,
    _read_result,
    _stderr_tail,
    _wait_for_dump,
)
from signoff.errors import HarnessError, UsageError

CLOSE_TIMEOUT = 1.0  # after the request pipe is closed: how long the child gets to exit

ReplyOutcome = Literal["returned", "raised", "hung", "crashed"]


@dataclass(frozen=True)
class Reply:
    """One call's end. `seconds`: the call's own time, measured in the child (None when it hung
    or crashed). `value`: the codec's JSON of what it returned. `instance_of`: for an exception,
    which of the worker's `classify` classes it is an instance of. `observed`: what the codec's
    `observed` says it saw during the call, whatever its end. `stacks`: every thread's stack at
    the deadline of a hung call. `stderr`: the tail of a crashed worker's stderr."""

    outcome: ReplyOutcome
    seconds: float | None
    value: Any = None
    result_type: str | None = None
    exc_type: str | None = None
    exc_mro: tuple[str, ...] = ()
    exc_message: str | None = None
    exc_where: str | None = None
    traceback: str | None = None
    instance_of: Mapping[str, bool] = field(default_factory=dict)
    observed: Mapping[str, Any] = field(default_factory=dict)
    stacks: str | None = None
    stderr: str = ""
    returncode: int | None = None
    encode_error: str | None = None

    def describe_exception(self) -> str:
        name = (self.exc_type or "?").replace(":", ".")
        text = f"{name}: {self.exc_message}" if self.exc_message else name
        return text + (f" (at {self.exc_where})" if self.exc_where else "")


class WorkerSetupError(Exception):
    """The worker could not get ready: the import raised or hung, a class did not resolve.
    `ref`: the callable (or callables) it was loading; `reason`: what went wrong with it;
    `details`: the traceback or the stacks."""

    def __init__(self, message: str, details: str = "", *, ref: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.details = details
        self.ref = ref
        self.reason = reason or message


def _exception_text(record: Mapping[str, Any]) -> str:
    name = str(record.get("exc_type") or "?").replace(":", ".")
    message = record.get("exc_message")
    text = f"{name}: {message}" if message else name
    return text + (f" (at {record['exc_where']})" if record.get("exc_where") else "")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Worker:
    """Calls `ref` ("module:attr"), or the callables `ref` names ({name: "module:attr"}), in a
    serving child of `target`; see the module doc.

    `codec`: the child-side codec file. `classify`: exception classes ("pkg.mod:Class", or a
    built-in's bare name) resolved in the child once; each raised exception is checked against
    them there. `import_timeout` bounds the preload, the import (and the resolution of the
    classes). `preload`, `preload_config`: the file the child loads before the import, and the
    JSON its install() gets. `audit`: False leaves the child's side-effect audit hook out. Use it
    as a context manager: leaving it stops the child."""

    def __init__(
        self,
        target: TargetProcess,
        ref: str | Mapping[str, str],
        *,
        codec: Path,
        classify: Sequence[str] = (),
        import_timeout: float = MIN_IMPORT_TIMEOUT,
        preload: Path | None = None,
        preload_config: Any = None,
        audit: bool = True,
    ) -> None:
        refs = {"": ref} if isinstance(ref, str) else dict(ref)
        if not refs:
            raise UsageError("a worker needs a callable to serve")
        for one in refs.values():
            module, sep, attr = one.partition(":")
            if not sep or not module or not attr:
                raise UsageError(f"not a callable reference 'module:attr': {one!r}")
        self.target = target
        self.ref = ", ".join(refs.values())
        self.import_timeout = import_timeout
        self._spec: dict[str, Any] = {
            "mode": "serve",
            "refs": refs,
            "import_timeout": import_timeout,
            "timeout": import_timeout,
            "importtime": False,
            "classify": list(classify),
            "codec": str(codec),
            "preload": str(preload) if preload is not None else None,
            "preload_config": preload_config,
            "audit": audit,
        }
        self._stack: contextlib.ExitStack | None = None
        self._child: _Child | None = None
        self._buffer = bytearray()
        self.starts = 0  # processes started: 1 + restarts after hangs and crashes
        self.calls = 0

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the child's lines ---------------------------------------------------------------------

    def _line(self, deadline: float) -> str | None:
        """The child's next status line; None at the deadline, "" when the pipe closed."""
        assert self._child is not None
        fd = self._child.status_r
        while b"\n" not in self._buffer:
            if not _poll(fd, max(deadline - time.monotonic(), 0.0)):
                return None
            data = os.read(fd, 1 << 16)
            if not data:
                return ""
            self._buffer += data
        at = self._buffer.index(b"\n")
        line = bytes(self._buffer[:at]).decode("utf-8", "replace")
        del self._buffer[: at + 1]
        return line

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and wait until it is ready (done by the first call otherwise)."""
        if self._child is not None:
            return
        stack = contextlib.ExitStack()
        self._child = stack.enter_context(_child(self.target, self._spec, importtime=False))
        self._stack = stack
        self._buffer = bytearray()
        self.starts += 1
        child = self._child
        phase, deadline = "startup", child.started + STARTUP_TIMEOUT
        while True:
            line = self._line(deadline)
            if line is None:
                self._setup_overran(phase)
            if line == "":
                stderr = _stderr_tail(child.tmp / "stderr")
                code = child.proc.poll()
                self._discard()
                reason = f"the target's interpreter ended (exit status {code})"
                raise WorkerSetupError(
                    f"{reason} while loading {self.ref}", stderr, ref=self.ref, reason=reason
                )
            words = (line or "").split()
            if not words:
                continue
            if words[0] == "step" and len(words) > 1:
                phase, deadline = words[1], time.monotonic() + self.import_timeout
            elif words[0] == "done":
                phase, deadline = "finish", time.monotonic() + FINISH_TIMEOUT
            elif words[0] == "ready":
                startups.give_back(child.proc.pid)  # set up: its place is for the next start
                return
            elif words[0] == "end":
                record = _read_result(child.tmp / "result") or {}
                self._discard()
                what = "import" if record.get("step") == "import" else "set up"
                ref, reason = str(record.get("ref") or self.ref), _exception_text(record)
                raise WorkerSetupError(
                    f"could not {what} {ref}: {reason}",
                    str(record.get("traceback") or ""),
                    ref=ref,
                    reason=reason,
                )

    def _setup_overran(self, phase: str) -> NoReturn:
        assert self._child is not None
        child = self._child
        if phase == "startup":
            stderr = _stderr_tail(child.tmp / "stderr")
            self._discard()
            raise HarnessError(
                f"the target's interpreter {self.target.python!r} did not start within "
                f"{STARTUP_TIMEOUT:.0f} s; stderr:\n{stderr}"
            )
        stacks = None
        if phase in ("import", "setup"):
            _, threads = _read_events(child.tmp / "events")
            stacks = _annotate(_wait_for_dump(child.tmp / "stacks"), threads)
        self._discard()
        what = {"import": "importing", "setup": "resolving the classes of"}.get(phase, "loading")
        raise WorkerSetupError(
            f"hangs: {what} {self.ref} still running after {self.import_timeout:g} s",
            stacks or "",
            ref=self.ref,
            reason=f"still {what} after {self.import_timeout:g} s",
        )

    def _discard(self) -> None:
        """Kill the child (and what it started, its group included), forget it, drop its
        folder. A child that already ended is forgotten all the same."""
        child, stack = self._child, self._stack
        self._stack, self._child = None, None
        try:
            if child is not None:
                _kill_all(child.proc, _descendants(child.proc))
        finally:
            if stack is not None:
                stack.close()

    def close(self) -> None:
        """Stop the child: EOF on its request pipe, a moment to exit, then kill what is left."""
        child = self._child
        if child is None:
            return
        if child.release_w >= 0:
            with contextlib.suppress(OSError):
                os.close(child.release_w)
            child.release_w = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=CLOSE_TIMEOUT)
        self._discard()

    # -- calls ---------------------------------------------------------------------------------

    def call(self, args: Any, timeout: float, *, ref: str = "") -> Reply:
        """One call of the callable named `ref` (the first one by default): the codec gets
        `args` (JSON); the call gets `timeout` seconds."""
        if not timeout > 0:
            raise ValueError(f"a call timeout must be positive, not {timeout!r}")
        self.start()
        assert self._child is not None
        child = self._child
        self.calls += 1
        request = json.dumps({"timeout": timeout, "args": args, "ref": ref}) + "\n"
        try:
            _write_all(child.release_w, request.encode("utf-8"))
        except OSError:
            return self._crashed("the worker was gone before the call")
        line = self._line(time.monotonic() + FINISH_TIMEOUT)
        if line is None:
            return self._crashed(f"the worker did not start the call within {FINISH_TIMEOUT:g} s")
        if line.startswith("reply "):
            record = json.loads(line[6:])
            raise HarnessError(f"the codec could not prepare the call: {_exception_text(record)}")
        if not line.startswith("call "):
            return self._crashed("the worker ended")
        line = self._line(time.monotonic() + timeout)
        if line is None:
            return self._hung()
        if not line.startswith("done "):
            return self._crashed("the worker died during the call")
        line = self._line(time.monotonic() + FINISH_TIMEOUT)
        if line is None or not line.startswith("reply "):
            return self._crashed("the worker did not send the result")
        return _reply(json.loads(line[6:]))

    def _hung(self) -> Reply:
        assert self._child is not None
        child = self._child
        stacks = _wait_for_dump(child.tmp / "stacks")
        _, threads = _read_events(child.tmp / "events")
        self._discard()
        return Reply("hung", None, stacks=_annotate(stacks, threads))

    def _crashed(self, why: str) -> Reply:
        assert self._child is not None
        child = self._child
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=CLOSE_TIMEOUT)
        code = child.proc.poll()
        stderr = _stderr_tail(child.tmp / "stderr")
        self._discard()
        return Reply("crashed", None, stderr=f"{stderr}\nsignoff: {why}".lstrip(), returncode=code)


def _reply(record: Mapping[str, Any]) -> Reply:
    outcome: ReplyOutcome = "returned" if record.get("outcome") == "returned" else "raised"
    return Reply(
        outcome=outcome,
        seconds=float(record["seconds"]) if record.get("seconds") is not None else None,
        value=record.get("value"),
        result_type=record.get("result_type"),
        exc_type=record.get("exc_type"),
        exc_mro=tuple(record.get("exc_mro") or ()),
        exc_message=record.get("exc_message"),
        exc_where=record.get("exc_where"),
        traceback=record.get("traceback"),
        instance_of=dict(record.get("instance_of") or {}),
        observed=dict(record.get("observed") or {}),
        encode_error=record.get("encode_error"),
    )
