"""[[websocket]] claims: real WebSocket clients against `path` of the run's served target
(`signoff.server`), all at once in one event loop, so a claim costs its longest wait, not the
sum of them:

- `clients` answering clients (when `heartbeat` or `stays_open` is claimed): they pong every
  ping frame and send `reply` for every message; each records every heartbeat's arrival and
  must get `beats` of them, the longest gap within `heartbeat`, and must stay open for
  `stays_open`. The worst client speaks for all.
- one idle client (when `idle_close` is claimed): it sends nothing after its opening handshake,
  and the server must close it within `idle_close`.

Each client's opening handshake gets `connect`; then it is watched for what the claim needs and
no longer (see judge.py for the windows and the tolerance), never past the run's deadline.
Faults (`service`/`fault` or `faults`) are in force on the served target's proxies from before
the first connect to the end of the measurement; a fault the server never met makes a claim
that would hold `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from signoff.claims.model import ClaimRef, WebsocketClaim
from signoff.context import RunContext
from signoff.engine.met import describe_faults, missing_evidence
from signoff.kinds.websocket.client import CLOSE_GRACE, Endpoint, Plan, Session, run_client
from signoff.kinds.websocket.faults import ServerFaults
from signoff.kinds.websocket.judge import (
    Part,
    heartbeat_window,
    judge_connect,
    judge_heartbeat,
    judge_idle_close,
    judge_stays_open,
    round_trips,
    secs,
    tolerance,
)
from signoff.report import live
from signoff.server import TargetServer, server_or_error
from signoff.services.base import LOOPBACK
from signoff.units import format_duration
from signoff.verdict import Verdict

if TYPE_CHECKING:
    from signoff.server_met import Met

EXIT_WAIT = 0.5  # a connection lost: how long the server may take to exit, if it is dying
BACKSTOP = 2.0  # past every client's own bound: the clients are stuck (a bug), give up


def plans(spec: WebsocketClaim) -> list[Plan]:
    """The clients a claim needs (see the module's doc)."""
    found: list[Plan] = []
    if spec.heartbeat is not None or spec.stays_open is not None:
        window = heartbeat_window(spec.heartbeat, spec.beats) if spec.heartbeat else 0.0
        stays = spec.stays_open or 0.0
        answering = Plan(
            "answering",
            at_most=max(window, stays),
            at_least=stays,
            beats=spec.beats if spec.heartbeat is not None else None,
            reply=spec.reply,
        )
        found.extend([answering] * spec.clients)
    if spec.idle_close is not None:
        found.append(Plan("idle", at_most=spec.idle_close + tolerance(spec.idle_close)))
    return found


async def measure(
    endpoint: Endpoint, wanted: Sequence[Plan], connect_s: float, run_deadline: float
) -> list[Session] | None:
    """Every client at once; None when they did not end by their own bounds (a bug)."""
    bound = connect_s + max(p.at_most for p in wanted) + 2 * CLOSE_GRACE + BACKSTOP
    try:
        async with asyncio.timeout(bound):
            return list(
                await asyncio.gather(
                    *(run_client(endpoint, plan, connect_s, run_deadline) for plan in wanted)
                )
            )
    except TimeoutError:
        return None


def check_websocket(ctx: RunContext, claim_id: str, spec: WebsocketClaim) -> Verdict:
    started = time.monotonic()
    verdict = Verdict(claim_id, "websocket", "holds", budget=_budget(spec))
    server = server_or_error(ctx, verdict, started)
    if server is None:
        return verdict
    notes = server.take_restart_note()
    endpoint = Endpoint(LOOPBACK, server.port, spec.path, dict(spec.headers))
    wanted = plans(spec)
    planned = spec.planned_faults()
    met: dict[str, Met] = {}
    with ServerFaults(ctx, server, planned) as faults:
        if faults.missing:
            verdict.status = "error"
            verdict.evidence = missing_evidence(faults.missing)
            verdict.duration_s = time.monotonic() - started
            return verdict
        live.note(f"watching {len(wanted)} WebSocket client{'s' if len(wanted) > 1 else ''}")
        sessions = asyncio.run(measure(endpoint, wanted, spec.connect, ctx.deadline))
        if planned:
            met = faults.met()
    notes.extend(faults.notes())
    if sessions is None:
        verdict.status = "error"
        verdict.evidence = (
            "could not check: the clients did not end within their own bounds "
            "(a bug in signoff, not a finding about the target)"
        )
    else:
        _judge(verdict, spec, endpoint, sessions)
        if met:
            _judge_met(verdict, planned, met)
    notes.extend(_server_notes(server, sessions))
    if verdict.status == "holds" and not server.alive:
        # a dead server closes every connection: that is no idle client closed as claimed
        verdict.status = "fails"
        verdict.evidence = (
            f"{server.exit_words()} during this claim: what the clients saw proves nothing\n"
            f"not judged: {verdict.evidence}"
        )
    if notes:
        verdict.evidence += "\n" + "\n".join(f"note: {n}" for n in notes)
    verdict.duration_s = time.monotonic() - started
    return verdict


def _judge(
    verdict: Verdict, spec: WebsocketClaim, endpoint: Endpoint, sessions: list[Session]
) -> None:
    answering = [s for s in sessions if s.plan.role == "answering"]
    idle = [s for s in sessions if s.plan.role == "idle" and s.opened]
    parts: list[Part] = []
    connect = judge_connect(sessions, endpoint.url)
    if connect is not None:
        parts.append(connect)
    opened = [s for s in answering if s.opened]
    if spec.heartbeat is not None and opened:
        parts.append(judge_heartbeat(opened, spec.heartbeat, spec.beats, spec.reply))
    if spec.stays_open is not None and opened:
        parts.append(judge_stays_open(opened, spec.stays_open, spec.reply))
    if spec.idle_close is not None and idle:
        parts.append(judge_idle_close(idle[0], spec.idle_close))
    failed = [p for p in parts if not p.ok]
    if failed:
        verdict.status = "fails"
    elif any(p.cut for p in parts):
        verdict.status = "error"
    ordered = failed + [p for p in parts if p.ok]
    lines = [p.line for p in ordered]
    if verdict.status == "error":
        lines[0] = f"not checked: {lines[0]}"
    verdict.evidence = "\n".join(lines)
    measured: dict[str, Any] = {}
    for part in ordered:  # the first figure is the report's headline: a failing part's
        measured.update(part.measured)
    if answering:
        measured["clients"] = len(answering)
    handshakes = [s.handshake_s for s in sessions if s.handshake_s is not None]
    if handshakes:
        measured["handshake_max_s"] = round(max(handshakes), 4)
    measured.update(round_trips(answering))
    verdict.measured = measured
    verdict.details = "\n".join(_session_line(i, s) for i, s in enumerate(sessions, 1))


def _judge_met(verdict: Verdict, planned: Mapping[str, Any], met: Mapping[str, Met]) -> None:
    """What met each fault, in the figures and the evidence; a holding claim with a fault the
    server never met is `error`, a failing one stays `fails` with that as a note."""
    if len(met) == 1:
        verdict.measured.update(next(iter(met.values())).measured())
    else:
        for name, one in met.items():
            verdict.measured.update({f"{k}_{name}": v for k, v in one.measured().items()})
    unmet: list[str] = []
    for name, one in met.items():
        if one.exercised:
            continue
        if one.unseen is not None:
            unmet.append(
                f"could not tell whether the server reached {name} under {planned[name]}: "
                f"{one.seen()}, but {one.unseen}{one.background_note()}"
            )
        else:
            unmet.append(
                f"the server never reached {name} under {planned[name]} while the clients "
                f"were connected: the fault was not exercised ({one.seen()})"
                f"{one.background_note()}"
            )
    seen = "; ".join(f"{name}: {one.summary()}" for name, one in met.items() if one.exercised)
    during = f"with {describe_faults(planned)}" + (f" ({seen})" if seen else "")
    if not unmet:
        verdict.evidence += f"\n{during}"
    elif verdict.status == "holds":
        verdict.status = "error"
        verdict.evidence = "\n".join(unmet) + f"\nnot judged: {verdict.evidence}\n{during}"
    else:
        verdict.evidence += f"\n{during}\n" + "\n".join(f"note: {u}" for u in unmet)


def _server_notes(server: TargetServer, sessions: list[Session] | None) -> list[str]:
    notes: list[str] = []
    if (sessions is None or any(s.lost for s in sessions)) and server.proc is not None:
        # a server that dropped its connections as it died: let its exit be seen
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(EXIT_WAIT)
    if not server.alive and server.proc is not None:
        notes.append(
            f"{server.exit_words()} during this claim; last lines of server.log:\n"
            + "\n".join(server.log_tail().splitlines()[-8:])
        )
    notes.extend(server.background_problems())
    return notes


def _session_line(number: int, session: Session) -> str:
    """One client's whole story, for the report's details."""
    head = f"client {number} ({session.plan.role})"
    if not session.opened:
        return f"{head}: {session.problem}"
    beats = ", ".join(f"{secs(b.at)} {b.via}" for b in session.beats) or "none"
    if session.closed is not None:
        end = f"closed by the server at {secs(session.closed.at)} {session.closed.describe()}"
    else:
        end = f"still open when watching stopped at {secs(session.watched_s)}"
    handshake = format_duration(session.handshake_s or 0.0)
    return f"{head}: handshake {handshake}; beats at {beats}; {end}"


def _budget(spec: WebsocketClaim) -> dict[str, Any]:
    budget: dict[str, Any] = {"path": spec.path}
    if spec.heartbeat is not None:
        budget.update(
            heartbeat_s=spec.heartbeat,
            beats=spec.beats,
            heartbeat_tolerance_s=round(tolerance(spec.heartbeat), 3),
        )
    if spec.idle_close is not None:
        budget.update(
            idle_close_s=spec.idle_close,
            idle_close_tolerance_s=round(tolerance(spec.idle_close), 3),
        )
    if spec.stays_open is not None:
        budget.update(
            stays_open_s=spec.stays_open,
            stays_open_tolerance_s=round(tolerance(spec.stays_open), 3),
        )
    if spec.clients > 1:
        budget["clients"] = spec.clients
    if spec.reply is not None:
        budget["reply"] = spec.reply
    planned = spec.planned_faults()
    if planned:
        budget["faults"] = describe_faults(planned)
    return budget


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, WebsocketClaim)
    return check_websocket(ctx, ref.id, ref.spec)
