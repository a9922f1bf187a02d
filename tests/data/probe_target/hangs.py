"""Never finishes importing."""

import time

time.sleep(60)  # <- hang
