"""Field-level comparison of owned fields, shared by every provider's diff().

Only what desired names is owned: a mapping key absent from desired is never a change. Lists are compared whole,
unless the resource says how the API treats them: as a set (IAM members) or keyed by an item field (containers by
name, ports by containerPort), so that order never shows as a change.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from reconciler.engine.resource import UNKNOWN, Action, Change, FieldChange, Observed, Resource

_MISSING = object()


def field_changes(
    desired: Mapping[str, Any],
    observed: Mapping[str, Any],
    replace_on: frozenset[str] = frozenset(),
    list_keys: Mapping[str, str] | None = None,
) -> tuple[FieldChange, ...]:
    """Every leaf that differs between desired and observed, as dotted paths, only over what desired owns.

    `replace_on` and `list_keys` name paths in pattern form: keys joined by dots, a list item written `[]`
    (`spec.template.spec.containers[].env`). A change at or below a replace_on path forces replacement.
    """
    changes: list[FieldChange] = []
    _Walk(replace_on, list_keys or {}, changes).walk(desired, observed, "", "")
    return tuple(changes)


def resource_changes(desired: Resource, observed_fields: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """field_changes with the rules the resource carries."""
    return field_changes(desired.fields, observed_fields, desired.replace_on, desired.list_keys)


class _Walk:
    def __init__(self, replace_on: frozenset[str], list_keys: Mapping[str, str], out: list[FieldChange]):
        self.replace_on, self.list_keys, self.out = replace_on, list_keys, out

    def walk(self, desired: Any, observed: Any, path: str, pattern: str) -> None:
        if isinstance(desired, Mapping) and isinstance(observed, Mapping):
            for key in sorted(desired):
                self.walk(desired[key], observed.get(key, _MISSING), _join(path, key), _join(pattern, key))
            return
        if isinstance(desired, (list, tuple)) and isinstance(observed, (list, tuple)) and pattern in self.list_keys:
            item_key = self.list_keys[pattern]
            if item_key:
                self._keyed(desired, observed, path, pattern, item_key)
            elif _as_set(desired) != _as_set(observed):
                self._change(path, pattern, list(observed), list(desired))
            return
        before = None if observed is _MISSING else observed
        if desired is UNKNOWN or _normal(desired) != _normal(before):
            self._change(path, pattern, before, desired)

    def _keyed(self, desired: list, observed: list, path: str, pattern: str, item_key: str) -> None:
        observed_by_key = {item.get(item_key): item for item in observed if isinstance(item, Mapping)}
        desired_keys = set()
        for item in desired:
            key = item.get(item_key) if isinstance(item, Mapping) else None
            desired_keys.add(key)
            self.walk(item, observed_by_key.get(key, _MISSING), f"{path}[{item_key}={key}]", f"{pattern}[]")
        for key, item in observed_by_key.items():
            if key not in desired_keys:
                self._change(f"{path}[{item_key}={key}]", f"{pattern}[]", item, None)

    def _change(self, path: str, pattern: str, before: Any, after: Any) -> None:
        forced = any(pattern == p or pattern.startswith((p + ".", p + "[")) for p in self.replace_on)
        self.out.append(FieldChange(path=path, before=before, after=after, forces_replacement=forced))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _normal(value: Any) -> Any:
    """Tuples and lists compare equal (specs build tuples, APIs return lists)."""
    if isinstance(value, tuple):
        return [_normal(item) for item in value]
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _normal(item) for key, item in value.items()}
    return value


def _as_set(items: list | tuple) -> set[str]:
    return {json.dumps(_normal(item), sort_keys=True) for item in items}


def show_value(value: Any) -> str:
    """A field value as plans print it: JSON, (none) for an absent field, (known after apply) for an unknown one."""
    if value is UNKNOWN:
        return "(known after apply)"
    return "(none)" if value is None else json.dumps(_normal(value), sort_keys=True, default=repr)


def planned_change(desired: Resource, observed: Observed | None, *, absent: str, noun: str) -> Change:
    """The usual decision: create when absent (`absent` says why), else no-op, a replace naming the first field that
    forces it, or an in-place update naming every field that differs."""
    if observed is None:
        return Change(desired.address, desired.kind, Action.CREATE, absent, desired=desired)
    changes = resource_changes(desired, observed.fields)
    if not changes:
        return Change(desired.address, desired.kind, Action.NOOP, "up to date", desired=desired, observed=observed)
    forcing = [change for change in changes if change.forces_replacement]
    if forcing:
        first = forcing[0]
        reason = (f"{first.path} {show_value(first.before)} → {show_value(first.after)} cannot change in place: "
                  f"the {noun} will be deleted and created again")
        return Change(desired.address, desired.kind, Action.REPLACE, reason, changes, desired, observed)
    reason = "; ".join(f"{c.path}: {show_value(c.before)} → {show_value(c.after)}" for c in changes)
    return Change(desired.address, desired.kind, Action.UPDATE, reason, changes, desired, observed)
