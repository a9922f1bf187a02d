"""The live display of a run (signoff.report.live): plain lines off a terminal, a region
updated in place on one, notes that cost nothing without a display, and a terminal left sane
by Ctrl-C."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from signoff.checks import expand_claims
from signoff.claims import ClaimRef, load_claims
from signoff.report import live
from signoff.report.live import Progress
from signoff.verdict import Verdict
from tests.runs import ROOT, TINY, signoff

ESCAPE = "\x1b"
CURSOR_UP, ERASE_LINE = "\x1b[1A", "\x1b[2K"
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


def _ref(claim_id: str = "timeout:redis ping gives up") -> ClaimRef:
    kind, _, _ = claim_id.partition(":")
    return ClaimRef(id=claim_id, kind=kind, spec=None, section_key=f"{kind}s[0]")


def _wait_for(what: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.02)


@pytest.fixture
def display() -> Iterator[Progress]:
    shown = Progress(io.StringIO(), live=False)
    live.activate(shown)
    try:
        yield shown
    finally:
        live.activate(None)
        shown.stop()


# -- plain lines ------------------------------------------------------------------------------


def test_plain_lines_say_start_still_and_the_verdict_without_a_control_code() -> None:
    out = io.StringIO()
    shown = Progress(out, live=False, note_every_s=0.05)
    try:
        shown.start("load:twenty users", "load", 10.0)
        shown.note("load:twenty users", "312 requests, 20 users")
        _wait_for(lambda: "still" in out.getvalue())
        shown.end(
            Verdict(
                "load:twenty users",
                "load",
                "fails",
                evidence="p95 1.2 s over 1 s\nsecond line",
                measured={"requests": 382},
            )
        )
    finally:
        shown.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "start             load:twenty users  (budget 10 s)"
    assert re.fullmatch(
        r"still +[\d.]+ m?s  load:twenty users: 312 requests, 20 users  \(budget 10 s\)", lines[1]
    )
    assert "FAILS        382  load:twenty users" in lines
    assert " " * 18 + "p95 1.2 s over 1 s" in lines  # the evidence's first line only
    assert "second line" not in out.getvalue()
    assert ESCAPE not in out.getvalue()


def test_nothing_is_written_after_stop() -> None:
    out = io.StringIO()
    shown = Progress(out, live=False)
    shown.stop()
    shown.start("timeout:x", "timeout", 1.0)
    shown.end(Verdict("timeout:x", "timeout", "holds"))
    assert out.getvalue() == ""
    assert shown.running() == {}


# -- on a terminal ----------------------------------------------------------------------------


def test_a_terminal_gets_one_region_updated_in_place_and_the_verdicts_above_it() -> None:
    out = io.StringIO()
    shown = Progress(out, live=True, width=100, total=2)
    try:
        shown.start("timeout:a", "timeout", 1.5)
        shown.start("degradation:b", "degradation", 5.0)
        shown.note("timeout:a", "waiting for the call to end (redis hang)")
        _wait_for(lambda: out.getvalue().count(CURSOR_UP) >= 2)  # redrawn, not appended
        shown.end(Verdict("timeout:a", "timeout", "holds", measured={"seconds": 1.011}))
        _wait_for(lambda: "1 of 2 claims done" in out.getvalue())
    finally:
        shown.stop()
    text = out.getvalue()
    assert "waiting for the call to end (redis hang)" in text
    assert re.search(r"HOLDS\x1b\[0m +1\.011 s  timeout:a", text)
    assert "/ 1.5 s" in text and "/ 5 s" in text  # time so far against each budget
    assert text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR)  # the cursor is given back
    after = len(text)
    shown.start("timeout:c", "timeout", 1.0)
    assert len(out.getvalue()) == after


def test_a_note_that_does_not_fit_beside_its_claim_gets_a_line_of_its_own() -> None:
    out = io.StringIO()
    shown = Progress(out, live=True, width=60)
    claim_id = "degradation:transcription degrades to a mock"
    try:
        shown.start(claim_id, "degradation", 5.0)
        shown.note(claim_id, "the fault is lifted: waiting for the recovery")
        _wait_for(lambda: "waiting for the recovery" in out.getvalue())
    finally:
        shown.stop()
    note = r"\n(\x1b\[\dm)? +the fault is lifted: waiting for the recovery"  # whole
    assert re.search(note, out.getvalue())


def test_where_no_terminal_takes_updates_the_lines_are_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert live.interactive(Tty())
    assert not live.interactive(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not live.interactive(Tty())
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not live.interactive(Tty())


# -- notes ------------------------------------------------------------------------------------


def test_notes_are_no_ops_without_a_display() -> None:
    assert live.active() is None
    with live.claim(_ref()) as shown:
        assert not live.showing()
        live.note("waiting for the call to end")  # nothing to reach, nothing raised
        live.count("cases")
        shown(Verdict(_ref().id, "timeout", "holds"))
    assert live.active() is None


def test_a_kind_notes_its_claim_without_knowing_it(display: Progress) -> None:
    live.note("before any claim")  # no current claim: no line gets it
    with live.claim(_ref()) as shown:
        assert live.showing()
        live.note("waiting for the call to end (redis hang)")
        live.count("cases")
        live.count("cases", 2)
        assert display.running() == {_ref().id: "waiting for the call to end (redis hang); 3 cases"}
        shown(Verdict(_ref().id, "timeout", "holds"))
    assert display.running() == {}
    assert not live.showing()


def test_claims_side_by_side_each_get_their_own_notes(display: Progress) -> None:
    seen: dict[str, str] = {}
    noted = threading.Barrier(3, timeout=10)

    def check(claim_id: str) -> None:
        with live.claim(_ref(claim_id)) as shown:
            live.note(f"note of {claim_id}")
            noted.wait()  # both running, each with its note
            noted.wait()  # the main thread has looked
            shown(Verdict(claim_id, "timeout", "holds"))

    workers = [threading.Thread(target=check, args=(f"timeout:{n}",)) for n in ("a", "b")]
    for worker in workers:
        worker.start()
    noted.wait()
    seen = display.running()
    noted.wait()
    for worker in workers:
        worker.join(10)
    assert seen == {"timeout:a": "note of timeout:a", "timeout:b": "note of timeout:b"}
    assert display.running() == {}


def test_a_claim_interrupted_leaves_no_line_behind(display: Progress) -> None:
    with pytest.raises(KeyboardInterrupt), live.claim(_ref()):
        live.note("waiting")
        raise KeyboardInterrupt
    assert display.running() == {}
    assert not live.showing()


# -- budgets ------------------------------------------------------------------------------------


def _budgets(path: Path) -> dict[str, float | None]:
    return {ref.id: live.budget_of(ref) for ref in expand_claims(load_claims(path))}


def test_each_claim_s_budget_comes_from_its_own_section() -> None:
    tiny = _budgets(TINY / "signoff.toml")
    assert tiny["timeout:redis ping gives up on a hung server"] == 1.5  # within
    assert tiny["import:tiny"] == 10.0  # [imports].timeout, each fresh interpreter's
    reports = _budgets(ROOT / "targets" / "reports" / "signoff.toml")
    assert reports["cron:time"] is None  # its budget is each generated case's
    assert reports["webhook:forgery"] is None
    load = next(v for k, v in reports.items() if k.startswith("load:"))
    assert load == 10.0  # duration
    wheels = _budgets(ROOT / "targets" / "wheels" / "signoff.toml")
    socket = next(v for k, v in wheels.items() if k.startswith("websocket:"))
    assert socket == 8.0  # the longest of its windows: stays_open


# -- real runs ---------------------------------------------------------------------------------

NAPS = """
import time

