"""Providers by resource kind, each built the first time a resource of its kinds needs it; batched, retried reads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Detail, Owned, Provider
from reconciler.engine.resource import Change, Observed, Resource
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RetryableError, SaxctlError


@dataclass(frozen=True, slots=True)
class LazyProvider:
    """A provider not built yet: its client may be slow to import or need another resource's outputs."""

    kinds: frozenset[str]
    build: Callable[[], Provider]


ReadRetryNote = Callable[[str, int, RetryableError, float], None]  # (what, attempt, error, delay)


class ProviderSet:
    """The engine asks it, never a cloud client."""

    def __init__(self, providers: Sequence[Provider | LazyProvider], retry: RetryPolicy | None = None,
                 on_read_retry: ReadRetryNote | None = None):
        self._retry = retry or RetryPolicy.from_environment()
        self._on_read_retry = on_read_retry
        self._entries: dict[str, Provider | LazyProvider] = {}
        self._built: dict[int, Provider] = {}
        self._lock = threading.Lock()
        for provider in providers:
            for kind in provider.kinds:
                self._entries[kind] = provider

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._entries)

    def for_kind(self, kind: str) -> Provider:
        try:
            entry = self._entries[kind]
        except KeyError:
            raise SaxctlError(f"no provider serves resources of kind {kind}") from None
        if not isinstance(entry, LazyProvider):
            return entry
        with self._lock:
            if id(entry) not in self._built:
                self._built[id(entry)] = entry.build()
            return self._built[id(entry)]

    def each(self) -> list[tuple[Provider, frozenset[str]]]:
        """Every provider (built now if it was not yet), once, with the kinds it serves here."""
        entries = {id(entry): entry for entry in self._entries.values()}
        return [(self.for_kind(next(iter(entry.kinds))), entry.kinds) for entry in entries.values()]

    def observe(self, resources: Sequence[Resource]) -> dict[Address, Observed | None]:
        """One batch per provider, providers in parallel (each provider batches its own reads)."""
        batches: dict[int, tuple[Provider, list[Resource]]] = {}
        for resource in resources:
            provider = self.for_kind(resource.kind)
            batches.setdefault(id(provider), (provider, []))[1].append(resource)
        observed: dict[Address, Observed | None] = {}
        for result in self._in_parallel(
                [(lambda p=provider, r=batch: p.observe(r), f"reading {', '.join(x.address for x in batch)}")
                 for provider, batch in batches.values()]):
            observed.update(result)
        return observed

    def owned(self, spec_name: str, known: Mapping[Address, Observed]) -> list[Owned]:
        """Every object any provider finds carrying this spec's mark (for pruning and destroy); known: the spec's
        objects the plan read that exist."""
        found: list[Owned] = []
        for result in self._in_parallel(
                [(lambda p=provider, k=kinds: p.owned(spec_name, k, known), "listing what this spec owns")
                 for provider, kinds in self.each()]):
            found.extend(result)
        return found

    def describe(self, changes: Sequence[Change]) -> list[Detail]:
        """Each provider's status details of its objects in these changes (reads retried like any read)."""
        details: list[Detail] = []
        for provider, kinds in self.each():
            mine = [change for change in changes if change.kind in kinds]
            if mine:
                details.extend(self.read(lambda p=provider, m=mine: p.describe(m), "reading the status of objects"))
        return details

    def read(self, operation: Callable[[], object], what: str):
        """One read, retried like an apply step on transient failures (reads are safe to repeat)."""

        def note(attempt: int, error: RetryableError, delay: float) -> None:
            if self._on_read_retry is not None:
                self._on_read_retry(what, attempt, error, delay)

        return self._retry.call(operation, note)

    def _in_parallel(self, reads: list[tuple[Callable[[], object], str]]) -> list:
        if not reads:
            return []
        if len(reads) == 1:
            return [self.read(*reads[0])]
        with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="observe") as pool:
            return list(pool.map(lambda read: self.read(*read), reads))

