"""The webhook probe's preload and codec for the generic serving child (engine/child.py, mode
"serve", see engine/worker.py): it serves calls of the target's verify / sign / url validator.

Loaded by path into the TARGET's interpreter, which may not have signoff installed: standard
library only. The child loads it before it imports the target (`install`), so that the target's
own `from hmac import compare_digest` or `from datetime import datetime` bind the patched
objects, and uses it as the codec of every call (`prepare`, `encode`, `observed`). Secrets
travel only in the requests, through the child's pipe (never argv, the environment or a file).
install(config) patches:

- a shifted wall clock: time.time, time.time_ns, time.gmtime/localtime, datetime.now/utcnow/today
  and date.today read the real clock plus an offset each request may set ("now"), so that a
  published vector signed in 2021 can be verified "in 2021";
- a spy on hmac.compare_digest (and secrets.compare_digest, operator._compare_digest): during a
  request it records each call, where it came from, and whether an argument holds one of the
  request's "needles" (the signature, spelled the ways the probe knows);
- with "probes": HMAC digests (hmac.HMAC.digest/hexdigest, hmac.digest) come back as str/bytes
  subclasses that record any == or != against a signature-sized value, and keep doing so
  through .decode(), .encode(), .hex(), base64 encoding and concatenation; the signature header
  passed to verify is such a value too;
- with "sandbox": name lookups are answered from a table the configuration gives (nothing is
  ever looked up through DNS), and an audit hook refuses every connect or send (the child's own
  audit hook is left out: the parent says "audit": false).

A request's "op" is "verify", "sign" or "validate" (one call of the callable the request names),
or "timing" (verify timed on two classes of headers, dudect's layout). What an op saw during the
call (comparisons, lookups, blocked connects) comes back from `observed`, whether the call
returned or raised.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import gc
import hmac
import ipaddress
import operator
import random
import secrets
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, ModuleType
    from typing import Any

_RECORDS_MAX = 20
_SIGNATURE_MIN = 8  # an == against a shorter value is not a signature comparison


class _State:
    def __init__(self) -> None:
        self.offset = 0.0  # seconds added to the wall clock
        self.log: dict[str, list[dict[str, Any]]] | None = None  # while a request runs
        self.seen: dict[str, list[dict[str, Any]]] = {}  # the last request's log
        self.needles: tuple[bytes, ...] = ()
        self.probes = False  # "probes" in the config
        self.probing = False  # probe values are made: during requests, not the target's import
        self.dns: dict[str, list[str]] = {}


_state = _State()
_places: Any = None  # the child's attribution helpers and limits (_signoff_probe_places.py)


# --- where: the target line responsible -------------------------------------------------------


def _caller(frame: FrameType | None) -> str:
    """The innermost frame that is neither the standard library nor signoff's: the code that
    made the comparison (a library's own file, relative to site-packages, or the target's)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _places.is_stdlib(filename):
            rel = _places.target_rel(filename)
            return f"{rel if rel is not None else _places.short(filename)}:{frame.f_lineno or 0}"
        frame = frame.f_back
    return "?"


# --- the shifted clock -------------------------------------------------------------------------

_real_time = time.time
_real_time_ns = time.time_ns
_real_gmtime = time.gmtime
_real_localtime = time.localtime
_RealDatetime = _dt.datetime
_RealDate = _dt.date


def _now() -> float:
    return _real_time() + _state.offset


def _now_ns() -> int:
    return _real_time_ns() + int(_state.offset * 1e9)


def _gmtime(secs: float | None = None) -> time.struct_time:
    return _real_gmtime(_now() if secs is None else secs)


def _localtime(secs: float | None = None) -> time.struct_time:
    return _real_localtime(_now() if secs is None else secs)


class _DatetimeMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _RealDatetime)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _RealDatetime)


class _DateMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _RealDate)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _RealDate)


class _ShiftedDatetime(_RealDatetime, metaclass=_DatetimeMeta):
    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        return _RealDatetime.fromtimestamp(_now(), tz)

    @classmethod
    def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
        return _RealDatetime.fromtimestamp(_now(), _dt.timezone.utc).replace(tzinfo=None)  # noqa: UP017

    @classmethod
    def today(cls) -> _dt.datetime:  # type: ignore[override]
        return _RealDatetime.fromtimestamp(_now())


