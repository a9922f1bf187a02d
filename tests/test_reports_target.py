"""The reports target (targets/reports, seed 003) works end to end with real services: a PDF job
started over HTTP is done by the real Celery worker, its PDF is in Postgres; an external-API job
retries a flaky stub and gives up on a failing one; the rate limit counts per URL and user; a
query on an open connection to a hung Postgres is cut by the app's watchdog instead of waiting
for ever. Plus the parts that need no service: request validation, the watchdog itself."""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from signoff import processes
from signoff.faults.model import parse_fault
from signoff.faults.proxy import ProxyHub
from signoff.services.base import Service, free_port
from signoff.services.start import start_services, stop_services
from tests.runs import claims, signoff

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "targets" / "reports"
JOB_DEADLINE = 30.0  # a job must be done within this (a PDF takes well under a second here)
RATE_LIMIT = 3  # the test server's limit (the claims file checks the real 100)


def target_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPORTS), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(extra)
    return env


def wait_for(what: str, check: Any, timeout: float, pause: float = 0.05) -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s (last: {result!r})")
        time.sleep(pause)


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Service]]:
    started = start_services(["redis", "postgres"], "embedded", timeout=60)
    try:
        yield started
    finally:
        stop_services(started)


class Stack:
    def __init__(self, base_url: str, redis_url: str, database_url: str, logs: Path) -> None:
        self.base_url = base_url
        self.redis_url = redis_url
        self.database_url = database_url
        self.logs = logs
        self.client = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)

    def wait_job(self, task_id: str, user: str | None = None) -> dict[str, Any]:
        headers = {"X-User": user} if user else {}

        def done() -> dict[str, Any] | None:
            answer = self.client.get(f"/tasks/{task_id}", headers=headers)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body if body["status"] in ("complete", "failed") else None

        try:
            return dict(wait_for(f"job {task_id}", done, JOB_DEADLINE))
        except BaseException:
            for log in sorted(self.logs.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-3000:]}")
            raise


