"""signoff's webhook probe child: serves calls of the target's verify / sign / url validator.

Run by path in the TARGET's interpreter, which may not have signoff installed, so this file is a
standalone script that needs only the standard library:

    python -u child.py REQUEST_FD ANSWER_FD STACKS_FILE

It reads JSON lines from REQUEST_FD and writes one JSON line per request to ANSWER_FD. Secrets
travel only through that pipe (never argv, the environment or a file). The first line is the
configuration; the child patches what the probe needs BEFORE it imports the target, so that the
target's own `from hmac import compare_digest` or `from datetime import datetime` bind the
patched objects:

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
  ever looked up through DNS), and an audit hook refuses every connect or send.

Each request runs under faulthandler.dump_traceback_later(timeout): if it hangs, every thread's
stack is in STACKS_FILE and the parent kills the child.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
# signoff/kinds/webhooks/ must never shadow a target module.
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == _HERE:
    del sys.path[0]

import asyncio  # noqa: E402
import base64  # noqa: E402
import binascii  # noqa: E402
import datetime as _dt  # noqa: E402
import faulthandler  # noqa: E402
import gc  # noqa: E402
import hmac  # noqa: E402
import importlib  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import operator  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

_SELF_FILES = frozenset({os.path.abspath(__file__), os.path.realpath(__file__), __file__})
_RECORDS_MAX = 20
_SIGNATURE_MIN = 8  # an == against a shorter value is not a signature comparison


class _State:
    def __init__(self) -> None:
        self.roots: tuple[str, ...] = ()
        self.offset = 0.0  # seconds added to the wall clock
        self.log: dict[str, list[dict[str, Any]]] | None = None  # while a request runs
        self.needles: tuple[bytes, ...] = ()
        self.probing = False
        self.dns: dict[str, list[str]] = {}
        self.stacks: Any = None
        self.refs: dict[str, Any] = {}


_state = _State()


# --- where: the target line responsible -------------------------------------------------------


def _load_places() -> Any:
    """The shared attribution helpers, loaded by path (see _signoff_probe_places.py)."""
    import importlib.util

    path = os.path.join(
        os.path.dirname(os.path.dirname(_HERE)), "engine", "_signoff_probe_places.py"
    )
    spec = importlib.util.spec_from_file_location("_signoff_probe_places", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_places = _load_places()
_places.own = _places.own | _SELF_FILES
_MESSAGE_MAX: int = _places.MESSAGE_MAX  # the limits both children share
_REPR_MAX: int = _places.REPR_MAX
_TRACEBACK_MAX: int = _places.TRACEBACK_MAX


def _caller(frame: FrameType | None) -> str:
    """The innermost frame that is neither the standard library nor this file: the code that
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


# --- requests --------------------------------------------------------------------------------


