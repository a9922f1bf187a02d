"""An app whose import fails, as a misconfigured one does."""

raise RuntimeError("cannot start: SECRET_KEY is not set")
