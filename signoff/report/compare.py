"""What changed between two runs of a claims file: per claim better, worse, unchanged, new or
gone, with both figures (`signoff compare OLD NEW`, `signoff run --baseline OLD`).

A claim that held and now fails or could not be checked "now fails"; one that did not hold and
now holds "now holds". Otherwise (the same status, or fails and error either way) its figures
are compared, a claim that fails in both runs included: a figure counts as worse or better only
beyond its noise (signoff.report.compare_figures says how that is found). "now fails" and
"worse" are regressions: `signoff compare` exits 1 on one. Runs of two different targets are
not compared (a UsageError): their claims would all be new or gone."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from signoff.errors import UsageError
from signoff.report.compare_figures import Judged, Side, format_value, judge, pace
from signoff.report.figures import describe
from signoff.verdict import STATUSES

if TYPE_CHECKING:
    from signoff.report.run_info import RunInfo
    from signoff.verdict import Verdict

Change = Literal["now fails", "worse", "better", "now holds", "unchanged", "new", "gone"]
REGRESSIONS: tuple[Change, ...] = ("now fails", "worse")  # what makes `compare` exit 1
# what needs a look first, in every rendering
ORDER: tuple[Change, ...] = (
    "now fails",
    "worse",
    "gone",
    "new",
    "now holds",
    "better",
    "unchanged",
)
REPORT_FILE = "signoff.json"
NOTED_PACE = 0.2  # a run's pace this far from the baseline's is said in a note


@dataclass(frozen=True)
class FigureChange:
    """One figure of a claim in both runs."""

    key: str  # the measured key ("median_s"; "latency_s.GET /health.p95" for a nested one)
    label: str  # "median", "p95 of GET /health"
    change: Literal["worse", "better", "unchanged"]
    old: str  # as the reports show figures: "43 ms"
    new: str
    note: str  # "+212 ms, beyond its noise of 9 ms (the repeats' spread)"
    old_value: float = 0.0
    new_value: float = 0.0
    noise: float = 0.0


@dataclass(frozen=True)
class ClaimChange:
    """One claim of the newer run against the older one."""

    id: str
    kind: str
    change: Change
    old_status: str | None  # None: the claim is new
    new_status: str | None  # None: the claim is gone
    figure: str = ""  # the measured key compared ("median_s"), "" when none was
    old: str = ""  # the older figure, as the reports show figures ("43 ms")
    new: str = ""
    note: str = ""  # why: "+212 ms, beyond its noise of 9 ms (the repeats' spread)"
    label: str = ""  # the figure as the reports name it: "median"
    figures: tuple[FigureChange, ...] = ()  # every figure compared, the one above included


@dataclass(frozen=True)
class Comparison:
    baseline: str  # the older run: its folder or signoff.json, as given
    changes: list[ClaimChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the runs differ in Python, services, ...
    baseline_started: str = ""  # when the older run started (its signoff.json's `started`)

    @property
    def regressed(self) -> bool:
        return any(c.change in REGRESSIONS for c in self.changes)

    def counts(self) -> dict[Change, int]:
        counts: dict[Change, int] = {}
        for c in self.changes:
            counts[c.change] = counts.get(c.change, 0) + 1
        return counts

    def ordered(self) -> list[ClaimChange]:
        """Regressions first, then gone, new, now holds, better, unchanged; file order within."""
        return sorted(self.changes, key=lambda c: ORDER.index(c.change))

    def summary(self) -> str:
        """ "1 worse, 8 unchanged", in ORDER."""
        counts = self.counts()
        return ", ".join(f"{counts[c]} {c}" for c in ORDER if c in counts) or "no claims"


def run_folder(path: str | Path) -> Path:
    """The run folder of a path given as a run: the folder itself, or its signoff.json's."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def load_run(path: str | Path) -> dict[str, Any]:
    """The signoff.json of a run, given as its report folder or as the file itself; UsageError
    naming what is wrong with anything else."""
    path = Path(path)
    expected = "expected a run's report folder (reports/<time>-<target>/) or its signoff.json"
    if path.is_dir():
        if not (path / REPORT_FILE).is_file():
            if (path / "ledger.jsonl").is_file():
                raise UsageError(
                    f"{path}: no {REPORT_FILE} in this run folder (the run ended before it "
                    f"wrote its reports?): write them with `signoff report {path}` first"
                )
            raise UsageError(f"{path}: no {REPORT_FILE} here; {expected}")
        path = path / REPORT_FILE
    elif not path.is_file():
        raise UsageError(f"{path}: no such file or folder; {expected}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a signoff.json ({type(exc).__name__}: {exc})") from None
    problem = _problem(doc)
    if problem:
        raise UsageError(f"{path}: not a signoff.json: {problem}")
    return dict(doc)


def _problem(doc: Any) -> str:
    """What makes `doc` no signoff.json, "" when it is one."""
    if not isinstance(doc, dict):
        return f"expected a JSON object, found {type(doc).__name__}"
    if not isinstance(doc.get("target"), str):
        return "expected `target`, the target's name"
    claims = doc.get("claims")
    if not isinstance(claims, list):
        return "expected `claims`, a list of verdicts"
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        if not isinstance(claim, dict) or not isinstance(claim.get("id"), str):
            return f"claims[{i}]: expected an object with an `id`"
        if claim.get("status") not in STATUSES:
            return f"claims[{i}].status: expected one of {', '.join(STATUSES)}"
        for key in ("budget", "measured"):
            if not isinstance(claim.get(key, {}), dict):
                return f"claims[{i}].{key}: expected an object"
        if claim["id"] in seen:
            return f"claims[{i}]: {claim['id']!r} is there twice"
        seen.add(claim["id"])
    return ""


