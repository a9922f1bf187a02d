"""Start the services a run needs, in parallel, each from the first backend that works."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from signoff.errors import ServiceError, UsageError
from signoff.services import docker, postgres, redis, url
from signoff.services.base import Service

SERVICE_NAMES = ("redis", "postgres")
BACKENDS = ("docker", "system", "embedded", "url")

Factory = Callable[[float], Service]
"""Given a deadline (time.monotonic()), a started, answering service; or ServiceError (its
Unavailable subclass when the backend cannot be used here at all)."""

FACTORIES: dict[tuple[str, str], Factory] = {
    ("redis", "docker"): docker.start_redis,
    ("redis", "system"): redis.start_system,
    ("redis", "embedded"): redis.start_embedded,
    ("redis", "url"): url.start_redis,
    ("postgres", "docker"): docker.start_postgres,
    ("postgres", "system"): postgres.start_system,
    ("postgres", "embedded"): postgres.start_embedded,
    ("postgres", "url"): url.start_postgres,
}


class _Attempt:
    """One service being started in its own thread."""

    def __init__(self, name: str, order: Sequence[str], deadline: float) -> None:
        self.name = name
        self.order = order
        self.deadline = deadline
        self.reasons: list[str] = []
        self.trying = ""
        self.service: Service | None = None
        self.abandoned = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"signoff-start-{name}", daemon=True)

    def _run(self) -> None:
        for backend in self.order:
            if time.monotonic() >= self.deadline:
                self.reasons.append(f"{backend}: not tried, out of time")
                continue
            self.trying = backend
            started = time.monotonic()
            try:
                service = FACTORIES[(self.name, backend)](self.deadline)
            except Exception as exc:
                self.reasons.append(f"{backend}: {exc}")
                continue
            service.startup_s = time.monotonic() - started
            with self.lock:
                keep = not self.abandoned
                if keep:
                    self.service = service
            if not keep:  # start_services gave up on us meanwhile: nobody will stop it
                service.stop()
            return

    def abandon(self) -> Service | None:
        with self.lock:
            self.abandoned = True
            return self.service

    def problem(self) -> str:
        reasons = list(self.reasons)
        if self.thread.is_alive():
            reasons.append(f"{self.trying}: still starting when the time ran out")
        return f"{self.name}: " + "; ".join(reasons)


def start_services(
    names: Sequence[str], backend: str = "auto", timeout: float = 60.0
) -> dict[str, Service]:
    """Start each named service, in parallel (threads), each from the first backend that works
    in the order docker, system, embedded, url (or only `backend` if not "auto").

    Raises ServiceError whose message names, per service, every backend tried and why it was
    not usable. If one service fails, the ones already started are stopped before raising.
    Never waits longer than `timeout` overall."""
    unknown = [n for n in names if n not in SERVICE_NAMES]
    if unknown:
        raise UsageError(
            f"unknown service(s) {', '.join(map(repr, unknown))}; known: {', '.join(SERVICE_NAMES)}"
        )
    if backend != "auto" and backend not in BACKENDS:
        raise UsageError(f"unknown services backend {backend!r}; use auto, {', '.join(BACKENDS)}")
    order = BACKENDS if backend == "auto" else (backend,)
    deadline = time.monotonic() + timeout
    # the backends get a little less, so that a last readiness ping ends before we give up
    inner = deadline - min(2.0, 0.1 * timeout)
    attempts = [_Attempt(name, order, inner) for name in dict.fromkeys(names)]
    try:
        for attempt in attempts:
            attempt.thread.start()
        for attempt in attempts:
            attempt.thread.join(max(0.0, deadline - time.monotonic()))
    except BaseException:  # Ctrl-C: stop what is up; threads still starting stop theirs
        stop_services({a.name: s for a in attempts if (s := a.abandon()) is not None})
        raise
    # from here on, each thread has either handed us its service or will stop it itself
    started = {a.name: s for a in attempts if (s := a.abandon()) is not None}
    failed = [a for a in attempts if a.name not in started]
    if failed:
        stop_services(started)
        raise ServiceError("\n".join(a.problem() for a in failed))
    return started


def stop_services(services: Mapping[str, Service]) -> None:
    """Stop every service (thawing first). Never raises."""
    threads = [
        threading.Thread(target=_stop_quietly, args=(s,), name=f"signoff-stop-{n}", daemon=True)
        for n, s in services.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)


def _stop_quietly(service: Service) -> None:
    with contextlib.suppress(Exception):
        service.stop()