def quick():
    return 1

def broken():
    raise ValueError("no int today")

def nap():
    time.sleep(60)
"""

CLAIMS = """
[target]
name = "naps"

[[call]]
name = "quick returns an int"
call = "naps:quick"
returns = "builtins:int"
within = "5s"

[[call]]
name = "broken returns an int"
call = "naps:broken"
returns = "builtins:int"
within = "5s"
"""

NAP_CLAIM = """
[[call]]
name = "a nap of a minute"
call = "naps:nap"
within = "90s"
"""


def _project(folder: Path, *extra: str) -> Path:
    (folder / "naps.py").write_text(textwrap.dedent(NAPS))
    claims = folder / "signoff.toml"
    claims.write_text(CLAIMS + "".join(extra))
    return claims


@pytest.mark.cli
def test_a_piped_run_shows_each_claim_start_and_end_in_plain_lines(tmp_path: Path) -> None:
    claims = _project(tmp_path)
    run = signoff("run", str(claims), "--report-dir", str(tmp_path / "report"), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert ESCAPE not in out
    lines = out.splitlines()
    for claim_id, word in (
        ("call:quick returns an int", "HOLDS"),
        ("call:broken returns an int", "FAILS"),
    ):
        assert f"start             {claim_id}  (budget 5 s)" in lines
        start = lines.index(f"start             {claim_id}  (budget 5 s)")
        assert any(line.startswith(word) and line.endswith(claim_id) for line in lines[start:])
    assert "%]" not in out and not re.search(r"^[.F](?!AILS)", out, re.M)  # no dots
    assert re.search(r"1 failed, 1 passed", out)  # pytest's own last line stays
    assert "signoff: naps" in out  # and the final table


RUN = (sys.executable, "-m", "signoff", "run")


def _read(master: int, into: bytearray, until: Callable[[bytes], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side is closed: the run has ended
                return until(bytes(into))
            if not chunk:
                return until(bytes(into))
            into.extend(chunk)
        if until(bytes(into)):
            return True
    return False


@pytest.mark.cli
def test_ctrl_c_on_a_terminal_stops_the_region_and_gives_the_cursor_back(tmp_path: Path) -> None:
    claims = _project(tmp_path, NAP_CLAIM)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [*RUN, str(claims), "--report-dir", str(tmp_path / "report")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    out = bytearray()
    try:
        napping = b"call:a nap of a minute"
        assert _read(master, out, lambda b: b.count(napping) >= 3, 60), bytes(out)[-2000:]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        _read(master, out, lambda b: proc.poll() is not None, 60)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        os.close(master)
    text = out.decode(errors="replace")
    assert CURSOR_UP in text or ERASE_LINE in text  # the region was redrawn in place
    assert re.search(r"HOLDS.*call:quick returns an int", text)
    assert re.search(r"FAILS.*call:broken returns an int", text)
    assert text.rindex(SHOW_CURSOR) > text.rindex(HIDE_CURSOR)  # the terminal is sane again
    summary = text[text.rindex(SHOW_CURSOR) :]  # stopped before pytest's summary
    assert "signoff: naps" in summary and "call:a nap of a minute" in summary


USER_RUN = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--signoff-claims")


@pytest.mark.cli
def test_a_users_own_pytest_run_keeps_pytest_s_output(tmp_path: Path) -> None:
    claims = _project(tmp_path)
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    run = subprocess.run(
        [*USER_RUN, str(claims), "--signoff-report-dir", str(tmp_path / "report")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "start             call:" not in run.stdout  # no live lines among the dots
    assert re.search(r"^[.F]{3} ", run.stdout, re.M)  # a dot or F per test: 2 claims and mine
