"""[webhooks] claims: signatures that cannot be forged or replayed, compared in constant time, and
a URL validator that refuses private targets.

Each sub-claim starts one probe child (child.py) in the target's interpreter and sends it
deliveries one at a time, each with a deadline; a hang or a crash of the target's code fails the
sub-claim with the stack where it was stuck. The deliveries are built by signoff's own
implementation of the scheme (webhook_schemes), the forgeries listed in webhook_cases plus
tampered ones generated with hypothesis (the smallest accepted one is shown). "Accepted" means
verify returned anything but False without raising. The secret travels through the child's
request pipe only and is scrubbed from everything the child sends back.

webhook:forgery fails only for what a sender without the secret could get accepted. Accepted
re-spellings of a validly signed signature or timestamp (malleability: webhook_cases says where
the line is drawn, "T.5" included) are a note on it, or with `strict = true` the sub-claim
webhook:malleability, which exists only then.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from signoff.claims.model import ClaimRef, Webhooks
from signoff.context import RunContext
from signoff.engine.evidence import stuck_frame
from signoff.engine.hypothesis_home import own_hypothesis_home
from signoff.engine.runner import TargetProcess
from signoff.kinds.webhooks.cases import (
    ALLOW,
    DNS_TABLE,
    REFUSE,
    Case,
    control,
    forgery_cases,
    malleability_cases,
    msg_id,
    needles,
    own_cases,
    rotation_cases,
    short,
    timestamp_cases,
    vector_cases,
)
from signoff.kinds.webhooks.child_handle import ChildGone, ImportFailed, WebhookChild
from signoff.kinds.webhooks.schemes import (
    Message,
    Scheme,
    SecretFormatError,
    header_value,
    scheme_for,
    vectors_for,
)
from signoff.kinds.webhooks.timing import CROPS, THRESHOLD, TimingResult, dudect
from signoff.report import live
from signoff.units import format_duration
from signoff.verdict import Verdict

CASE_TIMEOUT = 5.0  # one call of verify, sign or the validator
SUBCLAIM_BUDGET = 120.0  # every call of one sub-claim together
FORGERY_EXAMPLES = 300  # tampered deliveries generated per run
TIMING_COUNT = 20_000  # timed calls of verify (after the warm-up)
TIMING_WARMUP = 1_000
TIMING_MAX_S = 10.0  # a slow verify gets fewer timed calls, not a longer claim
TIMING_MIN_PER_CLASS = 1_000
SHOWN = 8  # failing cases listed in the evidence
MIN_SECRET = 4  # characters: a shorter secret could not be scrubbed from the evidence

Judge = Callable[["_Probe", Verdict], None]


def check_webhook(ctx: RunContext, claim_id: str, spec: Webhooks) -> Verdict:
    started = time.monotonic()
    sub = claim_id.partition(":")[2]
    scheme = scheme_for(spec.scheme, spec.header)
    verdict = Verdict(claim_id, "webhook", "holds", budget={"scheme": spec.scheme})
    if sub == "timestamps":
        verdict.budget["tolerance_s"] = spec.tolerance
    elif sub == "url-validator":
        verdict.budget = {"must_refuse": len(REFUSE), "must_allow": len(ALLOW)}
    secret = spec.secret.get_secret_value()
    judge = _JUDGES.get(sub)
    problem = None if judge else f"no such webhook sub-claim: {sub!r}"
    if len(secret) < MIN_SECRET:
        problem = (
            f"[webhooks] secret: fewer than {MIN_SECRET} characters; signoff keeps secrets out "
            "of its reports by replacing them, and cannot do that with one this short"
        )
    try:
        scheme.key(secret)
    except SecretFormatError as exc:
        problem = f"[webhooks] secret: {exc}"
    if problem is not None:
        verdict.status, verdict.evidence = "error", problem
    elif judge is not None:
        with ctx.claim_setup(spec.env) as setup:
            probe = _Probe(setup.target, spec, scheme, secret)
            try:
                judge(probe, verdict)
            except ImportFailed as exc:
                verdict.status = "error"
                verdict.evidence = f"could not import {exc.ref}: {exc.reason}"
                verdict.details = exc.details
            except ChildGone as gone:
                _gone(verdict, gone, setup.target.pythonpath)
    verdict.duration_s = time.monotonic() - started
    return verdict


def _gone(verdict: Verdict, gone: ChildGone, roots: Sequence[str]) -> None:
    verdict.status = "fails"
    if gone.outcome == "hung":
        lines = [f"hangs: {gone.what} still running after {format_duration(gone.waited)}"]
        frame = stuck_frame(gone.stacks, roots)
        if frame:
            lines.append(f"stuck at {frame}")
        verdict.evidence = "\n".join(lines)
        verdict.details = "stacks of every thread at the deadline:\n" + (gone.stacks or "")
    elif gone.outcome == "slow":
        verdict.evidence = (
            f"too slow: {gone.stderr}, more than the {format_duration(gone.waited)} a "
            f"sub-claim may take (stopped at {gone.what})"
        )
    else:
        verdict.evidence = f"{gone.what} killed its interpreter"
        verdict.details = gone.stderr
    verdict.measured["outcome"] = gone.outcome


@dataclass
class _Probe:
    target: TargetProcess
    spec: Webhooks
    scheme: Scheme
    secret: str

    @contextlib.contextmanager
    def child(
        self,
        refs: Mapping[str, str],
        *,
        probes: bool = False,
        sandbox: Mapping[str, list[str]] | None = None,
    ) -> Iterator[WebhookChild]:
        key = self.scheme.key(self.secret)
        hidden = [self.secret, self.secret.removeprefix("whsec_"), key.hex()]
        hidden.append(base64.b64encode(key).decode())
        with WebhookChild(
            self.target,
            refs,
            secrets=hidden,
            probes=probes,
            sandbox=sandbox,
            budget=SUBCLAIM_BUDGET,
        ) as child:
            yield child

    def verify(
        self,
        child: WebhookChild,
        case: Case,
        *,
        spy: Sequence[bytes] = (),
        probe: bool = False,
    ) -> dict[str, Any]:
        request = {
            "op": "verify",
            "secret": self.secret if case.secret is None else case.secret,
            "payload": base64.b64encode(case.payload).decode(),
            "headers": case.headers,
            "now": case.now,
            "needles": [n.hex() for n in spy],
            "probe_header": self.scheme.header if probe else None,
        }
        live.count("cases")
        return child.call(request, timeout=CASE_TIMEOUT, what=f"verify ({case.label})")

    def sign(self, child: WebhookChild, secret: str, msg: Message, what: str) -> dict[str, Any]:
        request = {
            "op": "sign",
            "secret": secret,
            "payload": base64.b64encode(msg.payload).decode(),
            "msg_id": msg.msg_id,
            "timestamp": msg.timestamp,
        }
        return child.call(request, timeout=CASE_TIMEOUT, what=f"sign ({what})")


def _ended(answer: Mapping[str, Any]) -> str:
    if answer.get("outcome") == "raised":
        text = f"raised {str(answer.get('exc_type', '?')).replace(':', '.')}"
        if answer.get("exc_message"):
            text += f": {short(str(answer['exc_message']), 80)}"
        if answer.get("where"):
            text += f" (at {answer['where']})"
        return text
    return f"returned {answer.get('result', '?')}"


def _listed(lines: Sequence[str], total_word: str = "") -> list[str]:
    shown = [f"  {line}" for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"  ... and {len(lines) - SHOWN} more{total_word}")
    return shown


def _now() -> int:
    return int(time.time())


def _require_control(probe: _Probe, child: WebhookChild, verdict: Verdict, now: int) -> bool:
    """A valid delivery must be accepted, or rejections prove nothing (the claim is `error`)."""
    case = control(probe.scheme, probe.secret, now)
    answer = probe.verify(child, case)
    if answer["accepted"]:
        return True
    verdict.status = "error"
    verdict.evidence = (
        f"could not check: verify rejected a valid delivery signed by signoff "
        f"({_ended(answer)}), so its rejections prove nothing; see webhook:vectors"
    )
    return False


# -- webhook:vectors --------------------------------------------------------------------------


def _vectors(probe: _Probe, verdict: Verdict) -> None:
    spec, scheme = probe.spec, probe.scheme
    refs = {"verify": spec.verify} | ({"sign": spec.sign} if spec.sign else {})
    now = _now()
    problems: list[str] = []
    cases = vector_cases(scheme) + own_cases(scheme, probe.secret, now)
    with probe.child(refs) as child:
        vector_rejected = own_accepted = 0
        for case in cases:
            answer = probe.verify(child, case)
            if answer["accepted"] == case.accept:
                own_accepted += case.kind == "own"
                continue
            if case.kind == "vector" and case.accept:
                vector_rejected += 1
            verb = "rejected" if case.accept else "accepted"
            problems.append(f"{verb} {case.label}: {case.detail} -> {_ended(answer)}")
        signed = _check_sign(probe, child, now, problems) if spec.sign else 0
    verdict.measured = {"cases": len(cases) + signed, "failed": len(problems)}
    if not problems:
        published = vectors_for(scheme)
        valid = sum(v.valid for v in published) + (scheme.name == "standard")
        invalid = sum(not v.valid for v in published)
        text = (
            f"verify accepted the {valid} published valid deliveries and signoff's own "
            f"signatures over {len(cases) - len(vector_cases(scheme))} raw bodies"
        )
        if invalid:
            text += f", and rejected the {invalid} published invalid ones"
        if spec.sign:
            text += (
                f"; sign reproduces the published signatures and verify accepts what sign makes "
                f"({signed} checks)"
            )
        verdict.evidence = text
        return
    verdict.status = "fails"
    lines = [f"{len(problems)} of {verdict.measured['cases']} checks failed:", *_listed(problems)]
    if vector_rejected and own_accepted and scheme.timestamps:
        lines.append(
            "the published vectors are old: signoff set verify's clock to their timestamp "
            "through time.time and datetime.now; a verifier that reads another clock sees "
            "today's date and calls them stale"
        )
    verdict.evidence = "\n".join(lines)


def _check_sign(probe: _Probe, child: WebhookChild, now: int, problems: list[str]) -> int:
    """sign's headers: the published signature for each vector, and accepted by verify."""
    scheme, checks = probe.scheme, 0
    jobs: list[tuple[str, str, Message, str | None]] = [
        (v.source, v.secret, v.msg, v.signature) for v in vectors_for(scheme) if v.valid
    ]
    own = Message(b'{"event": "task.completed"}', msg_id("Sign"), now)
    jobs.append(("the claims' secret", probe.secret, own, None))
    for what, secret, msg, published in jobs:
        checks += 1
        answer = probe.sign(child, secret, msg, what)
        headers = answer.get("headers")
        if answer["outcome"] != "returned" or not isinstance(headers, dict):
            problems.append(f"sign for {what}: {_ended(answer)}, not a dict of headers")
            continue
        value = scheme.signature_value(headers)
        expected = published or scheme.token(scheme.digest(secret, msg))
        if not _carries(scheme, value, expected, msg):
            problems.append(
                f"sign for {what}: {scheme.header} is {short(value, 70)!r}, expected it to carry "
                f"{short(expected, 70)!r}"
            )
        now_for = float(msg.timestamp + 1) if scheme.timestamps else None
        case = Case(
            f"sign's headers for {what}", "sign", msg.payload, headers, True, secret, now_for
        )
        checks += 1
        verified = probe.verify(child, case)
        if not verified["accepted"]:
            problems.append(f"verify rejected sign's own headers for {what}: {_ended(verified)}")
    return checks


