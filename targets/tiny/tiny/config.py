"""Settings from the environment. The timeouts are the ones the fix summary promises."""

import os

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TIMEOUT_S = float(os.environ.get("TINY_REDIS_TIMEOUT", "1"))
DATABASE_TIMEOUT_S = int(os.environ.get("TINY_DATABASE_TIMEOUT", "2"))
