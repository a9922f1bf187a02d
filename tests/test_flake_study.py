"""benchmarks/flake_study.py's pure parts: figures against budgets, the table, what did not hold."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "flake_study.py"
_spec = importlib.util.spec_from_file_location("flake_study", _PATH)
assert _spec is not None and _spec.loader is not None
fs = importlib.util.module_from_spec(_spec)
sys.modules["flake_study"] = fs
_spec.loader.exec_module(fs)


def _import(median: float | None, status: str = "holds") -> dict[str, Any]:
    measured = {"median_s": median} if median is not None else {"hung_after_s": 10.0}
    return {
        "id": "import:tiny",
        "kind": "import",
        "status": status,
        "budget": {"median_s": 0.05, "timeout_s": 10.0},
        "measured": measured,
        "evidence": "",
    }


def _timeout(seconds: float | None, status: str = "holds", evidence: str = "") -> dict[str, Any]:
    measured: dict[str, Any] = {"seconds": seconds, "outcome": "raised"}
    if seconds is None:
        measured = {"seconds": None, "outcome": "still running", "watched_s": 21.5}
    return {
        "id": "timeout:ping",
        "kind": "timeout",
        "status": status,
        "budget": {"within_s": 5.0, "tolerance_s": 0.25, "fault": "redis hang"},
        "measured": measured,
        "evidence": evidence,
    }


def test_timeout_figure_is_against_within_plus_tolerance() -> None:
    fig = fs.closest(_timeout(5.21))
    assert fig is not None
    assert (fig.seconds, fig.budget_s, fig.at_least) == (5.21, 5.25, False)
    assert f"{fig.ratio:.2f}" == "0.99"
    assert fig.budget_text == "5.250 s (5.000 s + 250 ms)"


def test_a_hung_call_is_a_lower_bound() -> None:
    fig = fs.closest(_timeout(None))
    assert fig is not None and fig.at_least and fig.seconds == 21.5
    hung = fs.closest(_import(None))
    assert hung is not None and hung.at_least and hung.budget_s == 0.05


def test_import_median_and_figures_that_are_not_times() -> None:
    fig = fs.closest(_import(0.043))
    assert fig is not None and (fig.label, fig.seconds, fig.budget_s) == ("median", 0.043, 0.05)
    webhook = {"id": "webhook:vectors", "kind": "webhook", "budget": {"scheme": "stripe"}}
    assert fs.closest({**webhook, "measured": {"cases": 12}}) is None
    crashed = _timeout(1.0)
    crashed["measured"] = {"outcome": "crashed", "exit_status": -9}
    assert fs.closest(crashed) is None


def test_the_worst_of_several_figures_counts() -> None:
    degradation = {
        "id": "degradation:d",
        "kind": "degradation",
        "budget": {
            "within_s": 2.0,
            "tolerance_s": 0.2,
            "recovers_s": 10.0,
            "recovers_tolerance_s": 0.25,
        },
        "measured": {"seconds": 0.5, "then_seconds": 0.1, "recovered_after_s": 9.0},
    }
    fig = fs.closest(degradation)
    assert fig is not None and fig.label == "recovered" and fig.budget_s == 10.25
    load = {
        "id": "load:l",
        "kind": "load",
        "budget": {"latency_s": {"GET /near": {"p50": 0.2, "p95": 0.1}}},
        "measured": {"latency_s": {"/near": {"count": 9, "p50": 0.1, "p95": 0.098}}},
    }
    fig = fs.closest(load)
    assert fig is not None and fig.label == "p95 GET /near" and fig.ratio == pytest.approx(0.98)


def test_tabulate_counts_verdicts_and_keeps_the_worst_run() -> None:
    docs = [
        {"claims": [_import(0.01), _timeout(4.0)]},
        {"claims": [_import(0.02), _timeout(5.4, "fails", "gave up after 5.400 s\nmore")]},
        None,
    ]
    rows = {r.id: r for r in fs.tabulate(docs)}
    ping = rows["timeout:ping"]
    assert (ping.count("holds"), ping.count("fails"), ping.count(None)) == (1, 1, 1)
    assert ping.closest_run == 2 and not ping.held_every_run
    assert rows["import:tiny"].closest.seconds == 0.02


def test_non_holding_names_the_run_and_the_evidence_first_line() -> None:
    runs = [
        fs.RunResult(1, "r1", "l1", 0, 1.0, doc={"claims": [_import(0.01), _timeout(4.0)]}),
        fs.RunResult(2, "r2", "l2", 1, 1.0, doc={"claims": [_timeout(5.4, "fails", "late\nx")]}),
        fs.RunResult(3, "r3", "l3", 3, 1.0, problem="no readable signoff.json"),
    ]
    assert fs.non_holding(runs) == [
        "run 2: `import:tiny` absent from its signoff.json",
        "run 2: `timeout:ping` fails: late",
        "run 3: no readable signoff.json",
    ]


def test_render_shows_a_dash_for_claims_without_a_time() -> None:
    webhook = {"id": "webhook:a|b", "kind": "webhook", "status": "holds", "budget": {}}
    rows = fs.tabulate([{"claims": [webhook, _timeout(5.21)]}])
    table = fs.render("header", rows, [])
    assert "| `webhook:a\\|b` | 1 | 0 | 0 | - | - | - |" in table
    assert "| call 5.210 s (run 1) | 5.250 s (5.000 s + 250 ms) | 0.99 |" in table
    assert "2 of 2 claims held in every run." in table
    assert fs.ratio_text(0.001) == "<0.01"


def test_options_the_study_sets_are_refused_after_the_dashes() -> None:
    args, extra = fs.parse_args(["c.toml", "--runs", "2", "--", "--only", "import"])
    assert (args.runs, args.deadline_s, extra) == (2, 600.0, ["--only", "import"])
    with pytest.raises(SystemExit):
        fs.parse_args(["c.toml", "--", "--report-dir=x"])
