"""What the pytest plugin does at each stage of a run, as plain functions: load the claims and
build the run context, start the services and dependencies, check one claim, finish (reports,
stop everything)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from signoff import checks, kinds, processes
from signoff.checks import expand_claims
from signoff.claims import ClaimRef, load_claims
from signoff.claims.secrets import scrub, secret_values
from signoff.context import RunContext, default_report_dir
from signoff.engine import startups
from signoff.errors import ServiceError, SignoffError
from signoff.faults.proxy import ProxyHub
from signoff.ledger import Ledger
from signoff.report import RunInfo, live, write_reports
from signoff.report.terminal import render_table
from signoff.run_end import RunEnd, failure_parts
from signoff.schedule import Schedule, parse_jobs
from signoff.server import stop_target_server
from signoff.services import DependencyStarts, Surroundings, start_services, stop_services
from signoff.units import format_duration, parse_duration
from signoff.verdict import Verdict


def configure(
    path: str, *, only: str | None, deadline: str, report_dir: str | None, jobs: str = "1"
) -> tuple[RunContext, list[ClaimRef]]:
    """Load and validate everything; raise ClaimsError or ValueError before anything starts."""
    claims = load_claims(path, runnable=True)
    chosen = {kinds.from_word(w.strip()) for w in only.split(",") if w.strip()} if only else None
    seconds = parse_duration(deadline)
    workers = parse_jobs(jobs)
    atexit.register(processes.stop_all)  # the last resort, if a hook never got to finish()
    refs = [r for r in expand_claims(claims) if chosen is None or r.kind in chosen]
    folder = Path(report_dir) if report_dir else default_report_dir(claims.target.name)
    ctx = RunContext(
        claims=claims,
        report_dir=folder,
        ledger=Ledger(folder / "ledger.jsonl"),
        info=RunInfo(
            target=claims.target.name,
            claims_file=str(claims.path),
            planned=[(r.id, r.kind) for r in refs],
            jobs=workers,
        ),
        deadline=time.monotonic() + seconds,
    )
    ctx.info.save(folder)  # a run killed from here on can still be reported (`signoff report`)
    return ctx, refs


SIGTERM = "SIGTERM"  # the KeyboardInterrupt's message when SIGTERM ended the run

Handler = Callable[[int, FrameType | None], Any] | int | None


def stop_on_sigterm() -> Handler:
    """SIGTERM ends the run like Ctrl-C does, so every service and process is stopped. Returns
    the handler it replaced (for `restore_sigterm`), or None when it could not set it."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(SIGTERM)

    with contextlib.suppress(ValueError):  # not in the main thread: leave it to the caller
        return signal.signal(signal.SIGTERM, interrupt)
    return None


def restore_sigterm(previous: Handler) -> None:
    """Put back what `stop_on_sigterm` replaced (a run inside a longer-lived process)."""
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def start(ctx: RunContext, refs: Sequence[ClaimRef], backend: str) -> None:
    """Reap what a killed run left, then start the services and the dependencies once for the
    whole run, in parallel (none when no claim to check needs them). ServiceError if one
    cannot start (the run exits 3): the dependencies up are stopped here, the services by
    finish()."""
    for line in processes.reap_leftovers():
        sys.stderr.write(f"signoff: stopped a leftover of a killed run: {line}\n")
    target = ctx.claims.target
    needed = any(kinds.by_name(r.kind).services for r in refs)
    timeout = min(120.0, max(ctx.remaining(), 1.0))
    where = Surroundings.of(ctx.claims, ctx.report_dir)
    starts = DependencyStarts(
        target.dependencies if needed else {}, where, time.monotonic() + timeout
    )
    try:
        ctx.services = start_services(
            list(target.services) if needed else [], backend=backend, timeout=timeout
        )
    except BaseException:
        starts.abandon()
        raise
    ctx.services.update(starts.wait())  # finish() stops the services if this raises
    ctx.info.services = {name: svc.describe() for name, svc in ctx.services.items()}
    ctx.info.service_start_s = {name: svc.startup_s for name, svc in ctx.services.items()}
    ctx.info.save(ctx.report_dir)
    ctx.hub = ProxyHub()
    ctx.hub.start()


