"""Judging what the clients of a [[websocket]] claim saw: one `Part` per thing claimed
(the opening handshake, `heartbeat`, `idle_close`, `stays_open`), each with its line of evidence
and its figures. Pure functions of the sessions, so every wording is tested without a server.

Times get the contract's websocket tolerance: the larger of 10% and 250 ms (`tolerance`).
- heartbeat: the gaps between the handshake and the first heartbeat and between heartbeats,
  the first `beats` of them; the longest must be within `heartbeat` + tolerance. A client
  watched to the end of its window without `beats` heartbeats ends on an open gap, which is at
  least as long as the window's end minus the last heartbeat.
- idle_close: the idle client must be closed by the server within `idle_close` + tolerance.
- stays_open: every answering client must still be open `stays_open` - tolerance after its
  handshake (it is watched for the whole `stays_open`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from signoff.kinds.websocket.client import Session

_VIA_WORDS = {"ping": "ping frames", "text": "text messages", "binary": "binary messages"}


def tolerance(seconds: float) -> float:
    """The slack a websocket time gets (shared/CLAIMS.md): the larger of 10% and 250 ms."""
    return max(0.10 * seconds, 0.25)


def heartbeat_window(every: float, beats: int) -> float:
    """How long a heartbeat client is watched at most: a server within the claim has sent
    `beats` heartbeats by then, each gap at most `every` + tolerance."""
    return beats * (every + tolerance(every))


@dataclass
class Part:
    """One thing claimed, judged: `ok`, its evidence line, its figures. `cut`: the run's
    deadline stopped the watch before the part could be judged (not a failure, no pass)."""

    name: str
    ok: bool
    line: str
    measured: dict[str, Any] = field(default_factory=dict)
    cut: bool = False


def secs(seconds: float) -> str:
    """ "1.00 s", "20.1 s": two decimals under 10 s, one above."""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def claimed(seconds: float) -> str:
    """A claimed time as the claims file would say it: "2 s", "0.5 s"."""
    return f"{seconds:g} s"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _r(seconds: float) -> float:
    return round(seconds, 3)


# -- the opening handshake ---------------------------------------------------------------------


def judge_connect(sessions: Sequence[Session], url: str) -> Part | None:
    """A failed part when any client got no WebSocket connection; None when all did."""
    failed = [s for s in sessions if not s.opened]
    if not failed:
        return None
    first = failed[0]
    which = "" if len(sessions) == 1 else f" for {len(failed)} of {len(sessions)} clients"
    return Part(
        "connect",
        False,
        f"the opening handshake of {url} failed{which}: {first.problem}",
        {"handshakes_failed": len(failed)},
    )


# -- heartbeat -----------------------------------------------------------------------------------


@dataclass
class _Beats:
    """One client's heartbeat figures."""

    session: Session
    gaps: list[float]
    open_gap: float | None  # watched to the end without `beats` heartbeats: the last gap so far

    @property
    def longest(self) -> float:
        return max([*self.gaps, *([self.open_gap] if self.open_gap is not None else [])], default=0)


def _beats_of(session: Session, beats: int) -> _Beats:
    times = [0.0, *(b.at for b in session.beats[:beats])]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    open_gap = None if len(gaps) >= beats else max(0.0, session.end - times[-1])
    return _Beats(session, gaps, open_gap)


def judge_heartbeat(
    sessions: Sequence[Session], every: float, beats: int, reply: str | None = None
) -> Part:
    """The answering clients' heartbeats (the worst client speaks for all)."""
    limit = every + tolerance(every)
    figures = [_beats_of(s, beats) for s in sessions if s.opened]
    bad = [f for f in figures if f.open_gap is not None or f.longest > limit]
    cut = [f for f in bad if f.session.cut and f.session.closed is None and f.longest <= limit]
    failing = [f for f in bad if f not in cut]
    worst = max(failing or cut or figures, key=lambda f: f.longest)
    ok = not failing
    line = _heartbeat_line(worst, every, beats)
    if len(figures) > 1:
        line = (
            f"the worst of {len(figures)} clients: {line}"
            if failing
            else f"every one of {len(figures)} clients got its beats; the worst: {line}"
        )
    via = sorted({b.via for f in figures for b in f.session.beats[:beats]})
    if via:
        line += f"; the beats were {' and '.join(_VIA_WORDS[v] for v in via)}"
    unanswered = any(b.via != "ping" for b in worst.session.beats)
    if not ok and worst.session.closed is not None and reply is None and unanswered:
        line += _answered([worst.session], reply)
    measured: dict[str, Any] = {
        "gaps_s": [_r(g) for g in worst.gaps],
        "longest_gap_s": _r(worst.longest),
        "beats_via": via,
    }
    if worst.open_gap is not None:
        measured["open_gap_s"] = _r(worst.open_gap)
    if len(figures) > 1 and failing:
        measured["clients_failing_heartbeat"] = len(failing)
    return Part("heartbeat", ok, line, measured, cut=ok and bool(cut))


