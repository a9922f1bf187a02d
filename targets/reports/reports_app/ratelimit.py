"""Rate limiting in Redis: at most RATE_LIMIT requests per RATE_WINDOW_S, per URL and user
("Rate limiting (100 req/hour per URL/user)", seed 003).

A sliding window (not a fixed clock hour): every accepted request is a member of a sorted set
scored by its time; a request is accepted while the set holds fewer than the limit within the
last window. A refused request is not counted. One Lua script does it atomically, so two web
workers cannot both take the 100th slot.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reports_app import config, redis_client
from reports_app.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.commands.core import Script

_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, count, tostring(oldest[2])}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return {1, count + 1, '0'}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int  # requests in the window, this one included when allowed
    limit: int
    retry_after_s: int  # when refused: seconds until the oldest request leaves the window


def key_for(url: str, user: str) -> str:
    digest = hashlib.sha256(f"{user}\0{url}".encode()).hexdigest()[:32]
    return f"reports:ratelimit:{digest}"


def hit(
    url: str, user: str, *, limit: int | None = None, window_s: float | None = None
) -> Decision:
    """Count one request of `user` for `url`; whether it is allowed. Redis errors are raised
    as ServiceUnavailableError (the limiter fails closed)."""
    import redis

    limit = config.RATE_LIMIT if limit is None else limit
    window = config.RATE_WINDOW_S if window_s is None else window_s
    now = time.time()
    try:
        allowed, count, oldest = get_script()(
            keys=[key_for(url, user)], args=[now, window, limit, uuid.uuid4().hex]
        )
    except (redis.RedisError, OSError) as exc:
        raise redis_client.translate(exc) from exc
    retry_after = 0
    if not allowed:
        retry_after = max(1, math.ceil(float(oldest) + window - now))
    return Decision(bool(allowed), int(count), limit, retry_after)


def check(url: str, user: str) -> Decision:
    """`hit`, raising RateLimitedError when the request is refused."""
    decision = hit(url, user)
    if not decision.allowed:
        raise RateLimitedError(
            f"rate limit: {decision.limit} requests per {config.RATE_WINDOW_S:g} s for this URL "
            f"and user; retry after {decision.retry_after_s} s",
            decision.retry_after_s,
        )
    return decision


_scripts: dict[int, Script] = {}


def get_script() -> Script:
    """The script, registered with the current client (EVALSHA, loaded again if Redis lost it)."""
    client = redis_client.get_client()
    script = _scripts.get(id(client))
    if script is None:
        _scripts.clear()
        script = _scripts[id(client)] = client.register_script(_SCRIPT)
    return script
