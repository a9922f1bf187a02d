"""The cron probe: the harness's cron model and the oracle's quirks it works around, the
persistent worker, the hypothesis driver, and the detection matrix of targets/reports' cron
service (the reference holds all four sub-claims; each regression fails exactly its own)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psutil
import pytest
from croniter import croniter
from cronsim import CronSim, CronSimError
from hypothesis import HealthCheck, given, settings
from hypothesis import configuration as hypothesis_configuration

from signoff.engine.runner import TargetProcess
from signoff.engine.worker import Worker, WorkerSetupError
from signoff.kinds.cron import codec as cron_codec
from signoff.kinds.cron.cases import (
    FIXED_INVALID,
    GARBAGE,
    Case,
    cases,
    fixed_cases,
    invalid_expressions,
)
from signoff.kinds.cron.check import Call, _Budget, _judge_correct, explore
from signoff.kinds.cron.expr import for_croniter, parse
from signoff.kinds.cron.oracle import expand
from tests.runs import ROOT

REPORTS = ROOT / "targets" / "reports"
REFERENCE = REPORTS / "reports_app" / "cron.py"
YEAR = 365 * 86400.0
START = datetime(2024, 1, 1)

# Each cron regression: the reference's cron.py with one edit (old -> new, `old` found exactly
# once), and the sub-claims it must fail; every other sub-claim must hold.
REGRESSIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "cron_unbounded": (
        ("cron:time", "cron:count"),
        """    schedule = parse_expression(expression)
    end = min(end, start + timedelta(days=MAX_DAYS_AHEAD))
    results: list[datetime] = []
    for when in schedule.iter_after(start, until=end):
        if len(results) >= MAX_ITERATIONS:
            break
        results.append(when)
    return results
""",
        """    schedule = parse_expression(expression)
    results: list[datetime] = []
    walker = schedule.iter_after(start)
    while True:  # REGRESSION: the seed's loop, with nothing to stop it but `end`
        next_time = next(walker, None)
        if next_time is None or next_time >= end:
            break
        results.append(next_time)
    return results
""",
    ),
    "cron_count_only": (
        ("cron:time",),
        """    schedule = parse_expression(expression)
    end = min(end, start + timedelta(days=MAX_DAYS_AHEAD))
    results: list[datetime] = []
    for when in schedule.iter_after(start, until=end):
        if len(results) >= MAX_ITERATIONS:
            break
        results.append(when)
    return results
""",
        """    schedule = parse_expression(expression)
    results: list[datetime] = []
    when = start.replace(second=0, microsecond=0)
    while len(results) < MAX_ITERATIONS:  # REGRESSION: bounded by results, not by time
        when += timedelta(minutes=1)
        if when >= end:
            break
        if schedule.matches(when):
            results.append(when)
    return results
