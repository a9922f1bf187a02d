"""The claims file as typed, immutable data: one model per section of shared/CLAIMS.md.

Every model forbids unknown keys (a typo must not pass silently) and is strict: TOML has types,
so `repeat = "5"` is an error, not a 5. Durations are seconds (float), sizes bytes (int),
faults `signoff.faults.Fault`, callables strings. Relative paths are resolved against the
validation context's "base_dir" (load_claims passes the claims file's folder).

Where the contract is silent, the choices made are written in each model's docstring.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from signoff import kinds as registry
from signoff.claims.types import (
    REDACTED,
    SERVICES,
    AddressTemplate,
    CallableRef,
    ClaimName,
    CommandLine,
    CronOracle,
    Env,
    EnvName,
    EnvValue,
    ExceptionRef,
    FaultSpec,
    FaultTarget,
    Fraction,
    HeaderName,
    HeaderValue,
    Identifier,
    JsonTable,
    JsonValue,
    Loc,
    LoopbackUrl,
    ModuleName,
    NonEmptyStr,
    PositiveDuration,
    PositiveSize,
    ReadyCheck,
    RequestLine,
    ServiceName,
    SideEffect,
    Size,
    Sqlstate,
    Statuses,
    UrlPath,
    WebhookScheme,
    base_dir_of,
    custom_error,
    describe,
    format_key,
    is_secret_key,
    located_errors,
    redact,
    resolve_path,
    split_request,
)
from signoff.faults.model import Fault
from signoff.units import format_size

#: The smallest [target.server] memory_limit: a Python interpreter alone needs about 10 MB
#: resident to start, a served app with its imports several times that.
MIN_MEMORY_LIMIT = 16 * 1024 * 1024


class _Model(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable and strictly typed,
    and neither repr() nor a JSON dump shows a secret (SecretStr fields, and the value of any
    key named like a secret, in env, headers, bodies)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_serializer(mode="wrap", when_used="json")
    def _redacted(self, handler: SerializerFunctionWrapHandler) -> Any:
        """JSON dumps (reports) hide secrets too; model_dump() in Python mode keeps them."""
        return redact(handler(self))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name and is_secret_key(name) and not isinstance(value, SecretStr):
                yield name, REDACTED
            else:
                yield name, redact(value)


# -- [target] --------------------------------------------------------------------------------


class Server(_Model):
    """[target.server]: exactly one of `app` (an ASGI/WSGI app signoff serves) or `command` (a
    command line with "{port}" in it). `startup` (default 30s, added) bounds how long `ready`
    may take to answer 2xx."""

    app: CallableRef | None = None
    command: CommandLine | None = None
    ready: UrlPath = "/"
    startup: PositiveDuration = 30.0
    # the served target and its background processes run in a memory cgroup with this limit
    memory_limit: PositiveSize | None = None

    @field_validator("memory_limit")
    @classmethod
    def _enough_for_python(cls, value: int | None) -> int | None:
        if value is not None and value < MIN_MEMORY_LIMIT:
            raise ValueError(
                f"expected at least {format_size(MIN_MEMORY_LIMIT)}: a Python interpreter "
                "alone needs about 10 MB to start, a served app several times that"
            )
        return value

    @field_validator("command")
    @classmethod
    def _has_port(cls, value: str | None) -> str | None:
        if value is not None and "{port}" not in value:
            raise ValueError(
                'expected a command line with "{port}" where the server\'s port goes, like '
                '"gunicorn core.web:app --bind 127.0.0.1:{port}"'
            )
        return value

    @model_validator(mode="after")
    def _app_or_command(self) -> Self:
        if self.app is not None and self.command is not None:
            raise located_errors("Server", [((), "give either app or command, not both")], {})
        if self.app is None and self.command is None:
            raise located_errors(
                "Server",
                [
                    (
                        (),
                        'missing app or command: app = "package.module:app" (served by signoff) '
                        'or command = "... {port} ..." (a server you start)',
                    )
                ],
                {},
            )
        return self


class Dependency(_Model):
    """[target.dependencies.NAME]: a TCP dependency of the target (an HTTP API, a TTS engine),
    faultable like a service. Exactly one of `command` (started by signoff on a free loopback
    port, "{port}" in it; "python" as its first word is the target's interpreter) and `url` (one
    already running on loopback). `ready`: "tcp" (accepts a connection) or a request answered
    2xx (default "tcp"), within `startup`. `env`: the variable that hands the target the
    address of its own fault proxy, spelled by `address`."""

    command: CommandLine | None = None
    url: LoopbackUrl | None = None
    ready: ReadyCheck = "tcp"
    startup: PositiveDuration = 30.0
    env: EnvName
    address: AddressTemplate = "http://{host}:{port}"

    @field_validator("command")
    @classmethod
    def _has_port(cls, value: str | None) -> str | None:
        if value is not None and "{port}" not in value:
            raise ValueError(
                'expected a command line with "{port}" where the dependency\'s port goes, like '
                '"python -m stubs.edge_tts --port {port}"'
            )
        return value

    @model_validator(mode="after")
    def _command_or_url(self) -> Self:
        if self.command is not None and self.url is not None:
            raise located_errors("Dependency", [((), "give either command or url, not both")], {})
        if self.command is None and self.url is None:
            raise located_errors(
                "Dependency",
                [
                    (
                        (),
                        'missing command or url: command = "... {port} ..." (started by signoff) '
                        'or url = "http://127.0.0.1:8300" (already running on loopback)',
                    )
                ],
                {},
            )
        return self


class Target(_Model):
    """[target]: the code under test and how to run it.

    `python`: the target's interpreter; default the harness's own (sys.executable). A value
    with a "/" is a path (relative to the claims file's folder); a bare name ("python3") is
    looked up on PATH now. Paths are made absolute but need not exist yet.
    `pythonpath`: folders put on sys.path (default ["."], the claims file's folder).
    `services`: each at most once. `background`: command lines, split like a shell would.
    """

    name: ClaimName
    python: Path = Field(default_factory=lambda: Path(sys.executable))
    pythonpath: list[Path] = Field(default_factory=lambda: [Path(".")], validate_default=True)
    env: Env = Field(default_factory=dict)
    services: list[ServiceName] = Field(default_factory=list)
    background: list[CommandLine] = Field(default_factory=list)
    server: Server | None = None
    dependencies: dict[FaultTarget, Dependency] = Field(default_factory=dict)

    @field_validator("dependencies")
    @classmethod
    def _not_a_service(cls, value: dict[str, Dependency]) -> dict[str, Dependency]:
        problems: list[tuple[Loc, str]] = [
            ((name,), f'"{name}" is a service signoff provides: list it in [target].services')
            for name in value
            if name in SERVICES
        ]
        if problems:
            raise located_errors("dependencies", problems, value)
        return value

    @field_validator("python", mode="before")
    @classmethod
    def _interpreter(cls, value: object, info: ValidationInfo) -> Path:
        hint = 'an interpreter: a path like ".venv/bin/python" or a command like "python3"'
        if isinstance(value, str) and value.strip() and "/" not in value and "\\" not in value:
            found = shutil.which(value)
            if found is None:
                raise custom_error(f'expected {hint}; found no "{value}" on PATH')
            return Path(found)
        return resolve_path(value, base_dir_of(info.context), hint)

    @field_validator("pythonpath", mode="before")
    @classmethod
    def _folders(cls, value: object, info: ValidationInfo) -> list[Path]:
        if not isinstance(value, list):
            raise ValueError('expected an array of folders, like ["."]')
        base = base_dir_of(info.context)
        problems: list[tuple[Loc, str]] = []
        paths: list[Path] = []
        for i, item in enumerate(value):
            try:
                paths.append(resolve_path(item, base, "a folder (a string)"))
            except ValueError as exc:
                problems.append(((i,), f"{exc}; got {describe(item)}"))
        if problems:
            raise located_errors("pythonpath", problems, value)
        return paths

    @field_validator("services")
    @classmethod
    def _once_each(cls, value: list[ServiceName]) -> list[ServiceName]:
        problems: list[tuple[Loc, str]] = [
            ((i,), f'"{name}" is listed twice') for i, name in enumerate(value) if name in value[:i]
        ]
        if problems:
            raise located_errors("services", problems, value)
        return value


# -- [imports] -------------------------------------------------------------------------------


class Imports(_Model):
    """[imports]: cold imports in fresh interpreters.

    Defaults: timeout 10s, repeat 5 (1..50), forbid none, with_services true, services_down
    false. `default_budget` is required with `discover` and only meaningful with it. At least
    one of budgets / discover. `env` (added) extends the target's environment for imports.
    """

    timeout: PositiveDuration = 10.0
    repeat: int = Field(default=5, ge=1, le=50)
    forbid: list[SideEffect] = Field(default_factory=list)
    discover: list[ModuleName] = Field(default_factory=list)
    default_budget: PositiveDuration | None = None
    max_spread: float | None = Field(default=None, gt=0)
    with_services: bool = True
    services_down: bool = False
    env: Env = Field(default_factory=dict)
    budgets: dict[ModuleName, PositiveDuration] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.discover and self.default_budget is None:
            problems.append(
                (
                    ("default_budget",),
                    'missing required key "default_budget": discover makes every submodule a '
                    'claim, and they need a budget, like default_budget = "500ms"',
                )
            )
        if self.default_budget is not None and not self.discover:
            problems.append(
                (
                    ("default_budget",),
                    "default_budget applies to discovered modules only, and discover is not "
                    "given: add discover = [...] or give each module a budget in "
                    "[imports.budgets]",
                )
            )
        if not self.discover and not self.budgets and self.default_budget is None:
            problems.append(
                (
                    (),
                    "nothing to check: give modules budgets in [imports.budgets] "
                    '(like "core" = "50ms") or packages to discover',
                )
            )
        if self.services_down and not self.with_services:
            problems.append(
                (
                    ("services_down",),
                    "services_down = true needs the services (they are hung, not absent); "
                    "with_services = false contradicts it",
                )
            )
        for i, name in enumerate(self.forbid):
            if name in self.forbid[:i]:
                problems.append((("forbid", i), f'"{name}" is listed twice'))
        if problems:
            raise located_errors("Imports", problems, {})
        return self


# -- claims with a fault ---------------------------------------------------------------------


Faults = dict[FaultTarget, FaultSpec]


class _WithFaults(_Model):
    """A claim that may put faults on services and dependencies: `service` with `fault` (one),
    or `faults = { edge_tts = "refuse", coqui_tts = "hang" }` (several at once), not both."""

    service: FaultTarget | None = None
    fault: FaultSpec | None = None
    faults: Faults = Field(default_factory=dict)

    def planned_faults(self) -> dict[str, Fault]:
        """{service or dependency: fault}, whichever way the claim spelled them."""
        if self.service is not None and self.fault is not None:
            return {self.service: self.fault}
        return dict(self.faults)

    def _fault_problems(self, *, needed: bool) -> list[tuple[Loc, str]]:
        """The contract's rule: `service` and `fault` go together, and not with `faults`;
        `needed`: a claim that is about a fault must name one (or set `env`)."""
        problems: list[tuple[Loc, str]] = []
        if self.faults and (self.service is not None or self.fault is not None):
            problems.append(
                (
                    ("faults",),
                    "give either service and fault (one fault) or faults = {...} (several), "
                    "not both",
                )
            )
        elif self.service is not None and self.fault is None:
            problems.append(
                (
                    ("fault",),
                    f'missing required key "fault": which fault service "{self.service}" '
                    'gets, like fault = "hang"',
                )
            )
        elif self.fault is not None and self.service is None:
            problems.append(
                (
                    ("service",),
                    f'missing required key "service": which service gets fault "{self.fault}", '
                    f"one of {', '.join(repr(s) for s in SERVICES)}".replace("'", '"')
                    + " or a dependency of [target.dependencies]",
                )
            )
        elif needed and not self.planned_faults() and not getattr(self, "env", None):
            problems.append(
                (
                    (),
                    'expected service and fault (like service = "redis", fault = "hang"), '
                    'faults = { edge_tts = "refuse" }, or env (to point a dependency somewhere '
                    "else); found none of them",
                )
            )
        return problems


class _FaultedClaim(_WithFaults):
    name: ClaimName
    call: CallableRef
    within: PositiveDuration
    raises: list[ExceptionRef] = Field(default_factory=list)
    env: Env = Field(default_factory=dict)


def _service_and_fault(claim: _FaultedClaim) -> None:
    problems = claim._fault_problems(needed=True)
    if problems:
        raise located_errors(type(claim).__name__, problems, {})


class TimeoutClaim(_FaultedClaim):
    """[[timeouts]]: `call` must return or raise within `within` with `fault` on `service`.
    `raises` (optional): it must raise one of these. `env` adds to the target's environment.
    `warmup`: true runs the call once without the fault first, in the same process, so lazy
    imports and pools are in place when the fault starts (its outcome is never judged); a
    callable ("pkg.mod:attr") runs that instead, for a claim about a NEW connection: it warms
    the imports without leaving a pooled connection the call would reuse."""

    warmup: bool | CallableRef = False

    @model_validator(mode="after")
    def _rule(self) -> Self:
        _service_and_fault(self)
        return self


class DegradationClaim(_FaultedClaim):
    """[[degradation]]: with `fault` on `service`, `call` returns (an `expect`, when given)
    within `within`; `then` is a method called on the result, which must raise one of `raises`
    (without `then`, `raises` applies to `call`). `recovers` needs `expect`: after the fault is
    lifted, `call` again gives something that is not an `expect` within this time.
    `warmup`: as for [[timeouts]] (true: `call` once without the fault first; a callable:
    that callable instead)."""

    expect: CallableRef | None = None
    then: Identifier | None = None
    recovers: PositiveDuration | None = None
    warmup: bool | CallableRef = False

    @model_validator(mode="after")
    def _rule(self) -> Self:
        _service_and_fault(self)
        if self.recovers is not None and self.expect is None:
            raise located_errors(
                "DegradationClaim",
                [
                    (
                        ("recovers",),
                        "recovers needs expect: recovery means the result is no longer an "
                        "`expect` (the degraded stand-in)",
                    )
                ],
                {},
            )
        return self


# -- [[http]] --------------------------------------------------------------------------------


class HttpFault(_Model):
    """The inline table { service = "redis", kind = "kill" } of an [[http]] claim."""

    service: FaultTarget
    kind: FaultSpec


class HttpClaim(_Model):
    """[[http]]: one request (sent `repeat` times; the checks apply to the last) to the served
    target, optionally with a fault. `status` None means any 2xx. `within` (default 10s) bounds
    each request. `body` (added) is sent as JSON. Header names compare case-insensitively.
    `absent_headers`: these must not be in the response. `faults = {...}`: several faults at
    once, instead of `fault`."""

    name: ClaimName
    fault: HttpFault | None = None
    faults: Faults = Field(default_factory=dict)
    request: RequestLine
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    body: JsonValue = None
    json_: JsonTable | None = Field(default=None, alias="json")
    status: Statuses | None = None
    response_headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    absent_headers: list[HeaderName] = Field(default_factory=list)
    within: PositiveDuration = 10.0
    repeat: int = Field(default=1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_way_of_faults(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.fault is not None and self.faults:
            problems.append(
                (("faults",), "give either fault = {...} (one) or faults = {...}, not both")
            )
        present = {name.lower() for name in self.response_headers}
        for i, name in enumerate(self.absent_headers):
            if name.lower() in present:
                problems.append(
                    (
                        ("absent_headers", i),
                        f'"{name}" is in response_headers too: it cannot be both there and absent',
                    )
                )
        if problems:
            raise located_errors("HttpClaim", problems, {})
        return self

    def planned_faults(self) -> dict[str, Fault]:
        if self.fault is not None:
            return {self.fault.service: self.fault.kind}
        return dict(self.faults)

    @property
    def method(self) -> str:
        return split_request(self.request)[0]

    @property
    def path(self) -> str:
        return split_request(self.request)[1]


# -- [[call]] --------------------------------------------------------------------------------


class CallClaim(_WithFaults):
    """[[call]]: `call(*args, **kwargs)` in a fresh interpreter of the target returns within
    `within` (default 10s): an instance of `returns`, a dict containing `json`, or (instead)
    raises one of `raises`. Faults as on [[timeouts]]; none is needed. `env` adds to the
    target's environment."""

    name: ClaimName
    call: CallableRef
    args: list[JsonValue] = Field(default_factory=list)
    kwargs: dict[Identifier, JsonValue] = Field(default_factory=dict)
    returns: CallableRef | None = None
    json_: JsonTable | None = Field(default=None, alias="json")
    raises: list[ExceptionRef] = Field(default_factory=list)
    within: PositiveDuration = 10.0
    env: Env = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rule(self) -> Self:
        problems = self._fault_problems(needed=False)
        if self.raises and (self.returns is not None or self.json_ is not None):
            problems.append(
                (
                    ("raises",),
                    "raises is the alternative to returns and json: a call either returns "
                    "or raises",
                )
            )
        if problems:
            raise located_errors("CallClaim", problems, {})
        return self


# -- [cron] ----------------------------------------------------------------------------------


class Cron(_Model):
    """[cron]: bounded schedule expansion. Defaults: horizon 365d, examples 100, no oracle,
    invalid "Exception" (invalid expressions must raise something, in time)."""

    call: CallableRef
    max_results: int = Field(ge=1)
    within: PositiveDuration
    horizon: PositiveDuration = 365 * 86400.0
    examples: int = Field(default=100, ge=1, le=100_000)
    oracle: CronOracle | None = None
    invalid: ExceptionRef = "Exception"
    env: Env = Field(default_factory=dict)


# -- [webhooks] ------------------------------------------------------------------------------

SCHEMES_WITH_TIMESTAMPS = ("standard", "stripe")
SCHEMES_WITH_ROTATION = ("standard", "stripe")


class Webhooks(_Model):
    """[webhooks]: signatures that cannot be forged or replayed. `secret` is a SecretStr and is
    never shown. `tolerance` (default 5m) only for schemes with timestamps (standard, stripe);
    `header` required for hmac-sha256 and refused for the others. `strict` (default false):
    accepted re-spellings of a validly signed signature or timestamp are their own failing
    sub-claim, webhook:malleability, instead of a note on webhook:forgery."""

    scheme: WebhookScheme
    verify: CallableRef
    sign: CallableRef | None = None
    secret: SecretStr
    tolerance: PositiveDuration = 300.0
    header: HeaderName | None = None
    url_validator: CallableRef | None = None
    strict: bool = False
    env: Env = Field(default_factory=dict)

    @field_validator("secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("expected a non-empty secret")
        return value

    @model_validator(mode="after")
    def _scheme_keys(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.scheme == "hmac-sha256" and self.header is None:
            problems.append(
                (
                    ("header",),
                    'missing required key "header": scheme "hmac-sha256" needs the header '
                    'carrying the hex digest, like header = "X-Signature"',
                )
            )
        if self.scheme != "hmac-sha256" and self.header is not None:
            problems.append(
                (
                    ("header",),
                    f'header is for scheme "hmac-sha256" only; scheme "{self.scheme}" '
                    "has its own headers",
                )
            )
        if "tolerance" in self.model_fields_set and self.scheme not in SCHEMES_WITH_TIMESTAMPS:
            problems.append(
                (
                    ("tolerance",),
                    f'scheme "{self.scheme}" signs no timestamp, so tolerance means nothing; '
                    "only standard and stripe take it",
                )
            )
        if problems:
            raise located_errors("Webhooks", problems, {})
        return self


# -- [[load]] --------------------------------------------------------------------------------


class Flow(_Model):
    """[load.flow]: the bundled async-job flow. `status` must contain "{id}". poll: 200ms."""

    start: RequestLine
    body: JsonValue = None
    id: NonEmptyStr
    status: RequestLine
    done: JsonTable
    poll: PositiveDuration = 0.2

    @field_validator("status")
    @classmethod
    def _has_id(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError('expected a request with "{id}" where the job id goes')
        return value


class Percentiles(_Model):
    """Latency bounds of one request name: at least one of p50, p90, p95, p99, max."""

    p50: PositiveDuration | None = None
    p90: PositiveDuration | None = None
    p95: PositiveDuration | None = None
    p99: PositiveDuration | None = None
    max: PositiveDuration | None = None

    KEYS: ClassVar[tuple[str, ...]] = ("p50", "p90", "p95", "p99", "max")

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not self.bounds():
            raise located_errors(
                "Percentiles",
                [((), 'expected at least one of p50, p90, p95, p99, max, like { p95 = "100ms" }')],
                {},
            )
        return self

    def bounds(self) -> dict[str, float]:
        """{"p95": 0.1, ...}: the bounds given, in order."""
        return {k: v for k in self.KEYS if (v := getattr(self, k)) is not None}


class Memory(_Model):
    """[load.memory]: the served target's resident memory. At least one bound.
    `max_fraction`, `settles_below` and `settles_within` need [target.server] memory_limit:
    the memory of every process in the target's cgroup as a fraction of that limit, never
    above `max_fraction` during the run, and under `settles_below` within `settles_within`
    (default 30s) of the load's end."""

    max_rss: PositiveSize | None = None
    max_growth: Size | None = None
    max_fraction: Fraction | None = None
    settles_below: Fraction | None = None
    settles_within: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        bounds = (self.max_rss, self.max_growth, self.max_fraction, self.settles_below)
        if all(bound is None for bound in bounds):
            raise located_errors(
                "Memory",
                [
                    (
                        (),
                        "expected max_rss, max_growth, max_fraction or settles_below, like "
                        'max_rss = "512MB"',
                    )
                ],
                {},
            )
        if "settles_within" in self.model_fields_set and self.settles_below is None:
            raise located_errors(
                "Memory",
                [(("settles_within",), "settles_within needs settles_below (the fraction)")],
                {},
            )
        return self

    @property
    def needs_limit(self) -> bool:
        return self.max_fraction is not None or self.settles_below is not None


class LoadClaim(_Model):
    """[[load]]: Locust against the served target. Required: name, users, duration, and a
    locustfile or [load.flow]. Defaults: spawn_rate = users (all start within a second),
    processes 1, failure_ratio 0 (no failed request allowed), no min_rps."""

    name: ClaimName
    locustfile: Path | None = None
    users: int = Field(ge=1)
    spawn_rate: float = Field(gt=0)
    duration: PositiveDuration
    processes: int = Field(default=1, ge=1, le=256)
    failure_ratio: float = Field(default=0.0, ge=0, le=1)
    min_rps: float | None = Field(default=None, gt=0)
    flow: Flow | None = None
    latency: dict[NonEmptyStr, Percentiles] = Field(default_factory=dict)
    memory: Memory | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_spawn_rate(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "spawn_rate" not in data:
            users = data.get("users")
            if isinstance(users, int) and not isinstance(users, bool) and users >= 1:
                return {**data, "spawn_rate": float(users)}
            return {**data, "spawn_rate": 1.0}  # users is missing or wrong: said there
        return data

    @field_validator("locustfile", mode="before")
    @classmethod
    def _locustfile(cls, value: object, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return resolve_path(value, base_dir_of(info.context), 'a path like "loadtests/flow.py"')

    @model_validator(mode="after")
    def _flow_or_locustfile(self) -> Self:
        if self.locustfile is None and self.flow is None:
            raise located_errors(
                "LoadClaim",
                [
                    (
                        (),
                        "expected [load.flow] (the bundled async-job flow: start, id, status, "
                        "done) or a locustfile; found neither",
                    )
                ],
                {},
            )
        return self


# -- [[websocket]] ---------------------------------------------------------------------------


class WebsocketClaim(_WithFaults):
    """[[websocket]]: a real WebSocket client against the served target's `path`. `heartbeat`:
    the server sends a ping frame or a message at least this often, over `beats` intervals
    (default 3) from the connect on; `idle_close`: a client that answers no ping and sends
    nothing is closed by the server within this; `stays_open`: a client that answers pings
    stays connected this long. At least one of the three. `clients` (default 1) at once.
    `headers` (added) go with the opening handshake (an Origin, say). `connect` (added,
    default 10s) bounds the opening handshake. `reply` (added): the text an answering client
    sends back for every message it receives (an app's own heartbeat, like
    '{"type": "pong"}'); ping frames are answered by the protocol itself."""

    name: ClaimName
    path: UrlPath
    heartbeat: PositiveDuration | None = None
    beats: int = Field(default=3, ge=1, le=1000)
    idle_close: PositiveDuration | None = None
    stays_open: PositiveDuration | None = None
    clients: int = Field(default=1, ge=1, le=1000)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    connect: PositiveDuration = 10.0
    reply: str | None = None

    @model_validator(mode="after")
    def _rule(self) -> Self:
        problems = self._fault_problems(needed=False)
        if self.heartbeat is None and self.idle_close is None and self.stays_open is None:
            problems.append(
                (
                    (),
                    "nothing to check: give heartbeat, idle_close and/or stays_open, like "
                    'heartbeat = "20s"',
                )
            )
        if "beats" in self.model_fields_set and self.heartbeat is None:
            problems.append((("beats",), "beats counts heartbeats: it needs heartbeat"))
        if problems:
            raise located_errors("WebsocketClaim", problems, {})
        return self


# -- [[sql]] ---------------------------------------------------------------------------------


class SqlClaim(_Model):
    """[[sql]]: `setup` files (relative to the claims file) run once per run, in order, each
    whole, as the database owner; then `query` runs as `role` (SET ROLE, so row-level security
    applies) after `settings` (set_config(k, v, false)), within `within` (default 5s). Judged
    on `rows` (or `min_rows` / `max_rows`), or instead `sqlstate`: it must fail with that."""

    name: ClaimName
    setup: list[Path] = Field(default_factory=list)
    role: NonEmptyStr | None = None
    settings: dict[NonEmptyStr, EnvValue] = Field(default_factory=dict)
    query: NonEmptyStr
    within: PositiveDuration = 5.0
    rows: int | None = Field(default=None, ge=0)
    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    sqlstate: Sqlstate | None = None

    @field_validator("setup", mode="before")
    @classmethod
    def _files(cls, value: object, info: ValidationInfo) -> list[Path]:
        if not isinstance(value, list):
            raise ValueError('expected an array of SQL files, like ["sql/schema.sql"]')
        base = base_dir_of(info.context)
        problems: list[tuple[Loc, str]] = []
        paths: list[Path] = []
        for i, item in enumerate(value):
            try:
                path = resolve_path(item, base, 'a SQL file (a string like "sql/schema.sql")')
            except ValueError as exc:
                problems.append(((i,), f"{exc}; got {describe(item)}"))
                continue
            if not path.is_file():
                problems.append(((i,), f"expected a SQL file; {path} does not exist"))
            paths.append(path)
        if problems:
            raise located_errors("setup", problems, value)
        return paths

    @model_validator(mode="after")
    def _rule(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        counted = [k for k in ("rows", "min_rows", "max_rows") if getattr(self, k) is not None]
        if self.sqlstate is not None and counted:
            problems.append(
                (
                    ("sqlstate",),
                    f"sqlstate is the alternative to {counted[0]}: a query either returns rows "
                    "or fails",
                )
            )
        if self.rows is not None and (self.min_rows is not None or self.max_rows is not None):
            problems.append((("rows",), "give rows (exactly) or min_rows / max_rows, not both"))
        if (
            self.min_rows is not None
            and self.max_rows is not None
            and self.min_rows > self.max_rows
        ):
            problems.append((("max_rows",), "max_rows is below min_rows"))
        if problems:
            raise located_errors("SqlClaim", problems, {})
        return self


# -- the file --------------------------------------------------------------------------------

#: Section (TOML key) -> claim kind, in the contract's order: the built-in kinds of the
#: registry (signoff.kinds), each a field of ClaimsFile below.
SECTION_KINDS: dict[str, str] = {kind.section: kind.name for kind in registry.BUILTIN}
CLAIM_KINDS: tuple[str, ...] = tuple(SECTION_KINDS.values())
CRON_CLAIMS = ("time", "count", "correct", "invalid")


@dataclass(frozen=True)
class ClaimRef:
    """One claim: its stable id ("timeout:redis ping ..."), kind ("timeout"), the section that
    specifies it (None when nothing does), and where that section is ("timeouts[2]")."""

    id: str
    kind: str
    spec: BaseModel | None
    section_key: str

    @property
    def name(self) -> str:
        return self.id.partition(":")[2]


class ClaimsFile(_Model):
    """A whole claims file. `path` is the file's absolute path (set by load_claims). Build one
    with `ClaimsFile.model_validate(data, context={"base_dir": folder})` when not loading a
    file: relative paths resolve against base_dir (else the current folder). Besides each
    section's own rules, the file's are checked: claim names unique within each kind, every
    service a claim names declared in [target].services, [target.server] given when an http,
    load or websocket claim needs it."""

    path: Path
    target: Target
    imports: Imports | None = None
    timeouts: list[TimeoutClaim] = Field(default_factory=list)
    degradation: list[DegradationClaim] = Field(default_factory=list)
    http: list[HttpClaim] = Field(default_factory=list)
    cron: Cron | None = None
    webhooks: Webhooks | None = None
    load: list[LoadClaim] = Field(default_factory=list)
    websocket: list[WebsocketClaim] = Field(default_factory=list)
    call: list[CallClaim] = Field(default_factory=list)
    sql: list[SqlClaim] = Field(default_factory=list)

    _order: tuple[str, ...] = PrivateAttr(default=tuple(SECTION_KINDS))
    # the sections of kinds other packages register (signoff.kinds), validated by their model
    _plugin_sections: dict[str, list[BaseModel]] = PrivateAttr(default_factory=dict)

    @field_validator("path", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> Path:
        return resolve_path(value, None, "the claims file's path")

    @model_validator(mode="wrap")
    @classmethod
    def _whole_file(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        extra = cross_check(data) if isinstance(data, Mapping) else []
        plugin: dict[str, list[BaseModel]] = {}
        if isinstance(data, Mapping):
            data, plugin = _plugin_sections(data)
        try:
            model = handler(data)
        except ValidationError as exc:
            if not extra:
                raise
            raise _merged(exc, extra, data) from None
        if extra:
            raise located_errors(cls.__name__, extra, data)
        model._plugin_sections = plugin
        if isinstance(data, Mapping):
            present = [k for k in data if k in SECTION_KINDS]
            model._order = (*present, *(k for k in SECTION_KINDS if k not in present), *plugin)
        return model

    def claims(self) -> list[ClaimRef]:
        """Every claim, sections in the order the file gives them. Discovered import modules
        are not here: the run adds them."""
        refs: list[ClaimRef] = []
        for section in self._order:
            refs.extend(self._section_claims(section))
        return refs

    def _section_claims(self, section: str) -> Iterator[ClaimRef]:
        if section in self._plugin_sections:
            kind = next(k.name for k in registry.plugin_kinds() if k.section == section)
            for i, item in enumerate(self._plugin_sections[section]):
                name = getattr(item, "name", str(i))
                yield ClaimRef(f"{kind}:{name}", kind, item, f"{section}[{i}]")
            return
        kind = SECTION_KINDS[section]
        if section == "imports":
            if self.imports is not None:
                for module in self.imports.budgets:
                    key = format_key(("imports", "budgets", module))
                    yield ClaimRef(f"import:{module}", kind, self.imports, key)
        elif section == "cron":
            if self.cron is not None:
                for sub in CRON_CLAIMS:
                    yield ClaimRef(f"cron:{sub}", kind, self.cron, "cron")
        elif section == "webhooks":
            hooks = self.webhooks
            if hooks is not None:
                subs = ["vectors", "forgery"] + (["malleability"] if hooks.strict else [])
                if hooks.scheme in SCHEMES_WITH_TIMESTAMPS:
                    subs.append("timestamps")
                if hooks.scheme in SCHEMES_WITH_ROTATION:
                    subs.append("rotation")
                subs.append("constant-time")
                if hooks.url_validator is not None:
                    subs.append("url-validator")
                for sub in subs:
                    yield ClaimRef(f"webhook:{sub}", kind, hooks, "webhooks")
        else:
            items: list[Any] = getattr(self, section)
            for i, item in enumerate(items):
                yield ClaimRef(f"{kind}:{item.name}", kind, item, f"{section}[{i}]")


def _plugin_sections(
    data: Mapping[str, Any],
) -> tuple[Mapping[str, Any], dict[str, list[BaseModel]]]:
    """The file without the sections of kinds other packages register, and those sections,
    each table validated by its kind's model."""
    kinds = {k.section: k for k in registry.plugin_kinds() if k.model is not None}
    if not any(section in data for section in kinds):
        return data, {}
    found: dict[str, list[BaseModel]] = {}
    for section, kind in kinds.items():
        if section in data:
            items = data[section] if isinstance(data[section], list) else [data[section]]
            assert kind.model is not None
            found[section] = [kind.model.model_validate(item) for item in items]
    return {k: v for k, v in data.items() if k not in kinds}, found


def _named_sections() -> tuple[str, ...]:
    return tuple(kind.section for kind in registry.all_kinds() if kind.named)


def _server_sections() -> tuple[str, ...]:
    return tuple(kind.section for kind in registry.all_kinds() if kind.server)


# -- checks across sections (on the raw data, so they run even when other parts are wrong) ---


def cross_check(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """The file-wide rules, as (loc, message). Defensive: values of the wrong type are left
    to the sections' own validation."""
    problems: list[tuple[Loc, str]] = []
    target = data.get("target")
    declared: list[str] | None = None
    dependencies: list[str] = []
    if isinstance(target, Mapping):
        services = target.get("services", [])
        if isinstance(services, list):
            declared = [s for s in services if s in SERVICES]
        if isinstance(deps := target.get("dependencies"), Mapping):
            dependencies = [str(name) for name in deps]
    if declared is not None:
        problems.extend(_undeclared_services(data, declared, dependencies))
        problems.extend(_sql_needs_postgres(data, declared))
    problems.extend(_duplicate_names(data))
    server = target.get("server") if isinstance(target, Mapping) else None
    if isinstance(target, Mapping) and server is None:
        needing = [
            f"{section}[{i}]"
            for section in _server_sections()
            if isinstance(items := data.get(section), list)
            for i in range(len(items))
        ]
        if needing:
            who = needing[0] if len(needing) == 1 else ", ".join(needing[:-1])
            who += "" if len(needing) == 1 else f" and {needing[-1]}"
            verb = "needs" if len(needing) == 1 else "need"
            problems.append(
                (
                    ("target", "server"),
                    f"missing table [target.server]: {who} {verb} a server to send requests "
                    'to; add app = "package.module:app" or command = "... {port} ..."',
                )
            )
    if isinstance(server, Mapping) and server.get("memory_limit") is None:
        problems.extend(_fractions_need_limit(data))
    return problems


def _undeclared(service: object, declared: list[str], dependencies: list[str]) -> str | None:
    if not isinstance(service, str) or service in declared or service in dependencies:
        return None
    if service in SERVICES:
        listed = ", ".join(f'"{s}"' for s in declared) if declared else "none"
        return (
            f'references service "{service}", which [target].services does not declare '
            f"(it declares {listed}): add it there"
        )
    known = [*declared, *dependencies]
    listed = ", ".join(f'"{s}"' for s in known) if known else "none"
    return (
        f'references "{service}", which is neither a service of [target].services nor a '
        f"dependency of [target.dependencies] (known: {listed})"
    )


FAULT_SECTIONS = ("timeouts", "degradation", "http", "call", "websocket")


def _undeclared_services(
    data: Mapping[str, Any], declared: list[str], dependencies: list[str]
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for section in FAULT_SECTIONS:
        items = data.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            named: list[tuple[Loc, object]] = [((section, i, "service"), item.get("service"))]
            fault = item.get("fault")
            if section == "http" and isinstance(fault, Mapping):
                named = [((section, i, "fault", "service"), fault.get("service"))]
            if isinstance(faults := item.get("faults"), Mapping):
                named.extend(((section, i, "faults", str(k)), k) for k in faults)
            for loc, service in named:
                if (m := _undeclared(service, declared, dependencies)) is not None:
                    problems.append((loc, m))
    imports = data.get("imports")
    if isinstance(imports, Mapping) and imports.get("services_down") is True and not declared:
        problems.append(
            (
                ("imports", "services_down"),
                "services_down = true, but [target].services declares no service to hang",
            )
        )
    return problems


def _sql_needs_postgres(data: Mapping[str, Any], declared: list[str]) -> list[tuple[Loc, str]]:
    items = data.get("sql")
    if not isinstance(items, list) or not items or "postgres" in declared:
        return []
    return [
        (
            ("target", "services"),
            f"[[sql]] claims run on the real Postgres, and [target].services does not declare "
            f'"postgres" ({len(items)} [[sql]] claim{"s" if len(items) > 1 else ""}): add it',
        )
    ]


def _fractions_need_limit(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    items = data.get("load")
    if not isinstance(items, list):
        return problems
    for i, item in enumerate(items):
        memory = item.get("memory") if isinstance(item, Mapping) else None
        if not isinstance(memory, Mapping):
            continue
        for key in ("max_fraction", "settles_below"):
            if key in memory:
                problems.append(
                    (
                        ("load", i, "memory", key),
                        f"{key} is a fraction of [target.server] memory_limit, which is not "
                        'given: add memory_limit = "256MB" there, or use max_rss',
                    )
                )
    return problems


def _duplicate_names(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for section in _named_sections():
        items = data.get(section)
        if not isinstance(items, list):
            continue
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(name, str):
                continue
            if name in first:
                problems.append(
                    (
                        (section, i, "name"),
                        f'duplicate name "{name}": {section}[{first[name]}] has it too, and '
                        "each claim's id must be distinct",
                    )
                )
            else:
                first[name] = i
    return problems


def _merged(exc: ValidationError, extra: list[tuple[Loc, str]], data: object) -> ValidationError:
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        ctx = dict(error.get("ctx") or {})
        ctx["__msg__"] = error["msg"]
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(error["type"], "{__msg__}", ctx),
                loc=error["loc"],
                input=error["input"],
            )
        )
    details.extend(InitErrorDetails(type=custom_error(m), loc=loc, input=data) for loc, m in extra)
    return ValidationError.from_exception_data(exc.title, details)
