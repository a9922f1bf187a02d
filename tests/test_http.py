"""[[http]] claims and the served target: the JSON subset rule, ASGI/WSGI detection, and real
runs of `signoff run` against a Flask app, a plain ASGI app, a server command, an app that
cannot start and one that never gets ready, with a background process."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from signoff import _signoff_connects, serve_app
from signoff.claims.model import HttpClaim
from signoff.faults.model import Fault, parse_fault
from signoff.kinds.http.check import (
    Answer,
    _judge_met,
    describe_fault,
    json_mismatches,
    while_words,
)
from signoff.serve_app import interface_of
from signoff.server import ServerError
from signoff.server_met import FaultWatch, Met
from signoff.verdict import Verdict
from tests.runs import ROOT, claims, signoff

HTTP_TARGET = Path(__file__).resolve().parent / "data" / "http_target"


# -- the rules, in process -------------------------------------------------------------------


def test_json_subset_ignores_extra_keys_and_recurses() -> None:
    actual = {"status": "degraded", "redis": "down", "deps": {"redis": "down", "pg": "ok"}}
    assert json_mismatches(actual, {"status": "degraded"}) == []
    assert json_mismatches(actual, {"deps": {"redis": "down"}}) == []
    assert json_mismatches(actual, {"status": "healthy"}) == [
        'status: expected "healthy", got "degraded"'
    ]
    assert json_mismatches(actual, {"deps": {"cache": "ok"}}) == ["deps.cache: missing"]
    assert json_mismatches(actual, {"redis": {"up": False}}) == [
        'redis: expected an object, got "down"'
    ]
    assert json_mismatches(["a"], {"status": "ok"}) == ['the body: expected an object, got ["a"]']


def test_json_values_keep_their_type_and_arrays_are_whole() -> None:
    assert json_mismatches({"ok": 1}, {"ok": True}) == ["ok: expected true, got 1"]
    assert json_mismatches({"ok": True}, {"ok": 1}) == ["ok: expected 1, got true"]
    assert json_mismatches({"n": 2.0}, {"n": 2}) == []
    assert json_mismatches({"ids": [1, 2, 3]}, {"ids": [1, 2]}) == [
        "ids: expected [1, 2], got [1, 2, 3]"
    ]
    assert json_mismatches({"ids": [{"a": 1, "b": 2}]}, {"ids": [{"a": 1}]}) == []


def test_fault_words() -> None:
    assert describe_fault("redis", Fault("kill")) == "redis killed"
    assert describe_fault("postgres", Fault("hang")) == "postgres hung"
    assert describe_fault("redis", Fault("latency", 2.0)) == "redis answering 2 s late"
    assert describe_fault("redis", Fault("slow", 64.0)) == "redis answering at 64 B/s"


def test_while_words() -> None:
    assert while_words(Fault("hang")) == "hung"
    assert while_words(Fault("kill")) == "was killed"
    assert while_words(parse_fault("latency:2s")) == "answered 2 s late"


def test_what_met_the_fault_in_words_and_figures() -> None:
    assert Met("hang", met=3).summary() == "3 connections met the hang"
    assert Met("reset", met=1).summary() == "1 connection met the reset"
    assert Met("kill", attempts=2).summary() == "2 connect attempts refused"
    assert Met("blackhole", attempts=1).summary() == "1 connect attempt blackholed"
    assert Met("hang").summary() == "" and not Met("hang").exercised
    assert Met("hang", met=2, background_met=5).measured() == {
        "connections_met": 2,
        "background_met": 5,
    }
    assert Met("refuse", attempts=1).measured() == {"connections_met": 1, "connect_attempts": 1}


def _faulted_claim(kind: str) -> HttpClaim:
    return HttpClaim.model_validate(
        {
            "name": "health says degraded",
            "request": "GET /health",
            "fault": {"service": "redis", "kind": kind},
            "status": 503,
        }
    )


def _judged(status: str) -> Verdict:
    verdict = Verdict("http:x", "http", status)  # type: ignore[arg-type]
    verdict.measured = {"status": 503}
    verdict.evidence = "GET /health answered 503 {} in 3 ms (redis killed)"
    return verdict


_NEVER_MET = (
    "GET /health never reached redis while it was killed: the fault was not exercised (no "
    "connection of the server met it at the proxy and no connect attempt to the proxy was "
    "seen)"
)


def test_a_fault_never_met_turns_holds_into_an_error() -> None:
    verdict = _judged("holds")
    _judge_met(verdict, _faulted_claim("kill"), Met("kill"), Answer(status=503))
    assert verdict.status == "error"
    assert verdict.evidence == (
        f"{_NEVER_MET}\nthe answer, not judged: GET /health answered 503 {{}} in 3 ms "
        "(redis killed)"
    )
    assert verdict.measured == {"status": 503, "connections_met": 0, "connect_attempts": 0}


def test_a_failing_answer_stays_failing_when_the_fault_was_never_met() -> None:
    verdict = _judged("fails")
    _judge_met(verdict, _faulted_claim("kill"), Met("kill"), Answer(status=503))
    assert verdict.status == "fails"
    assert verdict.evidence == (
        f"GET /health answered 503 {{}} in 3 ms (redis killed)\nnote: {_NEVER_MET}"
    )


def test_a_fault_met_keeps_the_verdict_with_its_figures() -> None:
    verdict = _judged("holds")
    _judge_met(verdict, _faulted_claim("hang"), Met("hang", met=2), Answer(status=503))
    assert verdict.status == "holds" and verdict.measured["connections_met"] == 2


def test_an_attempt_signoff_could_not_see_is_an_error_saying_so() -> None:
    verdict = _judged("holds")
    met = Met("kill", background_met=3, unseen="the server imported uvloop, whose ...")
    _judge_met(verdict, _faulted_claim("kill"), met, Answer(status=503))
    assert verdict.status == "error"
    assert verdict.evidence.startswith(
        "could not tell whether GET /health reached redis while it was killed: no connection of "
        "the server met it at the proxy and no connect attempt to the proxy was seen, but the "
        "server imported uvloop, whose ...; the background processes met it on 3 connections, "
        "which does not count"
    ), verdict.evidence


class _StandInProxy:
    def __init__(self, port: int) -> None:
        self.address = ("127.0.0.1", port)
        self.met = 7  # what earlier claims left: only the delta counts


class _StandInServer:
    """What FaultWatch reads of a TargetServer: proxies, the connect log, the pids."""

    def __init__(self, tmp_path: Path, *, app: bool = True) -> None:
        self.proxies = {"redis": _StandInProxy(41000)}
        self.background_proxies: dict[str, _StandInProxy] = {}
        self.background: list[object] = []
        self.connects_path = tmp_path / "server-connects.log" if app else None
        self.lines: list[str] = []

    def connects_mark(self) -> int:
        return len(self.lines)

    def connects_since(self, mark: int) -> list[tuple[str, int]]:
        return _signoff_connects.parse("\n".join(self.lines[mark:]))[0]

    def connects_blind(self) -> list[str]:
        return _signoff_connects.parse("\n".join(self.lines))[1]

    def pids(self) -> list[int]:
        return []


def _watch(server: _StandInServer, kind: str, open_before: int = 0) -> FaultWatch:
    return FaultWatch(server, "redis", Fault(kind), open_before)  # type: ignore[arg-type]


def _empty_window(server: _StandInServer, kind: str, open_before: int = 0) -> Met:
    watch = _watch(server, kind, open_before)
    watch.start()
    return watch.stop()


def test_fault_watch_counts_the_attempts_to_the_proxy_in_its_window(tmp_path: Path) -> None:
    server = _StandInServer(tmp_path)
    server.lines = ["127.0.0.1 41000"]  # before the window: not counted
    watch = _watch(server, "kill")
    watch.start()
    server.lines += ["127.0.0.1 41000", "localhost 41000", "127.0.0.1 5432", "10.0.0.1 41000"]
    server.proxies["redis"].met += 1  # an open connection that carried bytes
    met = watch.stop()
    assert (met.met, met.attempts, met.exercised) == (1, 2, True)
    assert met.summary() == "1 connection met the kill and 2 connect attempts refused"


def test_fault_watch_says_why_an_empty_window_may_prove_nothing(tmp_path: Path) -> None:
    command = _empty_window(_StandInServer(tmp_path, app=False), "refuse")
    assert command.unseen is not None and "the claims file's own command" in command.unseen
    blind_server = _StandInServer(tmp_path)
    blind_server.lines = ["# blind uvloop"]
    blind = _empty_window(blind_server, "kill")
    assert blind.unseen is not None and "imported uvloop, whose connects" in blind.unseen
    pooled = _empty_window(_StandInServer(tmp_path), "reset", open_before=2)
    assert pooled.unseen == (
        "the server held 2 connections to redis open when the reset closed them, and a "
        "client's use of a connection already closed under it is not seen"
    )
    # a hang stalls open connections (their bytes are seen): an empty window proves it
    assert _empty_window(_StandInServer(tmp_path), "hang", open_before=2).unseen is None
    assert _empty_window(_StandInServer(tmp_path), "kill").unseen is None


def _closed_port() -> socket.socket:
    """A loopback port bound but not listening: connects to it are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


