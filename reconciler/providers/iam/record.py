"""The ownership record of IAM members: which members saxctl added to which policies, kept in the admin bucket.

A policy member carries no mark of its own, so what saxctl added is written down here, and only what is written
here is ever removed. One small JSON object, `saxctl/iam-members.json` (how it is read and written:
gcs/record_object.py). A member is recorded before it is added to a policy and forgotten after it is removed from
one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from reconciler.errors import SaxctlError
from reconciler.providers.gcs.record_object import RecordObject
from reconciler.providers.gcs.records import AdminRecords

RECORD_OBJECT = "saxctl/iam-members.json"
FORMAT = "saxctl/iam-members"


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One member saxctl added: to whose policy, in which role, for which of its resources (kind and name)."""

    kind: str  # iam.project_binding or iam.workload_identity
    name: str  # the address name: the role, or NAMESPACE/KSA
    resource: str  # the policy's resource: projects/P, or projects/P/serviceAccounts/EMAIL
    role: str
    member: str


class MemberRecord(RecordObject[Entry]):
    what = "IAM members"

    def __init__(self, records: AdminRecords, spec_name: str):
        super().__init__(records, RECORD_OBJECT, spec_name)

    def entries(self) -> frozenset[Entry]:
        return self.read_entries()

    def add(self, entries: Iterable[Entry]) -> None:
        wanted = frozenset(entries)
        self.update(lambda current: current | wanted)

    def forget(self, keep: Callable[[Entry], bool]) -> None:
        """Drop every entry for which keep() is false."""
        self.update(lambda current: frozenset(entry for entry in current if keep(entry)))

    def parse(self, body: bytes, location: str) -> frozenset[Entry]:
        try:
            document = json.loads(body)
            if document.get("kind") != FORMAT:
                raise ValueError(f"kind is {document.get('kind')!r}, not {FORMAT!r}")
            return frozenset(Entry(**entry) for entry in document["members"])
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise SaxctlError(f"{location} is not a record of IAM members saxctl can read: {error}",
                              hint="Restore it from the bucket's versions, or delete it and apply with --adopt "
                                   "to record the members again.") from None

    def body(self, entries: frozenset[Entry]) -> str:
        return json.dumps({"kind": FORMAT, "version": 1, "spec": self.spec_name,
                           "members": [asdict(entry) for entry in sorted(entries)]}, indent=1) + "\n"
