"""signoff's probe child: import a module or call `module:attr` in a fresh interpreter.

Run by path in the TARGET's interpreter, which may not have signoff installed, so this file is
a standalone script that needs only the standard library:

    python -u child.py SPEC.json

SPEC.json names the step to run and the files and pipe to report through (see `runner.py`).
While it runs, side effects (network, subprocess, thread, warning) are appended as JSON lines
to the events file, flushed at once so they survive a kill. faulthandler dumps every thread's
stack to the stacks file at the step's deadline. The result is written as JSON to the result
file. Progress lines go to the status pipe: "step NAME", "done NAME SECONDS", "end". After
"end" the child waits for the parent to close the release pipe, then exits with os._exit(0)
(the target's non-daemon threads and atexit handlers must not keep it alive).

Mode "steps" runs a list of steps instead (resolve, call, poll, barrier; see `runner.Step`),
keeping what each gives in named slots, and appends each step's result to the result file as
a JSON line. At a barrier it writes "wait NAME" to the status pipe and reads one line from the
release pipe: "go" goes on, anything else ends the steps; EOF (the parent is gone) exits at
once, and so does a barrier not answered within its timeout.

Mode "serve" (see `worker.py`) first loads the "preload" file, if any (standard library only, by
path, before the target is imported: it may patch what the target binds at import), then imports
the named callables of "refs", resolves the classes named in "classify" and loads a codec
(standard library only, by path; the preload itself when it is the same file), says "ready",
then serves requests read from the release pipe, one JSON line each: the codec turns the
request's "args" and the callable it names ("ref") into a call, which runs as "call N" under
faulthandler's deadline ("timeout"), and the reply goes back on the status pipe as "reply JSON"
after "done N SECONDS". EOF on the release pipe ends the process. "audit": false leaves out the
audit hook that records side effects (a preload with its own hook, a timed loop).
"""

from __future__ import annotations

import os
import sys

_SELF = os.path.abspath(__file__)
_HERE = os.path.dirname(os.path.realpath(__file__))
# signoff/engine/ must never shadow a target module (a target's `runner` or `child`, say).
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == _HERE:
    del sys.path[0]

import faulthandler  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

TYPE_CHECKING = False  # typing is not imported at run time: the target pays for its own
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, NoReturn

_SELF_FILES = frozenset({_SELF, os.path.realpath(__file__), __file__})
_WATCH = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "subprocess.Popen",
        "os.system",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "os.fork",
        "os.forkpty",
    }
)
_CO_COROUTINE = 0x80
_DETAIL_MAX = 300

_dumps = json.dumps
# Give json back to the target: its own `import json` then costs what it costs in production
# (its C accelerator too: kept, it took ~0.3 ms off a 2 ms `import json`, tox -e bench).
for _name in ("json", "json.decoder", "json.encoder", "json.scanner", "_json"):
    sys.modules.pop(_name, None)


class _State:
    """What the hooks need; set once from the spec."""

    def __init__(self) -> None:
        self.roots: tuple[str, ...] = ()
        self.events_fd = -1
        self.status_fd = -1
        self.step = "startup"
        self.t0 = time.perf_counter()
        self.pid = os.getpid()


_state = _State()


# --- attribution: which line of the target caused this --------------------------------------


