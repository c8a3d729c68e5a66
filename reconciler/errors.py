"""Error types that carry the message a user reads; the CLI maps each type to an exit code in one place."""

from __future__ import annotations

from dataclasses import dataclass


class SaxctlError(Exception):
    """An error with a message written for the user. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem in a spec file, located at the node that caused it."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    field: str  # dotted path, e.g. "cluster.tpuPools[0].topology"; "" for the document itself
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(SaxctlError):
    """The spec is invalid: every problem found, each with file:line:col and field path."""

    exit_code = 3

    def __init__(self, problems: list[SpecProblem]):
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


class RemoteError(SaxctlError):
    """An API refused or failed a call; the message names the API and the remote object."""


class RetryableError(RemoteError):
    """A transient failure (429, 5xx, connection reset): the engine retries it with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None, until_deadline: bool = False,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after  # seconds the server asked for (Retry-After), if any
        # It ends when something else finishes (GKE's one operation per cluster): retry until the change's
        # deadline rather than a fixed number of times.
        self.until_deadline = until_deadline


class ConflictError(SaxctlError):
    """The world is not as saxctl may change it: an object it does not own, a non-empty bucket..."""


class LockedError(SaxctlError):
    """Another run holds the lock."""


class StalePlanError(SaxctlError):
    """A saved plan no longer matches what the APIs report."""


class EndpointError(SaxctlError):
    """An API endpoint (real or sandbox) cannot be reached."""