def _heartbeat_line(beats_seen: _Beats, every: float, beats: int) -> str:
    session = beats_seen.session
    limit = every + tolerance(every)
    within = f"{claimed(every)} (+{secs(tolerance(every))})"
    closed = session.closed
    if not beats_seen.gaps:
        if closed is not None:
            return (
                f"no heartbeat before the server closed the connection {secs(closed.at)} after "
                f"the connect {closed.describe()} (claimed every {claimed(every)})"
            )
        return (
            f"no heartbeat in {secs(session.end)} after the connect: the server sent nothing "
            f"(claimed every {claimed(every)})"
        )
    listed = "gaps " + ", ".join(secs(g) for g in beats_seen.gaps)
    if beats_seen.open_gap is not None:
        if closed is not None:
            return (
                f"{listed}, then the server closed the connection {secs(closed.at)} after the "
                f"connect {closed.describe()}, after {len(beats_seen.gaps)} of {beats} beats "
                f"(claimed every {claimed(every)})"
            )
        listed += f", then nothing for {secs(beats_seen.open_gap)} until watching stopped"
        if session.cut and beats_seen.longest <= limit:
            return f"{listed} (the run's deadline): {len(beats_seen.gaps)} of {beats} beats"
    longest = secs(beats_seen.longest)
    if beats_seen.longest > limit:
        return f"{listed}: the longest, {longest}, is over the {within} claimed"
    return f"{listed}: longest {longest} within {within}"


# -- idle_close ----------------------------------------------------------------------------------


def judge_idle_close(session: Session, within: float) -> Part:
    """The idle client (no pong, no reply, nothing sent)."""
    slack = tolerance(within)
    budget = f"{claimed(within)} (+{secs(slack)})"
    who = "an idle client (no pong, nothing sent)"
    unanswered = len(session.beats)
    left = f"; it left {_plural(unanswered, 'heartbeat')} unanswered" if unanswered else ""
    closed = session.closed
    if closed is not None:
        measured: dict[str, Any] = {
            "idle_closed_s": _r(closed.at),
            "idle_close_code": closed.code,
        }
        if closed.reason:
            measured["idle_close_reason"] = closed.reason
        ok = closed.at <= within + slack
        verdict = "within" if ok else "over the"
        return Part(
            "idle_close",
            ok,
            f"{who} was closed by the server {secs(closed.at)} after the connect "
            f"{closed.describe()}: {verdict} {budget}{'' if ok else ' claimed'}{left}",
            measured,
        )
    measured = {"idle_closed_s": None, "idle_open_s": _r(session.watched_s)}
    if session.cut:
        return Part(
            "idle_close",
            True,
            f"{who} was still open {secs(session.watched_s)} after the connect when the run's "
            f"deadline stopped the watch",
            measured,
            cut=True,
        )
    return Part(
        "idle_close",
        False,
        f"{who} was still open {secs(session.watched_s)} after the connect: the server did not "
        f"close it within {budget}{left}",
        measured,
    )


# -- stays_open ----------------------------------------------------------------------------------


def judge_stays_open(sessions: Sequence[Session], duration: float, reply: str | None) -> Part:
    """Every answering client open for `duration` (less the tolerance)."""
    slack = tolerance(duration)
    opened = [s for s in sessions if s.opened]
    early = sorted(
        (s for s in opened if s.closed is not None and s.closed.at < duration - slack),
        key=lambda s: s.end,
    )
    answered = _answered(opened, reply)
    if early:
        first = early[0]
        assert first.closed is not None
        many = f" ({len(early)} of {len(opened)})" if len(opened) > 1 else ""
        return Part(
            "stays_open",
            False,
            f"an answering client{many} was closed by the server {secs(first.closed.at)} after "
            f"the connect {first.closed.describe()}: claimed open for {claimed(duration)} "
            f"(-{secs(slack)}){answered}",
            {
                "open_s": _r(first.closed.at),
                "close_code": first.closed.code,
                "clients_closed_early": len(early),
            },
        )
    shortest = min(opened, key=lambda s: s.end)
    who = "an answering client" if len(opened) == 1 else f"{len(opened)} answering clients"
    cut = shortest.cut and shortest.end < duration - slack
    if cut:
        line = (
            f"{who} stayed open {secs(shortest.end)} when the run's deadline stopped the watch "
            f"(claimed {claimed(duration)})"
        )
    else:
        line = f"{who} stayed open {secs(shortest.end)}: as claimed ({claimed(duration)})"
        if shortest.closed is not None:
            line += f", closed then {shortest.closed.describe()}, within the tolerance"
    return Part("stays_open", True, line + answered, {"open_s": _r(shortest.end)}, cut=cut)


def _answered(sessions: Sequence[Session], reply: str | None) -> str:
    """ "; it ponged 2 pings and replied {...} to 3 messages", for the evidence (with several
    clients, the least any of them answered)."""
    if not sessions:
        return ""
    pongs = min(s.pongs for s in sessions)
    messages = min(sum(1 for b in s.beats if b.via != "ping") for s in sessions)
    who, least = ("it", "") if len(sessions) == 1 else ("each", "at least ")
    if reply is None and messages:
        return f"; {who} left {least}{_plural(messages, 'message')} unanswered (no reply given)"
    parts = []
    if pongs:
        parts.append(f"ponged {least}{_plural(pongs, 'ping')}")
    if reply is not None:
        parts.append(f"replied {reply} to {least}{_plural(messages, 'message')}")
    if not parts:
        return f"; {who} had nothing to answer"
    return f"; {who} {' and '.join(parts)}"


def round_trips(sessions: Sequence[Session]) -> dict[str, float]:
    """The answering clients' ping round trips, as figures."""
    times = sorted(t for s in sessions for t in s.round_trips)
    if not times:
        return {}
    return {
        "ping_rtt_median_s": round(times[len(times) // 2], 6),
        "ping_rtt_max_s": round(times[-1], 6),
    }
