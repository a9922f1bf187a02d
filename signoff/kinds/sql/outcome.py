"""What a claim's query gave, and the verdict on it, in the words the evidence uses:
`select * from user_wishlists as authenticated: 2 rows in 3.1 ms (expected 2)`."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import pq

from signoff.claims.model import SqlClaim
from signoff.kinds.sql.wire import PgError
from signoff.units import format_duration
from signoff.verdict import Verdict

QUERY_SHOWN = 48  # characters of the query in the evidence's first line
SAMPLE_ROWS = 3  # rows shown when the count is wrong
ROW_SHOWN = 100  # characters of each


@dataclass(frozen=True)
class Outcome:
    """The query took `seconds`, and returned `rows` (with `tag`, the command's, for a
    statement that returns none: "UPDATE 0"), or failed with `error`, or got no answer in
    time (`cut` says how it ended)."""

    seconds: float
    rows: int | None = None
    tag: str | None = None
    sample: list[str] = field(default_factory=list)
    error: PgError | None = None
    cut: str | None = None


def sample(result: pq.abc.PGresult, limit: int = SAMPLE_ROWS) -> list[str]:
    """The first rows of a result, as text: "id=1, owner=user-1"."""
    names = [(result.fname(j) or b"?").decode("utf-8", "replace") for j in range(result.nfields)]
    shown = []
    for i in range(min(limit, result.ntuples)):
        values = []
        for j, name in enumerate(names):
            value = result.get_value(i, j)
            values.append(f"{name}={'null' if value is None else value.decode('utf-8', 'replace')}")
        shown.append(_cut(", ".join(values), ROW_SHOWN))
    return shown


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(spec: SqlClaim) -> str:
    """ "select * from user_wishlists as authenticated"."""
    query = _cut(" ".join(spec.query.split()), QUERY_SHOWN)
    return f"{query} as {spec.role}" if spec.role is not None else query


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def expected_rows(spec: SqlClaim) -> str | None:
    """ "2 rows", "at least 1 row", "1 to 3 rows", "at most 3 rows"; None when the count is
    not claimed."""
    low, high = spec.min_rows, spec.max_rows
    if spec.rows is not None:
        return _rows(spec.rows)
    if low is not None and high is not None:
        return f"{low} to {_rows(high)}"
    if low is not None:
        return f"at least {_rows(low)}"
    if high is not None:
        return f"at most {_rows(high)}"
    return None


def _count_holds(spec: SqlClaim, rows: int) -> bool:
    return (
        (spec.rows is None or rows == spec.rows)
        and (spec.min_rows is None or rows >= spec.min_rows)
        and (spec.max_rows is None or rows <= spec.max_rows)
    )


def judge(verdict: Verdict, spec: SqlClaim, outcome: Outcome, slack: float) -> None:
    """Set the verdict's status, evidence and measured figures from the outcome."""
    what = describe(spec)
    took = format_duration(outcome.seconds)
    over = outcome.seconds > spec.within + slack
    late = f"over the {format_duration(spec.within)} claimed (+{format_duration(slack)} tolerance)"
    error = outcome.error
    verdict.measured = {
        "seconds": round(outcome.seconds, 4),
        "rows": outcome.rows,
        "sqlstate": error.sqlstate if error is not None else None,
    }
    lines: list[str] = []
    if outcome.cut is not None:
        verdict.status = "fails"
        lines.append(f"{what}: still running after {took} ({outcome.cut}), {late}")
    elif spec.sqlstate is not None:
        lines.extend(_judge_sqlstate(verdict, spec, outcome, what, took, over, late))
    elif error is not None:
        verdict.status = "fails"
        wanted = expected_rows(spec)
        expected = f"; expected {wanted}" if wanted is not None else ""
        lines.extend([f"{what}: {error.headline()} (after {took}{expected})", *error.more()])
    else:
        assert outcome.rows is not None
        got = outcome.tag or _rows(outcome.rows)
        wanted = expected_rows(spec)
        problems = []
        count_ok = _count_holds(spec, outcome.rows)
        if not count_ok:
            problems.append(f"expected {wanted}")
        if over:
            problems.append(late)
        if problems:
            verdict.status = "fails"
            lines.append(f"{what}: {got} in {took}, {'; '.join(problems)}")
            if not count_ok and outcome.sample:
                more = outcome.rows - len(outcome.sample)
                lines.append(
                    "rows: " + "; ".join(outcome.sample) + (f"; {more} more" if more > 0 else "")
                )
        else:
            expectation = (
                f"expected {wanted}"
                if wanted is not None
                else f"within {format_duration(spec.within)}"
            )
            lines.append(f"{what}: {got} in {took} ({expectation})")
    if spec.settings:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in spec.settings.items()))
    verdict.evidence = "\n".join(lines)


def _judge_sqlstate(
    verdict: Verdict, spec: SqlClaim, outcome: Outcome, what: str, took: str, over: bool, late: str
) -> list[str]:
    error = outcome.error
    if error is None:
        verdict.status = "fails"
        got = outcome.tag or _rows(outcome.rows or 0)
        return [f"{what}: succeeded ({got}) in {took}, expected it to fail with {spec.sqlstate}"]
    if error.sqlstate != spec.sqlstate:
        verdict.status = "fails"
        return [f"{what}: {error.headline()} in {took}, expected {spec.sqlstate}", *error.more()]
    if over:
        verdict.status = "fails"
        return [f"{what}: {error.headline()} in {took}, as claimed but {late}"]
    return [f"{what}: {error.headline()} in {took}, as claimed"]
