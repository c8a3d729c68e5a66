"""The bucket resources the GCS front layer keeps, with the project each belongs to, so they survive a restart."""

from __future__ import annotations

import threading
from pathlib import Path

from reconciler.sandbox.base.store import ResourceStore


class BucketStore:
    """name → {"project": id, "resource": storage v1 Bucket}; every change is written through atomically."""

    def __init__(self, path: Path):
        self._store = ResourceStore(path)

    @property
    def lock(self) -> threading.RLock:
        """Held across a read-check-write (preconditions) so two writers cannot both pass the same check."""
        return self._store.lock

    def get(self, name: str) -> dict | None:
        stored = self._store.get(name)
        return stored.resource["resource"] if stored else None

    def project_of(self, name: str) -> str | None:
        stored = self._store.get(name)
        return stored.resource["project"] if stored else None

    def list(self, project: str, prefix: str = "") -> list[dict]:
        return [stored.resource["resource"] for _, stored in self._store.list(prefix)
                if stored.resource["project"] == project]

    def put(self, project: str, resource: dict) -> None:
        self._store.put(resource["name"], {"project": project, "resource": resource})

    def delete(self, name: str) -> None:
        with self._store.lock:
            if self._store.get(name) is not None:
                self._store.delete(name)
