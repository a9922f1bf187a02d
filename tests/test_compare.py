"""`signoff compare OLD NEW` and `signoff run --baseline OLD`: per claim better, worse,
unchanged, new or gone, a figure counting as worse only beyond its noise. Fast tests of the rule
on synthetic signoff.json documents, and two real ones: five runs of the same claims compare as
unchanged in all ten pairs; a run with one import made slower compares worse on that claim
alone, exit 1."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signoff import cli
from signoff.errors import UsageError
from signoff.report.compare import (
    Comparison,
    compare_documents,
    compare_runs,
    comparison_for,
    load_run,
)
from signoff.report.compare_figures import _order_statistic_halfwidth
from signoff.report.markdown import render_markdown
from signoff.report.run_info import RunInfo
from signoff.report.terminal import render_comparison
from signoff.verdict import Verdict
from tests.runs import TINY, signoff

Claim = dict[str, Any]


def _doc(*claims: Claim, target: str = "t", python: str = "3.11.7") -> dict[str, Any]:
    return {
        "target": target,
        "verdict": "holds",
        "started": "2026-12-02T12:00:00Z",
        "environment": {"python": python, "services": {}},
        "claims": list(claims),
    }


def _import(module: str, runs: list[float], status: str = "holds") -> Claim:
    median = sorted(runs)[len(runs) // 2]
    return {
        "id": f"import:{module}",
        "kind": "import",
        "status": status,
        "budget": {"median_s": 1.0, "timeout_s": 10.0},
        "measured": {"median_s": median, "runs_s": runs},
        "evidence": "" if status == "holds" else f"median {median} s over budget",
    }


def _timeout(name: str, seconds: float, tolerance: float = 0.15, status: str = "holds") -> Claim:
    return {
        "id": f"timeout:{name}",
        "kind": "timeout",
        "status": status,
        "budget": {"within_s": 1.5, "tolerance_s": tolerance, "fault": "redis hang"},
        "measured": {"seconds": seconds, "outcome": "raised"},
        "evidence": "",
    }


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
    return {c.id: c.change for c in compare_documents(old, new, "old").changes}


_RUNS = [
    [0.200, 0.210, 0.205, 0.230, 0.201],
    [0.340, 0.336, 0.352, 0.331, 0.345],
    [0.250, 0.247, 0.262, 0.255, 0.251],
    [0.120, 0.118, 0.125, 0.121, 0.119],
    [0.050, 0.052, 0.049, 0.051, 0.050],
    [0.400, 0.410, 0.395, 0.402, 0.399],
]


def _imports(scale: float = 1.0, **override: list[float]) -> list[Claim]:
    """Six modules with realistic repeats, each `scale` times as long."""
    base = dict(zip("abcdef", _RUNS, strict=True))
    return [_import(m, override.get(m, [r * scale for r in runs])) for m, runs in base.items()]


def test_an_import_within_three_times_its_fastest_run_is_unchanged_beyond_it_worse() -> None:
    old = _doc(_import("m", [0.100, 0.102, 0.101, 0.099, 0.100]))
    assert _changes(old, _doc(_import("m", [0.29] * 5))) == {"import:m": "unchanged"}
    worse = compare_documents(old, _doc(_import("m", [0.31] * 5)), "old")
    assert [c.change for c in worse.changes] == ["worse"]
    assert worse.regressed
    change = worse.changes[0]
    assert (change.figure, change.label, change.old, change.new) == (
        "min(runs_s)",
        "fastest",
        "99 ms",
        "310 ms",
    )
    assert "+211 ms, beyond its noise of 198 ms (up to 3x the older figure)" in change.note


def test_a_burst_of_load_over_most_repeats_is_no_change() -> None:
    """The median of these repeats is 3.5 times the baseline's; the fastest is not."""
    old = _doc(_import("m", [0.100] * 5))
    assert _changes(old, _doc(_import("m", [0.11, 0.35, 0.35, 0.35, 0.35]))) == {
        "import:m": "unchanged"
    }


def test_the_repeats_spread_widens_the_noise_when_it_is_larger() -> None:
    old = _doc(_import("m", [0.100, 0.100, 0.100, 0.100, 0.100]))
    noisy = _doc(_import("m", [0.350, 0.800, 0.400, 0.700, 0.410]))  # fastest 3.5x, spread 0.45
    comparison = compare_documents(old, noisy, "old")
    assert [c.change for c in comparison.changes] == ["unchanged"]
    assert "the repeats' spread" in comparison.changes[0].note


