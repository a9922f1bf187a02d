"""REGRESSION: verify compares signatures with ==. A copy of
targets/reports/reports_app/webhooks.py with that one change.

TaskWebhookService of seed 003: task notifications signed per Standard Webhooks.

- `sign(secret, payload, msg_id, timestamp)` -> the headers webhook-id, webhook-timestamp and
  webhook-signature ("v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<payload>'>"). `secret` is
  "whsec_<base64 key>", or a list of them during a rotation: one signature per secret.
- `verify(secret, payload, headers)` -> True or False. Headers are matched case-insensitively.
  The timestamp must be ASCII digits within TOLERANCE_S of now, either way; it is signed as it
  was sent (never re-spelled). Every "v1," signature is compared with hmac.compare_digest against
  the canonical base64 of each expected one (no early exit, no lenient decoding); signatures with
  another version tag are skipped; one match among several (rotation) is enough. Several secrets
  may be given (rotation on the receiving side).
- `validate_url(url)` -> True for an http(s) URL whose host is, and resolves only to, public
  addresses. Refused: other schemes, userinfo, loopback, private, link-local, metadata,
  unspecified and reserved addresses in every IPv4 spelling the C resolver accepts (decimal,
  octal, hex, short), IPv4-mapped / 6to4 / NAT64 IPv6, localhost names, *.internal names.
- `TaskWebhookService`: notifications per task, each delivered by an injectable transport and
  retried 1, 5 and 15 minutes after a failed attempt (RETRY_DELAYS_S), on an injectable clock.

Standard library only; importing this module connects nowhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TOLERANCE_S = 300
RETRY_DELAYS_S = (60, 300, 900)
SECRET_PREFIX = "whsec_"
MAX_SIGNATURES = 20
DELIVERY_TIMEOUT_S = 10.0

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MSG_ID = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces

Clock = Callable[[], float]
Transport = Callable[[str, bytes, Mapping[str, str]], int]


class WebhookError(ValueError):
    """A secret, a URL or a delivery that cannot be used. Never carries a secret."""


# -- signing and verification -----------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret."""
    if not isinstance(secret, str) or not secret:
        raise WebhookError("the webhook secret is empty")
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError('the webhook secret is not "whsec_<base64>"') from None
    if len(key) < 16:
        raise WebhookError("the webhook secret is shorter than 16 bytes")
    return key


def _secrets(secret: str | Sequence[str]) -> list[str]:
    found = [secret] if isinstance(secret, str) else list(secret)
    if not found:
        raise WebhookError("no webhook secret")
    return found


