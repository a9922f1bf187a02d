"""What the backend tests share: the standing services of the machine, a Docker engine with
the local images, and the rule that a missing one is a skip here but a failure in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from signoff.errors import ServiceError
from signoff.services import docker as docker_backend
from signoff.services.images import Built, build_images
from signoff.services.url import PostgresUrl, RedisUrl

# the machine's own Redis and PostgreSQL (system services, trust auth): never faulted
# directly, only through a claim's proxy; Redis database 9 keeps clear of others' keys
STANDING_REDIS = "redis://127.0.0.1:6379/9"
STANDING_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def unavailable(problem: str) -> None:
    """Skip, except in CI (CI=true, as .ci/run and GitHub set it), where what the backend
    tests need must be there: a skipped backend is a backend CI never ran."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(problem)


def standing_urls() -> dict[str, str]:
    """REDIS_URL and DATABASE_URL of the machine's standing services, once both answer."""
    for kind, url in ((RedisUrl, STANDING_REDIS), (PostgresUrl, STANDING_POSTGRES)):
        try:
            kind(url).ping(timeout=2.0)
        except ServiceError as exc:
            unavailable(f"the machine's standing {kind.name} does not answer: {exc}")
    return {"REDIS_URL": STANDING_REDIS, "DATABASE_URL": STANDING_POSTGRES}


@pytest.fixture(scope="session")
def docker_images() -> Iterator[list[Built]]:
    """A Docker engine that answers, with signoff-redis:local and signoff-postgres:local
    built (once: skipped when the tag has the same inputs)."""
    problem = docker_backend.engine_problem()
    if problem is not None:
        unavailable(f"{problem} (.ci/docker-engine start)")
    yield build_images()
