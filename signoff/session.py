"""What the pytest plugin does at each stage of a run, as plain functions: load the claims and
build the run context, start the services, check one claim, finish (reports, stop everything)."""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import pytest

from signoff import processes
from signoff.checks import check, expand_claims, kind_from_word
from signoff.claims import ClaimRef, load_claims
from signoff.context import RunContext, default_report_dir
from signoff.errors import ServiceError
from signoff.faults.proxy import ProxyHub
from signoff.ledger import Ledger
from signoff.report import RunInfo, write_reports
from signoff.report.terminal import render_table
from signoff.server import stop_target_server
from signoff.services import start_services, stop_services
from signoff.units import parse_duration
from signoff.verdict import Verdict

# kinds whose probes need the services up
_SERVICE_KINDS = ("import", "timeout", "degradation", "http", "load", "websocket")


def configure(
    path: str, *, only: str | None, deadline: str, report_dir: str | None
) -> tuple[RunContext, list[ClaimRef]]:
    """Load and validate everything; raise ClaimsError or ValueError before anything starts."""
    claims = load_claims(path)
    kinds = {kind_from_word(w.strip()) for w in only.split(",") if w.strip()} if only else None
    seconds = parse_duration(deadline)
    atexit.register(processes.stop_all)  # the last resort, if a hook never got to finish()
    refs = [r for r in expand_claims(claims) if kinds is None or r.kind in kinds]
    folder = Path(report_dir) if report_dir else default_report_dir(claims.target.name)
    ctx = RunContext(
        claims=claims,
        report_dir=folder,
        ledger=Ledger(folder / "ledger.jsonl"),
        info=RunInfo(target=claims.target.name, claims_file=str(claims.path)),
        deadline=time.monotonic() + seconds,
    )
    return ctx, refs


def stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C does, so every service and process is stopped."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.suppress(ValueError):  # not in the main thread: leave it to the caller
        signal.signal(signal.SIGTERM, interrupt)


def start(ctx: RunContext, refs: Sequence[ClaimRef], backend: str) -> None:
    """Reap what a killed run left, then start the services once for the whole run."""
    for line in processes.reap_leftovers():
        sys.stderr.write(f"signoff: stopped a leftover of a killed run: {line}\n")
    wanted = list(ctx.claims.target.services)
    if not any(r.kind in _SERVICE_KINDS for r in refs):
        wanted = []
    ctx.services = start_services(
        wanted, backend=backend, timeout=min(120.0, max(ctx.remaining(), 1.0))
    )
    ctx.info.services = {name: svc.describe() for name, svc in ctx.services.items()}
    ctx.hub = ProxyHub()
    ctx.hub.start()


def verify(ctx: RunContext, claim: ClaimRef) -> Verdict:
    """Check one claim, record its verdict at once, and fail the test unless it holds."""
    started = time.monotonic()
    if ctx.remaining() <= 0:
        verdict = Verdict(
            claim.id, claim.kind, "error", evidence="not run: the run's deadline had passed"
        )
    else:
        try:
            verdict = check(ctx, claim)
        except ServiceError as exc:
            verdict = Verdict(
                claim.id,
                claim.kind,
                "error",
                evidence=f"could not check: {exc}",
                duration_s=time.monotonic() - started,
            )
    ctx.ledger.append(verdict)
    if verdict.status != "holds":
        pytest.fail(f"{verdict.status}: {verdict.evidence}", pytrace=False)
    return verdict


def finish(ctx: RunContext, refs: Sequence[ClaimRef], interrupted: bool) -> None:
    """Stop everything the run started, then write the reports from the ledger. A claim that
    never got its verdict is reported as `error`: an unchecked claim is no pass."""
    try:
        try:
            stop_target_server(ctx)  # the served target first: it talks to the services
        finally:
            if ctx.hub is not None:
                ctx.hub.close()
        stop_services(ctx.services)
    finally:
        processes.stop_all()
        ctx.info.duration_s = time.time() - ctx.info.started.timestamp()
        if interrupted:
            ctx.info.notes.append("the run was interrupted before every claim was checked")
        verdicts = ctx.ledger.read()
        done = {v.id for v in verdicts}
        why = (
            "not checked: the run was interrupted"
            if interrupted
            else "not checked: the run ended before this claim"
        )
        verdicts += [Verdict(r.id, r.kind, "error", evidence=why) for r in refs if r.id not in done]
        write_reports(ctx.info, verdicts, ctx.report_dir)


def summary_lines(ctx: RunContext, width: int) -> list[str]:
    return [*render_table(ctx.ledger.read(), width=width), f"report: {ctx.report_dir}"]