class _ShiftedDate(_RealDate, metaclass=_DateMeta):
    @classmethod
    def today(cls) -> _dt.date:  # type: ignore[override]
        return _RealDate.fromtimestamp(_now())


def _install_clock() -> None:
    time.time = _now
    time.time_ns = _now_ns
    time.gmtime = _gmtime  # type: ignore[assignment]
    time.localtime = _localtime  # type: ignore[assignment]
    _dt.datetime = _ShiftedDatetime  # type: ignore[misc]
    _dt.date = _ShiftedDate  # type: ignore[misc]


# --- the compare_digest spy, and probe values ------------------------------------------------

_real_compare = hmac.compare_digest


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def _has_needle(*values: object) -> bool:
    for value in values:
        data = _as_bytes(value)
        if data is not None and any(n in data for n in _state.needles):
            return True
    return False


def _record(kind: str, entry: dict[str, Any]) -> None:
    log = _state.log
    if log is not None and len(log[kind]) < _RECORDS_MAX:
        log[kind].append(entry)


def _spy_compare(a: Any, b: Any) -> bool:
    if _state.log is not None:
        _record(
            "compares",
            {
                "where": _caller(sys._getframe(1)),
                "signature": _has_needle(a, b),
                "types": [type(a).__name__, type(b).__name__],
            },
        )
    return _real_compare(a, b)


def _install_spy() -> None:
    hmac.compare_digest = _spy_compare
    secrets.compare_digest = _spy_compare
    if hasattr(operator, "_compare_digest"):
        operator._compare_digest = _spy_compare


def _record_eq(op: str, other: object, frame: FrameType | None) -> None:
    if _state.log is None or not _state.probing:
        return
    if isinstance(other, (str, bytes, bytearray)) and len(other) >= _SIGNATURE_MIN:
        _record("eqs", {"op": op, "where": _caller(frame)})


