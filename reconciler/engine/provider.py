"""The one interface every API family plugs into (Crossplane's observe / diff / apply, Terraform's plan as a value)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from reconciler.engine.address import Address
from reconciler.engine.resource import Change, Hazard, Observed, Resource


class Abandoned(Exception):
    """Raised inside a provider's wait when the user asked to leave at once (a second Ctrl-C).

    The remote operation goes on; the next apply finds it and resumes.
    """


class Progress(Protocol):
    """What a provider may say and ask while one change is under way; the engine renders it."""

    def update(self, message: str) -> None:
        """A short status line, e.g. "waiting for operation-123 (RUNNING)"."""

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        """Work done so far, for long transfers (bytes by default)."""

    def operation(self, description: str | None) -> None:
        """A remote operation is under way (None: it finished), e.g. "operation-123 (CREATE_CLUSTER)".

        Named when the user interrupts: it goes on remotely, and the next apply resumes it.
        """

    def sleep(self, seconds: float) -> None:
        """Wait between polls; raises Abandoned when the run is leaving, TimeoutError past the change's deadline."""

    def time_left(self) -> float | None:
        """Seconds until the change's deadline (Resource.timeout_s), or None without one."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a change would fail if it were tried, found before any write (a preflight): the plan cannot be applied."""

    address: Address
    field: str  # the spec field to fix, e.g. "cluster.tpuPools[0].machineType"
    message: str  # with the numbers: "us-central1-a: TPU v5e chips quota 0 of 4 free; request more or pick another zone"
    kind: str = "preflight"  # "preflight": a provider's read found it; "precondition": a Requirement is not met


@dataclass(frozen=True, slots=True)
class Detail:
    """What `saxctl status` shows beside one object: what it holds now, in a few words ("1/1 ready", "2 nodes")."""

    address: str  # the plan's address; for an object outside the spec (foreign), its remote id
    text: str
    foreign: bool = False  # not this spec's: shown, never touched
    falls_short: bool = False  # in sync with the spec, yet not all of it serves (replicas not ready, models not loaded)


@dataclass(frozen=True, slots=True)
class Owned:
    """A live object carrying this spec's ownership mark, as its provider would delete it."""

    resource: Resource  # rebuilt from the live object: address, kind, name, params to act on it
    observed: Observed


class Provider:
    """Base of every provider. Subclasses set `kinds` and implement observe, diff and apply.

    `owned`, `preflight` and `hazard` have safe defaults: no pruning, no preflight, and no destructive change called
    dangerous.
    """

    kinds: frozenset[str] = frozenset()

    def observe(self, desired: Sequence[Resource]) -> Mapping[Address, Observed | None]:
        """Read the live state of these resources: batched reads, never a write. None: it does not exist."""
        raise NotImplementedError

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        """Pure: compare owned fields after normalising server defaults; no I/O."""
        raise NotImplementedError

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        """Perform one change and wait until the API says it is done; safe to retry. None after a delete.

        Raise errors.RetryableError for transient failures (429, 5xx, connection reset): the engine retries.
        A change's desired resource has its Refs resolved from what its parents' applies returned.
        """
        raise NotImplementedError

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """Pure (no I/O, no client): what observe() would read of `desired` in a world where `applied`, the resource
        an earlier spec had at the same address (None: it had none), was applied and nothing changed it since; None
        when no such object would be there (another name, another place). Its normal form is observe()'s: with the
        server's defaults, its outputs, and the facts diff() reads. The world of an offline plan (engine/offline.py).
        """
        raise NotImplementedError

    def left_behind(self, applied: Resource) -> Owned | None:
        """Pure: the object applying `applied` made, as owned() would find it once a spec no longer has it (its
        address there, what a delete needs, what hazard() reads); None when owned() would not find it."""
        return Owned(applied, self.modelled(applied, applied))

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """Every live object of these kinds that carries spec_name's ownership mark (reads only): what may be pruned,
        and what a destroy deletes. Found whether or not the spec still has a section of this family.

        known: the spec's objects this plan read that exist (a cluster and its endpoint, a bucket): where to look,
        since nothing is read inside an object that does not exist.
        """
        return ()

    def preflight(self, changes: Sequence[Change]) -> Sequence[Problem]:
        """Reads that tell, before any write, that these changes would fail (an offer or a quota missing).

        changes: the plan's creates, updates, replaces and deletes of these kinds. What a delete frees (a name, a
        quota) counts as free for what `claims` says needs it: the walk finishes that delete first.
        """
        return ()

    def claims(self, change: Change) -> frozenset[str]:
        """The limited things (a region's TPU quota, in the provider's own words) the object of `change` holds or
        asks for, beyond the name space of its kind in its parent, which every object claims: a delete goes before
        a create, replace or update of the same plan that claims something it frees."""
        return frozenset()

    def describe(self, changes: Sequence[Change]) -> Sequence[Detail]:
        """For `saxctl status`, after a plan: what each of these objects holds now (may read), and objects of the same
        kinds that no spec of saxctl owns (foreign)."""
        return ()

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """What the delete or replace `change` would destroy (may read, e.g. list a bucket), or None.

        going_inside: remote ids of objects inside this one that the same plan deletes first (not a loss here).
        """
        return None