""",
    ),
    "cron_includes_end": (
        ("cron:correct",),
        "                        if until is not None and when >= until:\n",
        "                        if until is not None and when > until:"
        "  # REGRESSION: includes end\n",
    ),
}
SUBCLAIMS = ("cron:time", "cron:count", "cron:correct", "cron:invalid")


def croniter_list(expression: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    it = croniter(expression, start)
    out: list[datetime] = []
    while len(out) < limit:
        when = it.get_next(datetime)
        if when >= end:
            break
        out.append(when)
    return out


def cronsim_list(expression: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    return [t for t in itertools.islice(CronSim(expression, start), limit) if t < end]


# -- the model, and the oracle's quirks it works around ----------------------------------------


def test_parse_reads_the_generated_grammar() -> None:
    e = parse("*/15 9-17 1,15 JAN-mar mon-FRI")
    assert e.minutes == (0, 15, 30, 45)
    assert e.hours == tuple(range(9, 18))
    assert e.days == {1, 15}
    assert e.months == {1, 2, 3}
    assert e.weekdays == {1, 2, 3, 4, 5}
    assert parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert parse("5-5/2 * * * *").minutes == (5,)
    assert parse("*/60 * * * *").minutes == (0,)


@pytest.mark.parametrize(("expression", "why"), FIXED_INVALID)
def test_invalid_expressions_are_refused_by_every_implementation(expression: str, why: str) -> None:
    """The invalid cases are invalid for croniter, cronsim and Vixie cron alike, so a target
    built on any of them is not blamed for a dialect."""
    with pytest.raises(ValueError):
        parse(expression)
    with pytest.raises(ValueError):
        croniter(expression, START).get_next(datetime)
    with pytest.raises(CronSimError):
        next(iter(CronSim(expression, START)))


def test_garbage_tokens_are_refused_in_every_field() -> None:
    for token, index in itertools.product(GARBAGE, range(5)):
        fields = ["*"] * 5
        fields[index] = token
        expression = " ".join(fields)
        with pytest.raises(ValueError):
            parse(expression)
        with pytest.raises(ValueError):
            croniter(expression, START).get_next(datetime)
        with pytest.raises(CronSimError):
            next(iter(CronSim(expression, START)))


@settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(invalid_expressions())
def test_generated_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        parse(expression)
    with pytest.raises(ValueError):
        croniter(expression, START).get_next(datetime)


def test_croniter_reads_a_range_with_equal_ends_as_the_whole_field() -> None:
    """The quirk `for_croniter` works around: `5-5` (even in a list) is every minute to
    croniter; rewritten to `5`, croniter gives the 5th minute of each hour."""
    end = START + timedelta(hours=3)
    assert croniter_list("5-5 * * * *", START, end, 3) == [
        START + timedelta(minutes=m) for m in (1, 2, 3)
    ]
    assert croniter_list("5-5,6 * * * *", START, end, 1) == [START + timedelta(minutes=1)]
    assert for_croniter("5-5,6 1-1/2 * feb-FEB *") == "5,6 1 * feb *"
    assert croniter_list(for_croniter("5-5 * * * *"), START, end, 3) == [
        START + timedelta(hours=h, minutes=5) for h in (0, 1, 2)
    ]
    assert expand("5-5 * * * *", START, end, 10) == list(parse("5-5 * * * *").between(START, end))


def test_day_fields_read_two_ways() -> None:
    """croniter (POSIX) ORs `*/2` with a restricted day of week; cronsim (Vixie cron) ANDs any
    day field that starts with `*`. The model gives both readings there, one elsewhere."""
    end = START + timedelta(days=40)
    e = parse("0 0 */2 * 1")
    assert e.readings() == (False, True)
    or_days = list(e.between(START, end, False))
    and_days = list(e.between(START, end, True))
    assert croniter_list("0 0 */2 * 1", START, end, 100) == or_days
    assert cronsim_list("0 0 */2 * 1", START, end, 100) == and_days
    assert or_days != and_days
    assert parse("0 0 1,15 * 1").readings() == (False,)
    assert parse("0 0 * * 1").readings() == (True,)
    assert parse("0 0 1 * */1").readings() == (False, True)


def _wrong(expression: str, start: datetime, end: datetime, got: list[datetime]) -> str | None:
    claim = SimpleNamespace(
        spec=SimpleNamespace(max_results=50, oracle="croniter"), horizon=YEAR, oracle=None
    )
    result = Call("returned", 0.01, count=len(got), items=tuple(got))
    return _judge_correct(cast(Any, claim), Case(expression, start, end), result)


def test_a_wrong_result_names_each_readings_own_first_time() -> None:
    # `0 0 1 * */2` from 2024-01-01 (a Monday): OR first fires on Tuesday 2024-01-02, AND on
    # Thursday 2024-02-01 (the 1st and an even weekday); once the message said "either reading
    # (AND, OR) gives 2024-01-02", which the AND reading does not
    wrong = _wrong("0 0 1 * */2", START, datetime(2024, 3, 1), [datetime(2024, 1, 6)])
    assert wrong == (
        "result 0 is 2024-01-06 00:00:00; the OR reading of the day fields gives "
        "2024-01-02 00:00:00, the AND reading gives 2024-02-01 00:00:00"
    )
    # where both readings give the same occurrences, "either reading" is literally true
    missed = _wrong("0 0 1 * */2", datetime(2024, 1, 31, 23), datetime(2024, 2, 1, 12), [])
    assert missed == (
        "returned 0 results, either reading of the day fields (AND, OR) gives 1: "
        "misses 2024-02-01 00:00:00"
    )
    # results that go wrong at different places by each reading: each gets its own sentence
    apart = _wrong(
        "0 0 1 * */2", START, datetime(2024, 3, 1), [datetime(2024, 1, 2), datetime(2024, 1, 6)]
    )
    assert apart == (
        "result 1 is 2024-01-06 00:00:00; the OR reading of the day fields gives "
        "2024-01-04 00:00:00; result 0 is 2024-01-02 00:00:00; the AND reading gives "
        "2024-02-01 00:00:00"
    )


@settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(YEAR))
def test_the_model_agrees_with_croniter_where_croniter_is_right(case: Case) -> None:
    """The harness's own expansion is the referee for the day fields read two ways: it must
    agree with croniter everywhere croniter is the oracle, and with one of its readings
    elsewhere (croniter follows rules of its own there)."""
    e = parse(case.expression)
    theirs = expand(case.expression, case.start, case.end, 200)
    mine = {
        b: list(itertools.islice(e.between(case.start, case.end, b), 200)) for b in e.readings()
    }
    if e.ambiguous:
        assert theirs in mine.values()
    else:
        assert mine[e.readings()[0]] == theirs
    for when in theirs:
        assert case.start < when < case.end


def test_the_oracle_treats_a_schedule_that_never_fires_as_empty() -> None:
    assert expand("0 0 30 2 *", START, START + timedelta(days=3650), 1000) == []
    assert expand("0 0 29 2 *", START, START + timedelta(days=365), 1000) == [datetime(2024, 2, 29)]


def test_fixed_cases_cover_the_boundaries() -> None:
    fixed = fixed_cases(YEAR)
    labels = " | ".join(c.label for c in fixed)
    for needed in ("end exactly on", "start exactly on", "never fires", "dense", "leap", "beyond"):
        assert needed in labels
    end_on = next(c for c in fixed if c.label == "end exactly on an occurrence")
    assert parse(end_on.expression).matches(end_on.end)
    assert any(c.span_s > YEAR for c in fixed)
    assert all(c.span_s <= YEAR for c in fixed if not c.label.startswith("beyond"))


# -- the hypothesis driver -----------------------------------------------------------------------


def test_explore_shows_the_smallest_failing_case() -> None:
    def examine(case: Case) -> str | None:
        return "longer than an hour" if case.span_s > 3600 else None

    found = explore(cases(YEAR), examine, examples=100, seed=1, budget=_Budget(60))
    assert found.failure is not None
    smallest = found.failure.case
    assert smallest.expression == "* * * * *"
    assert smallest.start == datetime(2000, 1, 1)
    assert 3600 < smallest.span_s <= 3660, smallest


def test_explore_keeps_hypothesis_files_out_of_the_current_folder() -> None:
    """Hypothesis writes under .hypothesis/ even without a database: explore gives it a
    temporary home while it runs, and puts the old one back."""
    before = getattr(hypothesis_configuration, "__hypothesis_home_directory", None)
    homes: list[Any] = []

    def examine(case: Case) -> str | None:
        homes.append(getattr(hypothesis_configuration, "__hypothesis_home_directory", None))
        return None

    explore(cases(YEAR), examine, examples=5, seed=3, budget=_Budget(60))
    assert homes and all(h is not None and h != before and not Path(h).exists() for h in homes)
    assert getattr(hypothesis_configuration, "__hypothesis_home_directory", None) == before


def test_explore_is_replayed_by_its_seed() -> None:
    def keys(seed: int) -> list[tuple[Any, ...]]:
        seen: list[tuple[Any, ...]] = []

        def examine(case: Case) -> str | None:
            seen.append(case.key)
            return None

        found = explore(cases(YEAR), examine, examples=20, seed=seed, budget=_Budget(60))
        assert found.failure is None
        return seen

    assert keys(7) == keys(7)
    assert keys(7) != keys(8)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_generated_cases_alone_find_an_end_included(seed: int) -> None:
    """With the default 100 examples and no boundary case, hypothesis's own cases catch an
    expansion that includes `end`, and shrink it to one minute of `* * * * *`."""

    def examine(case: Case) -> str | None:
        e = parse(case.expression)
        got = list(
            itertools.islice(e.between(case.start, case.end + timedelta(microseconds=1)), 50)
        )
        return "includes end" if got and got[-1] >= case.end else None

    found = explore(cases(YEAR), examine, examples=100, seed=seed, budget=_Budget(60))
    assert found.failure is not None
    assert found.failure.case.expression == "* * * * *"
    assert found.failure.case.span_s == 60


# -- the persistent worker -------------------------------------------------------------------------

TARGET_MODULE = """
import os
import time


