"""Connects to Redis at import time, with no timeouts at all: the import hangs for as long as
Redis does not answer (the seeds' `core.tasks`)."""

import os

import redis

client = redis.Redis.from_url(os.environ["REDIS_URL"])
client.ping()  # <- stuck
