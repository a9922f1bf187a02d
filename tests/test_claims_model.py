"""The claims model: the full example of CLAIMS.md loads, typed, with stable claim ids."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from signoff.claims import (
    CLAIM_KINDS,
    ClaimRef,
    ClaimsFile,
    HttpClaim,
    Imports,
    LoadClaim,
    TimeoutClaim,
    Webhooks,
    is_secret_key,
    load_claims,
    redact,
)
from signoff.errors import ClaimsError
from signoff.faults import Fault

GOOD = Path(__file__).parent / "data" / "good"
FULL = GOOD / "full.toml"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def full() -> ClaimsFile:
    return load_claims(FULL)


def _write(folder: Path, text: str, name: str = "signoff.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_target(full: ClaimsFile) -> None:
    assert full.path == FULL.resolve()
    target = full.target
    assert target.name == "archivist"
    assert target.python == GOOD / ".venv" / "bin" / "python"
    assert target.pythonpath == [GOOD, GOOD / "src"]
    assert target.env == {"APP_ENV": "test", "API_TOKEN": "tok_do_not_show_42"}
    assert target.services == ["redis", "postgres"]
    assert target.background == ["celery -A core.tasks worker --pool=solo --loglevel=warning"]
    assert target.server is not None
    assert (target.server.app, target.server.command) == ("core.web:app", None)
    assert target.server.ready == "/health"
    assert target.server.startup == 30.0


def test_imports(full: ClaimsFile) -> None:
    imports = full.imports
    assert imports is not None
    assert imports.timeout == 10.0
    assert imports.repeat == 5
    assert imports.forbid == ["network", "thread", "subprocess", "warning"]
    assert imports.discover == ["core"]
    assert imports.default_budget == pytest.approx(0.5)
    assert imports.max_spread == pytest.approx(0.1)
    assert (imports.with_services, imports.services_down) == (True, False)
    assert imports.budgets == pytest.approx(
        {"core": 0.05, "core.admin_ui": 0.05, "core.tasks": 0.05}
    )


def test_timeouts_and_faults(full: ClaimsFile) -> None:
    hung, slow, dead = full.timeouts
    assert hung.call == "core.health:ping_redis"
    assert (hung.service, hung.fault, hung.within) == ("redis", Fault("hang"), 5.0)
    assert hung.raises == ["core.exceptions:ConnectionTimeoutError"]
    assert slow.call == "core.db:Repository.count_documents"
    assert slow.fault == Fault("latency", 2.0)
    assert slow.within == pytest.approx(1.5)
    assert slow.raises == ["core.exceptions:ConnectionTimeoutError", "TimeoutError"]
    assert (dead.service, dead.fault, dead.within) == (None, None, 3.0)
    assert dead.env == {"TRANSCRIBE_URL": "http://127.0.0.1:9"}


def test_degradation(full: ClaimsFile) -> None:
    (claim,) = full.degradation
    assert (claim.service, claim.fault) == ("redis", Fault("kill"))
    assert claim.expect == "core.services:MockTranscriptionService"
    assert claim.then == "transcribe_file"
    assert claim.raises == ["core.exceptions:ServiceUnavailableError"]
    assert (claim.within, claim.recovers) == (2.0, 10.0)


def test_http(full: ClaimsFile) -> None:
    health, cors, login = full.http
    assert health.fault is not None
    assert (health.fault.service, health.fault.kind) == ("redis", Fault("kill"))
    assert (health.method, health.path) == ("GET", "/health")
    assert health.json_ == {"status": "degraded"}
    assert health.status == (503,)
    assert health.within == 1.0
    assert cors.status == (200, 204)
    assert cors.headers["Origin"] == "https://app.example.com"
    assert cors.response_headers == {"access-control-allow-origin": "https://app.example.com"}
    assert cors.fault is None
    assert (login.method, login.repeat, login.status) == ("POST", 101, (429,))
    assert login.body == {"user": "alice", "password": "wrong"}


def test_cron_and_webhooks(full: ClaimsFile) -> None:
    cron = full.cron
    assert cron is not None
    assert cron.call == "core.scheduler:occurrences"
    assert (cron.max_results, cron.examples, cron.oracle, cron.invalid) == (
        1000,
        300,
        "croniter",
        "ValueError",
    )
    assert cron.within == pytest.approx(0.05)
    assert cron.horizon == 365 * 86400
    hooks = full.webhooks
    assert hooks is not None
    assert isinstance(hooks.secret, SecretStr)
    assert hooks.secret.get_secret_value() == WEBHOOK_SECRET
    assert (hooks.scheme, hooks.tolerance, hooks.header) == ("standard", 300.0, None)
    assert hooks.url_validator == "core.webhooks:validate_url"


def test_load_and_websocket(full: ClaimsFile) -> None:
    reports, bundled = full.load
    assert reports.locustfile == GOOD / "loadtests" / "async_endpoints.py"
    assert (reports.users, reports.spawn_rate, reports.duration) == (200, 50.0, 30.0)
    assert (reports.processes, reports.failure_ratio, reports.min_rps) == (1, 0.01, 100.0)
    assert reports.flow is not None
    assert reports.flow.start == "POST /reports/pdf"
    assert reports.flow.body == {"report": "monthly"}
    assert (reports.flow.id, reports.flow.status) == ("task_id", "GET /tasks/{id}")
    assert reports.flow.done == {"status": "complete"}
    assert reports.flow.poll == pytest.approx(0.2)
    assert reports.latency["POST /reports/pdf"].bounds() == pytest.approx(
        {"p50": 0.05, "p95": 0.1, "p99": 0.25}
    )
    assert reports.latency["job"].bounds() == {"p95": 5.0}
    assert reports.memory is not None
    assert (reports.memory.max_rss, reports.memory.max_growth) == (512_000_000, 50_000_000)
    # defaults: spawn_rate = users, no failures allowed, one process, no locustfile
    assert (bundled.locustfile, bundled.spawn_rate, bundled.failure_ratio) == (None, 10.0, 0.0)
    assert (bundled.processes, bundled.min_rps, bundled.memory, bundled.latency) == (
        1,
        None,
        None,
        {},
    )
    (ws,) = full.websocket
    assert (ws.path, ws.heartbeat, ws.idle_close) == ("/ws", 20.0, 60.0)


def test_claim_ids_in_file_order(full: ClaimsFile) -> None:
    refs = full.claims()
    assert [r.id for r in refs] == [
        "import:core",
        "import:core.admin_ui",
        "import:core.tasks",
        "timeout:redis ping gives up on a hung server",
        "timeout:database query gives up on a slow server",
        "timeout:transcription API gives up on a dead address",
        "degradation:transcription degrades to a mock",
        "http:health says degraded when redis is down",
        "http:CORS allows the app's origin",
        "http:login is rate limited",
        "cron:time",
        "cron:count",
        "cron:correct",
        "cron:invalid",
        "webhook:vectors",
        "webhook:forgery",
        "webhook:timestamps",
        "webhook:rotation",
        "webhook:constant-time",
        "webhook:url-validator",
        "load:report requests return at once under 200 users",
        "load:health under 10 users, bundled flow",
        "websocket:heartbeat every 20 s, idle clients dropped after 60 s",
    ]
    assert len({r.id for r in refs}) == len(refs)
    for ref in refs:
        assert ref.kind == ref.id.split(":", 1)[0]
        assert ref.kind in CLAIM_KINDS
    by_id = {r.id: r for r in refs}
    assert by_id["import:core"].section_key == "imports.budgets.core"
    assert by_id["import:core.tasks"].section_key == 'imports.budgets."core.tasks"'
    assert isinstance(by_id["import:core"].spec, Imports)
    ref = by_id["timeout:database query gives up on a slow server"]
    assert ref.section_key == "timeouts[1]"
    assert ref.spec is full.timeouts[1]
    assert ref.name == "database query gives up on a slow server"
    assert by_id["cron:count"].section_key == "cron"
    assert by_id["webhook:forgery"].spec is full.webhooks
    assert by_id["load:health under 10 users, bundled flow"].section_key == "load[1]"
    assert isinstance(by_id["load:health under 10 users, bundled flow"].spec, LoadClaim)


def test_sections_follow_the_files_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[target]\nname = "t"\nservices = ["redis"]\n'
        '[[timeouts]]\nname = "b"\ncall = "a:b"\nservice = "redis"\nfault = "hang"\nwithin = 1\n'
        '[imports.budgets]\n"zeta" = "1s"\n"alpha" = "1s"\n'
        '[[timeouts]]\nname = "a"\ncall = "a:b"\nservice = "redis"\nfault = "hang"\nwithin = 1\n',
    )
    assert [r.id for r in load_claims(path).claims()] == [
        "timeout:b",
        "timeout:a",
        "import:zeta",
        "import:alpha",
    ]


@pytest.mark.parametrize(
    ("scheme", "extra", "subs"),
    [
        ("standard", "", ["vectors", "forgery", "timestamps", "rotation", "constant-time"]),
        (
            "stripe",
            'url_validator = "a:v"\n',
            ["vectors", "forgery", "timestamps", "rotation", "constant-time", "url-validator"],
        ),
        ("github", "", ["vectors", "forgery", "constant-time"]),
        ("hmac-sha256", 'header = "X-Signature"\n', ["vectors", "forgery", "constant-time"]),
    ],
)
def test_webhook_subclaims_follow_the_scheme(
    tmp_path: Path, scheme: str, extra: str, subs: list[str]
) -> None:
    path = _write(
        tmp_path,
        f'[target]\nname = "t"\n[webhooks]\nscheme = "{scheme}"\nverify = "a:b"\n'
        f'secret = "s3cr3t-value"\n{extra}',
    )
    assert [r.id for r in load_claims(path).claims()] == [f"webhook:{s}" for s in subs]


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[target]\nname = "t"\n[imports.budgets]\ncore = "43ms"\n')
    claims = load_claims(path)
    assert claims.target.python == Path(sys.executable)
    assert claims.target.pythonpath == [tmp_path]
    assert (claims.target.env, claims.target.services, claims.target.server) == ({}, [], None)
    imports = claims.imports
    assert imports is not None
    assert (imports.timeout, imports.repeat, imports.forbid, imports.discover) == (10.0, 5, [], [])
    assert (imports.default_budget, imports.max_spread) == (None, None)
    assert imports.budgets == {"core": pytest.approx(0.043)}
    assert (claims.timeouts, claims.http, claims.load, claims.websocket) == ([], [], [], [])
    assert (claims.cron, claims.webhooks) == (None, None)
    assert [r.id for r in claims.claims()] == ["import:core"]


def test_relative_paths_resolve_against_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "ci"
    folder.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _write(
        folder,
        '[target]\nname = "t"\npython = "../.venv/bin/python"\n'
        'pythonpath = [".", "../src", "/opt/lib", "~/lib"]\n'
        '[target.server]\ncommand = "serve --port {port}"\n'
        '[[load]]\nname = "l"\nusers = 1\nduration = "1s"\nlocustfile = "load/flow.py"\n',
    )
    monkeypatch.chdir(elsewhere)
    claims = load_claims(os.path.relpath(folder / "signoff.toml"))
    assert claims.path == folder / "signoff.toml"
    assert claims.target.python == tmp_path / "project" / ".venv" / "bin" / "python"
    assert claims.target.pythonpath == [
        folder,
        tmp_path / "project" / "src",
        Path("/opt/lib"),
        Path.home() / "lib",
    ]
    assert claims.load[0].locustfile == folder / "load" / "flow.py"


def test_bare_interpreter_name_is_looked_up_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpreter = Path(sys.executable)
    monkeypatch.setenv("PATH", str(interpreter.parent))
    path = _write(tmp_path, f'[target]\nname = "t"\npython = "{interpreter.name}"\n')
    assert load_claims(path).target.python == interpreter.parent / interpreter.name


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250us", 250e-6),
        ("50ms", 0.05),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("365d", 365 * 86400.0),
        ("1.5", None),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_durations(tmp_path: Path, text: object, seconds: float | None) -> None:
    value = f'"{text}"' if isinstance(text, str) else str(text)
    path = _write(tmp_path, f'[target]\nname = "t"\n[imports.budgets]\ncore = {value}\n')
    if seconds is None:
        with pytest.raises(ClaimsError):
            load_claims(path)
        return
    imports = load_claims(path).imports
    assert imports is not None
    assert imports.budgets["core"] == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"), [('"64KiB"', 65536), ('"512MB"', 512_000_000), ("1024", 1024), ('"0B"', 0)]
)
def test_sizes(tmp_path: Path, text: str, size: int) -> None:
    path = _write(
        tmp_path,
        '[target]\nname = "t"\n[target.server]\napp = "a:app"\n'
        '[[load]]\nname = "l"\nusers = 1\nduration = "1s"\nlocustfile = "f.py"\n'
        f"[load.memory]\nmax_growth = {text}\n",
    )
    memory = load_claims(path).load[0].memory
    assert memory is not None and memory.max_growth == size


@pytest.mark.parametrize(
    ("spelling", "fault"),
    [
        ("hang", Fault("hang")),
        ("blackhole", Fault("blackhole")),
        ("refuse", Fault("refuse")),
        ("reset", Fault("reset")),
        ("kill", Fault("kill")),
        ("latency:2s", Fault("latency", 2.0)),
        ("slow:64B/s", Fault("slow", 64.0)),
    ],
)
def test_faults(tmp_path: Path, spelling: str, fault: Fault) -> None:
    path = _write(
        tmp_path,
        '[target]\nname = "t"\nservices = ["postgres"]\n'
        f'[[timeouts]]\nname = "x"\ncall = "a:b"\nservice = "postgres"\nfault = "{spelling}"\n'
        'within = "1s"\n',
    )
    assert load_claims(path).timeouts[0].fault == fault


def test_secrets_never_in_repr_or_dumps(full: ClaimsFile) -> None:
    for text in (
        repr(full),
        str(full),
        repr(full.webhooks),
        repr(full.target),
        full.model_dump_json(),
        repr(full.claims()),
    ):
        assert WEBHOOK_SECRET not in text
        assert "tok_do_not_show_42" not in text  # target.env API_TOKEN
    assert "APP_ENV='test'" not in repr(full.target)  # env is shown...
    assert "'APP_ENV': 'test'" in repr(full.target)  # ...except its secrets
    assert "'password': 'wrong'" not in repr(full.http[2])  # http body, key "password"
    assert full.target.env["API_TOKEN"] == "tok_do_not_show_42"  # the value itself is intact
    assert full.model_dump()["target"]["env"]["API_TOKEN"] == "tok_do_not_show_42"
    assert full.model_dump(mode="json")["target"]["env"]["API_TOKEN"] == "**********"


def test_secret_key_names() -> None:
    for name in ("secret", "API_TOKEN", "DB_PASSWORD", "passwd", "X-Api-Key", "Authorization"):
        assert is_secret_key(name), name
    for name in ("name", "APP_ENV", "timeout", "REDIS_URL", "Origin"):
        assert not is_secret_key(name), name
    assert redact({"A": "1", "GITHUB_TOKEN": "x", "n": [{"password": "p"}]}) == {
        "A": "1",
        "GITHUB_TOKEN": "**********",
        "n": [{"password": "**********"}],
    }


def test_models_are_frozen(full: ClaimsFile) -> None:
    with pytest.raises(ValidationError):
        full.timeouts[0].within = 99.0
    with pytest.raises(ValidationError):
        full.target.name = "other"


def test_built_without_a_file_the_same_rules_hold(tmp_path: Path) -> None:
    data = {
        "path": str(tmp_path / "x.toml"),
        "target": {"name": "t", "services": ["redis"], "pythonpath": ["lib"]},
        "timeouts": [
            {"name": "a", "call": "m:f", "service": "redis", "fault": "hang", "within": "1s"},
            {"name": "a", "call": "m:f", "service": "postgres", "fault": "hang", "within": 1},
        ],
    }
    with pytest.raises(ValidationError) as info:
        ClaimsFile.model_validate(data, context={"base_dir": tmp_path})
    locs = {tuple(e["loc"]) for e in info.value.errors()}
    assert locs == {("timeouts", 1, "name"), ("timeouts", 1, "service")}
    data["timeouts"] = data["timeouts"][:1]  # type: ignore[index]
    claims = ClaimsFile.model_validate(data, context={"base_dir": tmp_path})
    assert claims.target.pythonpath == [tmp_path / "lib"]
    assert [r.id for r in claims.claims()] == ["timeout:a"]
    assert claims.claims()[0] == ClaimRef("timeout:a", "timeout", claims.timeouts[0], "timeouts[0]")


def test_sub_models_validate_alone() -> None:
    claim = TimeoutClaim.model_validate(
        {"name": "x", "call": "pkg.mod:Class.method", "within": "250ms", "env": {"A": "b"}}
    )
    assert (claim.within, claim.service, claim.fault) == (0.25, None, None)
    http = HttpClaim.model_validate({"name": "h", "request": "DELETE /a/b?c=1", "json": {"a": 1}})
    assert (http.method, http.path, http.json_, http.status) == (
        "DELETE",
        "/a/b?c=1",
        {"a": 1},
        None,
    )
    hooks = Webhooks.model_validate(
        {"scheme": "hmac-sha256", "verify": "a:b", "secret": "k", "header": "X-Sig"}
    )
    assert hooks.secret.get_secret_value() == "k"
    with pytest.raises(ValidationError):
        TimeoutClaim.model_validate({"name": "x", "call": "a:b", "within": 1, "repeat": 2})
