"""signoff installed from a wheel, as a project that is not this checkout uses it.

The wheel is built from a copy of the checkout and installed, without its dependencies, into a
new virtual environment outside the checkout; the dependencies come from this environment's
site-packages through a .pth file (no network, no package index). In a copy of targets/tiny:
`signoff run` signs it off, and a test file of the project's own uses the plugin's fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "signoff", "suites", "fixtures", "loadtests")
PYTEST = ("-m", "pytest", "-p", "no:cacheprovider", "-q")  # no .pytest_cache in the project
STEP_TIMEOUT = 180  # seconds for any one step (a build, an install, a sign-off)

USER_TEST = """
import pytest
import redis


def test_a_hung_redis_times_out_in_the_block_only(signoff_redis_url, signoff_fault):
    with signoff_fault("redis", "hang") as url:
        assert url != signoff_redis_url
        client = redis.Redis.from_url(url, socket_timeout=0.5)
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
    assert redis.Redis.from_url(signoff_redis_url, socket_timeout=0.5).ping()
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )


def _ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A virtual environment with signoff's wheel in it; its bin folder and an environment."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    for name in SOURCES:
        path = CHECKOUT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    wheels = root / "wheels"
    _ok(_run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
             source, env))  # fmt: skip
    venv = root / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env))
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root, env
    )
    _ok(purelib)
    (wheel,) = wheels.glob("signoff-*.whl")
    # --ignore-installed: pip must not take this environment's (editable) signoff for the wheel
    install = [*pip, "--python", str(python), "install", "--no-deps", "--ignore-installed"]
    _ok(_run([*install, str(wheel)], root, env))
    # the dependencies: this environment's packages, after the venv's own (signoff's wheel),
    # added only now so the install above sees an empty environment
    deps = Path(sysconfig.get_path("purelib"))
    (Path(purelib.stdout.strip()) / "signoff-test-deps.pth").write_text(f"{deps}\n")
    return venv / "bin", env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of targets/tiny: a project with its code and signoff.toml, no signoff in it."""
    shutil.copytree(
        CHECKOUT / "targets" / "tiny",
        tmp_path / "tiny-project",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path / "tiny-project"


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_the_wheel_carries_the_suites_and_runs_outside_the_checkout(
    installed: tuple[Path, dict[str, str]],
) -> None:
    bin_dir, env = installed
    where = _run(
        [str(bin_dir / "python"), "-c", "from signoff import bundled; print(bundled.suites())"],
        bin_dir,
        env,
    )
    _ok(where)
    suites = Path(where.stdout.strip())
    assert CHECKOUT not in suites.parents, f"the suites come from the checkout: {suites}"
    assert bin_dir.parent in suites.parents, f"the suites are not the venv's wheel's: {suites}"
    assert (suites / "test_timeouts.py").is_file()


def test_signoff_run_signs_off_a_project_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], project: Path
) -> None:
    bin_dir, env = installed
    before = _files(project)
    done = _run(
        [str(bin_dir / "signoff"), "run", "signoff.toml", "--services", "embedded"], project, env
    )
    _ok(done)
    (report,) = (project / "reports").iterdir()
    verdicts = [json.loads(line)["status"] for line in (report / "ledger.jsonl").open()]
    assert verdicts == ["holds"] * 18, done.stdout
    left = {f for f in _files(project) - before if not f.startswith("reports")}
    assert not left, f"the run left files in the project: {sorted(left)}"


def test_a_projects_own_test_hangs_redis_for_one_block(
    installed: tuple[Path, dict[str, str]], project: Path
) -> None:
    bin_dir, env = installed
    (project / "test_cache.py").write_text(USER_TEST)
    before = _files(project)
    done = _run(
        [str(bin_dir / "python"), *PYTEST, "--signoff-services", "embedded", "test_cache.py"],
        project,
        env,
    )  # fmt: skip
    _ok(done)
    assert "1 passed" in done.stdout
    assert _files(project) == before


def test_plain_pytest_in_a_project_runs_the_claims_with_its_own_tests(
    installed: tuple[Path, dict[str, str]], project: Path
) -> None:
    bin_dir, env = installed
    (project / "test_cache.py").write_text(USER_TEST)
    done = _run(
        [str(bin_dir / "python"), *PYTEST, "--signoff-claims", "signoff.toml",
         "--signoff-only", "import", "--signoff-services", "embedded",
         "--signoff-report-dir", "reports/imports"],
        project,
        env,
    )  # fmt: skip
    _ok(done)
    assert "8 passed" in done.stdout  # 7 import claims of the bundled suites, and test_cache.py
    verdicts = [
        json.loads(line)["status"] for line in (project / "reports/imports/ledger.jsonl").open()
    ]
    assert verdicts == ["holds"] * 7
