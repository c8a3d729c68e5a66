"""The diff every IAM kind makes: create when absent, else an in-place update of the fields that differ (nothing of
IAM's that saxctl owns forces a replacement: an account's id is its address)."""

from __future__ import annotations

from reconciler.engine.diffing import resource_changes, show_value
from reconciler.engine.resource import Action, Change, Observed, Resource


def in_place_change(desired: Resource, observed: Observed | None, absent: str) -> Change:
    """absent: the reason shown when the object does not exist."""
    if observed is None:
        return Change(desired.address, desired.kind, Action.CREATE, absent, desired=desired)
    changes = resource_changes(desired, observed.fields)
    if not changes:
        return Change(desired.address, desired.kind, Action.NOOP, "up to date", desired=desired, observed=observed)
    reason = "; ".join(f"{c.path}: {show_value(c.before)} → {show_value(c.after)}" for c in changes)
    return Change(desired.address, desired.kind, Action.UPDATE, reason, changes, desired, observed)
