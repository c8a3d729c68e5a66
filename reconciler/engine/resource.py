"""The values the engine moves around: desired resources, observed state, and changes between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from reconciler.engine.address import Address


@dataclass(frozen=True, slots=True)
class Ref:
    """A value that is an output of another resource (a cluster's endpoint, an account's unique id).

    Known at plan time when that resource exists and stays; otherwise "known after apply", and the walker hands
    the dependent the value its parent's apply returned.
    """

    address: Address
    output: str  # a key of the parent's Observed.outputs


class _Unknown:
    """The value of a Ref that only the apply will know."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True, slots=True)
class Requirement:
    """A fact a resource needs of a resource it depends on before its change is made: an output of that one, at
    least some value (a checkpoint's commit markers written, a workload's replicas available).

    Checked in the plan when the other's outputs can be read (it exists and this plan leaves it as it is), and again
    right before the call. A fact that `settles` comes true by itself (a rollout under way): the apply waits for it,
    up to wait_s. One that does not (markers nothing in this plan writes) is a problem of the plan.
    """

    address: Address
    output: str  # a key of that resource's Observed.outputs
    at_least: int  # True/False count as 1/0
    what: str  # the fact in words, for messages: "commit markers", "available model servers"
    field: str  # the spec field a problem points at
    settles: bool = False
    wait_s: float = 0.0

    def unmet(self, outputs: Mapping[str, Any] | None) -> str | None:
        """Why it does not hold with these outputs of self.address (with the numbers); None when it holds or when
        the outputs are not known (the check happens again before the call)."""
        if outputs is None or self.output not in outputs or outputs[self.output] is UNKNOWN:
            return None
        value = outputs[self.output]
        if int(value or 0) >= int(self.at_least):
            return None
        if isinstance(value, bool) or isinstance(self.at_least, bool):
            return f"{self.address} has no {self.what} yet"
        return f"{self.address} has {int(value or 0)} {self.what}, {int(self.at_least)} needed"


@dataclass(frozen=True, slots=True)
class Resource:
    """One desired object, built from the spec. Never mutated."""

    address: Address
    kind: str  # e.g. "gcs.bucket"; selects the provider (always address.kind)
    name: str  # the object's name at the API, e.g. the bucket name
    fields: Mapping[str, Any]  # the fields saxctl owns, JSON-compatible, in saxctl's normal form; may hold Refs
    depends_on: tuple[Address, ...] = ()  # changed after these (created after, deleted before)
    inside: Address | None = None  # lives inside that object: absent while it is, gone when it is replaced
    replace_on: frozenset[str] = frozenset()  # dotted field paths (or their prefixes) that cannot change in place
    list_keys: Mapping[str, str] = field(default_factory=dict)  # list path → item key ("" = compare as a set)
    params: Mapping[str, Any] = field(default_factory=dict)  # what the provider needs to act, not compared; may hold Refs
    spec_field: str = ""  # where in the spec it comes from, e.g. "buckets.admin"
    timeout_s: float | None = None  # deadline of one change of it (long operations), retries included
    remote_id: str = ""  # how the API names it, for messages ("gs://my-sax-admin"); the name when empty
    requires: tuple[Requirement, ...] = ()  # facts of what it depends on that its changes need (not its deletes)

    @property
    def shown_id(self) -> str:
        return self.remote_id or self.name

    def __post_init__(self) -> None:
        if self.address.kind != self.kind:
            raise ValueError(f"{self.address}: address kind {self.address.kind} is not the resource kind {self.kind}")

    @property
    def parents(self) -> tuple[Address, ...]:
        """Everything it waits for: its dependencies and the object it lives in."""
        return self.depends_on + ((self.inside,) if self.inside and self.inside not in self.depends_on else ())


@dataclass(frozen=True, slots=True)
class Observed:
    """The live state of one object as its provider read it, normalised to the same form as Resource.fields."""

    address: Address
    remote_id: str  # how the API names it, for messages: "gs://my-sax-admin"
    fields: Mapping[str, Any]
    fingerprint: str  # changes whenever the object changes (etag, generation...): a saved plan checks it
    owner: str | None  # the spec name in saxctl's ownership mark, or None when the object carries no mark
    facts: Mapping[str, Any] = field(default_factory=dict)  # provider-specific, e.g. a bucket's metageneration
    outputs: Mapping[str, Any] = field(default_factory=dict)  # what other resources may Ref (endpoint, email...)


# facts[SETTLING]: how far an object has got on its own way to the spec (a model's load under way), "" when it is not
# on its way. Its change only waits for it: no field differs, and nobody changed anything (drift does not count it).
SETTLING = "settling"

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
    path: str  # dotted path inside Resource.fields, e.g. "labels.team"; list items as [key=value]
    before: Any  # None when the field is absent
    after: Any  # None when the field goes away; UNKNOWN when only the apply will know
    forces_replacement: bool = False


@dataclass(frozen=True, slots=True)
class Hazard:
    """What a delete or replace would destroy, in plain words, and whether the user must say yes to it by name."""

    what: str  # e.g. "gs://my-sax-admin holds 12 objects (the Sax root): they will be deleted"
    needs_approval: bool  # False for what saxctl can rebuild on its own (a checkpoint converted again)
    approved_by: str | None = None  # the flag that approved it, recorded in a saved plan
    destroy_flag: str | None = None  # a flag that approves it for every object of its kind in a destroy


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
    hazard: Hazard | None = None
    pruned: bool = False  # saxctl made it, the spec no longer has it
    shown: Mapping[str, Any] | None = None  # desired fields as the plan knows them (UNKNOWN where it cannot)

    @property
    def before(self) -> Mapping[str, Any] | None:
        return self.observed.fields if self.observed is not None else None

    @property
    def after(self) -> Mapping[str, Any] | None:
        if self.action is Action.DELETE or self.desired is None:
            return None
        return self.shown if self.shown is not None else self.desired.fields

    def with_desired(self, desired: Resource) -> Change:
        return replace(self, desired=desired)


def resolve_refs(value: Any, outputs: Mapping[Address, Mapping[str, Any] | None]) -> Any:
    """value with every Ref replaced by its parent's output, or UNKNOWN where the parent's outputs are not known."""
    if isinstance(value, Ref):
        known = outputs.get(value.address)
        if known is None or value.output not in known:
            return UNKNOWN
        return known[value.output]
    if isinstance(value, Mapping):
        return {key: resolve_refs(item, outputs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_refs(item, outputs) for item in value)
    return value


def has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_unknown(item) for item in value)
    return False


def refs_in(value: Any) -> set[Address]:
    """The addresses whose outputs value refers to."""
    if isinstance(value, Ref):
        return {value.address}
    if isinstance(value, Mapping):
        return set().union(*(refs_in(item) for item in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(refs_in(item) for item in value)) if value else set()
    return set()


def resolved(resource: Resource, outputs: Mapping[Address, Mapping[str, Any] | None]) -> Resource:
    """The resource with its fields and params resolved against its parents' outputs."""
    if not refs_in(resource.fields) and not refs_in(resource.params):
        return resource
    return replace(resource, fields=resolve_refs(resource.fields, outputs), params=resolve_refs(resource.params, outputs))
