"""The cron probe's oracle: croniter, asked the way it answers right. Runs in a serving child of
the harness's own interpreter (`worker.Worker`), so a slow or stuck croniter costs one case of
the claim, never the run.

How croniter is asked, and why:
- `get_next` from `start`, one result at a time, until one is not before `end`: it gives exactly
  the results after `start` and before `end`. `croniter_range` is no oracle: it passes an
  explicit `max_years_between_matches`, which makes croniter give up early on some sparse
  schedules (`W` expressions among them) instead of finding their next match.
- No `max_years_between_matches`; a schedule that never fires (`0 0 30 2 *`) makes get_next
  raise CroniterBadDateError after its own search, which means "no more results".
- Ranges with equal ends are rewritten to their value first (`cron_expr.for_croniter`):
  croniter reads `5-5` as the whole field.
- Only expressions whose day-of-month/day-of-week reading every rule agrees on are put to it
  (the probe checks the others against its own expansion, both ways): croniter's own rule for
  fields like `*/1` or `1-31` is neither POSIX's nor Vixie cron's.
"""

from __future__ import annotations

from datetime import datetime

from signoff.kinds.cron.expr import for_croniter


def expand(expression: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """croniter's occurrences of `expression` after `start` and before `end`, at most `limit`."""
    from croniter import CroniterBadDateError, croniter

    found: list[datetime] = []
    schedule = croniter(for_croniter(expression), start, day_or=True)
    try:
        while len(found) < limit:
            when = schedule.get_next(datetime)
            if when >= end:
                break
            found.append(when)
    except CroniterBadDateError:
        pass  # no further match: the schedule never fires again
    return found
