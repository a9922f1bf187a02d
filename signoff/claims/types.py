"""The value types of a claims file: durations, sizes, callables, faults, request lines, ...

Each validator takes the value as TOML gave it and raises ValueError("expected ...") naming the
expectation; the loader adds where it was and what was found (never for a secret). Validators
never import anything the names refer to: that happens in the target's own interpreter.
"""

from __future__ import annotations

import datetime as _dt
import json
import keyword
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from signoff.faults.model import FAULT_HINT, Fault, parse_fault
from signoff.units import DURATION_HINT, parse_duration, parse_size

ServiceName = Literal["redis", "postgres"]
SERVICES: tuple[ServiceName, ...] = ("redis", "postgres")
SideEffect = Literal["network", "thread", "subprocess", "warning"]
WebhookScheme = Literal["standard", "stripe", "github", "hmac-sha256"]
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

#: Loc of a value inside the claims file, as pydantic spells it: ("timeouts", 1, "within").
Loc = tuple[str | int, ...]

CUSTOM_ERROR = "signoff"  # error type whose message is complete (no "; got ..." added)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_IDENT}(?:\.{_IDENT})*"
_CALLABLE_RE = re.compile(rf"^{_DOTTED}:{_DOTTED}$")
_MODULE_RE = re.compile(rf"^{_DOTTED}$")
_IDENT_RE = re.compile(rf"^{_IDENT}$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SECRET_KEY_RE = re.compile(
    r"secret|passw(or)?d|token|api[_-]?key|credential|authorization|private[_-]?key", re.I
)
REDACTED = "**********"

CALLABLE_HINT = 'a callable like "package.module:attr" or "package.module:attr.method"'
MODULE_HINT = 'a module name like "core" or "core.tasks"'
EXCEPTION_HINT = (
    'an exception class like "package.module:ErrorClass" or a built-in one like "ValueError"'
)


# -- secrets ---------------------------------------------------------------------------------


def is_secret_key(name: str) -> bool:
    """Whether a key's value must never be shown: names with secret, password, token, ..."""
    return bool(_SECRET_KEY_RE.search(name))


