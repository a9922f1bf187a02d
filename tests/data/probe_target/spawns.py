"""Starts a subprocess at import time, in a session of its own, and leaves it running."""

import os
import subprocess
import sys

_proc = subprocess.Popen(  # <- spawn
    [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
)
with open(os.environ["PROBE_PIDFILE"], "w") as _f:
    _f.write(str(_proc.pid))
