"""Live progress of a run: each claim's line as it starts, what it waits on, its time so far
against its budget, and its verdict as it ends.

On a terminal, a rich Live region lists the running claims (several at once when claims run side
by side): a spinner, the time so far / the budget, the claim's id and its latest note; each
finished claim is printed above the region as a permanent line (its verdict word coloured, its
headline figure, its id). Anywhere else (CI logs, a pipe, pytest's capture, NO_COLOR, TERM=dumb)
the same in plain lines, without a control code: `start` as a claim starts, `still` every
NOTE_EVERY_S for a claim still running (with its note), and its verdict as it ends.

Kinds post what a claim waits on with `note(text)` and what it has done with `count(word)`
without knowing the claim: `claim()` (around the check, in stages.verify) sets the current claim
in a contextvar, which each worker thread has its own of. Both are cheap no-ops while no display
is active (a user's `pytest --signoff-claims` run, unit tests).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from signoff.report.terminal import INDENT, headline

if TYPE_CHECKING:  # rich is imported only when a terminal display starts
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    from signoff.claims.model import ClaimRef
    from signoff.verdict import Verdict

NOTE_EVERY_S = 10.0  # plain output: a line this often for a claim still running
REFRESH_PER_SECOND = 4
CLOCK_WIDTH = 14  # "1.1 s / 1.5 s", "2m05s / 10 s": the ids stay in one column
STOP_WAIT_S = 2.0  # how long stop() waits for the plain output's ticker thread
_WORD = {"holds": "HOLDS", "fails": "FAILS", "error": "ERROR"}
_STYLE = {"holds": "bold green", "fails": "bold red", "error": "bold yellow"}


# -- what kinds call -------------------------------------------------------------------------

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signoff_live_claim", default=None
)
_display: Progress | None = None  # the run's display, while one is active


def note(text: str) -> None:
    """What the current claim waits on now ("waiting for the call to give up under redis
    hang"), or how far it is ("312 requests, 20 users")."""
    display = _display
    if display is not None and (claim_id := _current.get()) is not None:
        display.note(claim_id, text)


def showing() -> bool:
    """Whether a note would be seen: to skip the work of making one."""
    return _display is not None and _current.get() is not None


def count(what: str, by: int = 1) -> None:
    """One more `what` ("cases") done by the current claim: its note becomes "12 cases"."""
    display = _display
    if display is not None and (claim_id := _current.get()) is not None:
        display.count(claim_id, what, by)


@contextlib.contextmanager
def claim(ref: ClaimRef) -> Iterator[Callable[[Verdict], None]]:
    """Show `ref` as running while the block runs; the block calls what it is given with the
    claim's verdict. A block left without one (Ctrl-C) drops the claim's line."""
    display = _display
    if display is None:
        yield lambda verdict: None
        return
    token = _current.set(ref.id)
    ended = False

    def end(verdict: Verdict) -> None:
        nonlocal ended
        ended = True
        display.end(verdict)

    display.start(ref.id, ref.kind, budget_of(ref))
    try:
        yield end
    finally:
        _current.reset(token)
        if not ended:
            display.drop(ref.id)


def activate(display: Progress | None) -> None:
    """Make `display` the run's (None: no display; notes are no-ops again)."""
    global _display
    _display = display


def active() -> Progress | None:
    return _display


def budget_of(ref: ClaimRef) -> float | None:
    """The time a claim is claimed to take at most, from its section: `within`, a load's
    `duration`, a WebSocket's longest window, an import's `timeout` (each fresh interpreter's);
    None for the kinds whose budget is per generated case (cron, webhooks)."""
    from signoff.claims.model import Imports, WebsocketClaim

    spec = ref.spec
    if isinstance(spec, Imports):
        return spec.timeout
    if isinstance(spec, WebsocketClaim):
        beats = spec.heartbeat * spec.beats if spec.heartbeat is not None else None
        windows = [s for s in (beats, spec.idle_close, spec.stays_open) if s is not None]
        return max(windows, default=None)
    if ref.id.partition(":")[2] != getattr(spec, "name", None):
        return None  # one section for several claims (cron, webhooks): its budgets are per case
    for key in ("duration", "within"):
        value = getattr(spec, key, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


# -- the display ------------------------------------------------------------------------------


@dataclass
class _Running:
    kind: str
    budget_s: float | None
    started: float
    what: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    said: float = 0.0  # plain output: when its last line was written

    def text(self) -> str:
        done = ", ".join(f"{n} {word}" for word, n in self.counts.items())
        return "; ".join(part for part in (self.what, done) if part)


def interactive(stream: IO[str]) -> bool:
    """Whether `stream` is a terminal that takes in-place updates (not a pipe, a file, pytest's
    capture, TERM=dumb, or NO_COLOR)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
    term = os.environ.get("TERM", "")
    return tty and term not in ("", "dumb", "unknown") and "NO_COLOR" not in os.environ


class Progress:
    """The running claims and the finished ones, on `stream`; safe to call from any thread.
    `live`: a rich Live region (default: when `stream` is a terminal, see `interactive`),
    else plain lines. `width`: the terminal's columns when rich cannot tell (its own guess
    reads the standard streams, which pytest's capture replaces). `owned`: stop() closes
    `stream`."""

    @classmethod
    def on_stdout(cls, total: int | None = None) -> Progress:
        """A display on this process's standard output as it is now, which pytest's capture
        (it replaces fd 1 while a test runs) does not reach: a copy of its file descriptor.
        Plain lines on sys.stdout itself when it has none (a run inside a capturing run)."""
        try:
            fd = os.dup(sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
            return cls(sys.stdout, live=False, total=total)
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        stream = open(fd, "w", encoding=encoding, errors="replace", closefd=True)  # noqa: SIM115
        width = None
        with contextlib.suppress(OSError):
            width = os.get_terminal_size(fd).columns or None  # a new pty's size is 0 x 0
        return cls(stream, total=total, width=width, owned=True)

    def __init__(
        self,
        stream: IO[str],
        *,
        live: bool | None = None,
        total: int | None = None,
        width: int | None = None,
        note_every_s: float = NOTE_EVERY_S,
        console: Console | None = None,
        owned: bool = False,
    ) -> None:
        self.stream = stream
        self.live = interactive(stream) if live is None else live
        self.total = total
        self.width = width
        self.note_every_s = note_every_s
        self.done = 0
        self._console = console
        self._owned = owned
        self._lock = threading.Lock()  # never held while calling into rich (Live has its own)
        self._out = threading.Lock()  # plain lines, whole
        self._running: dict[str, _Running] = {}
        self._region: Live | None = None
        self._spinners: dict[str, Spinner] = {}  # by claim: drawn by the region's thread only
        self._ticker: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- the claims -------------------------------------------------------------------------

    def start(self, claim_id: str, kind: str, budget_s: float | None, what: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            if self._stopped.is_set():
                return
            self._running[claim_id] = _Running(kind, budget_s, now, what, said=now)
        if self.live:
            self._ensure_region()
        else:
            self._line(f"{'start':<5}  {'':>9}  {claim_id}{_budget_words(budget_s)}")
            self._ensure_ticker()

    def note(self, claim_id: str, text: str) -> None:
        with self._lock:
            running = self._running.get(claim_id)
            if running is not None:
                running.what = text

    def count(self, claim_id: str, what: str, by: int = 1) -> None:
        with self._lock:
            running = self._running.get(claim_id)
            if running is not None:
                running.counts[what] = running.counts.get(what, 0) + by

    def end(self, verdict: Verdict) -> None:
        with self._lock:
            self._running.pop(verdict.id, None)
            if self._stopped.is_set():
                return
            self.done += 1
        figure = headline(verdict.measured)
        evidence = verdict.evidence.splitlines()[:1] if verdict.status != "holds" else []
        if not self.live:
            self._line(f"{_WORD[verdict.status]:<5}  {figure:>9}  {verdict.id}")
            for line in evidence:
                self._line(" " * INDENT + line)
            return
        from rich.console import Group
        from rich.padding import Padding
        from rich.text import Text

        head = Text()
        head.append(f"{_WORD[verdict.status]:<5}", style=_STYLE[verdict.status])
        head.append(f"  {figure:>9}  ")
        head.append(verdict.id)
        # under the id, wrapped lines too, as in the table at the end
        below = [Padding(Text(line, style="dim"), (0, 0, 0, INDENT)) for line in evidence]
        self._print(Group(head, *below))

    def drop(self, claim_id: str) -> None:
        """The claim ended without a verdict (interrupted): its line goes."""
        with self._lock:
            self._running.pop(claim_id, None)

    def running(self) -> dict[str, str]:
        """The running claims, each with what its line says after the clock."""
        with self._lock:
            return {claim_id: running.text() for claim_id, running in self._running.items()}

    # -- the end ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Remove the Live region (the terminal's cursor back, nothing left drawn) and stop the
        ticker; nothing is shown after this. Safe to call more than once, from any thread."""
        with self._lock:
            self._stopped.set()
            region, self._region = self._region, None
            ticker = self._ticker
            self._running.clear()
        if region is not None:
            region.stop()
        if ticker is not None and ticker.is_alive() and ticker is not threading.current_thread():
            ticker.join(STOP_WAIT_S)
        if self._owned:
            with self._out, contextlib.suppress(OSError, ValueError):
                self.stream.close()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # -- the terminal -----------------------------------------------------------------------

    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.stream, force_terminal=True, width=self.width, highlight=False
            )
        return self._console

    def _ensure_region(self) -> None:
        from rich.live import Live

        with self._lock:
            if self._region is not None or self._stopped.is_set():
                return
        region = Live(  # it renders once already: outside the lock, which _render takes
            console=self.console(),
            get_renderable=self._render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,  # finished claims are printed above it; it leaves nothing
            redirect_stdout=False,  # pytest's capture swaps sys.stdout under it
            redirect_stderr=False,
        )
        with self._lock:
            if self._region is not None:  # another thread's claim started it meanwhile
                return
            self._region = region
        region.start()
        if self._stopped.is_set():  # stop() ran meanwhile: it found no region to stop
            region.stop()

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            rows = [(cid, r, now - r.started, r.text()) for cid, r in self._running.items()]
            done = self.done
        # a spinner's frame counts from its first render: each claim keeps its own
        spinners = {
            cid: self._spinners.get(cid) or Spinner("dots", style="cyan") for cid, *_ in rows
        }
        self._spinners = spinners
        lines: list[RenderableType] = []
        room = self.console().width - CLOCK_WIDTH - 4  # the spinner, the clock, two gaps
        for claim_id, running, elapsed, text in rows:
            clock = Text(clock_of(elapsed), style="yellow" if _late(running, elapsed) else "")
            if running.budget_s is not None:
                clock.append(f" / {short(running.budget_s)}", style="dim")
            clock.pad_left(CLOCK_WIDTH - len(clock.plain))
            line = Text(overflow="ellipsis", no_wrap=True)
            line.append_text(_frame(spinners[claim_id], now))
            line.append(" ").append_text(clock).append(" " + claim_id)
            below = bool(text) and len(claim_id) + 2 + len(text) > room  # a line of its own
            if text and not below:
                line.append(f"  {text}", style="dim")
            lines.append(line)
            if below:
                lines.append(Text(f"    {text}", style="dim", overflow="ellipsis", no_wrap=True))
        if self.total is not None:
            lines.append(Text(f"{done} of {self.total} claims done", style="dim"))
        return Group(*lines)

    def _print(self, text: RenderableType) -> None:
        with self._lock:
            region = self._region
        if region is None:
            return
        region.refresh()  # the region printed below the line is the one drawn last: redraw it
        region.console.print(text)

    # -- plain lines ------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        with self._out, contextlib.suppress(OSError, ValueError):  # a closed pipe ends no run
            self.stream.write(text + "\n")
            self.stream.flush()

    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None or self._stopped.is_set():
                return
            self._ticker = ticker = threading.Thread(
                target=self._tick, name="signoff-progress", daemon=True
            )
        ticker.start()  # a stop() meanwhile: it ends at its first wait

    def _tick(self) -> None:
        every = max(0.05, min(1.0, self.note_every_s / 4))
        while not self._stopped.wait(every):
            now = time.monotonic()
            lines = []
            with self._lock:
                for claim_id, running in self._running.items():
                    if now - running.said >= self.note_every_s:
                        running.said = now
                        elapsed = clock_of(now - running.started)
                        text = running.text()
                        lines.append(
                            f"{'still':<5}  {elapsed:>9}  {claim_id}"
                            + (f": {text}" if text else "")
                            + _budget_words(running.budget_s)
                        )
            for line in lines:
                self._line(line)


def _frame(spinner: Spinner, now: float) -> Text:
    from rich.text import Text

    frame = spinner.render(now)
    return frame if isinstance(frame, Text) else Text("*")


def _budget_words(budget_s: float | None) -> str:
    return f"  (budget {short(budget_s)})" if budget_s is not None else ""


def _late(running: _Running, elapsed: float) -> bool:
    """Well past its budget: a claim's own setup (a fresh interpreter, its imports) is no more
    than a second and a tenth of it."""
    return running.budget_s is not None and elapsed > running.budget_s * 1.1 + 1.0


def short(seconds: float) -> str:
    """A budget, short: "250 ms", "1.5 s", "12 s", "2m05s"."""
    if seconds < 10.0:
        return clock_of(seconds).replace(".0 s", " s")
    return clock_of(seconds)


def clock_of(seconds: float) -> str:
    """A time so far: "250 ms", "1.0 s", "12 s", "2m05s"."""
    if seconds < 0.9995:  # not "1000 ms"
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 10.0:
        return f"{seconds:.1f} s"
    if seconds < 120.0:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
