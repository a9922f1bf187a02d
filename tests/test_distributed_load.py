"""Distributed [[load]]: workers send their measurements to the master over Locust's message
channel (raw times: the merge has no error), the master writes them where a local run's are,
and a worker that saturates or is lost makes the claim `error`, naming it.

The unit tests feed the master's side (`Receiver`) batches as a worker makes them, through
msgpack as Locust sends them. The slow ones run `signoff load --master` and two
`signoff worker` processes over loopback (the protocol they would use across machines): one
verdict, the merged count equal to what the workers say they sent, the percentiles equal to
those computed here from every received time; and one worker killed mid-run: `error`, named.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest

from signoff.claims.model import LoadClaim
from signoff.cli import main
from signoff.errors import UsageError
from signoff.kinds.load.check import (
    LocustRun,
    _problems,
    flow_file,
    master_of,
    parse_address,
    worker_argv,
)
from signoff.kinds.load.distributed import (
    MESSAGE,
    SILENT_AFTER,
    USERS_TAIL_BYTES,
    Receiver,
    combine_loads,
    lost_words,
    make_batch,
    merged_users,
    read_users,
    read_workers,
    users_now,
    worker_label,
    worker_load,
    workers_users,
)
from signoff.kinds.load.progress import locust_progress
from signoff.kinds.load.stats import Generator, Users, by_name, read_times, users_from_counts
from signoff.services.base import free_port
from tests.runs import ROOT, claims

LOAD_TARGET = Path(__file__).resolve().parent / "data" / "load_target"


def _wire(batch: dict[str, Any]) -> dict[str, Any]:
    """A batch as the master gets it: Locust's messages are msgpack."""
    data = msgpack.loads(msgpack.dumps(batch), raw=False)
    assert isinstance(data, dict)
    return data


def _rows(n: int, name: str, start: float, step_ms: float) -> list[list[Any]]:
    return [[start + i * 0.01, name, "GET", 1.0 + i * step_ms, i % 10 != 0] for i in range(n)]


# -- the master's side, without Locust -------------------------------------------------------


