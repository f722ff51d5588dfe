"""The exception hierarchy: every error grpo-fast raises on purpose is a `GrpoError`."""

from __future__ import annotations


class GrpoError(Exception):
    """Base class. `file`, `line` (1-based) and `field` (a path such as `responses[3].score`)
    locate the problem when it comes from input data; any of them may be None."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field


class DataError(GrpoError):
    """A record is malformed: bad JSON, a missing or mistyped field, an out-of-range score."""


class GrpoIOError(GrpoError):
    """A file could not be opened, read, decompressed or written."""


class ConfigError(GrpoError):
    """An option or configuration value is invalid."""


class VerifierError(GrpoError):
    """A verifier could not be built or failed as a whole (single bad items become verdicts instead)."""


class SandboxError(GrpoError):
    """The sandbox daemon could not be reached, started, or refused a request."""