CONNECTING = """
import asyncio, socket, sys
sys.path.insert(0, sys.argv[3])
from signoff import serve_app
serve_app.log_connects(sys.argv[1])
port = int(sys.argv[2])
try:
    socket.create_connection(("127.0.0.1", port), timeout=2)
except OSError:
    pass
async def main():
    try:
        await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        pass
asyncio.run(main())
import psycopg  # imported after the log is on, as an app's lazy import
try:
    psycopg.connect(f"postgresql://u@127.0.0.1:{port}/db", connect_timeout=2)
except psycopg.Error:
    pass
try:
    import psycopg2  # not installed here: nothing is blind for it
except ImportError:
    pass
import uvloop  # a stand-in, on sys.path: its import is noted
"""


def test_the_connect_log_sees_sockets_asyncio_and_psycopg_and_names_blind_imports(
    tmp_path: Path,
) -> None:
    (tmp_path / "uvloop.py").write_text("")
    log = tmp_path / "connects.log"
    with _closed_port() as closed:
        port = closed.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-c", CONNECTING, str(log), str(port), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )
    assert run.returncode == 0, run.stderr
    attempts, blind = _signoff_connects.parse(log.read_text())
    # socket.create_connection, asyncio, and psycopg's libpq (in C: seen by the wrapper)
    assert attempts == [("127.0.0.1", port)] * 3, log.read_text()
    has_psycopg2 = importlib.util.find_spec("psycopg2") is not None
    assert blind == (["psycopg2"] if has_psycopg2 else []) + ["uvloop"]