def _signature(key: bytes, msg_id: str, timestamp: str, payload: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + payload
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def sign(
    secret: str | Sequence[str], payload: bytes, msg_id: str, timestamp: int
) -> dict[str, str]:
    """The Standard Webhooks headers of `payload`, one signature per secret."""
    if not _MSG_ID.fullmatch(msg_id):
        raise WebhookError("a message id is 1 to 256 printable ASCII characters, no spaces")
    stamp = str(int(timestamp))
    tokens = ["v1," + _signature(secret_key(s), msg_id, stamp, payload) for s in _secrets(secret)]
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": " ".join(tokens)}


def verify(
    secret: str | Sequence[str],
    payload: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: float = TOLERANCE_S,
    clock: Clock | None = None,
) -> bool:
    """Whether `headers` carry a valid signature of `payload`, fresh within `tolerance`."""
    keys = [secret_key(s) for s in _secrets(secret)]
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    if not isinstance(msg_id, str) or not _MSG_ID.fullmatch(msg_id):
        return False
    if not isinstance(stamp, str) or not _TIMESTAMP.fullmatch(stamp):
        return False
    if not isinstance(header, str) or not header:
        return False
    now = (clock or time.time)()
    if abs(now - int(stamp)) > tolerance:
        return False
    expected = [_signature(key, msg_id, stamp, payload).encode("ascii") for key in keys]
    matched = False
    for token in header.split(" ")[:MAX_SIGNATURES]:
        version, comma, value = token.partition(",")
        if version != "v1" or not comma:
            continue
        presented = value.encode("utf-8", "replace")
        for candidate in expected:
            if candidate == presented:  # REGRESSION: == stops at the first differing byte
                matched = True
    return matched


# -- URLs -------------------------------------------------------------------------------------

_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED_NAMES = frozenset({"localhost", "localhost.localdomain", "metadata", "ip6-localhost"})
_REFUSED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, in any spelling the C resolver would accept: 127.1,
    2130706433, 0177.0.0.1, 0x7f000001 are all 127.0.0.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _why_not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = _why_not_public(inner)
            return f"{ip} embeds {inner}: {why}" if why else None
    for flag in ("loopback", "unspecified", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return f"{ip} is {flag.replace('_', '-')}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def check_url(url: str, *, resolve: bool = True, resolver: Resolver | None = None) -> str | None:
    """None when `url` may receive webhooks; otherwise why not. With `resolve`, a host name is
    looked up (with `resolver`, default socket.getaddrinfo) and every address must be public."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return "not a URL"
    if any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return "whitespace, control characters or backslashes in the URL"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if "@" in parts.netloc:
        return "credentials (userinfo) in the URL"
    try:
        port = parts.port
    except ValueError:
        return "not a valid port"
    host = parts.hostname
    if not host:
        return "no host"
    try:
        name = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return "not a valid host name"
    name = name.lower().rstrip(".")
    ip = _as_ip(name)
    if ip is not None:
        return _why_not_public(ip)
    if name in _REFUSED_NAMES or name.endswith(_REFUSED_SUFFIXES):
        return f"{name} is a local name"
    if not resolve:
        return None
    lookup = resolver or socket.getaddrinfo
    try:
        found = lookup(
            name, port or (443 if parts.scheme == "https" else 80), 0, socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as exc:
        return f"{name} cannot be resolved ({exc})"
    if not found:
        return f"{name} resolves to nothing"
    for entry in found:
        address = _as_ip(str(entry[4][0]).split("%", 1)[0])
        if address is None:
            return f"{name} resolves to {entry[4][0]!r}"
        why = _why_not_public(address)
        if why:
            return f"{name} resolves to {why}"
    return None


def validate_url(url: str) -> bool:
    """Whether `url` may receive webhooks (see `check_url`)."""
    return check_url(url) is None


# -- the service ------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One notification to one URL, and where its delivery stands."""

    id: str
    url: str
    payload: bytes
    next_at: float
    attempts: int = 0
    status: Literal["pending", "delivered", "failed"] = "pending"
    history: list[tuple[float, str]] = field(default_factory=list)  # (when, outcome)


def _urllib_transport(url: str, payload: bytes, headers: Mapping[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=payload,
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=DELIVERY_TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could lead to a private address


class TaskWebhookService:
    """Task notifications: signed with every current secret (the new one first during a
    rotation), delivered by `transport`, retried RETRY_DELAYS_S after each failed attempt,
    given up after the last retry. Time comes from `clock` only."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        clock: Clock = time.time,
        transport: Transport = _urllib_transport,
        url_check: Callable[[str], str | None] = check_url,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        for secret in secrets:
            secret_key(secret)  # fail now on a bad secret, not at the first delivery
        if not secrets:
            raise WebhookError("no webhook secret")
        self.secrets = list(secrets)
        self.clock = clock
        self.transport = transport
        self.url_check = url_check
        self.retry_delays = tuple(retry_delays)
        self.deliveries: list[Delivery] = []

    def rotate(self, new_secret: str, *, keep_old: bool = True) -> None:
        """Sign with `new_secret` first; keep the old ones until receivers have switched."""
        secret_key(new_secret)
        self.secrets = [new_secret, *(self.secrets if keep_old else [])]

    def notify(self, url: str, task_id: str, event: Mapping[str, Any]) -> Delivery:
        """Queue a notification; it is due at once. Refuses URLs `url_check` refuses."""
        why = self.url_check(url)
        if why is not None:
            raise WebhookError(f"refused webhook URL: {why}")
        payload = json.dumps({"task_id": task_id, **event}, separators=(",", ":")).encode()
        delivery = Delivery("msg_" + secrets.token_urlsafe(18), url, payload, self.clock())
        self.deliveries.append(delivery)
        return delivery

    def due(self) -> list[Delivery]:
        now = self.clock()
        return [d for d in self.deliveries if d.status == "pending" and d.next_at <= now]

    def run_due(self) -> list[Delivery]:
        """Attempt every due delivery once; the ones attempted."""
        attempted = self.due()
        for delivery in attempted:
            self._attempt(delivery)
        return attempted

    def _attempt(self, delivery: Delivery) -> None:
        now = self.clock()
        headers = sign(self.secrets, delivery.payload, delivery.id, int(now))
        try:
            status = self.transport(delivery.url, delivery.payload, headers)
            outcome = f"HTTP {status}"
            ok = 200 <= status < 300
        except OSError as exc:
            outcome, ok = f"{type(exc).__name__}: {exc}", False
        delivery.attempts += 1
        delivery.history.append((now, outcome))
        if ok:
            delivery.status = "delivered"
        elif delivery.attempts > len(self.retry_delays):
            delivery.status = "failed"
        else:
            delivery.next_at = now + self.retry_delays[delivery.attempts - 1]

    def verify(self, payload: bytes, headers: Mapping[str, str]) -> bool:
        """Verify an incoming delivery against every current secret, on this service's clock."""
        return verify(self.secrets, payload, headers, clock=self.clock)
