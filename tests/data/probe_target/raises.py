"""Raises while importing."""


def _read_config() -> None:
    raise RuntimeError("config missing: APP_SECRET")  # <- raise


_read_config()