class _ProbeStr(str):
    """A str that records being compared with == or != against something signature-sized."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        _record_eq("==", other, sys._getframe(1))
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        _record_eq("!=", other, sys._getframe(1))
        return str.__ne__(self, other)

    __hash__ = str.__hash__

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _ProbeBytes(str.encode(self, encoding, errors))

    def __add__(self, other: str) -> str:
        result = str.__add__(self, other)
        return result if result is NotImplemented else _ProbeStr(result)

    def __radd__(self, other: object) -> str:
        if isinstance(other, str):
            return _ProbeStr(str.__add__(str(other), str(self)))
        return NotImplemented

    def lower(self) -> str:
        return _ProbeStr(str.lower(self))

    def strip(self, chars: str | None = None) -> str:
        return _ProbeStr(str.strip(self, chars))


class _ProbeBytes(bytes):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        _record_eq("==", other, sys._getframe(1))
        return bytes.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        _record_eq("!=", other, sys._getframe(1))
        return bytes.__ne__(self, other)

    __hash__ = bytes.__hash__

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return _ProbeStr(bytes.decode(self, encoding, errors))

    def hex(self, *args: Any) -> str:
        return _ProbeStr(bytes.hex(self, *args))

    def __add__(self, other: bytes) -> bytes:  # type: ignore[override]
        result = bytes.__add__(self, other)
        return result if result is NotImplemented else _ProbeBytes(result)

    def __radd__(self, other: object) -> bytes:
        if isinstance(other, bytes):
            return _ProbeBytes(bytes(other) + bytes(self))
        return NotImplemented


def _probe_result(func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if not _state.probing:
            return result
        if isinstance(result, str):
            return _ProbeStr(result)
        if isinstance(result, bytes):
            return _ProbeBytes(result)
        return result

    wrapper.__name__ = getattr(func, "__name__", "wrapper")
    wrapper.__doc__ = getattr(func, "__doc__", None)
    return wrapper


def _probe_passthrough(func: Callable[..., Any]) -> Callable[..., Any]:
    """Encodings of a probe value are probe values too."""

    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        result = func(value, *args, **kwargs)
        if _state.probing and isinstance(value, (_ProbeBytes, _ProbeStr)):
            if isinstance(result, bytes):
                return _ProbeBytes(result)
            if isinstance(result, str):
                return _ProbeStr(result)
        return result

    wrapper.__name__ = getattr(func, "__name__", "wrapper")
    wrapper.__doc__ = getattr(func, "__doc__", None)
    return wrapper


def _install_probes() -> None:
    hmac.HMAC.digest = _probe_result(hmac.HMAC.digest)  # type: ignore[method-assign]
    hmac.HMAC.hexdigest = _probe_result(hmac.HMAC.hexdigest)  # type: ignore[method-assign]
    hmac.digest = _probe_result(hmac.digest)
    for name in ("b64encode", "standard_b64encode", "urlsafe_b64encode"):
        setattr(base64, name, _probe_passthrough(getattr(base64, name)))
    for name in ("hexlify", "b2a_hex"):
        setattr(binascii, name, _probe_passthrough(getattr(binascii, name)))


# --- the network sandbox (url validator) -------------------------------------------------------

_real_getaddrinfo = socket.getaddrinfo
_BLOCKED = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"})
_LOOKUPS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"})


class _Lookup:
    numeric = False  # set while the sandbox itself asks for a numeric address


def _table_addresses(host: str) -> list[str] | None:
    name = host.lower().rstrip(".")
    if name in _state.dns:
        return _state.dns[name]
    for pattern, addresses in _state.dns.items():
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return addresses
    return None


def _fake_getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    _record("lookups", {"host": text[:100]})
    addresses = _table_addresses(text)
    if addresses is None:
        _Lookup.numeric = True
        try:
            return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError, ValueError):
            raise socket.gaierror(
                socket.EAI_NONAME, "Name or service not known (signoff's probe looks up nothing)"
            ) from None
        finally:
            _Lookup.numeric = False
    number = port if isinstance(port, int) else int(port) if port and str(port).isdigit() else 0
    results: list[tuple[Any, ...]] = []
    for address in addresses:
        ip = ipaddress.ip_address(address)
        fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        if family not in (0, socket.AF_UNSPEC, fam):
            continue
        sockaddr: tuple[Any, ...] = (
            (address, number) if ip.version == 4 else (address, number, 0, 0)
        )
        results.append((fam, type or socket.SOCK_STREAM, proto or 6, "", sockaddr))
    if not results:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return results


def _fake_gethostbyname(host: str) -> str:
    return str(_fake_getaddrinfo(host, None, socket.AF_INET)[0][4][0])


def _fake_gethostbyname_ex(host: str) -> tuple[str, list[str], list[str]]:
    found = _fake_getaddrinfo(host, None, socket.AF_INET)
    return host, [], [str(r[4][0]) for r in found]


def _sandbox_audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _BLOCKED:
        address = args[1] if len(args) > 1 else "?"
        _record("blocked", {"event": event, "address": repr(address)[:100]})
        raise PermissionError(f"signoff's url-validator probe lets nothing connect ({event})")
    if event in _LOOKUPS and not _Lookup.numeric:
        _record("blocked", {"event": event, "address": repr(args[0] if args else "?")[:100]})
        raise PermissionError(f"signoff's url-validator probe looks up nothing ({event})")


def _install_sandbox(dns: dict[str, list[str]]) -> None:
    _state.dns = {k.lower(): list(v) for k, v in dns.items()}
    socket.getaddrinfo = _fake_getaddrinfo
    socket.gethostbyname = _fake_gethostbyname
    socket.gethostbyname_ex = _fake_gethostbyname_ex
    sys.addaudithook(_sandbox_audit)


# --- the preload ---------------------------------------------------------------------------


def install(config: dict[str, Any], places: ModuleType) -> None:
    """Run by the child before it imports the target."""
    global _places
    _places = places
    _install_clock()
    _install_spy()
    if config.get("probes"):
        _install_probes()
    if config.get("sandbox") is not None:
        _install_sandbox(config["sandbox"])
    _state.probes = bool(config.get("probes"))


# --- the codec: requests ---------------------------------------------------------------------


def _rejected(result: object) -> bool:
    """Accepted = returns anything but False (numpy's False too) without raising."""
    if result is False:
        return True
    return type(result).__name__ == "bool_" and not result


def _call(func: Callable[..., Any], *args: Any) -> Any:
    result = func(*args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return result


def _headers(request: dict[str, Any]) -> dict[str, str]:
    headers = dict(request["headers"])
    probe = request.get("probe_header")
    if probe and _state.probing:
        for key, value in headers.items():
            if key.lower() == probe.lower():
                headers[key] = _ProbeStr(value)
    return headers


def _set_clock(request: dict[str, Any]) -> None:
    now = request.get("now")
    _state.offset = 0.0 if now is None else float(now) - _real_time()


def _logged(kinds: tuple[str, ...], work: Callable[[], Any]) -> Callable[[], Any]:
    """`work`, recording `kinds` of what it does while it runs; its clock set back after."""

    def logged() -> Any:
        _state.log = {kind: [] for kind in kinds}
        try:
            return work()
        finally:
            _state.seen, _state.log = _state.log, None
            _state.offset = 0.0

    return logged


def _verify(verify: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    _state.needles = tuple(bytes.fromhex(n) for n in request.get("needles", ()))
    args = (request["secret"], base64.b64decode(request["payload"]), _headers(request))

    def call() -> Any:
        _set_clock(request)
        return _call(verify, *args)

    return _logged(("compares", "eqs"), call)


def _sign(sign: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    payload = base64.b64decode(request["payload"])
    args = (request["secret"], payload, request["msg_id"], request["timestamp"])
    return lambda: _call(sign, *args)


def _validate(validate: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    url = request["url"]
    return _logged(("lookups", "blocked"), lambda: _call(validate, url))


def _timing(verify: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    """Time verify on two classes of headers, interleaved at random (dudect's layout): the
    measurements in order, and each one's class as a string of "0" and "1"."""
    secret = request["secret"]
    payload = base64.b64decode(request["payload"])
    variants = [dict(h) for h in request["headers"]]
    warmup, count = int(request["warmup"]), int(request["count"])
    rng = random.Random(request["seed"])
    classes = [rng.getrandbits(1) for _ in range(warmup + count)]
    max_seconds = float(request["max_seconds"])

    def timed() -> dict[str, Any]:
        times = [0] * len(classes)
        budget = time.monotonic() + max_seconds
        clock = time.perf_counter_ns
        _set_clock(request)
        probing, _state.probing = _state.probing, False
        done = 0
        gc.collect()
        gc.disable()
        try:
            for i, which in enumerate(classes):
                # fresh strings each call, so that no class keeps an object at a luckier address
                headers = {k: v[:1] + v[1:] for k, v in variants[which].items()}
                start = clock()
                try:  # noqa: SIM105 - a context manager would add to what is timed
                    verify(secret, payload, headers)
                except Exception:
                    pass
                times[i] = clock() - start
                done = i + 1
                if not i & 255 and time.monotonic() > budget:
                    break
        finally:
            gc.enable()
            _state.offset = 0.0
            _state.probing = probing
        kept = slice(min(warmup, done), done)
        return {
            "times": times[kept],
            "classes": "".join("1" if c else "0" for c in classes[kept]),
        }

    return timed


_OPS = {"verify": _verify, "sign": _sign, "validate": _validate, "timing": _timing}


def prepare(func: Callable[..., Any], request: dict[str, Any]) -> Callable[[], Any]:
    """The call `request` asks for, of `func` (the callable the request names)."""
    _state.seen = {}
    _state.probing = _state.probes
    op = _OPS.get(str(request.get("op")))
    if op is None:
        raise ValueError(f"unknown op {request.get('op')!r}")
    return op(func, request)


def encode(value: Any, request: dict[str, Any]) -> dict[str, Any]:
    """What the probe reads of a returned value: accepted, its repr, sign's headers."""
    if request.get("op") == "timing":
        return dict(value)
    answer: dict[str, Any] = {
        "accepted": not _rejected(value),
        "result": _places.safe(lambda: repr(value), _places.REPR_MAX),
    }
    if request.get("op") == "sign":
        try:
            answer["headers"] = {str(k): str(v) for k, v in dict(value).items()}
        except Exception:
            answer["headers"] = None
    return answer


def observed(request: dict[str, Any]) -> dict[str, Any]:
    """What the last call recorded (compares, eqs, lookups, blocked), returned or raised."""
    return dict(_state.seen)
