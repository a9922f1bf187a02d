"""Redis and Postgres for a run: started once, in parallel, on free loopback ports, from the
first backend that works (docker, system, embedded, url), with kill/restart/freeze/thaw. The
target's own dependencies ([target].dependencies) are services too: `dependency.py`."""

from signoff.services.base import Service
from signoff.services.dependency import (
    DependencyService,
    DependencyStarts,
    Surroundings,
    start_dependency,
    start_with_dependencies,
)
from signoff.services.start import BACKENDS, SERVICE_NAMES, start_services, stop_services

__all__ = [
    "BACKENDS",
    "SERVICE_NAMES",
    "DependencyService",
    "DependencyStarts",
    "Service",
    "Surroundings",
    "start_dependency",
    "start_services",
    "start_with_dependencies",
    "stop_services",
]
