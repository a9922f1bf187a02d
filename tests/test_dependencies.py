"""[target.dependencies] at run time: a dependency started from a command (tests/data/
dependencies/stub.py, a stdlib HTTP server) or given by url, handed to every target process
through a fault proxy of its own, and faulted like Redis: hang, refuse, kill. Also `signoff run`,
`signoff hang` and `signoff services up` with one."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from signoff import processes, stages
from signoff.context import RunContext
from signoff.engine.runner import ChildResult, run_call
from signoff.errors import ServiceError, UsageError
from signoff.faults import Fault, faulted
from signoff.hang import parse_faults
from signoff.server import stop_target_server, target_server
from signoff.services import DependencyService, stop_services
from signoff.services.base import free_port
from tests.runs import ROOT, claims, signoff, statuses

DATA = Path(__file__).parent / "data" / "dependencies"
STUB = DATA / "stub.py"
CLAIMS = DATA / "signoff.toml"
DEFAULT_STARTUP = 30.0  # [target.dependencies] startup's default
WAIT = 60.0  # the longest a command of these tests may take before it is called stuck
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# a claim of a kind that needs the services, so that the run starts the dependencies
TIMEOUT_CLAIM = """
[[timeouts]]
name = "fetch"
call = "deptarget.client:fetch"
service = "stub"
fault = "hang"
within = "2s"
"""


def write_claims(folder: Path, dependency: str, extra: str = TIMEOUT_CLAIM) -> Path:
    """A claims file in `folder` whose target is tests/data/dependencies, with the dependency
    "stub" given by the TOML lines `dependency`."""
    path = folder / "signoff.toml"
    path.write_text(
        f'[target]\nname = "deps"\npythonpath = [{json.dumps(str(DATA))}]\n'
        'env = { STUB_GREETING = "hi from the target env" }\n\n'
        f"[target.dependencies.stub]\n{dependency}\n{extra}"
    )
    return path


def stub_command(mode: str = "ok") -> str:
    return f'command = "python {STUB} --port {{port}} --mode {mode}"\nenv = "STUB_URL"'


@contextlib.contextmanager
def started(path: Path, backend: str = "embedded") -> Iterator[RunContext]:
    """The run of `path` as `signoff run` starts it (stages.start), stopped after."""
    ctx, refs = stages.configure(
        str(path), only=None, deadline="10m", report_dir=str(path.parent / "report")
    )
    stages.start(ctx, refs, backend)
    try:
        yield ctx
    finally:
        stop_target_server(ctx)
        if ctx.hub is not None:
            ctx.hub.close()
        stop_services(ctx.services)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[RunContext]:
    """A run whose dependency "stub" is started from its command; ready on GET /health."""
    with started(write_claims(tmp_path, stub_command() + '\nready = "GET /health"')) as ctx:
        yield ctx


def get(url: str) -> str:
    with _OPENER.open(url, timeout=5) as answer:
        return str(answer.read().decode())


def call(ctx: RunContext, ref: str, timeout: float = 10.0, **env: str) -> ChildResult:
    """`ref` called in a fresh interpreter of the target, through a proxy of its own."""
    with ctx.claim_setup(env) as setup:
        return run_call(setup.target, ref, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- a dependency from a command --------------------------------------------------------------


def test_a_command_dependency_runs_in_the_claims_folder_with_the_target_environment(
    run: RunContext, tmp_path: Path
) -> None:
    stub = run.services["stub"]
    assert isinstance(stub, DependencyService)
    assert (stub.name, stub.url_env, stub.backend, stub.can_kill) == (
        "stub",
        "STUB_URL",
        "command",
        True,
    )
    stub.ping()
    direct = f"http://127.0.0.1:{stub.port}"
    assert get(direct + "/hello") == "hello from the stub"
    assert get(direct + "/env/STUB_GREETING") == "hi from the target env"  # [target].env
    assert get(direct + "/env/PYTHONPATH").split(os.pathsep)[0] == str(DATA)
    log = (run.report_dir / "dependency-stub.log").read_text()
    assert f"listening on 127.0.0.1:{stub.port} in {tmp_path}\n" in log  # the claims' folder
    # "python" is the target's interpreter: here the harness's own
    assert psutil.Process(stub.pids()[0]).cmdline()[0] == sys.executable
    assert run.info.services["stub"] == "command"


def test_the_target_reaches_a_dependency_through_a_proxy_of_its_own(run: RunContext) -> None:
    stub = run.services["stub"]
    with run.claim_setup() as first, run.claim_setup() as second:
        proxy = first.proxies["stub"]
        assert proxy.upstream == (stub.host, stub.port)
        assert proxy.address != second.proxies["stub"].address  # one proxy per claim
        assert first.target.env["STUB_URL"] == f"http://127.0.0.1:{proxy.address[1]}"
        result = run_call(first.target, "deptarget.client:address", timeout=10)
        assert result.result_repr == repr(f"http://127.0.0.1:{proxy.address[1]}")
        assert proxy.address[1] != stub.port
        fetched = run_call(first.target, "deptarget.client:fetch", timeout=10)
        assert fetched.result_repr == repr("hello from the stub")


def test_a_hang_on_a_dependency_is_met_by_the_probe(run: RunContext) -> None:
    stub = run.services["stub"]
    with run.claim_setup() as setup:
        with faulted(Fault("hang"), service=stub, proxy=setup.proxies["stub"]) as state:
            result = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert result.outcome == "raised", result
        assert result.exc_type == "builtins:TimeoutError"
        assert state.met == 1
        after = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert after.result_repr == repr("hello from the stub")  # lifted


def test_refuse_on_a_dependency_is_met_by_the_probe(run: RunContext) -> None:
    stub = run.services["stub"]
    pid = stub.pids()[0]
    with run.claim_setup() as setup:
        with faulted(Fault("refuse"), service=stub, proxy=setup.proxies["stub"]):
            result = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert result.outcome == "raised", result
        assert result.exc_type == "urllib.error:URLError"
        assert "Connection refused" in (result.exc_message or "")
        assert _alive(pid)  # only the proxy refused
        after = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert after.result_repr == repr("hello from the stub")


def test_kill_on_a_dependency_kills_it_and_restarts_it_on_the_same_port(run: RunContext) -> None:
    stub = run.services["stub"]
    pid, port = stub.pids()[0], stub.port
    with run.claim_setup() as setup:
        with faulted(Fault("kill"), service=stub, proxy=setup.proxies["stub"]) as state:
            assert not _alive(pid)
            result = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert not state.emulated
        assert result.outcome == "raised", result
        assert "Connection refused" in (result.exc_message or "")
        assert stub.port == port and stub.pids()[0] != pid
        after = run_call(setup.target, "deptarget.client:fetch", timeout=10)
        assert after.result_repr == repr("hello from the stub")
    log = (run.report_dir / "dependency-stub.log").read_text()
    assert log.count(f"--- signoff: starting stub on port {port}") == 2


def test_a_dependency_that_died_outside_a_fault_says_so_at_its_ping(run: RunContext) -> None:
    stub = run.services["stub"]
    pid = stub.pids()[0]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while _alive(pid) and time.monotonic() < deadline:  # a zombie counts as dead
        time.sleep(0.01)
    with pytest.raises(ServiceError, match=r"^stub exited with status -9; log tail \("):
        stub.ping()


def test_a_tcp_ready_dependency_is_ready_once_it_accepts_a_connection(tmp_path: Path) -> None:
    with started(write_claims(tmp_path, stub_command())) as ctx:  # ready = "tcp" by default
        stub = ctx.services["stub"]
        assert stub.server_version(stub.url, 2.0) == "tcp"
        assert call(ctx, "deptarget.client:fetch").result_repr == repr("hello from the stub")


def test_no_dependency_starts_when_no_claim_needs_the_services(tmp_path: Path) -> None:
    cron = '[cron]\ncall = "os:getpid"\nmax_results = 1\nwithin = "1s"\n'
    path = write_claims(tmp_path, stub_command(), extra=cron)
    before = len(processes.running())
    with started(path) as ctx:
        assert ctx.services == {}
        assert len(processes.running()) == before
        assert not (ctx.report_dir / "dependency-stub.log").exists()


# -- a dependency given by url ----------------------------------------------------------------


def test_a_url_dependency_is_proxied_but_never_killed_nor_stopped(tmp_path: Path) -> None:
    port = free_port()
    own = processes.spawn(
        [sys.executable, str(STUB), "--port", str(port)],
        role="test-stub",
        stdout=subprocess.DEVNULL,
    )
    try:
        spec = f'url = "http://127.0.0.1:{port}"\nready = "GET /health"\nenv = "STUB_URL"'
        with started(write_claims(tmp_path, spec)) as ctx:
            stub = ctx.services["stub"]
            assert (stub.backend, stub.can_kill, stub.port) == ("url", False, port)
            assert ctx.info.services["stub"] == "url"
            with ctx.claim_setup() as setup:
                proxy = setup.proxies["stub"]
                with faulted(Fault("kill"), service=stub, proxy=proxy) as state:
                    killed = run_call(setup.target, "deptarget.client:fetch", timeout=10)
                assert state.emulated and state.note is not None
                assert "cannot be killed here" in state.note
                assert "Connection refused" in (killed.exc_message or "")
                assert own.poll() is None  # the proxy emulated it
                fetched = run_call(setup.target, "deptarget.client:fetch", timeout=10)
                assert fetched.result_repr == repr("hello from the stub")
            with pytest.raises(ServiceError, match="not started by signoff"):
                stub.kill()
        assert own.poll() is None  # not ours to stop
        assert get(f"http://127.0.0.1:{port}/hello") == "hello from the stub"
    finally:
        processes.stop(own)


# -- dependencies that do not start ---------------------------------------------------------


def test_a_command_that_exits_at_once_names_the_dependency_and_its_log(tmp_path: Path) -> None:
    path = write_claims(tmp_path, stub_command("crash"))
    before = len(processes.running())
    with pytest.raises(ServiceError) as info, started(path):
        pass
    message = str(info.value)
    assert message.startswith(f"dependency stub (`python {STUB} --port {{port}} --mode crash`): ")
    assert "exited with status 3 before answering" in message
    assert "dependency-stub.log" in message
    assert message.endswith("stub: cannot load the voices: voices.json is missing")
    assert len(processes.running()) == before


def test_a_dependency_never_ready_errors_at_its_own_startup(tmp_path: Path) -> None:
    spec = stub_command("unready") + '\nready = "GET /health"\nstartup = "1s"'
    path = write_claims(tmp_path, spec)
    began = time.monotonic()
    with pytest.raises(ServiceError) as info, started(path):
        pass
    waited = time.monotonic() - began
    message = str(info.value)
    first = message.splitlines()[0]
    assert re.search(
        r"^dependency stub \(`.*`\): not ready within \d+\.\d s; the last try: ", first
    )
    assert "answered GET /health with status 503" in first
    # the log's tail, its probes' lines counted, not repeated
    assert re.search(r'\n[^\n]*"GET /health HTTP/1\.1" 503 -  \[\d+ times\]$', message), message
    assert waited < DEFAULT_STARTUP  # its own startup, not the default
    assert not [p for p in processes.running() if str(STUB) in str(p.args)]  # stopped


def test_a_command_whose_program_does_not_exist_is_a_service_error(tmp_path: Path) -> None:
    spec = 'command = "no-such-program-for-signoff --port {port}"\nenv = "STUB_URL"'
    path = write_claims(tmp_path, spec)
    with (
        pytest.raises(ServiceError, match=r"^dependency stub: could not start `no-such-prog"),
        started(path),
    ):
        pass


# -- the served target ------------------------------------------------------------------------


def test_the_served_target_and_its_background_reach_a_dependency_through_their_proxies(
    tmp_path: Path,
) -> None:
    background = free_port()
    http = '\n[[http]]\nname = "hello"\nrequest = "GET /hello"\nstatus = 200\n'
    path = write_claims(tmp_path, stub_command() + '\nready = "GET /health"', extra=http)
    text = path.read_text().replace(
        "[target.dependencies.stub]",
        f'background = ["python {STUB} --port {background}"]\n\n'
        f'[target.server]\ncommand = "python {STUB} --port {{port}}"\nready = "/health"\n\n'
        "[target.dependencies.stub]",
    )
    path.write_text(text)
    with started(path) as ctx:
        server = target_server(ctx)
        served = server.proxies["stub"].address
        assert get(server.url("/env/STUB_URL")) == f"http://127.0.0.1:{served[1]}"
        deadline = time.monotonic() + WAIT
        while True:  # the background process starts with the server; it may not listen yet
            try:
                answer = get(f"http://127.0.0.1:{background}/env/STUB_URL")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        behind = server.background_proxies["stub"].address
        assert answer == f"http://127.0.0.1:{behind[1]}"
        assert len({served, behind, (ctx.services["stub"].host, ctx.services["stub"].port)}) == 3


# -- the command line -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_faults_a_dependency_like_a_service(tmp_path: Path) -> None:
    """The holding claim's client gives up after 1 s; the regression's has no timeout."""
    state = tmp_path / "state"
    report = tmp_path / "report"
    done = signoff(
        "run",
        str(CLAIMS),
        "--report-dir",
        str(report),
        env={"SIGNOFF_STATE_DIR": str(state)},
        timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    holds = "timeout:the stub client gives up on a hung stub"
    regression = "timeout:a stub client without a timeout waits on a hung stub"
    assert statuses(report) == {holds: "holds", regression: "fails"}
    found = claims(report)
    assert found[holds]["measured"]["connections_met"] == 1
    assert "raised builtins.TimeoutError" in found[holds]["evidence"]
    assert "1 connection met the hang" in found[regression]["evidence"]
    assert "stuck at deptarget/client.py:" in found[regression]["evidence"]
    environment = json.loads((report / "signoff.json").read_text())["environment"]
    assert environment["services"]["stub"] == "command"
    assert "listening on 127.0.0.1:" in (report / "dependency-stub.log").read_text()
    assert list((state / "pids").glob("*.json")) == []  # nothing left running


def test_a_run_whose_dependency_cannot_start_exits_3_naming_it(tmp_path: Path) -> None:
    path = write_claims(tmp_path, stub_command("crash"))
    report = tmp_path / "report"
    done = signoff(
        "run",
        str(path),
        "--report-dir",
        str(report),
        env={"SIGNOFF_STATE_DIR": str(tmp_path / "state")},
        timeout=WAIT,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    evidence = claims(report)["timeout:fetch"]["evidence"]
    assert evidence.startswith("not checked: the services could not be started: dependency stub")
    assert "voices.json is missing" in evidence


def test_hang_knows_dependencies() -> None:
    names = ["redis", "stub"]
    assert parse_faults(None, names) == {"redis": Fault("hang"), "stub": Fault("hang")}
    assert parse_faults(["stub:refuse"], names) == {"redis": None, "stub": Fault("refuse")}
    with pytest.raises(
        UsageError, match=r"unknown service 'tts'; .* one of redis, postgres, stub "
    ):
        parse_faults(["tts:hang"], names)


def test_signoff_hang_shows_a_call_stuck_on_a_hung_dependency(tmp_path: Path) -> None:
    done = signoff(
        "hang",
        "deptarget.client:fetch",
        "--claims",
        str(CLAIMS),
        "--fault",
        "stub:hang",
        "--timeout",
        "2s",
        env={"SIGNOFF_STATE_DIR": str(tmp_path / "state"), "STUB_TIMEOUT": "none"},
        timeout=WAIT,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    line = re.search(
        r"^stub: command at 127\.0\.0\.1:(\d+); "
        r"the target reaches it through 127\.0\.0\.1:(\d+), fault: hang$",
        out,
        re.MULTILINE,
    )
    assert line is not None, out
    real, proxied = line.groups()
    assert "HANGS: call deptarget.client:fetch still running after 2.000 s" in out
    assert re.search(r"^stuck at deptarget/client\.py:\d+ in fetch$", out, re.MULTILINE), out
    assert (
        f"waiting on 127.0.0.1:{proxied} (stub, via signoff's fault proxy to 127.0.0.1:{real})"
        in out
    )
    assert list((tmp_path / "state" / "pids").glob("*.json")) == []


def test_services_up_starts_a_dependency_until_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "signoff", "services", "up", str(CLAIMS)],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SIGNOFF_STATE_DIR": str(state)},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)  # its first line: it is up
        assert ready, f"signoff services up printed nothing within {WAIT:g} s"
        line = proc.stdout.readline()  # "" if it exited
        found = re.fullmatch(r"STUB_URL=(http://127\.0\.0\.1:\d+)    # command\n", line)
        assert found is not None, line + proc.communicate(timeout=WAIT)[1]
        assert get(found.group(1) + "/hello") == "hello from the stub"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert "the dependencies' logs are in " in err
        with pytest.raises(OSError):
            get(found.group(1) + "/hello")
        assert list((state / "pids").glob("*.json")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
