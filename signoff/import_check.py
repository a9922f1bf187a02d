"""`signoff check --imports`: import every name of target code the claims give, in ONE fresh
interpreter of the target (its python, pythonpath, [target].env and folder; no service started,
so REDIS_URL / DATABASE_URL are whatever this shell has, usually unset), each import bounded.

A name that is wrong (its module or a parent package not found, an attribute not there, a
`raises` that is not a class, a `call` that is a module or plain data) is a problem of the
claims file: exit status 2, like any bad input. A name whose module is found but whose code
fails at import (raises, a circular import, a dependency missing, hangs, kills the
interpreter) is the target's problem, which `signoff run` reports on the claim: exit status 1."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from signoff.claims import ClaimsFile
from signoff.claims.callables import NamedRef, named_refs
from signoff.claims.secrets import scrub, secret_values
from signoff.engine.evidence import stuck_frame
from signoff.engine.runner import ChildResult, Step, StepsResult, TargetProcess, run_steps
from signoff.errors import Problem
from signoff.units import format_duration

DEFAULT_TIMEOUT = 10.0  # per import, without [imports].timeout: the contract's own default
# what a `call` can never be; anything else may be callable (an instance with __call__, say)
_NOT_CALLABLE = {
    "builtins:module": "a module",
    "builtins:NoneType": "None",
    "builtins:bool": "a bool",
    "builtins:int": "an int",
    "builtins:float": "a float",
    "builtins:str": "a str",
    "builtins:bytes": "bytes",
    "builtins:list": "a list",
    "builtins:tuple": "a tuple",
    "builtins:dict": "a dict",
    "builtins:set": "a set",
}


@dataclass
class ImportsCheck:
    """What the interpreter said about each name. `problems`: wrong names (exit 2); `broken`:
    names whose module's code raised, hung or killed the interpreter at import (exit 1);
    `not_reached`: keys whose import never ran because of a hang or a crash before it;
    `names`: how many distinct names; `seconds`: the interpreter's wall time."""

    names: int
    problems: list[Problem] = field(default_factory=list)
    broken: list[Problem] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_imports(claims: ClaimsFile, file: str, timeout: float | None = None) -> ImportsCheck:
    """Import every name of `named_refs(claims)` in one interpreter; `timeout` per import
    (default [imports].timeout, else 10 s)."""
    refs = named_refs(claims)
    if timeout is None:
        timeout = claims.imports.timeout if claims.imports is not None else DEFAULT_TIMEOUT
    steps: dict[tuple[str, bool], Step] = {}
    for ref in refs:
        wanted = (ref.ref, ref.kind == "exception")
        if wanted not in steps:
            steps[wanted] = Step(
                name=f"name{len(steps)}",
                op="resolve",
                timeout=timeout,
                ref=ref.ref,
                is_class=wanted[1],
            )
    report = ImportsCheck(names=len(steps))
    if not steps:
        return report
    target = claims.target
    process = TargetProcess(
        python=str(target.python),
        pythonpath=tuple(str(p) for p in target.pythonpath),
        env=dict(target.env),
        cwd=str(claims.path.parent),
    )
    started = time.monotonic()
    result = run_steps(process, list(steps.values()))
    report.seconds = time.monotonic() - started
    secrets = secret_values(claims)
    for ref in refs:
        step = steps[(ref.ref, ref.kind == "exception")]
        done = result.get(step.name)
        if done is None:
            report.not_reached.append(ref.key)
        elif done.outcome in ("hung", "crashed"):
            stopped = _stopped(ref, done, timeout, process)
            report.broken.append(Problem(file, ref.key, scrub(stopped, secrets)))
        elif ref.kind == "method" and _failed(result, steps, ref.ref.rpartition(".")[0]):
            continue  # `expect` itself did not import: said there, not again for `then`
        elif done.outcome == "raised" and not _about_the_name(ref, done):
            failed = f"{_raised(ref, done)}: the target's code fails at import"
            report.broken.append(Problem(file, ref.key, scrub(failed, secrets)))
        elif (problem := _problem(ref, done)) is not None:
            report.problems.append(Problem(file, ref.key, scrub(problem, secrets)))
    return report


_NO_MODULE = re.compile(r"^No module named '([^']+)'")


def _about_the_name(ref: NamedRef, done: ChildResult) -> bool:
    """Whether what the import raised says the name is wrong, rather than that the code behind
    a right name fails: its module (or a parent package) not found, an attribute of the name
    not there, not a class."""
    message = done.exc_message or ""
    module, _, attr = ref.ref.partition(":")
    if done.exc_type == "builtins:ModuleNotFoundError":
        missing = _NO_MODULE.match(message)
        return missing is not None and f"{module}.".startswith(f"{missing[1]}.")
    if done.exc_type == "builtins:AttributeError":
        return any(f"has no attribute '{part}'" in message for part in attr.split("."))
    if done.exc_type == "builtins:TypeError":
        return message.startswith(f"{ref.ref} is ") and message.endswith(", not a class")
    return False


def _failed(result: StepsResult, steps: dict[tuple[str, bool], Step], ref: str) -> bool:
    step = steps.get((ref, False))
    done = result.get(step.name) if step is not None else None
    return done is not None and done.outcome != "returned"


def _problem(ref: NamedRef, done: ChildResult) -> str | None:
    what = _what(ref)
    if done.outcome == "raised":
        return f"expected {what}; {_raised(ref, done)}"
    if ref.kind != "exception" and done.result_type in _NOT_CALLABLE:
        return f"expected {what}; {_shown(ref)!r} is {_NOT_CALLABLE[done.result_type]}"
    return None


def _raised(ref: NamedRef, done: ChildResult) -> str:
    name = (done.exc_type or "?").replace(":", ".").removeprefix("builtins.")
    text = f"{name}: {done.exc_message}" if done.exc_message else name
    if done.exc_where:
        text += f" (at {done.exc_where})"
    return f"importing {_shown(ref)!r} raised {text}"


def _shown(ref: NamedRef) -> str:
    """A built-in exception as the file writes it ("ValueError"); any other name in full."""
    return ref.written if ref.ref.startswith("builtins:") else ref.ref


def _what(ref: NamedRef) -> str:
    if ref.kind == "exception":
        return "an exception class"
    if ref.kind == "method":
        cls = ref.ref.rpartition(".")[0]
        return f"a method {ref.written!r} of {cls} (the class `expect` names)"
    return "a callable of the target"


def _stopped(ref: NamedRef, done: ChildResult, timeout: float, process: TargetProcess) -> str:
    module = ref.ref.partition(":")[0]
    if done.outcome == "crashed":
        last = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
        tail = f": {last[0][:200]}" if last else ""
        return (
            f"importing {module} (for {_shown(ref)!r}) killed the interpreter "
            f"(exit status {done.returncode}){tail}"
        )
    text = (
        f"importing {module} (for {_shown(ref)!r}) was still running after "
        f"{format_duration(timeout)}: it hangs at import"
    )
    if done.waiting_on:
        text += f", waiting on {done.waiting_on}"
    frame = stuck_frame(done.stacks, process.pythonpath)
    if frame:
        text += f"; stuck at {frame}"
    return text
