"""`signoff hang`: a hang reproduced with a real Redis behind signoff's fault proxy, printed live,
with the stuck frame and the address; and nothing left running afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from signoff import processes
from signoff.claims import load_claims
from signoff.engine.runner import CHILD_SCRIPT, Event, TargetProcess, run_import
from signoff.errors import UsageError
from signoff.faults import Fault
from signoff.hang import Addresses, HangTarget, parse_faults, parse_target, resolve_timeout
from tests.runs import ROOT, signoff

HANG_TARGET = Path(__file__).parent / "data" / "hang_target"
CLAIMS = HANG_TARGET / "signoff.toml"
WAIT = 60.0  # the longest any step of these tests waits for the command


def line_of(module: str, marker: str = "stuck") -> int:
    """The line of hang_target/eager/<module>.py that carries the comment `# <- marker`."""
    lines = (HANG_TARGET / "eager" / f"{module}.py").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# <- {marker}"))


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


class HangRun:
    """`python -m signoff hang ...` in a subprocess, its output read line by line as it comes,
    each line with the wall time it arrived."""

    def __init__(self, state: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "signoff", "hang", *args],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SIGNOFF_STATE_DIR": str(state), **(env or {})},
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.pids: list[int] = []  # what it had started, seen while it ran

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put((time.time(), line.rstrip("\n")))
        self._queue.put(None)

    def _take(self, timeout: float) -> bool:
        """Move one line (or the end) from the reader to `lines`; False at the end."""
        item = self._queue.get(timeout=timeout)
        if item is None:
            self._queue.put(None)
            return False
        self.lines.append(item)
        return True

    def wait_for(self, text: str, timeout: float = WAIT) -> float:
        """The time the first line containing `text` arrived."""
        give_up = time.monotonic() + timeout
        seen = 0
        while True:
            for at, line in self.lines[seen:]:
                if text in line:
                    return at
            seen = len(self.lines)
            left = give_up - time.monotonic()
            try:
                if left <= 0 or not self._take(left):
                    break
            except queue.Empty:
                break
        pytest.fail(f"no line with {text!r} within {timeout:g} s:\n{self.output}")

    def snapshot_pids(self) -> None:
        self.pids = [json.loads(p.read_text())["pid"] for p in (self.state / "pids").glob("*.json")]

    def finish(self, timeout: float = WAIT) -> int:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        while True:
            try:
                if not self._take(0):
                    break
            except queue.Empty:
                break
        return self.proc.returncode

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The pidfile folder of the runs of one test; whatever a failed test left is reaped."""
    folder = tmp_path / "state"
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(folder))
    yield folder
    processes.reap_leftovers()


@pytest.fixture
def runs(state: Path) -> Iterator[list[HangRun]]:
    started: list[HangRun] = []
    yield started
    for run in started:
        run.close()


def start(runs: list[HangRun], state: Path, *args: str, **env: str) -> HangRun:
    run = HangRun(state, *args, "--claims", str(CLAIMS), "--services", "embedded", env=env)
    runs.append(run)
    return run


def assert_nothing_left(run: HangRun) -> None:
    assert list((run.state / "pids").glob("*.json")) == []
    assert _alive(run.pids) == []
    ports = re.findall(r"^redis: .* at 127\.0\.0\.1:(\d+);", run.output, re.M)
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        assert not any(f"127.0.0.1:{port}" in cmdline for port in ports), cmdline


# -- the command against a real Redis -------------------------------------------------------


@pytest.mark.slow
def test_hang_shows_where_the_import_is_stuck_and_on_what(runs: list[HangRun], state: Path) -> None:
    run = start(runs, state, "eager.tasks", "--timeout", "2s")
    connect = run.wait_for("network: connect 127.0.0.1:")
    run.snapshot_pids()
    assert len(run.pids) >= 2  # redis-server, the probe child
    hangs = run.wait_for("HANGS:")
    assert hangs - connect > 0.5  # printed live, long before the timeout, not with the verdict
    assert run.finish() == 1, run.output
    out = run.output
    proxy, real = re.search(
        r"^redis: embedded \S+ at (127\.0\.0\.1:\d+); the target reaches it through "
        r"(127\.0\.0\.1:\d+), fault: hang$",
        out,
        re.M,
    ).group(2, 1)  # type: ignore[union-attr]
    line = line_of("tasks")
    assert re.search(
        rf"^ +\d+\.\d{{3}} s  network: connect {proxy} \(redis, via signoff's fault proxy to "
        rf"{real}\) from eager/tasks.py:{line}$",
        out,
        re.M,
    ), out
    assert "HANGS: import eager.tasks still running after 2.000 s" in out
    assert f"stuck at eager/tasks.py:{line} in <module>" in out
    assert f"waiting on {proxy} (redis, via signoff's fault proxy to {real})" in out
    assert re.search(rf"^  127\.0\.0\.1:\d+ -> {proxy} ESTABLISHED \(redis", out, re.M), out
    assert "stacks of every thread at the deadline:" in out
    assert re.search(r"^Thread 0x[0-9a-f]+ \[MainThread\]", out, re.M), out
    assert f'eager/tasks.py", line {line} in <module>' in out
    assert "Traceback" not in out
    assert_nothing_left(run)


