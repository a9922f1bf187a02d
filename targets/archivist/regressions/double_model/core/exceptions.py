"""Archivist's exceptions. Importing this module imports nothing else."""

from __future__ import annotations


class ArchivistException(Exception):
    """The base of every error Archivist raises on purpose."""


class ConfigurationError(ArchivistException):
    """A setting in the environment is missing or malformed."""


class ServiceUnavailableError(ArchivistException):
    """A service (Redis, Postgres, the transcription queue) did not answer, or refused."""

    def __init__(self, message: str, service: str = "") -> None:
        super().__init__(message)
        self.service = service


class ConnectionTimeoutError(ServiceUnavailableError):
    """A service accepted the connection, or never answered it, and gave no answer in time."""


class TranscriptionError(ArchivistException):
    """A transcription job failed."""


class DatabaseError(ArchivistException):
    """A query failed for a reason other than the database being unreachable."""


class FileError(ArchivistException):
    """A media file is missing, unreadable or of an unknown format."""


class ValidationError(ArchivistException):
    """A request's input is invalid."""
