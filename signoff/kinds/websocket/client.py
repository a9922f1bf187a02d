"""One WebSocket client of a [[websocket]] claim, and what it saw.

websockets' sans-I/O `ClientProtocol` over an asyncio stream, so that signoff decides what goes
out on the wire:
- an *answering* client writes whatever the protocol queues (a pong for every ping frame, the
  closing handshake), `reply` for every message, and a ping frame of its own after the opening
  handshake and after each heartbeat while none is in flight, to time round trips;
- an *idle* client writes nothing after its opening handshake: no pong, no reply, nothing,
  until the measurement is over.

Every heartbeat (a ping frame, or a whole text or binary message) is timed from the moment the
server's 101 answer was read, and so is the server's close: its close frame's code and reason,
or a TCP close without one. Each client is watched for at most `Plan.at_most` seconds after its
handshake (and never past the run's deadline); an answering client stops sooner once it has
`Plan.beats` heartbeats and has been open `Plan.at_least` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import SEND_EOF, State
from websockets.uri import parse_uri

from signoff.report import live
from signoff.units import format_duration

Role = Literal["answering", "idle"]
BeatKind = Literal["ping", "text", "binary"]
READ_SIZE = 65536
CLOSE_GRACE = 0.5  # at the end: how long our last bytes may take to go out
BODY_EXCERPT = 120
_FRAME_KINDS: dict[Opcode, BeatKind] = {Opcode.TEXT: "text", Opcode.BINARY: "binary"}


@dataclass(frozen=True)
class Endpoint:
    """Where the clients connect: ws://host:port/path, with extra handshake headers."""

    host: str
    port: int
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True)
class Plan:
    """What one client does, and how long it is watched (seconds after its handshake)."""

    role: Role
    at_most: float
    at_least: float = 0.0
    beats: int | None = None  # enough heartbeats to stop once open `at_least`
    reply: str | None = None  # an answering client's answer to every message


@dataclass(frozen=True)
class Beat:
    at: float  # seconds after the handshake
    via: BeatKind


@dataclass(frozen=True)
class Closing:
    """The server closed the connection `at` seconds after the handshake."""

    at: float
    code: int | None  # None: the TCP connection closed without a close frame
    reason: str = ""

    def describe(self) -> str:
        """'with close code 4000 "idle timeout"', 'without a close frame (a TCP close)'."""
        if self.code is None:
            how = f": {self.reason}" if self.reason else ""
            return f"without a close frame (a TCP close{how})"
        reason = f' "{self.reason}"' if self.reason else ""
        return f"with close code {self.code}{reason}"


@dataclass
class Session:
    """What one client saw."""

    plan: Plan
    handshake_s: float | None = None
    problem: str | None = None  # no WebSocket connection: why
    beats: list[Beat] = field(default_factory=list)
    closed: Closing | None = None
    watched_s: float = 0.0  # how long after the handshake it was watched
    replies: int = 0
    pongs: int = 0
    round_trips: list[float] = field(default_factory=list)
    cut: bool = False  # the run's deadline ended the watch before the plan did
    lost: bool = False  # the connection was lost, not closed (refused, reset, TCP close)

    @property
    def opened(self) -> bool:
        return self.problem is None and self.handshake_s is not None

    @property
    def end(self) -> float:
        """When the watch of an open connection ended (its close, or watching stopped)."""
        return self.closed.at if self.closed is not None else self.watched_s