@pytest.fixture(scope="module")
def stack(
    services: dict[str, Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The web app under uvicorn and the Celery worker, on the embedded services."""
    logs = tmp_path_factory.mktemp("reports-logs")
    redis_url, database_url = services["redis"].url, services["postgres"].url
    env = target_env(
        REDIS_URL=redis_url, DATABASE_URL=database_url, REPORTS_RATE_LIMIT=str(RATE_LIMIT)
    )
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        with open(logs / "worker.log", "wb") as out:
            started.append(
                processes.spawn(
                    [sys.executable, "-m", "celery", "-A", "reports_app.tasks", "worker",
                     "--pool=solo", "--concurrency=1", "--loglevel=warning",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    role="reports-worker", stdout=out, stderr=subprocess.STDOUT, env=env,
                    cwd=REPORTS,
                )
            )  # fmt: skip
        with open(logs / "web.log", "wb") as out:
            started.append(
                processes.spawn(
                    [sys.executable, "-m", "uvicorn", "reports_app.web:app",
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    role="reports-web", stdout=out, stderr=subprocess.STDOUT, env=env,
                    cwd=REPORTS,
                )
            )  # fmt: skip
        stack = Stack(f"http://127.0.0.1:{port}", redis_url, database_url, logs)

        def ready() -> bool:
            for proc in started:
                assert proc.poll() is None, (logs / "web.log").read_text()[-2000:]
            try:
                return stack.client.get("/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the web app's /health", ready, 30.0, pause=0.1)
        try:
            yield stack
        finally:
            stack.client.close()
    finally:
        for proc in reversed(started):
            processes.stop(proc, grace=5.0)


def start(stack: Stack, path: str, body: dict[str, Any], user: str | None = None) -> str:
    headers = {"X-User": user} if user else {}
    answer = stack.client.post(path, json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    task_id: str = answer.json()["task_id"]
    return task_id


@pytest.mark.slow
def test_a_pdf_job_completes_end_to_end(stack: Stack) -> None:
    started = time.monotonic()
    answer = stack.client.post("/reports/pdf", json={"report": "monthly"})
    accepted_s = time.monotonic() - started
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "pending" and body["kind"] == "pdf"
    task_id = body["task_id"]

    job = stack.wait_job(task_id)
    done_s = time.monotonic() - started
    assert job["status"] == "complete", job
    assert job["attempts"] == 1
    result = job["result"]
    assert result["pages"] >= 1 and result["bytes"] > 1000

    pdf = stack.client.get(job["download"])
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and pdf.content.rstrip().endswith(b"%%EOF")
    assert len(pdf.content) == result["bytes"]
    assert hashlib.sha256(pdf.content).hexdigest() == result["sha256"]

    # the record and the file really are in Postgres
    with psycopg.connect(stack.database_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT j.status, j.kind, length(f.content), f.sha256 FROM report_jobs j"
            " JOIN report_files f ON f.job_id = j.id WHERE j.id = %s",
            (task_id,),
        ).fetchone()
    assert row == ("complete", "pdf", result["bytes"], result["sha256"])
    print(f"PDF job: accepted in {accepted_s * 1000:.1f} ms, complete after {done_s:.3f} s")


@pytest.mark.slow
def test_a_job_is_visible_to_its_user_only(stack: Stack) -> None:
    task_id = start(stack, "/reports/pdf", {"report": "weekly", "rows": 5}, user="alice")
    assert stack.wait_job(task_id, user="alice")["status"] == "complete"
    other = stack.client.get(f"/tasks/{task_id}", headers={"X-User": "mallory"})
    assert other.status_code == 404
    assert stack.client.get(f"/reports/{task_id}/pdf").status_code == 404  # anonymous


@pytest.mark.slow
def test_an_external_job_retries_a_flaky_api_then_completes(stack: Stack) -> None:
    task_id = start(stack, "/external/fetch", {"path": "/flaky?key=t1&fail=2", "retries": 3})
    job = stack.wait_job(task_id)
    assert job["status"] == "complete", job
    assert job["result"]["attempts"] == 3  # two 503s, then the answer
    assert job["result"]["data"]["call"] == 3


@pytest.mark.slow
def test_an_external_job_fails_after_its_retries(stack: Stack) -> None:
    task_id = start(stack, "/external/fetch", {"path": "/status/503", "retries": 1})
    job = stack.wait_job(task_id)
    assert job["status"] == "failed", job
    assert "failed after 2 attempts" in job["error"]
    assert job["error"].count("status 503") == 2


@pytest.mark.slow
def test_an_external_job_gives_up_on_a_slow_api_within_its_timeout(stack: Stack) -> None:
    body = {"path": "/slow?seconds=5", "timeout": 0.3, "retries": 0}
    task_id = start(stack, "/external/fetch", body)
    job = stack.wait_job(task_id)
    assert job["status"] == "failed", job
    assert "no answer within 0.3 s" in job["error"]


@pytest.mark.slow
def test_the_rate_limit_counts_per_url_and_user(stack: Stack) -> None:
    def fetch(path: str, user: str) -> httpx.Response:
        return stack.client.post("/external/fetch", json={"path": path}, headers={"X-User": user})

    codes = [fetch("/rates?rl=1", "carol").status_code for _ in range(RATE_LIMIT + 1)]
    assert codes == [202] * RATE_LIMIT + [429]
    refused = fetch("/rates?rl=1", "carol")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600
    assert fetch("/rates?rl=1", "dave").status_code == 202  # another user
    assert fetch("/rates?rl=2", "carol").status_code == 202  # another URL


@pytest.mark.slow
def test_bad_requests_are_refused(stack: Stack) -> None:
    post = stack.client.post
    assert post("/reports/pdf", json={"report": "nope"}).status_code == 400
    assert post("/reports/pdf", json={"report": "monthly", "rows": 0}).status_code == 422
    for path in ("http://169.254.169.254/", "//evil.example/x", "/a@b", "rates"):
        answer = post("/external/fetch", json={"path": path})
        assert answer.status_code == 400, (path, answer.text)
    assert post("/external/fetch", json={"path": "/rates", "timeout": 500}).status_code == 400
    assert stack.client.get("/tasks/not-a-uuid").status_code == 404


WATCHDOG_CHILD = textwrap.dedent(
    """
    import sys, time
    from reports_app import database, errors
    database.ping()                      # a pooled connection is open now
    print("ready", flush=True)
    sys.stdin.readline()                 # the test hangs the server meanwhile
    started = time.monotonic()
    try:
        database.ping()
        print("answered", flush=True)
    except errors.ConnectionTimeoutError as exc:
        print(f"timeout {time.monotonic() - started:.3f} {exc}", flush=True)
    """
)


@pytest.mark.slow
def test_a_query_on_an_open_connection_to_a_hung_postgres_is_cut(
    services: dict[str, Service],
) -> None:
    """psycopg has no client-side timeout on an open connection: without the watchdog, this
    ping waits for ever. With it, the app gives up after statement_timeout + 0.5 s."""
    postgres = services["postgres"]
    with ProxyHub() as hub:
        proxy = hub.proxy((postgres.host, postgres.port))
        env = target_env(
            DATABASE_URL=postgres.url_for(*proxy.address), REPORTS_DATABASE_TIMEOUT="2"
        )
        child = processes.spawn(
            [sys.executable, "-c", WATCHDOG_CHILD],
            role="reports-watchdog-test",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPORTS,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            readable, _, _ = select.select([child.stdout], [], [], 20.0)
            assert readable, "the child did not connect within 20 s"
            assert child.stdout.readline().strip() == b"ready"
            proxy.set_fault(parse_fault("hang"))
            child.stdin.write(b"go\n")
            child.stdin.flush()
            out, err = child.communicate(timeout=20)
        finally:
            processes.stop(child)
    words = out.decode().split()
    assert words[:1] == ["timeout"], (out, err[-2000:])
    # cut at 2.5 s (2 s statement_timeout + 0.5 s); generous bounds, this is no timing test
    assert 1.0 < float(words[1]) < 10.0
    assert "cut by the client-side deadline" in out.decode()


@pytest.mark.slow
def test_the_reference_http_claims_hold(tmp_path: Path) -> None:
    """targets/reports/signoff.toml's [[http]] claims, through `signoff run` (the served app, the
    real worker, faults on the server's proxies): all hold. (The whole file, imports and client
    timeouts included, takes ~35 s here: the detection matrix runs it.)"""
    run = signoff(
        "run",
        str(REPORTS / "signoff.toml"),
        "--only",
        "http",
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
    )
    found = claims(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(found) >= 15 and {c["status"] for c in found.values()} == {"holds"}, found
    start = found["http:a PDF request returns a task id at once"]
    assert start["measured"]["status"] == 202 and start["measured"]["sent"] == 20
    limited = found["http:the 101st external API request in an hour is refused"]
    assert limited["measured"]["sent"] == 101 and limited["measured"]["status"] == 429
    degraded = found["http:health says degraded when redis is down"]
    assert degraded["measured"]["status"] == 503
    hung = found["http:the status endpoint gives up while postgres hangs"]
    assert "cut by the client-side deadline" in hung["measured"]["body"]


# --- no services needed ---------------------------------------------------------------------


def run_in_target(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=target_env(**env),
        cwd=REPORTS,
    )


def test_the_watchdog_cuts_a_blocked_read_and_spares_a_reused_descriptor() -> None:
    run = run_in_target(
        """
        import socket, time
        from reports_app import watchdog
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname(), timeout=20)
        server_side, _ = listener.accept()          # never answers
        watchdog.arm("k", client.fileno(), 0.2)
        started = time.monotonic()
        data = client.recv(10)                      # blocked until the watchdog cuts it
        took = round(time.monotonic() - started, 3)
        print("cut", data == b"", took, watchdog.fired_for_this_thread())

        # a descriptor closed and reused by another connection is not touched
        other = socket.create_connection(listener.getsockname(), timeout=20)
        peer, _ = listener.accept()
        fd = other.fileno()
        watchdog.arm("r", fd, 0.2)
        other.close()
        again = socket.create_connection(listener.getsockname(), timeout=20)
        peer2, _ = listener.accept()
        time.sleep(0.6)
        peer2.sendall(b"x")
        same_fd, answered = again.fileno() == fd, again.recv(1) == b"x"
        print("spared", same_fd, answered, watchdog.fired_for_this_thread())
        """
    )
    assert run.returncode == 0, run.stderr
    cut, spared = run.stdout.splitlines()
    words = cut.split()
    assert words[0] == "cut" and words[1] == "True" and words[3] == "True", cut
    assert float(words[2]) < 10.0
    assert spared.split()[2:] == ["True", "False"], spared


def test_importing_the_app_connects_nowhere_and_imports_no_client() -> None:
    run = run_in_target(
        """
        import sys
        import reports_app.web, reports_app.tasks, reports_app.jobs, reports_app.health
        heavy = [m for m in ("sqlalchemy", "redis", "celery", "kombu", "fpdf", "psycopg", "httpx")
                 if m in sys.modules]
        print(heavy)
        """,
        REDIS_URL="redis://127.0.0.1:9/0",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert run.stderr == ""


def test_the_pdf_is_a_real_document() -> None:
    run = run_in_target(
        """
        from reports_app import pdf
        small = pdf.render_report("monthly", 60, "job-1", "u")
        big = pdf.render_report("annual", 400, "job-2", "u")
        grows = len(small.content) < len(big.content)
        print(small.pages, big.pages, small.content[:5].decode(), grows)
        """
    )
    assert run.returncode == 0, run.stderr
    small_pages, big_pages, magic, grows = run.stdout.split()
    assert magic == "%PDF-" and grows == "True"
    assert int(small_pages) >= 1 and int(big_pages) > int(small_pages)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"path": "https://example.com/x"}, "path"),
        ({"path": "/ok", "timeout": 121}, "timeout"),
        ({"path": "/ok", "timeout": 0}, "timeout"),
        ({"path": "/ok", "retries": 6}, "retries"),
        ({"path": "/ok", "retries": True}, "retries"),
    ],
)
def test_fetch_plans_are_validated(body: dict[str, Any], problem: str) -> None:
    run = run_in_target(
        f"""
        from reports_app import external, errors
        try:
            external.plan(**{body!r})
        except errors.InvalidRequestError as exc:
            print(str(exc).split(":")[0])
        """
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == problem


def test_the_stub_api_answers_on_loopback_only() -> None:
    run = run_in_target(
        """
        import json, urllib.request
        from reports_app import stub_api
        base = stub_api.ensure_started()
        with urllib.request.urlopen(base + "/rates", timeout=5) as answer:
            print(base.split(":")[1], json.load(answer)["base"])
        stub_api.stop()
        """
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["//127.0.0.1", "EUR"]
