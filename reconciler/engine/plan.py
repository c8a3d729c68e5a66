"""Build a Plan: observe the live state of the desired resources, diff them, and collect the changes with reasons.

A plan is a value (Terraform's internal/plans): computed without side effects, then shown, saved or applied.
"""

from __future__ import annotations

import datetime
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from reconciler.engine.graph import Graph
from reconciler.engine.provider import Provider
from reconciler.engine.resource import ABSENT, Action, Address, Change, Observed, Resource, fingerprint_of
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RetryableError, SaxctlError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpecRef:
    name: str  # metadata.name: the ownership mark
    file: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """An object saxctl would have to change but does not own: the plan cannot be applied as it is."""

    address: Address
    remote_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A part of the spec that was validated but has no provider yet: listed, never silently dropped."""

    address: Address
    spec_field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str  # "apply" or "destroy"
    spec: SpecRef
    changes: tuple[Change, ...]  # in the order they would be walked (dependencies first; deletes reversed)
    conflicts: tuple[Conflict, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    fingerprints: Mapping[Address, str] = field(default_factory=dict)  # every object observed
    targets: tuple[Address, ...] = ()
    created_at: str = ""

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)


class ProviderSet:
    """Providers by resource kind. The engine asks it, never a cloud client."""

    def __init__(self, providers: Sequence[Provider], retry: RetryPolicy | None = None):
        self._retry = retry or RetryPolicy.from_environment()
        self.by_kind: dict[str, Provider] = {}
        for provider in providers:
            for kind in provider.kinds:
                self.by_kind[kind] = provider

    def for_kind(self, kind: str) -> Provider:
        try:
            return self.by_kind[kind]
        except KeyError:
            raise SaxctlError(f"no provider serves resources of kind {kind}") from None

    def observe(self, resources: Sequence[Resource]) -> dict[Address, Observed | None]:
        """Observe in one batch per provider, providers in parallel (each provider batches its own reads)."""
        batches: dict[int, tuple[Provider, list[Resource]]] = {}
        for resource in resources:
            provider = self.for_kind(resource.kind)
            batches.setdefault(id(provider), (provider, []))[1].append(resource)
        observed: dict[Address, Observed | None] = {}
        if not batches:
            return observed
        with ThreadPoolExecutor(max_workers=len(batches), thread_name_prefix="observe") as pool:
            for result in pool.map(lambda batch: self._observe_batch(*batch), batches.values()):
                observed.update(result)
        return observed

    def _observe_batch(self, provider: Provider, resources: list[Resource]) -> Mapping[Address, Observed | None]:
        """Reads are safe to repeat: a transient failure (429, 5xx, reset) is retried like an apply step."""

        def note(attempt: int, error: RetryableError, delay: float) -> None:
            log.warning("retrying in %.1fs (attempt %d failed: %s)", delay, attempt, error.message)

        return self._retry.call(lambda: provider.observe(resources), note)


def build_plan(
    resources: Sequence[Resource],
    providers: ProviderSet,
    spec: SpecRef,
    *,
    mode: str = "apply",
    adopt: bool = False,
    targets: Sequence[Address] = (),
    unmanaged: Sequence[Unmanaged] = (),
) -> Plan:
    graph = Graph(resources)
    selected = graph.closure(targets) if targets else set(graph.order)
    order = [address for address in graph.order if address in selected]
    observed = providers.observe([graph.resources[address] for address in order])

    changes: list[Change] = []
    conflicts: list[Conflict] = []
    for address in order:
        desired, live = graph.resources[address], observed.get(address)
        if mode == "destroy":
            change = _destroy_change(desired, live, spec.name)
        else:
            conflict = _ownership_conflict(live, spec.name, adopt)
            if conflict:
                conflicts.append(conflict)
                continue
            change = providers.for_kind(desired.kind).diff(desired, live)
            if live is not None and live.owner != spec.name:
                change = _as_adoption(change, live)
        if change is not None:
            changes.append(change)
    if mode == "destroy":
        changes.reverse()
    return Plan(
        mode=mode,
        spec=spec,
        changes=tuple(changes),
        conflicts=tuple(conflicts),
        unmanaged=tuple(unmanaged),
        fingerprints={address: fingerprint_of(observed.get(address)) for address in order},
        targets=tuple(targets),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _ownership_conflict(live: Observed | None, owner: str, adopt: bool) -> Conflict | None:
    if live is None or live.owner == owner or adopt:
        return None
    if live.owner is None:
        why = f"{live.remote_id} exists but saxctl did not create it (it carries no saxctl ownership mark)"
    else:
        why = f"{live.remote_id} belongs to another saxctl spec, {live.owner!r}"
    return Conflict(live.address, live.remote_id, f"{why}; rerun with --adopt to take it over")


def _as_adoption(change: Change, live: Observed) -> Change:
    previous = "no owner" if live.owner is None else f"spec {live.owner!r}"
    action = Action.UPDATE if change.action is Action.NOOP else change.action
    reason = f"adopt {live.remote_id} (was: {previous})" + (f"; {change.reason}" if change.field_changes else "")
    return Change(change.address, change.kind, action, reason, change.field_changes, change.desired, change.observed)


def _destroy_change(desired: Resource, live: Observed | None, owner: str) -> Change | None:
    if live is None:
        return None
    if live.owner != owner:
        who = "no saxctl mark" if live.owner is None else f"owned by spec {live.owner!r}"
        return Change(desired.address, desired.kind, Action.NOOP, f"left alone: {live.remote_id} has {who}",
                      desired=desired, observed=live)
    return Change(desired.address, desired.kind, Action.DELETE, f"destroy {live.remote_id}",
                  desired=desired, observed=live)


def stale_objects(plan: Plan, providers: ProviderSet) -> list[str]:
    """Re-observe everything the plan saw; describe each object whose fingerprint moved since."""
    current = providers.observe([change.desired for change in plan.changes if change.desired is not None])
    moved = []
    for address, then in plan.fingerprints.items():
        if address not in current:
            continue
        now = fingerprint_of(current[address])
        if now != then:
            moved.append(f"{address}: {_describe(then)} → {_describe(now)}")
    return moved


def _describe(fingerprint: str) -> str:
    return "did not exist" if fingerprint == ABSENT else fingerprint
