"""Field-level comparison of owned fields, shared by every provider's diff()."""

from __future__ import annotations

import json
from typing import Any, Mapping

from reconciler.engine.resource import FieldChange

_MISSING = object()


def field_changes(
    desired: Mapping[str, Any], observed: Mapping[str, Any], replace_on: frozenset[str] = frozenset()
) -> tuple[FieldChange, ...]:
    """Every leaf that differs between desired and observed, as dotted paths, only over the keys desired owns.

    Mappings are compared key by key (a key absent from desired is not owned, so never a change);
    anything else (lists, scalars) is compared whole.
    """
    changes: list[FieldChange] = []
    _walk(desired, observed, "", replace_on, changes)
    return tuple(changes)


def _walk(desired: Any, observed: Any, path: str, replace_on: frozenset[str], out: list[FieldChange]) -> None:
    if isinstance(desired, Mapping) and isinstance(observed, Mapping):
        for key in sorted(desired):
            child = f"{path}.{key}" if path else str(key)
            _walk(desired[key], observed.get(key, _MISSING), child, replace_on, out)
        return
    if observed is _MISSING:
        observed = None
    if desired != observed:
        top = path.split(".", 1)[0]
        out.append(FieldChange(path=path, before=observed, after=desired, forces_replacement=top in replace_on))


def show_value(value: Any) -> str:
    """A field value as plans print it: JSON, or (none) for an absent field."""
    return "(none)" if value is None else json.dumps(value, sort_keys=True)