DEADLINE_NOTE = "the run's deadline (--deadline) passed: no claim started after it"
SERVICE_PING_S = 5.0  # a service that does not answer a ping in this long is gone or stuck


_SCHEDULE = pytest.StashKey[Schedule]()  # in RunContext.stash, when claims run side by side
WAIT_AFTER_DEADLINE_S = 900.0  # a test waits this long past the run's deadline for its claim


def start_side_by_side(ctx: RunContext, refs: Sequence[ClaimRef]) -> None:
    """With more than one job, start checking `refs` (the claims pytest will run) side by side
    (signoff.schedule); `verify` then waits for each verdict. One job: nothing to start."""
    if ctx.info.jobs <= 1 or not refs or _SCHEDULE in ctx.stash:
        return
    schedule = Schedule(refs, lambda ref: _shown(ctx, ref), ctx.ledger.append, ctx.info.jobs)
    ctx.stash[_SCHEDULE] = schedule
    # one core stays free for the measured calls while the others start interpreters
    startups.limit(max(1, (os.cpu_count() or 1) - 1))
    schedule.start()


def verify(ctx: RunContext, claim: ClaimRef) -> Verdict:
    """Check one claim, record its verdict at once, and fail the test unless it holds (when
    claims run side by side: wait for its verdict). An exception of the harness itself (a bug,
    or a SignoffError) is the claim's `error`, with what was raised and where: it never ends a
    claim without a verdict. The run's live display (signoff.report.live) shows the claim while
    it runs, then its verdict."""
    schedule = ctx.stash.get(_SCHEDULE, None)
    if schedule is not None and claim.id in schedule:
        waited = max(0.0, ctx.remaining()) + WAIT_AFTER_DEADLINE_S
        found = schedule.verdict(claim.id, timeout=waited)
        if found is None:
            pytest.fail(f"no verdict within {format_duration(waited)} of waiting", pytrace=False)
        verdict = found
    else:
        verdict = _shown(ctx, claim)
        ctx.ledger.append(verdict)
    if verdict.status != "holds":
        pytest.fail(f"{verdict.status}: {verdict.evidence}", pytrace=False)
    return verdict


def _shown(ctx: RunContext, claim: ClaimRef) -> Verdict:
    with live.claim(claim) as shown:
        verdict = _checked(ctx, claim)
        shown(verdict)
    return verdict


def _checked(ctx: RunContext, claim: ClaimRef) -> Verdict:
    started = time.monotonic()
    if ctx.remaining() <= 0:
        verdict = Verdict(claim.id, claim.kind, "error", evidence=_deadline_passed(ctx))
        if DEADLINE_NOTE not in ctx.info.notes:
            ctx.info.notes.append(DEADLINE_NOTE)
    elif (gone := _service_gone(ctx, claim)) is not None:
        verdict = _error(ctx, claim, gone, started)
    else:
        try:
            verdict = checks.check(ctx, claim)
        except SignoffError as exc:  # raised on purpose: its message says what went wrong
            verdict = _error(ctx, claim, f"could not check: {exc}", started)
        except Exception as exc:
            text, place = failure_parts(exc)
            verdict = _error(
                ctx,
                claim,
                # short lines: the terminal shows the first three, cut to its width
                f"could not check: the harness itself failed\n{text}\n"
                + (f"at {place}; " if place else "")
                + "a bug in signoff, not a finding about the target (traceback in details)",
                started,
                details="".join(traceback.format_exception(exc)),
            )
    return verdict


