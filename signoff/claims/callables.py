"""Every name of target code a claims file gives: callables (`call`, `expect`, `verify`, `sign`,
`url_validator`, `[target.server].app`, ...) and exception classes (`raises`, `invalid`), found
from the model's types (CallableRef, ExceptionRef) wherever they sit, so a field added to the
model is found without a list here. `then` (a method name, not a reference) is the exception:
it is looked up on the class `expect` names, when there is one."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from signoff.claims.model import ClaimsFile, DegradationClaim
from signoff.claims.types import CallableRef, ExceptionRef, Loc, format_key

RefKind = Literal["callable", "exception", "method"]

# the validators that make a str a CallableRef or an ExceptionRef
_MARKS: dict[RefKind, tuple[Any, ...]] = {
    "callable": getattr(CallableRef, "__metadata__", ()),
    "exception": getattr(ExceptionRef, "__metadata__", ()),
}


@dataclass(frozen=True)
class NamedRef:
    """One name of target code: where the file gives it (`timeouts[2].call`), the reference to
    import ("module:attr[.attr]"; a built-in exception as "builtins:ValueError"), and what it
    must be: a class for "exception", anything for "callable" and "method"."""

    key: str
    ref: str
    kind: RefKind
    written: str  # as the file writes it: "ValueError", "transcribe_file"


def named_refs(claims: ClaimsFile) -> list[NamedRef]:
    """Every name of target code in the file, in the file's order of keys."""
    return list(_model(claims, ()))


def _model(model: BaseModel, loc: Loc) -> Iterator[NamedRef]:
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        yield from _value(getattr(model, name), field.rebuild_annotation(), (*loc, key))
    if isinstance(model, DegradationClaim) and model.then is not None and model.expect:
        ref = f"{model.expect}.{model.then}"
        yield NamedRef(format_key((*loc, "then")), ref, "method", model.then)


def _value(value: Any, annotation: Any, loc: Loc) -> Iterator[NamedRef]:
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from _model(value, loc)
        return
    tp = _without_none(annotation)
    kind = _ref_kind(tp)
    if kind is not None and isinstance(value, str):
        ref = value if ":" in value else f"builtins:{value}"
        yield NamedRef(format_key(loc), ref, kind, value)
        return
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, tuple) and args and isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _value(item, args[0], (*loc, i))
    elif origin is dict and len(args) == 2 and isinstance(value, Mapping):
        for name, item in value.items():
            yield from _value(item, args[1], (*loc, str(name)))


def _without_none(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _ref_kind(tp: Any) -> RefKind | None:
    if get_origin(tp) is not Annotated:
        return None
    metadata = tuple(tp.__metadata__)
    for kind, marks in _MARKS.items():
        if any(mark in metadata for mark in marks):
            return kind
    return None
