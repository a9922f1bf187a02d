"""The four webhook signature schemes, implemented by signoff itself (never by the target): how a
secret becomes a key, what is signed, how a signature is spelled, which headers carry it. The
probe signs its own messages with these and sends them to the target's `verify`.

- standard: Standard Webhooks. Secret "whsec_<base64 key>"; HMAC-SHA256 over
  "<webhook-id>.<webhook-timestamp>.<payload>"; header webhook-signature = space-separated
  "v1,<base64>" tokens; webhook-id and webhook-timestamp (Unix seconds) beside it.
- stripe: Stripe-Signature = "t=<timestamp>,v1=<hex>[,v1=<hex>...]"; HMAC-SHA256 with the whole
  secret string as key over "<timestamp>.<payload>".
- github: X-Hub-Signature-256 = "sha256=<hex>"; HMAC-SHA256 with the secret string over the payload.
- hmac-sha256: the header the claims name carries the bare hex HMAC-SHA256 of the payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """What a sender signs. `timestamp` is ignored by the schemes without one."""

    payload: bytes
    msg_id: str = "msg_2Lk3u2hsRq0b9Yd7Qn1xVt"
    timestamp: int = 0


class SecretFormatError(ValueError):
    """The claims' secret cannot be a key of this scheme (the message never shows the secret)."""


class Scheme:
    """One signature scheme. Subclasses set the class attributes and `_content`/`token`."""

    name = ""
    header = ""  # the header that carries the signature(s)
    timestamps = False  # whether a timestamp is signed (and checked against a tolerance)
    rotation = False  # whether a header may carry several signatures
    encoding = "hex"  # how the signature bytes are spelled: "hex" or "base64"
    tag = ""  # what goes before the encoded signature in a token ("v1,", "sha256=", ...)

    def key(self, secret: str) -> bytes:
        return secret.encode("utf-8")

    def _content(self, msg: Message) -> bytes:
        return msg.payload

    def digest(self, secret: str, msg: Message) -> bytes:
        """The raw HMAC-SHA256 a sender holding `secret` puts on `msg`."""
        return self.digest_with_key(self.key(secret), msg)

    def digest_with_key(self, key: bytes, msg: Message) -> bytes:
        return hmac.new(key, self._content(msg), hashlib.sha256).digest()

    def encode(self, raw: bytes) -> str:
        if self.encoding == "base64":
            return base64.b64encode(raw).decode("ascii")
        return raw.hex()

    def token(self, raw: bytes, tag: str | None = None) -> str:
        """One signature as it stands in the header: tag + encoded bytes."""
        return (self.tag if tag is None else tag) + self.encode(raw)

    def headers(self, msg: Message, tokens: list[str]) -> dict[str, str]:
        """The headers a sender sends with these signature tokens."""
        return {self.header: " ".join(tokens)}

    def sign(self, secret: str, msg: Message) -> dict[str, str]:
        return self.headers(msg, [self.token(self.digest(secret, msg))])

    def signature_value(self, headers: dict[str, str]) -> str:
        """The value of the signature header in `headers` (names compare case-insensitively)."""
        return header_value(headers, self.header) or ""


class Standard(Scheme):
    name = "standard"
    header = "webhook-signature"
    timestamps = True
    rotation = True
    encoding = "base64"
    tag = "v1,"

    def key(self, secret: str) -> bytes:
        text = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SecretFormatError(
                'the secret is not a Standard Webhooks secret "whsec_<base64 key>"'
            ) from None
        return key

    def _content(self, msg: Message) -> bytes:
        return f"{msg.msg_id}.{msg.timestamp}.".encode() + msg.payload

    def headers(self, msg: Message, tokens: list[str]) -> dict[str, str]:
        return {
            "webhook-id": msg.msg_id,
            "webhook-timestamp": str(msg.timestamp),
            "webhook-signature": " ".join(tokens),
        }


