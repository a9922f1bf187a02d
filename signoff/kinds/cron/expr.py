"""The harness's own model of 5-field cron expressions: parse, match, expand.

The cron probe uses it in the harness process (it never runs target code): to check that every
result matches its expression, to put generated cases' `start` and `end` exactly on occurrences,
to tell which day-of-month/day-of-week reading an expression has, and to rewrite expressions
around croniter's quirks before croniter is asked (`for_croniter`).

The grammar is the one the probe generates, the common ground of Vixie cron, croniter and
cronsim: five fields separated by blanks (minute 0-59, hour 0-23, day of month 1-31, month 1-12
or jan-dec, day of week 0-7 or sun-sat, 7 being Sunday too), each a comma-separated list of
`*`, `*/step`, `N`, `A-B` and `A-B/step` with A <= B and step >= 1; names are case-insensitive.
Left out on purpose, because the three disagree on them: reversed ranges (`5-1`: croniter wraps
round, cronsim refuses), `N/step` alone, and the extensions `?`, `L`, `W`, `#` and seconds or
year fields.

Day of month and day of week: when one of them is unrestricted, the other decides; when both are
restricted, a day matches either (cron's OR). Implementations disagree on "unrestricted".
POSIX says a field that is `*`; Vixie cron (cronie, cronsim) says any field that starts with `*`,
so `0 0 */2 * 1` fires on odd Mondays there (AND) and on odd days and all Mondays elsewhere (OR);
and croniter mixes rules of its own (`*/1` and a day-of-week list of all seven days count as
`*`, `1-31` does not, except beside a day of week that starts with `*`). `readings()` gives both
AND and OR when these rules disagree on an expression; a target may follow either, consistently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("minute", 0, 59, {}),
    FieldSpec("hour", 0, 23, {}),
    FieldSpec("day of month", 1, 31, {}),
    FieldSpec("month", 1, 12, {n: i + 1 for i, n in enumerate(MONTH_NAMES)}),
    FieldSpec("day of week", 0, 7, {n: i for i, n in enumerate(DAY_NAMES)}),
)

_NUMBER = re.compile(r"[0-9]+", re.ASCII)
_ONE_DAY = timedelta(days=1)
ALL_DAYS = frozenset(range(1, 32))
ALL_WEEKDAYS = frozenset(range(7))


def _value(token: str, spec: FieldSpec) -> int:
    if _NUMBER.fullmatch(token):
        value = int(token)
    elif token.lower() in spec.names:
        value = spec.names[token.lower()]
    else:
        raise ValueError(f"{spec.name}: {token!r} is not a number or a name")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name}: {value} is out of {spec.low}-{spec.high}")
    return value


def _step(token: str, spec: FieldSpec) -> int:
    if not _NUMBER.fullmatch(token) or int(token) < 1:
        raise ValueError(f"{spec.name}: step {token!r} is not a whole number >= 1")
    return int(token)


@dataclass(frozen=True)
class Item:
    """One comma-separated item of a field: `*`, `*/s`, `N`, `A-B` or `A-B/s`."""

    text: str
    low: int
    high: int
    step: int
    star: bool  # `*` or `*/s`
    ranged: bool  # `A-B` or `A-B/s`

    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)


def parse_item(text: str, spec: FieldSpec) -> Item:
    base, slash, step_text = text.partition("/")
    step = _step(step_text, spec) if slash else 1
    if base == "*":
        return Item(text, spec.low, spec.high, step, star=True, ranged=False)
    low_text, dash, high_text = base.partition("-")
    if not dash:
        if slash:
            raise ValueError(f"{spec.name}: {text!r}: a step needs * or a range before it")
        value = _value(base, spec)
        return Item(text, value, value, 1, star=False, ranged=False)
    low, high = _value(low_text, spec), _value(high_text, spec)
    if low > high:
        raise ValueError(f"{spec.name}: {text!r} is a reversed range")
    return Item(text, low, high, step, star=False, ranged=True)


@dataclass(frozen=True)
class Expression:
    """A parsed expression. Sets of the values each field allows; Sunday is 0 (7 folded in)."""

    text: str
    fields: tuple[str, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    def readings(self) -> tuple[bool, ...]:
        """How day of month and day of week combine, by each rule of the module doc: (False,)
        for OR, (True,) for AND, (False, True) when the rules disagree on this expression."""
        dom, dow = self.fields[2], self.fields[4]
        posix = dom == "*" or dow == "*"
        vixie = dom.startswith("*") or dow.startswith("*")
        full = self.days == ALL_DAYS or self.weekdays == ALL_WEEKDAYS
        return tuple(sorted({posix, vixie, full}))

    @property
    def ambiguous(self) -> bool:
        return len(self.readings()) > 1

    def day_matches(self, day: date, both: bool | None = None) -> bool:
        """Whether `day` matches; `both`: True for AND, False for OR, None for the reading every
        rule agrees on (OR when they disagree)."""
        if day.month not in self.months:
            return False
        if both is None:
            both = self.readings()[0]
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        return (dom and dow) if both else (dom or dow)

    def matches(self, when: datetime, both: bool | None = None) -> bool:
        return (
            when.second == 0
            and when.microsecond == 0
            and when.minute in self.minutes
            and when.hour in self.hours
            and self.day_matches(when.date(), both)
        )

    def between(
        self, start: datetime, end: datetime, both: bool | None = None
    ) -> Iterator[datetime]:
        """Every occurrence t with start < t < end, in order. Walks days, not minutes: bounded
        by the number of days from start to end, whatever the expression."""
        day = start.date()
        last = end.date()
        while day <= last:
            if self.day_matches(day, both):
                for hour in self.hours:
                    for minute in self.minutes:
                        when = datetime(day.year, day.month, day.day, hour, minute)
                        if when <= start:
                            continue
                        if when >= end:
                            return
                        yield when
            if day == date.max:
                return
            day += _ONE_DAY


def parse(text: str) -> Expression:
    """Parse an expression of the grammar above; ValueError for anything else."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields, found {len(parts)}")
    sets: list[set[int]] = []
    for part, spec in zip(parts, FIELDS, strict=True):
        values: set[int] = set()
        for item_text in part.split(","):
            if not item_text:
                raise ValueError(f"{spec.name}: empty item in {part!r}")
            values.update(parse_item(item_text, spec).values())
        sets.append(values)
    weekdays = {0 if d == 7 else d for d in sets[4]}
    return Expression(
        text=text,
        fields=tuple(parts),
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=frozenset(weekdays),
    )


def for_croniter(text: str) -> str:
    """The same schedule, written so that croniter reads it right: croniter reads a range whose
    ends are equal (`5-5`, `5-5/2`, `feb-feb`, even inside a list: `5-5,6`) as the whole field,
    so each such range becomes its single value. Everything else is left as it is."""
    parts = text.split()
    out = []
    for part, spec in zip(parts, FIELDS, strict=True):
        items = []
        for item_text in part.split(","):
            item = parse_item(item_text, spec)
            if item.ranged and item.low == item.high:
                items.append(item_text.partition("/")[0].partition("-")[0])
            else:
                items.append(item_text)
        out.append(",".join(items))
    return " ".join(out)
