"""The bucket resources the GCS front layer keeps, in one JSON file so they survive a restart."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class BucketStore:
    """name → {"project": id, "resource": storage v1 Bucket}; every change is written through atomically."""

    def __init__(self, path: Path):
        self._path = path
        self._lock = threading.RLock()
        self._buckets: dict[str, dict] = {}
        if path.is_file():
            self._buckets = json.loads(path.read_text()).get("buckets", {})

    @property
    def lock(self) -> threading.RLock:
        """Held across a read-check-write (preconditions) so two writers cannot both pass the same check."""
        return self._lock

    def get(self, name: str) -> dict | None:
        with self._lock:
            entry = self._buckets.get(name)
            return entry["resource"] if entry else None

    def project_of(self, name: str) -> str | None:
        with self._lock:
            entry = self._buckets.get(name)
            return entry["project"] if entry else None

    def list(self, project: str, prefix: str = "") -> list[dict]:
        with self._lock:
            return [entry["resource"] for name, entry in sorted(self._buckets.items())
                    if entry["project"] == project and name.startswith(prefix)]

    def put(self, project: str, resource: dict) -> None:
        with self._lock:
            self._buckets[resource["name"]] = {"project": project, "resource": resource}
            self._save()

    def delete(self, name: str) -> None:
        with self._lock:
            self._buckets.pop(name, None)
            self._save()

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"buckets": self._buckets}, indent=1))
        os.replace(scratch, self._path)
