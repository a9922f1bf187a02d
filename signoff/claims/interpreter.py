"""Whether [target] can run at all: its `python` exists, is executable, is a Python that starts
(run once, bounded, with the target's environment), and every `pythonpath` entry exists.

The model only makes these paths absolute (a file may be validated on a machine without the
target's venv); `signoff check` and `signoff run` call `target_problems` before anything else
starts, so a wrong interpreter is a bad input (exit status 2), not a run whose every claim is
`error`."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

from signoff import processes
from signoff.claims.model import ClaimsFile
from signoff.claims.secrets import scrub, secret_values
from signoff.errors import Problem

START_TIMEOUT = 5.0  # a Python starts in tens of milliseconds; a few seconds is a loaded machine
OLDEST = (3, 8)  # the probe child needs sys.addaudithook
_MARK = "signoff-python"
# print() would differ between Python 2 and 3; the marker tells a Python from another program
_ASK = f"import sys; sys.stdout.write('{_MARK} %d.%d.%d\\n' % tuple(sys.version_info[:3]))"
_TAIL = 300

_started: set[tuple[object, ...]] = set()  # interpreters seen to start, by everything that matters


def target_problems(claims: ClaimsFile, file: str) -> list[Problem]:
    """Problems with [target].python and [target].pythonpath, each naming `file` and the key."""
    problems = [
        Problem(file, f"target.pythonpath[{i}]", message)
        for i, folder in enumerate(claims.target.pythonpath)
        if (message := _folder_problem(folder)) is not None
    ]
    message = _interpreter_problem(claims)
    if message is not None:
        problems.insert(0, Problem(file, "target.python", message))
    return problems


def _folder_problem(folder: Path) -> str | None:
    if folder.is_dir():
        return None
    if os.path.lexists(folder) and not folder.exists():
        return (
            f"expected an existing folder; {folder} is a symlink to {os.readlink(folder)}, "
            "which does not exist"
        )
    if folder.is_file():
        if zipfile.is_zipfile(folder):
            return None  # a zip archive on sys.path is fine
        return f"expected a folder (or a .zip archive); {folder} is a file"
    if not folder.exists():
        return f"expected an existing folder; no such folder: {folder}"
    return f"expected a folder; {folder} is neither a folder nor a file"


def _interpreter_problem(claims: ClaimsFile) -> str | None:
    python = claims.target.python
    what = "expected the target's Python interpreter"
    if os.path.lexists(python) and not python.exists():
        return f"{what}; {python} is a symlink to {os.readlink(python)}, which does not exist"
    if not python.exists():
        parent = python.parent
        missing = "" if parent.is_dir() else f" (there is no folder {parent} either)"
        return f"{what}; no such file: {python}{missing}"
    if python.is_dir():
        return f"{what}, a file; {python} is a folder"
    mode = python.stat().st_mode
    if not os.access(python, os.X_OK) or not mode & 0o111:
        return (
            f"{what}, an executable file; {python} is not executable "
            f"(mode {stat.S_IMODE(mode):04o})"
        )
    return _run_problem(claims)


def _run_problem(claims: ClaimsFile) -> str | None:
    """Start the interpreter once, as a probe would (the target's env, pythonpath and folder)."""
    from signoff.engine.runner import TargetProcess, target_env

    target = claims.target
    process = TargetProcess(
        python=str(target.python),
        pythonpath=tuple(str(p) for p in target.pythonpath),
        env=dict(target.env),
        cwd=str(claims.path.parent),
    )
    info = target.python.stat()
    seen: tuple[object, ...] = (process.python, info.st_ino, info.st_mtime_ns)
    seen += (process.pythonpath, process.cwd, *sorted(process.env.items()))
    if seen in _started:
        return None
    python = target.python
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = processes.spawn(
                [str(python), "-c", _ASK],
                role="interpreter-check",
                stdout=out,
                stderr=err,
                cwd=process.cwd,
                env=target_env(process),
            )
        except OSError as exc:
            return (
                f"expected a Python interpreter; {python} cannot be run: "
                f"{exc.strerror or exc}{_shebang_hint(python)}"
            )
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            processes.kill(proc)
            return (
                f"expected a Python interpreter that starts within {START_TIMEOUT:g} s; "
                f"{python} was still starting after {START_TIMEOUT:g} s (stopped)"
            )
        processes.forget(proc)
        out.seek(0)
        err.seek(0)
        said = out.read(4096).decode("utf-8", "replace")
        complaint = _tail(err.read(64 * 1024).decode("utf-8", "replace"), secret_values(claims))
    version = _version(said)
    if proc.returncode != 0:
        shown = f": {complaint}" if complaint else " (nothing on stderr)"
        return (
            f"expected a Python interpreter that starts; {python} exited with status "
            f"{proc.returncode} at start{shown}"
        )
    if version is None:
        seen_out = said.strip()[:80]
        return (
            f"expected a Python interpreter; {python} ran but did not answer as one (exit "
            f"status 0, {f'output {seen_out!r}' if seen_out else 'no output'})"
        )
    if version[:2] < OLDEST:
        return (
            f"expected Python {OLDEST[0]}.{OLDEST[1]} or newer; {python} is Python "
            f"{'.'.join(map(str, version))}"
        )
    _started.add(seen)
    return None


def _shebang_hint(python: Path) -> str:
    """A script's #! line, when it is why the file cannot run (it names a missing program)."""
    try:
        with open(python, "rb") as f:
            first = f.readline(200).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" (its first line is {first!r})" if first.startswith("#!") else ""


def _version(said: str) -> tuple[int, ...] | None:
    for line in said.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == _MARK:
            try:
                return tuple(int(part) for part in words[1].split("."))
            except ValueError:
                return None
    return None


def _tail(text: str, secrets: list[str]) -> str:
    """The last lines of an interpreter's complaint, on one line, without secrets."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    shown = " | ".join(lines[-3:])
    if len(shown) > _TAIL:
        shown = "..." + shown[-_TAIL:]
    return scrub(shown, secrets)
