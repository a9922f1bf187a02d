"""The served target's connect log: written inside the target's server process, read by signoff.

Standard library only: `serve_app.py` loads this file by path in the TARGET's interpreter (it
is never put on sys.path, so it cannot shadow a target module); signoff imports it as
`signoff._signoff_connects` to read what was written. One line per event, appended with one
write(2) on an O_APPEND descriptor (whole lines even with many threads or forked workers):

    HOST PORT        a connect attempt to HOST:PORT, recorded before the connect is made
    # blind NAME     NAME was imported: connects made through it cannot be seen

Who is seen: every connect made through Python's sockets (an audit hook on "socket.connect":
redis-py, asyncio's default loop, httpx, pg8000, asyncpg on asyncio, ...), and every connection
attempt of psycopg 3, whose libpq connects in C (its per-attempt `_connect_gen` is wrapped).
Not seen: psycopg2 (libpq called from C throughout) and uvloop (libuv connects in C); importing
either writes a "blind" line, so signoff knows an empty window proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: the target pays for its own
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any

BLIND = "# blind "
BLIND_MODULES = ("psycopg2", "uvloop")
PSYCOPG_DEFAULT_PORT = 5432

_fd = -1


def _write(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # signoff's business, never the target's
        os.write(_fd, (line + "\n").encode("utf-8", "replace"))


def record(host: str, port: int) -> None:
    """One connect attempt to host:port."""
    _write(f"{host} {int(port)}")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    try:
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            host, port = address[0], address[1]
            if isinstance(host, str) and isinstance(port, int):
                record(host, port)
    except Exception:
        pass


def _psycopg_attempt(module: ModuleType, conninfo: str) -> None:
    """Record the TCP address of one psycopg 3 connection attempt (a socket path is not one)."""
    try:
        params = module.conninfo.conninfo_to_dict(conninfo)
        host = params.get("hostaddr") or params.get("host") or ""
        port = int(str(params.get("port") or PSYCOPG_DEFAULT_PORT).split(",")[0])
    except Exception:
        return
    for one in str(host).split(","):
        if one and not one.startswith("/"):
            record(one, port)


def patch_psycopg(module: ModuleType) -> bool:
    """Wrap psycopg 3's BaseConnection._connect_gen (called once per connection attempt, sync
    and async). False when this psycopg has no such method (then its connects are unseen)."""
    base: Any = getattr(module, "BaseConnection", None)
    original = getattr(base, "__dict__", {}).get("_connect_gen")
    if base is None or not isinstance(original, classmethod):
        return False
    func = original.__func__

    def _connect_gen(cls: Any, conninfo: str = "", *args: Any, **kwargs: Any) -> Any:
        _psycopg_attempt(module, conninfo)
        return func(cls, conninfo, *args, **kwargs)

    base._connect_gen = classmethod(_connect_gen)
    return True


class _Loader:
    """A module's own loader, then `after(module)` once it has run."""

    def __init__(self, loader: Any, after: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with contextlib.suppress(Exception):
            self._after(module)

    def __getattr__(self, name: str) -> Any:  # resources, get_source, ...
        return getattr(self._loader, name)


class _Watcher:
    """A meta path finder: once psycopg is imported, patches it; once a blind module is, says so
    (a module that is not installed is not imported: uvicorn tries uvloop, say)."""

    def __init__(self) -> None:
        self._busy = False

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        after = _AFTER.get(fullname)
        if after is None or self._busy:
            return None
        self._busy = True  # the other finders, once, without this one
        try:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy = False
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, after)
        return spec


def _after_psycopg(module: ModuleType) -> None:
    if not patch_psycopg(module):
        _write(BLIND + "psycopg")


def _after_blind(module: ModuleType) -> None:
    _write(BLIND + module.__name__)


_AFTER: dict[str, Callable[[ModuleType], None]] = {
    "psycopg": _after_psycopg,
    **{name: _after_blind for name in BLIND_MODULES},
}


def install(path: str) -> None:
    """Start logging this process's connects to `path` (created if missing)."""
    global _fd
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.addaudithook(_audit)
    for name in BLIND_MODULES:
        if name in sys.modules:
            _write(BLIND + name)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        _after_psycopg(psycopg)
    sys.meta_path.insert(0, _Watcher())


def parse(text: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The attempts and the blind modules in `text` (whole lines from the log)."""
    attempts: list[tuple[str, int]] = []
    blind: list[str] = []
    for line in text.splitlines():
        if line.startswith(BLIND):
            name = line[len(BLIND) :].strip()
            if name and name not in blind:
                blind.append(name)
            continue
        host, _, port = line.rpartition(" ")
        if host and port.isdigit():
            attempts.append((host, int(port)))
    return attempts, blind