def test_worse_and_better_are_mirror_images() -> None:
    slow = _doc(_import("m", [0.7] * 5))
    fast = _doc(_import("m", [0.2] * 5))
    assert _changes(fast, slow) == {"import:m": "worse"}
    assert _changes(slow, fast) == {"import:m": "better"}
    third = _doc(_import("m", [0.24] * 5))  # above a third of 0.7: noise
    assert _changes(slow, third) == {"import:m": "unchanged"}
    assert not compare_documents(slow, fast, "old").regressed


def test_a_change_under_the_floor_is_no_change() -> None:
    old = _doc(_import("m", [0.0003] * 5))
    assert _changes(old, _doc(_import("m", [0.0012] * 5))) == {"import:m": "unchanged"}
    assert _changes(old, _doc(_import("m", [0.0014] * 5))) == {"import:m": "worse"}


def test_a_timeout_moves_within_its_tolerance() -> None:
    old = _doc(_timeout("hang", 1.007))
    assert _changes(old, _doc(_timeout("hang", 1.150))) == {"timeout:hang": "unchanged"}
    assert _changes(old, _doc(_timeout("hang", 1.200))) == {"timeout:hang": "worse"}
    # the larger tolerance of the two runs counts
    assert _changes(old, _doc(_timeout("hang", 1.200, tolerance=0.25))) == {
        "timeout:hang": "unchanged"
    }


def test_a_busier_machine_slows_every_import_alike_and_that_is_taken_out() -> None:
    old = _doc(*_imports())
    busy = compare_documents(old, _doc(*_imports(2.2)), "old")
    assert {c.change for c in busy.changes} == {"unchanged"}
    assert any("took 2.20x as long" in n for n in busy.notes), busy.notes
    one = compare_documents(
        old,
        _doc(*_imports(2.2, c=[r * 2.2 * 4 for r in (0.250, 0.247, 0.262, 0.255, 0.251)])),
        "old",
    )
    assert {c.id: c.change for c in one.changes if c.change != "unchanged"} == {"import:c": "worse"}
    assert "at the run's pace, 2.20x the baseline's" in one.changes[2].note


def test_too_few_imports_are_not_paced() -> None:
    old = _doc(*_imports()[:4])
    assert set(_changes(old, _doc(*_imports(3.5)[:4])).values()) == {"worse"}
    assert set(_changes(_doc(*_imports()), _doc(*_imports(3.5))).values()) == {"unchanged"}


def test_a_pace_set_by_other_modules_makes_no_move_of_its_own() -> None:
    """Five modules faster (0.7x), one 2.5x: within its noise as measured, 3.6x at the run's
    pace. It counts as far as it moved both ways: unchanged."""
    fast = {m: [r * 0.7 for r in runs] for m, runs in zip("bcdef", _RUNS[1:], strict=True)}
    new = _doc(*_imports(a=[r * 2.5 for r in _RUNS[0]], **fast))
    assert set(_changes(_doc(*_imports()), new).values()) == {"unchanged"}


def test_status_changes_and_claims_only_one_run_has() -> None:
    old = _doc(
        _timeout("held", 1.0),
        _timeout("failed", 3.0, status="fails"),
        _timeout("unchecked", 0.0, status="error"),
        _timeout("dropped", 1.0),
        _timeout("still failing", 3.0, status="fails"),
    )
    new = _doc(
        {**_timeout("held", 1.0, status="fails"), "evidence": "took 3 s\nsecond line"},
        _timeout("failed", 1.0),
        _timeout("unchecked", 0.0, status="error"),
        _timeout("added", 1.0),
        _timeout("still failing", 9.0, status="fails"),
    )
    comparison = compare_documents(old, new, "old")
    changes = {c.id: c for c in comparison.changes}
    assert {i: c.change for i, c in changes.items()} == {
        "timeout:held": "now fails",
        "timeout:failed": "now holds",
        "timeout:unchecked": "unchanged",
        "timeout:added": "new",
        "timeout:still failing": "worse",  # failing before is no excuse: exit 1 too
        "timeout:dropped": "gone",
    }
    assert changes["timeout:held"].note == "held, now fails: took 3 s"  # the time did not move
    assert (changes["timeout:added"].old_status, changes["timeout:added"].new_status) == (
        None,
        "holds",
    )
    assert changes["timeout:dropped"].new_status is None
    assert [c.change for c in comparison.ordered()][:2] == ["now fails", "worse"]
    assert comparison.summary() == "1 now fails, 1 worse, 1 gone, 1 new, 1 now holds, 1 unchanged"


