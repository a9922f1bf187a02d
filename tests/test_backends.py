"""Every backend for real: the same claims file gives the same verdicts on docker, system,
embedded and url, the url backend on the machine's standing Redis and PostgreSQL (faulted
only through each claim's proxy, never directly)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from signoff.errors import ServiceError
from signoff.services import BACKENDS, start_services, stop_services
from signoff.services.images import Built
from tests.backends import STANDING_POSTGRES, STANDING_REDIS, docker_images, standing_urls
from tests.runs import TINY, claims, signoff

__all__ = ["docker_images"]  # the session fixture, imported to be found here

KILL_CLAIM = "timeout:redis ping fails fast when redis dies"
EMULATED = (
    "note: redis cannot be killed here (not the harness's own process): the proxy emulated "
    "the kill; the server itself kept running"
)


@pytest.mark.slow
def test_url_backend_on_the_standing_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, url in standing_urls().items():
        monkeypatch.setenv(name, url)
    services = start_services(["redis", "postgres"], backend="url", timeout=20)
    try:
        assert services["redis"].url == STANDING_REDIS
        assert services["postgres"].url == STANDING_POSTGRES
        assert (services["redis"].port, services["postgres"].port) == (6379, 5432)
        for service in services.values():
            assert service.backend == "url" and not service.can_kill
            assert service.describe() == f"url {service.version}"
            for fault in (service.kill, service.restart, service.freeze):
                with pytest.raises(ServiceError, match=r"not started by signoff \(url backend\)"):
                    fault()
            service.ping()
    finally:
        stop_services(services)
    for service in services.values():
        service.ping()  # not ours: stopping leaves them running


def _tiny(backend: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """tiny's service claims (its timeouts: its import claims start no service) on one
    backend; the report's claims, its run.json, the exit status and the output."""
    report = folder / backend
    run = signoff(
        "run", str(TINY / "signoff.toml"), "--services", backend, "--only", "timeouts",
        "--report-dir", str(report), env=env if backend == "url" else {}, timeout=180,
    )  # fmt: skip
    info = json.loads((report / "run.json").read_text()) if (report / "run.json").exists() else {}
    found = claims(report) if (report / "signoff.json").exists() else {}
    return {"code": run.returncode, "out": run.stdout + run.stderr, "run": info, "claims": found}


@pytest.mark.slow
@pytest.mark.docker
def test_tiny_gives_the_same_verdicts_on_every_backend(
    tmp_path: Path, docker_images: list[Built]
) -> None:
    env = standing_urls()
    with ThreadPoolExecutor(2) as pool:  # two runs at a time: 2 cores, claims that mostly wait
        runs = dict(
            zip(BACKENDS, pool.map(lambda b: _tiny(b, tmp_path, env), BACKENDS), strict=True)
        )
    for backend, run in runs.items():
        assert run["code"] == 0, f"{backend}: {run['out'][-3000:]}"
        assert set(run["run"]["services"]) == {"redis", "postgres"}
        for described in run["run"]["services"].values():
            assert described.startswith(f"{backend} "), (backend, run["run"]["services"])
    verdicts = {b: {c: v["status"] for c, v in r["claims"].items()} for b, r in runs.items()}
    assert len(verdicts["embedded"]) == 11
    assert set(verdicts["embedded"].values()) == {"holds"}
    for backend in BACKENDS:
        assert verdicts[backend] == verdicts["embedded"], backend
    # the one difference: signoff does not own the url backend's Redis, so the proxy stands in
    # for the kill (refuses new connections, resets open ones) and the evidence says so
    for backend, run in runs.items():
        evidence = run["claims"][KILL_CLAIM]["evidence"]
        assert (EMULATED in evidence) == (backend == "url"), (backend, evidence)
        others = [c["evidence"] for i, c in run["claims"].items() if i != KILL_CLAIM]
        assert not any("emulated" in e for e in others), backend
