"""The ownership record of IAM members: which members saxctl added to which policies, kept in the admin bucket.

A policy member carries no mark of its own, so what saxctl added is written down here, and only what is written
here is ever removed. One small JSON object, `saxctl/iam-members.json`, read once per run (the run holds the lock,
so only this process writes it meanwhile) and rewritten with a generation precondition. A member is recorded
before it is added to a policy and forgotten after it is removed from one, so that a run killed in between leaves
nothing saxctl added unrecorded. It is one of saxctl's records in the admin bucket (gcs/records.py): read from the
stash while a replace of that bucket has left it there, and never read in an admin bucket a plan saw missing.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from reconciler.errors import SaxctlError
from reconciler.providers.gcs.records import AdminRecords
from reconciler.providers.google_errors import remote_call

RECORD_OBJECT = "saxctl/iam-members.json"
FORMAT = "saxctl/iam-members"
TIMEOUT = 30  # seconds per request
_WRITE_ROUNDS = 5  # re-reads after a lost generation race before giving up (only another writer causes one)


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One member saxctl added: to whose policy, in which role, for which of its resources (kind and name)."""

    kind: str  # iam.project_binding or iam.workload_identity
    name: str  # the address name: the role, or NAMESPACE/KSA
    resource: str  # the policy's resource: projects/P, or projects/P/serviceAccounts/EMAIL
    role: str
    member: str


class MemberRecord:
    def __init__(self, records: AdminRecords, spec_name: str):
        self._records = records
        self.spec_name = spec_name  # whose admin bucket it lives in: every entry is that spec's
        self.location = f"gs://{records.admin}/{RECORD_OBJECT}"
        self._lock = threading.Lock()
        self._loaded: tuple[frozenset[Entry], int] | None = None  # (entries, generation; 0 = no object)

    @functools.cached_property
    def _blob(self):
        """Its object in the admin bucket (made when first used: an offline plan has no storage client)."""
        return self._records.admin_blob(RECORD_OBJECT)

    def entries(self) -> frozenset[Entry]:
        with self._lock:
            return self._state()[0]

    def add(self, entries: Iterable[Entry]) -> None:
        wanted = frozenset(entries)
        self._update(lambda current: current | wanted)

    def forget(self, keep: Callable[[Entry], bool]) -> None:
        """Drop every entry for which keep() is false."""
        self._update(lambda current: frozenset(entry for entry in current if keep(entry)))

    def _state(self) -> tuple[frozenset[Entry], int]:
        if self._loaded is None:
            self._loaded = self._read()
        return self._loaded

    def _read(self) -> tuple[frozenset[Entry], int]:
        found = self._records.read(RECORD_OBJECT)
        if found is None:  # no object yet, or no admin bucket yet: nothing was recorded
            return frozenset(), 0
        body, generation, location = found
        return self._parse(body, location), generation

    def _parse(self, body: bytes, location: str) -> frozenset[Entry]:
        try:
            document = json.loads(body)
            if document.get("kind") != FORMAT:
                raise ValueError(f"kind is {document.get('kind')!r}, not {FORMAT!r}")
            return frozenset(Entry(**entry) for entry in document["members"])
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise SaxctlError(f"{location} is not a record of IAM members saxctl can read: {error}",
                              hint="Restore it from the bucket's versions, or delete it and apply with --adopt "
                                   "to record the members again.") from None

    def _update(self, change: Callable[[frozenset[Entry]], frozenset[Entry]]) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with self._lock:
            for _ in range(_WRITE_ROUNDS):
                current, generation = self._state()
                wanted = change(current)
                if wanted == current:
                    return
                with remote_call("storage.objects.insert", self.location):
                    try:
                        self._blob.upload_from_string(self._body(wanted), content_type="application/json",
                                                      if_generation_match=generation, timeout=TIMEOUT, retry=None)
                    except PreconditionFailed:  # written meanwhile (or our own write whose reply was lost)
                        self._loaded = None
                        continue
                    except NotFound:
                        raise SaxctlError(f"cannot record IAM members in {self.location}: the admin bucket does "
                                          "not exist") from None
                self._loaded = (wanted, int(self._blob.generation))
                return
        raise SaxctlError(f"{self.location} kept changing while saxctl was writing it",
                          hint="Is another saxctl run editing it? Run `saxctl plan` again.")

    def _body(self, entries: frozenset[Entry]) -> str:
        return json.dumps({"kind": FORMAT, "version": 1, "spec": self.spec_name,
                           "members": [asdict(entry) for entry in sorted(entries)]}, indent=1) + "\n"
