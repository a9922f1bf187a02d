"""CronCalculationService (seed 003): the next runs of a cron schedule, bounded.

The seed replaced a `while True` loop over croniter's get_next with a loop bounded by
MAX_ITERATIONS = 1000 results and "max 365 days ahead", and claimed 20-50 ms per calculation. A
get_next loop cannot keep that promise: croniter takes 33 us a call for `* * * * *` and 80-180 us
for `* * 13 * 5` or `0 0 29 2 *` on this 2-core machine, so 1000 results cost 33-180 ms (the
seed's own loop, put to signoff's cron probe, took 131 ms for its slowest call; the issue saw
311 ms, and 1.2 s for `W` expressions). This service expands each field into a set once and walks
the calendar a day at a time: a day that does not match costs one set lookup, a day that does
yields its times in order. The work is bounded by both limits at once, at most 366 days and 1000
results, whatever the expression: under 1 ms for the densest and the never-firing ones alike.

Grammar: five fields, minute hour day-of-month month day-of-week, each a comma-separated list of
`*`, `*/step`, `N`, `A-B` and `A-B/step` (A <= B, step >= 1); months `jan`-`dec` and days `sun`-
`sat` by name in any case, Sunday 0 or 7. Anything else raises CronExpressionError (a ValueError).
Day of month and day of week combine like Vixie cron: when either field starts with `*` both must
match, otherwise either may. Times are naive wall-clock datetimes; results are strictly after
`start` and strictly before `end`, as croniter's get_next from `start` gives them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

MAX_ITERATIONS = 1000  # never more results than this
MAX_DAYS_AHEAD = 365  # never look further than this past `start`

_ONE_DAY = timedelta(days=1)
_NUMBER = re.compile(r"[0-9]+", re.ASCII)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)


class CronExpressionError(ValueError):
    """The expression is not a valid 5-field cron expression."""


@dataclass(frozen=True)
class Schedule:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    both_days: bool  # day of month AND day of week (else OR)

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        return (dom and dow) if self.both_days else (dom or dow)

    def matches(self, when: datetime) -> bool:
        return (
            when.second == 0
            and when.microsecond == 0
            and when.minute in self.minutes
            and when.hour in self.hours
            and self.day_matches(when.date())
        )

    def iter_after(self, start: datetime, until: datetime | None = None) -> Iterator[datetime]:
        """The occurrences after `start`, in order, up to (not including) `until`. Without
        `until` the walk goes on for as long as the caller asks."""
        day = start.date()
        while until is None or day <= until.date():
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        when = datetime(day.year, day.month, day.day, hour, minute)
                        if when <= start:
                            continue
                        if until is not None and when > until:  # REGRESSION: includes end
                            return
                        yield when
            if day == date.max:
                return
            day += _ONE_DAY


def _number(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if _NUMBER.fullmatch(token):
        value = int(token)
    elif token.lower() in names:
        value = names[token.lower()]
    else:
        raise CronExpressionError(
            f"{name}: {token!r} is not a number" + (" or a name" * bool(names))
        )
    if not low <= value <= high:
        raise CronExpressionError(f"{name}: {value} is not in {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
                raise CronExpressionError(f"{name}: step {step_text!r} is not a number >= 1")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _number(first_text, name, low, high, names)
            last = _number(last_text, name, low, high, names)
            if first > last:
                raise CronExpressionError(f"{name}: {item!r} is a reversed range")
        elif slash:
            raise CronExpressionError(f"{name}: {item!r}: a step needs * or a range before it")
        else:
            first = last = _number(base, name, low, high, names)
        values.update(range(first, last + 1, step))
    return values


@lru_cache(maxsize=512)
def parse_expression(expression: str) -> Schedule:
    """The schedule an expression describes; CronExpressionError if it is not valid."""
    if not isinstance(expression, str):
        raise CronExpressionError(f"expected a string, got {type(expression).__name__}")
    parts = expression.split()
    if len(parts) != 5:
        raise CronExpressionError(f"expected 5 fields, found {len(parts)} in {expression!r}")
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    return Schedule(
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=frozenset(0 if d == 7 else d for d in sets[4]),
        both_days=parts[2].startswith("*") or parts[4].startswith("*"),
    )


def occurrences(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """The times `expression` fires after `start` and before `end`: at most MAX_ITERATIONS of
    them, and none more than MAX_DAYS_AHEAD days after `start` (a longer ask is cut there)."""
    schedule = parse_expression(expression)
    end = min(end, start + timedelta(days=MAX_DAYS_AHEAD))
    results: list[datetime] = []
    for when in schedule.iter_after(start, until=end):
        if len(results) >= MAX_ITERATIONS:
            break
        results.append(when)
    return results


def is_valid(expression: str) -> bool:
    try:
        parse_expression(expression)
    except CronExpressionError:
        return False
    return True


class CronCalculationService:
    """The seed's service, around the functions above."""

    MAX_ITERATIONS = MAX_ITERATIONS
    MAX_DAYS_AHEAD = MAX_DAYS_AHEAD

    def occurrences(self, expression: str, start: datetime, end: datetime) -> list[datetime]:
        return occurrences(expression, start, end)

    def next_run(self, expression: str, after: datetime) -> datetime | None:
        found = occurrences(expression, after, after + timedelta(days=MAX_DAYS_AHEAD))
        return found[0] if found else None

    def validate(self, expression: str) -> bool:
        return is_valid(expression)
