"""The `signoff` command line. Exit status: 0 every claim holds, 1 some claim fails or could not
be checked, 2 the claims file (its target's interpreter and pythonpath included) or the command
line is wrong, 3 the harness could not run, 130 interrupted (Ctrl-C or SIGTERM). `check
--imports`: 1 the target's code fails at import, 2 a name the claims give is wrong. `compare`
(and a `run --baseline` whose claims all hold): 1 a claim that held now fails or a figure got
worse beyond its noise; `compare`: 2 a path that is not a run, or runs of different targets."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from signoff import __version__, bundled, kinds, processes
from signoff.errors import ClaimsError, SignoffError, UsageError

EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a UsageError (exit 2) the caller prints, never a trace."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _docker_image_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docker-image",
        action="append",
        metavar="SERVICE=IMAGE",
        help="the docker backend's image for redis or postgres (redis=redis:7-alpine; "
        "may be repeated; default: $SIGNOFF_REDIS_IMAGE / $SIGNOFF_POSTGRES_IMAGE, else "
        "signoff-redis:local / signoff-postgres:local when built, else the official images)",
    )


def _parser() -> argparse.ArgumentParser:
    from signoff.plugin import BACKEND_CHOICES

    parser = _Parser(
        prog="signoff",
        description="Check the claims of a fix summary against the "
        "real code, with real Redis and Postgres.",
        epilog="exit status: 0 every claim holds; 1 some claim fails or could not "
        "be checked; 2 bad claims file or command line; 3 the harness could not "
        "run; 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"signoff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="check every claim of a claims file and write a report")
    run.add_argument(
        "claims", nargs="?", default="signoff.toml", help="the claims file (default: signoff.toml)"
    )
    run.add_argument(
        "--only",
        metavar="KIND[,KIND]",
        help=f"check only these kinds: {', '.join(kinds.names())}",
    )
    run.add_argument(
        "--report-dir",
        metavar="DIR",
        help="write the report here (default: reports/<time>-<target>)",
    )
    run.add_argument(
        "--services",
        default="auto",
        choices=BACKEND_CHOICES,
        help="where Redis and Postgres come from (default: auto, the first of "
        "docker, system, embedded, url that works)",
    )
    _docker_image_option(run)
    run.add_argument(
        "--deadline",
        default="30m",
        metavar="DURATION",
        help="no claim starts after this much of the run (default: 30m)",
    )
    run.add_argument(
        "--jobs",
        default="auto",
        metavar="N",
        help="claims that only wait run side by side, N at once; those whose figure is CPU time "
        "(imports, cron:time, webhook:constant-time, load) run alone (default: auto, 4 per "
        "core, at most 8; 1: one claim after another)",
    )
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow [[load]] on an address other than loopback (refused by default)",
    )
    run.add_argument(
        "--baseline",
        metavar="OLD",
        help="compare with an older run of the same target (its report folder or signoff.json) "
        "in every report and on the terminal; a run whose claims all hold exits 1 when a claim "
        "that held now fails or a figure got worse beyond its noise",
    )

    from signoff.kinds.load.cli import add_arguments as load_arguments

    load = sub.add_parser(
        "load", help="check only the [[load]] claims, or explore with Locust's web UI (--ui)"
    )
    load_arguments(load, BACKEND_CHOICES)
    _docker_image_option(load)
    from signoff.kinds.load.cli import add_worker_arguments

    worker = sub.add_parser(
        "worker", help="run Locust workers of a `signoff load --master` (docs/distributed.md)"
    )
    add_worker_arguments(worker)

    check = sub.add_parser(
        "check",
        help="validate a claims file, and that the target's interpreter runs; start nothing else",
        description="Validate a claims file: every key, and that [target].python starts as a "
        "Python (run once, for a few seconds at most) and every pythonpath entry exists.",
        epilog="exit status: 0 the file is good (and with --imports every name imports); "
        "1 with --imports, the target's code fails at import: raises, hangs or kills the "
        "interpreter (what `signoff run` reports on the claim); 2 bad claims file, "
        "interpreter, pythonpath, or (--imports) a name that is wrong: module or attribute "
        "not found, not a class, not callable; 3 the harness could not run",
    )
    check.add_argument("claims", help="the claims file")
    check.add_argument(
        "--imports",
        action="store_true",
        help="also import every name of target code the claims give (call, expect, then, "
        "raises, verify, sign, url_validator, [cron].call, [target.server].app, ...) in ONE "
        "interpreter of the target, with its pythonpath and [target].env, each import bounded "
        "by [imports].timeout (default 10s). No service is started: REDIS_URL and DATABASE_URL "
        "are whatever this shell has (usually unset), so code that connects at import may "
        "fail or hang here and not in a run. A claim's own env is not applied.",
    )

    report = sub.add_parser(
        "report",
        help="render the reports of a run folder again from its ledger (a killed run too)",
        epilog="exit status: 0 every claim holds; 1 some claim fails or was not checked, or "
        "(a run made with --baseline) it regressed against its baseline; 2 not a run folder",
    )
    report.add_argument("folder", metavar="DIR", help="a run's report folder (reports/...)")

    compare = sub.add_parser(
        "compare",
        help="compare two runs of a target: per claim better, worse, unchanged, new or gone",
        description="Compare two runs of the same target, claim by claim: a claim that held "
        "and now fails or could not be checked, a figure that moved beyond its noise (the "
        "larger of its repeats' spread and the claim's tolerance; for import times and load "
        "figures, which have no tolerance, a factor of the older figure: 3 for an import's "
        "fastest repeat, at the run's pace, 2 for load figures; never under 1 ms), or a claim "
        "only one run has.",
        epilog="exit status: 0 nothing got worse; 1 a claim that held now fails, or a figure "
        "got worse beyond its noise; 2 a path is not a run (folder or signoff.json), or the "
        "runs are of different targets",
    )
    compare.add_argument(
        "old", metavar="OLD", help="the older run: its report folder or signoff.json"
    )
    compare.add_argument(
        "new", metavar="NEW", help="the newer run: its report folder or signoff.json"
    )

    services = sub.add_parser("services", help="start the services a claims file needs")
    services_sub = services.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    services_sub.required = True
    up = services_sub.add_parser("up", help="start them, print their URLs, keep them until Ctrl-C")
    up.add_argument(
        "claims",
        nargs="?",
        default="signoff.toml",
        help="the claims file whose [target].services and dependencies to start "
        "(default: signoff.toml)",
    )
    up.add_argument("--services", default="auto", choices=BACKEND_CHOICES)
    _docker_image_option(up)
    build = services_sub.add_parser(
        "build-images",
        help="build the docker backend's Redis and Postgres images from this machine's binaries",
        description="Build signoff-redis:local and signoff-postgres:local from the binaries the "
        "system backend runs and the libraries they need (no registry needed); skipped when "
        "the image already has the same inputs.",
    )
    build.add_argument("--force", action="store_true", help="build even if up to date")

    hang = sub.add_parser(
        "hang",
        help="reproduce a hang locally: show what it connects to and where it is stuck",
        epilog="exit status: 1 it hangs; 0 it ended in time (returned, raised or died); "
        "2 bad claims file or command line; 3 the harness could not run; 130 interrupted",
    )
    hang.add_argument(
        "target",
        metavar="MODULE_OR_CALLABLE",
        help="a module to import (core.tasks) or a callable to call (core.health:ping_redis)",
    )
    hang.add_argument(
        "--claims",
        default="signoff.toml",
        help="the claims file: the target and its services (default: signoff.toml)",
    )
    hang.add_argument(
        "--fault",
        action="append",
        metavar="SERVICE:FAULT",
        help="redis:hang, postgres:latency:2s, ...; a FAULT alone for every service; none for "
        "no fault (default: hang on every service of the target); may be repeated",
    )
    hang.add_argument(
        "--timeout",
        metavar="DURATION",
        help="still running after this: it hangs (default: [imports].timeout, else 10s)",
    )
    hang.add_argument(
        "--services",
        default="auto",
        choices=BACKEND_CHOICES,
        help="where Redis and Postgres come from (default: auto)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "check":
            return _check(args.claims, imports=args.imports)
        if getattr(args, "docker_image", None):
            from signoff.services.docker import set_images

            set_images(args.docker_image)
        if args.command == "run":
            return _run(args)
        if args.command == "hang":
            return _hang(args)
        if args.command == "report":
            return _report(Path(args.folder))
        if args.command == "compare":
            return _compare(args.old, args.new)
        if args.command == "load":
            from signoff.kinds.load.cli import load_command

            return load_command(args, _run)
        if args.command == "worker":
            from signoff.kinds.load.cli import worker_command

            return worker_command(args)
        if args.action == "build-images":
            from signoff.services.images import build_command

            for line in build_command(force=args.force):
                print(line)
            return 0
        return _services_up(args)
    except ClaimsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_status
    except SignoffError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("signoff: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _check(path: str, *, imports: bool = False) -> int:
    from signoff.checks import expand_claims
    from signoff.claims import load_claims

    claims = load_claims(path, runnable=True)
    refs = expand_claims(claims)
    kinds = sorted({r.kind for r in refs})
    line = (
        f"{path}: ok: {len(refs)} claims ({', '.join(kinds) or 'none'}) for target "
        f"{claims.target.name!r}"
    )
    if not imports:
        print(line)
        return 0
    from signoff.import_check import check_imports
    from signoff.units import format_duration

    found = check_imports(claims, path)
    for problem in [*found.problems, *found.broken]:
        print(problem, file=sys.stderr)
    if found.not_reached:
        print(
            f"{path}: not imported (the interpreter hung or died before them, above): "
            + ", ".join(found.not_reached),
            file=sys.stderr,
        )
    if found.problems:
        return 2
    if found.broken:
        return 1
    if not found.names:
        print(f"{line}; no callable or exception class is named, nothing to import")
    else:
        print(
            f"{line}; {found.names} names of target code imported in one interpreter in "
            f"{format_duration(found.seconds)}"
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    import pytest

    from signoff.checks import expand_claims
    from signoff.claims import load_claims
    from signoff.schedule import parse_jobs
    from signoff.units import parse_duration

    if getattr(args, "allow_remote", False):
        from signoff.kinds.load.cli import allow_remote

        allow_remote(True)
    claims = load_claims(args.claims, runnable=True)
    only = None
    if args.only:
        try:
            only = {kinds.from_word(w.strip()) for w in args.only.split(",") if w.strip()}
        except ValueError as exc:
            raise UsageError(f"--only: {exc}") from None
    try:
        parse_duration(args.deadline)
    except ValueError as exc:
        raise UsageError(f"--deadline: {exc}") from None
    jobs = getattr(args, "jobs", "1")  # `signoff load`: its claims run alone anyway
    try:
        parse_jobs(jobs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    baseline = getattr(args, "baseline", None)  # `signoff load` has none
    plugins: list[object] = []
    if baseline:
        from signoff.report.baseline import BaselineHooks, check_baseline

        checked = check_baseline(baseline, claims.target.name, args.report_dir)
        plugins.append(BaselineHooks(checked))
    refs = [r for r in expand_claims(claims) if only is None or r.kind in only]
    if not refs:
        raise UsageError(
            f"{args.claims}: no claims to check" + (f" of kind {args.only}" if args.only else "")
        )
    suites = bundled.suites()
    pytest_args = [
        str(suites),
        "-p",
        "no:cacheprovider",
        "--assert=plain",  # the suites assert nothing themselves; signoff is imported already
        "-q",
        "--tb=no",
        "-rN",
        "--no-header",
        "-c",
        str(Path(__file__).with_name("pytest_run.ini")),
        "--rootdir",
        str(suites.parent),
        "--claims",
        str(args.claims),
        "--signoff-services",
        args.services,
        "--signoff-deadline",
        args.deadline,
        "--signoff-jobs",
        str(jobs),
    ]
    if args.only:
        pytest_args += ["--signoff-only", args.only]
    if args.report_dir:
        pytest_args += ["--signoff-report-dir", args.report_dir]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        pytest_args += ["-p", "signoff.plugin"]
    code = int(pytest.main(pytest_args, plugins=plugins))
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if code in (0, 1, 2, 3):
        return code
    return 3  # pytest's own internal or usage error: the harness could not run


def _report(folder: Path) -> int:
    from signoff.report.again import render_again
    from signoff.report.compare import comparison_for
    from signoff.report.terminal import render_comparison, render_table
    from signoff.verdict import overall

    info, verdicts = render_again(folder)
    width = shutil.get_terminal_size((100, 24)).columns
    for line in [*render_table(verdicts, width=width), *(f"note: {n}" for n in info.notes)]:
        print(line)
    print(f"report: {folder}")
    comparison = comparison_for(info, verdicts, folder)  # a run made with --baseline
    if comparison is not None:
        for line in render_comparison(comparison, width=width):
            print(line)
    if overall(verdicts) != "holds":
        return 1
    return 1 if comparison is not None and comparison.regressed else 0


def _compare(old: str, new: str) -> int:
    from signoff.report.compare import compare_runs
    from signoff.report.terminal import render_comparison

    comparison = compare_runs(old, new)
    for line in render_comparison(comparison, width=shutil.get_terminal_size((100, 24)).columns):
        print(line)
    return 1 if comparison.regressed else 0


def _hang(args: argparse.Namespace) -> int:
    from signoff.hang import hang

    return hang(
        args.target,
        claims_path=args.claims,
        faults=args.fault,
        timeout=args.timeout,
        backend=args.services,
    )


def _services_up(args: argparse.Namespace) -> int:
    from signoff.claims import load_claims
    from signoff.services import Surroundings, start_with_dependencies, stop_services

    claims = load_claims(args.claims)
    for line in processes.reap_leftovers():
        print(f"signoff: stopped a leftover of a killed run: {line}", file=sys.stderr)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logs = processes.temp_folder("signoff-services-")  # the dependencies' logs
    try:
        services = start_with_dependencies(
            list(claims.target.services),
            claims.target.dependencies,
            Surroundings.of(claims, logs),
            backend=args.services,
        )
    except BaseException:
        processes.remove_folder(logs)
        raise
    try:
        for service in services.values():
            print(f"{service.url_env}={service.url}    # {service.describe()}", flush=True)
        if claims.target.dependencies:
            print(f"signoff: the dependencies' logs are in {logs}", file=sys.stderr)
        print("signoff: services are up; Ctrl-C stops them", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        stop_services(services)
        processes.stop_all()
        processes.remove_folder(logs)
    print("signoff: services stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
