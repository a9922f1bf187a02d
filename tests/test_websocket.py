"""[[websocket]] claims: the judging rules on made-up sessions, the client against a server that
sends ping frames (websockets' own), and one real `signoff run` against a plain ASGI app
(tests/data/websocket_target) whose paths each behave one way."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from signoff import serve_app
from signoff.claims.model import WebsocketClaim
from signoff.kinds.websocket.check import plans
from signoff.kinds.websocket.client import Beat, Closing, Endpoint, Plan, Session, run_client
from signoff.kinds.websocket.judge import (
    heartbeat_window,
    judge_connect,
    judge_heartbeat,
    judge_idle_close,
    judge_stays_open,
    tolerance,
)
from tests.runs import claims, signoff

TARGET = Path(__file__).resolve().parent / "data" / "websocket_target"
PONG = '{"type": "pong"}'


def _answering(at: list[float], *, end: float, closed: Closing | None = None) -> Session:
    session = Session(Plan("answering", at_most=end), handshake_s=0.002)
    session.beats = [Beat(t, "text") for t in at]
    session.closed = closed
    session.watched_s = end
    return session


# -- the rules, on made-up sessions ------------------------------------------------------------


def test_tolerance_is_the_larger_of_ten_percent_and_250_ms() -> None:
    assert tolerance(1.0) == 0.25
    assert tolerance(20.0) == 2.0
    assert heartbeat_window(2.0, 3) == 3 * 2.25


def test_gaps_within_the_claim_hold_and_are_listed() -> None:
    part = judge_heartbeat([_answering([2.0, 4.0, 6.0], end=6.0)], 2.0, 3)
    assert part.ok and not part.cut
    assert part.line == (
        "gaps 2.00 s, 2.00 s, 2.00 s: longest 2.00 s within 2 s (+0.25 s); "
        "the beats were text messages"
    )
    assert part.measured["gaps_s"] == [2.0, 2.0, 2.0]


def test_a_gap_over_the_claim_fails_naming_the_longest() -> None:
    part = judge_heartbeat([_answering([2.0, 4.0, 10.1], end=10.1)], 2.0, 3)
    assert not part.ok
    assert part.line.startswith(
        "gaps 2.00 s, 2.00 s, 6.10 s: the longest, 6.10 s, is over the 2 s (+0.25 s) claimed"
    )


def test_a_gap_within_the_tolerance_holds() -> None:
    assert judge_heartbeat([_answering([2.2, 4.4, 6.6], end=6.6)], 2.0, 3).ok
    assert not judge_heartbeat([_answering([2.3, 4.6, 6.9], end=6.9)], 2.0, 3).ok


def test_a_server_that_sends_nothing_fails() -> None:
    part = judge_heartbeat([_answering([], end=6.75)], 2.0, 3)
    assert not part.ok
    assert part.line == (
        "no heartbeat in 6.75 s after the connect: the server sent nothing (claimed every 2 s)"
    )
    assert part.measured["longest_gap_s"] == 6.75


def test_too_few_beats_end_on_the_open_gap() -> None:
    part = judge_heartbeat([_answering([1.0, 2.0], end=2.25)], 0.5, 3)
    assert not part.ok
    assert part.line.startswith(
        "gaps 1.00 s, 1.00 s, then nothing for 0.25 s until watching stopped: the longest, "
        "1.00 s, is over the 0.5 s (+0.25 s) claimed"
    )


def test_a_close_before_the_beats_fails_with_its_code_and_the_missing_reply() -> None:
    closed = Closing(2.0, 4000, "idle timeout")
    part = judge_heartbeat([_answering([1.0], end=2.0, closed=closed)], 1.0, 3)
    assert not part.ok
    assert part.line == (
        "gaps 1.00 s, then the server closed the connection 2.00 s after the connect with close "
        'code 4000 "idle timeout", after 1 of 3 beats (claimed every 1 s); the beats were text '
        "messages; it left 1 message unanswered (no reply given)"
    )


def test_the_worst_of_several_clients_speaks_for_all() -> None:
    good = _answering([1.0, 2.0, 3.0], end=3.0)
    late = _answering([1.0, 2.6, 3.6], end=3.6)
    part = judge_heartbeat([good, late, good], 1.0, 3)
    assert not part.ok
    assert part.line.startswith("the worst of 3 clients: gaps 1.00 s, 1.60 s, 1.00 s: the longest")
    assert part.measured["clients_failing_heartbeat"] == 1
    assert judge_heartbeat([good, good], 1.0, 3).line.startswith(
        "every one of 2 clients got its beats; the worst: gaps 1.00 s"
    )


def test_ping_frames_are_named_as_such() -> None:
    session = _answering([], end=3.0)
    session.beats = [Beat(1.0, "ping"), Beat(2.0, "ping"), Beat(3.0, "text")]
    part = judge_heartbeat([session], 1.0, 3)
    assert part.line.endswith("the beats were ping frames and text messages")


def test_the_run_deadline_makes_an_unfinished_heartbeat_not_checked() -> None:
    session = _answering([1.0], end=1.5)
    session.cut = True
    part = judge_heartbeat([session], 1.0, 3)
    assert part.ok and part.cut
    assert "(the run's deadline): 1 of 3 beats" in part.line


def _idle(closed: Closing | None, watched: float, beats: int = 0) -> Session:
    session = Session(Plan("idle", at_most=watched), handshake_s=0.002, closed=closed)
    session.beats = [Beat(float(i + 1), "text") for i in range(beats)]
    session.watched_s = watched
    return session


def test_an_idle_client_closed_in_time_holds_with_the_close_code() -> None:
    part = judge_idle_close(_idle(Closing(6.02, 4000, "idle timeout"), 6.02, beats=3), 6.0)
    assert part.ok
    assert part.line == (
        "an idle client (no pong, nothing sent) was closed by the server 6.02 s after the connect "
        'with close code 4000 "idle timeout": within 6 s (+0.60 s); it left 3 heartbeats '
        "unanswered"
    )
    assert part.measured["idle_close_code"] == 4000


def test_an_idle_client_dropped_without_a_close_frame_says_so() -> None:
    part = judge_idle_close(_idle(Closing(1.0, None), 1.0), 2.0)
    assert part.ok and "without a close frame (a TCP close)" in part.line
    assert part.measured["idle_close_code"] is None


def test_an_idle_client_never_closed_fails_with_how_long_it_stayed() -> None:
    part = judge_idle_close(_idle(None, 6.6, beats=3), 6.0)
    assert not part.ok
    assert part.line.startswith(
        "an idle client (no pong, nothing sent) was still open 6.60 s after the connect: the "
        "server did not close it within 6 s (+0.60 s)"
    )
    assert judge_idle_close(_idle(Closing(7.0, 1000), 7.0), 6.0).ok is False


def test_stays_open_fails_on_an_early_close_and_holds_within_the_tolerance() -> None:
    early = _answering([1.0], end=1.5, closed=Closing(1.5, 4001, "session over"))
    early.replies = 1
    part = judge_stays_open([early], 3.0, PONG)
    assert not part.ok
    assert part.line == (
        "an answering client was closed by the server 1.50 s after the connect with close code "
        '4001 "session over": claimed open for 3 s (-0.30 s); it replied {"type": "pong"} to '
        "1 message"
    )
    nearly = _answering([1.0, 2.0], end=2.8, closed=Closing(2.8, 1001))
    assert judge_stays_open([nearly], 3.0, PONG).ok
    assert judge_stays_open([_answering([1.0, 2.0, 3.0], end=3.0)], 3.0, PONG).ok


def test_a_failed_handshake_is_its_own_failing_part() -> None:
    refused = Session(Plan("answering", at_most=1.0), problem="the server answered 403 Forbidden")
    part = judge_connect([refused, _answering([], end=1.0)], "ws://127.0.0.1:1/ws")
    assert part is not None and not part.ok
    assert part.line == (
        "the opening handshake of ws://127.0.0.1:1/ws failed for 1 of 2 clients: the server "
        "answered 403 Forbidden"
    )
    assert judge_connect([_answering([], end=1.0)], "ws://x") is None


def test_one_claim_measures_every_part_at_once_each_for_its_own_time() -> None:
    spec = WebsocketClaim.model_validate(
        {
            "name": "w",
            "path": "/ws",
            "heartbeat": "1s",
            "idle_close": "2s",
            "stays_open": "3s",
            "clients": 3,
            "reply": PONG,
        }
    )
    found = plans(spec)
    answering = Plan("answering", at_most=3.75, at_least=3.0, beats=3, reply=PONG)
    assert found == [answering, answering, answering, Plan("idle", at_most=2.25)]
    only_idle = WebsocketClaim.model_validate({"name": "w", "path": "/ws", "idle_close": "60s"})
    assert plans(only_idle) == [Plan("idle", at_most=66.0)]


def test_served_apps_get_no_protocol_pings_of_uvicorns_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Config:
        def __init__(self, app: Any, **options: Any) -> None:
            seen.update(options)

    class Server:
        def __init__(self, config: Config) -> None:
            pass

        def run(self, sockets: list[Any]) -> None:
            pass

    fake = types.SimpleNamespace(Config=Config, Server=Server)
    serve_app.serve_uvicorn(fake, object(), "asgi", None)  # type: ignore[arg-type]
    assert seen["ws_ping_interval"] is None and seen["ws_ping_timeout"] is None


# -- the client against a server that sends ping frames ----------------------------------------


def _against(
    handler: Callable[[ServerConnection], Awaitable[None]], wanted: list[Plan]
) -> list[Session]:
    async def run() -> list[Session]:
        async with serve(handler, "127.0.0.1", 0, ping_interval=0.5, ping_timeout=0.5) as server:
            port = server.sockets[0].getsockname()[1]
            endpoint = Endpoint("127.0.0.1", port, "/")
            deadline = time.monotonic() + 30
            return list(
                await asyncio.gather(*(run_client(endpoint, p, 2.0, deadline) for p in wanted))
            )

    return asyncio.run(asyncio.wait_for(run(), 30))


async def _wait(connection: ServerConnection) -> None:
    await connection.wait_closed()


def test_ping_frames_are_heartbeats_and_an_idle_client_never_pongs() -> None:
    answering, idle = _against(
        _wait,
        [Plan("answering", at_most=heartbeat_window(0.5, 3), beats=3), Plan("idle", at_most=3.0)],
    )
    beat = judge_heartbeat([answering], 0.5, 3)
    assert beat.ok, beat.line
    assert beat.line.endswith("the beats were ping frames")
    assert answering.pongs >= 3 and answering.closed is None
    assert answering.round_trips  # its own pings were answered
    # websockets closes a client that does not pong within ping_timeout: 1011
    assert idle.closed is not None and idle.closed.code == 1011, idle
    closed = judge_idle_close(idle, 1.0)
    assert closed.ok, closed.line
    assert "with close code 1011" in closed.line


async def _drop(connection: ServerConnection) -> None:
    await asyncio.sleep(0.3)
    connection.transport.abort()


def test_a_tcp_close_without_a_close_frame_is_seen() -> None:
    (idle,) = _against(_drop, [Plan("idle", at_most=2.0)])
    assert idle.closed is not None and idle.closed.code is None and idle.lost
    assert "without a close frame" in judge_idle_close(idle, 1.0).line


def test_a_refused_connect_is_a_problem_not_a_hang() -> None:
    async def run() -> Session:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        endpoint = Endpoint("127.0.0.1", port, "/ws")
        return await run_client(endpoint, Plan("idle", at_most=1.0), 1.0, time.monotonic() + 5)

    session = asyncio.run(run())
    assert not session.opened and session.lost
    assert session.problem is not None and session.problem.startswith("could not connect to")


# -- one real run against the ASGI app ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_claims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    report = tmp_path_factory.mktemp("websocket-run")
    run = signoff(
        "run",
        str(TARGET / "claims.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(report),
        timeout=180,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    yield claims(report)


def _claim(found: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    return found[f"websocket:{name}"]


@pytest.mark.slow
def test_every_part_holds_at_once(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(
        run_claims,
        "heartbeat every 1 s, idle clients closed after 2 s, 3 answering clients kept 3 s",
    )
    assert claim["status"] == "holds", claim["evidence"]
    heartbeat, stays, idle = claim["evidence"].splitlines()
    assert re.fullmatch(
        r"every one of 3 clients got its beats; the worst: gaps (\d\.\d\d s, ){2}\d\.\d\d s: "
        r"longest \d\.\d\d s within 1 s \(\+0\.25 s\); the beats were text messages",
        heartbeat,
    ), heartbeat
    assert stays.startswith("3 answering clients stayed open 3.0")
    assert 'each replied {"type": "pong"} to at least 3 messages' in stays
    assert 'with close code 4000 "idle timeout": within 2 s (+0.25 s)' in idle
    measured = claim["measured"]
    assert len(measured["gaps_s"]) == 3 and measured["clients"] == 3
    assert measured["idle_close_code"] == 4000
    assert claim["budget"]["heartbeat_tolerance_s"] == 0.25


@pytest.mark.slow
def test_a_claim_tighter_than_the_app_fails_listing_the_gaps(
    run_claims: dict[str, dict[str, Any]],
) -> None:
    claim = _claim(run_claims, "heartbeat every 0.5 s")
    assert claim["status"] == "fails"
    assert re.match(
        r"gaps \d\.\d\d s, \d\.\d\d s, then nothing for \d\.\d\d s until watching stopped: the "
        r"longest, \d\.\d\d s, is over the 0\.5 s \(\+0\.25 s\) claimed",
        claim["evidence"],
    ), claim["evidence"]
    assert claim["measured"]["longest_gap_s"] > 0.75


@pytest.mark.slow
def test_an_app_that_never_sends_fails(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(run_claims, "a silent socket sends heartbeats")
    assert claim["status"] == "fails"
    assert re.fullmatch(
        r"no heartbeat in \d\.\d\d s after the connect: the server sent nothing "
        r"\(claimed every 1 s\)",
        claim["evidence"],
    ), claim["evidence"]


@pytest.mark.slow
def test_an_app_that_keeps_idle_clients_fails(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(run_claims, "idle clients closed after 2 s")
    assert claim["status"] == "fails"
    assert "the server did not close it within 2 s (+0.25 s)" in claim["evidence"]
    assert claim["measured"]["idle_closed_s"] is None


@pytest.mark.slow
def test_an_app_that_drops_answering_clients_fails(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(run_claims, "answering clients stay open 3 s")
    assert claim["status"] == "fails"
    assert 'with close code 4001 "session over": claimed open for 3 s' in claim["evidence"]
    assert claim["measured"]["close_code"] == 4001


@pytest.mark.slow
def test_a_client_without_the_reply_the_app_waits_for_is_closed(
    run_claims: dict[str, dict[str, Any]],
) -> None:
    claim = _claim(run_claims, "clients that do not reply stay open 3 s")
    assert claim["status"] == "fails"
    assert 'close code 4000 "idle timeout"' in claim["evidence"]
    assert "unanswered (no reply given)" in claim["evidence"]


@pytest.mark.slow
def test_heartbeats_go_on_through_a_redis_hang(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(run_claims, "heartbeats go on with redis hung")
    assert claim["status"] == "holds", claim["evidence"]
    assert claim["measured"]["connections_met"] >= 1
    assert re.search(r"with redis hang \(redis: \d+ connections? met the hang\)", claim["evidence"])


@pytest.mark.slow
def test_a_hang_the_server_never_meets_proves_nothing(
    run_claims: dict[str, dict[str, Any]],
) -> None:
    claim = _claim(run_claims, "heartbeats go on with redis hung, on a path without redis")
    assert claim["status"] == "error"
    assert claim["evidence"].startswith(
        "the server never reached redis under hang while the clients were connected: the fault "
        "was not exercised"
    )
    assert claim["measured"]["connections_met"] == 0


@pytest.mark.slow
def test_heartbeats_that_wait_for_a_hung_redis_fail(run_claims: dict[str, dict[str, Any]]) -> None:
    claim = _claim(run_claims, "heartbeats that wait for redis go on with redis hung")
    assert claim["status"] == "fails"
    assert claim["evidence"].startswith("no heartbeat before the server closed the connection")
    assert "met the hang" in claim["evidence"]


@pytest.mark.slow
def test_a_path_without_a_websocket_fails_the_handshake(
    run_claims: dict[str, dict[str, Any]],
) -> None:
    claim = _claim(run_claims, "a path the app does not serve")
    assert claim["status"] == "fails"
    assert re.fullmatch(
        r"the opening handshake of ws://127\.0\.0\.1:\d+/nowhere failed: the server answered "
        r"403 Forbidden \(not 101 Switching Protocols\)",
        claim["evidence"],
    ), claim["evidence"]


@pytest.mark.slow
def test_a_server_that_dies_closes_clients_but_proves_nothing(
    run_claims: dict[str, dict[str, Any]],
) -> None:
    claim = _claim(run_claims, "a crashing server closes idle clients")
    assert claim["status"] == "fails"
    first, second = claim["evidence"].splitlines()[:2]
    assert first == (
        "the server exited with status 3 during this claim: what the clients saw proves nothing"
    )
    assert second.startswith("not judged: an idle client (no pong, nothing sent) was closed")
    assert "without a close frame (a TCP close" in second
    assert (
        "note: the server exited with status 3 during this claim; last lines" in (claim["evidence"])
    )


@pytest.mark.slow
def test_no_claim_is_left_unchecked(run_claims: dict[str, dict[str, Any]]) -> None:
    statuses = {cid: c["status"] for cid, c in run_claims.items()}
    assert len(statuses) == 11
    assert "no websocket probe" not in " ".join(c["evidence"] for c in run_claims.values())
