"""signoff's app launcher: serve a target's ASGI or WSGI app on a socket signoff already bound.

Run by path in the TARGET's interpreter, which may not have signoff installed, so this file is
a standalone script that needs only the standard library (uvicorn when the target has it):

    python -u serve_app.py MODULE:ATTR FD [CONNECT_LOG]

FD is a TCP socket bound to 127.0.0.1 and listening, inherited from signoff (so the port is
never raced for). MODULE:ATTR names the app; an attribute that is a plain function taking no
arguments is an app factory and is called once.

ASGI or WSGI: a coroutine function (or an object whose `__call__` is one) is ASGI; otherwise
a callable taking two positional arguments (environ, start_response) is WSGI; anything else is
left to uvicorn's own detection (ASGI 2 or 3). ASGI apps are served by uvicorn. WSGI apps are
served by uvicorn's WSGI interface while the installed uvicorn still has it (its deprecation
warning is silenced: the choice is signoff's, not the target's), else by the standard library's
wsgiref server with a thread per request. Without uvicorn, an ASGI app cannot be served: the
launcher says so and exits with status 2.

CONNECT_LOG (optional): a file this process appends a line to for every connect it makes
(before the app is imported, so the app's own connects are all seen), so signoff can tell
whether a request tried to reach a service whose connects the fault proxy cannot see (a refused
or blackholed connect never reaches it). "HOST PORT" lines come from an audit hook on
`socket.connect` (every client built on Python's sockets: redis-py, asyncio, httpx, ...) and
from a wrapper around psycopg 3's per-attempt connect (libpq connects in C, unseen by the hook).
"# blind NAME" lines name what was imported whose connects cannot be seen (psycopg2's libpq,
uvloop's event loop).

The first line on stderr says what was chosen: "signoff-serve: asgi app core.web:app via
uvicorn 0.30.1 on 127.0.0.1:41234".
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
# signoff/ must never shadow a target module (a target's `server` or `context`, say).
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == _HERE:
    del sys.path[0]

import functools  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import socket  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

MARKER = "signoff-serve: "
GRACEFUL_SHUTDOWN_S = 2


def _say(text: str) -> None:
    sys.stderr.write(MARKER + text + "\n")
    sys.stderr.flush()


def load_app(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if inspect.isfunction(obj) and not _is_async(obj) and _required_positional(obj) == 0:
        obj = obj()  # an app factory
    return obj


def _is_async(fn: Any) -> bool:
    while hasattr(fn, "func") and not inspect.isfunction(fn):  # functools.partial
        fn = fn.func
    return inspect.iscoroutinefunction(fn)


def _required_positional(fn: Any) -> int | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in sig.parameters.values() if p.kind in kinds]
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return len(params) if params else None
    return len([p for p in params if p.default is inspect.Parameter.empty])


def interface_of(app: Any) -> str:
    """ "asgi" or "wsgi" (see the module's docstring)."""
    if inspect.isclass(app):
        return "asgi"  # ASGI 2 style: a class instantiated per connection
    if not callable(app):
        return "asgi"  # uvicorn will say what is wrong with it
    direct = inspect.isfunction(app) or inspect.ismethod(app) or isinstance(app, functools.partial)
    call = app if direct else app.__call__  # an object's bound __call__: `self` is not counted
    if _is_async(call):
        return "asgi"
    return "wsgi" if _required_positional(call) == 2 else "asgi"


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        return None
    return uvicorn


def serve_uvicorn(uvicorn: Any, app: Any, interface: str, sock: socket.socket) -> None:
    kind = "wsgi" if interface == "wsgi" else "auto"
    config = uvicorn.Config(
        app,
        interface=kind,
        log_level="info",
        access_log=False,
        lifespan="off" if interface == "wsgi" else "auto",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # no protocol pings of uvicorn's own: a [[websocket]] heartbeat must be the app's, and
        # an idle client must be closed by the app, not by uvicorn's ping timeout
        ws_ping_interval=None,
        ws_ping_timeout=None,
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve_wsgiref(app: Any, sock: socket.socket) -> None:
    wsgiref_server(app, sock).serve_forever(poll_interval=0.2)


def wsgiref_server(app: Any, sock: socket.socket) -> Any:
    """The standard library's WSGI server, a thread per request, on the listening `sock`."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # no access log: a load run would fill the disk

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(sock.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    host, port = sock.getsockname()[:2]
    server.server_name, server.server_port = host, port
    server.setup_environ()
    server.set_app(app)
    return server


def log_connects(path: str) -> None:
    """Install the connect log (see _signoff_connects.py), loaded by path: it must not shadow
    a target module, nor need signoff installed in the target's environment."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_signoff_connects", os.path.join(_HERE, "_signoff_connects.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install(path)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        _say("usage: serve_app.py MODULE:ATTR FD [CONNECT_LOG]")
        return 2
    ref, fd = argv[0], int(argv[1])
    if len(argv) == 3:
        log_connects(argv[2])
    sock = socket.socket(fileno=fd)  # family and type read from the socket itself
    host, port = sock.getsockname()[:2]
    app = load_app(ref)
    interface = interface_of(app)
    uvicorn = _uvicorn()
    if interface == "wsgi":
        wsgi_ok = uvicorn is not None and _uvicorn_has_wsgi(uvicorn)
        if wsgi_ok:
            _say(
                f"wsgi app {ref} via uvicorn {uvicorn.__version__} (its WSGI interface) "
                f"on {host}:{port}"
            )
            warnings.filterwarnings("ignore", message=".*WSGI.*deprecated", category=Warning)
            serve_uvicorn(uvicorn, app, interface, sock)
        else:
            _say(f"wsgi app {ref} via wsgiref (threaded) on {host}:{port}")
            serve_wsgiref(app, sock)
        return 0
    if uvicorn is None:
        _say(
            f"cannot serve the asgi app {ref}: uvicorn is not installed for {sys.executable}; "
            "install it in the target's environment, or give [target.server].command"
        )
        return 2
    _say(f"asgi app {ref} via uvicorn {uvicorn.__version__} on {host}:{port}")
    serve_uvicorn(uvicorn, app, interface, sock)
    return 0


def _uvicorn_has_wsgi(uvicorn: Any) -> bool:
    try:
        from uvicorn.config import INTERFACES
    except ImportError:
        return False
    return "wsgi" in INTERFACES


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