def _load_file(name: str, path: str) -> Any:
    """A standard-library-only module of signoff's, loaded by path: never put on sys.path, so
    it cannot shadow a target module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the shared attribution helpers and limits (see _signoff_probe_places.py)
_places = _load_file("_signoff_probe_places", os.path.join(_HERE, "_signoff_probe_places.py"))
_places.own = _places.own | _SELF_FILES
_target_rel = _places.target_rel
_short = _places.short
_attribute = _places.attribute  # innermost target place, else innermost non-stdlib one
_frames = _places.frames
_tb_places = _places.tb_places
_type_name = _places.type_name  # "module:qualname"
_safe = _places.safe  # a str() or repr() of the target's, cut to a limit
_REPR_MAX: int = _places.REPR_MAX  # the limits every child report shares
_MESSAGE_MAX: int = _places.MESSAGE_MAX
_TRACEBACK_MAX: int = _places.TRACEBACK_MAX


# --- events -----------------------------------------------------------------------------------


def _write_event(record: dict[str, Any]) -> None:
    if _state.events_fd < 0:
        return
    # one write() on an O_APPEND descriptor per line: atomic, unbuffered, fork-safe
    os.write(_state.events_fd, (_dumps(record) + "\n").encode("utf-8", "backslashreplace"))


def _emit(kind: str, detail: str, where: str | None, at: float | None = None) -> None:
    if at is None:
        at = time.perf_counter() - _state.t0
    if len(detail) > _DETAIL_MAX:
        detail = detail[: _DETAIL_MAX - 3] + "..."
    _write_event(
        {"kind": kind, "detail": detail, "where": where or "?", "at": at, "step": _state.step}
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _host_port(host: object, port: object) -> str:
    text = _text(host)
    if ":" in text:
        text = f"[{text}]"
    return f"{text}:{_text(port)}"


def _address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return _host_port(address[0], address[1])
    text = _text(address)
    return "@" + text[1:] if text.startswith("\0") else text


def _in_subprocess_module(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") == "subprocess":
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCH:
        return
    try:  # noqa: SIM105 - no contextlib here: the hook runs on every audited event
        _on_audit(event, args, sys._getframe(1))
    except Exception:
        pass  # an audit hook must never break the code it watches


def _on_audit(event: str, args: tuple[Any, ...], frame: FrameType) -> None:
    if event == "socket.connect":
        kind, detail = "network", "connect " + _address(args[1])
    elif event == "socket.getaddrinfo":
        kind, detail = "network", "getaddrinfo " + _host_port(args[0], args[1])
    elif event == "subprocess.Popen":
        kind, detail = "subprocess", f"Popen {args[1]!r}"
    elif event == "os.system":
        kind, detail = "subprocess", f"system {_text(args[0])!r}"
    elif event == "os.posix_spawn":
        if _in_subprocess_module(frame):
            return  # subprocess.Popen already said it
        kind, detail = "subprocess", f"posix_spawn {args[1]!r}"
    elif event == "os.exec":
        kind, detail = "subprocess", f"exec {args[1]!r}"
    elif event == "os.spawn":
        kind, detail = "subprocess", f"spawn {args[2]!r}"
    else:
        kind, detail = "subprocess", event.split(".", 1)[1]
    _emit(kind, detail, _attribute(_frames(frame)))


# --- threads ------------------------------------------------------------------------------------

_original_start = threading.Thread.start


def _start(self: threading.Thread) -> None:
    try:
        origin = (_attribute(_frames(sys._getframe(1))), time.perf_counter() - _state.t0)
        self.__dict__["_signoff_origin"] = origin
    except Exception:
        pass
    _original_start(self)
    try:
        if os.getpid() == _state.pid:
            _write_event({"kind": "_thread", "ident": self.ident, "name": self.name})
    except Exception:
        pass


threading.Thread.start = _start  # type: ignore[method-assign]


def _native_threads() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except (OSError, ValueError):
        return set()


def _thread_snapshot() -> tuple[dict[int, threading.Thread], set[int]]:
    # holding the Thread objects keeps their ids from being reused by new threads
    return {id(t): t for t in threading.enumerate()}, _native_threads()


def _thread_function(thread: threading.Thread) -> tuple[str | None, str | None]:
    """The qualified name and target place of the function a thread runs."""
    func = getattr(thread, "_target", None)
    if func is None and type(thread).run is not threading.Thread.run:
        func = type(thread).run
    code = getattr(func, "__code__", None)
    if func is None or code is None:
        return None, None
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return name, _attribute([(code.co_filename, code.co_firstlineno)])


def _thread_events(before: tuple[dict[int, threading.Thread], set[int]]) -> None:
    known_native: set[int] = set()
    for thread in threading.enumerate():
        if thread.native_id is not None:
            known_native.add(thread.native_id)
        if id(thread) in before[0] or not thread.is_alive():
            continue
        func_name, func_where = _thread_function(thread)
        detail = f"thread {thread.name}"
        if func_name and func_name.split(".")[-1] not in thread.name:
            detail += f" ({func_name})"
        where, at = thread.__dict__.get("_signoff_origin", (None, None))
        _emit("thread", detail, where or func_where, at)
    unknown = _native_threads() - before[1] - known_native
    # faulthandler's watchdog lets go of the step a moment before its thread is gone
    give_up = time.perf_counter() + 0.2
    while unknown and time.perf_counter() < give_up:
        time.sleep(0.01)
        unknown &= _native_threads()
    for tid in sorted(unknown):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue  # ended meanwhile
        _emit("thread", f"thread {name} (native, tid {tid})", None)


# --- warnings -----------------------------------------------------------------------------------


def _recording_showwarning(original: Callable[..., Any]) -> Callable[..., None]:
    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        try:
            where = _target_rel(filename)
            where = f"{where}:{lineno}" if where is not None else None
            if where is None:
                where = _attribute(_frames(sys._getframe(1))) or f"{_short(filename)}:{lineno}"
            _emit("warning", f"{getattr(category, '__name__', category)}: {message}", where)
        except Exception:
            pass
        original(message, category, filename, lineno, file, line)

    return showwarning


# --- the measured step --------------------------------------------------------------------------


def _status(line: str) -> None:
    os.write(_state.status_fd, (line + "\n").encode())


def _step(
    name: str, timeout: float, stacks: Any, work: Callable[[], Any]
) -> tuple[bool, Any, float]:
    """Run `work` as step `name` under faulthandler's deadline; (ok, value or exception, secs)."""
    before = _thread_snapshot()
    faulthandler.dump_traceback_later(timeout, repeat=False, file=stacks, exit=False)
    _status(f"step {name}")
    ok, value = False, None
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _recording_showwarning(warnings.showwarning)
        _state.step = name
        _state.t0 = started = time.perf_counter()
        try:
            value = work()
            ok = True
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are results too
            value = exc
        seconds = time.perf_counter() - started
    faulthandler.cancel_dump_traceback_later()
    _status(f"done {name} {seconds!r}")
    try:
        _thread_events(before)
    except Exception as exc:  # a thread object of the target's that misbehaves
        os.write(2, f"signoff: thread events lost: {exc!r}\n".encode())
    return ok, value, seconds


