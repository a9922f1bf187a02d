"""[[call]] claims, and several faults at once (`faults = {...}`) on [[call]], [[timeouts]],
[[degradation]] and [[http]]: in process against a small target written to tmp_path (no
services: a call without faults needs none), and through `signoff run` against real Redis and
Postgres, where a getter tries Redis, then Postgres, then falls back, and a chain that skips
its Postgres link is caught."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from signoff.claims import ClaimsFile
from signoff.claims.model import CallClaim, HttpClaim
from signoff.context import RunContext
from signoff.engine.met import FaultWindows, Met, figures_by_fault, judge_met, met_lines
from signoff.engine.runner import Step, TargetProcess, run_steps
from signoff.faults.model import Fault
from signoff.faults.proxy import ProxyHub
from signoff.kinds.call.check import check_call
from signoff.kinds.degradation.check import _Findings
from signoff.kinds.degradation.check import _judge_met as judge_degradation_met
from signoff.kinds.http.check import Answer, _judge, _judge_met
from signoff.ledger import Ledger
from signoff.report.run_info import RunInfo
from signoff.server_met import Met as HttpMet
from signoff.verdict import Verdict
from tests.runs import claims, signoff

CACHE = '''
"""A cache service: the seed's clear_expired, present on one class and missing on the other."""

import asyncio
import time


class CacheService:
    def __init__(self):
        self.entries = {"a": 1, "b": 2, "c": 3}

    def clear_expired(self, older_than=0):
        removed = [k for k in list(self.entries) if self.entries[k] > older_than]
        for key in removed:
            del self.entries[key]
        return len(removed)


class OldCacheService:
    """The "before": clear_expired was never written."""

    def get(self, key):
        return None


cache = CacheService()
old_cache = OldCacheService()


def stats(prefix="k", limit=3):
    return {"removed": limit, "prefix": prefix, "nested": {"ok": True, "at": time.gmtime(0)}}


def nothing():
    return None


def lookup(key):
    raise KeyError(key)  # <- raises


def sleeps():
    time.sleep(120)  # <- stuck


def naps(seconds):
    time.sleep(seconds)
    return seconds


async def add(a, b):
    await asyncio.sleep(0)
    return a + b
'''

BROKEN = """
raise RuntimeError("no settings")  # <- import
"""

CHAIN = '''
"""A value from Redis, else from Postgres, else a fallback: the seed's fallback chain, with
Redis and Postgres as its engines."""

import os

import psycopg
import redis


class FromRedis:
    pass


class FromPostgres:
    pass


class Fallback:
    pass


def _redis():
    client = redis.Redis.from_url(
        os.environ["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1
    )
    client.ping()
    return FromRedis()


def _postgres():
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=2) as conn:
        conn.execute("select 1")
    return FromPostgres()


def get_value():
    """Every link tried in turn."""
    try:
        return _redis()
    except redis.RedisError:
        pass
    try:
        return _postgres()
    except psycopg.Error:
        pass
    return Fallback()


def get_value_skipping_postgres():
    """The regression: Redis down, Postgres is never asked."""
    try:
        return _redis()
    except redis.RedisError:
        return Fallback()


def source():
    return {"source": type(get_value()).__name__}


def source_skipping_postgres():
    return {"source": type(get_value_skipping_postgres()).__name__}
'''

APP = '''
"""A plain ASGI app over the chain, with an origin check that is right on /cors and wrong on
/cors-any (it echoes every origin, credentials and all)."""

import json

from calltarget import chain