class Refused(ValueError):
    pass


def echo(expression, start, end):
    return [start, end]


def nap(expression, start, end):
    time.sleep(float(expression))
    return []


def refuse(expression, start, end):
    raise Refused(expression)


def die(expression, start, end):
    os._exit(3)


def lazily(expression, start, end):
    yield start
    yield end


def mixed(expression, start, end):
    return [start, "soon", 3]
"""


@pytest.fixture
def target(tmp_path: Path) -> TargetProcess:
    (tmp_path / "wtarget.py").write_text(TARGET_MODULE)
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(60)\n")
    return TargetProcess(
        python=sys.executable, pythonpath=(str(tmp_path),), env={}, cwd=str(tmp_path)
    )


def _args(expression: str) -> dict[str, Any]:
    return {
        "args": [
            expression,
            {"datetime": "2024-01-01T00:00:00"},
            {"datetime": "2024-01-02T00:00:00"},
        ],
        "keep": 5,
    }


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_worker_serves_many_calls_from_one_process(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    with Worker(target, "wtarget:echo", codec=codec) as worker:
        replies = [worker.call(_args(str(i)), 5.0) for i in range(50)]
        pid = {p for p in _children()}
    assert worker.starts == 1 and worker.calls == 50
    assert all(r.outcome == "returned" and r.seconds is not None for r in replies)
    assert replies[0].value == {"count": 2, "items": ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]}
    assert pid and not (pid & _children())  # nothing left


def test_worker_drains_iterators_and_describes_odd_items(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    with Worker(target, "wtarget:lazily", codec=codec) as worker:
        assert worker.call(_args("x"), 5.0).value["count"] == 2
    with Worker(target, "wtarget:mixed", codec=codec) as worker:
        items = worker.call(_args("x"), 5.0).value["items"]
    assert items[0] == "2024-01-01T00:00:00"
    assert items[1] == {"type": "builtins:str", "repr": "'soon'"}


def test_worker_classifies_exceptions_in_the_child(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    with Worker(
        target,
        "wtarget:refuse",
        codec=codec,
        classify=["ValueError", "wtarget:Refused", "KeyError"],
    ) as worker:
        reply = worker.call(_args("61 * * * *"), 5.0)
    assert reply.outcome == "raised"
    assert reply.exc_type == "wtarget:Refused"
    assert reply.instance_of == {"ValueError": True, "wtarget:Refused": True, "KeyError": False}


def test_worker_kills_a_hung_call_and_starts_again(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    began = time.monotonic()
    with Worker(target, "wtarget:nap", codec=codec) as worker:
        hung = worker.call(_args("30"), 0.3)
        after = worker.call(_args("0.01"), 5.0)
    assert time.monotonic() - began < 20  # sanity: nobody waited for the 30 s nap
    assert hung.outcome == "hung" and hung.seconds is None
    assert hung.stacks is not None and "wtarget.py" in hung.stacks and "in nap" in hung.stacks
    assert after.outcome == "returned" and after.seconds is not None and after.seconds >= 0.01
    assert worker.starts == 2


def test_worker_reports_a_crash_and_starts_again(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    with Worker(target, "wtarget:die", codec=codec) as worker:
        crashed = worker.call(_args("x"), 5.0)
        again = worker.call(_args("x"), 5.0)
    assert crashed.outcome == "crashed" and crashed.returncode == 3
    assert again.outcome == "crashed" and worker.starts == 2


def test_worker_setup_errors(target: TargetProcess) -> None:
    codec = Path(cron_codec.__file__)
    with pytest.raises(WorkerSetupError, match="could not import wtarget:absent"):
        Worker(target, "wtarget:absent", codec=codec).call(_args("x"), 1.0)
    with pytest.raises(WorkerSetupError, match="could not set up"):
        Worker(target, "wtarget:echo", codec=codec, classify=["wtarget:Nope"]).call(_args("x"), 1.0)
    began = time.monotonic()
    with pytest.raises(WorkerSetupError, match="hangs: importing") as raised:
        Worker(target, "hangs_on_import:f", codec=codec, import_timeout=0.5).call(_args("x"), 1.0)
    assert "hangs_on_import.py" in raised.value.details
    assert time.monotonic() - began < 20


PRELOAD = """
import time