@pytest.mark.slow
def test_stack_printed_within_the_timeout_plus_a_second(
    runs: list[HangRun], state: Path, tmp_path: Path
) -> None:
    """eager.timed writes the wall time its import started, then hangs in eager.tasks."""
    t0_file = tmp_path / "t0"
    run = start(runs, state, "eager.timed", "--timeout", "2s", HANG_T0_FILE=str(t0_file))
    printed = run.wait_for("[MainThread]")
    assert run.finish() == 1, run.output
    late = printed - float(t0_file.read_text()) - 2.0
    print(f"stack printed {late:.3f} s after the timeout")
    assert f"stuck at eager/tasks.py:{line_of('tasks')} in <module>" in run.output
    assert 0 <= late < 5.0  # the contract is 1 s; 5 s so that a loaded machine cannot flake


@pytest.mark.slow
def test_a_callable_that_hangs(runs: list[HangRun], state: Path) -> None:
    run = start(runs, state, "eager.health:ping", "--fault", "redis:hang", "--timeout", "1s")
    assert run.finish() == 1, run.output
    out = run.output
    assert "[call] network: connect 127.0.0.1:" in out
    assert "HANGS: call eager.health:ping still running after 1.000 s" in out
    assert f"stuck at eager/health.py:{line_of('health')} in ping" in out
    assert "waiting on 127.0.0.1:" in out
    assert_nothing_left(run)


@pytest.mark.slow
def test_no_fault_the_import_ends_and_says_how_long(runs: list[HangRun], state: Path) -> None:
    run = start(runs, state, "eager.tasks", "--fault", "none")
    assert run.finish() == 0, run.output
    assert "fault: none" in run.output
    assert re.search(r"^import eager\.tasks ended in \d[\d.]* m?s: returned$", run.output, re.M)
    assert "HANGS" not in run.output
    assert_nothing_left(run)


@pytest.mark.slow
def test_an_import_that_raises_ends_with_the_exception(runs: list[HangRun], state: Path) -> None:
    run = start(runs, state, "eager.tasks", "--fault", "reset")
    assert run.finish() == 0, run.output
    assert re.search(
        r"^import eager\.tasks ended in .*: raised redis\.exceptions\.ConnectionError: .*"
        rf"\(at eager/tasks.py:{line_of('tasks')}\)$",
        run.output,
        re.M,
    ), run.output
    assert_nothing_left(run)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_it_stops_everything(
    runs: list[HangRun], state: Path, sig: signal.Signals
) -> None:
    run = start(runs, state, "eager.tasks", "--timeout", "60s")
    run.wait_for("network: connect")
    run.snapshot_pids()
    run.proc.send_signal(sig)
    assert run.finish() == 130, run.output
    assert "signoff: interrupted" in run.output
    assert "HANGS" not in run.output
    assert_nothing_left(run)


