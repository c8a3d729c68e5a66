"""Is a live object what saxctl would apply, and if not what would change: pure functions over manifests and objects.

Up to date means: the fields saxctl owns in the live object (its managedFields entry) are exactly the fields of the
manifest, with the same values. Then applying would change nothing, and the plan says so from one GET. Otherwise the
plan asks the server (a dry-run apply) and compares the live object with the server's answer along every field
saxctl owns before or after: that is where defaults, conversions and other managers' fields are the server's
business, never a guess of saxctl's.

A field another manager owns with another value is a conflict. When that manager changed it by an update (`kubectl
scale`, `kubectl edit`, a controller), it is drift and saxctl sets it back; when it applied it (another declarative
tool, server-side apply), the field is that tool's too, and saxctl takes it only with --force-conflicts. Apply
forces nothing else: a conflict it meets that its plan did not show as drift (`unplanned`) stops it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from reconciler.providers.kubernetes import ownership
from reconciler.providers.kubernetes.api import FIELD_MANAGER, Status
from reconciler.providers.kubernetes.fields import FieldSet, field_set, flatten, managed_by, union

_QUOTED = re.compile(r'="([^"]*)"')
_CONFLICT = re.compile(r'conflict with "(?P<manager>[^"]*)"(?: with subresource "(?P<subresource>[^"]*)")?')


def effective_manifest(manifest: Mapping[str, Any], listed: str | None) -> dict[str, Any]:
    """What saxctl applies: the manifest, except that an ApplySet parent keeps the group-kinds it lists (`listed`,
    its live contains-group-kinds annotation).

    The list only grows (a kind that left may still have members to prune, and a prune that failed must be found
    again by the next plan); saxctl's kinds are few, so it stays short.
    """
    meta = manifest["metadata"]
    if manifest["kind"] != "ConfigMap" or not listed:
        return dict(manifest)
    kept = set(ownership.group_kinds(listed))
    wanted = set(ownership.group_kinds(meta["annotations"][ownership.CONTAINS_GROUP_KINDS]))
    if kept <= wanted:
        return dict(manifest)
    annotations = {**meta["annotations"], ownership.CONTAINS_GROUP_KINDS: ",".join(sorted(kept | wanted))}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}


def up_to_date(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    mine = field_set(manifest)
    return managed_by(live, FIELD_MANAGER) == mine and flatten(live, mine) == flatten(manifest, mine)


def replaced_paths(manifest: Mapping[str, Any], live: Mapping[str, Any], replace_on: frozenset[str]) -> list[str]:
    """The fields that differ and cannot change in place (a Deployment's selector)."""
    mine = field_set(manifest)
    wanted, current = flatten(manifest, mine), flatten(live, mine)
    return sorted(path for path in set(wanted) | set(current)
                  if wanted.get(path) != current.get(path) and forces_replacement(path, replace_on))


def forces_replacement(path: str, replace_on: frozenset[str]) -> bool:
    return any(path == prefix or path.startswith((prefix + ".", prefix + "[")) for prefix in replace_on)


def compared_fields(manifest: Mapping[str, Any], live: Mapping[str, Any], after: Mapping[str, Any] | None) -> FieldSet:
    """Every field saxctl owns in the live object, would own after applying, or asks for."""
    return union(field_set(manifest), managed_by(live, FIELD_MANAGER),
                 managed_by(after, FIELD_MANAGER) if after is not None else {})


def conflicts(status: Status, live: Mapping[str, Any]) -> list[dict[str, str]]:
    """The fields of a 409 from apply, each with the manager that holds it and how it set it (Apply or Update)."""
    found = []
    for cause in status.causes:
        match = _CONFLICT.search(cause.get("message") or "")
        manager = match["manager"] if match else "another field manager"
        subresource = (match["subresource"] or "") if match else ""
        # The server writes list items as [name="c"]; plans write them [name=c].
        field = _QUOTED.sub(r"=\1", (cause.get("field") or "").lstrip("."))
        found.append({"field": field, "manager": manager,
                      "subresource": subresource, "operation": _operation(live, manager, subresource)})
    return found


def _operation(live: Mapping[str, Any], manager: str, subresource: str) -> str:
    """Apply when that manager applies its fields of this object, else Update (an imperative write)."""
    entries = [entry for entry in (live.get("metadata") or {}).get("managedFields") or ()
               if entry.get("manager") == manager and (entry.get("subresource") or "") == subresource]
    return "Apply" if any(entry.get("operation") == "Apply" for entry in entries) else "Update"


def is_drift(found: Sequence[Mapping[str, str]]) -> bool:
    """Every conflicting field was set by an update: nothing another tool applied is among them."""
    return bool(found) and all(conflict["operation"] == "Update" for conflict in found)


def unplanned(found: Sequence[Mapping[str, str]], planned: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """The conflicts an apply met that the plan did not show as drift saxctl sets back: a field another tool
    applied, or one an update set after the plan was made."""
    drift = {_key(conflict) for conflict in planned if conflict["operation"] == "Update"}
    return [conflict for conflict in found if conflict["operation"] != "Update" or _key(conflict) not in drift]


def _key(conflict: Mapping[str, str]) -> tuple[str, str, str]:
    return conflict["field"], conflict["manager"], conflict["subresource"]


def applied(found: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """The conflicts over fields another tool applied (those that block a plan without --force-conflicts)."""
    return [conflict for conflict in found if conflict["operation"] != "Update"]


def blocks(found: Sequence[Mapping[str, str]], forced_by: str | None) -> bool:
    """Conflicts the plan may not carry out: a field another tool applied, without --force-conflicts."""
    return bool(found) and not forced_by and not is_drift(found)


def described(found: Sequence[Mapping[str, str]]) -> str:
    """spec.replicas (kubectl, scale subresource, by an update); ...image (gitops, by server-side apply)"""
    return "; ".join(f"{conflict['field']} (field manager {conflict['manager']}"
                     + (f", {conflict['subresource']} subresource" if conflict["subresource"] else "")
                     + (", by an update)" if conflict["operation"] == "Update" else ", by server-side apply)")
                     for conflict in found)


def holders(found: Sequence[Mapping[str, str]]) -> str:
    """kubectl (scale subresource), argocd"""
    names = []
    for conflict in found:
        name = conflict["manager"] + (f" ({conflict['subresource']} subresource)" if conflict["subresource"] else "")
        if name not in names:
            names.append(name)
    return ", ".join(names)


def conflict_fields(found: Sequence[Mapping[str, str]]) -> str:
    return ", ".join(conflict["field"] for conflict in found)
