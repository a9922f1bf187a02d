"""Issues a warning at import time."""

import warnings

warnings.warn("this module is deprecated", DeprecationWarning, stacklevel=1)  # <- warn
