"""pydantic's validation errors, told in the claims file's own words.

Each error becomes a Problem(file, key, message): `key` is the TOML key path
(`timeouts[1].within`, `imports.budgets."core.tasks"`, 0-based indices), `message` says what was
expected and what was found. No pydantic type name or URL reaches the user, and the value of a
secret (any key named like secret, password, token) is never shown.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from signoff.claims.types import CUSTOM_ERROR, describe, format_key, is_secret_key
from signoff.errors import Problem

_KEY_MARK = "[key]"  # pydantic's loc marker for an invalid dict key


def problems_from(exc: ValidationError, file: str, root: type[BaseModel]) -> list[Problem]:
    """One Problem per error of `exc` (validating `root`), in order, without repeats."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        problem = _problem(error, file, root)
        if problem not in problems:
            problems.append(problem)
    return problems


def _problem(error: ErrorDetails, file: str, root: type[BaseModel]) -> Problem:
    loc = tuple(error["loc"])
    about_key = bool(loc) and loc[-1] == _KEY_MARK
    if about_key:
        loc = loc[:-1]
    message = _message(error, loc, root)
    if about_key:
        message = f"invalid key: {message}"
    return Problem(file, format_key(loc), message)


def _message(error: ErrorDetails, loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    found = error.get("input")
    if kind == CUSTOM_ERROR:
        return str(ctx.get("message", error["msg"]))
    if kind == "missing":
        return _missing(loc, root)
    if kind == "extra_forbidden":
        return _unknown_key(loc, root)
    expected = _expected(kind, ctx, error["msg"], loc, root, found)
    secret = any(isinstance(part, str) and is_secret_key(part) for part in loc)
    if secret:
        return f"{expected} (the value is not shown: it is a secret)"
    return f"{expected}; got {describe(found)}"


def _missing(loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    if _model_at(root, loc) is not None:
        return f"missing required table [{_header(loc)}]"
    return f'missing required key "{loc[-1]}"' if loc else "missing"


def _unknown_key(loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    key = str(loc[-1]) if loc else ""
    if loc == ("path",) and root.__name__ == "ClaimsFile":
        return 'unknown key "path" (the file\'s own path is not a setting)'
    model = _model_at(root, loc[:-1])
    known = _keys_of(model) if model is not None else []
    if model is not None and model.__name__ == "ClaimsFile":
        known = [k for k in known if k != "path"]
    close = _closest(key, known)
    if close:
        options = " or ".join(f'"{c}"' for c in close)
        return f'unknown key "{key}" (did you mean {options}?)'
    if known:
        return f'unknown key "{key}"; the keys here are: {", ".join(known)}'
    return f'unknown key "{key}"'


def _closest(key: str, known: list[str]) -> list[str]:
    """The known keys nearest to a typo (case aside), best first; several only when tied."""
    scored = sorted(
        ((difflib.SequenceMatcher(None, key.lower(), k.lower()).ratio(), k) for k in known),
        key=lambda pair: -pair[0],
    )
    if not scored or scored[0][0] < 0.6:
        return []
    best = scored[0][0]
    return [k for ratio, k in scored if ratio == best][:3]


def _expected(
    kind: str,
    ctx: dict[str, Any],
    msg: str,
    loc: tuple[str | int, ...],
    root: type[BaseModel],
    found: object,
) -> str:
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        text = str(error) if error is not None else re.sub(r"^(Value|Assertion) error, ", "", msg)
        return text if text.startswith("expected") else f"expected {text}"
    if kind == "string_type":
        return "expected a string"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        if isinstance(found, float):
            return "expected a whole number"
        return "expected an integer"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "expected a number"
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false"
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        item = _item_model(root, loc)
        if item is not None:
            return f"expected an array of tables ([[{_header(loc)}]])"
        return "expected an array"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        if _model_at(root, loc) is None or not loc:
            return "expected a table"
        if isinstance(loc[-1], int):
            return f"expected a table ([[{_header(loc)}]])"
        if get_origin(_type_at(root, loc[:-1])) is dict:
            return "expected a table"  # a value in a table of tables: written inline
        return f"expected a table ([{_header(loc)}])"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if len(options) == 1:
            return f'expected "{options[0]}"'
        if options:
            return "expected one of " + ", ".join(f'"{o}"' for o in options)
    if kind == "greater_than":
        return f"expected a number above {_num(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"expected {_num(ctx.get('ge'))} or more"
    if kind == "less_than":
        return f"expected a number below {_num(ctx.get('lt'))}"
    if kind == "less_than_equal":
        return f"expected {_num(ctx.get('le'))} or less"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s)"
    text = re.sub(r"^Input should be ", "", msg)
    return text if text.startswith("expected") else f"expected {text}"


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _header(loc: Sequence[str | int]) -> str:
    """A table's header as the file writes it: [load.flow] for load[0].flow."""
    return format_key([part for part in loc if isinstance(part, str)])


# -- which model sits at a loc (for key names, tables and arrays of tables) -------------------


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _type_at(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if _is_model(tp) and isinstance(part, str):
            field = next(
                (f for n, f in tp.model_fields.items() if (f.alias or n) == part),
                None,
            )
            if field is None:
                return None
            tp = field.annotation
        elif origin in (list, tuple) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
    return _unwrap(tp)


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    tp = _type_at(root, loc)
    return tp if _is_model(tp) else None


def _item_model(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    tp = _type_at(root, loc)
    if get_origin(tp) is list:
        item = _unwrap(get_args(tp)[0])
        return item if _is_model(item) else None
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]
