"""A module that is slow to import, as a big library is on a cold start (SQLAlchemy, Celery):
imported on first use by lazy_client.py, inside the first call."""

import time

IMPORT_S = 0.6

time.sleep(IMPORT_S)  # <- slow import
