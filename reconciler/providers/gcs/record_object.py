"""One of saxctl's records in the admin bucket as a set of entries: read where it is (the admin bucket, or the stash
while a replace of that bucket is under way: records.py), rewritten with a generation precondition.

A record is read once per run (the run holds the lock, so only this process writes it meanwhile). Each change is
computed from the copy read and written only if the object is still at that generation; a lost race (or a write of
ours whose reply was lost) re-reads and tries again. An entry is recorded before the thing it records is made and
forgotten after it is gone, so a run killed in between leaves nothing saxctl made unrecorded.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, Generic, TypeVar

from reconciler.errors import SaxctlError
from reconciler.providers.gcs.records import AdminRecords
from reconciler.providers.google_errors import remote_call

TIMEOUT = 30  # seconds per request
_WRITE_ROUNDS = 5  # re-reads after a lost generation race before giving up (only another writer causes one)

EntryT = TypeVar("EntryT")


class RecordObject(Generic[EntryT]):
    """A record of `what` (e.g. "IAM members") at `name` under the admin bucket; subclasses say how its body reads
    (parse, raising SaxctlError naming the object) and is written (body)."""

    what = ""

    def __init__(self, records: AdminRecords, name: str, spec_name: str):
        self._records = records
        self._name = name
        self.spec_name = spec_name  # whose admin bucket it lives in: every entry is that spec's
        self.location = f"gs://{records.admin}/{name}"
        self._lock = threading.Lock()
        self._loaded: tuple[frozenset[EntryT], int] | None = None  # (entries, generation; 0 = no object)

    def parse(self, body: bytes, location: str) -> frozenset[EntryT]:
        raise NotImplementedError

    def body(self, entries: frozenset[EntryT]) -> str:
        raise NotImplementedError

    @functools.cached_property
    def _blob(self):
        """Its object in the admin bucket (made when first used: an offline plan has no storage client)."""
        return self._records.admin_blob(self._name)

    def read_entries(self) -> frozenset[EntryT]:
        with self._lock:
            return self._state()[0]

    def update(self, change: Callable[[frozenset[EntryT]], frozenset[EntryT]]) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with self._lock:
            for _ in range(_WRITE_ROUNDS):
                current, generation = self._state()
                wanted = change(current)
                if wanted == current:
                    return
                with remote_call("storage.objects.insert", self.location):
                    try:
                        self._blob.upload_from_string(self.body(wanted), content_type="application/json",
                                                      if_generation_match=generation, timeout=TIMEOUT, retry=None)
                    except PreconditionFailed:  # written meanwhile (or our own write whose reply was lost)
                        self._loaded = None
                        continue
                    except NotFound:
                        raise SaxctlError(f"cannot record {self.what} in {self.location}: the admin bucket does "
                                          "not exist") from None
                self._loaded = (wanted, int(self._blob.generation))
                return
        raise SaxctlError(f"{self.location} kept changing while saxctl was writing it",
                          hint="Is another saxctl run editing it? Run `saxctl plan` again.")

    def _state(self) -> tuple[frozenset[EntryT], int]:
        if self._loaded is None:
            found = self._records.read(self._name)
            if found is None:  # no object yet, or no admin bucket yet: nothing was recorded
                self._loaded = (frozenset(), 0)
            else:
                body, generation, location = found
                self._loaded = (self.parse(body, location), generation)
        return self._loaded
