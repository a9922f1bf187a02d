"""What the cron probe asks: hypothesis strategies for valid and invalid expressions and for
start/end pairs up to the horizon, and the boundary cases added on purpose.

Generated expressions follow the grammar of `cron_expr` (lists, ranges, steps, month and day
names in any case). Strategies are written so that hypothesis shrinks towards the plainest case:
`*` fields, 2000-01-01 00:00, a zero span. A generated case puts its `end` (or its `start`, or
both) exactly on an occurrence a good part of the time, which is where off-by-one errors live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import strategies as st

from signoff.kinds.cron.expr import DAY_NAMES, FIELDS, MONTH_NAMES, FieldSpec, parse

EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2199, 12, 31, 23, 59, 59)
DAY = 86400.0
YEAR = 365 * DAY


@dataclass(frozen=True)
class Case:
    """One call: occurrences(expression, start, end). `label` names a boundary case ("" for a
    generated one); it is no part of the case's identity."""

    expression: str
    start: datetime
    end: datetime
    label: str = ""

    @property
    def key(self) -> tuple[str, datetime, datetime]:
        return (self.expression, self.start, self.end)

    @property
    def span_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def call_text(self, call: str = "occurrences") -> str:
        name = call.rpartition(":")[2]
        return f"{name}({self.expression!r}, {_when(self.start)}, {_when(self.end)})"


def _when(value: datetime) -> str:
    return str(value)


# -- valid expressions -------------------------------------------------------------------------


def _render(value: int, spec: FieldSpec, style: int) -> str:
    """A value as a number, or (style 1-3, month and day of week) as a name in some case."""
    names = MONTH_NAMES if spec.name == "month" else DAY_NAMES if spec.name == "day of week" else ()
    index = value - 1 if spec.name == "month" else value
    if style == 0 or not names or not 0 <= index < len(names):
        return str(value)
    name = names[index]
    return (name, name.upper(), name.title())[style - 1]


def _item(spec: FieldSpec) -> st.SearchStrategy[str]:
    values = st.integers(spec.low, spec.high)
    style = st.integers(0, 3) if spec.names else st.just(0)
    steps = st.integers(1, spec.high - spec.low + 1)

    @st.composite
    def item(draw: st.DrawFn) -> str:
        kind = draw(st.integers(0, 2))  # value, range, stepped range
        first = draw(values)
        if kind == 0:
            return _render(first, spec, draw(style))
        low, high = sorted((first, draw(values)))
        how = draw(style)
        text = f"{_render(low, spec, how)}-{_render(high, spec, how)}"
        return text if kind == 1 else f"{text}/{draw(steps)}"

    return item()


def field(index: int) -> st.SearchStrategy[str]:
    spec = FIELDS[index]
    star_step = st.integers(1, spec.high - spec.low + 1).map(lambda s: f"*/{s}")
    items = st.lists(_item(spec), min_size=1, max_size=4).map(",".join)
    return st.one_of(st.just("*"), items, star_step)


def expressions() -> st.SearchStrategy[str]:
    return st.tuples(*(field(i) for i in range(5))).map(" ".join)


# -- cases -------------------------------------------------------------------------------------

END_MODES = ("free", "end on an occurrence", "start on an occurrence", "both on occurrences")


def _nth_after(expression: str, start: datetime, limit: datetime, n: int) -> datetime | None:
    """The n-th occurrence after start, no later than limit; None if there are fewer."""
    found = None
    for i, when in enumerate(parse(expression).between(start, limit + timedelta(microseconds=1))):
        found = when
        if i + 1 >= n:
            return found
    return None


def _spans(horizon_s: float) -> st.SearchStrategy[int]:
    """Spans in seconds up to the horizon, spread over every scale (log-uniform-ish: a minute,
    an hour, a week, the whole horizon), shrinking towards zero."""
    top = int(horizon_s)

    def at_scale(k: int) -> st.SearchStrategy[int]:
        low = min(30 << k, top) if k else 0
        return st.integers(low, max(min(60 << k, top), low))

    return st.integers(0, max(top.bit_length() - 5, 0)).flatmap(at_scale)


