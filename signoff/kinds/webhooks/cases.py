"""The deliveries the webhook probe sends to the target's `verify`, and the URLs it gives the
validator: each a `Case` with what must happen to it. Everything is built by signoff's own
implementation of the scheme (webhook_schemes), never by the target.

Forgery and malleability are told apart by one question: could a sender WITHOUT the secret get
content accepted that the secret's holder never signed?

Forgeries (`forgery_cases`, webhook:forgery), by kind, so that the evidence can say what an
accepted one means:
- "forged": other content (payload, id, a timestamp in another second) under the old
  signature, or a MAC that is not the valid one (another key, the empty key, a flipped bit, a
  MAC truncated or extended, by a byte or by one hex character);
- "missing": no signature (or no id / timestamp) at all;
- "tag": the valid MAC under another scheme's or version's tag (version confusion: a verifier
  that ignores the tag takes whatever another algorithm produced);
- "json": the body re-spelled as the same JSON (key order, whitespace, escapes) under the old
  signature: the payload's bytes changed, whatever a JSON parser makes of them.

Malleable spellings (`malleability_cases`, a note on webhook:forgery, or webhook:malleability
with `strict = true`): the valid signature's exact bytes, or the signed timestamp's exact
second, written another way. Accepting one lets nobody authenticate anything the sender did
not sign; it only means one delivery has many accepted spellings (a replay cache keyed on the
raw header sees a replay as new, and a stricter parser in front disagrees with the verifier):
- "spelling": the signature's bytes re-encoded: base64 with characters outside the alphabet,
  data after the padding, an extra "=", no padding, an unused bit set, the URL-safe alphabet;
  hex in upper case or with a space;
- "timestamp": the signed second re-spelled: "T.0", "+T", "0T", underscores, exponent
  notation, non-ASCII digits, and "T.5". "T.5" names an instant half a second later, but both
  schemes with timestamps sign whole Unix seconds, so it lies in the second T that was
  signed: a verifier that accepts it under T's signature has read (floored) it as T, the
  content it authenticated is exactly what was signed, and the freshness check moves by less
  than a second, well inside any tolerance. A timestamp in ANOTHER second under the old
  signature (T+1, T-1, T+60) is a forgery and stays among the forgeries.
"""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import dataclass

from signoff.kinds.webhooks.schemes import (
    STANDARD_MULTI,
    Message,
    Scheme,
    Vector,
    vectors_for,
)

# The malleable spellings of a signature, in the order they are tried (see _base64_spellings
# and _hex_spellings for what each one is).
BASE64_SPELLINGS: tuple[str, ...] = (
    "a character outside the base64 alphabet inside",
    "base64 data after the padding",
    "an extra padding character",
    "no padding",
    "an unused bit set in the last character",
    "the URL-safe alphabet",
)
HEX_SPELLINGS: tuple[str, ...] = ("the hex digest in upper case", "a space inside the hex")
_SPELLING_TRIES = 64

PAYLOAD = b'{"event": "task.completed", "task_id": "4f1c2a", "status": "complete"}'

# Raw bodies a JSON round-trip would change: signed as they are, they must be accepted as they are.
ODD_BODIES: tuple[tuple[str, bytes], ...] = (
    ("keys out of order", b'{"z": 1, "a": 2, "m": {"y": true, "b": null}}'),
    ("unusual whitespace", b'{ "a" :1,\n\t"b":[ 1 ,2 ] }\n'),
    ("escapes", b'{"text": "caf\\u00e9 \\/ \\ud83d\\ude00", "n": 1e2}'),
    ("non-ASCII UTF-8", '{"name": "Zoë 中文 😀"}'.encode()),
)
_ODD_TWINS: tuple[tuple[str, bytes, bytes], ...] = (
    (
        "keys reordered",
        b'{"amount": 100, "currency": "eur"}',
        b'{"currency": "eur", "amount": 100}',
    ),
    (
        "whitespace removed",
        b'{"amount": 100, "currency": "eur"}',
        b'{"amount":100,"currency":"eur"}',
    ),
    (
        "an escape decoded",
        b'{"amount": 100, "note": "\\u0041"}',
        b'{"amount": 100, "note": "A"}',
    ),
    ("a newline added", b'{"amount": 100}', b'{"amount": 100}\n'),
)


