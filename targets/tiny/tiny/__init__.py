"""tiny: a small service with a Redis cache and a Postgres database. Importing it connects to
nothing; clients are made on first use, with timeouts from tiny.config."""

__version__ = "1.0"
