"""A background process: writes its pid and REDIS_URL to $HTTP_TARGET_WORKER_FILE, then
waits to be stopped."""

from __future__ import annotations

import os
import signal
import time


def main() -> None:
    path = os.environ["HTTP_TARGET_WORKER_FILE"]
    with open(path + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {os.environ.get('REDIS_URL', '')}\n")
    os.replace(path + ".tmp", path)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
