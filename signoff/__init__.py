"""signoff: checks the claims of a fix summary against the real code.

A claims file (TOML) says what a fix summary promised; signoff runs each claim against the
target's own code in fresh interpreters, with real Redis and Postgres and injected faults, and
writes a report per claim: holds, fails, or error (could not be checked).
"""

__version__ = "0.1.0"