def test_a_new_claim_or_one_that_now_holds_is_no_regression() -> None:
    old = _doc(_timeout("failed", 3.0, status="fails"))
    new = _doc(_timeout("failed", 1.0), _timeout("added", 1.0, status="fails"))
    assert not compare_documents(old, new, "old").regressed


def test_a_changed_budget_is_said() -> None:
    old = _doc(_timeout("hang", 1.0))
    claim = _timeout("hang", 1.0)
    claim["budget"]["within_s"] = 2.0
    (change,) = compare_documents(old, _doc(claim), "old").changes
    assert "its budget changed: within 1.500 s -> within 2.000 s" in change.note


def test_runs_of_different_targets_are_refused() -> None:
    with pytest.raises(UsageError, match="a run of target 'a', this run of 'b'"):
        compare_documents(_doc(target="a"), _doc(target="b"), "old")


def test_a_different_python_is_noted() -> None:
    comparison = compare_documents(_doc(), _doc(python="3.12.1"), "old")
    assert comparison.notes == ["Python differ: 3.11.7 in the baseline, 3.12.1 in this run"]


def _load(rps: float, p95: float) -> Claim:
    return {
        "id": "load:pdf",
        "kind": "load",
        "status": "holds",
        "budget": {"users": 20, "latency_s": {"POST /pdf": {"p95": 1.0}}},
        "measured": {
            "rps": rps,
            "failure_ratio": 0.0,
            "latency_s": {"POST /pdf": {"count": 100, "p95": p95}},
            "memory": {"max_rss": 100_000_000},
        },
    }


def test_load_figures_higher_rate_is_better() -> None:
    old = _doc(_load(40.0, 0.3))
    (drop,) = compare_documents(old, _doc(_load(15.0, 0.3)), "old").changes
    assert (drop.change, drop.label) == ("worse", "requests/s")
    assert _changes(old, _doc(_load(90.0, 0.3))) == {"load:pdf": "better"}
    (slower,) = compare_documents(old, _doc(_load(40.0, 0.7)), "old").changes
    assert (slower.change, slower.label) == ("worse", "p95 of POST /pdf")


def test_a_load_percentile_from_few_requests_is_noisy(tmp_path: Path) -> None:
    """The exact times in the run's folder give the percentile's 95% interval."""
    folders = []
    for name, times in (("old", [0.1] * 18 + [0.3, 0.9]), ("new", [0.1] * 17 + [0.2, 0.7, 0.95])):
        folder = tmp_path / name / "load" / "pdf"
        folder.mkdir(parents=True)
        rows = [
            {"t": 1.0 + i, "n": "POST /pdf", "m": "POST", "ms": t * 1000, "ok": True}
            for i, t in enumerate(times)
        ]
        (folder / "times-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        folders.append(tmp_path / name)
    old, new = _doc(_load(40.0, 0.3)), _doc(_load(40.0, 0.7))
    without = compare_documents(old, new, "old").changes[0]
    assert without.change == "worse"
    (judged,) = compare_documents(
        old, new, "old", old_folder=folders[0], new_folder=folders[1]
    ).changes
    assert judged.change == "unchanged", judged.note
    assert "the percentile's 95% interval" in judged.note


def test_the_order_statistic_interval() -> None:
    ordered = [float(i) for i in range(1, 101)]
    # p95 of 100 is rank 95; 1.96*sqrt(100*.95*.05) = 4.27: ranks 90..100
    assert _order_statistic_halfwidth(ordered, 0.95) == 5.0
    assert _order_statistic_halfwidth([1.0], 0.95) == 0.0
    assert _order_statistic_halfwidth(ordered, 1.0) == 0.0


def _write(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signoff.json").write_text(json.dumps(doc))
    return folder


def test_load_run_takes_a_folder_or_its_file(tmp_path: Path) -> None:
    folder = _write(tmp_path / "run", _doc(_timeout("x", 1.0)))
    assert load_run(folder) == load_run(folder / "signoff.json")
    assert load_run(str(folder))["target"] == "t"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file or folder; expected a run's report folder"),
        ("", "no signoff.json here"),
        ("not json", "not a signoff.json (JSONDecodeError"),
        ("[1]", "expected a JSON object, found list"),
        ('{"target": "t"}', "expected `claims`, a list of verdicts"),
        ('{"claims": []}', "expected `target`"),
        ('{"target": "t", "claims": [{"id": "x", "status": "ok"}]}', "claims[0].status"),
        ('{"target": "t", "claims": [{"status": "holds"}]}', "claims[0]: expected an object"),
        (
            '{"target": "t", "claims": [{"id": "x", "status": "holds", "measured": 3}]}',
            "claims[0].measured: expected an object",
        ),
    ],
)
def test_load_run_names_what_is_wrong(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "x.json"
    if content == "":
        path = tmp_path
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=re.escape(words)):
        load_run(path)


