"""Flake study: do a target's timing claims still hold when the machine is busy?

Runs `signoff run CLAIMS` N times in a row, each with its own report folder, while `--busy-cores`
processes spin (`while True: pass`) for the whole study, then tabulates each claim's verdicts
across the runs and its closest approach to its time budget: the worst figure of any run against
its budget (`within` + tolerance, an import's median budget, a load percentile), as a ratio.

    .tox/tests/bin/python benchmarks/flake_study.py targets/tiny/signoff.toml --runs 2 \\
        --busy-cores 1 --services embedded [--out DIR] [--deadline 10m] [-- extra run args]

Writes DIR/flake-study.md (the table), DIR/flake-study.json (the raw rows), DIR/run-N/ (each
run's report) and DIR/run-N.log (its output); DIR defaults to reports/flake-<target>-<stamp>/.
Exit status: 0 when every claim held in every run; 1 when a claim did not (on a reference target,
a false failure) or a run left no signoff.json; 2 for a wrong command line or claims file;
130 when interrupted (what was started is stopped, the runs that finished are tabulated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from signoff import processes
from signoff.units import format_duration, parse_duration

BUSY_LOOP = "while True: pass"
# a run's last claim may start just before the deadline and be watched past it (a hung call is
# watched for within + 20 s, a load claim for its duration + 30 s), then services stop
RUN_GRACE_S = 180.0
STOP_GRACE_S = 60.0  # signoff stops its services and writes its report on SIGTERM
OWNED_RUN_OPTIONS = ("--report-dir", "--deadline", "--services")


@dataclass(frozen=True)
class Figure:
    """One measured time against its budget. `at_least`: the thing was still running when it was
    given up on, so the real figure is higher."""

    label: str
    seconds: float
    budget_s: float
    budget_text: str
    at_least: bool = False

    @property
    def ratio(self) -> float:
        return self.seconds / self.budget_s if self.budget_s > 0 else float("inf")

    def shown(self) -> str:
        return f"{'≥ ' if self.at_least else ''}{self.label} {format_duration(self.seconds)}"


@dataclass
class RunResult:
    index: int
    report_dir: str
    log: str
    exit_status: int | None
    wall_s: float
    doc: dict[str, Any] | None = None
    problem: str | None = None


@dataclass
class ClaimRow:
    id: str
    statuses: list[str | None]  # per run; None: absent from that run's signoff.json
    closest: Figure | None = None
    closest_run: int | None = None
    figures: list[Figure | None] = field(default_factory=list)

    def count(self, status: str | None) -> int:
        return sum(1 for s in self.statuses if s == status)

    @property
    def held_every_run(self) -> bool:
        return all(s == "holds" for s in self.statuses)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _total(budget: dict[str, Any], key: str, slack_key: str) -> tuple[float, str] | None:
    base = _num(budget.get(key))
    if base is None:
        return None
    slack = _num(budget.get(slack_key)) or 0.0
    text = format_duration(base + slack)
    if slack:
        text += f" ({format_duration(base)} + {format_duration(slack)})"
    return base + slack, text


def figures(claim: dict[str, Any]) -> list[Figure]:
    """Every time figure of one signoff.json claim that has a time budget, next to it."""
    budget: dict[str, Any] = claim.get("budget") or {}
    measured: dict[str, Any] = claim.get("measured") or {}
    found: list[Figure] = []
    median_budget = _num(budget.get("median_s"))
    if claim.get("kind") == "import" and median_budget is not None:
        text = format_duration(median_budget)
        if (median := _num(measured.get("median_s"))) is not None:
            found.append(Figure("median", median, median_budget, text))
        elif (hung := _num(measured.get("hung_after_s"))) is not None:
            found.append(Figure("hung", hung, median_budget, text, at_least=True))
    if within := _total(budget, "within_s", "tolerance_s"):
        limit, text = within
        for key, label in (("seconds", "call"), ("then_seconds", "then"), ("slowest_s", "slowest")):
            if (value := _num(measured.get(key))) is not None:
                found.append(Figure(label, value, limit, text))
        for key in ("watched_s", "waited_s"):  # no answer: given up on after this long
            if (value := _num(measured.get(key))) is not None:
                found.append(Figure("running", value, limit, text, at_least=True))
    if recovers := _total(budget, "recovers_s", "recovers_tolerance_s"):
        limit, text = recovers
        if (value := _num(measured.get("recovered_after_s"))) is not None:
            found.append(Figure("recovered", value, limit, text))
    bounds = budget.get("latency_s")
    latencies = measured.get("latency_s")
    if isinstance(bounds, dict) and isinstance(latencies, dict):
        for name, wanted in bounds.items():
            # a key "GET /near" matches requests named "/near"
            got = latencies.get(name) or latencies.get(str(name).partition(" ")[2])
            if not isinstance(wanted, dict) or not isinstance(got, dict):
                continue
            for pct, bound in wanted.items():
                seen, most = _num(got.get(pct)), _num(bound)
                if seen is not None and most is not None:
                    found.append(Figure(f"{pct} {name}", seen, most, format_duration(most)))
    return found


def closest(claim: dict[str, Any]) -> Figure | None:
    """The figure that comes closest to (or goes furthest past) its budget."""
    return max(figures(claim), key=lambda f: f.ratio, default=None)


def tabulate(docs: Sequence[dict[str, Any] | None]) -> list[ClaimRow]:
    """One row per claim id, in the order the runs list them; a run without a document (or
    without the claim) counts as absent."""
    rows: dict[str, ClaimRow] = {}
    for index, doc in enumerate(docs):
        for claim in (doc or {}).get("claims", []):
            row = rows.setdefault(
                claim["id"], ClaimRow(claim["id"], [None] * len(docs), figures=[None] * len(docs))
            )
            row.statuses[index] = claim.get("status")
            fig = closest(claim)
            row.figures[index] = fig
            if fig is not None and (row.closest is None or fig.ratio > row.closest.ratio):
                row.closest, row.closest_run = fig, index + 1
    return list(rows.values())


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def non_holding(runs: Sequence[RunResult]) -> list[str]:
    """A line per run that left no report, and per claim of a run that did not hold."""
    lines: list[str] = []
    every_id = list(dict.fromkeys(c["id"] for r in runs for c in (r.doc or {}).get("claims", [])))
    for run in runs:
        if run.problem:
            lines.append(f"run {run.index}: {run.problem}")
        if run.doc is None:
            continue
        claims = {c["id"]: c for c in run.doc.get("claims", [])}
        for claim_id in every_id:
            claim = claims.get(claim_id)
            if claim is None:
                lines.append(f"run {run.index}: `{claim_id}` absent from its signoff.json")
            elif claim.get("status") != "holds":
                evidence = first_line(str(claim.get("evidence") or "")) or "(no evidence)"
                lines.append(f"run {run.index}: `{claim_id}` {claim.get('status')}: {evidence}")
    return lines


def ratio_text(ratio: float) -> str:
    return "<0.01" if 0 < ratio < 0.005 else f"{ratio:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(header: str, rows: Sequence[ClaimRow], problems: Sequence[str]) -> str:
    lines = [
        header,
        "",
        "| claim | holds | fails | error | closest figure | budget | ratio |",
        "|---|--:|--:|--:|---|---|--:|",
    ]
    for row in rows:
        counts = f"{row.count('holds')} | {row.count('fails')} | {row.count('error')}"
        fig = row.closest
        if fig is None:
            tail = "- | - | -"
        else:
            tail = f"{_cell(fig.shown())} (run {row.closest_run}) | {fig.budget_text} | "
            tail += ("≥ " if fig.at_least else "") + ratio_text(fig.ratio)
        lines.append(f"| `{_cell(row.id)}` | {counts} | {tail} |")
    timed = [r for r in rows if r.closest is not None]
    if timed:
        worst = max(timed, key=lambda r: r.closest.ratio if r.closest else 0.0)
        assert worst.closest is not None
        lines += [
            "",
            f"closest to its budget: `{worst.id}`, {worst.closest.shown()} of "
            f"{worst.closest.budget_text} ({ratio_text(worst.closest.ratio)})",
        ]
    held = sum(1 for r in rows if r.held_every_run)
    lines += ["", f"{held} of {len(rows)} claims held in every run."]
    if problems:
        lines += ["", "Not holding:", "", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"


def header_line(
    target: str, runs: Sequence[RunResult], busy: int, backend: str, wall_s: float, started: float
) -> str:
    envs = [r.doc.get("environment", {}) for r in runs if r.doc]
    pythons = sorted({str(e.get("python")) for e in envs if e.get("python")})
    served = sorted(
        {", ".join(f"{k} {v}" for k, v in (e.get("services") or {}).items()) for e in envs} - {""}
    )
    services = f"services {backend}" + (f" ({'; '.join(served)})" if served else "")
    return (
        f"**flake study: {target}** · {len(runs)} runs · {os.cpu_count()} cores, {busy} busy · "
        f"{time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))} · "
        f"Python {', '.join(pythons) or platform.python_version()} · {services} · "
        f"wall {format_duration(wall_s)}"
    )


def signoff_command() -> list[str]:
    """The signoff of this interpreter's environment (not whichever is first on PATH)."""
    script = Path(sys.executable).parent / "signoff"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "signoff"]


