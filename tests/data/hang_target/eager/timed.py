"""Writes the wall time its import started to $HANG_T0_FILE, then imports eager.tasks (which
hangs): how long `signoff hang` takes from the start of the import to the stuck frame."""

import os
import time

with open(os.environ["HANG_T0_FILE"], "w") as out:
    out.write(repr(time.time()))

from eager import tasks  # noqa: F401
