"""Settings from the environment, read when asked (never cached at import), so a process that
changes its environment (a test, a claim's `env`) gets what it set."""

from __future__ import annotations

import os

DEFAULT_ORIGINS = "https://wheelsandwins.com,https://www.wheelsandwins.com,http://localhost:3000"


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: expected a number") from exc
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive number")
    return value


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def database_url() -> str:
    return os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/postgres")


def cors_allowed_origins() -> list[str]:
    raw = os.environ.get("CORS_ALLOWED_ORIGINS", DEFAULT_ORIGINS)
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


def websocket_heartbeat_interval() -> float:
    """Seconds between two heartbeats the server sends (the seed: 20)."""
    return _float("WEBSOCKET_HEARTBEAT_INTERVAL", 20.0)


def websocket_idle_timeout() -> float:
    """Seconds of silence from a client after which the server closes it (the seed: 60)."""
    return _float("WEBSOCKET_IDLE_TIMEOUT", 60.0)


def service_timeout() -> float:
    """Seconds a health check or cache call waits on Redis or Postgres."""
    return _float("SERVICE_TIMEOUT", 1.0)


def tts_engine_timeout() -> float:
    """Seconds one TTS engine may take to answer before the next one is tried."""
    return _float("TTS_ENGINE_TIMEOUT", 1.0)


def edge_tts_url() -> str | None:
    return os.environ.get("EDGE_TTS_URL") or None


def coqui_tts_url() -> str | None:
    return os.environ.get("COQUI_TTS_URL") or None


def system_tts_enabled() -> bool:
    """TTS_SYSTEM_ENGINE=off skips espeak-ng even where it is installed."""
    return os.environ.get("TTS_SYSTEM_ENGINE", "auto").strip().lower() not in ("off", "0", "no")


def memory_thresholds() -> tuple[float, float, float]:
    """(warning, critical, emergency) as fractions of the memory limit: 65%, 75%, 85%."""
    return (
        _float("MEMORY_WARNING_THRESHOLD", 65.0) / 100,
        _float("MEMORY_CRITICAL_THRESHOLD", 75.0) / 100,
        _float("MEMORY_EMERGENCY_THRESHOLD", 85.0) / 100,
    )


def memory_check_interval() -> float:
    return _float("MEMORY_CHECK_INTERVAL", 0.5)


def memory_optimization_enabled() -> bool:
    return os.environ.get("MEMORY_OPTIMIZATION_ENABLED", "true").strip().lower() != "false"


def report_bytes() -> int:
    """Bytes of raw samples each performance report keeps (what grows under load)."""
    return int(_float("PERFORMANCE_REPORT_BYTES", 256 * 1024))