ALLOWED = {"https://app.example"}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    origin = dict(scope["headers"]).get(b"origin", b"").decode()
    headers = [(b"content-type", b"application/json")]
    if path == "/chain":
        body = chain.source()
    elif path == "/chain-skip":
        body = chain.source_skipping_postgres()
    else:
        body = {"ok": True}
    if (path == "/cors" and origin in ALLOWED) or (path == "/cors-any" and origin):
        headers.append((b"access-control-allow-origin", origin.encode()))
        headers.append((b"access-control-allow-credentials", b"true"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
'''


def write_target(folder: Path) -> Path:
    """The package calltarget in `folder`; returns `folder`."""
    package = folder / "calltarget"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, text in {"cache": CACHE, "broken": BROKEN, "chain": CHAIN, "app": APP}.items():
        (package / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    return folder


def line_of(folder: Path, module: str, marker: str) -> int:
    lines = (folder / "calltarget" / f"{module}.py").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# <- {marker}"))


# -- the child passes arguments and hands back JSON ---------------------------------------------


def test_a_call_step_passes_arguments_and_hands_back_the_result_as_json(tmp_path: Path) -> None:
    target = TargetProcess(sys.executable, (str(write_target(tmp_path)),), {}, str(tmp_path))
    result = run_steps(
        target,
        [
            Step("stats", "resolve", 10, ref="calltarget.cache:stats"),
            Step("add", "resolve", 10, ref="calltarget.cache:add"),
            Step("s", "call", 5, func="stats", kwargs={"prefix": "x"}, args=(), as_json=True),
            Step("a", "call", 5, func="add", args=(2, 3), as_json=True),
            Step("plain", "call", 5, func="stats"),
        ],
    )
    assert result.outcome == "ended", result.stderr
    stats, added, plain = result.get("s"), result.get("a"), result.get("plain")
    assert stats is not None and stats.result_json is not None
    value = json.loads(stats.result_json)
    assert value["removed"] == 3 and value["prefix"] == "x" and value["nested"]["ok"] is True
    assert isinstance(value["nested"]["at"], list)  # a struct_time is a tuple: an array
    assert added is not None and added.result_json == "5" and added.result_repr == "5"
    assert plain is not None and plain.result_json is None and plain.result_json_error is None


# -- [[call]] in process, without services --------------------------------------------------


@pytest.fixture
def target_dir(tmp_path: Path) -> Path:
    return write_target(tmp_path / "target")


@pytest.fixture
def hub() -> Iterator[ProxyHub]:
    with ProxyHub() as running:
        yield running


def run_call_claim(
    folder: Path, hub: ProxyHub, services: tuple[str, ...] = (), **claim: Any
) -> Verdict:
    """One [[call]] claim checked in process: a run context with no service started (the
    target may declare `services`)."""
    claims = ClaimsFile.model_validate(
        {
            "path": str(folder / "signoff.toml"),
            "target": {"name": "calltarget", "pythonpath": ["."], "services": list(services)},
            "call": [{"name": "c", **claim}],
        },
        context={"base_dir": folder},
    )
    ctx = RunContext(
        claims=claims,
        report_dir=folder / "report",
        ledger=Ledger(folder / "report" / "ledger.jsonl"),
        info=RunInfo(target="calltarget", claims_file=str(claims.path)),
        deadline=time.monotonic() + 120,
        hub=hub,
    )
    return check_call(ctx, "call:c", claims.call[0])


def test_a_call_returns_what_it_promised(target_dir: Path, hub: ProxyHub) -> None:
    held = run_call_claim(
        target_dir,
        hub,
        call="calltarget.cache:cache.clear_expired",
        kwargs={"older_than": 1},
        returns="builtins:int",
        within="2s",
    )
    assert held.status == "holds", held.evidence
    assert held.evidence.startswith("returned builtins.int 2 in "), held.evidence
    assert held.measured["result"] == "2" and held.measured["outcome"] == "returned"
    assert held.budget == {"within_s": 2.0, "tolerance_s": 0.2, "returns": "builtins:int"}

    wrong = run_call_claim(
        target_dir, hub, call="calltarget.cache:nothing", returns="builtins:int", within="2s"
    )
    assert wrong.status == "fails"
    assert wrong.evidence == "returned builtins.NoneType None, not a builtins:int"

    coroutine = run_call_claim(
        target_dir, hub, call="calltarget.cache:add", args=[2, 3], returns="builtins:int"
    )
    assert coroutine.status == "holds" and coroutine.measured["result"] == "5", coroutine


def test_a_missing_method_fails_with_its_attribute_error(target_dir: Path, hub: ProxyHub) -> None:
    missing = run_call_claim(
        target_dir,
        hub,
        call="calltarget.cache:old_cache.clear_expired",
        returns="builtins:int",
        within="2s",
    )
    assert missing.status == "fails"
    assert missing.evidence == (
        "looking up calltarget.cache:old_cache.clear_expired raised AttributeError: "
        "'OldCacheService' object has no attribute 'clear_expired'"
    )
    assert missing.measured == {"seconds": None, "outcome": "raised before the call"}
    # a module that raises at import is the target's code too, with its line
    broken = run_call_claim(target_dir, hub, call="calltarget.broken:anything")
    assert broken.status == "fails"
    line = line_of(target_dir, "broken", "import")
    assert broken.evidence == (
        "looking up calltarget.broken:anything raised RuntimeError: no settings "
        f"(at calltarget/broken.py:{line})"
    )


def test_a_call_that_raises_is_judged_on_raises(target_dir: Path, hub: ProxyHub) -> None:
    line = line_of(target_dir, "cache", "raises")
    # a subclass counts
    held = run_call_claim(
        target_dir, hub, call="calltarget.cache:lookup", args=["k"], raises=["LookupError"]
    )
    assert held.status == "holds", held.evidence
    assert held.evidence.startswith(f"raised KeyError: 'k' (at calltarget/cache.py:{line}) in ")
    assert held.measured["exception"] == f"KeyError: 'k' (at calltarget/cache.py:{line})"
    wrong = run_call_claim(
        target_dir, hub, call="calltarget.cache:lookup", args=["k"], raises=["ValueError"]
    )
    assert wrong.status == "fails"
    assert wrong.evidence == (
        f"raised the wrong exception: KeyError: 'k' (at calltarget/cache.py:{line}); "
        "expected ValueError"
    )
    promised = run_call_claim(
        target_dir, hub, call="calltarget.cache:lookup", args=["k"], returns="builtins:int"
    )
    assert promised.status == "fails"
    assert promised.evidence.startswith(f"raised KeyError: 'k' (at calltarget/cache.py:{line}) in ")
    assert promised.evidence.endswith("; expected it to return a builtins:int")
    assert "Traceback" in promised.details
    returned = run_call_claim(
        target_dir, hub, call="calltarget.cache:nothing", raises=["KeyError"], within="2s"
    )
    assert returned.status == "fails"
    assert returned.evidence.startswith("returned builtins.NoneType None in ")
    assert returned.evidence.endswith("; expected it to raise KeyError")


def test_json_is_a_subset_of_the_result(target_dir: Path, hub: ProxyHub) -> None:
    held = run_call_claim(
        target_dir,
        hub,
        call="calltarget.cache:stats",
        kwargs={"limit": 2},
        json={"removed": 2, "nested": {"ok": True}},
    )
    assert held.status == "holds", held.evidence
    assert held.budget["json"] == {"removed": 2, "nested": {"ok": True}}
    wrong = run_call_claim(
        target_dir, hub, call="calltarget.cache:stats", json={"removed": 2, "prefix": "x"}
    )
    assert wrong.status == "fails"
    head, *why = wrong.evidence.splitlines()
    assert head.startswith("returned builtins.dict {'removed': 3, ")
    assert head.endswith('; expected json {"removed": 2, "prefix": "x"}')
    assert why == ["removed: expected 2, got 3", 'prefix: expected "x", got "k"']
    not_a_table = run_call_claim(target_dir, hub, call="calltarget.cache:nothing", json={"a": 1})
    assert not_a_table.status == "fails"
    assert not_a_table.evidence.splitlines()[1] == "the result: expected an object, got null"


def test_a_call_that_hangs_fails_with_where_it_is_stuck(target_dir: Path, hub: ProxyHub) -> None:
    started = time.monotonic()
    hung = run_call_claim(target_dir, hub, call="calltarget.cache:sleeps", within="500ms")
    assert time.monotonic() - started < 30  # watched about twice the budget, then killed
    assert hung.status == "fails"
    head, stuck = hung.evidence.splitlines()
    assert head.startswith("calltarget.cache:sleeps still running when watching stopped at ")
    assert head.endswith(" the 500 ms claimed")
    assert (
        stuck == f"stuck at calltarget/cache.py:{line_of(target_dir, 'cache', 'stuck')} in sleeps"
    )
    assert hung.measured["outcome"] == "still running" and hung.measured["seconds"] is None
    assert "stacks of every thread" in hung.details


def test_a_call_over_its_budget_fails_with_its_real_time(target_dir: Path, hub: ProxyHub) -> None:
    late = run_call_claim(
        target_dir,
        hub,
        call="calltarget.cache:naps",
        args=[0.8],
        returns="builtins:float",
        within="300ms",
    )
    assert late.status == "fails"
    assert late.evidence.startswith("took ")
    assert late.evidence.endswith(
        ", over the 300 ms claimed (+30 ms tolerance): returned builtins.float 0.8"
    )
    assert late.measured["seconds"] >= 0.8 and late.measured["result"] == "0.8"


def test_what_cannot_be_checked_is_an_error(target_dir: Path, hub: ProxyHub) -> None:
    no_class = run_call_claim(
        target_dir, hub, call="calltarget.cache:nothing", returns="calltarget.cache:Missing"
    )
    assert no_class.status == "error"
    assert no_class.evidence.startswith(
        "not checked: could not resolve returns calltarget.cache:Missing: "
        "calltarget.cache:Missing raised AttributeError: "
    ), no_class.evidence
    # a fault on a service this run does not have (none here)
    claim = CallClaim.model_validate(
        {"name": "c", "call": "calltarget.cache:nothing", "faults": {"redis": "hang"}}
    )
    assert claim.planned_faults() == {"redis": Fault("hang")}
    unknown = run_call_claim(
        target_dir,
        hub,
        services=("redis",),
        call="calltarget.cache:nothing",
        service="redis",
        fault="hang",
    )
    assert unknown.status == "error"
    assert unknown.evidence == (
        "could not check: redis is not among the run's services and dependencies"
    )


# -- several faults: the wording and the verdicts ----------------------------------------------


def test_each_fault_is_told_and_the_unmet_one_named_first() -> None:
    refused = Met(Fault("refuse"), "edge_tts", attempts=1, seen_by="hook")
    unmet = Met(Fault("hang"), "coqui_tts")
    assert met_lines([refused]) == ["1 connect refused"]
    assert met_lines([refused, unmet]) == [
        "the call never connected to coqui_tts: the hang was not exercised",
        "edge_tts: 1 connect refused",
    ]
    both = Verdict("timeout:x", "timeout", "holds", evidence="ended after 2.0 s")
    judge_met(both, [refused, Met(Fault("hang"), "coqui_tts", at_proxy=1)])
    assert both.status == "holds"
    assert both.evidence == (
        "ended after 2.0 s\nedge_tts: 1 connect refused\ncoqui_tts: 1 connection met the hang"
    )
    assert both.measured == {
        "connections_met": 2,
        "connections_met_edge_tts": 1,
        "connections_met_coqui_tts": 1,
    }
    skipped = Verdict("timeout:x", "timeout", "holds", evidence="ended after 1 ms")
    judge_met(skipped, [refused, unmet])
    assert skipped.status == "error"
    assert skipped.evidence.splitlines()[0] == (
        "the call never connected to coqui_tts: the hang was not exercised"
    )


def test_a_degradation_chain_that_skips_a_link_is_an_error() -> None:
    facts = ["degraded in 3 ms: get_engine returned app.tts:SystemTTS"]
    findings = _Findings(facts=list(facts))
    refused = Met(Fault("refuse"), "edge_tts", attempts=1, seen_by="hook")
    judge_degradation_met(findings, [refused, Met(Fault("hang"), "coqui_tts")])
    assert findings.status == "error"
    assert findings.problems == [
        "the call never connected to coqui_tts: the hang was not exercised",
        "edge_tts: 1 connect refused",
        *facts,
    ]
    assert findings.measured["connections_met_coqui_tts"] == 0


def test_figures_of_one_fault_stay_as_they_were() -> None:
    one = {"redis": {"connections_met": 1, "connect_attempts": 1}}
    assert figures_by_fault(one) == {"connections_met": 1, "connect_attempts": 1}
    two = {**one, "postgres": {"connections_met": 0}}
    assert figures_by_fault(two) == {
        "connections_met": 1,
        "connections_met_redis": 1,
        "connect_attempts_redis": 1,
        "connections_met_postgres": 0,
    }


def test_fault_windows_refuse_names_the_run_does_not_have() -> None:
    nothing = SimpleNamespace(proxies={}, services={})
    windows = FaultWindows(nothing, nothing, {"coqui_tts": Fault("hang")}, ("call",))  # type: ignore[arg-type]
    assert windows.missing == ["coqui_tts"] and windows.windows == []
    with windows:  # nothing to put in force, nothing to lift
        windows.put()
    assert windows.met([], []) == [] and windows.on_tick is None


def _http_claim(**more: Any) -> HttpClaim:
    return HttpClaim.model_validate({"name": "x", "request": "GET /chain", **more})


def test_http_several_faults_each_must_be_met() -> None:
    spec = _http_claim(faults={"redis": "refuse", "postgres": "hang"})
    verdict = Verdict("http:x", "http", "holds", evidence="GET /chain answered 200 {} in 2 s")
    _judge_met(
        verdict,
        spec,
        {"redis": HttpMet("refuse", attempts=1), "postgres": HttpMet("hang")},
        Answer(status=200),
    )
    assert verdict.status == "error"
    assert verdict.evidence.splitlines() == [
        "GET /chain never reached postgres while it hung: the fault was not exercised (no "
        "connection of the server met it at the proxy)",
        "the answer, not judged: GET /chain answered 200 {} in 2 s",
    ]
    assert verdict.measured == {
        "connections_met": 1,
        "connections_met_redis": 1,
        "connect_attempts_redis": 1,
        "connections_met_postgres": 0,
    }


def test_absent_headers_fail_with_the_value_that_is_there() -> None:
    spec = _http_claim(absent_headers=["Access-Control-Allow-Origin", "x-powered-by"])
    answer = Answer(
        sent=1,
        status=200,
        seconds=0.003,
        headers=httpx.Headers({"access-control-allow-origin": "https://evil.example"}),
        body=b"{}",
    )
    verdict = Verdict("http:x", "http", "holds")
    _judge(verdict, spec, answer, 10.25, "")
    assert verdict.status == "fails"
    assert verdict.evidence == (
        "GET /chain answered 200 {} in 3 ms; expected no header access-control-allow-origin\n"
        'header access-control-allow-origin: "https://evil.example" should not be there'
    )
    clean = Verdict("http:x", "http", "holds")
    _judge(clean, spec, Answer(sent=1, status=200, seconds=0.003, body=b"{}"), 10.25, "")
    assert clean.status == "holds", clean.evidence


# -- through `signoff run`, with real Redis and Postgres ---------------------------------------

CLAIMS = """
[target]
name = "calltarget"
pythonpath = ["."]
services = ["redis", "postgres"]

[target.server]
app = "calltarget.app:app"
ready = "/ping"

[[call]]
name = "the chain falls back when redis and postgres are down"
call = "calltarget.chain:get_value"
returns = "calltarget.chain:Fallback"
faults = { redis = "refuse", postgres = "hang" }
within = "6s"

[[call]]
name = "clear_expired never meets the hang"
call = "calltarget.cache:cache.clear_expired"
returns = "builtins:int"
service = "redis"
fault = "hang"
within = "2s"

[[call]]
name = "postgres serves when redis is refused"
call = "calltarget.chain:get_value"
returns = "calltarget.chain:FromPostgres"
faults = { redis = "refuse" }
within = "3s"

[[degradation]]
name = "edge link: postgres when redis is refused"
faults = { redis = "refuse" }
call = "calltarget.chain:get_value"
expect = "calltarget.chain:FromPostgres"
within = "3s"

[[degradation]]
name = "last link: the fallback when every engine is down"
faults = { redis = "refuse", postgres = "hang" }
call = "calltarget.chain:get_value"
expect = "calltarget.chain:Fallback"
within = "6s"
recovers = "5s"

[[degradation]]
name = "a chain that skips postgres"
faults = { redis = "refuse", postgres = "hang" }
call = "calltarget.chain:get_value_skipping_postgres"
expect = "calltarget.chain:Fallback"
within = "6s"

[[timeouts]]
name = "the chain gives up on both in time"
call = "calltarget.chain:get_value"
faults = { redis = "refuse", postgres = "hang" }
within = "6s"
warmup = true

[[http]]
name = "the chain answers with both down"
request = "GET /chain"
faults = { redis = "refuse", postgres = "hang" }
json = { source = "Fallback" }
within = "6s"

[[http]]
name = "the chain that skips postgres"
request = "GET /chain-skip"
faults = { redis = "refuse", postgres = "hang" }
json = { source = "Fallback" }
within = "6s"

[[http]]
name = "a disallowed origin gets no cors headers"
request = "GET /cors"
headers = { Origin = "https://evil.example" }
absent_headers = ["access-control-allow-origin", "access-control-allow-credentials"]

[[http]]
name = "an echoing origin check"
request = "GET /cors-any"
headers = { Origin = "https://evil.example" }
absent_headers = ["access-control-allow-origin"]
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The claims above, run once with embedded Redis and Postgres."""
    folder = write_target(tmp_path_factory.mktemp("calltarget"))
    (folder / "signoff.toml").write_text(CLAIMS)
    report = folder / "report"
    run = signoff(
        "run",
        str(folder / "signoff.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(report),
        timeout=300,
    )
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stdout + run.stderr
    return claims(report)


def _status(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {cid: c["status"] for cid, c in found.items()}


@pytest.mark.slow
def test_every_claim_of_the_real_run_gets_its_verdict(real_run: dict[str, dict[str, Any]]) -> None:
    assert _status(real_run) == {
        "call:the chain falls back when redis and postgres are down": "holds",
        "call:clear_expired never meets the hang": "error",
        "call:postgres serves when redis is refused": "holds",
        "degradation:edge link: postgres when redis is refused": "holds",
        "degradation:last link: the fallback when every engine is down": "holds",
        "degradation:a chain that skips postgres": "error",
        "timeout:the chain gives up on both in time": "holds",
        "http:the chain answers with both down": "holds",
        "http:the chain that skips postgres": "error",
        "http:a disallowed origin gets no cors headers": "holds",
        "http:an echoing origin check": "fails",
    }, json.dumps(real_run, indent=1)


@pytest.mark.slow
def test_a_call_with_faults_meets_each_or_proves_nothing(
    real_run: dict[str, dict[str, Any]],
) -> None:
    both = real_run["call:the chain falls back when redis and postgres are down"]
    assert both["budget"]["fault"] == "redis refuse, postgres hang"
    assert both["evidence"].startswith("returned calltarget.chain.Fallback in ")
    assert both["measured"]["result"] == "<calltarget.chain.Fallback>"
    assert both["evidence"].splitlines()[1:] == [
        "redis: 1 connect refused",
        "postgres: 1 connection met the hang",
    ]
    assert both["measured"]["connections_met_redis"] == 1
    assert both["measured"]["connections_met_postgres"] == 1
    # postgres's own connect timeout (2 s) is in the call's time
    assert both["measured"]["seconds"] >= 1.9
    untried = real_run["call:clear_expired never meets the hang"]
    assert untried["evidence"].splitlines()[0] == (
        "the call never connected to redis: the hang was not exercised"
    )
    assert untried["measured"]["connections_met"] == 0


@pytest.mark.slow
def test_a_chain_that_skips_a_link_is_caught(real_run: dict[str, dict[str, Any]]) -> None:
    good = real_run["degradation:last link: the fallback when every engine is down"]
    assert good["evidence"].splitlines()[1:3] == [
        "redis: 1 connect refused",
        "postgres: 1 connection met the hang",
    ], good["evidence"]
    skipped = real_run["degradation:a chain that skips postgres"]
    assert skipped["evidence"].splitlines()[:2] == [
        "the call never connected to postgres: the hang was not exercised",
        "redis: 1 connect refused",
    ], skipped["evidence"]
    assert skipped["measured"]["connections_met_postgres"] == 0
    first = real_run["degradation:edge link: postgres when redis is refused"]
    assert first["evidence"].splitlines()[1] == "1 connect refused"
    # both faults lifted at the barrier: the same process gets the real thing again
    assert "recovered " in good["evidence"], good["evidence"]
    assert (
        "after redis and postgres came back: call 1 returned calltarget.chain:FromRedis"
        in (good["evidence"])
    )
    # both faults put in force after the warmup, and both met
    timeout = real_run["timeout:the chain gives up on both in time"]
    assert timeout["measured"]["warmup"] == "returned"
    assert timeout["measured"]["connections_met"] == 2
    assert timeout["evidence"].splitlines()[1:] == [
        "redis: 1 connect refused",
        "postgres: 1 connection met the hang",
        "warmup without the fault: returned calltarget.chain.FromRedis in "
        + timeout["evidence"].rsplit(" in ", 1)[1],
    ]
    served = real_run["http:the chain answers with both down"]
    assert served["evidence"].endswith(
        "(redis refusing connections; 1 connect attempt refused; postgres hung; "
        "1 connection met the hang)"
    ), served["evidence"]
    served_skip = real_run["http:the chain that skips postgres"]
    assert served_skip["evidence"].startswith(
        "GET /chain-skip never reached postgres while it hung: the fault was not exercised"
    ), served_skip["evidence"]


@pytest.mark.slow
def test_absent_headers_against_a_served_app(real_run: dict[str, dict[str, Any]]) -> None:
    echoing = real_run["http:an echoing origin check"]
    assert echoing["evidence"].splitlines() == [
        'GET /cors-any answered 200 {"ok": true} in '
        + echoing["evidence"].split(" in ", 1)[1].splitlines()[0],
        'header access-control-allow-origin: "https://evil.example" should not be there',
    ]
    assert (
        echoing["evidence"]
        .splitlines()[0]
        .endswith("; expected no header access-control-allow-origin")
    )
    assert echoing["budget"]["absent_headers"] == "access-control-allow-origin"