def _carries(scheme: Scheme, value: str, token: str, msg: Message) -> bool:
    if scheme.name == "standard":
        return token in value.split(" ")
    if scheme.name == "stripe":
        items = value.split(",")
        return f"t={msg.timestamp}" in items and token in items
    return value == token


# -- webhook:forgery --------------------------------------------------------------------------

_KIND_MEANING = {
    "forged": "forged (other bytes signed, or not the valid MAC)",
    "missing": "missing signature or headers",
    "tag": "another scheme's or version's tag",
    "json": "the body re-spelled as the same JSON under the old signature",
}
_WHY_MALLEABILITY = (
    "each is a validly signed delivery with its signature's bytes or its timestamp's second "
    "written another way: nobody without the secret gets anything accepted that was not "
    "signed, but one delivery has many accepted spellings (a replay cache keyed on the "
    "signature or timestamp header as sent sees a replay in another spelling as new)"
)


def _forgery(probe: _Probe, verdict: Verdict) -> None:
    """Only what a sender without the secret could get accepted fails this sub-claim. Accepted
    re-spellings of a valid signature or timestamp (webhook_cases explains the line) are a note
    here, or webhook:malleability's business when [webhooks] is strict."""
    scheme, strict = probe.scheme, probe.spec.strict
    now = _now()
    cases = forgery_cases(scheme, probe.secret, now)
    spellings = [] if strict else malleability_cases(scheme, probe.secret, now)
    with probe.child({"verify": probe.spec.verify}) as child:
        if not _require_control(probe, child, verdict, now):
            return
        accepted = _accepted(probe, child, cases)
        found, examples, seed = _property_forgeries(probe, child, now)
        malleable = _accepted(probe, child, spellings)
    verdict.measured = {
        "cases": len(cases),
        "accepted": len(accepted),
        "property_examples": examples,
        "property_accepted": found is not None,
        "seed": seed,
    }
    if not strict:
        verdict.measured |= {
            "spellings": len(spellings),
            "spellings_accepted": len(malleable),
            "accepted_spellings": [c.label for c, _ in malleable],
        }
    lines: list[str] = []
    if not accepted and found is None:
        lines.append(
            f"verify rejected all {len(cases)} forged and missing signatures, and "
            f"{examples} tampered deliveries (hypothesis, seed {seed})"
        )
    else:
        verdict.status = "fails"
        if accepted:
            lines.append(f"verify accepted {len(accepted)} of {len(cases)} forged deliveries:")
            lines += _listed(
                [f"{c.label}: {c.detail} -> {_ended(a)}" for c, a in accepted], " accepted"
            )
            kinds = sorted({c.kind for c, _ in accepted})
            lines.append("kinds: " + "; ".join(_KIND_MEANING[k] for k in kinds))
        if found is not None:
            tampered, answer = found
            lines.append(
                f"the smallest tampered delivery accepted (hypothesis, seed {seed}): "
                f"{tampered.description} -> {_ended(answer)}"
            )
    if strict:
        lines.append("other spellings of valid signatures and timestamps: see webhook:malleability")
    elif malleable:
        lines.append(
            f"note: verify also accepts {len(malleable)} of {len(spellings)} other spellings of "
            "a validly signed delivery; malleability, not forgery (strict = true in [webhooks] "
            "makes it the failing claim webhook:malleability):"
        )
        lines += [f"  {c.label}: {c.detail} -> {_ended(a)}" for c, a in malleable]
        lines.append(_WHY_MALLEABILITY)
    elif verdict.status == "holds":
        lines[0] += f"; also all {len(spellings)} other spellings of valid {_what(scheme)}"
    else:
        lines.append(f"it rejected all {len(spellings)} other spellings of valid {_what(scheme)}")
    verdict.evidence = "\n".join(lines)