@st.composite
def cases(draw: st.DrawFn, horizon_s: float, max_results: int = 1000) -> Case:
    """A valid expression with a start and an end no further than `horizon_s` apart. An end on
    an occurrence is the 1st to 5th after start, or the max_results-th give or take one."""
    expression = draw(expressions())
    # fold=1 would mean nothing to a naive wall clock, and is lost on the way to the target
    start = draw(st.datetimes(min_value=EARLIEST, max_value=LATEST)).replace(fold=0)
    mode = draw(st.sampled_from(END_MODES))
    horizon = timedelta(seconds=int(horizon_s))
    if mode in ("start on an occurrence", "both on occurrences"):
        on = _nth_after(expression, start, start + horizon, 1)
        start = on if on is not None else start
    end = None
    if mode in ("end on an occurrence", "both on occurrences"):
        nth = draw(
            st.one_of(
                st.integers(1, 5),
                st.sampled_from(sorted({max(max_results + d, 1) for d in (-1, 0, 1)})),
            )
        )
        end = _nth_after(expression, start, start + horizon, nth)
    if end is None:
        end = start + timedelta(seconds=draw(_spans(horizon_s)))
    return Case(expression, start, end)


def around(case: Case) -> st.SearchStrategy[Case]:
    """`case`'s expression and start with any shorter span: hypothesis shrinks a failing
    boundary case to the shortest range that still fails."""
    return _spans(case.span_s).map(
        lambda s: Case(case.expression, case.start, case.start + timedelta(seconds=s), case.label)
    )


# -- invalid expressions -------------------------------------------------------------------------

# Refused by croniter, cronsim and Vixie cron alike (checked in tests/test_cron.py). Left out:
# reversed ranges (croniter wraps them round), 6 and 7 fields (croniter reads seconds and years),
# `?`, `L`, `W` (croniter's extensions).
GARBAGE = (
    "x",
    "1,",
    ",1",
    "1,,2",
    "1-",
    "-1",
    "1-2-3",
    "*/",
    "*/2/3",
    "1.5",
    "**",
    "+1",
    "0x1",
    "#",
    "/5",
    "1/",
)


@st.composite
def invalid_expressions(draw: st.DrawFn) -> str:
    """A valid expression with one field made invalid, or the wrong number of fields."""
    parts = list(draw(st.tuples(*(field(i) for i in range(5)))))
    how = draw(st.sampled_from(("out of range", "zero step", "garbage", "name", "field count")))
    index = draw(st.integers(0, 4))
    spec = FIELDS[index]
    if how == "field count":
        count = draw(st.sampled_from((4, 3, 8, 1)))
        parts = (parts * 2)[:count]
        return " ".join(parts)
    if how == "out of range":
        below = [spec.low - 1] if spec.low > 0 else []
        bad = draw(st.one_of(st.integers(spec.high + 1, 99), st.sampled_from(below or [99])))
        parts[index] = draw(
            st.sampled_from(
                (
                    str(bad),
                    f"{min(bad, spec.low)}-{max(bad, spec.low)}",
                    f"{spec.low},{bad}",
                )
            )
        )
    elif how == "zero step":
        parts[index] = draw(st.sampled_from(("*/0", f"{spec.low}-{spec.high}/0")))
    elif how == "garbage":
        parts[index] = draw(st.sampled_from(GARBAGE))
    else:  # a name where it does not belong
        wrong = {"month": "mon", "day of week": "jan"}.get(spec.name, "jan")
        parts[index] = wrong if index != 4 else draw(st.sampled_from(("jan", "mon-foo", "funday")))
    return " ".join(parts)


FIXED_INVALID: tuple[tuple[str, str], ...] = (
    ("", "empty"),
    ("   ", "blank"),
    ("* * * *", "4 fields"),
    ("* * * * * * * *", "8 fields"),
    ("60 * * * *", "minute 60"),
    ("* 24 * * *", "hour 24"),
    ("* * 0 * *", "day of month 0"),
    ("* * 32 * *", "day of month 32"),
    ("* * * 0 *", "month 0"),
    ("* * * 13 *", "month 13"),
    ("* * * * 8", "day of week 8"),
    ("5-70 * * * *", "range past the end"),
    ("*/0 * * * *", "step 0"),
    ("1-5/0 * * * *", "step 0 on a range"),
    ("-5 * * * *", "negative"),
    ("jan * * * *", "a month name in the minutes"),
    ("* * * foo *", "unknown month name"),
    ("* * * * jan", "a month name in the days of week"),
    ("1,,2 * * * *", "empty list item"),
    ("*/2/3 * * * *", "two steps"),
    ("1.5 * * * *", "a fraction"),
    ("a b c d e", "letters"),
)


