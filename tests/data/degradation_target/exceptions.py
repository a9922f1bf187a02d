class ServiceUnavailableError(Exception):
    """A service is down; the caller gets this instead of a driver's exception."""
