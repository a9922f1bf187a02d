"""signoff's errors. Each family maps to one exit status of the command line."""

from __future__ import annotations

from dataclasses import dataclass


class SignoffError(Exception):
    """Base of every error signoff raises on purpose."""

    exit_status = 3


class UsageError(SignoffError):
    """The command line is wrong."""

    exit_status = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a claims file: where it is, and what was expected."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ClaimsError(UsageError):
    """The claims file is wrong. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ServiceError(SignoffError):
    """A service (Redis, Postgres) could not be provided by any backend."""

    exit_status = 3


class HarnessError(SignoffError):
    """The harness itself could not run (a deadline, a missing interpreter, ...)."""

    exit_status = 3