# -- boundary cases ----------------------------------------------------------------------------


def fixed_cases(horizon_s: float) -> list[Case]:
    """The valid boundary cases, for any horizon (asks are cut to it, except the ones beyond)."""
    horizon = timedelta(seconds=int(horizon_s))
    base = datetime(2024, 1, 1)

    def up_to(start: datetime, length: timedelta) -> datetime:
        return start + min(length, horizon)

    out = [
        Case("* * * * *", base, base + horizon, "dense: every minute over the whole horizon"),
        Case("* * 13 * 5", base, base + horizon, "dense, both day fields set"),
        Case("*/7 3-20 1,15 * mon-fri", base, base + horizon, "lists, ranges, steps, names"),
        Case("0 0 30 2 *", base, base + horizon, "never fires (30 February)"),
        Case("0 0 31 4 *", base, base + horizon, "never fires (31 April)"),
        Case("0 0 31 2,4,6,9,11 *", base, base + horizon, "never fires (31st of short months)"),
        Case("0 0 29 2 *", base, base + horizon, "leap day"),
        Case(
            "0 12 29 2 *",
            datetime(2028, 2, 28, 12),
            up_to(datetime(2028, 2, 28, 12), timedelta(days=2)),
            "leap day, start and end a day away",
        ),
        Case(
            "59 23 28,29 2 *",
            datetime(2100, 2, 1),
            up_to(datetime(2100, 2, 1), timedelta(days=30)),
            "2100 is no leap year",
        ),
        Case(
            "0 12 * * *",
            datetime(2024, 3, 1),
            up_to(datetime(2024, 3, 1), timedelta(days=4, hours=12)),
            "end exactly on an occurrence",
        ),
        Case(
            "30 9 * * mon-fri",
            datetime(2024, 1, 8, 9, 30),
            up_to(datetime(2024, 1, 8, 9, 30), timedelta(days=7)),
            "start exactly on an occurrence",
        ),
        Case(
            "*/15 * * * *",
            datetime(2024, 6, 1),
            up_to(datetime(2024, 6, 1), timedelta(hours=1)),
            "start and end exactly on occurrences",
        ),
        Case(
            "* * * * *",
            datetime(2024, 1, 1),
            up_to(datetime(2024, 1, 1), timedelta(minutes=1)),
            "one minute: both ends on occurrences, nothing between",
        ),
        Case(
            "* * * * *",
            datetime(2024, 1, 1, 0, 0, 30),
            up_to(datetime(2024, 1, 1, 0, 0, 30), timedelta(minutes=3)),
            "start between minutes",
        ),
        Case("0 0 * * *", base, base, "start equals end"),
        Case(
            "59 23 31 12 *",
            datetime(2024, 12, 31, 23, 59),
            datetime(2024, 12, 31, 23, 59) + horizon,
            "year end, start on an occurrence",
        ),
        Case("0 0 1 * */2", base, base + horizon, "day fields read two ways (*/2)"),
        Case("5-5 5-5 * * *", base, up_to(base, timedelta(days=3)), "ranges with equal ends"),
        # asks beyond the horizon: still bounded
        Case("* * * * *", base, base + 3 * horizon, "beyond the horizon: dense, 3 horizons"),
        Case(
            "0 0 31 4 *",
            base,
            base + max(10 * timedelta(days=365), 2 * horizon),
            "beyond the horizon: never fires, 10 years",
        ),
        Case(
            "0 0 29 2 *",
            datetime(2025, 3, 1),
            datetime(2025, 3, 1) + max(4 * timedelta(days=365), 2 * horizon),
            "beyond the horizon: the next leap day is further away",
        ),
    ]
    return out


def beyond_horizon(case: Case, horizon_s: float) -> bool:
    return case.span_s > int(horizon_s)