def _resolve(module: str, attr: str) -> Any:
    # the import statement's path, not importlib.import_module: -X importtime sees only this one
    __import__(module)
    obj: Any = sys.modules[module]
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _is_coroutine(value: object) -> bool:
    cls = type(value)
    return cls.__name__ == "coroutine" and cls.__module__ == "builtins"


def _call(
    func: Callable[..., Any], args: list[Any] | None = None, kwargs: dict[str, Any] | None = None
) -> Any:
    result = func(*(args or ()), **(kwargs or {}))
    if _is_coroutine(result):
        import asyncio

        result = asyncio.run(result)
    return result


# --- the result ---------------------------------------------------------------------------------


def _mro(cls: type) -> list[str]:
    try:
        return [_type_name(c) for c in cls.__mro__]
    except Exception:
        return [_type_name(cls)]


def _cycle(exc: BaseException) -> list[str] | None:
    """The modules being imported when a partially initialized module was hit, and that one."""
    if not isinstance(exc, (ImportError, AttributeError)):
        return None
    text = _safe(lambda: str(exc), 2000)
    marker = "partially initialized module '"
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    partial = text[start : text.find("'", start)]
    chain = []
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>" and frame.f_code.co_filename not in _SELF_FILES:
            name = frame.f_globals.get("__name__")
            if isinstance(name, str):
                chain.append(name)
        tb = tb.tb_next
    return [*chain, partial]


def _traceback(exc: BaseException) -> str:
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _SELF_FILES:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return text if len(text) <= _TRACEBACK_MAX else "...\n" + text[-_TRACEBACK_MAX:]


