"""Build a Plan: observe the live state in dependency order, diff it, prune, and weigh what destructive changes lose.

A plan is a value (Terraform's internal/plans): computed without side effects, then shown, saved or applied.
Everything that decides what apply will do — an owner, an object's emptiness, the user's approvals — is decided
here and recorded in the plan, so that applying a saved plan does exactly what it showed.
"""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.graph import Graph, GraphError, levels
from reconciler.engine.provider import Problem
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import (
    ABSENT, Action, Change, Hazard, Observed, Resource, fingerprint_of, has_unknown, resolved,
)

NOT_READ = "not read"  # the fingerprint of an object that was not read: what it lives in is not there yet


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
class Blocked:
    """A destructive change that loses what the user has not agreed to lose: the plan cannot be applied as it is."""

    address: Address
    message: str  # what would be lost
    hint: str  # the flag that says yes to it


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A part of the spec that was validated but has no provider yet: listed, never silently dropped."""

    address: Address
    spec_field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Approvals:
    """What the user said yes to on the command line."""

    replace: frozenset[str] = frozenset()  # --allow-replace ADDRESS
    delete: frozenset[str] = frozenset()  # --allow-delete ADDRESS: prune (or destroy) it, whatever it holds
    destroy_flags: frozenset[str] = frozenset()  # e.g. --force-delete-buckets: what a Hazard's destroy_flag names


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str  # "apply" or "destroy"
    spec: SpecRef
    changes: tuple[Change, ...]  # in the order they would be walked (dependencies first; deletes reversed)
    conflicts: tuple[Conflict, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    problems: tuple[Problem, ...] = ()  # what a preflight found would fail
    unmanaged: tuple[Unmanaged, ...] = ()
    fingerprints: Mapping[Address, str] = field(default_factory=dict)  # every object observed (or not read)
    targets: tuple[Address, ...] = ()
    created_at: str = ""

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    @property
    def applicable(self) -> bool:
        return not self.conflicts and not self.blocked and not self.problems

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)

    def change_at(self, address: str) -> Change | None:
        return next((change for change in self.changes if change.address == address), None)


def build_plan(
    resources: Sequence[Resource],
    providers: ProviderSet,
    spec: SpecRef,
    *,
    mode: str = "apply",
    adopt: bool = False,
    targets: Sequence[str] = (),
    unmanaged: Sequence[Unmanaged] = (),
    approvals: Approvals = Approvals(),
) -> Plan:
    graph = Graph(resources)
    target_addresses = _check_targets(graph, targets, unmanaged)
    destroy = mode == "destroy"
    selected = graph.closure(target_addresses, destroy=destroy) if targets else set(graph.order)
    world = _World(graph, providers, spec, adopt=adopt, destroy=destroy)
    for level in levels({address: [p for p in graph.parents[address] if p in selected] for address in selected}):
        world.observe_level(level)
    changes = [world.changes[address] for address in graph.order if address in world.changes]
    changes += _left_the_spec(world, providers, spec, target_addresses if targets else None)
    changes = _order(changes, graph, destroy)
    changes, blocked = _weigh_hazards(changes, providers, approvals, destroy)
    problems = [] if destroy else _unmet_requirements(changes, world) + _preflight(changes, providers)
    return Plan(
        mode=mode,
        spec=spec,
        changes=tuple(changes),
        conflicts=tuple(world.conflicts),
        blocked=tuple(blocked),
        problems=tuple(problems),
        unmanaged=tuple(unmanaged),
        fingerprints=world.fingerprints,
        targets=tuple(target_addresses),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _check_targets(graph: Graph, targets: Sequence[str], unmanaged: Sequence[Unmanaged]) -> list[Address]:
    addresses: list[Address] = []
    not_yet = {part.address: part for part in unmanaged}
    for target in targets:
        if target in graph.resources:
            addresses.append(graph.resources[target].address)
        elif target in not_yet:
            raise GraphError(f"--target {target} is {not_yet[target].reason}")
        else:
            known = ", ".join(graph.order) or "none"
            raise GraphError(f"--target {target} is not an address of this spec (addresses: {known})")
    return addresses


class _World:
    """What the plan has learnt so far, level by level: parents are known before their children are read."""

    def __init__(self, graph: Graph, providers: ProviderSet, spec: SpecRef, *, adopt: bool, destroy: bool):
        self.graph, self.providers, self.spec = graph, providers, spec
        self.adopt, self.destroy = adopt, destroy
        self.observed: dict[Address, Observed | None] = {}
        self.changes: dict[Address, Change] = {}
        self.conflicts: list[Conflict] = []
        self.fingerprints: dict[Address, str] = {}

    def outputs(self) -> dict[Address, Mapping[str, Any] | None]:
        """Parents' outputs as the plan knows them: of objects that exist and stay as they are, or are deleted (after
        what lives in them: a destroy reads and deletes a cluster's objects through the cluster's endpoint)."""
        known: dict[Address, Mapping[str, Any] | None] = {}
        for address, live in self.observed.items():
            change = self.changes.get(address)
            stays = change is None or change.action in (Action.NOOP, Action.UPDATE, Action.DELETE)
            known[address] = live.outputs if live is not None and stays else None
        return known

    def observe_level(self, level: list[Address]) -> None:
        outputs = self.outputs()
        to_read: list[Resource] = []
        unread: dict[Address, tuple[Resource, str]] = {}
        for address in level:
            resource = resolved(self.graph.resources[address], outputs)
            why = self._not_readable(resource)
            if why is None:
                to_read.append(resource)
            else:
                unread[address] = (resource, why)
        self.observed.update(self.providers.observe(to_read))
        for resource in to_read:
            self._decide(resource, self.observed.get(resource.address))
        for address, (resource, why) in unread.items():
            self.fingerprints[address] = NOT_READ
            if not self.destroy:
                # The provider's own create keeps its note (a public endpoint's warning); the reason is the engine's.
                created = self.providers.for_kind(resource.kind).diff(resource, None)
                self.changes[address] = Change(address, resource.kind, Action.CREATE, why,
                                               desired=self.graph.resources[address], hazard=created.hazard,
                                               shown=resource.fields)

    def _not_readable(self, resource: Resource) -> str | None:
        """Why this object cannot exist as it is now (so reading it would be a wasted call), or None."""
        inside = resource.inside
        if inside is not None and inside in self.fingerprints:
            parent = self.changes.get(inside)
            if parent is not None and parent.action is Action.REPLACE:
                return f"{inside} will be replaced: created again in the new one"
            if self.fingerprints[inside] in (ABSENT, NOT_READ):
                return f"{inside} does not exist yet: created after it"
        if has_unknown(resource.params):
            outputs = self.outputs()
            missing = sorted(p for p in self.graph.parents[resource.address] if outputs.get(p) is None)
            return f"needs what {', '.join(missing)} will only know after apply"
        return None

    def _decide(self, resource: Resource, live: Observed | None) -> None:
        address = resource.address
        self.fingerprints[address] = fingerprint_of(live)
        desired = self.graph.resources[address]  # with its Refs: apply resolves them from its parents' results
        if self.destroy:
            change = _destroy_change(desired, live, self.spec.name)
        else:
            conflict = _ownership_conflict(live, self.spec.name, self.adopt)
            if conflict:
                self.conflicts.append(conflict)
                return
            change = self.providers.for_kind(resource.kind).diff(resource, live)
            change = replace(change, desired=desired, shown=resource.fields)
            if live is not None and live.owner != self.spec.name:
                change = _as_adoption(change, live)
        if change is not None:
            self.changes[address] = change


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
    return replace(change, action=action, reason=reason)


def _destroy_change(desired: Resource, live: Observed | None, owner: str) -> Change | None:
    if live is None:
        return None
    if live.owner != owner:
        who = "no saxctl mark" if live.owner is None else f"owned by spec {live.owner!r}"
        return Change(desired.address, desired.kind, Action.NOOP, f"left alone: {live.remote_id} has {who}",
                      desired=desired, observed=live)
    return Change(desired.address, desired.kind, Action.DELETE, f"destroy {live.remote_id}",
                  desired=desired, observed=live)


def _left_the_spec(world: _World, providers: ProviderSet, spec: SpecRef,
                   targets: Sequence[Address] | None) -> list[Change]:
    """Objects carrying this spec's mark that the spec no longer has: pruned by an apply, deleted by a destroy (which
    deletes everything the spec owns), each shown with that reason."""
    known = {address: live for address, live in world.observed.items() if live is not None}
    desired_ids = {live.remote_id for live in known.values()}
    found = []
    for owned in providers.owned(spec.name, known):
        address = owned.resource.address
        if address in world.graph.resources or owned.observed.remote_id in desired_ids:
            continue
        if targets is not None and address not in targets:
            continue
        world.fingerprints[address] = owned.observed.fingerprint
        remote_id = owned.observed.remote_id
        if world.destroy:  # what the user asked for: the guards of a destroy, not those of a prune
            found.append(Change(address, owned.resource.kind, Action.DELETE,
                                f"destroy {remote_id} (no longer in the spec)", desired=owned.resource,
                                observed=owned.observed))
        else:
            found.append(Change(address, owned.resource.kind, Action.DELETE,
                                f"no longer in the spec: {remote_id} will be deleted",
                                desired=owned.resource, observed=owned.observed, pruned=True))
    return found


def _order(changes: list[Change], graph: Graph, destroy: bool) -> list[Change]:
    """Dependencies first; in destroy mode dependents first. Objects that left the spec go first: before what they
    depended on, and before the creates that may need the name or quota they free (the walk waits on those)."""
    if destroy:
        return list(reversed(changes))
    kept = [c for c in changes if not c.pruned]
    pruned = [c for c in changes if c.pruned]
    return pruned + kept


def _unmet_requirements(changes: list[Change], world: _World) -> list[Problem]:
    """The Requirements of the creates, updates and replaces that can be checked now: on what exists and this plan
    leaves as it is (what it changes is checked again right before the call). A fact that settles by itself is left
    for the apply to wait for."""
    outputs = world.outputs()
    problems = []
    for change in changes:
        if change.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE) or change.desired is None:
            continue
        for requirement in change.desired.requires:
            parent = world.changes.get(requirement.address)
            if requirement.settles or (parent is not None and parent.action is not Action.NOOP):
                continue
            why = requirement.unmet(outputs.get(requirement.address))
            if why:
                problems.append(Problem(change.address, requirement.field, why, kind="precondition"))
    return problems


def _preflight(changes: list[Change], providers: ProviderSet) -> list[Problem]:
    """Each provider checks the changes it would carry out (reads only); its deletes are passed so that what they
    free is counted as free."""
    wanted = [c for c in changes if c.action is not Action.NOOP]
    problems: list[Problem] = []
    for provider, kinds in providers.each():
        mine = [c for c in wanted if c.kind in kinds]
        if mine:
            problems.extend(providers.read(lambda p=provider, m=mine: p.preflight(m), "checking quotas and offers")
                            or ())  # None: not checked (an offline plan)
    return problems


def _weigh_hazards(changes: list[Change], providers: ProviderSet, approvals: Approvals,
                   destroy: bool) -> tuple[list[Change], list[Blocked]]:
    """Ask each provider what its deletes and replaces would destroy; block what the user has not said yes to."""
    destructive = [c for c in changes if c.action in (Action.DELETE, Action.REPLACE) and c.observed is not None]
    if not destructive:
        return changes, []
    deleted_ids = {c.address: c.observed.remote_id for c in changes if c.action is Action.DELETE and c.observed}

    def weigh(change: Change) -> Hazard | None:
        inside = [deleted_ids[c.address] for c in changes
                  if c.address in deleted_ids and c.desired is not None and c.desired.inside == change.address]
        provider = providers.for_kind(change.kind)
        return providers.read(lambda: provider.hazard(change, inside), f"checking what deleting {change.address} loses")

    with ThreadPoolExecutor(max_workers=min(8, len(destructive)), thread_name_prefix="hazard") as pool:
        hazards = dict(zip((c.address for c in destructive), pool.map(weigh, destructive)))
    weighed, blocked = [], []
    for change in changes:
        hazard = hazards.get(change.address)
        if hazard is not None:
            approval = _approval(change, hazard, approvals, destroy)
            if hazard.needs_approval and approval is None:
                blocked.append(Blocked(change.address, hazard.what, _hint(change, hazard, destroy)))
            change = replace(change, hazard=replace(hazard, approved_by=approval))
        weighed.append(change)
    return weighed, blocked


def _approval(change: Change, hazard: Hazard, approvals: Approvals, destroy: bool) -> str | None:
    if not hazard.needs_approval:
        return None
    if change.action is Action.REPLACE and change.address in approvals.replace:
        return f"--allow-replace {change.address}"
    if change.action is Action.DELETE and change.address in approvals.delete:
        return f"--allow-delete {change.address}"
    if change.action is Action.DELETE and destroy and hazard.destroy_flag in approvals.destroy_flags:
        return hazard.destroy_flag
    return None


def _hint(change: Change, hazard: Hazard, destroy: bool) -> str:
    if change.action is Action.REPLACE:
        return f"rerun with --allow-replace {change.address} to replace it anyway"
    if destroy and hazard.destroy_flag:
        return f"rerun with {hazard.destroy_flag} (or --allow-delete {change.address}) to delete it with its contents"
    return f"rerun with --allow-delete {change.address} to delete it anyway"


def stale_objects(plan: Plan, fresh: Plan, *, ignore: Sequence[str] = ()) -> list[str]:
    """Each object whose fingerprint moved between the plan and a fresh plan of the same spec, described."""
    moved = []
    for address in list(plan.fingerprints) + [a for a in fresh.fingerprints if a not in plan.fingerprints]:
        if address in ignore:
            continue
        then = plan.fingerprints.get(address, ABSENT)
        now = fresh.fingerprints.get(address, ABSENT)
        if now != then:
            change = fresh.change_at(address)
            why = f" (now: {change.reason})" if change is not None and change.action is not Action.NOOP else ""
            moved.append(f"{address}: {_describe(then)} → {_describe(now)}{why}")
    return moved


def _describe(fingerprint: str) -> str:
    return "did not exist" if fingerprint == ABSENT else fingerprint
