"""Field sets as server-side apply tracks them (managedFields' FieldsV1), and objects flattened along them.

A field set is a tree: `f:NAME` for a map key or struct field, `k:{"name":"c"}` for an item of a list keyed by its
fields (containers by name, ports by port and protocol), `{}` for a leaf. An atomic map or list (a label selector,
a node selector, args) is one leaf: one manager owns it whole. The server's own sets also hold `.` (the item itself
is owned), which says nothing the item's fields do not, and is dropped.

What saxctl compares is always a flattening of objects along a field set: `{"spec.replicas": 1,
"spec.template.spec.containers[name=sax-http].image": "..."}`, so that defaults the server adds outside saxctl's
fields never show, and each difference is one line of the plan.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

FieldSet = dict[str, "FieldSet"]

# Lists in saxctl's manifests that the API merges by key (patterns: dotted paths, list items written []).
KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "spec.template.spec.containers": ("name",),
    "spec.template.spec.containers[].ports": ("containerPort", "protocol"),
    "spec.template.spec.containers[].env": ("name",),
    "spec.ports": ("port", "protocol"),  # a Service's
}
# Maps and structs the API replaces whole (+mapType=atomic, +structType=atomic); any other list is atomic too.
ATOMIC = frozenset({"spec.selector", "spec.template.spec.nodeSelector",
                    "spec.template.spec.containers[].env[].valueFrom.fieldRef"})
NOT_APPLIED = ("apiVersion", "kind")  # identify the object; never part of a field set
IDENTITY = ("name", "namespace")  # metadata that names the object


def field_set(manifest: Mapping[str, Any]) -> FieldSet:
    """The field set server-side apply records for saxctl when it applies `manifest`."""
    tree: FieldSet = {}
    for key, value in manifest.items():
        if key in NOT_APPLIED:
            continue
        if key == "metadata":
            value = {k: v for k, v in value.items() if k not in IDENTITY}
            if not value:
                continue
        tree[f"f:{key}"] = _set_of(value, key)
    return tree


def _set_of(value: Any, pattern: str) -> FieldSet:
    if isinstance(value, Mapping) and pattern not in ATOMIC:
        return {f"f:{key}": _set_of(item, f"{pattern}.{key}") for key, item in value.items()}
    if isinstance(value, list) and pattern in KEYED_LISTS:
        return {item_key(item, KEYED_LISTS[pattern]): _set_of(item, f"{pattern}[]") for item in value}
    return {}


def item_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({key: item[key] for key in keys if key in item}, sort_keys=True, separators=(",", ":"))


def normalised(fields_v1: Mapping[str, Any]) -> FieldSet:
    """A server's FieldsV1 in the form field_set() makes: `.` dropped, item keys in one spelling."""
    tree: FieldSet = {}
    for key, child in fields_v1.items():
        if key == ".":
            continue
        if key.startswith("k:"):
            key = "k:" + json.dumps(json.loads(key[2:]), sort_keys=True, separators=(",", ":"))
        tree[key] = normalised(child)
    return tree


def managed_by(live: Mapping[str, Any], manager: str) -> FieldSet:
    """What `manager` owns of a live object through apply (all its Apply entries: one per API version)."""
    owned: FieldSet = {}
    for entry in live.get("metadata", {}).get("managedFields") or ():
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource"):
            owned = union(owned, normalised(entry.get("fieldsV1") or {}))
    return owned


def union(*sets: FieldSet) -> FieldSet:
    merged: FieldSet = {}
    for tree in sets:
        for key, child in tree.items():
            merged[key] = union(merged[key], child) if key in merged else child
    return merged


def flatten(obj: Mapping[str, Any], fields: FieldSet) -> dict[str, Any]:
    """obj's values along `fields`, as {path: value}; a field obj lacks is left out (so it reads as absent)."""
    flat: dict[str, Any] = {}
    _flatten(obj, fields, "", flat)
    return flat


def _flatten(value: Any, fields: FieldSet, path: str, out: dict[str, Any]) -> None:
    if not fields:
        out[path] = value
        return
    for key, child in fields.items():
        if key.startswith("f:"):
            name = key[2:]
            if isinstance(value, Mapping) and name in value:
                _flatten(value[name], child, f"{path}.{name}" if path else name, out)
        elif key.startswith("k:") and isinstance(value, list):
            wanted = json.loads(key[2:])
            item = next((i for i in value if isinstance(i, Mapping) and all(i.get(k) == v for k, v in wanted.items())),
                        None)
            if item is not None:
                shown = ",".join(f"{k}={v}" for k, v in wanted.items())
                # The key is in the path already: its fields are left out, unless they are all the item holds.
                rest = {name: grand for name, grand in child.items() if name[2:] not in wanted}
                _flatten(item, rest or child, f"{path}[{shown}]", out)
