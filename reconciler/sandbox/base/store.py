"""A thread-safe store of JSON resources by key, each with an etag that moves on every change; optionally on disk."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Stored:
    resource: dict  # a copy: changing it changes nothing stored
    etag: str  # canonical base64 of 8 bytes (the Google clients hand etags around as bytes: RECIPES §3)


class StoreError(Exception):
    def __init__(self, key: str, current_etag: str | None = None):
        super().__init__(key)
        self.key = key
        self.current_etag = current_etag


class AlreadyStored(StoreError):
    """create() of a key that exists."""


class NotStored(StoreError):
    """A conditional write or a delete of a key that does not exist."""


class StaleEtag(StoreError):
    """A write conditioned on an etag that is no longer the current one (`current_etag` says which is)."""


class ResourceStore:
    """key → (resource, etag). With a path, every change is written through atomically and reloaded on start."""

    def __init__(self, path: Path | None = None):
        self._path = path
        self._lock = threading.RLock()
        self._entries: dict[str, dict] = {}
        self._sequence = 0  # counts every change ever made, so that no two versions share an etag
        if path is not None and path.is_file():
            saved = json.loads(path.read_text())
            self._entries = saved["resources"]
            self._sequence = saved["sequence"]

    @property
    def lock(self) -> threading.RLock:
        """Held across a read-check-write so two writers cannot both pass the same check."""
        return self._lock

    def get(self, key: str) -> Stored | None:
        with self._lock:
            entry = self._entries.get(key)
            return _stored(entry) if entry else None

    def list(self, prefix: str = "") -> list[tuple[str, Stored]]:
        with self._lock:
            return [(key, _stored(entry)) for key, entry in sorted(self._entries.items()) if key.startswith(prefix)]

    def create(self, key: str, resource: dict) -> Stored:
        with self._lock:
            if key in self._entries:
                raise AlreadyStored(key, self._entries[key]["etag"])
            return self._write(key, resource)

    def put(self, key: str, resource: dict, if_etag: str | None = None) -> Stored:
        """Create or replace; with if_etag, only over that version."""
        with self._lock:
            self._check(key, if_etag)
            return self._write(key, resource)

    def delete(self, key: str, if_etag: str | None = None) -> Stored:
        with self._lock:
            entry = self._check(key, if_etag)
            if entry is None:
                raise NotStored(key)
            del self._entries[key]
            self._sequence += 1
            self._save()
            return _stored(entry)

    def _check(self, key: str, if_etag: str | None) -> dict | None:
        entry = self._entries.get(key)
        if if_etag is not None:
            if entry is None:
                raise NotStored(key)
            if entry["etag"] != if_etag:
                raise StaleEtag(key, entry["etag"])
        return entry

    def _write(self, key: str, resource: dict) -> Stored:
        self._sequence += 1
        digest = hashlib.sha256(f"{key}#{self._sequence}".encode()).digest()[:8]
        entry = {"resource": copy.deepcopy(resource), "etag": base64.b64encode(digest).decode()}
        self._entries[key] = entry
        self._save()
        return _stored(entry)

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"sequence": self._sequence, "resources": self._entries}, indent=1))
        os.replace(scratch, self._path)


def _stored(entry: dict) -> Stored:
    return Stored(copy.deepcopy(entry["resource"]), entry["etag"])
