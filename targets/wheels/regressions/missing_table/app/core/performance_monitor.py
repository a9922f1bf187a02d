"""The performance monitor (the seed's "Real-time performance tracking"): every request's
time, and performance reports kept in a history.

Each report keeps its raw samples (PERFORMANCE_REPORT_BYTES, 256 KB by default, as one bytes
block) in the history, which is what makes the process grow under load; the memory optimizer
trims the history: the newest half at a warning, the newest ten at critical, all of it in an
emergency.
"""

from __future__ import annotations

import itertools
import os
import resource
import statistics
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

from app.core import config

TIMINGS_KEPT = 10_000
CRITICAL_KEEP = 10


@dataclass(frozen=True)
class Report:
    id: int
    created: float
    summary: dict[str, Any]
    samples: bytes


class PerformanceMonitor:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.timings: deque[float] = deque(maxlen=TIMINGS_KEPT)
        self.history: deque[Report] = deque()
        self.started = time.time()

    def record(self, seconds: float) -> None:
        self.timings.append(seconds)

    def _request_figures(self) -> dict[str, Any]:
        times = sorted(self.timings)
        if not times:
            return {"count": 0}
        cuts = statistics.quantiles(times, n=100) if len(times) > 1 else [times[0]] * 99
        return {
            "count": len(times),
            "p50_ms": round(cuts[49] * 1000, 2),
            "p95_ms": round(cuts[94] * 1000, 2),
            "max_ms": round(times[-1] * 1000, 2),
        }

    def build_report(self, hours: float, memory: dict[str, Any]) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        load1, load5, load15 = os.getloadavg()
        requests = self._request_figures()
        recommendations = []
        warning, critical, _ = config.memory_thresholds()
        if memory["fraction"] >= critical:
            recommendations.append("memory above the critical threshold: cleanup running")
        elif memory["fraction"] >= warning:
            recommendations.append("memory above the warning threshold: cleanup running")
        if requests.get("p95_ms", 0) > 1000:
            recommendations.append("p95 response time above 1 s")
        summary = {
            "hours": hours,
            "uptime_s": round(time.time() - self.started, 1),
            "memory": memory,
            "cpu": {
                "user_s": round(usage.ru_utime, 3),
                "system_s": round(usage.ru_stime, 3),
                "load": [load1, load5, load15],
            },
            "requests": requests,
            "recommendations": recommendations,
        }
        size = config.report_bytes()
        raw = array("d", self.timings or [0.0]).tobytes()
        samples = (raw * (size // len(raw) + 1))[:size]
        report = Report(next(self._ids), time.time(), summary, samples)
        with self._lock:
            self.history.append(report)
            kept = len(self.history)
        return {
            "report_id": report.id,
            **summary,
            "history": {"reports": kept, "raw_bytes": len(samples)},
        }

    def _keep_newest(self, count: int) -> int:
        with self._lock:
            dropped = max(0, len(self.history) - count)
            for _ in range(dropped):
                self.history.popleft()
        return dropped

    def trim_half(self) -> int:
        return self._keep_newest(len(self.history) // 2)

    def trim_critical(self) -> int:
        return self._keep_newest(CRITICAL_KEEP)

    def clear(self) -> int:
        return self._keep_newest(0)

    def history_bytes(self) -> int:
        with self._lock:
            return sum(len(report.samples) for report in self.history)


performance_monitor = PerformanceMonitor()