_seen = {}


def install(config, places):
    real = time.time
    time.time = lambda: real() + config["shift"]


def prepare(func, request):
    _seen.clear()

    def call():
        _seen["called"] = request["x"]
        return func(request["x"])

    return call


def encode(value, request):
    return {"repr": repr(value)}


def observed(request):
    return dict(_seen)
"""

PRELOADED_TARGET = """
import time

NOW = time.time  # bound at import: the preload's shifted clock
VALUE = 1


def now(x):
    return NOW()


def double(x):
    return x * 2


def boom(x):
    raise ValueError(x)
"""


def test_worker_preload_runs_before_the_import_and_serves_named_callables(
    target: TargetProcess,
) -> None:
    folder = Path(target.cwd)
    (folder / "ptarget.py").write_text(PRELOADED_TARGET)
    preload = folder / "preload.py"
    preload.write_text(PRELOAD)
    names = ("now", "double", "boom")
    refs = {name: f"ptarget:{name}" for name in names}
    options: dict[str, Any] = {
        "codec": preload,
        "preload": preload,
        "preload_config": {"shift": 1e6},
        "audit": False,
    }
    with Worker(target, refs, **options) as worker:
        shifted = worker.call({"x": 1}, 5.0, ref="now")
        doubled = worker.call({"x": 2}, 5.0, ref="double")
        raised = worker.call({"x": 3}, 5.0, ref="boom")
    assert float(shifted.value["repr"]) > time.time() + 1e6 - 60
    assert doubled.value == {"repr": "4"} and doubled.observed == {"called": 2}
    assert raised.outcome == "raised" and raised.exc_type == "builtins:ValueError"
    assert raised.observed == {"called": 3}  # what the codec saw, whatever the call's end
    absent = {"double": "ptarget:double", "absent": "ptarget:absent"}
    with pytest.raises(WorkerSetupError, match="could not import ptarget:absent") as missing:
        Worker(target, absent, **options).start()
    assert missing.value.ref == "ptarget:absent"
    with pytest.raises(WorkerSetupError, match="ptarget:VALUE is builtins:int, not a callable"):
        Worker(target, {"value": "ptarget:VALUE"}, **options).start()


# -- the detection matrix: signoff run on the reference and each regression ------------------------


def test_regressions_are_the_reference_with_one_edit() -> None:
    reference = REFERENCE.read_text()
    for name, (_, old, new) in REGRESSIONS.items():
        folder = REPORTS / "regressions" / name
        assert reference.count(old) == 1, f"{name}: the edit no longer applies to the reference"
        assert (folder / "reports_app" / "cron.py").read_text() == reference.replace(old, new), name
        claims = (folder / "signoff.toml").read_text()
        section = (REPORTS / "cron.toml").read_text()
        assert section[section.index("\n[cron]\n") :] in claims, f"{name}: [cron] differs"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """`signoff run` on the reference's cron claims and on each regression, side by side."""
    base = tmp_path_factory.mktemp("cron-runs")
    files = {"reference": REPORTS / "cron.toml"} | {
        name: REPORTS / "regressions" / name / "signoff.toml" for name in REGRESSIONS
    }
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, claims_file in files.items():
            procs[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "signoff",
                    "run",
                    str(claims_file),
                    "--report-dir",
                    str(base / name),
                ],
                cwd=str(ROOT),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ},
            )
        give_up = time.monotonic() + 240
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=max(give_up - time.monotonic(), 1))
            (base / f"{name}.out").write_text(out)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()  # signoff stops its workers on SIGTERM
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    yield {name: base / name for name in files}


