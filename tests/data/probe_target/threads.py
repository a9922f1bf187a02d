"""Starts a background thread at import time."""

import threading
import time


def worker() -> None:
    time.sleep(30)


threading.Thread(target=worker, daemon=True).start()  # <- thread