@dataclass(frozen=True)
class Case:
    """One call of verify: with `payload` and `headers`, `accept` says what must happen.
    `secret` None means the claims' secret. `now`: the clock verify sees (None: real time)."""

    label: str
    kind: str
    payload: bytes
    headers: dict[str, str]
    accept: bool
    secret: str | None = None
    now: float | None = None
    detail: str = ""  # a short rendering of what was sent, for the evidence


def msg_id(tag: str) -> str:
    """A fresh message id, so that a verifier that remembers ids (replay protection) sees no
    delivery twice."""
    return f"msg_signoff{tag}{os.urandom(6).hex()}"


def other_secret(scheme: Scheme) -> str:
    """A random secret of the scheme's own format, not the claims' one."""
    raw = os.urandom(24)
    if scheme.name == "standard":
        return "whsec_" + base64.b64encode(raw).decode()
    return "whsec_" + raw.hex()


def short(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else text[: keep - 3] + "..."


def _digest_other(raw_key: bytes, content: bytes, name: str) -> bytes:
    return hmac.new(raw_key, content, name).digest()


# -- vectors ----------------------------------------------------------------------------------


def vector_cases(scheme: Scheme) -> list[Case]:
    """The published vectors, each verified with the clock at its timestamp (+1 s)."""
    cases = []
    for vector in vectors_for(scheme):
        headers = scheme.headers(vector.msg, [vector.signature])
        verdict = "valid" if vector.valid else "invalid"
        cases.append(
            Case(
                label=f"{vector.source} ({verdict})",
                kind="vector",
                payload=vector.msg.payload,
                headers=headers,
                accept=vector.valid,
                secret=vector.secret,
                now=_vector_now(scheme, vector),
                detail=short(scheme.signature_value(headers), 70),
            )
        )
    if scheme.name == "standard":
        vector = vectors_for(scheme)[0]
        tokens = [t.replace("{valid}", vector.signature) for t in STANDARD_MULTI]
        headers = scheme.headers(vector.msg, tokens)
        cases.append(
            Case(
                label="Standard Webhooks libraries' multi-signature test (valid)",
                kind="vector",
                payload=vector.msg.payload,
                headers=headers,
                accept=True,
                secret=vector.secret,
                now=_vector_now(scheme, vector),
                detail="4 signatures, the third valid",
            )
        )
    return cases


def _vector_now(scheme: Scheme, vector: Vector) -> float | None:
    return float(vector.msg.timestamp + 1) if scheme.timestamps else None


def own_cases(scheme: Scheme, secret: str, now: int) -> list[Case]:
    """Signatures signoff makes itself with the claims' secret: they must be accepted."""
    cases = []
    bodies = [("a task-completed event", PAYLOAD), *ODD_BODIES]
    for i, (what, body) in enumerate(bodies):
        msg = Message(body, msg_id("Own"), now)
        headers = scheme.sign(secret, msg)
        label = "signoff's own signature" + ("" if i == 0 else f" over a raw body with {what}")
        cases.append(Case(label, "own", body, headers, True, now=now, detail=short(repr(body))))
    return cases


# -- forgeries --------------------------------------------------------------------------------


def control(scheme: Scheme, secret: str, now: int) -> Case:
    msg = Message(PAYLOAD, msg_id("Control"), now)
    return Case("a valid delivery", "control", PAYLOAD, scheme.sign(secret, msg), True, now=now)


def forgery_cases(scheme: Scheme, secret: str, now: int) -> list[Case]:
    msg = Message(PAYLOAD, msg_id("Forgery"), now)
    raw = scheme.digest(secret, msg)
    valid = scheme.headers(msg, [scheme.token(raw)])
    cases: list[Case] = []

    def add(
        label: str,
        kind: str,
        headers: dict[str, str],
        *,
        payload: bytes = PAYLOAD,
        detail: str | None = None,
        secret: str | None = None,
    ) -> None:
        shown = detail if detail is not None else short(scheme.signature_value(headers), 70)
        cases.append(Case(label, kind, payload, headers, False, secret, now, shown))

    def with_token(token: str) -> dict[str, str]:
        return scheme.headers(msg, [token])

    def with_sig_value(value: str | None) -> dict[str, str]:
        headers = dict(valid)
        for key in list(headers):
            if key.lower() == scheme.header.lower():
                del headers[key]
        if value is not None:
            headers[scheme.header] = value
        return headers

    # another key, the empty key
    add("signed with another secret", "forged", scheme.sign(other_secret(scheme), msg))
    add(
        "signed with the empty key",
        "forged",
        with_token(scheme.token(scheme.digest_with_key(b"", msg))),
    )
    add(
        "verify given the empty secret, signed with the empty key",
        "forged",
        with_token(scheme.token(scheme.digest_with_key(b"", msg))),
        secret="",
    )
    # missing and empty
    add("no signature header", "missing", with_sig_value(None), detail="(no header)")
    add("an empty signature header", "missing", with_sig_value(""), detail='""')
    add("a signature header of spaces", "missing", with_sig_value("   "), detail='"   "')
    if scheme.name == "standard":
        add("only the tag", "missing", with_token("v1,"))
        for name in ("webhook-id", "webhook-timestamp"):
            headers = dict(valid)
            del headers[name]
            add(f"no {name} header", "missing", headers, detail=f"(no {name})")
            headers = {**valid, name: ""}
            add(f"an empty {name} header", "missing", headers, detail=f'{name}: ""')
    elif scheme.name == "stripe":
        add("only the timestamp", "missing", with_sig_value(f"t={now}"))
        add("no timestamp", "missing", with_sig_value(scheme.token(raw)))
        add("an empty v1", "missing", with_sig_value(f"t={now},v1="))
    elif scheme.name == "github":
        add("only the tag", "missing", with_sig_value("sha256="))
    # truncated and extended MACs: other bytes
    text = scheme.encode(raw)
    add("truncated by one byte", "forged", with_token(scheme.token(raw[:-1])))
    add("truncated to half", "forged", with_token(scheme.token(raw[:16])))
    add("the first 8 characters", "forged", with_token(scheme.tag + text[:8]))
    add("extended by a zero byte", "forged", with_token(scheme.token(raw + b"\0")))
    add("one bit flipped", "forged", with_token(scheme.token(bytes([raw[0] ^ 1]) + raw[1:])))
    add(
        "the signature of another payload",
        "forged",
        with_token(scheme.token(scheme.digest(secret, Message(b"{}", msg.msg_id, now)))),
    )
    if scheme.encoding == "hex":
        add("truncated by one hex character", "forged", with_token(scheme.tag + text[:-1]))
        add('"00" appended', "forged", with_token(scheme.tag + text + "00"))
    # other tags
    for label, token in _other_tags(scheme, raw, secret, msg):
        add(label, "tag", with_token(token) if scheme.name != "github" else with_sig_value(token))
    if scheme.name == "github":
        sha1 = _digest_other(scheme.key(secret), PAYLOAD, "sha1").hex()
        headers = with_sig_value(None)
        headers["X-Hub-Signature"] = "sha1=" + sha1
        add(
            "only GitHub's old X-Hub-Signature (sha1)",
            "tag",
            headers,
            detail="X-Hub-Signature: sha1=...",
        )
    # id and timestamp changed under the old signature
    if scheme.name == "standard":
        for label, new_id in (
            ("the id changed", msg.msg_id + "x"),
            ("the id cut short", msg.msg_id[:-1]),
            ("the id in upper case", msg.msg_id.upper()),
        ):
            add(
                f"{label} under the old signature",
                "forged",
                {**valid, "webhook-id": new_id},
                detail=f"webhook-id: {new_id}",
            )
    if scheme.timestamps:
        for delta in (1, -1, 60):
            add(
                f"the timestamp moved by {delta:+d} s under the old signature",
                "forged",
                _with_timestamp(scheme, valid, str(now + delta)),
                detail=f"timestamp {now + delta}",
            )
    # the body re-spelled as the same JSON
    for label, signed, sent in _ODD_TWINS:
        twin = Message(signed, msg.msg_id, now)
        headers = scheme.headers(twin, [scheme.token(scheme.digest(secret, twin))])
        add(
            f"the body {label} under the signature of the raw body",
            "json",
            headers,
            payload=sent,
            detail=f"signed {short(repr(signed), 40)}, sent {short(repr(sent), 40)}",
        )
    return cases


def malleability_cases(scheme: Scheme, secret: str, now: int) -> list[Case]:
    """Validly signed deliveries with the signature or the timestamp re-spelled (same bytes,
    same second): each must be rejected by a strict verifier. Each case is a message of its
    own, so that a verifier that remembers ids does not reject a spelling as a replay."""
    cases: list[Case] = []
    labels = BASE64_SPELLINGS if scheme.encoding == "base64" else HEX_SPELLINGS
    for label in labels:
        msg, spelled = _spelled(scheme, secret, now, label)
        headers = scheme.headers(msg, [scheme.tag + spelled])
        shown = short(scheme.signature_value(headers), 70)
        cases.append(Case(label, "spelling", PAYLOAD, headers, False, None, now, shown))
    if scheme.timestamps:
        for label, spelled in _timestamp_spellings(now):
            msg = Message(PAYLOAD, msg_id("Spelling"), now)
            valid = scheme.sign(secret, msg)
            cases.append(
                Case(
                    f"timestamp {label}",
                    "timestamp",
                    PAYLOAD,
                    _with_timestamp(scheme, valid, spelled),
                    False,
                    None,
                    now,
                    f"{spelled!r} under the signature of {now}",
                )
            )
    return cases


def _spelled(scheme: Scheme, secret: str, now: int, label: str) -> tuple[Message, str]:
    """A fresh message and its MAC spelled the way `label` says. The URL-safe spelling needs a
    MAC whose base64 holds "+" or "/" (3 in 4 do): other ids are tried until one does."""
    for _ in range(_SPELLING_TRIES):
        msg = Message(PAYLOAD, msg_id("Spelling"), now)
        raw = scheme.digest(secret, msg)
        if scheme.encoding == "hex":
            spellings = dict(_hex_spellings(raw))
        else:
            spellings = dict(_base64_spellings(raw))
        if label in spellings:
            return msg, spellings[label]
    raise AssertionError(f"no MAC could be spelled as {label!r}")  # about 0.26 ** 64 likely


def _with_timestamp(scheme: Scheme, headers: dict[str, str], value: str) -> dict[str, str]:
    if scheme.name == "standard":
        return {**headers, "webhook-timestamp": value}
    old = headers[scheme.header]
    items = [f"t={value}" if item.startswith("t=") else item for item in old.split(",")]
    return {**headers, scheme.header: ",".join(items)}


def _timestamp_spellings(now: int) -> list[tuple[str, str]]:
    digits = str(now)
    arabic = digits.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    grouped = f"{now:_}"
    exponent = f"{now / 10 ** (len(digits) - 1):.{len(digits) - 1}f}e{len(digits) - 1}"
    return [
        ("with a fraction (.0)", digits + ".0"),
        ("with a fraction (.5)", digits + ".5"),
        ("with a plus sign", "+" + digits),
        ("with a leading zero", "0" + digits),
        ("with underscores", grouped),
        ("in exponent notation", exponent),
        ("in Arabic-Indic digits", arabic),
    ]


def _hex_spellings(raw: bytes) -> list[tuple[str, str]]:
    text = raw.hex()
    return [
        ("the hex digest in upper case", text.upper()),
        ("a space inside the hex", text[:32] + " " + text[32:]),
    ]


def _base64_spellings(raw: bytes) -> list[tuple[str, str]]:
    """Other spellings of exactly these bytes. A 32-byte MAC has all of them but the URL-safe
    one when its base64 holds neither "+" nor "/"."""
    text = base64.b64encode(raw).decode()
    spellings = [
        ("a character outside the base64 alphabet inside", text[:10] + "!" + text[10:]),
        ("base64 data after the padding", text + "AAAA"),
        ("an extra padding character", text + "="),
        ("no padding", text.rstrip("=")),
    ]
    stripped = text.rstrip("=")
    pad_bits = (len(raw) * 8) % 6
    if pad_bits:
        # the last character carries unused bits: setting one spells the same bytes otherwise
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(stripped[-1])
        other = alphabet[last | 1]
        spellings.append(
            (
                "an unused bit set in the last character",
                stripped[:-1] + other + text[len(stripped) :],
            )
        )
    safe = text.replace("+", "-").replace("/", "_")
    if safe != text:
        spellings.append(("the URL-safe alphabet", safe))
    return spellings


def _other_tags(scheme: Scheme, raw: bytes, secret: str, msg: Message) -> list[tuple[str, str]]:
    b64 = base64.b64encode(raw).decode()
    hexed = raw.hex()
    if scheme.name == "standard":
        return [
            ('version tag "v1a"', "v1a," + b64),
            ('version tag "v2"', "v2," + b64),
            ('version tag "v0"', "v0," + b64),
            ('Stripe\'s "v1=" with the hex digest', "v1=" + hexed),
            ('GitHub\'s "sha256=" with the hex digest', "sha256=" + hexed),
        ]
    if scheme.name == "stripe":
        return [
            ('the test-mode tag "v0"', "v0=" + hexed),
            ('tag "v2"', "v2=" + hexed),
            ('GitHub\'s "sha256="', "sha256=" + hexed),
        ]
    if scheme.name == "github":
        key = scheme.key(secret)
        return [
            ("the bare hex digest (no tag)", hexed),
            ('Stripe\'s tag "v1="', "v1=" + hexed),
            ('"sha1=" with HMAC-SHA1', "sha1=" + _digest_other(key, msg.payload, "sha1").hex()),
            (
                '"sha512=" with HMAC-SHA512',
                "sha512=" + _digest_other(key, msg.payload, "sha512").hex(),
            ),
        ]
    key = scheme.key(secret)
    return [("the HMAC-SHA1 hex digest", _digest_other(key, msg.payload, "sha1").hex())]


# -- timestamps and rotation ------------------------------------------------------------------


def timestamp_cases(scheme: Scheme, secret: str, now: int, tolerance: float) -> list[Case]:
    """Deliveries signed at now + delta, verified at now."""
    margin = max(2, round(0.02 * tolerance))
    half = max(1, int(tolerance // 2))
    beyond = int(tolerance) + margin
    deltas: list[tuple[int, bool, str]] = [
        (-half, True, "within the tolerance, in the past"),
        (half, True, "within the tolerance, in the future"),
        (-beyond, False, "stale"),
        (-max(2 * int(tolerance), 3600), False, "stale"),
        (-86400 * 3650, False, "stale"),
        (beyond, False, "in the future"),
        (max(2 * int(tolerance), 3600), False, "in the future"),
        (86400 * 3650, False, "in the future"),
    ]
    cases = []
    for delta, accept, what in deltas:
        msg = Message(PAYLOAD, msg_id("Time"), now + delta)
        headers = scheme.sign(secret, msg)
        cases.append(
            Case(
                f"signed {_ago(delta)} ({what})",
                "within" if accept else ("stale" if delta < 0 else "future"),
                PAYLOAD,
                headers,
                accept,
                now=now,
                detail=f"timestamp {now + delta}, now {now}",
            )
        )
    return cases


def _ago(delta: int) -> str:
    amount = abs(delta)
    if amount >= 86400 * 365:
        text = f"{amount / (86400 * 365.25):.0f} years"
    elif amount >= 7200:
        text = f"{amount / 3600:.0f} h"
    else:
        text = f"{amount} s"
    return f"{text} ago" if delta < 0 else f"{text} ahead"


def rotation_cases(scheme: Scheme, secret: str, now: int) -> list[Case]:
    """Headers with several signatures: the new key's among old keys' ones must be accepted
    wherever it stands; old keys' ones alone, or the valid MAC under another version, not."""
    olds = [other_secret(scheme) for _ in range(4)]
    layouts: list[tuple[str, list[str], bool]] = [
        ("the old key's signature, then the new key's", ["old0", "valid"], True),
        ("the new key's signature, then the old key's", ["valid", "old0"], True),
        (
            "four old keys' signatures and the new key's last",
            ["old0", "old1", "old2", "old3", "valid"],
            True,
        ),
        ("two old keys' signatures only", ["old0", "old1"], False),
        ("four old keys' signatures only", ["old0", "old1", "old2", "old3"], False),
        ("the valid MAC under another version, an old key's under v1", ["other", "old0"], False),
    ]
    other_tag = "v2," if scheme.name == "standard" else "v0="
    cases = []
    for label, names, accept in layouts:
        msg = Message(PAYLOAD, msg_id("Rotate"), now)
        raw = scheme.digest(secret, msg)
        tokens = {
            "valid": scheme.token(raw),
            "other": scheme.token(raw, other_tag),
            **{f"old{i}": scheme.token(scheme.digest(s, msg)) for i, s in enumerate(olds)},
        }
        headers = scheme.headers(msg, [tokens[n] for n in names])
        detail = f"{len(names)} signatures"
        cases.append(Case(label, "rotation", PAYLOAD, headers, accept, now=now, detail=detail))
    return cases


# -- URLs -------------------------------------------------------------------------------------

# Addresses a validator must refuse, with what each one really is.
REFUSE: tuple[tuple[str, str], ...] = (
    ("http://127.0.0.1/hook", "loopback"),
    ("http://localhost/hook", "localhost"),
    ("http://LOCALHOST:8080/hook", "localhost in upper case"),
    ("http://localhost./hook", "localhost with a trailing dot"),
    ("http://api.localhost/hook", "a name under .localhost (loopback by RFC 6761)"),
    ("http://2130706433/hook", "decimal IPv4: 127.0.0.1"),
    ("http://0177.0.0.1/hook", "octal IPv4: 127.0.0.1"),
    ("http://0x7f000001/hook", "hex IPv4: 127.0.0.1"),
    ("http://0x7f.0.0.1/hook", "hex first byte: 127.0.0.1"),
    ("http://127.1/hook", "short IPv4: 127.0.0.1"),
    ("http://127.0.1/hook", "short IPv4: 127.0.0.1"),
    ("http://017700000001/hook", "octal 32-bit IPv4: 127.0.0.1"),
    ("http://0/hook", "0: 0.0.0.0, this host"),
    ("http://0.0.0.0/hook", "0.0.0.0, this host"),
    ("http://[::1]/hook", "IPv6 loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped IPv6: 127.0.0.1"),
    ("http://[::ffff:7f00:1]/hook", "IPv4-mapped IPv6 in hex: 127.0.0.1"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/hook", "IPv4-mapped IPv6, long form: 127.0.0.1"),
    ("http://[::]/hook", "IPv6 unspecified, this host"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata (link-local)"),
    ("http://metadata.google.internal/computeMetadata/v1/", "GCP metadata"),
    ("http://metadata/computeMetadata/v1/", "GCP metadata, short name"),
    ("http://0xa9fea9fe/latest/meta-data/", "hex IPv4: 169.254.169.254"),
    ("http://2852039166/latest/meta-data/", "decimal IPv4: 169.254.169.254"),
    ("http://[::ffff:169.254.169.254]/latest/", "IPv4-mapped IPv6: 169.254.169.254"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "AWS metadata over IPv6"),
    ("http://169.254.170.2/v2/credentials", "ECS task metadata (link-local)"),
    ("http://100.100.100.200/latest/meta-data/", "Alibaba Cloud metadata (100.64.0.0/10)"),
    ("http://[fe80::1]/hook", "IPv6 link-local"),
    ("http://10.0.0.1/hook", "private 10.0.0.0/8"),
    ("http://012.0.0.1/hook", "octal IPv4: 10.0.0.1"),
    ("http://172.16.0.1/hook", "private 172.16.0.0/12"),
    ("http://172.31.255.254/hook", "private 172.16.0.0/12"),
    ("http://192.168.1.1/hook", "private 192.168.0.0/16"),
    ("http://[fc00::1]/hook", "IPv6 unique local"),
    ("http://[::ffff:10.0.0.1]/hook", "IPv4-mapped IPv6: 10.0.0.1"),
    ("http://evil.example@127.0.0.1/hook", "userinfo: the host is 127.0.0.1"),
    ("http://user:pass@localhost/hook", "userinfo: the host is localhost"),
    ("http://127.0.0.1#@example.com/hook", "a fragment: the host is 127.0.0.1"),
    ("http://①②⑦.0.0.1/hook", "Unicode digits: IDNA makes them 127.0.0.1"),
    ("file:///etc/passwd", "file scheme"),
    ("gopher://127.0.0.1:6379/_INFO", "gopher scheme"),
    ("ftp://example.com/hook", "ftp scheme"),
    ("dict://127.0.0.1:11211/stat", "dict scheme"),
    ("javascript:alert(1)", "javascript scheme"),
    ("//example.com/hook", "no scheme"),
    ("example.com/hook", "no scheme"),
    ("http:///hook", "no host"),
)

# Ordinary public URLs a validator must allow (a validator that refuses everything fails).
ALLOW: tuple[tuple[str, str], ...] = (
    ("https://example.com/hook", "a public name"),
    ("https://93.184.215.14/x", "a public IPv4 address"),
    ("http://hooks.example.org:8080/tasks?id=1", "a public name with a port and a query"),
    ("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook", "a public IPv6 address"),
)

# Names a resolving validator may look up: answered by the probe child from this table, never
# through DNS. A name not listed is "not known".
DNS_TABLE: dict[str, list[str]] = {
    "example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "hooks.example.org": ["93.184.215.14"],
    "evil.example": ["93.184.215.14"],
    "localhost": ["127.0.0.1", "::1"],
    "*.localhost": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "metadata": ["169.254.169.254"],
}


def needles(*raws: bytes) -> tuple[bytes, ...]:
    """What the compare_digest spy looks for: each signature's bytes, hex and base64."""
    found: list[bytes] = []
    for raw in raws:
        found += [raw, raw.hex().encode(), base64.b64encode(raw).rstrip(b"=")]
    return tuple(found)
