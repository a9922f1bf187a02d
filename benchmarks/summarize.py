"""Print the ratios of a saved benchmark run as a Markdown table, for the README: each ratio,
the figures of the run beside it, and the ratio of the run before it (same machine folder).

    python -m benchmarks.summarize [RUN.json] [--storage .benchmarks]     # from the checkout

Without RUN.json, the newest run saved under the storage folder (`--benchmark-autosave` writes
.benchmarks/<machine>/<NNNN>_<commit>_<date>.json). Exit status 0; 2 when there is no saved
run or the file is not a pytest-benchmark JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.ratios import compute, format_figure
from signoff.units import format_duration

STORAGE = Path(".benchmarks")


class NotARun(Exception):
    """The file is not a run saved by pytest-benchmark."""


def saved_runs(storage: Path) -> list[Path]:
    """Every run saved under `storage` (in its machine folders), oldest first."""
    return _oldest_first(storage.glob("*/*.json"))


def previous_run(run: Path) -> Path | None:
    """The run saved just before `run` in its folder (the one --benchmark-compare compared
    it with), if any."""
    older = [p for p in _oldest_first(run.parent.glob("*.json")) if p.name != run.name]
    if run.is_file():
        older = [p for p in older if _key(p) < _key(run)]
    return older[-1] if older else None


def _key(path: Path) -> tuple[float, str]:
    return (path.stat().st_mtime, path.name)


def _oldest_first(paths: Iterable[Path]) -> list[Path]:
    return sorted((p for p in paths if p.is_file()), key=_key)


def load_run(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotARun(f"{path}: cannot read it as JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise NotARun(f"{path}: expected a pytest-benchmark run (a 'benchmarks' list); found none")
    return doc


def ratio_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's ratios: as conftest.py saved them, or computed now for a run without them."""
    saved = doc.get("signoff_ratios")
    if isinstance(saved, list):
        return saved
    return compute(doc["benchmarks"])


def render(
    doc: Mapping[str, Any],
    name: str,
    previous: Mapping[str, Any] | None = None,
    previous_name: str = "",
) -> str:
    before = {r["what"]: r.get("ratio") for r in ratio_rows(previous)} if previous else {}
    heading = _heading(doc, name)
    if previous is not None:
        heading += f"; previous run `{previous_name}`"
    lines = [heading, ""]
    header = "| what | ratio | figures of this run | previous run |"
    lines += [header, "|---|--:|---|--:|"]
    for row in ratio_rows(doc):
        lines.append(
            f"| {row['what']} | {_ratio(row.get('ratio'))} | {_figures(row)} "
            f"| {_ratio(before.get(row['what']), bold=False)} |"
        )
    notes = _notes(doc["benchmarks"])
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _heading(doc: Mapping[str, Any], name: str) -> str:
    machine = doc.get("machine_info", {})
    commit = doc.get("commit_info", {})
    cpu = machine.get("cpu", {})
    parts = [f"`{name}`", str(doc.get("datetime", "?"))[:16].replace("T", " ") + " UTC"]
    if commit.get("id"):
        dirty = " (uncommitted changes)" if commit.get("dirty") else ""
        parts.append(f"commit {str(commit['id'])[:7]}{dirty}")
    python = f"{machine.get('python_implementation', '')} {machine.get('python_version', '')}"
    parts.append(python.strip() or "Python ?")
    if cpu.get("count"):
        brand = f", {cpu['brand_raw']}" if cpu.get("brand_raw") else ""
        parts.append(f"{cpu['count']} CPUs{brand}")
    return "Benchmarks: " + " · ".join(parts)


def _ratio(value: Any, bold: bool = True) -> str:
    if not isinstance(value, int | float):
        return "-"
    text = f"{value:.2f}"
    return f"**{text}**" if bold else text


def _figures(row: Mapping[str, Any]) -> str:
    top, bottom = row["numerator"], row["denominator"]
    if row.get("missing"):
        return "not measured: no " + ", ".join(f"`{m}`" for m in row["missing"])
    shown = f"{format_figure(top['value'], top['unit'])} / "
    shown += format_figure(bottom["value"], bottom["unit"])
    if top["unit"] == "s" and bottom["unit"] == "s":
        difference = top["value"] - bottom["value"]
        sign = "+" if difference >= 0 else "-"
        shown += f" ({sign}{format_duration(abs(difference))})"
    return shown


def _notes(benchmarks: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line for each benchmark whose claim did not hold (its figure is still what it says)."""
    notes = []
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        status = info.get("status")
        if status is not None and status != "holds":
            line = f"- `{bench.get('name')}`: the claim was `{status}`"
            share = info.get("generator_saturated_share")
            if isinstance(share, int | float) and share > 0:
                line += f" (Locust above 90% of a core in {share:.0%} of the samples)"
            notes.append(line)
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="a saved run (default: the newest)")
    parser.add_argument("--storage", type=Path, default=STORAGE, help="default: .benchmarks")
    args = parser.parse_args(argv)
    run: Path | None = args.run
    if run is None:
        runs = saved_runs(args.storage)
        if not runs:
            print(
                f"summarize: no saved benchmark run under {args.storage}/ "
                "(expected <machine>/<NNNN>_*.json: run `tox -e bench`)",
                file=sys.stderr,
            )
            return 2
        run = runs[-1]
    try:
        doc = load_run(run)
    except NotARun as exc:
        print(f"summarize: {exc}", file=sys.stderr)
        return 2
    before = previous_run(run)
    previous = None
    if before is not None:
        try:
            previous = load_run(before)
        except NotARun as exc:  # the table of this run is still right: say so and go on
            print(f"summarize: not compared with the previous run: {exc}", file=sys.stderr)
    sys.stdout.write(render(doc, run.name, previous, before.name if before else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