# -- webhook:malleability ---------------------------------------------------------------------


def _answered(
    probe: _Probe,
    child: WebhookChild,
    cases: list[Case],
    keep: Callable[[Case, dict[str, Any]], bool],
) -> list[tuple[Case, dict[str, Any]]]:
    """Each case sent to `verify`; those whose answer `keep` picks, with the answer."""
    found = []
    for case in cases:
        answer = probe.verify(child, case)
        if keep(case, answer):
            found.append((case, answer))
    return found


def _accepted(
    probe: _Probe, child: WebhookChild, cases: list[Case]
) -> list[tuple[Case, dict[str, Any]]]:
    """The cases `verify` accepted, each with its answer."""
    return _answered(probe, child, cases, lambda case, answer: bool(answer["accepted"]))


def _malleability(probe: _Probe, verdict: Verdict) -> None:
    """With `strict = true`: a verifier accepts each signature in its one canonical spelling
    and each timestamp as the decimal digits that were signed, nothing else. Every accepted
    spelling is named (there are at most 13)."""
    scheme = probe.scheme
    now = _now()
    cases = malleability_cases(scheme, probe.secret, now)
    with probe.child({"verify": probe.spec.verify}) as child:
        if not _require_control(probe, child, verdict, now):
            return
        accepted = _accepted(probe, child, cases)
    verdict.measured = {
        "cases": len(cases),
        "accepted": len(accepted),
        "accepted_spellings": [c.label for c, _ in accepted],
    }
    if not accepted:
        verdict.evidence = (
            f"verify rejected all {len(cases)} other spellings of valid {_what(scheme)} "
            f"({_spelling_kinds(scheme)})"
        )
        return
    verdict.status = "fails"
    verdict.evidence = "\n".join(
        [
            f"verify accepted {len(accepted)} of {len(cases)} other spellings of a validly "
            "signed delivery (strict = true):",
            *[f"  {c.label}: {c.detail} -> {_ended(a)}" for c, a in accepted],
            _WHY_MALLEABILITY,
        ]
    )