def test_asgi_or_wsgi() -> None:
    from flask import Flask

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        return None

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        return []

    def configured_wsgi(environ: Any, start_response: Any, *, config: Any) -> list[bytes]:
        return []

    class AsgiObject:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            return None

    class WsgiObject:
        def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
            return []

    assert interface_of(Flask(__name__)) == "wsgi"
    assert interface_of(wsgi_app) == "wsgi"
    assert interface_of(WsgiObject()) == "wsgi"
    assert interface_of(asgi_app) == "asgi"
    assert interface_of(AsgiObject()) == "asgi"
    assert interface_of(functools.partial(configured_wsgi, config={})) == "wsgi"
    assert interface_of(functools.partial(asgi_app)) == "asgi"


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_wsgiref_fallback_serves_a_wsgi_app() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"path": "' + environ["PATH_INFO"].encode() + b'"}']

    server = serve_app.wsgiref_server(app, _listening())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.socket.getsockname()
        answer = httpx.get(f"http://{host}:{port}/health", timeout=5, trust_env=False)
        assert answer.status_code == 503 and answer.json() == {"path": "/health"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not thread.is_alive()


async def asgi_demo(scope: Any, receive: Any, send: Any) -> None:
    return None


def test_an_asgi_app_without_uvicorn_is_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(serve_app, "_uvicorn", lambda: None)
    with _listening() as sock:
        code = serve_app.main(["tests.test_http:asgi_demo", str(os.dup(sock.fileno()))])
    assert code == 2
    assert "uvicorn is not installed" in capsys.readouterr().err


def test_server_error_evidence_leads_with_the_last_line() -> None:
    tail = "Traceback (most recent call last):\n  File 'x.py', line 3\nRuntimeError: no key\n"
    text = ServerError("the server exited with status 1", tail).evidence()
    assert text.startswith("the server exited with status 1; its last line: RuntimeError: no key")
    assert "File 'x.py', line 3" in text


# -- real runs -------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _server_pids(report: Path) -> list[int]:
    found = re.findall(r"Started server process \[(\d+)\]", (report / "server.log").read_text())
    assert found, (report / "server.log").read_text()
    return [int(pid) for pid in found]


def _run(name: str, report: Path, **env: str) -> tuple[str, dict[str, dict[str, Any]]]:
    run = signoff(
        "run",
        str(HTTP_TARGET / f"{name}.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(report),
        timeout=120,
        env=env,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr}", claims(report)


@pytest.mark.slow
def test_flask_app_with_faults_and_a_background_process(tmp_path: Path) -> None:
    worker_file = tmp_path / "worker"
    output, found = _run("flask", tmp_path / "report", HTTP_TARGET_WORKER_FILE=str(worker_file))
    assert output.startswith("exit 1"), output
    status = {cid: c["status"] for cid, c in found.items()}
    lying = "http:lying health says degraded when redis is killed"
    slow = "http:health answers within 200 ms when redis hangs"
    crash = "http:crash takes the server down"
    assert [status.pop(c) for c in (lying, slow, crash)] == ["fails"] * 3, output
    assert set(status.values()) == {"holds"} and len(status) == 7, found

    evidence = found[lying]["evidence"]
    assert evidence.startswith("GET /always-healthy answered 200 {"), evidence
    assert (
        'expected status 503 and json {"status": "degraded"} '
        "(redis killed; 1 connect attempt refused)"
    ) in evidence
    assert 'status: expected "degraded", got "healthy"' in evidence
    assert found[lying]["measured"]["status"] == 200

    # the app waits 0.5 s for the hung redis: the request is cut at 200 ms + 20 ms tolerance
    assert found[slow]["evidence"] == (
        "GET /health did not answer within 220 ms (redis hung; 1 connection met the hang)"
    )
    assert 0.2 <= found[slow]["measured"]["waited_s"] < 0.45

    # a server that dies during a claim is started again for the next one
    assert found[crash]["evidence"].startswith("GET /crash got no answer (")
    assert "note: the server exited with status 3 during this claim" in found[crash]["evidence"]
    restarted = found["http:healthy after the server was restarted"]
    assert restarted["status"] == "holds"
    assert (
        "note: the server exited with status 3 during an earlier claim; restarted"
        in (restarted["evidence"])
    )

    killed = found["http:degraded when redis is killed"]
    assert killed["measured"]["status"] == 503, killed
    # one refused connect, seen in the server's connect log (the proxy cannot see it)
    assert killed["evidence"].endswith("(redis killed; 1 connect attempt refused)"), killed
    assert killed["measured"]["connect_attempts"] == 1
    assert killed["measured"]["background_met"] == 0
    hung = found["http:degraded when redis hangs"]
    # the app's own 0.5 s redis timeout, seen through the server's proxy
    assert hung["measured"]["status"] == 503 and hung["measured"]["seconds"] >= 0.45
    assert hung["evidence"].endswith("(redis hung; 1 connection met the hang)"), hung
    assert hung["measured"]["connections_met"] == 1
    assert found["http:rate limited after 5 requests"]["measured"]["sent"] == 6

    log = (tmp_path / "report" / "server.log").read_text()
    assert "wsgi app httpapp.flask_app:app via uvicorn" in log
    # the background process ran with the target's environment, and was stopped at the end
    pid_text, redis_url = worker_file.read_text().split()
    assert redis_url.startswith("redis://127.0.0.1:")
    assert (tmp_path / "report" / "background-1.log").exists()
    assert _gone(int(pid_text)), f"background process {pid_text} outlived the run"
    servers = _server_pids(tmp_path / "report")
    assert len(servers) == 2 and all(_gone(pid) for pid in servers), "a server outlived the run"


@pytest.mark.slow
def test_plain_asgi_app(tmp_path: Path) -> None:
    output, found = _run("asgi", tmp_path)
    assert output.startswith("exit 1"), output
    assert {cid: c["status"] for cid, c in found.items()} == {
        "http:healthy when redis is up": "holds",
        "http:degraded when redis is killed": "holds",
        "http:lying health says degraded when redis is killed": "fails",
    }, output
    killed = found["http:degraded when redis is killed"]
    assert killed["evidence"].endswith("(redis killed; 1 connect attempt refused)"), killed
    assert "asgi app httpapp.asgi_app:app via uvicorn" in (tmp_path / "server.log").read_text()
    assert all(_gone(pid) for pid in _server_pids(tmp_path))


@pytest.mark.slow
def test_server_command_with_port(tmp_path: Path) -> None:
    output, found = _run("command", tmp_path)
    assert output.startswith("exit 0"), output
    claim = found["http:the folder listing answers"]
    assert claim["status"] == "holds" and claim["measured"]["status"] == 200, claim
    assert re.search(
        r"Serving HTTP on 127\.0\.0\.1 port \d+", (tmp_path / "server.log").read_text()
    )


@pytest.mark.slow
def test_an_app_that_cannot_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    output, found = _run("broken", tmp_path)
    assert output.startswith("exit 1"), output
    assert {c["status"] for c in found.values()} == {"error"}, found
    for claim in found.values():
        assert claim["evidence"].startswith(
            "could not check: the server exited with status 1 before GET /health answered 2xx; "
            "its last line: RuntimeError: cannot start: SECRET_KEY is not set"
        ), claim["evidence"]
        assert "httpapp/broken.py" in claim["details"]


@pytest.mark.slow
def test_a_server_never_ready_is_an_error_once(tmp_path: Path) -> None:
    claims_file = tmp_path / "never.toml"
    claims_file.write_text(
        "[target]\n"
        'name = "http-never-ready"\n'
        "[target.server]\n"
        'command = "python -m http.server {port} --bind 127.0.0.1"\n'
        'ready = "/no-such-page"\n'
        'startup = "2s"\n'
        "[[http]]\n"
        'name = "first"\n'
        'request = "GET /"\n'
        "[[http]]\n"
        'name = "second"\n'
        'request = "GET /"\n'
    )
    report = tmp_path / "report"
    run = signoff("run", str(claims_file), "--report-dir", str(report), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    found = claims(report)
    first, second = found["http:first"], found["http:second"]
    assert first["status"] == second["status"] == "error"
    assert first["evidence"].startswith(
        "could not check: the server did not answer 2xx on GET /no-such-page within 2 s "
        "(last: status 404)"
    ), first["evidence"]
    assert second["evidence"] == first["evidence"]
    # the second claim does not wait for the startup again
    assert first["duration_s"] >= 1.9 and second["duration_s"] < first["duration_s"] / 2


@pytest.mark.slow
def test_a_fault_the_endpoint_never_meets_is_an_error(tmp_path: Path) -> None:
    """A cache and a breaker stuck open answer without trying redis: their claims would hold,
    they are `error`; the same claims on the honest endpoint hold, with what met the fault. The
    background worker polls redis all along, on proxies of its own: its meetings do not count."""
    output, found = _run("unexercised", tmp_path)
    assert output.startswith("exit 1"), output
    status = {cid.removeprefix("http:"): c["status"] for cid, c in found.items()}
    assert status == {
        "the cache is filled while redis answers": "holds",
        "cached health answers within 1 s while redis hangs": "error",
        "health answers within 1 s while redis hangs": "holds",
        "breaker health says degraded when redis is killed": "holds",
        "breaker health says degraded when redis is killed again": "error",
        "health says degraded when redis is killed": "holds",
        "health says degraded when redis is blackholed": "holds",
    }, output

    cached = found["http:cached health answers within 1 s while redis hangs"]
    assert cached["evidence"].startswith(
        "GET /cached-health never reached redis while it hung: the fault was not exercised (no "
        "connection of the server met it at the proxy); the background processes met it on "
    ), cached["evidence"]
    assert "\nthe answer, not judged: GET /cached-health answered 200 " in cached["evidence"]
    assert cached["measured"]["connections_met"] == 0
    assert cached["measured"]["background_met"] >= 1  # the worker's PINGs, stalled

    honest = found["http:health answers within 1 s while redis hangs"]
    assert honest["evidence"].endswith("(redis hung; 1 connection met the hang)"), honest
    assert honest["measured"]["connections_met"] == 1

    stuck = found["http:breaker health says degraded when redis is killed again"]
    assert stuck["evidence"].startswith(
        "GET /breaker-health never reached redis while it was killed: the fault was not "
        "exercised (no connection of the server met it at the proxy and no connect attempt to "
        "the proxy was seen)\nthe answer, not judged: GET /breaker-health answered 503 "
    ), stuck["evidence"]
    assert stuck["measured"] == {
        **stuck["measured"],
        "connections_met": 0,
        "connect_attempts": 0,
        "background_met": 0,  # the worker's refused reconnects never reach its proxy
    }
    for name in (
        "breaker health says degraded when redis is killed",
        "health says degraded when redis is killed",
    ):
        assert found[f"http:{name}"]["measured"]["connect_attempts"] == 1, found[f"http:{name}"]
    blackholed = found["http:health says degraded when redis is blackholed"]
    assert blackholed["evidence"].endswith("(redis blackholed; 1 connect attempt blackholed)")


@pytest.mark.slow
def test_faults_on_a_command_server(tmp_path: Path) -> None:
    """A `command` server has no connect log: its hang is seen at the proxy, its blackholed
    connect in SYN-SENT; its refused connect cannot be seen, so the kill claim is `error`."""
    output, found = _run("command_faults", tmp_path)
    assert output.startswith("exit 1"), output
    hung = found["http:degraded when redis hangs"]
    assert hung["status"] == "holds" and hung["measured"]["connections_met"] == 1, hung
    blackholed = found["http:degraded when redis is blackholed"]
    assert blackholed["status"] == "holds", blackholed
    assert blackholed["evidence"].endswith("(redis blackholed; 1 connect attempt blackholed)")
    killed = found["http:degraded when redis is killed"]
    assert killed["status"] == "error", killed
    assert killed["evidence"].startswith(
        "could not tell whether GET /health reached redis while it was killed: no connection of "
        "the server met it at the proxy and no connect attempt to the proxy was seen, but a "
        "refused connect never reaches the proxy, and the server is the claims file's own "
        "command, whose connects signoff cannot watch"
    ), killed["evidence"]
    assert not (tmp_path / "server-connects.log").exists()
