"""The cache on Redis (the seed's "Enhanced cache service"), with the `clear_expired` method
whose absence the seed's backend kept failing on.

Every entry is a Redis key with its own expiry (Redis removes the value itself) and a member of
a sorted-set index scored by its expiry time; `clear_expired` removes the index entries whose
time has passed (and their keys, where Redis has not yet) and says how many it removed, so the
index never outgrows the cache. Redis errors become CacheUnavailableError; `stats` never raises.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from app.core.exceptions import CacheUnavailableError
from app.core.redis_client import get_redis

PREFIX = "wheels:cache:"
INDEX = "wheels:cache-index"  # sorted set: key -> expiry (unix seconds)


class CacheService:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def set(self, key: str, value: Any, ttl: float = 300.0) -> None:
        expires = time.time() + ttl
        try:
            pipe = get_redis().pipeline()
            pipe.set(PREFIX + key, json.dumps(value), px=max(1, int(ttl * 1000)))
            pipe.zadd(INDEX, {key: expires})
            pipe.execute()
        except Exception as exc:
            raise _unavailable(exc) from exc

    def get(self, key: str) -> Any:
        try:
            raw = get_redis().get(PREFIX + key)
        except Exception as exc:
            raise _unavailable(exc) from exc
        with self._lock:
            if raw is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if raw is None else json.loads(str(raw))

    def clear_expired(self) -> int:
        """Remove the entries whose expiry has passed; how many were removed."""
        now = time.time()
        try:
            redis = get_redis()
            expired = [str(key) for key in redis.zrangebyscore(INDEX, "-inf", now)]
            if not expired:
                return 0
            pipe = redis.pipeline()
            pipe.zrem(INDEX, *expired)
            pipe.delete(*(PREFIX + key for key in expired))
            removed, _ = pipe.execute()
        except Exception as exc:
            raise _unavailable(exc) from exc
        return int(removed)

    def clear(self) -> int:
        """Remove every entry; how many there were."""
        try:
            redis = get_redis()
            keys = [str(key) for key in redis.zrange(INDEX, 0, -1)]
            pipe = redis.pipeline()
            pipe.delete(INDEX)
            if keys:
                pipe.delete(*(PREFIX + key for key in keys))
            pipe.execute()
        except Exception as exc:
            raise _unavailable(exc) from exc
        return len(keys)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            hits, misses = self.hits, self.misses
        lookups = hits + misses
        figures: dict[str, Any] = {
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / lookups, 3) if lookups else None,
        }
        try:
            redis = get_redis()
            figures["entries"] = int(redis.zcard(INDEX))
            figures["expired_pending"] = int(redis.zcount(INDEX, "-inf", time.time()))
        except Exception as exc:
            return {"connected": False, "error": str(_unavailable(exc)), **figures}
        return {"connected": True, **figures}


def _unavailable(exc: Exception) -> CacheUnavailableError:
    return CacheUnavailableError(f"cache unavailable: {type(exc).__name__}: {exc}")


cache_service = CacheService()
