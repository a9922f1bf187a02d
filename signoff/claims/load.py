"""Reading a claims file: TOML in, a validated ClaimsFile out, or every problem found."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from signoff.claims.messages import problems_from
from signoff.claims.model import ClaimsFile
from signoff.errors import ClaimsError, Problem


def load_claims(path: str | os.PathLike[str], *, runnable: bool = False) -> ClaimsFile:
    """The claims file at `path`, validated. Relative paths inside it are resolved against its
    folder. Raises ClaimsError with every problem found (file missing or unreadable, TOML
    syntax, empty file, each wrong key), each naming the file as given and the key.

    With `runnable`, the target must also be able to run here: [target].python exists and
    starts as a Python (run once, for a few seconds at most), every pythonpath entry exists.
    `signoff check` and `signoff run` ask for it; reading a file for other uses does not."""
    claims = _load(path)
    if runnable:
        from signoff.claims.interpreter import target_problems

        problems = target_problems(claims, os.fspath(path))
        if problems:
            raise ClaimsError(problems)
    return claims


def _load(path: str | os.PathLike[str]) -> ClaimsFile:
    shown = os.fspath(path)
    data = _read_toml(shown)
    if "path" in data:
        raise ClaimsError(
            [Problem(shown, "path", 'unknown key "path" (the file\'s own path is not a setting)')]
        )
    absolute = Path(os.path.abspath(shown))
    try:
        return ClaimsFile.model_validate(
            {**data, "path": absolute}, context={"base_dir": absolute.parent}
        )
    except ValidationError as exc:
        raise ClaimsError(problems_from(exc, shown, ClaimsFile)) from None


def _read_toml(shown: str) -> dict[str, object]:
    def fail(message: str) -> ClaimsError:
        return ClaimsError([Problem(shown, "", message)])

    file = Path(shown)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        folder = file.parent
        if str(folder) not in ("", ".") and not folder.is_dir():
            raise fail(f"no such file (and no folder {folder})") from None
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a folder, not a claims file") from None
    except PermissionError:
        raise fail("cannot read it: permission denied") from None
    except OSError as exc:
        raise fail(f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(f"not valid TOML: not UTF-8 text (at line {line})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML: {exc}") from None
    if not data:
        raise fail(
            "the file is empty: a claims file needs at least a [target] table with a name, "
            "and the claims to check"
        )
    return data