def test_bad_fault_is_a_usage_error_before_anything_starts(state: Path) -> None:
    result = signoff(
        "hang", "eager.tasks", "--claims", str(CLAIMS), "--fault", "redis:sleepy", timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--fault redis:sleepy: expected a fault" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert list((state / "pids").glob("*.json")) == []


def test_bad_claims_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "signoff.toml"
    bad.write_text('[target]\nname = "x"\nservices = ["redis", "mongo"]\n')
    result = signoff("hang", "eager.tasks", "--claims", str(bad), timeout=60)
    assert result.returncode == 2
    assert "target.services" in result.stderr and "Traceback" not in result.stderr


# -- the pieces -------------------------------------------------------------------------------


def test_parse_target() -> None:
    assert parse_target("core.tasks") == HangTarget("core.tasks", None)
    call = parse_target("core.health:Client.ping")
    assert call == HangTarget("core.health", "Client.ping")
    assert call.what == "call core.health:Client.ping"
    for bad in ("", "core.", "core:", ":f", "core:f:g", "core tasks", "1core"):
        with pytest.raises(UsageError, match="MODULE_OR_CALLABLE"):
            parse_target(bad)


def test_parse_faults() -> None:
    both = ["redis", "postgres"]
    assert parse_faults(None, both) == {"redis": Fault("hang"), "postgres": Fault("hang")}
    assert parse_faults([], []) == {}
    assert parse_faults(["none"], both) == {"redis": None, "postgres": None}
    assert parse_faults(["redis:latency:2s"], both) == {
        "redis": Fault("latency", 2.0),
        "postgres": None,
    }
    assert parse_faults(["redis:kill", "postgres:none"], both) == {
        "redis": Fault("kill"),
        "postgres": None,
    }
    assert parse_faults(["refuse"], both) == {"redis": Fault("refuse"), "postgres": Fault("refuse")}
    problems = {
        "redis:sleepy": "expected a fault",
        "postgres:hang": "does not use postgres",
        "mongo:hang": "unknown service 'mongo'",
        "latency": "latency needs a value",
        "slow:fast": "slow:fast",
    }
    for value, message in problems.items():
        with pytest.raises(UsageError, match=re.escape(f"--fault {value}: ")) as info:
            parse_faults([value], ["redis"])
        assert message in str(info.value)
    for values in (["none", "redis:hang"], ["redis:hang", "redis:kill"], ["hang", "redis:kill"]):
        with pytest.raises(UsageError):
            parse_faults(values, ["redis"])
    with pytest.raises(UsageError, match="uses no services"):
        parse_faults(["hang"], [])


def test_resolve_timeout() -> None:
    claims = load_claims(str(CLAIMS))
    assert resolve_timeout(None, claims) == 3.0  # [imports].timeout
    assert resolve_timeout("250ms", claims) == 0.25
    no_imports = claims.model_copy(update={"imports": None})
    assert resolve_timeout(None, no_imports) == 10.0
    for bad in ("0s", "-1s", "soon"):
        with pytest.raises(UsageError, match=f"--timeout {bad}: "):
            resolve_timeout(bad, claims)


def test_addresses_name_the_service_behind_a_proxy() -> None:
    addresses = Addresses()
    addresses.add(41234, "redis, via signoff's fault proxy to 127.0.0.1:6379")
    assert (
        addresses.annotate_detail("connect 127.0.0.1:41234")
        == "connect 127.0.0.1:41234 (redis, via signoff's fault proxy to 127.0.0.1:6379)"
    )
    assert addresses.annotate_detail("getaddrinfo localhost:41234").endswith("127.0.0.1:6379)")
    assert addresses.annotate_detail("connect 127.0.0.1:41235") == "connect 127.0.0.1:41235"
    assert addresses.annotate_detail("connect 10.0.0.1:41234") == "connect 10.0.0.1:41234"
    assert addresses.annotate_socket("127.0.0.1:5 -> 127.0.0.1:41234 ESTABLISHED").endswith(
        "ESTABLISHED (redis, via signoff's fault proxy to 127.0.0.1:6379)"
    )
    assert addresses.annotate_socket("127.0.0.1:41234 LISTEN") == "127.0.0.1:41234 LISTEN"


def test_run_import_hands_each_event_over_while_the_child_runs(state: Path, tmp_path: Path) -> None:
    """runner's on_event: a target connecting to a server that never answers (no Redis needed:
    a listener that accepts in the kernel and never replies). The connect event must arrive
    while the child still runs, and every event exactly once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        target = TargetProcess(
            python=sys.executable,
            pythonpath=(str(HANG_TARGET),),
            env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"},
            cwd=str(tmp_path),
        )
        seen: list[tuple[Event, bool]] = []

        def on_event(event: Event) -> None:
            running = False
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if str(CHILD_SCRIPT) in child.cmdline():
                        running = running or child.status() != psutil.STATUS_ZOMBIE
            seen.append((event, running))

        result = run_import(target, "eager.tasks", timeout=1.5, on_event=on_event)
    assert result.outcome == "hung"
    assert [event for event, _ in seen] == list(result.events)
    connects = [running for event, running in seen if event.detail == f"connect 127.0.0.1:{port}"]
    assert connects == [True]
    assert result.waiting_on == f"127.0.0.1:{port}"