def _result(step: str, ok: bool, value: Any, seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = {"step": step, "seconds": seconds}
    if ok:
        result.update(
            outcome="returned",
            result_type=_type_name(type(value)),
            result_mro=_mro(type(value)),
            result_repr=_safe(lambda: repr(value), _REPR_MAX),
        )
        return result
    exc: BaseException = value
    result.update(
        outcome="raised",
        exc_type=_type_name(type(exc)),
        exc_mro=_mro(type(exc)),
        exc_message=_safe(lambda: str(exc), _MESSAGE_MAX),
        exc_where=_attribute(_tb_places(exc.__traceback__)),
        traceback=_safe(lambda: _traceback(exc), _TRACEBACK_MAX + 10),
        cycle=_cycle(exc),
    )
    return result


_JSON_MAX = 256 * 1024


def _as_json(value: Any) -> dict[str, Any]:
    """{"result_json": the value as JSON text} (what JSON has no type for, as its str()), or
    {"result_json_error": why it cannot be}."""
    try:
        text = _dumps(value, default=str, ensure_ascii=False)
    except Exception as exc:  # keys JSON cannot have, a cycle, a str() that raises
        error = exc
        return {"result_json_error": _safe(lambda: f"{_type_name(type(error))}: {error}", 500)}
    if len(text) > _JSON_MAX:
        return {"result_json_error": f"its JSON is {len(text)} characters, over {_JSON_MAX}"}
    return {"result_json": text}


def _write_result(path: str, result: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(_dumps(result))
    os.replace(tmp, path)


def _finish(spec: dict[str, Any], result: dict[str, Any] | None) -> NoReturn:
    if result is not None:
        _write_result(spec["result"], result)
    _status("end")
    # wait for the parent to read what it needs (our children, say); EOF is the go-ahead
    try:
        os.read(spec["release_fd"], 1)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 - contextlib is the target's to import
                stream.flush()
            except Exception:
                pass
        os._exit(0)


# --- mode "steps": several steps in one process, with barriers the parent releases ----------

_ATTEMPTS_MAX = 10000


def _append_result(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(_dumps(record) + "\n")


def _barrier(name: str, timeout: float, fd: int) -> str:
    """Tell the parent we wait at `name`; its answer ("go", "stop"), or "timeout"."""
    import select

    _status(f"wait {name}")
    give_up = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = give_up - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return "timeout"
        chunk = os.read(fd, 64)
        if not chunk:  # the parent is gone: nobody will ever answer
            os._exit(0)
        data += chunk
    return data.split(b"\n", 1)[0].decode("ascii", "replace").strip()


def _poll_calls(
    func: Callable[[], Any], until_not: type, every: float, for_s: float
) -> tuple[list[list[Any]], bool, Any]:
    """Call `func` until it returns something that is not an `until_not`, for at most `for_s`
    seconds. Each attempt: [ended (s since the first began), seconds, outcome, type, is one]."""
    attempts: list[list[Any]] = []
    first = time.perf_counter()
    while True:
        began = time.perf_counter()
        ok, value = False, None
        try:
            value = _call(func)
            ok = True
        except Exception as exc:
            value = exc
        ended = time.perf_counter()
        hit = _is_instance(value, until_not)
        row = [
            ended - first,
            ended - began,
            "returned" if ok else "raised",
            _type_name(type(value)),
        ]
        if len(attempts) >= _ATTEMPTS_MAX:
            del attempts[-1]  # too many to keep: the last one is the one that counts
        attempts.append([*row, hit])
        left = for_s - (time.perf_counter() - first)
        if (ok and not hit) or left <= 0:
            return attempts, ok, value
        time.sleep(min(every, left))


def _steps_work(step: dict[str, Any], slots: dict[str, Any]) -> Callable[[], Any] | None:
    """What step `step` runs, or None when a slot it needs is empty (an earlier step failed)."""
    op = step["op"]
    if op == "resolve":
        module, _, attr = step["ref"].partition(":")

        def resolve() -> Any:
            obj = _resolve(module, attr)
            if step.get("is_class") and not isinstance(obj, type):
                raise TypeError(f"{step['ref']} is {_type_name(type(obj))}, not a class")
            return obj

        return resolve
    needed = [step["func"], *step.get("classify", ())]
    if op == "poll":
        needed.append(step["until_not"])
    if any(name not in slots for name in needed):
        return None
    func, attr = slots[step["func"]], step.get("attr") or ""
    if op == "call":
        code = getattr(func, "__code__", None)
        if code is not None and code.co_flags & _CO_COROUTINE:
            import asyncio  # noqa: F401 - imported before the clock starts, not charged to the call

        args, kwargs = list(step.get("args") or ()), dict(step.get("kwargs") or {})

        def call() -> Any:
            return _call(getattr(func, attr) if attr else func, args, kwargs)

        return call
    cls = slots[step["until_not"]]
    return lambda: _poll_calls(func, cls, float(step["every"]), float(step["for_s"]))


def _is_instance(value: object, cls: Any) -> bool:
    try:
        return isinstance(value, cls)
    except Exception:  # not a class after all (a resolve step without is_class)
        return False


def _run_steps(spec: dict[str, Any], stacks: Any) -> NoReturn:
    slots: dict[str, Any] = {}
    for step in spec["steps"]:
        name, op = step["name"], step["op"]
        if op == "barrier":
            answer = _barrier(name, float(step["timeout"]), spec["release_fd"])
            _append_result(spec["result"], {"step": name, "outcome": answer, "seconds": 0.0})
            if answer != "go":
                break
            continue
        work = _steps_work(step, slots)
        if work is None:
            break
        ok, value, seconds = _step(name, float(step["timeout"]), stacks, work)
        attempts = None
        if ok and op == "poll":
            attempts, ok, value = value
        result = _result(name, ok, value, seconds)
        if attempts is not None:
            result["attempts"] = attempts
        if op != "resolve":
            result["instance_of"] = {c: _is_instance(value, slots[c]) for c in step["classify"]}
        if ok and step.get("as_json"):
            result.update(_as_json(value))
        _append_result(spec["result"], result)
        if ok:
            slots[name] = value
    _finish(spec, None)


# --- mode "serve": one callable, called again and again, each call with its own deadline ------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _resolve_class(ref: str) -> Any:
    """A class named "package.module:Class", or a built-in one by its bare name."""
    module, sep, attr = ref.rpartition(":")
    if sep:
        obj = _resolve(module, attr)
    else:
        import builtins

        obj = getattr(builtins, ref)
    if not isinstance(obj, type):
        raise TypeError(f"{ref} is {_type_name(type(obj))}, not a class")
    return obj


def _read_request(fd: int, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        chunk = os.read(fd, 65536)
        if not chunk:
            os._exit(0)  # the parent is done with us, or gone
        buffer += chunk
    at = buffer.index(b"\n")
    line = bytes(buffer[:at])
    del buffer[: at + 1]
    return line


def _reply(line: dict[str, Any]) -> None:
    try:
        text = _dumps(line)
    except Exception as exc:  # a codec that hands back what JSON cannot hold
        text = _dumps(
            {
                "outcome": line.get("outcome"),
                "seconds": line.get("seconds"),
                "encode_error": _safe(exc.__repr__, _MESSAGE_MAX),
            }
        )
    _write_all(_state.status_fd, ("reply " + text + "\n").encode("utf-8", "backslashreplace"))


def _own_files(path: str) -> frozenset[str]:
    return frozenset({path, os.path.abspath(path), os.path.realpath(path)})


def _preload(spec: dict[str, Any]) -> Any:
    """The preload file, loaded before the target is imported (so that what it patches is what
    the target binds), its install(config, places) run; its files are signoff's, not the
    target's, in every attribution."""
    path = spec["preload"]
    _places.own = _places.own | _own_files(path)
    module = _load_file("_signoff_preload", path)
    install = getattr(module, "install", None)
    if install is not None:
        install(spec.get("preload_config"), _places)
    return module


def _import_refs(refs: dict[str, str], current: list[str]) -> dict[str, Any]:
    """Each named "module:attr" resolved, in order; `current` holds the one being resolved."""
    funcs = {}
    for name, ref in refs.items():
        current[:] = [ref]
        module, _, attr = ref.partition(":")
        funcs[name] = obj = _resolve(module, attr)
        if not callable(obj):
            raise TypeError(f"{ref} is {_type_name(type(obj))}, not a callable")
    return funcs


def _serve_setup(spec: dict[str, Any], stacks: Any) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Preload, import and setup steps: (callables by name, codec, classes); a step that fails
    ends the process with its result."""
    preload = None
    if spec.get("preload"):
        ok, value, seconds = _step(
            "preload", spec["import_timeout"], stacks, lambda: _preload(spec)
        )
        if not ok:
            _finish(spec, _result("preload", ok, value, seconds))
        preload = value
    current: list[str] = []
    ok, value, seconds = _step(
        "import", spec["import_timeout"], stacks, lambda: _import_refs(spec["refs"], current)
    )
    if not ok:
        _finish(
            spec, {**_result("import", ok, value, seconds), "ref": current[-1] if current else ""}
        )
    funcs = value

    def setup() -> tuple[dict[str, Any], Any]:
        found = {ref: _resolve_class(ref) for ref in spec.get("classify") or ()}
        if preload is not None and spec["codec"] == spec["preload"]:
            return found, preload  # one file: the codec sees what the preload set up
        return found, _load_file("_signoff_codec", spec["codec"])

    ok, value, seconds = _step("setup", spec["import_timeout"], stacks, setup)
    if not ok:
        _finish(spec, _result("setup", ok, value, seconds))
    classes, codec = value
    return funcs, codec, classes


def _serve(spec: dict[str, Any], stacks: Any) -> NoReturn:
    funcs, codec, classes = _serve_setup(spec, stacks)
    first = next(iter(funcs))
    observed = getattr(codec, "observed", None)
    _status("ready")
    buffer = bytearray()
    count = 0
    while True:
        request = json.loads(_read_request(spec["release_fd"], buffer))
        count += 1
        args = request.get("args")
        try:
            work = codec.prepare(funcs[request.get("ref") or first], args)
        except Exception as exc:
            _reply({**_result("prepare", False, exc, 0.0), "harness_error": True})
            continue
        if os.fstat(stacks.fileno()).st_size:  # a dump of a call that ended just in time
            stacks.seek(0)
            stacks.truncate()
        _state.step = "call"
        faulthandler.dump_traceback_later(
            float(request["timeout"]), repeat=False, file=stacks, exit=False
        )
        _status(f"call {count}")
        started = time.perf_counter()
        try:
            value = work()
            ok = True
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are results too
            value, ok = exc, False
        seconds = time.perf_counter() - started
        faulthandler.cancel_dump_traceback_later()
        _status(f"done {count} {seconds!r}")
        if ok:
            reply: dict[str, Any] = {
                "outcome": "returned",
                "seconds": seconds,
                "result_type": _type_name(type(value)),
            }
            try:
                reply["value"] = codec.encode(value, args)
            except Exception as exc:
                reply["encode_error"] = _safe(exc.__repr__, _MESSAGE_MAX)
        else:
            reply = _result("call", False, value, seconds)
            reply["instance_of"] = {ref: _is_instance(value, c) for ref, c in classes.items()}
        if observed is not None:  # what the codec saw during the call, whatever its end
            try:
                reply["observed"] = observed(args)
            except Exception as exc:
                reply["encode_error"] = _safe(exc.__repr__, _MESSAGE_MAX)
        value = work = None
        _reply(reply)


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as spec_file:
        spec: dict[str, Any] = json.load(spec_file)
    _state.status_fd = spec["status_fd"]
    os.set_inheritable(_state.status_fd, False)
    os.set_inheritable(spec["release_fd"], False)
    faulthandler.enable(file=sys.stderr, all_threads=True)

    roots = []
    for root in spec["pythonpath"]:
        for variant in (root, os.path.realpath(root)):
            prefix = variant.rstrip(os.sep) + os.sep
            if prefix not in roots:
                roots.append(prefix)
    _state.roots = _places.roots = tuple(roots)
    for root in reversed(spec["pythonpath"]):
        while root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)

    stacks = open(spec["stacks"], "w")  # noqa: SIM115 - faulthandler writes to it at the deadline
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    _state.events_fd = os.open(spec["events"], flags, 0o600)
    _write_event({"kind": "_thread", "ident": threading.main_thread().ident, "name": "MainThread"})
    if spec.get("audit", True):  # off for a preload with its own hook (its own sandbox, say)
        sys.addaudithook(_audit)

    if spec["mode"] == "steps":
        _run_steps(spec, stacks)
    if spec["mode"] == "serve":
        _serve(spec, stacks)

    module, attr = spec["module"], spec.get("attr") or ""
    importtime = bool(spec.get("importtime"))
    if importtime:
        os.write(2, b"signoff-probe: importtime start\n")
    ok, value, seconds = _step(
        "import", spec["import_timeout"], stacks, lambda: _resolve(module, attr)
    )
    if importtime:
        os.write(2, b"signoff-probe: importtime end\n")
    if not ok or spec["mode"] == "import":
        result = _result("import", ok, value, seconds)
        if ok:  # the module object itself says nothing: report the import, not a value
            result.update(result_type=None, result_mro=[], result_repr=None)
        _finish(spec, result)

    func = value
    code = getattr(func, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:
        import asyncio  # noqa: F401 - imported before the clock starts, not charged to the call
    ok, value, seconds = _step("call", spec["timeout"], stacks, lambda: _call(func))
    _finish(spec, _result("call", ok, value, seconds))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
