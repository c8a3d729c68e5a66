"""The one interface every API family plugs into (Crossplane's observe / diff / apply, Terraform's plan as a value)."""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from reconciler.engine.resource import Address, Change, Observed, Resource


class Progress(Protocol):
    """What a provider may say while one change is under way; the engine renders it."""

    def update(self, message: str) -> None:
        """A short status line, e.g. "waiting for operation-123 (RUNNING)"."""

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        """Work done so far, for long transfers (bytes by default)."""


class Provider(Protocol):
    kinds: frozenset[str]  # resource kinds it serves, e.g. {"gcs.bucket"}

    def observe(self, desired: Sequence[Resource]) -> Mapping[Address, Observed | None]:
        """Read the live state of these resources: batched reads, never a write. None: it does not exist."""

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        """Pure: compare owned fields after normalising server defaults; no I/O."""

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        """Perform one change and wait until the API says it is done; safe to retry. None after a delete.

        Raise errors.RetryableError for transient failures (429, 5xx, connection reset): the engine retries.
        """
