"""The probe primitive against a fake target (tests/data/probe_target) in fresh interpreters."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from signoff import processes
from signoff.engine import runner
from signoff.engine.runner import ChildResult, Event, TargetProcess, run_call, run_import
from signoff.errors import HarnessError, UsageError

DATA = Path(__file__).parent / "data"
PACKAGE = DATA / "probe_target"


def line_of(module: str, marker: str) -> int:
    """The line of probe_target/<module>.py that carries the comment `# <- marker`."""
    lines = (PACKAGE / f"{module}.py").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# <- {marker}"))


def target(cwd: Path, **env: str) -> TargetProcess:
    return TargetProcess(python=sys.executable, pythonpath=(str(DATA),), env=env, cwd=str(cwd))


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[subprocess.Popen[Any]]]:
    """The probe children started during the test; none may outlive it."""
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path / "state"))
    procs: list[subprocess.Popen[Any]] = []
    real = processes.spawn

    def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = real(argv, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(processes, "spawn", spawn)
    yield procs
    left = [proc for proc in procs if proc.poll() is None]
    for proc in left:
        processes.kill(proc)
    assert not left, "a probe child outlived run_import/run_call"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback server socket that accepts (in the kernel) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock
    finally:
        sock.close()


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port where connection attempts are never answered: a full-backlog listener
    that never accepts leaves later connects in SYN_SENT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


# --- imports ------------------------------------------------------------------------------------


def test_import_returns_with_its_time(tmp_path: Path) -> None:
    fast = run_import(target(tmp_path), "probe_target.fast", timeout=2)
    slow = run_import(target(tmp_path), "probe_target.slow", timeout=2)
    for result in (fast, slow):
        assert result.outcome == "returned", result.stderr
        assert result.step == "import"
        assert result.seconds is not None and result.seconds > 0
        assert result.returncode == 0
        assert result.events == ()
        assert result.exc_type is None and result.stacks is None
    assert slow.seconds is not None and slow.seconds >= 0.25  # it sleeps 0.3 s
    assert slow.elapsed >= slow.seconds


def test_import_that_raises(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.raises", timeout=2)
    assert result.outcome == "raised"
    assert result.step == "import"
    assert result.exc_type == "builtins:RuntimeError"
    assert "builtins:Exception" in result.exc_mro
    assert result.exc_message == "config missing: APP_SECRET"
    assert result.exc_where == f"probe_target/raises.py:{line_of('raises', 'raise')}"
    assert result.traceback is not None and "RuntimeError: config missing" in result.traceback
    assert "child.py" not in result.traceback
    assert result.cycle is None


def test_circular_import_shows_the_cycle(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.circular_a", timeout=2)
    assert result.outcome == "raised"
    assert result.exc_type == "builtins:ImportError"
    assert result.exc_message is not None and "circular import" in result.exc_message
    assert result.cycle == (
        "probe_target.circular_a",
        "probe_target.circular_b",
        "probe_target.circular_a",
    )
    assert result.exc_where == "probe_target/circular_b.py:3"


@pytest.mark.slow
def test_hung_import_shows_where_and_is_killed(
    tmp_path: Path, spawned: list[subprocess.Popen[Any]]
) -> None:
    result = run_import(target(tmp_path), "probe_target.hangs", timeout=1)
    assert result.outcome == "hung"
    assert result.step == "import"
    assert result.seconds is None
    assert 1 <= result.elapsed < 10
    assert result.stacks is not None
    assert f'probe_target/hangs.py", line {line_of("hangs", "hang")} in <module>' in result.stacks
    assert "[MainThread]" in result.stacks.splitlines()[1]
    assert "child.py" not in result.stacks
    assert result.waiting_on is None
    assert len(spawned) == 1 and gone(spawned[0].pid)


@pytest.mark.slow
def test_hung_connect_says_what_it_waits_on(
    tmp_path: Path, blackhole: int, spawned: list[subprocess.Popen[Any]]
) -> None:
    result = run_import(
        target(tmp_path, PROBE_PORT=str(blackhole)), "probe_target.blackhole", timeout=1
    )
    assert result.outcome == "hung"
    assert result.waiting_on == f"127.0.0.1:{blackhole}"
    assert any(s.endswith(f"-> 127.0.0.1:{blackhole} SYN_SENT") for s in result.sockets)
    assert result.stacks is not None
    assert f'blackhole.py", line {line_of("blackhole", "blackhole")}' in result.stacks
    # the event was written before the kill, and survived it
    where = f"probe_target/blackhole.py:{line_of('blackhole', 'blackhole')}"
    assert Event("network", f"connect 127.0.0.1:{blackhole}", where, 0, "import") in [
        Event(e.kind, e.detail, e.where, 0, e.step) for e in result.events
    ]
    assert result.elapsed < 10
    assert len(spawned) == 1 and gone(spawned[0].pid)


def test_network_event_names_the_target_line(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run_import(target(tmp_path, PROBE_PORT=str(port)), "probe_target.connects", timeout=2)
    assert result.outcome == "returned", result.stderr
    network = [e for e in result.events if e.kind == "network"]
    assert [e.detail for e in network] == [
        f"getaddrinfo 127.0.0.1:{port}",
        f"connect 127.0.0.1:{port}",
    ]
    assert {e.where for e in network} == {
        f"probe_target/connects.py:{line_of('connects', 'connect')}"
    }
    assert all(0 <= e.at <= (result.seconds or 0) for e in network)


def test_thread_event(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.threads", timeout=2)
    assert result.outcome == "returned", result.stderr
    assert [(e.kind, e.detail, e.where) for e in result.events] == [
        (
            "thread",
            "thread Thread-1 (worker)",
            f"probe_target/threads.py:{line_of('threads', 'thread')}",
        )
    ]


def test_subprocess_event_and_nothing_left_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    result = run_import(
        target(tmp_path, PROBE_PIDFILE=str(pidfile)), "probe_target.spawns", timeout=5
    )
    assert result.outcome == "returned", result.stderr
    assert len(result.events) == 1, result.events
    event = result.events[0]
    assert event.kind == "subprocess"
    assert event.detail.startswith("Popen [") and "time.sleep(30)" in event.detail
    assert event.where == f"probe_target/spawns.py:{line_of('spawns', 'spawn')}"
    # it started its subprocess in a session of its own: still, nothing outlives the probe
    assert gone(int(pidfile.read_text()))


def test_warning_event(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.warns", timeout=2)
    assert result.outcome == "returned", result.stderr
    assert [(e.kind, e.detail, e.where) for e in result.events] == [
        (
            "warning",
            "DeprecationWarning: this module is deprecated",
            f"probe_target/warns.py:{line_of('warns', 'warn')}",
        )
    ]


def test_output_goes_to_files_and_stderr_keeps_its_tail(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.noisy", timeout=10)
    assert result.outcome == "returned"
    assert len(result.stderr) <= 4000
    assert result.stderr.endswith("the last words\n")


def test_crash_while_importing(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.crashes", timeout=2)
    assert result.outcome == "crashed"
    assert result.returncode == 3
    assert result.step == "import"
    assert result.seconds is None


def test_importtime_rows_when_asked(tmp_path: Path) -> None:
    result = run_import(target(tmp_path), "probe_target.slow", timeout=2, importtime=True)
    assert result.outcome == "returned", result.stderr
    names = [name for name, _ in result.importtime]
    assert names[0] == "probe_target.slow"  # slowest first
    assert "probe_target" in names
    assert result.importtime[0][1] >= 0.25
    assert "import time:" not in result.stderr
    plain = run_import(target(tmp_path), "probe_target.slow", timeout=2)
    assert plain.importtime == ()


# --- calls --------------------------------------------------------------------------------------


def test_call_returns_type_and_mro(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:make", timeout=2)
    assert result.outcome == "returned", result.stderr
    assert result.step == "call"
    assert result.seconds is not None and result.seconds >= 0
    assert result.result_type == "probe_target.fast:Widget"
    assert result.result_mro == (
        "probe_target.fast:Widget",
        "probe_target.fast:Base",
        "builtins:object",
    )
    assert result.result_repr == "Widget(7)"


def test_call_of_a_method(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:Widget.create", timeout=2)
    assert result.outcome == "returned", result.stderr
    assert (result.result_type, result.result_repr) == ("probe_target.fast:Widget", "Widget(3)")


def test_call_of_a_coroutine_function(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:amake", timeout=2)
    assert (result.outcome, result.result_repr) == ("returned", "Widget(9)"), result.stderr


def test_call_that_raises_gives_the_mro(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:fail", timeout=2)
    assert result.outcome == "raised"
    assert result.step == "call"
    assert result.exc_type == "probe_target.fast:ProbeTimeoutError"
    assert {"probe_target.fast:ProbeError", "builtins:TimeoutError", "builtins:OSError"} <= set(
        result.exc_mro
    )
    assert result.exc_message == "gave up after 1 s"
    assert result.exc_where == f"probe_target/fast.py:{line_of('fast', 'fail')}"
    assert result.result_type is None


def test_sys_exit_is_raised_not_crashed(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:quits", timeout=2)
    assert (result.outcome, result.exc_type, result.exc_message) == (
        "raised",
        "builtins:SystemExit",
        "4",
    )
    assert result.returncode == 0


def test_missing_module_or_attribute_fails_at_import(tmp_path: Path) -> None:
    missing = run_call(target(tmp_path), "probe_target.nope:run", timeout=2)
    assert (missing.outcome, missing.step) == ("raised", "import")
    assert missing.exc_type == "builtins:ModuleNotFoundError"
    assert missing.exc_message == "No module named 'probe_target.nope'"
    no_attr = run_call(target(tmp_path), "probe_target.fast:nope", timeout=2)
    assert (no_attr.outcome, no_attr.step, no_attr.exc_type) == (
        "raised",
        "import",
        "builtins:AttributeError",
    )


def test_crash_while_calling(tmp_path: Path) -> None:
    result = run_call(target(tmp_path), "probe_target.fast:dies", timeout=2)
    assert (result.outcome, result.step, result.returncode) == ("crashed", "call", 5)


@pytest.mark.slow
def test_hung_call_on_an_established_connection(
    tmp_path: Path, listener: socket.socket, spawned: list[subprocess.Popen[Any]]
) -> None:
    port = listener.getsockname()[1]
    result = run_call(
        target(tmp_path, PROBE_PORT=str(port)),
        "probe_target.fast:stalls",
        timeout=1,
        import_timeout=5,
    )
    assert (result.outcome, result.step) == ("hung", "call")
    assert result.waiting_on == f"127.0.0.1:{port}"
    assert any(s.endswith(f"-> 127.0.0.1:{port} ESTABLISHED") for s in result.sockets)
    assert result.stacks is not None
    assert f'fast.py", line {line_of("fast", "stall")} in stalls' in result.stacks
    assert [e.step for e in result.events if e.kind == "network"] == ["call", "call"]
    assert result.elapsed < 10
    assert len(spawned) == 1 and gone(spawned[0].pid)


def test_on_tick_watches_the_child_while_it_runs(
    tmp_path: Path, blackhole: int, spawned: list[subprocess.Popen[Any]]
) -> None:
    """on_tick(pid, phase) is called again and again while the child runs: the harness can look
    at the child itself (its connecting sockets, say) in each step."""
    seen: list[tuple[int, str, tuple[str, ...]]] = []

    def on_tick(pid: int, phase: str) -> None:
        conns = psutil.Process(pid).net_connections(kind="tcp") if phase == "call" else []
        seen.append((pid, phase, tuple(c.status for c in conns if c.raddr)))

    result = run_call(
        target(tmp_path, PROBE_PORT=str(blackhole)),
        "probe_target.fast:stalls",
        timeout=0.5,
        on_tick=on_tick,
    )
    assert (result.outcome, result.step) == ("hung", "call")
    assert {pid for pid, _, _ in seen} == {spawned[0].pid}
    during = [statuses for _, phase, statuses in seen if phase == "call"]
    assert len(during) >= 2, seen
    assert any(psutil.CONN_SYN_SENT in statuses for statuses in during), seen


@pytest.mark.slow
def test_hang_while_importing_the_callable(tmp_path: Path) -> None:
    result = run_call(
        target(tmp_path), "probe_target.hangs:anything", timeout=5, import_timeout=0.5
    )
    assert (result.outcome, result.step) == ("hung", "import")
    assert result.elapsed < 5  # the call's timeout never started


def test_the_target_environment_applies(tmp_path: Path) -> None:
    env = run_call(
        target(tmp_path, PROBE_ENV="from the claim"), "probe_target.fast:env_value", timeout=2
    )
    assert env.result_repr == "'from the claim'", env.stderr
    places = run_call(target(tmp_path), "probe_target.fast:where_am_i", timeout=2)
    # the target's folder comes first on sys.path, never signoff/engine/; cwd is the target's
    assert places.result_repr == repr((str(DATA), str(tmp_path)))


# --- the harness's side -------------------------------------------------------------------------


def test_keyboard_interrupt_kills_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawned: list[subprocess.Popen[Any]]
) -> None:
    temp_dirs: list[str] = []
    real_mkdtemp, real_poll = tempfile.mkdtemp, runner._poll
    calls = 0

    def mkdtemp(**kwargs: Any) -> str:
        temp_dirs.append(real_mkdtemp(**kwargs))
        return temp_dirs[-1]

    def poll(fd: int, timeout: float) -> bool:
        nonlocal calls
        calls += 1
        if calls > 3:  # the child is importing by now, or still starting: either way, Ctrl-C
            raise KeyboardInterrupt
        return real_poll(fd, timeout)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)  # probe folders: processes.temp_folder
    monkeypatch.setattr(runner, "_poll", poll)
    with pytest.raises(KeyboardInterrupt):
        run_import(target(tmp_path), "probe_target.hangs", timeout=30)
    assert len(spawned) == 1 and gone(spawned[0].pid)
    assert not list(processes.state_dir().glob("*.json"))
    assert temp_dirs and not Path(temp_dirs[0]).exists()


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run_call(target(tmp_path), "probe_target.fast", timeout=1)
    with pytest.raises(ValueError):
        run_import(target(tmp_path), "probe_target.fast", timeout=0)
    missing = TargetProcess(
        python=str(tmp_path / "no-python"), pythonpath=(), env={}, cwd=str(tmp_path)
    )
    with pytest.raises(HarnessError, match="no-python"):
        run_import(missing, "probe_target.fast", timeout=1)


def _hung(sockets: tuple[str, ...], events: tuple[Event, ...]) -> ChildResult:
    return ChildResult(
        outcome="hung",
        step="import",
        seconds=None,
        elapsed=1.0,
        stacks="",
        sockets=sockets,
        events=events,
        returncode=-9,
    )


def test_waiting_on_prefers_connecting_then_latest_connected_then_events() -> None:
    redis = Event("network", "connect 127.0.0.1:6379", "core/tasks.py:12", 0.1)
    pg = Event("network", "connect 127.0.0.1:5432", "core/db.py:3", 0.2)
    established = (
        "127.0.0.1:40000 -> 127.0.0.1:6379 ESTABLISHED",
        "127.0.0.1:40001 -> 127.0.0.1:5432 ESTABLISHED",
        "127.0.0.1:8000 LISTEN",
    )
    assert _hung(established, (redis, pg)).waiting_on == "127.0.0.1:5432"
    assert _hung(established, (pg, redis)).waiting_on == "127.0.0.1:6379"
    syn = ("127.0.0.1:40002 -> 127.0.0.1:9 SYN_SENT", *established)
    assert _hung(syn, (redis, pg)).waiting_on == "127.0.0.1:9"
    lookup = Event("network", "getaddrinfo redis.example:6379", "core/tasks.py:11", 0.1)
    assert _hung((), (redis, lookup)).waiting_on == "redis.example:6379"
    assert _hung((), ()).waiting_on is None