def run_once(
    argv: list[str], index: int, out: Path, timeout_s: float, interrupted: list[bool]
) -> RunResult:
    report = out / f"run-{index}"
    log = out / f"run-{index}.log"
    started = time.monotonic()
    with open(log, "wb") as sink:
        proc = processes.spawn(
            [*argv, "--report-dir", str(report)],
            role="flake-study-run",
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        problem = None
        try:
            proc.wait(timeout=timeout_s)
            processes.forget(proc)
        except subprocess.TimeoutExpired:
            problem = f"still running after {format_duration(timeout_s)}: stopped"
            processes.stop(proc, grace=STOP_GRACE_S)
        except KeyboardInterrupt:
            interrupted.append(True)
            processes.stop(proc, grace=STOP_GRACE_S)
    wall_s = round(time.monotonic() - started, 3)
    result = RunResult(index, str(report), str(log), proc.returncode, wall_s)
    result.problem = problem
    doc_path = report / "signoff.json"
    try:
        result.doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        why = f"no readable signoff.json ({type(exc).__name__}), exit status {proc.returncode}"
        result.problem = "; ".join(p for p in (problem, why, *tail) if p)
    return result


def _split_extra(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        at = list(argv).index("--")
        return list(argv[:at]), list(argv[at + 1 :])
    return list(argv), []


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, extra = _split_extra(argv)
    parser = argparse.ArgumentParser(
        prog="flake_study.py",
        description="signoff run CLAIMS, N times, with busy cores; tabulate verdicts and margins",
    )
    parser.add_argument("claims", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy-cores", type=int, default=1)
    parser.add_argument("--services", default="auto")
    parser.add_argument("--out", type=Path, help="default: reports/flake-<target>-<stamp>/")
    parser.add_argument("--deadline", default="10m", help="each run's --deadline (default 10m)")
    args = parser.parse_args(ours)
    if args.runs < 1 or args.busy_cores < 0:
        parser.error("--runs must be 1 or more, --busy-cores 0 or more")
    try:
        args.deadline_s = parse_duration(args.deadline)
    except ValueError as exc:
        parser.error(f"--deadline: {exc}")
    owned = [a for a in extra if a.split("=", 1)[0] in OWNED_RUN_OPTIONS]
    if owned:
        parser.error(f"{', '.join(owned)}: set by the study (use its own options)")
    return args, extra


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    from signoff.claims import load_claims
    from signoff.errors import ClaimsError

    try:
        target = load_claims(args.claims).target.name
    except ClaimsError as exc:
        print(exc, file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or Path("reports") / f"flake-{target}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    command = [*signoff_command(), "run", str(args.claims), "--services", args.services]
    command += ["--deadline", args.deadline, *extra]
    timeout_s = args.deadline_s + RUN_GRACE_S
    signal.signal(signal.SIGTERM, _raise_interrupt)

    runs: list[RunResult] = []
    interrupted: list[bool] = []
    busy: list[subprocess.Popen[Any]] = []
    broke = ""
    started_at, started = time.time(), time.monotonic()
    try:
        for _ in range(args.busy_cores):
            busy.append(
                processes.spawn(
                    [sys.executable, "-c", BUSY_LOOP],
                    role="flake-study-busy",
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        print(f"{' '.join(command)}  ({args.runs} runs, {len(busy)} busy cores) -> {out}")
        for index in range(1, args.runs + 1):
            if any(p.poll() is not None for p in busy):
                broke = "a busy-loop process ended on its own: the study stopped early"
                break
            run = run_once(command, index, out, timeout_s, interrupted)
            if interrupted:
                break
            runs.append(run)
            verdict = run.doc.get("verdict", "?") if run.doc else "no report"
            print(
                f"run {index}/{args.runs}: {verdict}, exit status {run.exit_status}, "
                f"{format_duration(run.wall_s)}",
                flush=True,
            )
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        for proc in busy:
            processes.kill(proc)
        processes.stop_all(grace=STOP_GRACE_S)  # a run left behind by a second Ctrl-C
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    wall_s = time.monotonic() - started

    rows = tabulate([r.doc for r in runs])
    problems = non_holding(runs) + ([broke] if broke else [])
    header = header_line(target, runs, len(busy), args.services, wall_s, started_at)
    if interrupted:
        header += f" · interrupted: {len(runs)} of {args.runs} runs finished"
    table = render(header, rows, problems)
    print("\n" + table, end="")
    (out / "flake-study.md").write_text(table, encoding="utf-8")
    raw = {
        "header": header,
        "command": command,
        "machine": {
            "cores": os.cpu_count(),
            "busy_cores": len(busy),
            "python": platform.python_version(),
            "services": args.services,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
            "wall_s": round(wall_s, 3),
        },
        "runs": [{k: v for k, v in asdict(r).items() if k != "doc"} for r in runs],
        "claims": [
            {
                **asdict(row),
                "holds": row.count("holds"),
                "fails": row.count("fails"),
                "error": row.count("error"),
                "absent": row.count(None),
                "ratio": None if row.closest is None else round(row.closest.ratio, 4),
            }
            for row in rows
        ],
        "not_holding": problems,
    }
    (out / "flake-study.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {out / 'flake-study.md'}, {out / 'flake-study.json'}")
    if interrupted:
        return 130
    return 0 if runs and all(r.held_every_run for r in rows) and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
