"""Load benchmarks (not run in CI; needs `wrk`, a Debian package):

1. Generator throughput: `signoff load` (Locust, processes = 1 and 2, 50 users, no wait) against
   the load target's `GET /fast`, next to `wrk -t2 -c50` on the same endpoint served the same way
   (uvicorn, one process), in one session. Prints requests/s and the ratio.
2. Percentile accuracy: signoff's p95 against a server whose delay is known (uniform 101-105 ms:
   p95 104.8 ms), next to Locust's own (bucketed) p95.

    .venv/bin/python benchmarks/load_bench.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from signoff import processes
from signoff.services.base import free_port

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "data" / "load_target"

FLOOD = """
from locust import FastHttpUser, task


class Fast(FastHttpUser):
    @task
    def fast(self) -> None:
        self.client.get("/fast")
"""

CLAIMS = """
[target]
name = "bench"
pythonpath = ["{target}"]

[target.server]
app = "loadapp.app:app"
ready = "/health"

[[load]]
name = "fast p1"
locustfile = "flood.py"
users = 50
duration = "{seconds}s"
processes = 1

[[load]]
name = "fast p2"
locustfile = "flood.py"
users = 50
duration = "{seconds}s"
processes = 2

[[load]]
name = "near"
locustfile = "{target}/near.py"
users = 10
duration = "{seconds}s"
latency = {{ "/near" = {{ p95 = "100ms" }} }}
"""


def signoff_figures(folder: Path, seconds: int) -> dict[str, dict[str, object]]:
    (folder / "flood.py").write_text(FLOOD)
    claims = folder / "bench.toml"
    claims.write_text(CLAIMS.format(target=TARGET, seconds=seconds))
    report = folder / "report"
    subprocess.run(
        [sys.executable, "-m", "signoff", "load", str(claims), "--report-dir", str(report)],
        check=False,
        timeout=600,
        capture_output=True,
    )
    doc = json.loads((report / "signoff.json").read_text())
    found: dict[str, dict[str, object]] = {}
    for claim in doc["claims"]:
        name = claim["id"].split(":", 1)[1]
        found[name] = {"status": claim["status"], **claim["measured"]}
        stats = report / "load" / name.replace(" ", "-") / "locust_stats.csv"
        if stats.is_file():
            with open(stats, newline="") as rows:
                for row in csv.DictReader(rows):
                    if row["Name"] == "Aggregated":
                        found[name]["locust_p95_ms"] = float(row["95%"])
    return found


def wrk_rps(seconds: int) -> float:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "loadapp.app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    server = processes.spawn(argv, role="bench-server", cwd=str(TARGET))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = subprocess.run(
            ["wrk", "-t2", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}/fast"],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        processes.stop(server)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        found = signoff_figures(Path(tmp), args.seconds)
    wrk = wrk_rps(args.seconds)
    for name in ("fast p1", "fast p2"):
        fig = found[name]
        rps = float(str(fig["rps"]))
        cpu = fig["generator_cpu"]
        print(
            f"{name}: signoff {rps:.0f} req/s ({fig['status']}; generator {cpu}), "
            f"wrk {wrk:.0f} req/s, ratio {rps / wrk:.2f}"
        )
    near = found["near"]
    lat = near["latency_s"]
    assert isinstance(lat, dict)
    p95 = lat["/near"]["p95"] * 1000
    low = lat["/near"]["p50"] * 1000
    print(
        f"near: server delay uniform 101-105 ms (p95 104.8 ms); signoff p95 {p95:.1f} ms "
        f"(error {p95 - 104.8:+.1f} ms), p50 {low:.1f} ms; Locust's own p95 "
        f"{near.get('locust_p95_ms')} ms"
    )
    processes.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
