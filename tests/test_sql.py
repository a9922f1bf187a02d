"""[[sql]] claims: where a setup file failed (the lexer, in process), and the kind against a real
embedded Postgres: through `signoff run` (the claims of tests/data/sql/claims.toml), in process
(setup failures of each sort, timeouts, sqlstate, rolled-back writes, the run's own database
dropped at the end), and twice on one shared server through the url backend."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from signoff.claims import ClaimRef, load_claims
from signoff.context import RunContext
from signoff.kinds.sql.check import check
from signoff.kinds.sql.locate import failure_line, line_at, statements
from signoff.kinds.sql.wire import OutOfTime, connect, run
from signoff.ledger import Ledger
from signoff.report.run_info import RunInfo
from signoff.services import Service, start_services, stop_services
from signoff.services.url import PostgresUrl
from signoff.verdict import Verdict
from tests.runs import claims, signoff

DATA = Path(__file__).resolve().parent / "data" / "sql"


# -- where a setup file failed, without Postgres ------------------------------------------------


def _starts(text: str) -> list[int]:
    return [line_at(text, s.start) for s in statements(text)]


def test_statements_end_at_semicolons_outside_quotes_and_comments() -> None:
    text = (
        "-- a comment; not a statement\n"
        "select 'a;b', E'it\\'s;', \"odd;name\" /* one; /* nested; */ still; */ from t;\n"
        "\n"
        ";;  -- empty statements give no result\n"
        "select $tag$ ; $notyet$ ; $tag$, $$;$$;\n"
        "select 1 -- the last one needs no semicolon"
    )
    assert _starts(text) == [2, 5, 6]


def test_a_do_block_and_a_begin_atomic_body_are_one_statement() -> None:
    text = (
        "create table a (x int);\n"
        "DO $$\nbegin\n  perform 1;\nend\n$$;\n"
        "create or replace function f() returns int language sql\n"
        "begin atomic\n  select 1;\n  select case when true then 2 end;\nend;\n"
        "create function g(int) returns int language sql return $1;\n"
        "select 1;\n"
    )
    found = statements(text)
    assert [line_at(text, s.start) for s in found] == [1, 2, 7, 12, 13]
    assert found[1].body is not None and line_at(text, found[1].body) == 2


def test_the_failing_line_from_a_position_a_count_or_a_do_blocks_context() -> None:
    text = "create table a (x int);\n\nDO $$\nbegin\n  raise exception 'boom';\nend\n$$;\n"
    assert failure_line(text, 0, 26, None) == 3  # Postgres's 1-based position: the D of DO
    assert failure_line(text, 1, None, None) == 3  # the statement after the one that ran
    context = "PL/pgSQL function inline_code_block line 3 at RAISE"
    assert failure_line(text, 1, None, context) == 5
    assert failure_line(text, 0, None, None) == 1
    assert failure_line(text, 2, None, None) is None  # no such statement


# -- the kind, in process, against a real Postgres --------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[Service]:
    services = start_services(["postgres"], backend="embedded", timeout=60)
    try:
        yield services["postgres"]
    finally:
        stop_services(services)


def _context(
    tmp_path: Path, service: Service, sql_claims: str
) -> tuple[RunContext, list[ClaimRef]]:
    tmp_path.mkdir(exist_ok=True)
    for fixture in DATA.glob("*.sql"):
        shutil.copy(fixture, tmp_path)
    path = tmp_path / "claims.toml"
    path.write_text(f'[target]\nname = "sql-test"\nservices = ["postgres"]\n\n{sql_claims}')
    loaded = load_claims(path)
    ctx = RunContext(
        claims=loaded,
        report_dir=tmp_path,
        ledger=Ledger(tmp_path / "ledger.jsonl"),
        info=RunInfo(target="sql-test", claims_file=str(path)),
        deadline=time.monotonic() + 120,
        services={"postgres": service},
    )
    return ctx, loaded.claims()


def _checked(tmp_path: Path, service: Service, sql_claims: str) -> list[Verdict]:
    ctx, refs = _context(tmp_path, service, sql_claims)
    try:
        return [check(ctx, ref) for ref in refs]
    finally:
        assert ctx.run_at_finish() == []


def _databases(service: Service) -> set[str]:
    with psycopg.connect(service.url, connect_timeout=2) as conn:
        rows = conn.execute("select datname from pg_database").fetchall()
    return {row[0] for row in rows}


def test_a_setup_error_inside_a_do_block_names_its_line(tmp_path: Path, postgres: Service) -> None:
    [verdict] = _checked(
        tmp_path, postgres, '[[sql]]\nname = "x"\nsetup = ["broken_do.sql"]\nquery = "select 1"\n'
    )
    assert verdict.status == "error"
    first, source, context = verdict.evidence.splitlines()
    assert first == (
        "not checked: setup file broken_do.sql failed at line 5: P0001 the fix was not applied"
    )
    assert source == "5 | RAISE EXCEPTION 'the fix was not applied';"
    assert context == "context: PL/pgSQL function inline_code_block line 4 at RAISE"
    assert verdict.measured == {"setup": "broken_do.sql", "line": 5, "sqlstate": "P0001"}


def test_a_syntax_error_in_a_setup_file_names_its_line(tmp_path: Path, postgres: Service) -> None:
    verdicts = _checked(
        tmp_path,
        postgres,
        '[[sql]]\nname = "a"\nsetup = ["schema.sql", "broken_syntax.sql"]\nquery = "select 1"\n'
        '[[sql]]\nname = "b"\nsetup = ["schema.sql"]\nquery = "select * from user_wishlists"\n'
        "rows = 3\n",
    )
    assert [v.status for v in verdicts] == ["error", "holds"]  # schema.sql ran, and only once
    assert verdicts[0].evidence.splitlines()[:2] == [
        "not checked: setup file broken_syntax.sql failed at line 3: 42601 syntax error at or "
        'near "TABEL"',
        "3 | CREATE TABEL typo (id integer);",
    ]


def test_a_query_past_its_statement_timeout_is_cancelled(tmp_path: Path, postgres: Service) -> None:
    [verdict] = _checked(
        tmp_path, postgres, '[[sql]]\nname = "x"\nquery = "select pg_sleep(30)"\nwithin = "100ms"\n'
    )
    assert verdict.status == "fails", verdict.evidence
    assert verdict.evidence.startswith("select pg_sleep(30): still running after ")
    assert verdict.evidence.endswith(
        "(cancelled by its statement_timeout), over the 100 ms claimed (+10 ms tolerance)"
    )
    assert verdict.measured["rows"] is None


def test_a_server_that_stops_answering_is_left_at_the_deadline(postgres: Service) -> None:
    conn = connect(postgres, None, statement_timeout=30.0)
    try:
        postgres.freeze()
        with pytest.raises(OutOfTime):
            run(conn, "select 1", time.monotonic() + 0.3)
        assert conn.closed
    finally:
        postgres.thaw()
        conn.close()
    postgres.ping()


def test_sqlstate_claims_and_writes_that_are_rolled_back(tmp_path: Path, postgres: Service) -> None:
    user = 'role = "authenticated"\nsettings = { "request.jwt.claim.sub" = "user-1" }\n'
    verdicts = _checked(
        tmp_path,
        postgres,
        f'[[sql]]\nname = "own insert"\nsetup = ["schema.sql"]\n{user}'
        "query = \"insert into user_wishlists values (10, 'user-1', 'map')\"\nrows = 1\n"
        f'[[sql]]\nname = "insert for another"\n{user}'
        "query = \"insert into user_wishlists values (11, 'user-2', 'map')\"\n"
        'sqlstate = "42501"\n'
        f'[[sql]]\nname = "still two rows"\n{user}query = "select * from user_wishlists"\n'
        "rows = 2\n"
        f'[[sql]]\nname = "expected to fail"\n{user}query = "select 1"\nsqlstate = "42501"\n'
        f'[[sql]]\nname = "another state"\n{user}query = "select * from nowhere"\n'
        'sqlstate = "42501"\n'
        '[[sql]]\nname = "no such role"\nrole = "nobody_here"\nquery = "select 1"\n',
    )
    status = {v.id.partition(":")[2]: (v.status, v.evidence.splitlines()[0]) for v in verdicts}
    assert status["own insert"][0] == "holds"
    assert "INSERT 0 1 in " in status["own insert"][1]
    denied = status["insert for another"]
    assert denied[0] == "holds"
    assert (
        ': 42501 new row violates row-level security policy for table "user_wishlists" in '
        in (denied[1])
    )
    assert denied[1].endswith(", as claimed")
    assert status["still two rows"][0] == "holds"  # the insert above was rolled back
    assert status["expected to fail"][0] == "fails"
    assert "succeeded (1 row) in " in status["expected to fail"][1]
    assert status["expected to fail"][1].endswith(", expected it to fail with 42501")
    assert status["another state"][0] == "fails"
    assert '42P01 relation "nowhere" does not exist in ' in status["another state"][1]
    assert status["another state"][1].endswith(", expected 42501")
    assert status["no such role"] == (
        "error",
        'not checked: SET ROLE nobody_here failed: 22023 role "nobody_here" does not exist',
    )


def test_each_run_has_its_own_database_dropped_at_the_end(
    tmp_path: Path, postgres: Service
) -> None:
    claim = '[[sql]]\nname = "x"\nsetup = ["once.sql"]\nquery = "select * from setup_runs"\n'
    first, first_refs = _context(tmp_path / "one", postgres, claim + "rows = 1\n")
    second, second_refs = _context(tmp_path / "two", postgres, claim + "rows = 1\n")
    before = _databases(postgres)
    try:
        # the same non-idempotent file in two runs at once: each in its own database
        assert check(first, first_refs[0]).status == "holds"
        assert check(second, second_refs[0]).status == "holds"
        made = _databases(postgres) - before
        assert len(made) == 2 and all(name.startswith("signoff_sql_") for name in made)
    finally:
        assert first.run_at_finish() == []
        assert second.run_at_finish() == []
    assert _databases(postgres) == before


def test_a_user_that_may_not_create_a_database_makes_every_claim_an_error(
    tmp_path: Path, postgres: Service
) -> None:
    with psycopg.connect(postgres.url, connect_timeout=2, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS signoff_limited")
        conn.execute("CREATE ROLE signoff_limited LOGIN NOCREATEDB")
    try:
        limited = PostgresUrl(postgres.url.replace("postgres@", "signoff_limited@", 1))
        verdicts = _checked(
            tmp_path, limited, '[[sql]]\nname = "a"\nquery = "select 1"\n'
            '[[sql]]\nname = "b"\nquery = "select 1"\n',
        )  # fmt: skip
    finally:
        with psycopg.connect(postgres.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("DROP ROLE signoff_limited")
    assert [v.status for v in verdicts] == ["error", "error"]
    assert verdicts[0].evidence == verdicts[1].evidence
    assert verdicts[0].evidence.splitlines() == [
        "not checked: could not create the run's own database on postgres (url): 42501 "
        "permission denied to create database",
        "[[sql]] needs a Postgres user that may CREATE DATABASE",
    ]


# -- through `signoff run` ------------------------------------------------------------------------


@pytest.mark.slow
def test_sql_claims_through_signoff_run(tmp_path: Path) -> None:
    run = signoff(
        "run", str(DATA / "claims.toml"), "--services", "embedded", "--report-dir", str(tmp_path)
    )
    assert run.returncode == 1, run.stdout + run.stderr
    found = {name.partition(":")[2]: c for name, c in claims(tmp_path).items()}
    assert {name: c["status"] for name, c in found.items()} == {
        "a user reads only their own wishlist": "holds",
        "a wrong row count fails": "fails",
        "a recursive policy": "fails",
        "a missing table": "fails",
        "no grant, no read": "holds",
        "a broken setup": "error",
        "the same broken setup, remembered": "error",
        "a setup runs once": "holds",
        "a setup runs once, named again": "holds",
        "a slow query": "fails",
    }, json.dumps(found, indent=1)

    own = found["a user reads only their own wishlist"]
    assert own["evidence"].startswith(
        "select * from user_wishlists order by id as authenticated: 2 rows in "
    )
    assert own["evidence"].splitlines()[1:] == ["settings: request.jwt.claim.sub=user-1"]
    assert own["measured"]["rows"] == 2 and own["measured"]["sqlstate"] is None
    assert own["budget"]["rows"] == 2 and own["budget"]["role"] == "authenticated"

    wrong = found["a wrong row count fails"]["evidence"].splitlines()
    assert wrong[0].endswith(", expected 3 rows")
    assert wrong[1] == (
        "rows: id=1, user_id=user-1, item=tent; id=2, user_id=user-1, item=camp stove"
    )

    recursive = found["a recursive policy"]
    assert (
        recursive["evidence"]
        .splitlines()[0]
        .startswith(
            "select * from group_members as authenticated: 42P17 infinite recursion detected in "
            'policy for relation "group_members" (after '
        )
    )
    assert recursive["measured"]["sqlstate"] == "42P17"
    missing = found["a missing table"]
    assert missing["evidence"].startswith(
        'select count(*) from affiliate_sales: 42P01 relation "affiliate_sales" does not exist'
    )

    denied = found["no grant, no read"]["evidence"]
    assert "42501 permission denied for table private_notes in " in denied
    assert denied.endswith(", as claimed")

    broken = found["a broken setup"]
    assert broken["evidence"].splitlines() == [
        "not checked: setup file broken_policy.sql failed at line 4: 42P01 relation "
        '"affiliate_sales" does not exist',
        "4 | CREATE POLICY read_sales ON affiliate_sales FOR SELECT USING (true);",
    ]
    assert found["the same broken setup, remembered"]["evidence"] == broken["evidence"]

    slow = found["a slow query"]
    assert slow["evidence"].startswith("select pg_sleep(0.6): 1 row in ")
    assert slow["evidence"].endswith(", over the 200 ms claimed (+20 ms tolerance)")


@pytest.mark.slow
def test_two_runs_on_one_shared_server_leave_nothing_behind(
    tmp_path: Path, postgres: Service
) -> None:
    """The url backend: a server the runs do not own. The role the setup makes stays (roles are
    the cluster's; the setup is idempotent), each run's database is gone after it."""
    shutil.copy(DATA / "schema.sql", tmp_path)
    path = tmp_path / "claims.toml"
    path.write_text(
        '[target]\nname = "shared"\nservices = ["postgres"]\n\n[[sql]]\nname = "own rows"\n'
        'setup = ["schema.sql"]\nrole = "authenticated"\n'
        'settings = { "request.jwt.claim.sub" = "user-2" }\n'
        'query = "select * from user_wishlists"\nrows = 1\n'
    )
    before = _databases(postgres)
    for run_number in (1, 2):
        report = tmp_path / f"run{run_number}"
        run = signoff(
            "run", str(path), "--services", "url", "--report-dir", str(report),
            env={"DATABASE_URL": postgres.url},
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert _databases(postgres) == before