def _what(scheme: Scheme) -> str:
    return "signatures and timestamps" if scheme.timestamps else "signatures"


def _spelling_kinds(scheme: Scheme) -> str:
    if scheme.encoding == "base64":
        text = "lenient base64: outside the alphabet, after the padding, extra or no padding, "
        text += "unused bits, URL-safe"
    else:
        text = "hex in upper case or with a space"
    if scheme.timestamps:
        text += "; timestamps as T.0, T.5, +T, 0T, with underscores, exponents, non-ASCII digits"
    return text


@dataclass(frozen=True)
class Tampered:
    description: str
    payload: bytes
    headers: dict[str, str]


class _Abort(BaseException):
    """Ends a hypothesis run at once (hypothesis catches Exception, not this)."""


_JSON_SCALARS = st.none() | st.booleans() | st.integers(-1000, 10**6) | st.text(max_size=8)
_JSON_BODIES = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6), _JSON_SCALARS, max_size=4
).map(lambda d: json.dumps(d, ensure_ascii=False).encode())
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_HEX = "0123456789abcdef"


def tamperings(
    scheme: Scheme, secret: str, now: int, tolerance: float
) -> st.SearchStrategy[Tampered]:
    """A validly signed delivery with one thing changed: the payload, the id, the timestamp
    (still fresh), the signature's bytes or characters, or the key. Each must be rejected."""
    kinds = ["payload", "signature bytes", "signature text", "key"]
    if scheme.name == "standard":
        kinds.append("id")
    if scheme.timestamps:
        kinds.append("timestamp")

    @st.composite
    def build(draw: st.DrawFn) -> Tampered:
        body = draw(_JSON_BODIES)
        ident = "msg_" + draw(st.text(_B64[:62], min_size=1, max_size=12))
        msg = Message(body, ident, now)
        raw = scheme.digest(secret, msg)
        kind = draw(st.sampled_from(kinds))
        payload, headers = body, scheme.headers(msg, [scheme.token(raw)])
        if kind == "payload":
            payload, how = _tamper_bytes(draw, body)
            what = f"payload {short(repr(body), 50)} sent as {short(repr(payload), 50)} ({how})"
        elif kind == "signature bytes":
            forged, how = _tamper_bytes(draw, raw)
            headers = scheme.headers(msg, [scheme.token(forged)])
            what = f"the MAC's bytes {how}: {short(scheme.signature_value(headers), 60)!r}"
        elif kind == "signature text":
            text = scheme.encode(raw)
            alphabet = _B64 if scheme.encoding == "base64" else _HEX
            last = (len(raw) * 8) // 6 - 1 if scheme.encoding == "base64" else len(text) - 1
            i = draw(st.integers(0, last))
            char = draw(st.sampled_from([c for c in alphabet if c != text[i]]))
            spelled = text[:i] + char + text[i + 1 :]
            headers = scheme.headers(msg, [scheme.tag + spelled])
            what = (
                f"signature character {i} changed: {short(scheme.signature_value(headers), 60)!r}"
            )
        elif kind == "key":
            key = draw(st.binary(min_size=0, max_size=64).filter(lambda k: k != scheme.key(secret)))
            headers = scheme.headers(msg, [scheme.token(scheme.digest_with_key(key, msg))])
            what = f"signed with another key ({len(key)} bytes)"
        elif kind == "id":
            new_id, how = _tamper_text(draw, ident)
            headers = {**headers, "webhook-id": new_id}
            what = f"webhook-id {ident!r} sent as {new_id!r} ({how}) under the old signature"
        else:
            half = max(1, int(tolerance // 2))
            delta = draw(st.integers(-half, half).filter(lambda d: d != 0))
            headers = _restamp(scheme, headers, now + delta)
            what = f"timestamp moved by {delta:+d} s (still fresh) under the old signature"
        return Tampered(what, payload, headers)

    return build()


def _tamper_bytes(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    ops = ["append", "insert", "replace"] + (["flip", "delete", "truncate"] if data else [])
    op = draw(st.sampled_from(ops))
    if op == "append":
        return data + draw(st.binary(min_size=1, max_size=4)), "bytes appended"
    if op == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i:], f"a byte inserted at {i}"
    if op == "replace":
        other = draw(
            st.binary(min_size=len(data), max_size=len(data) + 2).filter(lambda b: b != data)
        )
        return other, "replaced"
    i = draw(st.integers(0, len(data) - 1))
    if op == "flip":
        bit = draw(st.integers(0, 7))
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[
            i + 1 :
        ], f"bit {bit} of byte {i} flipped"
    if op == "delete":
        return data[:i] + data[i + 1 :], f"byte {i} deleted"
    return data[:i], f"cut to {i} bytes"


def _tamper_text(draw: st.DrawFn, text: str) -> tuple[str, str]:
    i = draw(st.integers(0, len(text) - 1))
    op = draw(st.sampled_from(["change", "append", "delete"]))
    if op == "append":
        return text + draw(st.sampled_from(_B64[:62])), "a character appended"
    if op == "delete" and len(text) > 1:
        return text[:i] + text[i + 1 :], f"character {i} deleted"
    char = draw(st.sampled_from([c for c in _B64[:62] if c != text[i]]))
    return text[:i] + char + text[i + 1 :], f"character {i} changed"


def _restamp(scheme: Scheme, headers: dict[str, str], timestamp: int) -> dict[str, str]:
    if scheme.name == "standard":
        return {**headers, "webhook-timestamp": str(timestamp)}
    value = headers[scheme.header]
    items = [f"t={timestamp}" if i.startswith("t=") else i for i in value.split(",")]
    return {**headers, scheme.header: ",".join(items)}


def _property_forgeries(
    probe: _Probe, child: WebhookChild, now: int
) -> tuple[tuple[Tampered, dict[str, Any]] | None, int, int]:
    """Run the tampered deliveries; (the smallest accepted one and its answer, examples, seed)."""
    seed = random.SystemRandom().randrange(2**32)
    found: list[tuple[Tampered, dict[str, Any]]] = []
    gone: list[ChildGone] = []
    count = 0
    strategy = tamperings(probe.scheme, probe.secret, now, probe.spec.tolerance)

    @own_hypothesis_home
    @settings(
        max_examples=FORGERY_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def prop(tampered: Tampered) -> None:
        nonlocal count
        count += 1
        case = Case(
            "a tampered delivery", "forged", tampered.payload, tampered.headers, False, now=now
        )
        try:
            answer = probe.verify(child, case)
        except ChildGone as exc:
            gone.append(exc)
            raise _Abort() from None
        if answer["accepted"]:
            found.append((tampered, answer))
            raise AssertionError(tampered.description)

    try:
        prop()
    except _Abort:
        raise gone[0] from None
    except Exception:  # the failure hypothesis re-raises after shrinking (or Flaky)
        if not found:
            raise
    return (found[-1] if found else None), count, seed


# -- webhook:timestamps -----------------------------------------------------------------------


def _timestamps(probe: _Probe, verdict: Verdict) -> None:
    scheme, tolerance = probe.scheme, probe.spec.tolerance
    now = _now()
    cases = timestamp_cases(scheme, probe.secret, now, tolerance)
    with probe.child({"verify": probe.spec.verify}) as child:
        if not _require_control(probe, child, verdict, now):
            return
        wrong = _answered(
            probe, child, cases, lambda case, answer: answer["accepted"] != case.accept
        )
    verdict.measured = {"cases": len(cases), "wrong": len(wrong)}
    tol = format_duration(tolerance)
    if not wrong:
        verdict.evidence = (
            f"rejected stale and future timestamps beyond the {tol} tolerance "
            f"({len(cases) - 2} cases, up to 10 years), accepted ones within it either way"
        )
        return
    verdict.status = "fails"
    lines = [f"{len(wrong)} of {len(cases)} timestamps handled wrong (tolerance {tol}):"]
    lines += _listed(
        [
            f"{'rejected' if c.accept else 'accepted'} a delivery {c.label}: {_ended(a)}"
            for c, a in wrong
        ]
    )
    kinds = {c.kind for c, _ in wrong}
    if "future" in kinds and "stale" not in kinds:
        lines.append(
            "it accepts future timestamps beyond the tolerance: so does the stripe library "
            "(stripe-python checks only stale ones), but a delivery signed for later can then "
            "be replayed until that time"
        )
    verdict.evidence = "\n".join(lines)


# -- webhook:rotation -------------------------------------------------------------------------


def _rotation(probe: _Probe, verdict: Verdict) -> None:
    now = _now()
    cases = rotation_cases(probe.scheme, probe.secret, now)
    with probe.child({"verify": probe.spec.verify}) as child:
        if not _require_control(probe, child, verdict, now):
            return
        wrong = _answered(
            probe, child, cases, lambda case, answer: answer["accepted"] != case.accept
        )
    verdict.measured = {"cases": len(cases), "wrong": len(wrong)}
    if not wrong:
        verdict.evidence = (
            "accepted a valid signature among old keys' ones wherever it stood, and rejected "
            f"headers with none valid ({len(cases)} cases)"
        )
        return
    verdict.status = "fails"
    verdict.evidence = "\n".join(
        [
            f"{len(wrong)} of {len(cases)} multi-signature headers handled wrong:",
            *_listed(
                [
                    f"{'rejected' if c.accept else 'accepted'} {c.label}: {_ended(a)}"
                    for c, a in wrong
                ]
            ),
        ]
    )


# -- webhook:constant-time --------------------------------------------------------------------


def _constant_time(probe: _Probe, verdict: Verdict) -> None:
    scheme, secret = probe.scheme, probe.secret
    now = _now()
    msg = Message(b'{"event": "task.completed", "task_id": "ct"}', msg_id("Timing"), now)
    raw = scheme.digest(secret, msg)
    first = bytes([raw[0] ^ 0x80]) + raw[1:]  # differs from the first character on
    last = raw[:-1] + bytes([raw[-1] ^ 0x01])  # differs only in the last character
    other = random.SystemRandom().randbytes(len(raw))
    variants = {"first": first, "last": last, "random": other}
    verdict.budget["t_threshold"] = THRESHOLD
    with probe.child({"verify": probe.spec.verify}, probes=True) as child:
        if not _require_control(probe, child, verdict, now):
            return
        spied: dict[str, dict[str, Any]] = {}
        for name, forged in variants.items():
            case = Case(
                f"a signature wrong from the {name} byte"
                if name != "random"
                else "a random signature",
                "timing",
                msg.payload,
                scheme.headers(msg, [scheme.token(forged)]),
                False,
                now=now,
            )
            answer = probe.verify(child, case, spy=needles(forged, raw), probe=True)
            if answer["accepted"]:
                verdict.status = "error"
                verdict.evidence = (
                    f"could not check: verify accepted {case.label}; see webhook:forgery"
                )
                return
            spied[name] = answer
        timing = _time_it(probe, child, msg, first, last, now)
        confirmed = None
        if timing is not None and timing.leaks:
            confirmed = _confirm(probe, child, now)
    _judge_constant_time(verdict, spied, timing, confirmed)


def _confirm(probe: _Probe, child: WebhookChild, now: int) -> TimingResult | None:
    """A second timing test, to tell a leak from an artifact of the first: another message
    (so other signatures), and the two classes' headers in each other's places. An early exit
    is slower on the nearly right signature wherever it sits; a shift from where the probe's
    strings sit follows the place, and so changes sign here."""
    scheme = probe.scheme
    msg = Message(b'{"event": "task.completed", "task_id": "ct2"}', msg_id("Timing2"), now)
    raw = scheme.digest(probe.secret, msg)
    first = bytes([raw[0] ^ 0x80]) + raw[1:]
    last = raw[:-1] + bytes([raw[-1] ^ 0x01])
    return _time_it(probe, child, msg, first, last, now, swapped=True)


def _time_it(
    probe: _Probe,
    child: WebhookChild,
    msg: Message,
    first: bytes,
    last: bytes,
    now: int,
    *,
    swapped: bool = False,
) -> TimingResult | None:
    """dudect's t of verify on `last` (class 1) against `first` (class 0); `swapped` sends
    them in each other's places in the child, and turns the classes back before the test."""
    scheme = probe.scheme
    headers = [
        scheme.headers(msg, [scheme.token(first)]),  # class 0: an early exit stops at once
        scheme.headers(msg, [scheme.token(last)]),  # class 1: ...or at the last character
    ]
    request = {
        "op": "timing",
        "secret": probe.secret,
        "payload": base64.b64encode(msg.payload).decode(),
        "headers": headers[::-1] if swapped else headers,
        "count": TIMING_COUNT,
        "warmup": TIMING_WARMUP,
        "max_seconds": TIMING_MAX_S,
        "seed": random.SystemRandom().randrange(2**32),
        "now": float(now),
    }
    answer = child.call(request, timeout=TIMING_MAX_S + 20.0, what="verify, timed")
    times = [int(t) for t in answer.get("times", [])]
    classes = str(answer.get("classes", ""))
    if min(classes.count("0"), classes.count("1")) < TIMING_MIN_PER_CLASS:
        return None
    if swapped:
        classes = classes.translate(str.maketrans("01", "10"))
    return dudect(times, classes)


def _judge_constant_time(
    verdict: Verdict,
    spied: Mapping[str, Mapping[str, Any]],
    timing: TimingResult | None,
    confirmed: TimingResult | None = None,
) -> None:
    """`confirmed`: the second timing test, run when the first gave t above THRESHOLD; a leak
    is a t above it in both."""
    problems: list[str] = []
    unseen = [n for n, a in spied.items() if not any(c.get("signature") for c in a["compares"])]
    places = sorted(
        {c["where"] for a in spied.values() for c in a["compares"] if c.get("signature")}
    )
    eqs = [e for a in spied.values() for e in a.get("eqs", [])]
    eq_places = sorted({f"{e['op']} at {e['where']}" for e in eqs})
    verdict.measured = {
        "verifications_spied": len(spied),
        "compare_digest_on_signature": len(spied) - len(unseen),
        "eq_comparisons": len(eqs),
    }
    if eqs:
        problems.append(
            "the signature is compared with " + ", ".join(eq_places) + ", which stops at the first "
            "difference"
        )
    if unseen:
        others = sorted({c["where"] for n in unseen for c in spied[n]["compares"]})
        text = (
            f"no hmac.compare_digest call saw the signature in {len(unseen)} of {len(spied)} "
            "verifications of a wrong signature"
        )
        if others:
            text += f" (compare_digest was called at {', '.join(others)}, on other values)"
        problems.append(text)
    if timing is None:
        problems.append(
            f"too few timed calls: verify is too slow to time {TIMING_MIN_PER_CLASS} calls of "
            f"each class within {format_duration(TIMING_MAX_S)}"
        )
    else:
        verdict.measured |= {
            "t": round(timing.t, 2),
            "crop": timing.crop,
            "timed_calls": sum(timing.count),
            "median_ns": [round(m) for m in timing.median_ns],
        }
        if confirmed is not None:
            verdict.measured |= {
                "t_confirm": round(confirmed.t, 2),
                "median_ns_confirm": [round(m) for m in confirmed.median_ns],
            }
        if timing.leaks and confirmed is not None and confirmed.leaks:
            problems.append(
                f"verify takes longer the more of the signature matches: Welch's t = "
                f"{timing.t:.1f}, then {confirmed.t:.1f} with another message and the two "
                f"classes swapped (t > {THRESHOLD:.0f} in both fails), between signatures "
                f"wrong in the last character and wrong from the first, over "
                f"{sum(timing.count) + sum(confirmed.count)} interleaved calls (medians "
                f"{timing.median_ns[1]:.0f} ns vs {timing.median_ns[0]:.0f} ns)"
            )
        elif timing.leaks and confirmed is None:
            problems.append(
                "too few timed calls in the second timing test (the one that confirms a t of "
                f"{timing.t:.1f}): verify is too slow to time {TIMING_MIN_PER_CLASS} calls of "
                f"each class within {format_duration(TIMING_MAX_S)}"
            )
    if problems:
        verdict.status = "fails"
        verdict.evidence = "\n".join(problems)
        return
    assert timing is not None
    verdict.evidence = (
        f"the signature goes through hmac.compare_digest (at {', '.join(places)}); no == on it; "
        f"timing: t = {timing.t:.1f} (fails above {THRESHOLD:.0f}: the nearly right signature "
        f"slower) over "
        f"{sum(timing.count)} calls, crops {', '.join(f'{c:g}' for c in CROPS)}"
    )
    if confirmed is not None:
        verdict.evidence += (
            f"; not confirmed by a second test with another message and the classes swapped "
            f"(t = {confirmed.t:.1f}): an artifact of where the first test's strings sat"
        )


# -- webhook:url-validator --------------------------------------------------------------------


def _url_validator(probe: _Probe, verdict: Verdict) -> None:
    assert probe.spec.url_validator is not None
    allowed: list[str] = []
    refused: list[str] = []
    lookups: set[str] = set()
    blocked: list[str] = []
    with probe.child({"validate": probe.spec.url_validator}, sandbox=DNS_TABLE) as child:
        for url, why in (*REFUSE, *ALLOW):
            answer = child.call(
                {"op": "validate", "url": url}, timeout=CASE_TIMEOUT, what=f"the validator ({url})"
            )
            lookups.update(str(x.get("host")) for x in answer.get("lookups", []))
            blocked += [str(x.get("event")) for x in answer.get("blocked", [])]
            must_allow = (url, why) in ALLOW
            if answer["accepted"] and not must_allow:
                allowed.append(f"{url} ({why}) -> {_ended(answer)}")
            elif not answer["accepted"] and must_allow:
                refused.append(f"{url} ({why}) -> {_ended(answer)}")
    verdict.measured = {"allowed_wrongly": len(allowed), "refused_wrongly": len(refused)}
    notes = []
    if lookups:
        notes.append(
            f"it looked up {len(lookups)} names: answered from signoff's own table "
            "(example.com is public, localhost and metadata.google.internal are not); "
            "nothing was looked up through DNS"
        )
    if blocked:
        notes.append(f"it tried to reach the network ({', '.join(sorted(set(blocked)))}): refused")
    if not allowed and not refused:
        verdict.evidence = "\n".join(
            [
                f"refused all {len(REFUSE)} private, loopback, link-local, metadata and "
                f"non-http URLs in their tricky spellings, allowed {len(ALLOW)} public ones",
                *notes,
            ]
        )
        return
    verdict.status = "fails"
    lines: list[str] = []
    if allowed:
        lines.append(f"allowed {len(allowed)} of {len(REFUSE)} URLs it must refuse:")
        lines += _listed(allowed)
    if refused:
        lines.append(f"refused {len(refused)} of {len(ALLOW)} ordinary public URLs:")
        lines += _listed(refused)
    verdict.evidence = "\n".join(lines + notes)


_JUDGES: dict[str, Judge] = {
    "vectors": _vectors,
    "forgery": _forgery,
    "malleability": _malleability,
    "timestamps": _timestamps,
    "rotation": _rotation,
    "constant-time": _constant_time,
    "url-validator": _url_validator,
}

__all__ = ["check_webhook", "header_value", "tamperings"]


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, Webhooks)
    return check_webhook(ctx, ref.id, ref.spec)