def _qualname(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


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


def _outcome(func: Callable[..., Any], *args: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = _call(func, *args)
    except Exception as exc:
        return {
            "outcome": "raised",
            "accepted": False,
            "seconds": time.perf_counter() - started,
            "exc_type": _qualname(exc),
            "exc_message": str(exc)[:_MESSAGE_MAX],
            "where": _places.attribute(_places.tb_places(exc.__traceback__)),
        }
    seconds = time.perf_counter() - started
    try:
        text = repr(result)[:_REPR_MAX]
    except Exception:
        text = "<unrepresentable>"
    return {
        "outcome": "returned",
        "accepted": not _rejected(result),
        "seconds": seconds,
        "result_type": _qualname(result),
        "result": text,
        "value": result,
    }


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


def _verify(refs: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    _state.needles = tuple(bytes.fromhex(n) for n in request.get("needles", ()))
    payload = base64.b64decode(request["payload"])
    headers = _headers(request)
    _state.log = {"compares": [], "eqs": []}
    _set_clock(request)
    try:
        answer = _outcome(refs["verify"], request["secret"], payload, headers)
    finally:
        log, _state.log = _state.log, None
        _state.offset = 0.0
    answer.pop("value", None)
    answer.update(log)
    return answer


def _sign(refs: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    payload = base64.b64decode(request["payload"])
    args = (request["secret"], payload, request["msg_id"], request["timestamp"])
    answer = _outcome(refs["sign"], *args)
    value = answer.pop("value", None)
    if answer["outcome"] == "returned":
        try:
            answer["headers"] = {str(k): str(v) for k, v in dict(value).items()}
        except Exception:
            answer["headers"] = None
    return answer


def _validate(refs: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    _state.log = {"lookups": [], "blocked": []}
    try:
        answer = _outcome(refs["validate"], request["url"])
    finally:
        log, _state.log = _state.log, None
    answer.pop("value", None)
    answer.update(log)
    return answer


def _timing(refs: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Time verify on two classes of headers, interleaved at random (dudect's layout): the
    measurements in order, and each one's class as a string of "0" and "1"."""
    verify = refs["verify"]
    secret = request["secret"]
    payload = base64.b64decode(request["payload"])
    variants = [dict(h) for h in request["headers"]]
    warmup, count = int(request["warmup"]), int(request["count"])
    rng = random.Random(request["seed"])
    classes = [rng.getrandbits(1) for _ in range(warmup + count)]
    times = [0] * len(classes)
    budget = time.monotonic() + float(request["max_seconds"])
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


_HANDLERS = {"verify": _verify, "sign": _sign, "validate": _validate, "timing": _timing}


def _write(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, default=str) + "\n").encode("utf-8", "backslashreplace")
    while data:
        written = os.write(fd, data)
        data = data[written:]


class _Lines:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        record = json.loads(line)
        return record if isinstance(record, dict) else None


def _arm(timeout: float) -> None:
    faulthandler.dump_traceback_later(timeout, repeat=False, file=_state.stacks, exit=False)


def _setup(config: dict[str, Any]) -> dict[str, Any]:
    for path in reversed(config.get("pythonpath", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    _state.roots = _places.roots = tuple(os.path.join(p, "") for p in config.get("pythonpath", []))
    _install_clock()
    _install_spy()
    if config.get("probes"):
        _install_probes()
    if config.get("sandbox") is not None:
        _install_sandbox(config["sandbox"])
    refs: dict[str, Any] = {}
    _arm(float(config["import_timeout"]))
    try:
        for name, ref in config["refs"].items():
            try:
                refs[name] = _resolve(ref)
            except BaseException as exc:
                return {
                    "ready": False,
                    "name": name,
                    "ref": ref,
                    "exc_type": _qualname(exc),
                    "exc_message": str(exc)[:_MESSAGE_MAX],
                    "traceback": "".join(
                        traceback.format_exception(type(exc), exc, exc.__traceback__)
                    )[-_TRACEBACK_MAX:],
                }
            if not callable(refs[name]):
                return {
                    "ready": False,
                    "name": name,
                    "ref": ref,
                    "exc_type": "builtins:TypeError",
                    "exc_message": f"{ref} is a {_qualname(refs[name])}, not a callable",
                }
    finally:
        faulthandler.cancel_dump_traceback_later()
    _state.refs = refs
    return {"ready": True}


def main() -> None:
    request_fd, answer_fd = int(sys.argv[1]), int(sys.argv[2])
    _state.stacks = open(sys.argv[3], "w")  # noqa: SIM115 - open for the child's whole life
    lines = _Lines(request_fd)
    config = lines.next()
    if config is None:
        os._exit(0)
    ready = _setup(config)
    _write(answer_fd, ready)
    if not ready["ready"]:
        os._exit(0)
    refs = _state.refs
    _state.probing = bool(config.get("probes"))
    while True:
        request = lines.next()
        if request is None:
            break
        handler = _HANDLERS.get(str(request.get("op")))
        if handler is None:
            _write(answer_fd, {"error": f"unknown op {request.get('op')!r}"})
            continue
        _arm(float(request.get("timeout", 5.0)))
        try:
            answer = handler(refs, request)
        except Exception as exc:  # the probe's own mistake, reported, not hidden
            answer = {"error": f"{_qualname(exc)}: {exc}"[:_MESSAGE_MAX]}
        finally:
            faulthandler.cancel_dump_traceback_later()
        _write(answer_fd, answer)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the target's threads and atexit handlers must not keep the child alive


if __name__ == "__main__":
    main()