def test_a_folder_with_only_a_ledger_points_at_signoff_report(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").write_text("")
    with pytest.raises(UsageError, match=re.escape(f"signoff report {tmp_path}")):
        load_run(tmp_path)


def test_comparison_for_a_run_with_a_baseline(tmp_path: Path) -> None:
    base = _write(tmp_path / "old", _doc(_timeout("x", 1.0)))
    info = RunInfo("t", "signoff.toml")
    verdicts = [Verdict("timeout:x", "timeout", "fails", evidence="took 9 s")]
    assert comparison_for(info, verdicts) is None
    info.baseline = str(base)
    comparison = comparison_for(info, verdicts)
    assert comparison is not None and comparison.regressed
    info.baseline = str(tmp_path / "gone")
    broken = comparison_for(info, verdicts)
    assert broken is not None and not broken.changes and not broken.regressed
    assert broken.notes[0].startswith("not compared with the baseline: ")


def test_the_baseline_is_kept_in_run_json(tmp_path: Path) -> None:
    info = RunInfo("t", "signoff.toml", baseline="/runs/old")
    info.save(tmp_path)
    assert RunInfo.load(tmp_path).baseline == "/runs/old"
    doc = json.loads((tmp_path / "run.json").read_text())
    del doc["baseline"]  # a run.json written before --baseline existed
    (tmp_path / "run.json").write_text(json.dumps(doc))
    assert RunInfo.load(tmp_path).baseline == ""


def _sample() -> Comparison:
    old = _doc(_timeout("quick", 0.5), _timeout("held", 1.0), *_imports())
    slow = [r * 4 for r in (0.200, 0.210, 0.205, 0.230, 0.201)]
    new = _doc(
        _timeout("quick", 0.5),
        {**_timeout("held", 1.0, status="fails"), "evidence": "took 3 s"},
        *_imports(a=slow),
    )
    return compare_documents(old, new, "reports/old-run")


def test_the_terminal_shows_regressions_first_with_both_figures() -> None:
    lines = render_comparison(_sample(), width=80)
    assert lines[0].startswith("compared with the baseline reports/old-run, started ")
    assert "1 now fails, 1 worse, 6 unchanged" in " ".join(" ".join(lines[:2]).split())
    body = [line for line in lines if re.match(r"[A-Z]", line) and not line.startswith("note")]
    assert body[0].startswith("NOW FAILS") and "timeout:held" in body[0]
    assert body[1].startswith("WORSE") and "200 ms -> 800 ms" in body[1]
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert sum(line.startswith("UNCHANGED") for line in lines) == 6


def test_summary_md_has_the_comparison_only_when_given() -> None:
    info = RunInfo("t", "signoff.toml")
    verdicts = [Verdict("timeout:held", "timeout", "fails", evidence="took 3 s")]
    plain = render_markdown(info, verdicts)
    assert "baseline" not in plain
    text = render_markdown(info, verdicts, comparison=_sample())
    assert text.startswith(plain.split("\n", 3)[0])
    assert "against the baseline: 1 now fails, 1 worse, 6 unchanged" in text.splitlines()[2]
    section = text[text.index("### Against the baseline") :]
    assert (
        "| `timeout:held` | 🔻 now fails | time 1.000 s | time 1.000 s | held, now fails" in section
    )
    assert "| `import:a` | 🔻 worse | fastest 200 ms | fastest 800 ms |" in section
    assert "<details><summary>6 unchanged</summary>" in section


def test_the_compare_command_exit_statuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old", _doc(*_imports()))
    same = _write(tmp_path / "same", _doc(*_imports()))
    slower = _write(tmp_path / "slower", _doc(*_imports(a=[1.0] * 5)))
    other = _write(tmp_path / "other", _doc(target="other"))
    assert cli.main(["compare", str(old), str(same)]) == 0
    assert "6 unchanged" in capsys.readouterr().out
    assert cli.main(["compare", str(old), str(slower / "signoff.json")]) == 1
    assert "WORSE" in capsys.readouterr().out
    assert cli.main(["compare", str(old), str(other)]) == 2
    assert "compare two runs of the same target" in capsys.readouterr().err
    assert cli.main(["compare", str(old), str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_run_refuses_a_baseline_of_another_target_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _write(tmp_path / "other", _doc(target="other"))
    assert cli.main(["run", str(TINY / "signoff.toml"), "--baseline", str(other)]) == 2
    err = capsys.readouterr().err
    assert "a run of target 'other', not of 'tiny'" in err
    assert cli.main(["run", str(TINY / "signoff.toml"), "--baseline", str(tmp_path / "x")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    own = _write(tmp_path / "own", _doc(target="tiny"))
    args = ["run", str(TINY / "signoff.toml"), "--baseline", str(own), "--report-dir", str(own)]
    assert cli.main(args) == 2
    assert "this run's reports would overwrite it" in capsys.readouterr().err
    assert json.loads((own / "signoff.json").read_text())["target"] == "tiny"  # untouched


# --- real runs -----------------------------------------------------------------------------

FAST_CLAIMS = """
[target]
name = "tiny"
pythonpath = ["{tiny}"]
services = ["redis"]

[imports]
timeout = "10s"
repeat = 5
forbid = ["network", "thread", "subprocess", "warning"]
discover = ["tiny"]
default_budget = "8s"  # a module made 4 s slower still holds: it is only worse

[[timeouts]]
name = "redis ping fails fast when redis is down"
call = "tiny.health:ping_redis"
service = "redis"
fault = "refuse"
within = "500ms"
raises = ["tiny.errors:ServiceUnavailableError"]

[[timeouts]]
name = "redis ping fails fast against a dead address"
call = "tiny.health:ping_redis"
env = {{ REDIS_URL = "redis://127.0.0.1:9/0" }}
within = "1s"
raises = ["tiny.errors:ServiceUnavailableError"]
"""
# targets/tiny/tiny/clients.py sleeps this long at import: about 10x its fastest repeat, 4x one
# inside a burst of another job's load, still past the noise of 3x
SLOW_IMPORT_S = "4"


@pytest.fixture(scope="module")
def five_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Path]]]:
    """Five real runs of tiny's imports and two quick timeouts (about 12 s each), one after
    another as CI would make them."""
    root = tmp_path_factory.mktemp("compare")
    claims = root / "signoff.toml"
    claims.write_text(FAST_CLAIMS.format(tiny=TINY))
    folders = []
    for i in range(5):
        folder = root / f"run{i}"
        run = signoff("run", str(claims), "--services", "embedded", "--report-dir", str(folder))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        folders.append(folder)
    yield claims, folders


@pytest.mark.realtime  # 6 real runs, about 2 minutes: tox -e tests -- -m realtime
@pytest.mark.cli
def test_ten_pairs_of_runs_of_the_same_target_compare_unchanged(
    five_runs: tuple[Path, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folders = five_runs
    compared = signoff("compare", str(folders[0]), str(folders[1]), timeout=60)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "9 unchanged" in compared.stdout
    for old, new in itertools.combinations(folders, 2):
        assert cli.main(["compare", str(old), str(new)]) == 0, capsys.readouterr().out
        comparison = compare_runs(str(old), str(new))
        assert len(comparison.changes) == 9
        assert {c.change for c in comparison.changes} == {"unchanged"}, [
            (c.id, c.note) for c in comparison.changes if c.change != "unchanged"
        ]


@pytest.mark.realtime  # 6 real runs, about 2 minutes: tox -e tests -- -m realtime
@pytest.mark.cli
def test_one_import_made_slower_compares_worse_on_that_claim_alone(
    five_runs: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, folders = five_runs
    slow = tmp_path / "slow"
    run = signoff(
        "run", str(claims), "--services", "embedded", "--report-dir", str(slow),
        "--baseline", str(folders[0]),
        env={"TINY_SLOW_IMPORT_S": SLOW_IMPORT_S},
    )  # fmt: skip
    # every claim holds (8 s budgets), but the run regressed against its baseline
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"^WORSE .* import:tiny\.clients$", run.stdout, re.M), run.stdout[-3000:]
    assert json.loads((slow / "run.json").read_text())["baseline"] == str(folders[0].resolve())
    compared = signoff("compare", str(folders[1]), str(slow / "signoff.json"), timeout=60)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    for old in folders:
        assert cli.main(["compare", str(old), str(slow)]) == 1, capsys.readouterr().out
        changes = {c.id: c.change for c in compare_runs(str(old), str(slow)).changes}
        assert {i: c for i, c in changes.items() if c != "unchanged"} == {
            "import:tiny.clients": "worse"
        }
    again = signoff("report", str(slow), timeout=60)  # compares with its baseline again
    assert again.returncode == 1, again.stdout + again.stderr
    assert "1 worse, 8 unchanged" in again.stdout
