"""[[http]] claims and the served target: the JSON subset rule, ASGI/WSGI detection, and real
runs of `signoff run` against a Flask app, a plain ASGI app, a server command, an app that
cannot start and one that never gets ready, with a background process."""

from __future__ import annotations

import functools
import os
import re
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from signoff import serve_app
from signoff.faults.model import Fault
from signoff.probes.http import describe_fault, json_mismatches
from signoff.serve_app import interface_of
from signoff.server import ServerError
from tests.runs import claims, signoff

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
    assert 'expected status 503 and json {"status": "degraded"} (redis killed)' in evidence
    assert 'status: expected "degraded", got "healthy"' in evidence
    assert found[lying]["measured"]["status"] == 200

    # the app waits 0.5 s for the hung redis: the request is cut at 200 ms + 20 ms tolerance
    assert found[slow]["evidence"] == "GET /health did not answer within 220 ms (redis hung)"
    assert 0.2 <= found[slow]["measured"]["waited_s"] < 0.45

    # a server that dies during a claim is started again for the next one
    assert found[crash]["evidence"].startswith("GET /crash got no answer (")
    assert "note: the server exited (status 3) during this claim" in found[crash]["evidence"]
    restarted = found["http:healthy after the server was restarted"]
    assert restarted["status"] == "holds"
    assert (
        "note: the server had exited (status 3) during an earlier claim; restarted"
        in (restarted["evidence"])
    )

    killed = found["http:degraded when redis is killed"]
    assert killed["measured"]["status"] == 503 and "(redis killed)" in killed["evidence"]
    hung = found["http:degraded when redis hangs"]
    # the app's own 0.5 s redis timeout, seen through the server's proxy
    assert hung["measured"]["status"] == 503 and hung["measured"]["seconds"] >= 0.45
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
