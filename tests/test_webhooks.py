"""[webhooks] claims: signoff's own implementation of the schemes against the published vectors,
the forgery and timing machinery, the probe child (hangs, crashes, secrets kept out of reports,
a sandboxed URL validator), the reference TaskWebhookService of targets/reports, and the
detection matrix: the reference holds every sub-claim, each regression fails exactly its own,
the real `standardwebhooks` package holds everything, with a note on forgery naming the
malleable spellings it accepts, and fails webhook:malleability with `strict = true`."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import random
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings

from signoff import processes
from signoff.claims import load_claims
from signoff.claims.model import Webhooks
from signoff.context import ClaimSetup, RunContext
from signoff.engine.runner import TargetProcess
from signoff.kinds.webhooks import check as probe
from signoff.kinds.webhooks.cases import (
    BASE64_SPELLINGS,
    Case,
    _base64_spellings,
    _timestamp_spellings,
    forgery_cases,
    malleability_cases,
)
from signoff.kinds.webhooks.schemes import Message, scheme_for, vectors_for
from signoff.kinds.webhooks.timing import THRESHOLD, TimingResult, dudect, welch_t
from signoff.verdict import Verdict
from tests.runs import claims, signoff, statuses

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "targets" / "reports"
SECRET = "whsec_pO6HEsB7tveQCc/w4M75mEYMWAIky2SC"  # the test secret of the reports claims
SUBS = ("vectors", "forgery", "timestamps", "rotation", "constant-time", "url-validator")
# What the real standardwebhooks 1.1.0 accepts under a valid signature: lenient base64 (it
# rejects no padding, and skips "-" and "_", so URL-safe is other bytes) and float() timestamps.
STANDARDWEBHOOKS_SPELLINGS = [
    "a character outside the base64 alphabet inside",
    "base64 data after the padding",
    "an extra padding character",
    "an unused bit set in the last character",
    "timestamp with a fraction (.0)",
    "timestamp with a fraction (.5)",
    "timestamp with a plus sign",
    "timestamp with a leading zero",
    "timestamp with underscores",
    "timestamp in exponent notation",
    "timestamp in Arabic-Indic digits",
]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reference = _load(REPORTS / "reports_app" / "webhooks.py", "signoff_test_reference_webhooks")


# -- signoff's own schemes --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["standard", "stripe", "github", "hmac-sha256"])
def test_signoff_computes_the_published_vectors(name: str) -> None:
    scheme = scheme_for(name, "X-Signature")
    vectors = vectors_for(scheme)
    assert any(v.valid for v in vectors)
    for vector in vectors:
        token = scheme.token(scheme.digest(vector.secret, vector.msg))
        assert (token == vector.signature) is vector.valid, vector.source


def test_githubs_documented_example() -> None:
    digest = hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256).hexdigest()
    assert digest == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = scheme_for("github").sign("It's a Secret to Everybody", Message(b"Hello, World!"))
    assert headers == {"X-Hub-Signature-256": "sha256=" + digest}


def test_malformed_spellings_carry_the_valid_bytes() -> None:
    raw = hashlib.sha256(b"x").digest()
    canonical = base64.b64encode(raw).decode()
    spellings = _base64_spellings(raw)
    assert len(spellings) >= 5
    for label, spelled in spellings:
        assert spelled != canonical, label
        if label != "no padding" and label != "the URL-safe alphabet":
            assert base64.b64decode(spelled) == raw, label  # lenient decoding: same bytes


def test_timestamp_spellings_are_not_the_canonical_one() -> None:
    now = 1795457593
    for label, spelled in _timestamp_spellings(now):
        assert spelled != str(now), label
        value = float(spelled.replace("_", "")) if label != "with a fraction (.5)" else None
        if value is not None:
            assert value == now, label  # a parser that re-formats the number accepts it


def _library_accepts(case: Case) -> bool:
    webhooks = pytest.importorskip("standardwebhooks")
    try:
        webhooks.Webhook(SECRET if case.secret is None else case.secret).verify(
            case.payload, case.headers
        )
    except Exception:
        return False
    return True


def test_forgeries_and_spellings_split_where_the_secret_matters() -> None:
    """The real library (lenient, in this process) rejects every forgery and accepts most
    spellings; the strict reference rejects both. A spelling put back among the forgeries, or
    a forgery among the spellings, fails one of the two."""
    scheme, now = scheme_for("standard"), int(time.time())
    forged, spelled = forgery_cases(scheme, SECRET, now), malleability_cases(scheme, SECRET, now)
    assert [c.label for c in forged if _library_accepts(c)] == []
    assert [c.label for c in spelled if _library_accepts(c)] == STANDARDWEBHOOKS_SPELLINGS
    clock = lambda: float(now)  # noqa: E731
    for case in forged + spelled:
        assert not reference.verify(SECRET, case.payload, case.headers, clock=clock), case.label
    # every spelling is one of a genuinely signed delivery: its canonical form is accepted
    for case in spelled:
        signature = case.headers["webhook-signature"]
        canonical = {**case.headers, "webhook-timestamp": str(now)}
        if case.kind == "spelling":
            raw = base64.b64decode(signature[3:].replace("-", "+").replace("_", "/") + "==")
            canonical["webhook-signature"] = "v1," + base64.b64encode(raw).decode()
        assert reference.verify(SECRET, case.payload, canonical, clock=clock), case.label
    assert [c.label for c in spelled[: len(BASE64_SPELLINGS)]] == list(BASE64_SPELLINGS)
    # a timestamp in another second is a forgery, one in the same second a spelling
    assert "the timestamp moved by +1 s under the old signature" in {c.label for c in forged}
    assert {c.kind for c in forged}.isdisjoint({"spelling", "timestamp"})


def test_welch_t_sees_a_shift_and_not_noise() -> None:
    rng = random.Random(7)
    same = [rng.gauss(1000, 50) for _ in range(4000)]
    other = [rng.gauss(1000, 50) for _ in range(4000)]
    shifted = [x + 30 for x in other]
    assert abs(welch_t(same, other)) < 4.5
    assert welch_t(same, shifted) > 10
    assert welch_t([1.0], [2.0]) == 0.0

    times = [int(rng.gauss(6000, 100)) for _ in range(6000)]
    classes = "".join(rng.choice("01") for _ in times)
    assert not dudect(times, classes).leaks
    leaky = [t + (900 if c == "1" else 0) for t, c in zip(times, classes, strict=True)]
    result = dudect(leaky, classes)
    assert result.leaks and result.t > THRESHOLD
    assert result.count[0] + result.count[1] == len(times)
    # the other way round (the signature wrong from its first character is the slower one) is
    # no early exit, and no leak
    backwards = [t + (900 if c == "0" else 0) for t, c in zip(times, classes, strict=True)]
    opposite = dudect(backwards, classes)
    assert not opposite.leaks and opposite.t < THRESHOLD


def test_a_timing_leak_fails_only_when_the_swapped_second_test_confirms_it() -> None:
    rng = random.Random(11)
    times = [int(rng.gauss(6000, 100)) for _ in range(6000)]
    classes = "".join(rng.choice("01") for _ in times)
    leak = dudect(
        [t + (900 if c == "1" else 0) for t, c in zip(times, classes, strict=True)], classes
    )
    calm = dudect(times, classes)
    spied = {"first": {"compares": [{"signature": True, "where": "app.py:3"}]}}

    def judged(first: TimingResult, second: TimingResult | None) -> Verdict:
        verdict = Verdict("webhook:constant-time", "webhook", "holds")
        probe._judge_constant_time(verdict, spied, first, second)
        return verdict

    both = judged(leak, leak)
    assert both.status == "fails" and "t > 10 in both fails" in both.evidence
    artifact = judged(leak, calm)  # the first test's shift followed the strings' places
    assert artifact.status == "holds" and "not confirmed by a second test" in artifact.evidence
    assert artifact.measured["t_confirm"] == round(calm.t, 2)
    unconfirmed = judged(leak, None)  # the second test could not time enough calls
    assert unconfirmed.status == "fails" and "second timing test" in unconfirmed.evidence
    assert judged(calm, None).status == "holds"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(probe.tamperings(scheme_for("standard"), SECRET, 1795457593, 300.0))
def test_every_tampered_delivery_differs_and_a_strict_verifier_rejects_it(
    tampered: probe.Tampered,
) -> None:
    clock = lambda: 1795457593.0  # noqa: E731
    assert not reference.verify(SECRET, tampered.payload, tampered.headers, clock=clock)


# -- the reference TaskWebhookService ---------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_retries_after_1_5_and_15_minutes_then_gives_up() -> None:
    clock = FakeClock()
    sent: list[float] = []

    def failing(url: str, payload: bytes, headers: Any) -> int:
        sent.append(clock.now)
        return 503

    service = reference.TaskWebhookService([SECRET], clock=clock, transport=failing)
    delivery = service.notify("https://93.184.215.14/hook", "task-1", {"status": "complete"})
    start = clock.now
    for step in range(0, 1300):  # one simulated second at a time, 21 minutes and more
        clock.now = start + step
        service.run_due()
    assert [t - start for t in sent] == [0, 60, 360, 1260]
    assert delivery.status == "failed" and delivery.attempts == 4


def test_a_delivery_carries_a_signature_per_secret_during_a_rotation() -> None:
    clock = FakeClock()
    captured: list[tuple[bytes, dict[str, str]]] = []

    def ok(url: str, payload: bytes, headers: Any) -> int:
        captured.append((payload, dict(headers)))
        return 204

    old, new = SECRET, reference.new_secret()

    def offline(url: str) -> str | None:
        return reference.check_url(url, resolve=False)

    service = reference.TaskWebhookService([old], clock=clock, transport=ok, url_check=offline)
    service.rotate(new)
    delivery = service.notify("https://example.com/hook", "task-2", {"status": "complete"})
    service.run_due()
    assert delivery.status == "delivered" and delivery.attempts == 1
    payload, headers = captured[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert reference.verify(secret, payload, headers, clock=clock)
    clock.now += 301
    assert not reference.verify(new, payload, headers, clock=clock)  # stale now
    with pytest.raises(reference.WebhookError):
        service.notify("http://169.254.169.254/latest/meta-data/", "task-3", {})


def test_the_reference_validator_resolves_through_the_resolver_it_is_given() -> None:
    def resolver(name: str, *args: Any) -> list[tuple[Any, ...]]:
        table = {"public.test": "93.184.215.14", "rebind.test": "127.0.0.1"}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[name], 443))]

    assert reference.check_url("https://public.test/x", resolver=resolver) is None
    assert "127.0.0.1" in reference.check_url("https://rebind.test/x", resolver=resolver)
    assert reference.check_url("https://anything.test/x", resolve=False) is None
    assert "loopback" in reference.check_url("http://0x7f.1/", resolve=False)


# -- the probe, through its child, in-process -------------------------------------------------


@pytest.fixture(autouse=True)
def spawned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The probe children started during the test; none may outlive it."""
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path / "state"))
    procs: list[subprocess.Popen[Any]] = []
    real = processes.spawn

    def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = real(argv, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(processes, "spawn", spawn)
    yield procs
    left = [proc for proc in procs if proc.poll() is None]
    for proc in left:
        processes.kill(proc)
    assert not left, "a webhook probe child outlived its claim"


class _Ctx:
    """Enough of a RunContext for check_webhook: a target without services."""

    def __init__(self, folder: Path) -> None:
        self.target = TargetProcess(sys.executable, (str(folder),), {}, str(folder))

    @contextlib.contextmanager
    def claim_setup(self, extra_env: Any = None) -> Iterator[ClaimSetup]:
        yield ClaimSetup({}, self.target)


def check(folder: Path, sub: str, **section: Any) -> Verdict:
    spec = Webhooks.model_validate({"secret": SECRET, **section})
    return probe.check_webhook(cast(RunContext, _Ctx(folder)), f"webhook:{sub}", spec)


def write(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "FORGERY_EXAMPLES", 60)
    monkeypatch.setattr(probe, "TIMING_COUNT", 6000)
    monkeypatch.setattr(probe, "CASE_TIMEOUT", 1.0)


GITHUB = """
    import hashlib, hmac

    def verify(secret, payload, headers):
        assert secret, "no secret configured"
        given = {k.lower(): v for k, v in headers.items()}.get("x-hub-signature-256", "")
        mac = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac.encode(), given.encode())

    def verify_eq(secret, payload, headers):
        given = {k.lower(): v for k, v in headers.items()}.get("x-hub-signature-256", "")
        mac = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return mac == given  # <- eq

    def sign(secret, payload, msg_id, timestamp):
        mac = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": "sha256=" + mac}
"""


@pytest.mark.slow
def test_a_github_verifier_holds_and_one_with_eq_fails_constant_time(
    tmp_path: Path, quick: None
) -> None:
    write(tmp_path, "gh", GITHUB)
    section = {"scheme": "github", "verify": "gh:verify", "sign": "gh:sign"}
    for sub in ("vectors", "forgery", "constant-time"):
        verdict = check(tmp_path, sub, **section)
        assert verdict.status == "holds", (sub, verdict.evidence)
    verdict = check(tmp_path, "constant-time", **{**section, "verify": "gh:verify_eq"})
    assert verdict.status == "fails"
    line = next(i for i, t in enumerate(GITHUB.splitlines(), 1) if t.endswith("# <- eq"))
    assert f"compared with == at gh.py:{line}" in verdict.evidence
    assert "no hmac.compare_digest call saw the signature" in verdict.evidence


STRIPE = """
    import hashlib, hmac, time

    def _parts(header):
        items = [i.split("=", 1) for i in header.split(",")]
        return [v for k, v in items if k == "t"], [v for k, v in items if k == "v1"]

    def verify(secret, payload, headers):
        assert secret, "no secret configured"
        stamps, sigs = _parts(headers.get("Stripe-Signature", ""))
        if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit():
            return False
        if abs(time.time() - int(stamps[0])) > 300:
            return False
        mac = hmac.new(secret.encode(), stamps[0].encode() + b"." + payload, hashlib.sha256)
        return any(hmac.compare_digest(mac.hexdigest(), s) for s in sigs)

    def verify_like_stripe_python(secret, payload, headers):
        assert secret, "no secret configured"
        stamps, sigs = _parts(headers.get("Stripe-Signature", ""))
        stamp = int(stamps[0])
        signed = f"{stamp:d}.".encode() + payload
        mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(mac, s) for s in sigs):
            raise ValueError("no signatures found matching the expected signature")
        if stamp < time.time() - 300:
            raise ValueError("timestamp outside the tolerance zone")
        return True
"""


@pytest.mark.slow
def test_stripe_verifiers_and_stripe_pythons_future_timestamps(tmp_path: Path, quick: None) -> None:
    write(tmp_path, "st", STRIPE)
    for sub in ("vectors", "forgery", "timestamps", "rotation", "constant-time"):
        verdict = check(tmp_path, sub, scheme="stripe", verify="st:verify")
        assert verdict.status == "holds", (sub, verdict.evidence)
    lenient = {"scheme": "stripe", "verify": "st:verify_like_stripe_python"}
    timestamps = check(tmp_path, "timestamps", **lenient)
    assert timestamps.status == "fails"
    assert "accepted a delivery signed 306 s ahead (in the future)" in timestamps.evidence
    assert "so does the stripe library" in timestamps.evidence
    # int() takes "+T", "0T", "T_...", non-ASCII digits: another spelling of the signed second
    forgery = check(tmp_path, "forgery", **lenient)
    assert forgery.status == "holds", forgery.evidence
    assert "note: verify also accepts 4 of 9 other spellings" in forgery.evidence
    assert "timestamp with a plus sign: '+" in forgery.evidence
    spellings = ["with a plus sign", "with a leading zero", "with underscores", "in Arabic-Indic"]
    expected = [f"timestamp {s}" for s in spellings]
    expected[-1] += " digits"
    assert forgery.measured["accepted_spellings"] == expected
    strict = check(tmp_path, "malleability", **lenient, strict=True)
    assert strict.status == "fails"
    assert strict.evidence.startswith("verify accepted 4 of 9 other spellings")
    assert all(f"\n  {label}: " in strict.evidence for label in expected)
    assert check(tmp_path, "malleability", scheme="stripe", verify="st:verify").status == "holds"
    assert check(tmp_path, "vectors", **lenient).status == "holds"


HMAC = """
    import hashlib, hmac

    def verify(secret, payload, headers):
        assert secret, "no secret configured"
        mac = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, headers.get("X-Signature", ""))

    def verify_half(secret, payload, headers):
        mac = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac[:32], headers.get("X-Signature", "")[:32])

    def verify_fromhex(secret, payload, headers):
        assert secret, "no secret configured"
        mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
        try:
            given = bytes.fromhex(headers.get("X-Signature", ""))  # upper case, spaces: fine
        except ValueError:
            return False
        return hmac.compare_digest(mac, given)
"""


@pytest.mark.slow
def test_hmac_sha256_and_a_verifier_that_checks_half_the_mac(tmp_path: Path, quick: None) -> None:
    write(tmp_path, "hm", HMAC)
    section = {"scheme": "hmac-sha256", "verify": "hm:verify", "header": "X-Signature"}
    for sub in ("vectors", "forgery", "constant-time"):
        verdict = check(tmp_path, sub, **section)
        assert verdict.status == "holds", (sub, verdict.evidence)
    half = check(tmp_path, "forgery", **{**section, "verify": "hm:verify_half"})
    assert half.status == "fails"
    assert "truncated to half" in half.evidence
    # hypothesis found a tampered MAC and shrank it
    assert half.measured["property_accepted"] is True
    assert "the smallest tampered delivery accepted (hypothesis, seed" in half.evidence
    assert check(tmp_path, "malleability", **section, strict=True).status == "holds"

    lenient = {**section, "verify": "hm:verify_fromhex"}
    forgery = check(tmp_path, "forgery", **lenient)
    assert forgery.status == "holds", forgery.evidence
    spellings = ["the hex digest in upper case", "a space inside the hex"]
    assert forgery.measured["accepted_spellings"] == spellings
    assert "note: verify also accepts 2 of 2 other spellings" in forgery.evidence
    strict = check(tmp_path, "malleability", **lenient, strict=True)
    assert strict.status == "fails"
    assert strict.measured["accepted_spellings"] == spellings


BROKEN = """
    import os, sys, time

    SECRET_SEEN = []

    def hangs(secret, payload, headers):
        if not headers.get("X-Signature"):
            while True:
                time.sleep(0.05)  # <- stuck
        return True

    def crashes(secret, payload, headers):
        if not headers.get("X-Signature"):
            os._exit(3)
        return True

    def talks(secret, payload, headers):
        print("verify got the secret", secret, file=sys.stderr)
        raise ValueError(f"bad signature for secret {secret}")

    def validate_connects(url):
        import socket
        socket.create_connection(("127.0.0.1", int(os.environ["LISTENER_PORT"])), timeout=1)
        return True

    def refuses_everything(url):
        return False
"""


@pytest.mark.slow
def test_a_hang_costs_the_sub_claim_with_the_stack(tmp_path: Path, quick: None) -> None:
    write(tmp_path, "broken", BROKEN)
    section = {"scheme": "hmac-sha256", "header": "X-Signature"}
    started = time.monotonic()
    verdict = check(tmp_path, "forgery", **section, verify="broken:hangs")
    assert time.monotonic() - started < 30
    assert verdict.status == "fails"
    assert verdict.evidence.startswith("hangs: verify (")
    line = next(i for i, t in enumerate(BROKEN.splitlines(), 1) if t.endswith("# <- stuck"))
    assert f"stuck at broken.py:{line} in hangs" in verdict.evidence
    assert "Thread" in verdict.details

    crashed = check(tmp_path, "forgery", **section, verify="broken:crashes")
    assert crashed.status == "fails" and "killed its interpreter" in crashed.evidence


@pytest.mark.slow
def test_the_secret_never_reaches_the_verdict(tmp_path: Path, quick: None) -> None:
    write(tmp_path, "broken", BROKEN)
    verdict = check(tmp_path, "vectors", scheme="standard", verify="broken:talks")
    assert verdict.status == "fails"
    text = json.dumps(verdict.to_json())
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    for hidden in (SECRET, SECRET.removeprefix("whsec_"), key.hex()):
        assert hidden not in text
    assert "bad signature for secret ***" in text

    missing = check(tmp_path, "vectors", scheme="standard", verify="broken:nothing_here")
    assert missing.status == "error"
    assert missing.evidence.startswith("could not import broken:nothing_here: builtins.Attrib")


@pytest.mark.slow
def test_the_secret_is_in_no_file_the_child_is_given(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "gh", GITHUB)
    specs: list[str] = []
    spawn = processes.spawn  # the `spawned` fixture's, which counts the children

    def reading_spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        specs.append(Path(argv[-1]).read_text())  # the serving child's spec file
        return spawn(argv, **kwargs)

    monkeypatch.setattr(processes, "spawn", reading_spawn)
    verdict = check(tmp_path, "vectors", scheme="github", verify="gh:verify", sign="gh:sign")
    assert verdict.status == "holds", verdict.evidence
    assert len(specs) == 1 and '"preload"' in specs[0] and "gh:sign" in specs[0]
    assert SECRET not in specs[0] and SECRET.removeprefix("whsec_") not in specs[0]


@pytest.mark.slow
def test_the_url_validator_runs_sandboxed(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "broken", BROKEN)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        monkeypatch.setenv("LISTENER_PORT", str(listener.getsockname()[1]))
        section = {"scheme": "standard", "verify": "broken:talks"}
        verdict = check(
            tmp_path, "url-validator", **section, url_validator="broken:validate_connects"
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    assert verdict.status == "fails"
    assert "it tried to reach the network (socket.connect): refused" in verdict.evidence
    assert "refused 4 of 4 ordinary public URLs" in verdict.evidence

    nothing = check(tmp_path, "url-validator", **section, url_validator="broken:refuses_everything")
    assert nothing.status == "fails"
    assert "refused 4 of 4 ordinary public URLs" in nothing.evidence
    assert "allowed" not in nothing.evidence


# -- the detection matrix, through `signoff run` -----------------------------------------------

REGRESSIONS = {
    "webhook_eq_compare": ("constant-time", "the signature is compared with == at reports_app/"),
    "webhook_early_exit": ("constant-time", "verify takes longer the more of the signature"),
    "webhook_no_timestamp": ("timestamps", "accepted a delivery signed 10 years ago (stale)"),
    "webhook_missing_sig": ("forgery", "no signature header: (no header) -> returned True"),
    "webhook_literal_ip": ("url-validator", "http://2130706433/hook (decimal IPv4: 127.0.0.1)"),
}


def run_claims(path: Path, report: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    run = signoff("run", str(path), "--report-dir", str(report), timeout=240)
    return run, claims(report)


@pytest.mark.slow
def test_the_reference_target_holds_every_webhook_claim(tmp_path: Path) -> None:
    run, found = run_claims(REPORTS / "webhooks.toml", tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # its verify is strict: webhooks.toml says so, and malleability holds
    assert statuses(tmp_path) == {f"webhook:{s}": "holds" for s in (*SUBS, "malleability")}
    assert found["webhook:malleability"]["measured"]["cases"] == 13
    assert found["webhook:constant-time"]["measured"]["timed_calls"] >= 2 * 1000
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    for report in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = report.read_text(errors="replace")
        for hidden in (SECRET, SECRET.removeprefix("whsec_"), key.hex()):
            assert hidden not in text, report.name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_each_regression_fails_exactly_its_sub_claim(name: str, tmp_path: Path) -> None:
    sub, evidence = REGRESSIONS[name]
    run, found = run_claims(REPORTS / "regressions" / name / "signoff.toml", tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    expected = {f"webhook:{s}": "fails" if s == sub else "holds" for s in SUBS}
    assert statuses(tmp_path) == expected, {k: v["evidence"] for k, v in found.items()}
    assert evidence in found[f"webhook:{sub}"]["evidence"]


@pytest.mark.slow
def test_the_standardwebhooks_package_holds_with_a_note_on_forgery(tmp_path: Path) -> None:
    pytest.importorskip("standardwebhooks")
    run, found = run_claims(REPORTS / "adapters" / "standardwebhooks.toml", tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    subs = ("vectors", "forgery", "timestamps", "rotation", "constant-time")
    assert statuses(tmp_path) == {f"webhook:{s}": "holds" for s in subs}
    forgery = found["webhook:forgery"]
    assert forgery["measured"]["accepted"] == 0
    assert forgery["measured"]["property_accepted"] is False
    assert forgery["measured"]["accepted_spellings"] == STANDARDWEBHOOKS_SPELLINGS
    assert "note: verify also accepts 11 of 13 other spellings" in forgery["evidence"]
    assert all(f"\n  {label}: " in forgery["evidence"] for label in STANDARDWEBHOOKS_SPELLINGS)


@pytest.mark.slow
def test_the_standardwebhooks_package_fails_malleability_when_strict(tmp_path: Path) -> None:
    pytest.importorskip("standardwebhooks")
    path = REPORTS / "adapters" / "standardwebhooks-strict.toml"
    run = signoff("run", str(path), "--only", "webhook", "--report-dir", str(tmp_path))
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    found = claims(tmp_path)
    subs = ("vectors", "forgery", "malleability", "timestamps", "rotation", "constant-time")
    assert list(found) == [f"webhook:{s}" for s in subs]
    assert {k: v["status"] for k, v in found.items() if v["status"] != "holds"} == {
        "webhook:malleability": "fails"
    }
    malleability = found["webhook:malleability"]
    assert malleability["measured"]["accepted_spellings"] == STANDARDWEBHOOKS_SPELLINGS
    lines = malleability["evidence"].splitlines()
    assert lines[0] == (
        "verify accepted 11 of 13 other spellings of a validly signed delivery (strict = true):"
    )
    assert [line.split(":")[0].strip() for line in lines[1:12]] == STANDARDWEBHOOKS_SPELLINGS
    assert "see webhook:malleability" in found["webhook:forgery"]["evidence"]
    assert "spellings" not in found["webhook:forgery"]["measured"]


STRICT_FILE = """
[target]
name = "t"
[webhooks]
scheme = "standard"
verify = "a:b"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""


def test_strict_adds_the_malleability_sub_claim_and_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "signoff.toml"
    path.write_text(STRICT_FILE)
    ids = [ref.id for ref in load_claims(path).claims()]
    default = ("vectors", "forgery", "timestamps", "rotation", "constant-time")
    assert ids == [f"webhook:{s}" for s in default]
    path.write_text(STRICT_FILE + "strict = true\n")
    ids = [ref.id for ref in load_claims(path).claims()]
    assert ids[:3] == ["webhook:vectors", "webhook:forgery", "webhook:malleability"]
    assert len(ids) == 6
    checked = signoff("check", str(path), timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    path.write_text(STRICT_FILE + 'strict = "yes"\n')
    bad = signoff("check", str(path), timeout=60)
    assert bad.returncode == 2
    assert "webhooks.strict: expected true or false" in bad.stdout + bad.stderr
    assert "whsec_" not in bad.stdout + bad.stderr
