"""How a cluster or a node pool compares with what the spec asks: its status first, then the fields saxctl owns.

A live object that is being created (PROVISIONING) is a wait for the operation already under way, never a second
create; one being deleted (STOPPING) or broken (ERROR, e.g. a create that hit a stockout) is made again. At apply
time, what the plan read is compared with the object again before each write (moved_since_plan).
"""

from __future__ import annotations

from typing import Mapping

from reconciler.engine.diffing import field_changes, show_value
from reconciler.engine.resource import Action, Change, FieldChange, Observed, Resource

PROVISIONING, STOPPING, ERROR = "PROVISIONING", "STOPPING", "ERROR"


def compare(desired: Resource, observed: Observed | None, *, noun: str, owned: Mapping | None = None) -> Change:
    """The change that brings observed to desired; `owned`: desired's fields less those the live object decides
    itself (the node count of an autoscaled pool)."""
    what = f"{noun} {desired.name}"
    if observed is None:
        return Change(desired.address, desired.kind, Action.CREATE, f"{what} does not exist", desired=desired)
    status = observed.facts.get("status")
    if status in (STOPPING, ERROR):
        why = ("is being deleted (by an earlier run or by someone else)" if status == STOPPING else
               f"is in ERROR ({observed.facts.get('status_message') or 'no message'})")
        return Change(desired.address, desired.kind, Action.REPLACE,
                      f"{what} {why}: it will be deleted and created again",
                      (FieldChange("status", status, "RUNNING", forces_replacement=True),), desired, observed)
    changes = field_changes(desired.fields if owned is None else owned, observed.fields, desired.replace_on,
                            desired.list_keys)
    forcing = [change for change in changes if change.forces_replacement]
    if forcing:
        order = list(desired.fields)  # the reason names the first in the spec's own order: the shape, then its zone
        first = min(forcing, key=lambda change: order.index(change.path.split(".")[0]))
        reason = (f"{first.path} {show_value(first.before)} → {show_value(first.after)} cannot change in place: the "
                  f"{noun} will be deleted and created again")
        return Change(desired.address, desired.kind, Action.REPLACE, reason, changes, desired, observed)
    reasons = [f"{change.path}: {show_value(change.before)} → {show_value(change.after)}" for change in changes]
    if status == PROVISIONING:
        changes += (FieldChange("status", PROVISIONING, "RUNNING"),)
        reasons.insert(0, f"{what} is still being created by an earlier run: apply waits for that operation")
    if not changes:
        return Change(desired.address, desired.kind, Action.NOOP, "up to date", desired=desired, observed=observed)
    return Change(desired.address, desired.kind, Action.UPDATE, "; ".join(reasons), changes, desired, observed)


def changed_paths(change: Change) -> set[str]:
    """The dotted paths the change names, each with its parents (cpuNodes.nodeCount → cpuNodes too)."""
    paths = set()
    for field in change.field_changes:
        parts = field.path.split(".")
        paths.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return paths


def moved_since_plan(change: Change, now: Observed) -> list[str]:
    """The fields the change sets whose live value is now neither what the plan read nor what it sets: someone
    changed them since the plan, and writing would overwrite what the user never saw ("path: planned → now").

    A value the plan could not read (a pool still being created has no size yet) is not compared.
    """
    moved = []
    for field in change.field_changes:
        if field.path == "status" or field.before is None:
            continue
        value = _at(now.fields, field.path)
        if value != field.before and value != field.after:
            moved.append(f"{field.path}: {show_value(field.before)} → {show_value(value)}")
    return moved


def _at(fields: Mapping, path: str):
    value = fields
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value
