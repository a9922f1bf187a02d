"""The load generator against wrk: signoff's [[load]] path (signoff.kinds.load: Locust headless,
its exact-times plugin, the judging) with 50 users sending `GET /fast` without waiting, and
`wrk -t2 -c50` for as long, against the same served target (tests/data/load_target's plain ASGI
app under uvicorn, one process, started by signoff.server as a run starts it). The figure is
requests per second; the timing is each whole claim or wrk run. On this 2-core machine the
generator and the server share the cores, so the ratio is of the whole setup, not of Locust."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from signoff import checks
from signoff.claims import ClaimRef
from signoff.context import RunContext
from signoff.faults.proxy import ProxyHub
from signoff.server import TargetServer, stop_target_server, target_server

from .support import HERE, ROOT, claims_context

SECONDS = 8
CONNECTIONS = 50
TARGET = ROOT / "tests" / "data" / "load_target"
CLAIMS = """
[target]
name = "bench-load"
pythonpath = ["{target}"]

[target.server]
app = "loadapp.app:app"
ready = "/health"
{loads}"""
LOAD = """
[[load]]
name = "fast p{processes}"
locustfile = "{locustfile}"
users = {users}
duration = "{seconds}s"
processes = {processes}
"""
PROCESSES = [1, 2]


@dataclass
class Served:
    ctx: RunContext
    claims: dict[int, ClaimRef]  # by Locust processes
    server: TargetServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, hub: ProxyHub) -> Iterator[Served]:
    loads = "".join(
        LOAD.format(
            processes=n, locustfile=HERE / "locust_fast.py", users=CONNECTIONS, seconds=SECONDS
        )
        for n in PROCESSES
    )
    folder = tmp_path_factory.mktemp("load")
    ctx, refs = claims_context(folder, CLAIMS.format(target=TARGET, loads=loads), hub)
    try:
        server = target_server(ctx)
        yield Served(ctx, dict(zip(PROCESSES, refs, strict=True)), server)
    finally:
        stop_target_server(ctx)


@pytest.mark.parametrize("processes", PROCESSES, ids=lambda n: f"processes={n}")
def test_signoff_load(benchmark: BenchmarkFixture, served: Served, processes: int) -> None:
    ref = served.claims[processes]
    verdict = benchmark.pedantic(checks.check, args=(served.ctx, ref), rounds=1)
    # holds, or error when Locust saturated its core (the figure is then the generator's own
    # limit, which is what this measures); a claim that did not run has no rps
    assert "rps" in verdict.measured, verdict.evidence
    gen = verdict.measured["generator_cpu"]
    benchmark.extra_info.update(
        rps=verdict.measured["rps"],
        requests=verdict.measured["requests"],
        failures=verdict.measured["failures"],
        status=verdict.status,
        generator_peak_percent=gen["peak_percent"],
        generator_saturated_share=gen["saturated_share"],
    )


def test_wrk(benchmark: BenchmarkFixture, served: Served) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed (apt-get install -y wrk; tox -e bench installs it)")
    argv = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", served.server.url("/fast")]

    def run() -> str:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SECONDS + 30, check=True
        )
        return done.stdout

    out = benchmark.pedantic(run, rounds=1)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    assert rps is not None, out
    errors = re.search(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", out, re.MULTILINE)
    benchmark.extra_info.update(
        rps=float(rps.group(1)), errors=errors.group(1) if errors else None, argv=argv[1:]
    )