class Stripe(Scheme):
    name = "stripe"
    header = "Stripe-Signature"
    timestamps = True
    rotation = True
    tag = "v1="

    def _content(self, msg: Message) -> bytes:
        return f"{msg.timestamp}.".encode() + msg.payload

    def headers(self, msg: Message, tokens: list[str]) -> dict[str, str]:
        return {self.header: ",".join([f"t={msg.timestamp}", *tokens])}


class GitHub(Scheme):
    name = "github"
    header = "X-Hub-Signature-256"
    tag = "sha256="


@dataclass
class HmacSha256(Scheme):
    name = "hmac-sha256"
    header_name: str = field(default="X-Signature")

    def __post_init__(self) -> None:
        self.header = self.header_name


def scheme_for(name: str, header: str | None = None) -> Scheme:
    if name == "standard":
        return Standard()
    if name == "stripe":
        return Stripe()
    if name == "github":
        return GitHub()
    if name == "hmac-sha256":
        return HmacSha256(header or "X-Signature")
    raise ValueError(f"unknown webhook scheme {name!r}")


def header_value(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


# -- published test vectors ----------------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    """A published example: `secret` signs `msg` into `signature` (a token as it stands in the
    signature header). `source` says where it is published. `valid` False: a published invalid
    signature, which must be rejected."""

    source: str
    secret: str
    msg: Message
    signature: str
    valid: bool = True


# The Standard Webhooks libraries' own tests (standard-webhooks/libraries, every language): the
# sign test, and the invalid and partial signatures of the verification tests.
_SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_SW_MSG = Message(b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330)
STANDARD_VECTORS = (
    Vector(
        "Standard Webhooks libraries' sign test",
        _SW_SECRET,
        _SW_MSG,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    Vector(
        "Standard Webhooks libraries' invalid-signature test",
        _SW_SECRET,
        _SW_MSG,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
        valid=False,
    ),
    Vector(
        "Standard Webhooks libraries' invalid-signature test",
        _SW_SECRET,
        _SW_MSG,
        "v1,dawfeoifkpqwoekfpqoekf",
        valid=False,
    ),
    Vector(
        "Standard Webhooks libraries' partial-signature test",
        _SW_SECRET,
        _SW_MSG,
        "v1,g0hM9",
        valid=False,
    ),
    Vector(
        "Standard Webhooks libraries' partial-signature test", _SW_SECRET, _SW_MSG, "v1,", False
    ),
)
# The libraries' multi-signature test: one valid signature among others.
STANDARD_MULTI = (
    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    "{valid}",
    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
)

# GitHub's documentation ("Validating webhook deliveries", testing the signature).
GITHUB_VECTORS = (
    Vector(
        "GitHub's documented example",
        "It's a Secret to Everybody",
        Message(b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ),
)

# Stripe publishes the scheme, not a fixed vector: this one is computed per Stripe's docs
# (HMAC-SHA256 keyed with the whole secret over "<t>.<payload>", hex), with the payload and secret
# of stripe-python's webhook tests, and checked against stripe-python's own WebhookSignature.
_STRIPE_PAYLOAD = b'{\n  "id": "evt_test_webhook",\n  "object": "event"\n}'
STRIPE_VECTORS = (
    Vector(
        "Stripe's scheme, stripe-python's test payload and secret",
        "whsec_test_secret",
        Message(_STRIPE_PAYLOAD, timestamp=1492774577),
        "v1=c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812",
    ),
)

# RFC 4231 (HMAC-SHA256 test vectors), test case 2, and GitHub's example as a bare digest.
HMAC_VECTORS = (
    Vector(
        "RFC 4231 test case 2",
        "Jefe",
        Message(b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    Vector(
        "GitHub's documented example (bare hex digest)",
        "It's a Secret to Everybody",
        Message(b"Hello, World!"),
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ),
)


def vectors_for(scheme: Scheme) -> tuple[Vector, ...]:
    return {
        "standard": STANDARD_VECTORS,
        "stripe": STRIPE_VECTORS,
        "github": GITHUB_VECTORS,
        "hmac-sha256": HMAC_VECTORS,
    }[scheme.name]