def test_the_merge_of_two_workers_is_exact_and_counts_what_their_reports_covered(
    tmp_path: Path,
) -> None:
    receiver = Receiver(tmp_path)
    one = _rows(30, "/x", 1000.0, 0.37)
    two = _rows(20, "/x", 1000.0, 1.13) + _rows(5, "/y", 1000.0, 2.0)
    # worker 1's clock is 5 s behind the master's; worker 2's is on time
    for i, rows in enumerate((one[:20], one[20:])):
        batch = make_batch(
            pid=11,
            host="h1",
            now=1000.5 + i,
            times=rows,
            lag=[[1000.4, 3.0]],
            cpu=[],
            users=3,
            sent=20 + 10 * i,
        )
        receiver.receive("id-1", 0, _wire(batch), now=1005.5 + i + 0.002 * (1 - i))
    receiver.reported("id-1", 0, 20)  # its last report came before its last batch
    batch = make_batch(
        pid=12, host="h2", now=1001.0, times=two, lag=[], cpu=[[1001.0, 42.0]], users=2, sent=25
    )
    receiver.receive("id-2", 1, _wire(batch), now=1001.001)
    receiver.reported("id-2", 1, 25)
    (tmp_path / "reported-1.json").write_text(json.dumps(receiver.summary()))

    assert sorted(p.name for p in tmp_path.glob("times-*")) == [
        "times-worker-1.jsonl",
        "times-worker-2.jsonl",
    ]
    times = read_times(tmp_path)
    assert (len(times.requests), times.unreported, times.distributed) == (45, 10, True)
    # the smallest difference seen so far is taken off: the rows are on the master's clock,
    # give or take the quickest delivery (2 ms in the first batch here, none in the second)
    lines = (tmp_path / "times-worker-1.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["t"] == pytest.approx(1005.002, abs=1e-6)
    assert json.loads(lines[20])["t"] == pytest.approx(1005.2, abs=1e-6)
    # the merged percentiles are those of one process that recorded the same requests
    counted = one[:20] + two
    merged = by_name(times.requests)
    for name in ("/x", "/y"):
        ms = sorted(r[3] for r in counted if r[1] == name)
        for key, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
            assert merged[name].seconds[key] == ms[max(1, math.ceil(p / 100 * len(ms))) - 1] / 1000
    assert merged["/x"].count == 40 and merged["/x"].failures == 4

    workers = read_workers(tmp_path, 0.0, 2000.0)
    assert [(w.label, w.host, w.pid, w.sent, w.received, w.reported) for w in workers] == [
        ("worker-1", "h1", 11, 30, 30, 20),
        ("worker-2", "h2", 12, 25, 25, 25),
    ]
    assert workers[0].load.ticks == 2 and workers[1].load.peak_cpu == 42.0
    assert workers[0].words() == "worker-1 (host h1, pid 11)"


def test_a_batch_is_small_lists_and_survives_msgpack() -> None:
    batch = make_batch(
        pid=1,
        host="h",
        now=2.5,
        times=[(1.0, "/a", "GET", 3.25, True)],
        lag=[(1.0, 0.5)],
        cpu=[(1.0, 12.5)],
        users=4,
        sent=1,
    )
    assert _wire(batch) == batch
    assert batch["times"] == [[1.0, "/a", "GET", 3.25, True]]
    assert MESSAGE == "signoff_times"
    assert worker_label(0) == "worker-1"


def test_the_masters_lines_are_what_json_would_write(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    rows = [
        [10.123456, 'GET /q?a="b"', "GET", 3.25, True],
        [10.5, "/ünï", "POST", 7, False],  # an int time, a name JSON must escape
        [10.75, "job", "JOB", float("nan"), False],
    ]
    batch = make_batch(pid=1, host="h", now=10.0, times=rows, lag=[], cpu=[], users=1, sent=3)
    receiver.receive("a", 0, _wire(batch), now=10.0)
    receiver.flush()
    lines = (tmp_path / "times-worker-1.jsonl").read_text().splitlines()
    got = [json.loads(line) for line in lines]
    assert got[:2] == [
        {"t": 10.1235, "n": 'GET /q?a="b"', "m": "GET", "ms": 3.25, "ok": True},
        {"t": 10.5, "n": "/ünï", "m": "POST", "ms": 7, "ok": False},
    ]
    assert math.isnan(got[2]["ms"])
    assert len(read_times(tmp_path).requests) == 3


def test_a_lost_or_saturated_worker_is_named(tmp_path: Path) -> None:
    busy = worker_load([(float(t), 99.0) for t in range(10)], [])
    calm = worker_load([(float(t), 10.0) for t in range(10)], [1.0] * 10)
    assert busy.saturated_run and not calm.saturated_run
    total = combine_loads([calm, busy])
    assert (total.samples, total.peak_cpu, total.ticks) == (20, 99.0, 10)

    receiver = Receiver(tmp_path)
    receiver.receive(
        "a",
        0,
        make_batch(pid=7, host="h", now=1.0, times=[], lag=[], cpu=[], users=5, sent=0),
        now=1.0,
    )
    receiver.worker("a", 0).lost = lost_words("missing", 6.04)
    receiver.worker("b", 1).lost = lost_words(None, 7.0, silent_from=2.5)
    receiver.worker("c", 2).lost = lost_words(None, 3.0)
    (tmp_path / "reported-1.json").write_text(json.dumps(receiver.summary()))
    workers = read_workers(tmp_path, None, None)
    run = LocustRun(folder=tmp_path, prefix=tmp_path / "locust")
    users = Users(wanted=10, peak=10, reached_at=1.0)
    problems = _problems(run, [object()], [("worker-2 (host h, pid 8)", busy)], users, workers)
    assert problems[0].startswith("the load generator saturated: worker-2 (host h, pid 8) was ")
    assert problems[1:] == [
        "worker-1 (host h, pid 7) was lost during the test: it stopped sending heartbeats: "
        "Locust marked it missing 6.0 s into the test; its users stopped and its requests "
        "after its last report are not counted",
        "worker-2 was lost during the test: it sent no measurement after 2.5 s into the test "
        "(none for 4.5 s); its users stopped and its requests after its last report are not "
        "counted",
        "worker-3 was lost during the test: it left the master 3.0 s into the test; its users "
        "stopped and its requests after its last report are not counted",
    ]
    assert _problems(run, [object()], [("a Locust process", Generator())], users, []) == []


def _users_batch(now: float, users: int) -> dict[str, Any]:
    return _wire(
        make_batch(pid=1, host="h", now=now, times=[], lag=[], cpu=[], users=users, sent=0)
    )


def test_the_master_writes_each_batchs_users_on_its_own_clock(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    # the worker's clock is 5 s behind; its second batch was delivered quicker (the offset
    # is the smallest difference seen so far)
    receiver.receive("a", 0, _users_batch(100.0, 4), now=105.2)
    receiver.receive("a", 0, _users_batch(100.5, 8), now=105.6)
    receiver.receive("b", 1, _users_batch(200.0, 0), now=200.0)
    receiver.flush()
    assert read_users(tmp_path) == {
        "worker-1": [(105.2, 4), (105.6, 8)],
        "worker-2": [(200.0, 0)],
    }
    assert receiver.worker("a", 0).users_peak == 8


def test_the_workers_counts_add_up_as_step_functions() -> None:
    one = [(0.5, 5), (1.0, 10), (1.5, 10)]
    two = [(0.7, 3), (1.0, 6), (1.6, 6)]
    merged = merged_users({"worker-1": one, "worker-2": two}, silent_after=10.0)
    # worker 2's first count joins worker 1's latest; at 1.0 both change: one point, 16; and
    # silent_after past each one's last batch, its users are no longer counted
    assert merged == [(0.5, 5), (0.7, 8), (1.0, 16), (1.5, 16), (1.6, 16), (11.5, 6), (11.6, 0)]
    # a worker that went silent counts none of its users once silent_after has passed
    silent = merged_users({"worker-1": [(0.0, 5), (0.5, 5)], "worker-2": [(0.0, 5), (9.0, 5)]}, 3)
    assert silent == [(0.0, 10), (0.5, 10), (3.0, 5), (3.5, 0), (9.0, 5), (12.0, 0)]
    assert merged_users({}) == []


def test_the_live_display_reads_the_workers_users_at_now_not_the_masters_history(
    tmp_path: Path,
) -> None:
    receiver = Receiver(tmp_path)
    receiver.receive("a", 0, _users_batch(100.0, 4), now=100.0)
    receiver.receive("b", 1, _users_batch(100.2, 6), now=100.2)
    receiver.flush()
    assert users_now(tmp_path, 99.0) is None
    assert users_now(tmp_path, 100.1) == 4
    assert users_now(tmp_path, 100.3) == 10
    # a worker silent for SILENT_AFTER is lost with its users; the count drops at that time
    assert users_now(tmp_path, 100.0 + SILENT_AFTER + 0.1) == 6
    history = tmp_path / "history.csv"
    history.write_text(
        "Timestamp,User Count,Type,Name,Total Request Count,Total Failure Count\n"
        "1,2,,Aggregated,312,0\n"
    )
    assert locust_progress(history) == "312 requests, 2 users"
    assert locust_progress(history, users_now(tmp_path, 100.3)) == "312 requests, 10 users"
    # a long run: only the files' last lines are read, with the same answer
    for i in range(1, 2000):
        receiver.receive("a", 0, _users_batch(100.0 + i / 2, 4 + i % 3), now=100.0 + i / 2)
    receiver.flush()
    assert (tmp_path / "users-worker-1.jsonl").stat().st_size > 4 * USERS_TAIL_BYTES
    assert users_now(tmp_path, 1099.6) == 4 + 1999 % 3  # worker 2 is long silent


def test_the_goal_from_the_workers_counts_is_measured_from_the_tests_start(
    tmp_path: Path,
) -> None:
    # what the repro showed: 20 users at spawn rate 10, all running ~1 s in on the workers'
    # counts, while Locust's history (every 3 s from the workers' reports) showed them at 6 s
    start = 1000.0
    for label, offset in (("worker-1", 0.0), ("worker-2", 0.2)):
        rows = [(start + offset + 0.5 * i, min(10, 5 * (i + 1))) for i in range(13)]
        text = "".join(json.dumps({"t": t, "users": n}) + "\n" for t, n in rows)
        (tmp_path / f"users-{label}.jsonl").write_text(text + '{"t": 10')  # a cut last line
    users = workers_users(tmp_path, 20, 6.0, start)
    assert users is not None and users.source == "workers"
    assert users.held and users.reached_at == 0.7 and users.peak == 20 and users.window == 4.0
    assert users.rows == 26 + 2  # and each worker's users gone SILENT_AFTER past its last batch
    # the same rules as the history's: a drop within the window counts, one after it not
    counts = [(start + t, n) for t, n in ((1.0, 20), (2.0, 12), (3.0, 20), (4.5, 0))]
    dropped = users_from_counts(counts, 20, 6.0, start, source="workers")
    assert dropped.reached_at == 1.0 and dropped.dropped_to == 12 and not dropped.held
    late = users_from_counts([(start + 1, 10), (start + 4.2, 20)], 20, 6.0, start)
    assert late.reached_at is None and late.full_at == 4.2 and late.peak == 20
    assert workers_users(tmp_path / "none", 20, 6.0, start) is None


def test_the_evidence_says_the_goal_came_from_the_workers_counts(tmp_path: Path) -> None:
    run = LocustRun(folder=tmp_path, prefix=tmp_path / "locust")
    load = [("a Locust process", Generator())]
    late = Users(wanted=20, peak=20, full_at=6.0, window=4.0, source="workers")
    assert _problems(run, [object()], load, late, []) == [
        "the concurrency goal was reached too late: all 20 users ran only 6 s into the test, "
        "by the workers' own counts, which must show them within its first 4 s"
    ]
    dropped = Users(wanted=20, peak=20, reached_at=1.0, dropped_to=10, source="workers")
    assert _problems(run, [object()], load, dropped, []) == [
        "the concurrency goal was not held: 20 users ran, then only 10 (by the workers' own counts)"
    ]
    history = Users(wanted=20, peak=20, full_at=6.0, window=4.0)
    assert "6 s into Locust's stats history" in _problems(run, [object()], load, history, [])[0]


# -- addresses, command lines, the flow file -------------------------------------------------


def test_the_masters_address_stays_on_loopback_unless_allowed() -> None:
    assert parse_address("127.0.0.1:5557", "--bind", False) == ("127.0.0.1", 5557)
    assert parse_address("[::1]:6000", "--bind", False) == ("::1", 6000)
    assert parse_address("localhost:7", "--bind", False) == ("localhost", 7)
    for bad in ("127.0.0.1", "127.0.0.1:x", ":5557", "127.0.0.1:0"):
        with pytest.raises(UsageError, match="expected HOST:PORT"):
            parse_address(bad, "--bind", False)
    with pytest.raises(UsageError, match="do not authenticate each other"):
        parse_address("0.0.0.0:5557", "--bind", False)
    assert parse_address("10.1.2.3:5557", "--master", True) == ("10.1.2.3", 5557)


def test_command_lines_of_a_master_by_hand_and_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = LoadClaim.model_validate({"name": "x", "users": 4, "duration": 3, "locustfile": "/a.py"})
    assert master_of(spec) is None
    monkeypatch.setenv("SIGNOFF_LOAD_MASTER", "127.0.0.1:6001")
    monkeypatch.setenv("SIGNOFF_LOAD_EXPECT_WORKERS", "3")
    master = master_of(spec)
    assert master is not None and (master.host, master.port, master.workers) == (
        "127.0.0.1",
        6001,
        3,
    )
    assert master.by_hand and master.wait >= 60
    argv = worker_argv("127.0.0.1", 6001)
    assert argv[argv.index("-f") + 1] == "-"  # the locustfiles come from the master
    assert argv[-4:] == ["--master-host", "127.0.0.1", "--master-port", "6001"]
    assert "--exit-code-on-error" in argv  # a failed request is the claim's business
    files = worker_argv("127.0.0.1", 6001, "/a.py,/p.py", quiet=False)
    assert files[files.index("-f") + 1] == "/a.py,/p.py" and "--skip-log-setup" not in files


def test_the_flow_file_carries_the_claims_flow(tmp_path: Path) -> None:
    flow = {"start": "POST /jobs", "id": "task_id", "status": "GET /jobs/{id}", "done": {"s": 1}}
    spec = LoadClaim.model_validate({"name": "j", "users": 1, "duration": 1, "flow": flow})
    tree = ast.parse(flow_file(spec, tmp_path).read_text())
    assigned = next(n for n in tree.body if isinstance(n, ast.Assign))
    sent = json.loads(ast.literal_eval(assigned.value))
    assert spec.flow is not None and sent == spec.flow.model_dump(mode="json")
    imported = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert imported[-1].module == "signoff._loadtests.async_endpoints"


def test_the_command_line_refuses_what_does_not_go_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(LOAD_TARGET / "latency.toml")
    assert main(["load", path, "--bind", "127.0.0.1:5557"]) == 2
    assert main(["load", path, "--master"]) == 2
    assert main(["load", path, "--master", "--ui", "--expect-workers", "1"]) == 2
    assert main(["load", path, "--master", "--expect-workers", "1", "--host", "ftp://x"]) == 2
    assert (
        main(["load", path, "--master", "--expect-workers", "1", "--host", "http://[2001:db8::1]"])
        == 2
    )
    assert main(["worker", "--master", "192.0.2.1:5557"]) == 2
    assert main(["worker", "--master", "127.0.0.1:5557", "-f", str(tmp_path / "none.py")]) == 2
    err = capsys.readouterr().err
    assert "--bind, --expect-workers and --host go with --master" in err
    assert "--expect-workers N (at least 1) is needed" in err
    assert "--master and --ui do not go together" in err
    assert "'192.0.2.1' is not a loopback address" in err
    assert "no such file" in err
    assert "--host: expected an http(s) URL" in err and "'2001:db8::1' is not a loopback" in err
    assert "SIGNOFF_LOAD_MASTER" not in os.environ


# -- real runs: a master and two `signoff worker` over loopback ------------------------------

CLAIMS = """
[target]
name = "distributed"
pythonpath = [{pythonpath}]

[target.server]
app = "loadapp.app:app"
ready = "/health"

[[load]]
name = "jobs from two workers"
users = 10
duration = "{duration}"
latency = {{ "job" = {{ p95 = "2s" }} }}

[load.flow]
start = "POST /jobs"
id = "task_id"
status = "GET /jobs/{{id}}"
done = {{ status = "complete" }}
poll = "100ms"
"""


def _spawn(argv: list[str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "signoff", *argv],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def _end(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _distributed(
    tmp_path: Path, duration: str, kill_one_after: float | None = None
) -> tuple[dict[str, Any], list[str], int | None]:
    """Run the claim with a master and two workers: (the claim, the workers' outputs, the
    pid of the Locust worker killed, if one was)."""
    path = tmp_path / "c.toml"
    path.write_text(CLAIMS.format(pythonpath=json.dumps(str(LOAD_TARGET)), duration=duration))
    report = tmp_path / "report"
    address = f"127.0.0.1:{free_port()}"
    procs = [
        _spawn(
            [
                "load",
                str(path),
                "--master",
                "--bind",
                address,
                "--expect-workers",
                "2",
                "--report-dir",
                str(report),
            ],
            tmp_path / "master.out",
        )
    ]
    killed = None
    try:
        for i in range(2):
            out = tmp_path / f"worker-{i}.out"
            procs.append(_spawn(["worker", "--master", address, "--runs", "1"], out))
        if kill_one_after is not None:
            deadline = time.monotonic() + 60
            while not list(report.glob("load/*/started-*")) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(kill_one_after)
            locust = psutil.Process(procs[2].pid).children()
            assert locust, "the worker had no Locust process"
            killed = locust[0].pid
            os.kill(killed, signal.SIGKILL)
        assert procs[0].wait(120) in (0, 1)
        for proc in procs[1:]:
            proc.wait(30)
    finally:
        _end(procs)
    outputs = [(tmp_path / f"worker-{i}.out").read_text() for i in range(2)]
    found = claims(report)
    assert len(found) == 1, (tmp_path / "master.out").read_text()
    claim = next(iter(found.values()))
    for worker in claim["measured"]["workers"].values():
        assert not psutil.pid_exists(worker["pid"]) or psutil.Process(worker["pid"]).status() == (
            psutil.STATUS_ZOMBIE
        ), "a Locust worker outlived the run"
    claim["folder"] = next(report.glob("load/*/"))
    return claim, outputs, killed


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@pytest.mark.slow
def test_a_master_and_two_workers_give_one_verdict_with_exact_figures(tmp_path: Path) -> None:
    claim, outputs, _ = _distributed(tmp_path, "5s")
    assert claim["status"] == "holds", claim["evidence"]
    measured = claim["measured"]
    workers = measured["workers"]
    assert sorted(workers) == ["worker-1", "worker-2"]
    # what each worker said it sent (its own output) is what the master received and counted
    said = sorted(int(n) for out in outputs for n in re.findall(r"sent (\d+) request times", out))
    assert len(said) == 2 and sorted(w["sent"] for w in workers.values()) == said, outputs
    assert all(w["received"] == w["sent"] for w in workers.values())
    counted = sum(s["count"] for s in measured["latency_s"].values())
    assert counted + measured.get("unreported_requests", 0) == sum(said) > 0
    assert measured["counts_match_locust_csv"] is True
    # the users of both workers make the goal
    assert measured["users"]["peak"] == 10 and measured["users"]["held"] is True
    assert sum(w["users_peak"] for w in workers.values()) == 10
    # ... by the workers' own counts (every batch's), measured from the master's start mark
    assert sorted(read_users(claim["folder"])) == sorted(workers)
    started = float(next(claim["folder"].glob("started-*")).read_text().split()[0])
    users = workers_users(claim["folder"], 10, 5.0, started)
    assert users is not None and users.reached_at == measured["users"]["reached_after_s"]
    # the percentiles: nearest rank of every time received, as far as each report covered
    rows: list[dict[str, Any]] = []
    for label, worker in workers.items():
        lines = (claim["folder"] / f"times-{label}.jsonl").read_text().splitlines()
        assert len(lines) == worker["received"]
        rows += [json.loads(line) for line in lines[: worker["counted"]]]
    for name, figures in measured["latency_s"].items():
        ms = [r["ms"] for r in rows if r["n"] == name]
        assert figures["count"] == len(ms)
        for key, p in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("max", 100)):
            assert figures[key] == round(_nearest_rank(ms, p) / 1000, 5), (name, key)
    assert "error 0" in measured["merge"]


@pytest.mark.slow
def test_a_worker_killed_mid_run_makes_the_claim_error_naming_it(tmp_path: Path) -> None:
    claim, _, killed = _distributed(tmp_path, "7s", kill_one_after=1.5)
    assert claim["status"] == "error", claim["evidence"]
    lost = [w for w in claim["measured"]["workers"].items() if w[1]["lost"]]
    assert [w["pid"] for _, w in lost] == [killed], claim["measured"]["workers"]
    label = lost[0][0]
    assert re.search(
        rf"{label} \(host [^,]+, pid {killed}\) was lost during the test", claim["evidence"]
    ), claim["evidence"]
