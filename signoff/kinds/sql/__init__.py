"""[[sql]]: queries on the run's real Postgres, as a role under row-level security, after the
claims' setup files (check.py; the run's database and its setup: database.py)."""