class _Client:
    """One connection's loop (see the module's doc)."""

    def __init__(self, endpoint: Endpoint, plan: Plan) -> None:
        self.endpoint = endpoint
        self.plan = plan
        self.session = Session(plan)
        self.protocol = ClientProtocol(parse_uri(endpoint.url), max_size=None)
        self.answering = plan.role == "answering"
        self.opened_at = 0.0
        self._fragment: BeatKind | None = None
        self._ping_ids = itertools.count(1)
        self._ping_out: tuple[bytes, float] | None = None

    async def run(self, connect_s: float, run_deadline: float) -> Session:
        started = time.monotonic()
        try:
            async with asyncio.timeout(connect_s):
                reader, writer = await asyncio.open_connection(
                    self.endpoint.host, self.endpoint.port
                )
        except TimeoutError:
            self.session.problem = f"no TCP connection within {format_duration(connect_s)}"
            return self.session
        except OSError as exc:
            self.session.lost = True
            self.session.problem = (
                f"could not connect to {self.endpoint.host}:{self.endpoint.port}: "
                f"{exc.strerror or exc}"
            )
            return self.session
        try:
            early = await self._handshake(reader, writer, started + connect_s)
            if early is not None:
                self.opened_at = time.monotonic()
                self.session.handshake_s = self.opened_at - started
                await self._watch(reader, writer, early, run_deadline)
        finally:
            await self._close(writer)
        return self.session

    # -- the opening handshake -------------------------------------------------------------------
    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float
    ) -> list[Frame] | None:
        """The frames that came with the 101 answer; None (and `problem`) when it failed."""
        request = self.protocol.connect()
        for name, value in self.endpoint.headers.items():
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value
        self.protocol.send_request(request)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await _flush(writer, self.protocol.data_to_send(), deadline)
                while True:
                    data = await reader.read(READ_SIZE)
                    self._feed(data)
                    self.session.lost = not data
                    events = self.protocol.events_received()
                    if self.protocol.handshake_exc is not None:
                        self.session.problem = _rejected(self.protocol.handshake_exc)
                        return None
                    if any(isinstance(e, Response) for e in events):
                        return [e for e in events if isinstance(e, Frame)]
                    if not data:
                        self.session.problem = "the server closed the connection during it"
                        return None
        except TimeoutError:
            self.session.problem = "the server did not answer it in time"
        except OSError as exc:
            self.session.lost = True
            self.session.problem = f"the connection failed during it: {exc.strerror or exc}"
        return None

    # -- the measurement -------------------------------------------------------------------------
    async def _watch(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        frames: list[Frame],
        run_deadline: float,
    ) -> None:
        plan_end = self.opened_at + self.plan.at_most
        end = min(plan_end, run_deadline)
        enough_at = self.opened_at + self.plan.at_least
        if self.answering:
            self._ping()
        while True:
            now = time.monotonic()
            for frame in frames:
                self._on_frame(frame, now - self.opened_at)
            outgoing = self.protocol.data_to_send()
            if self.answering:
                with contextlib.suppress(OSError):
                    await _flush(writer, outgoing, end)
            if self.session.closed is not None:
                break
            now = time.monotonic()
            satisfied = self.plan.beats is not None and len(self.session.beats) >= self.plan.beats
            if now >= end or (satisfied and now >= enough_at):
                self.session.cut = now >= end and end < plan_end
                break
            until = min(end, enough_at) if satisfied else end
            try:
                async with asyncio.timeout(until - now):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                frames = []
                continue
            except OSError as exc:  # a reset
                self._closed_tcp(str(exc.strerror or exc))
                break
            self._feed(data)
            frames = [e for e in self.protocol.events_received() if isinstance(e, Frame)]
            if not data and not any(f.opcode is Opcode.CLOSE for f in frames):
                for frame in frames:
                    self._on_frame(frame, time.monotonic() - self.opened_at)
                self._closed_tcp()
                break
        self.session.watched_s = time.monotonic() - self.opened_at

    def _feed(self, data: bytes) -> None:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()

    def _closed_tcp(self, reason: str = "") -> None:
        self.session.lost = True
        self.session.closed = Closing(time.monotonic() - self.opened_at, None, reason)

    def _on_frame(self, frame: Frame, at: float) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING:
            self._beat(Beat(at, "ping"))
            if self.answering:
                self.session.pongs += 1  # the protocol queued it
        elif opcode in _FRAME_KINDS or opcode is Opcode.CONT:
            kind = _FRAME_KINDS.get(opcode, self._fragment)
            if not frame.fin:
                self._fragment = kind
            elif kind is not None:
                self._fragment = None
                self._beat(Beat(at, kind))
                if self.answering and self.plan.reply is not None:
                    self.protocol.send_text(self.plan.reply.encode())
                    self.session.replies += 1
        elif opcode is Opcode.PONG:
            if self._ping_out is not None and bytes(frame.data) == self._ping_out[0]:
                self.session.round_trips.append(time.monotonic() - self._ping_out[1])
                self._ping_out = None
        elif opcode is Opcode.CLOSE:
            close = self.protocol.close_rcvd
            code, reason = (close.code, close.reason) if close is not None else (1005, "")
            self.session.closed = Closing(at, int(code), reason)

    def _beat(self, beat: Beat) -> None:
        self.session.beats.append(beat)
        live.count("heartbeats")
        if self.answering and self._ping_out is None and self.protocol.state is State.OPEN:
            self._ping()

    def _ping(self) -> None:
        payload = f"signoff-{next(self._ping_ids)}".encode()
        self.protocol.send_ping(payload)
        self._ping_out = (payload, time.monotonic())

    # -- the end -----------------------------------------------------------------------------------
    async def _close(self, writer: asyncio.StreamWriter) -> None:
        """Our close frame (an idle client's unanswered pongs are dropped), or our answer to the
        server's, then the socket is closed: the measurement is over, nothing is waited for."""
        deadline = time.monotonic() + CLOSE_GRACE
        try:
            if not self.answering:
                self.protocol.data_to_send()
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
            await _flush(writer, self.protocol.data_to_send(), deadline)
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(max(0.05, deadline - time.monotonic())):
                    await writer.wait_closed()


