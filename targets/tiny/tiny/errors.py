class ServiceUnavailableError(RuntimeError):
    """A service did not answer in time or refused the connection."""