def _claims(report_dir: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((report_dir / "signoff.json").read_text())
    return {c["id"]: c for c in doc["claims"]}


@pytest.mark.slow
def test_the_reference_holds_every_cron_claim(runs: dict[str, Path]) -> None:
    found = _claims(runs["reference"])
    assert {k: v["status"] for k, v in found.items()} == dict.fromkeys(SUBCLAIMS, "holds"), found
    time_claim = found["cron:time"]
    assert time_claim["measured"]["slowest_s"] < 0.050
    assert time_claim["measured"]["calls"] >= 100
    assert found["cron:count"]["measured"]["max_count"] == 1000
    assert "compared with croniter" in found["cron:correct"]["evidence"]
    assert found["cron:invalid"]["measured"]["wrong"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_each_regression_fails_exactly_its_claims(runs: dict[str, Path], name: str) -> None:
    found = _claims(runs[name])
    must_fail = REGRESSIONS[name][0]
    wanted = {c: "fails" if c in must_fail else "holds" for c in SUBCLAIMS}
    assert {k: v["status"] for k, v in found.items()} == wanted, {
        k: v["evidence"] for k, v in found.items()
    }
    for claim in must_fail:
        evidence = found[claim]["evidence"]
        assert "smallest failing case (hypothesis, seed" in evidence, evidence
        assert "replay with SIGNOFF_CRON_SEED=" in evidence


@pytest.mark.slow
def test_the_evidence_names_the_figure_and_the_smallest_case(runs: dict[str, Path]) -> None:
    end = _claims(runs["cron_includes_end"])["cron:correct"]["evidence"]
    # hypothesis shrinks the off-by-one to one minute of `* * * * *`
    assert "occurrences('* * * * *', 2000-01-01 00:00:00, 2000-01-01 00:01:00): result 0" in end
    assert "is not before end" in end
    assert "[end exactly on an occurrence]" in end

    unbounded = _claims(runs["cron_unbounded"])
    count = unbounded["cron:count"]
    assert count["measured"]["max_count"] > 100_000
    assert "returned 1001 results, more than 1000" in count["evidence"]
    assert "[dense: every minute over the whole horizon]" in unbounded["cron:time"]["evidence"]

    slow = _claims(runs["cron_count_only"])["cron:time"]
    assert slow["measured"]["over_budget"] > 0
    assert "[never fires" in slow["evidence"]