async def _flush(writer: asyncio.StreamWriter, chunks: list[bytes], deadline: float) -> None:
    for chunk in chunks:
        if chunk == SEND_EOF:
            if writer.can_write_eof():
                writer.write_eof()
        else:
            writer.write(chunk)
    # a server that stops reading must not stall the watch: what is left stays buffered
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.05, deadline - time.monotonic())):
            await writer.drain()


def _rejected(exc: Exception) -> str:
    """Why the opening handshake failed, for the evidence."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        said = _excerpt(bytes(response.body), response.headers.get("Content-Type", ""))
        return (
            f"the server answered {response.status_code} {response.reason_phrase}{said} "
            "(not 101 Switching Protocols)"
        )
    if isinstance(exc, InvalidMessage):
        cause = str(exc.__cause__) if exc.__cause__ else ""
        # websockets reads HTTP/1.1 only: an HTTP/1.0 server's status line is in the message
        _, older, status_line = cause.partition("expected HTTP/1.1: ")
        if older:
            return f"the server answered {status_line} (not 101 Switching Protocols)"
        return f"the server's answer is not a valid HTTP response{f' ({cause})' if cause else ''}"
    if isinstance(exc, InvalidHandshake):
        return f"the server's 101 answer is not a valid WebSocket handshake: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _excerpt(body: bytes, content_type: str) -> str:
    """ ": the body" for a short text or JSON body; its size and type for anything else."""
    if not body:
        return ""
    kind = content_type.split(";")[0].strip().lower() or "unknown type"
    if kind not in ("text/plain", "application/json"):
        return f" ({len(body)} bytes of {kind})"
    text = " ".join(body.decode("utf-8", "replace").split())
    return ": " + (text if len(text) <= BODY_EXCERPT else text[: BODY_EXCERPT - 3] + "...")


async def run_client(
    endpoint: Endpoint, plan: Plan, connect_s: float, run_deadline: float
) -> Session:
    """Connect (the opening handshake within `connect_s`), then watch as `plan` says, never
    past `run_deadline` (time.monotonic())."""
    return await _Client(endpoint, plan).run(connect_s, run_deadline)