def compare_documents(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    baseline: str,
    *,
    old_folder: Path | None = None,
    new_folder: Path | None = None,
    other: str = "this run",
) -> Comparison:
    """Every claim of `new` against `old` (two signoff.json documents), then the claims only
    `old` has. The run folders, when given, let load percentiles be judged against the exact
    times of their requests."""
    if old["target"] != new["target"]:
        raise UsageError(
            f"{baseline} is a run of target {old['target']!r}, {other} of {new['target']!r}: "
            "compare two runs of the same target"
        )
    before = {c["id"]: Side(c, old_folder) for c in old["claims"]}
    after = {c["id"]: Side(c, new_folder) for c in new["claims"]}
    run_pace, paced = pace((before[i], side) for i, side in after.items() if i in before)
    changes = [_change(before.get(i), side, run_pace) for i, side in after.items()]
    changes += [_change(side, None, run_pace) for i, side in before.items() if i not in after]
    notes = _run_notes(old, new)
    if abs(run_pace - 1.0) >= NOTED_PACE:
        machine = "slower or busier" if run_pace > 1 else "faster or quieter"
        notes.append(
            f"this run's imports took {run_pace:.2f}x as long as the baseline's (the median of "
            f"{paced} modules' ratios): the machine was {machine}; each import is judged at "
            "that pace too, so a change that slowed every import alike would not show"
        )
    return Comparison(baseline, changes, notes=notes, baseline_started=str(old.get("started", "")))


def compare_runs(old: str, new: str) -> Comparison:
    """`signoff compare OLD NEW`: two runs given as folders or signoff.json files."""
    return compare_documents(
        load_run(old),
        load_run(new),
        old,
        old_folder=run_folder(old),
        new_folder=run_folder(new),
        other=new,
    )


def comparison_for(
    info: RunInfo, verdicts: Sequence[Verdict], folder: Path | None = None
) -> Comparison | None:
    """The comparison a run's reports show: None without a baseline; a baseline that cannot be
    read (anymore) is a note, never an error that keeps the reports from being written."""
    if not info.baseline:
        return None
    from signoff.report.signoff_json import as_document

    try:
        return compare_documents(
            load_run(info.baseline),
            as_document(info, list(verdicts)),
            info.baseline,
            old_folder=run_folder(info.baseline),
            new_folder=folder,
        )
    except UsageError as exc:
        return Comparison(info.baseline, notes=[f"not compared with the baseline: {exc}"])


def _change(before: Side | None, after: Side | None, run_pace: float) -> ClaimChange:
    if before is None or after is None:
        side = after if after is not None else before
        assert side is not None
        status = str(side.claim["status"])
        return ClaimChange(
            str(side.claim["id"]),
            str(side.claim.get("kind", "")),
            "new" if before is None else "gone",
            None if before is None else status,
            status if before is None else None,
            note=f"only in {'this run' if before is None else 'the baseline'} ({status})",
        )
    old, new = before.claim, after.claim
    figures = [_figure(j) for j in judge(before, after, run_pace)]
    was, now = str(old["status"]), str(new["status"])
    shown = next(
        (f for want in ("worse", "better") for f in figures if f.change == want),
        figures[0] if figures else None,
    )
    notes = []
    change: Change
    if was == "holds" and now != "holds":
        change = "now fails"
        evidence = str(new.get("evidence", "")).strip().splitlines()
        notes.append(f"held, now {'could not be checked' if now == 'error' else 'fails'}")
        if evidence:
            notes[-1] += f": {evidence[0]}"
    elif was != "holds" and now == "holds":
        change = "now holds"
        notes.append(f"{'failed' if was == 'fails' else 'could not be checked'}, now holds")
    else:
        change = shown.change if shown is not None else "unchanged"
        if was != now:
            notes.append(f"{was} in the baseline, {now} now")
    if shown is not None and (shown.change != "unchanged" or change == "unchanged"):
        notes.append(f"{shown.label} {shown.note}")
        others = [f.label for f in figures if f is not shown and f.change == "worse"]
        if others:
            notes.append(f"also worse: {', '.join(others)}")
    budget = _budget_change(old.get("budget", {}), new.get("budget", {}))
    if budget:
        notes.append(f"its budget changed: {budget}")
    return ClaimChange(
        new["id"],
        str(new.get("kind", "")),
        change,
        was,
        now,
        figure=shown.key if shown else "",
        old=shown.old if shown else "",
        new=shown.new if shown else "",
        note="; ".join(notes),
        label=shown.label if shown else "",
        figures=tuple(figures),
    )


def _figure(judged: Judged) -> FigureChange:
    unit = judged.figure.unit
    return FigureChange(
        judged.figure.key,
        judged.figure.label,
        judged.change,
        format_value(judged.old, unit),
        format_value(judged.new, unit),
        judged.note,
        old_value=judged.old,
        new_value=judged.new,
        noise=judged.noise,
    )


def _budget_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
    if not keys:
        return ""
    before = describe({k: old[k] for k in keys if k in old}) or "none"
    after = describe({k: new[k] for k in keys if k in new}) or "none"
    return f"{before} -> {after}"


def _run_notes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """How the two runs' surroundings differ: figures may have moved with them."""
    notes = []
    envs: list[Mapping[str, Any]] = []
    for doc in (old, new):
        env = doc.get("environment")
        envs.append(env if isinstance(env, Mapping) else {})
    for key, what in (("python", "Python"), ("services", "services")):
        was, now = (env.get(key) for env in envs)
        if was and now and was != now:
            notes.append(f"{what} differ: {_words(was)} in the baseline, {_words(now)} in this run")
    return notes


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)