def redact(value: Any) -> Any:
    """A copy of `value` (tables and arrays, recursively) with every secret-looking key's value
    replaced by asterisks. For reports and logs that show environments, headers or bodies."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


# -- raising several located errors from one validator ---------------------------------------


def custom_error(message: str) -> PydanticCustomError:
    """An error whose message is shown as it is: the loader adds nothing to it."""
    return PydanticCustomError(CUSTOM_ERROR, "{message}", {"message": message})


def located_errors(
    title: str, problems: Sequence[tuple[Loc, str]], value: object
) -> ValidationError:
    """A ValidationError with one complete message per (loc, message), loc relative to the
    value being validated (pydantic prefixes the caller's own location)."""
    return ValidationError.from_exception_data(
        title,
        [InitErrorDetails(type=custom_error(m), loc=loc, input=value) for loc, m in problems],
    )


# -- durations and sizes ---------------------------------------------------------------------


def _positive_duration(value: object) -> float:
    negative = isinstance(value, str) and value.strip().startswith("-")
    if negative or (isinstance(value, int | float) and not isinstance(value, bool) and value < 0):
        raise ValueError(f"expected a duration above zero ({DURATION_HINT})")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero ({DURATION_HINT})")
    return seconds


def _size(value: object) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        raise ValueError("expected a size of zero or more")
    return parse_size(value)


def _positive_size(value: object) -> int:
    size = _size(value)
    if size <= 0:
        raise ValueError('expected a size above zero, like "512MB"')
    return size


#: Seconds, from "250us", "5s", "2m", "365d" or a number of seconds; zero allowed.
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: Seconds, above zero: for deadlines, periods and budgets, where zero means nothing.
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
#: Bytes, from "512MB", "64KiB" or a number of bytes; zero allowed.
Size = Annotated[int, BeforeValidator(_size)]
PositiveSize = Annotated[int, BeforeValidator(_positive_size)]


# -- names -----------------------------------------------------------------------------------


def _string(value: object, hint: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {hint}")
    return value


def _callable(value: object) -> str:
    text = _string(value, CALLABLE_HINT)
    if _CALLABLE_RE.match(text) and not _has_keyword(text):
        return text
    raise ValueError(f"expected {CALLABLE_HINT}{_callable_advice(text)}")


def _callable_advice(text: str) -> str:
    """What is wrong with a callable's spelling, in a few words, or ""."""
    if not text.strip():
        return " (it is empty)"
    if text != text.strip() or " " in text or "\t" in text:
        return " (no spaces)"
    if text.count(":") > 1:
        return ' (one ":" between the module and the attribute)'
    if ":" not in text:
        module, dot, attr = text.rpartition(".")
        if dot and _MODULE_RE.match(text):
            return f' (a ":" between the module and the attribute: "{module}:{attr}")'
        return ' (a ":" between the module and the attribute)'
    module, _, attr = text.partition(":")
    if not module:
        return " (the module is missing before the colon)"
    if not attr:
        return " (the attribute is missing after the colon)"
    if text.endswith(".") or ".." in text or text.startswith(".") or ":." in text or ".:" in text:
        return " (a name is missing around a dot)"
    if "(" in text or ")" in text:
        return " (a name, not a call: no parentheses)"
    if _has_keyword(text):
        return " (a Python keyword cannot be a name)"
    return ""


def _has_keyword(text: str) -> bool:
    return any(keyword.iskeyword(part) for part in re.split(r"[.:]", text))


def _exception(value: object) -> str:
    text = _string(value, EXCEPTION_HINT)
    if _IDENT_RE.match(text) and not keyword.iskeyword(text):
        return text  # a built-in exception
    if _CALLABLE_RE.match(text) and not _has_keyword(text):
        return text
    raise ValueError(f"expected {EXCEPTION_HINT}{_callable_advice(text)}")


def _module(value: object) -> str:
    text = _string(value, MODULE_HINT)
    if _MODULE_RE.match(text) and not _has_keyword(text):
        return text
    raise ValueError(f"expected {MODULE_HINT}")


def _identifier(value: object) -> str:
    text = _string(value, "a method name like transcribe_file")
    if _IDENT_RE.match(text) and not keyword.iskeyword(text):
        return text
    raise ValueError("expected a method name like transcribe_file")


def _name(value: object) -> str:
    text = _string(value, "a name (a string)")
    if not text.strip():
        raise ValueError("expected a name: it is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("expected a name on one line, without control characters")
    return text


def _nonempty(value: object) -> str:
    text = _string(value, "a string")
    if not text.strip():
        raise ValueError("expected a non-empty string")
    return text


def _command_line(value: object) -> str:
    text = _nonempty(value)
    try:
        shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"expected a command line a shell would split ({exc})") from None
    return text


def _env_name(value: object) -> str:
    text = _string(value, "an environment variable name")
    if not text or "=" in text or "\0" in text:
        raise ValueError('expected an environment variable name (not empty, no "=")')
    return text


def _env_value(value: object) -> str:
    text = _string(value, 'a string (write numbers in quotes, like "8000")')
    if "\0" in text:
        raise ValueError("expected a string without NUL characters")
    return text


def _header_name(value: object) -> str:
    text = _string(value, "an HTTP header name")
    if not _HEADER_NAME_RE.match(text):
        raise ValueError("expected an HTTP header name like Origin or X-Request-Id")
    return text


def _header_value(value: object) -> str:
    text = _string(value, "an HTTP header value (a string)")
    if "\r" in text or "\n" in text:
        raise ValueError("expected an HTTP header value on one line")
    return text


def _url_path(value: object) -> str:
    text = _string(value, 'a path starting with "/", like "/health"')
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise ValueError('expected a path starting with "/", like "/health", without spaces')
    return text


def _request_line(value: object) -> str:
    hint = (
        f'a request like "GET /health": a method ({", ".join(HTTP_METHODS)}), one space, '
        'and a path starting with "/"'
    )
    text = _string(value, hint)
    method, sep, path = text.partition(" ")
    if not sep:
        raise ValueError(f"expected {hint}")
    if method.upper() in HTTP_METHODS and method != method.upper():
        raise ValueError(f'expected {hint} (write the method in capitals: "{method.upper()}")')
    if method not in HTTP_METHODS:
        raise ValueError(f'expected {hint} ("{method}" is not a method)')
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError(f"expected {hint}")
    return text


def _fault(value: object) -> Fault:
    if isinstance(value, Fault):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected {FAULT_HINT}")
    return parse_fault(value)


def _status_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError("expected an HTTP status code from 100 to 599")
    return value


def _statuses(value: object) -> tuple[int, ...]:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        if not value:
            raise ValueError("expected an HTTP status code or a non-empty array of them")
        problems: list[tuple[Loc, str]] = []
        for i, item in enumerate(value):
            try:
                _status_code(item)
            except ValueError as exc:
                problems.append(((i,), f"{exc}; got {describe(item)}"))
        if problems:
            raise located_errors("status", problems, value)
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an HTTP status code from 100 to 599, or an array of them")
    return (_status_code(value),)


def _json_ready(value: object) -> object:
    """TOML values that JSON can carry: everything but dates and times."""
    if isinstance(value, _dt.date | _dt.time):
        raise ValueError("expected values JSON can carry (a date or time is not one: quote it)")
    if isinstance(value, Mapping):
        for item in value.values():
            _json_ready(item)
    elif isinstance(value, list):
        for item in value:
            _json_ready(item)
    return value


def _json_table(value: object) -> object:
    if not isinstance(value, Mapping):
        raise ValueError('expected a table, like { status = "ok" }')
    return _json_ready(value)


_DEPENDENCY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SQLSTATE_RE = re.compile(r"^[0-9A-Z]{5}$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _fault_target(value: object) -> str:
    hint = 'a service ("redis", "postgres") or a dependency of [target.dependencies]'
    text = _string(value, hint)
    if not _DEPENDENCY_RE.match(text):
        raise ValueError(f"expected {hint}: lower case letters, digits and _, like edge_tts")
    return text


def _sqlstate(value: object) -> str:
    hint = 'a SQLSTATE: five digits or capital letters, like "42501" or "42P17"'
    text = _string(value, hint)
    if not _SQLSTATE_RE.match(text):
        raise ValueError(f"expected {hint}")
    return text


def _loopback_url(value: object) -> str:
    hint = 'a loopback address with a port, like "http://127.0.0.1:8300" or "127.0.0.1:8300"'
    text = _string(value, hint)
    host, port = split_host_port(text)
    if host is None or port is None:
        raise ValueError(f"expected {hint}")
    if host not in _LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(
            f"expected {hint}: {host} is not a loopback address (signoff sends no traffic "
            "anywhere else)"
        )
    return text


def split_host_port(text: str) -> tuple[str | None, int | None]:
    """("127.0.0.1", 8300) from "http://127.0.0.1:8300/x" or "127.0.0.1:8300"; Nones if not."""
    rest = text.partition("://")[2] if "://" in text else text
    rest = rest.split("/", 1)[0].rpartition("@")[2]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        return None, None
    return host.strip("[]") if host.startswith("[") else host, int(port)


def _ready_check(value: object) -> str:
    hint = 'how to tell it is up: "tcp" (it accepts connections) or a request like "GET /health"'
    text = _string(value, hint)
    if text == "tcp":
        return text
    try:
        return _request_line(text)
    except ValueError:
        raise ValueError(f"expected {hint}") from None


def _address_template(value: object) -> str:
    hint = 'how the address is spelled, with {host} and {port}, like "http://{host}:{port}"'
    text = _string(value, hint)
    if "{host}" not in text or "{port}" not in text:
        raise ValueError(f"expected {hint}")
    return text


def _fraction(value: object) -> float:
    hint = "a fraction above 0 and at most 1, like 0.85 (85%)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {hint}")
    if not 0 < value <= 1:
        raise ValueError(f"expected {hint}")
    return float(value)


def _cron_oracle(value: object) -> str:
    if value != "croniter":
        raise ValueError('expected "croniter" (the only oracle signoff knows)')
    return "croniter"


CallableRef = Annotated[str, BeforeValidator(_callable)]
"""A callable's name, "package.module:attr[.method]", kept as a string, never imported here."""
ExceptionRef = Annotated[str, BeforeValidator(_exception)]
"""An exception class: "package.module:Class", or a bare built-in name ("ValueError")."""
ModuleName = Annotated[str, BeforeValidator(_module)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
ClaimName = Annotated[str, BeforeValidator(_name)]
NonEmptyStr = Annotated[str, BeforeValidator(_nonempty)]
CommandLine = Annotated[str, BeforeValidator(_command_line)]
EnvName = Annotated[str, BeforeValidator(_env_name)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
Env = dict[EnvName, EnvValue]
HeaderName = Annotated[str, BeforeValidator(_header_name)]
HeaderValue = Annotated[str, BeforeValidator(_header_value)]
UrlPath = Annotated[str, BeforeValidator(_url_path)]
RequestLine = Annotated[str, BeforeValidator(_request_line)]
"""A request as "METHOD /path", e.g. "POST /reports/pdf"."""
FaultSpec = Annotated[Fault, PlainValidator(_fault), PlainSerializer(str, return_type=str)]
Statuses = Annotated[tuple[int, ...], BeforeValidator(_statuses)]
JsonTable = Annotated[dict[str, Any], BeforeValidator(_json_table)]
JsonValue = Annotated[Any, BeforeValidator(_json_ready)]
CronOracle = Annotated[Literal["croniter"], BeforeValidator(_cron_oracle)]
FaultTarget = Annotated[str, BeforeValidator(_fault_target)]
"""A service ("redis", "postgres") or a dependency's name, where a fault goes."""
Sqlstate = Annotated[str, BeforeValidator(_sqlstate)]
LoopbackUrl = Annotated[str, BeforeValidator(_loopback_url)]
ReadyCheck = Annotated[str, BeforeValidator(_ready_check)]
AddressTemplate = Annotated[str, BeforeValidator(_address_template)]
Fraction = Annotated[float, BeforeValidator(_fraction)]


def split_request(line: str) -> tuple[str, str]:
    """("POST", "/reports/pdf") from "POST /reports/pdf"."""
    method, _, path = line.partition(" ")
    return method, path


# -- paths -----------------------------------------------------------------------------------


def resolve_path(value: object, base_dir: Path | None, what: str = "a path") -> Path:
    """An absolute path: "~" expanded, relative paths against `base_dir` (the claims file's
    folder; the current folder when validating without a context). Not required to exist."""
    if isinstance(value, Path):
        text = str(value)
    elif isinstance(value, str) and value.strip() and "\0" not in value:
        text = value
    else:
        raise ValueError(f"expected {what}")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return Path(os.path.normpath(path))


def base_dir_of(context: object) -> Path | None:
    if isinstance(context, Mapping):
        base = context.get("base_dir")
        if isinstance(base, str | os.PathLike):
            return Path(base)
    return None


# -- keys and values as the user wrote them --------------------------------------------------

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def format_key(loc: Sequence[str | int]) -> str:
    """A loc in TOML's words: timeouts[1].within, imports.budgets."core.tasks" (0-based)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        shown = part if _BARE_KEY_RE.match(part) else json.dumps(part, ensure_ascii=False)
        out += f".{shown}" if out else shown
    return out


# -- showing a found value -------------------------------------------------------------------


def describe(value: object) -> str:
    """A found value in TOML's words: "fast" (quoted), 5, true, an array, a table, a date."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an empty array" if not value else "an array"
    if isinstance(value, _dt.datetime):
        return "a date-time"
    if isinstance(value, _dt.date):
        return "a date"
    if isinstance(value, _dt.time):
        return "a time"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"
