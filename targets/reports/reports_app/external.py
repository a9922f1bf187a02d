"""The external-API call a fetch job makes: a GET with a timeout on every attempt, retries with
a backoff on connection errors, timeouts, 429 and 5xx, status validation and JSON parsing,
all within one overall deadline. httpx is imported on the call, not with this module."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reports_app import config
from reports_app.errors import ExternalAPIError, InvalidRequestError

MAX_BODY = 256 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPlan:
    path: str
    timeout_s: float
    retries: int


def plan(path: object, timeout: object = None, retries: object = None) -> FetchPlan:
    """A fetch request, validated: a path on the configured API (never a host of the caller's
    choosing), a timeout up to 120 s ("Timeout enforcement (max 120s)"), retries up to 5."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise InvalidRequestError('path: expected a path on the external API, like "/rates"')
    if any(c in path for c in "\\@\r\n\t ") or "://" in path or len(path) > 500:
        raise InvalidRequestError("path: only a plain path and query are accepted")
    timeout_s = config.EXTERNAL_TIMEOUT_S if timeout is None else timeout
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s <= config.EXTERNAL_TIMEOUT_MAX_S
    ):
        raise InvalidRequestError(
            f"timeout: expected seconds in (0, {config.EXTERNAL_TIMEOUT_MAX_S:g}]"
        )
    tries = config.EXTERNAL_RETRIES if retries is None else retries
    if isinstance(tries, bool) or not isinstance(tries, int) or not 0 <= tries <= 5:
        raise InvalidRequestError(f"retries: expected 0 to {config.EXTERNAL_RETRIES_MAX}")
    return FetchPlan(path, float(timeout_s), tries)


def base_url() -> str:
    if config.EXTERNAL_API_URL:
        return config.EXTERNAL_API_URL
    from reports_app import stub_api

    return stub_api.ensure_started()


def call(fetch: FetchPlan) -> dict[str, Any]:
    """GET the path; {"status_code", "attempts", "elapsed_ms", "data"}. ExternalAPIError when
    every attempt failed, or the answer is not a JSON 2xx."""
    import httpx

    url = base_url() + fetch.path
    started = time.monotonic()
    # every attempt its timeout, plus the backoffs between them: the whole call is bounded
    backoffs = [config.EXTERNAL_BACKOFF_S * 2**i for i in range(fetch.retries)]
    deadline = started + fetch.timeout_s * (fetch.retries + 1) + sum(backoffs)
    problems: list[str] = []
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        for attempt in range(1, fetch.retries + 2):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                answer = client.get(url, timeout=min(fetch.timeout_s, left))
            except httpx.TimeoutException:
                problems.append(f"attempt {attempt}: no answer within {fetch.timeout_s:g} s")
            except httpx.TransportError as exc:
                problems.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            else:
                if answer.status_code in RETRY_STATUSES:
                    problems.append(f"attempt {attempt}: status {answer.status_code}")
                elif not 200 <= answer.status_code < 300:
                    raise ExternalAPIError(
                        f"GET {fetch.path}: status {answer.status_code} (not retried)"
                    )
                else:
                    if len(answer.content) > MAX_BODY:
                        raise ExternalAPIError(f"GET {fetch.path}: answer over {MAX_BODY} bytes")
                    try:
                        data = answer.json()
                    except ValueError:
                        raise ExternalAPIError(
                            f"GET {fetch.path}: the answer is not JSON"
                        ) from None
                    return {
                        "status_code": answer.status_code,
                        "attempts": attempt,
                        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
                        "data": data,
                    }
            if attempt <= fetch.retries:
                time.sleep(max(0.0, min(backoffs[attempt - 1], deadline - time.monotonic())))
    raise ExternalAPIError(
        f"GET {fetch.path} failed after {len(problems)} attempts: " + "; ".join(problems)
    )
