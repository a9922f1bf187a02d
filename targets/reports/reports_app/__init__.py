"""The reports backend of seed 003: a FastAPI app that starts PDF and external-API jobs at once
and a Celery worker that does them (Redis as broker and result backend, job records in Postgres).

This package's import is tiny and lazy: it imports nothing of its own (no FastAPI, Celery,
SQLAlchemy or redis-py, no cron or webhooks) and connects nowhere. Each module imports what it
needs when it is used: `reports_app.web:app` (the ASGI app), `reports_app.tasks` (the Celery app,
for `celery -A reports_app.tasks worker`), `reports_app.health` (the checks).
"""
