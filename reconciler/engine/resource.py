"""The values the engine moves around: desired resources, observed state, and changes between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

Address = str  # e.g. "gcs.bucket.admin": the same string in plans, logs, --target and JSON


@dataclass(frozen=True, slots=True)
class Resource:
    """One desired object, built from the spec. Never mutated."""

    address: Address
    kind: str  # e.g. "gcs.bucket"; selects the provider
    name: str  # the object's name at the API, e.g. the bucket name
    fields: Mapping[str, Any]  # the fields saxctl owns, JSON-compatible, in saxctl's normal form
    depends_on: tuple[Address, ...] = ()
    replace_on: frozenset[str] = frozenset()  # top-level fields that cannot change in place
    params: Mapping[str, Any] = field(default_factory=dict)  # what the provider needs to act, not compared
    spec_field: str = ""  # where in the spec it comes from, e.g. "buckets.admin"

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "name": self.name,
            "fields": dict(self.fields),
            "depends_on": list(self.depends_on),
            "replace_on": sorted(self.replace_on),
            "params": dict(self.params),
            "spec_field": self.spec_field,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Resource:
        return cls(
            address=data["address"],
            kind=data["kind"],
            name=data["name"],
            fields=data["fields"],
            depends_on=tuple(data["depends_on"]),
            replace_on=frozenset(data["replace_on"]),
            params=data["params"],
            spec_field=data["spec_field"],
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """The live state of one object as its provider read it, normalised to the same form as Resource.fields."""

    address: Address
    remote_id: str  # how the API names it, for messages: "gs://my-sax-admin"
    fields: Mapping[str, Any]
    fingerprint: str  # changes whenever the object changes (etag, generation...): a saved plan checks it
    owner: str | None  # the spec name in saxctl's ownership mark, or None when the object carries no mark
    facts: Mapping[str, Any] = field(default_factory=dict)  # provider-specific, e.g. whether a bucket is empty


ABSENT = "absent"  # the fingerprint of an object that does not exist


def fingerprint_of(observed: Observed | None) -> str:
    return observed.fingerprint if observed is not None else ABSENT


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # dotted path inside Resource.fields, e.g. "labels.team"
    before: Any  # None when the field is absent
    after: Any  # None when the field goes away
    forces_replacement: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One planned action on one address, with the field-level before/after and the reason a person reads."""

    address: Address
    kind: str
    action: Action
    reason: str
    field_changes: tuple[FieldChange, ...] = ()
    desired: Resource | None = None
    observed: Observed | None = None

    @property
    def before(self) -> Mapping[str, Any] | None:
        return self.observed.fields if self.observed is not None else None

    @property
    def after(self) -> Mapping[str, Any] | None:
        if self.action is Action.DELETE or self.desired is None:
            return None
        return self.desired.fields
