"""Dies without a word while importing."""

import os

os._exit(3)
