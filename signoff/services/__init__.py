"""Redis and Postgres for a run: started once, in parallel, on free loopback ports, from the
first backend that works (docker, system, embedded, url), with kill/restart/freeze/thaw."""

from signoff.services.base import Service
from signoff.services.start import BACKENDS, SERVICE_NAMES, start_services, stop_services

__all__ = ["BACKENDS", "SERVICE_NAMES", "Service", "start_services", "stop_services"]