def _service_gone(ctx: RunContext, claim: ClaimRef) -> str | None:
    """Why a service this claim needs cannot serve it (it died or hangs since the last claim,
    outside any fault of signoff's), or None. A claim measured against a dead service would
    measure the death, not the claim."""
    if not kinds.needs_services(claim):
        return None
    for name, service in ctx.services.items():
        try:
            service.ping(timeout=SERVICE_PING_S)
        except ServiceError as exc:
            return (
                f"not checked: {name} ({service.describe()}) stopped answering before this "
                f"claim, outside any fault\n{exc}"
            )
    return None


def _deadline_passed(ctx: RunContext) -> str:
    over = format_duration(max(0.0, -ctx.remaining()))
    into = format_duration(max(0.0, time.time() - ctx.info.started.timestamp()))
    return (
        "not checked: the run's deadline (--deadline) had passed\n"
        f"{over} before this claim's turn, {into} into the run"
    )


def _error(
    ctx: RunContext, claim: ClaimRef, evidence: str, started: float, details: str = ""
) -> Verdict:
    secrets = secret_values(ctx.claims)
    return Verdict(
        claim.id,
        claim.kind,
        "error",
        evidence=scrub(evidence, secrets),
        duration_s=time.monotonic() - started,
        details=scrub(details, secrets),
    )


def finish(ctx: RunContext, refs: Sequence[ClaimRef], end: RunEnd | None = None) -> None:
    """Stop everything the run started, then write the reports from the ledger. A claim that
    never got its verdict is reported as `error`, with the reason `end` gives it (and added to
    the ledger, so the terminal shows it too): an unchecked claim is no pass."""
    end = end if end is not None else RunEnd()
    schedule = ctx.stash.get(_SCHEDULE, None)
    if schedule is not None:
        schedule.stop()  # no claim starts and no verdict is recorded from here on
        startups.limit(None)
    try:
        try:
            stop_target_server(ctx)  # the served target first: it talks to the services
        finally:
            if ctx.hub is not None:
                ctx.hub.close()
        ctx.info.notes.extend(ctx.run_at_finish())  # what kinds made on the services, dropped
        stop_services(ctx.services)
    finally:
        processes.stop_all()
        ctx.info.duration_s = time.time() - ctx.info.started.timestamp()
        if end.interrupted is not None:
            ctx.info.notes.append(
                f"the run was interrupted ({end.interrupted}) before every claim was checked"
            )
        verdicts = in_file_order(ctx.ledger.read(), [r.id for r in refs])
        done = {v.id for v in verdicts}
        secrets = secret_values(ctx.claims)
        unchecked = [
            Verdict(r.id, r.kind, "error", evidence=scrub(f"not checked: {end.why(r)}", secrets))
            for r in refs
            if r.id not in done
        ]
        for verdict in unchecked:
            with contextlib.suppress(OSError):  # the reports below still say it
                ctx.ledger.append(verdict)
        reasons = Counter(v.evidence for v in unchecked)
        for reason, count in reasons.most_common(3):
            ctx.info.notes.append(f"{count} claim{'s' if count > 1 else ''} {reason}")
        ctx.info.finished = True
        ctx.info.save(ctx.report_dir)
        write_reports(ctx.info, verdicts + unchecked, ctx.report_dir)


def in_file_order(verdicts: list[Verdict], ids: Sequence[str]) -> list[Verdict]:
    """The verdicts in the claims file's order (the ledger has them as their claims ended:
    side by side, the quiet lane first)."""
    order = {claim_id: i for i, claim_id in enumerate(ids)}
    return sorted(verdicts, key=lambda v: order.get(v.id, len(order)))


def summary_lines(ctx: RunContext, width: int) -> list[str]:
    notes = [f"note: {note}" for note in ctx.info.notes]
    verdicts = in_file_order(ctx.ledger.read(), [i for i, _ in ctx.info.planned])
    return [*render_table(verdicts, width=width), *notes, f"report: {ctx.report_dir}"]
