"""The real `standardwebhooks` package (Standard Webhooks' own Python library) behind signoff's
verify/sign signatures: verify raises on a bad delivery, so returning True means accepted."""

from datetime import UTC, datetime

from standardwebhooks import Webhook


def verify(secret: str, payload: bytes, headers: dict[str, str]) -> bool:
    Webhook(secret).verify(payload, headers)
    return True


def sign(secret: str, payload: bytes, msg_id: str, timestamp: int) -> dict[str, str]:
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), payload.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": sig}
