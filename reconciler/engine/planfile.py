"""The plan as a JSON document: the stable, documented format of `plan -out`, `plan --json` and `apply PLANFILE`.

The contract is schemas/plan.schema.json; format_version changes whenever a key changes meaning.
"""

from __future__ import annotations

import json
import os
from importlib import resources as package_files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from reconciler import __version__
from reconciler.engine.address import as_address
from reconciler.engine.plan import Blocked, Conflict, Plan, SpecRef, Unmanaged
from reconciler.engine.provider import Problem
from reconciler.engine.resource import (
    UNKNOWN, Action, Change, FieldChange, Hazard, Observed, Ref, Requirement, Resource,
)
from reconciler.errors import SaxctlError

if TYPE_CHECKING:
    import jsonschema

FORMAT_VERSION = "2"


class PlanFileError(SaxctlError):
    """A file given as a saved plan is not one saxctl can apply."""


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "saxctl_version": __version__,
        "mode": plan.mode,
        "created_at": plan.created_at,
        "spec": {"name": plan.spec.name, "file": plan.spec.file, "sha256": plan.spec.sha256},
        "targets": list(plan.targets),
        "summary": {
            **{action.value: plan.count(action) for action in Action},
            "conflicts": len(plan.conflicts),
            "blocked": len(plan.blocked),
            "problems": len(plan.problems),
            "unmanaged": len(plan.unmanaged),
        },
        "changes": [_change_to_json(change) for change in plan.changes],
        "conflicts": [
            {"address": c.address, "remote_id": c.remote_id, "message": c.message} for c in plan.conflicts
        ],
        "blocked": [{"address": b.address, "message": b.message, "hint": b.hint} for b in plan.blocked],
        "problems": [{"address": p.address, "field": p.field, "message": p.message, "kind": p.kind}
                     for p in plan.problems],
        "unmanaged": [{"address": u.address, "spec_field": u.spec_field, "reason": u.reason} for u in plan.unmanaged],
        "observed_fingerprints": dict(plan.fingerprints),
    }


def _encode(value: Any) -> Any:
    """Refs and unknown values as JSON: {"$ref": ADDRESS, "output": NAME} and {"$unknown": true}."""
    if isinstance(value, Ref):
        return {"$ref": str(value.address), "output": value.output}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any, kinds: Iterable[str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref", "output"}:
            return Ref(as_address(value["$ref"], kinds), value["output"])
        if value == {"$unknown": True}:
            return UNKNOWN
        return {key: _decode(item, kinds) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item, kinds) for item in value]
    return value


def _resource_to_json(resource: Resource) -> dict[str, Any]:
    return {
        "address": resource.address,
        "kind": resource.kind,
        "name": resource.name,
        "fields": _encode(resource.fields),
        "depends_on": list(resource.depends_on),
        "inside": resource.inside,
        "replace_on": sorted(resource.replace_on),
        "list_keys": dict(resource.list_keys),
        "params": _encode(resource.params),
        "spec_field": resource.spec_field,
        "timeout_s": resource.timeout_s,
        "remote_id": resource.remote_id,
        "requires": [{"address": r.address, "output": r.output, "at_least": int(r.at_least), "what": r.what,
                      "field": r.field, "settles": r.settles, "wait_s": r.wait_s} for r in resource.requires],
    }


def _resource_from_json(data: Mapping[str, Any], kinds: Iterable[str]) -> Resource:
    return Resource(
        address=as_address(data["address"], kinds),
        kind=data["kind"],
        name=data["name"],
        fields=_decode(data["fields"], kinds),
        depends_on=tuple(as_address(a, kinds) for a in data["depends_on"]),
        inside=as_address(data["inside"], kinds) if data["inside"] else None,
        replace_on=frozenset(data["replace_on"]),
        list_keys=data["list_keys"],
        params=_decode(data["params"], kinds),
        spec_field=data["spec_field"],
        timeout_s=data["timeout_s"],
        remote_id=data["remote_id"],
        requires=tuple(Requirement(**{**r, "address": as_address(r["address"], kinds)})
                       for r in data.get("requires", ())),
    )


def _change_to_json(change: Change) -> dict[str, Any]:
    observed = change.observed
    hazard = change.hazard
    return {
        "address": change.address,
        "kind": change.kind,
        "action": change.action.value,
        "reason": change.reason,
        "fields": [
            {"path": f.path, "before": f.before, "after": _encode(f.after), "forces_replacement": f.forces_replacement}
            for f in change.field_changes
        ],
        "before": dict(change.before) if change.before is not None else None,
        "after": _encode(change.after) if change.after is not None else None,
        "resource": _resource_to_json(change.desired) if change.desired is not None else None,
        "observed": None
        if observed is None
        else {
            "remote_id": observed.remote_id,
            "fingerprint": observed.fingerprint,
            "owner": observed.owner,
            "fields": dict(observed.fields),
            "facts": dict(observed.facts),
            "outputs": dict(observed.outputs),
        },
        "hazard": None if hazard is None else {"what": hazard.what, "needs_approval": hazard.needs_approval,
                                               "approved_by": hazard.approved_by, "destroy_flag": hazard.destroy_flag},
        "pruned": change.pruned,
    }


def plan_from_json(document: dict[str, Any], kinds: Iterable[str]) -> Plan:
    """The plan a document describes; `kinds` are the resource kinds this saxctl knows (addresses split by them)."""
    kinds = frozenset(kinds)
    changes = []
    for item in document["changes"]:
        address = as_address(item["address"], kinds)
        desired = _resource_from_json(item["resource"], kinds) if item["resource"] is not None else None
        observed = None
        if item["observed"] is not None:
            o = item["observed"]
            observed = Observed(address, o["remote_id"], o["fields"], o["fingerprint"], o["owner"], o["facts"],
                                o["outputs"])
        field_changes = tuple(
            FieldChange(f["path"], f["before"], _decode(f["after"], kinds), f["forces_replacement"])
            for f in item["fields"]
        )
        hazard = Hazard(**item["hazard"]) if item["hazard"] is not None else None
        after = _decode(item["after"], kinds) if item["after"] is not None else None
        shown = after if desired is None or after != desired.fields else None  # after falls back to desired
        changes.append(Change(address, item["kind"], Action(item["action"]), item["reason"], field_changes, desired,
                              observed, hazard, item["pruned"], shown))
    spec = document["spec"]
    return Plan(
        mode=document["mode"],
        spec=SpecRef(spec["name"], spec["file"], spec["sha256"]),
        changes=tuple(changes),
        conflicts=tuple(Conflict(as_address(c["address"], kinds), c["remote_id"], c["message"])
                        for c in document["conflicts"]),
        blocked=tuple(Blocked(as_address(b["address"], kinds), b["message"], b["hint"]) for b in document["blocked"]),
        problems=tuple(Problem(as_address(p["address"], kinds), p["field"], p["message"],
                               p.get("kind", "preflight"))
                       for p in document["problems"]),
        unmanaged=tuple(Unmanaged(as_address(u["address"], kinds), u["spec_field"], u["reason"])
                        for u in document["unmanaged"]),
        fingerprints={as_address(a, kinds): f for a, f in document["observed_fingerprints"].items()},
        targets=tuple(as_address(t, kinds) for t in document["targets"]),
        created_at=document["created_at"],
    )


def write_plan(plan: Plan, path: Path) -> None:
    """Write atomically, readable by the owner only (a plan names projects and buckets)."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(plan_to_json(plan), out, indent=2, sort_keys=False)
        out.write("\n")
    os.replace(temporary, path)


def read_plan(path: Path, kinds: Iterable[str]) -> Plan:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(f"{path}: cannot read the plan file: {error}") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path}:{error.lineno}:{error.colno}: not a saxctl plan (invalid JSON: {error.msg})") from None
    if not isinstance(document, dict) or "format_version" not in document:
        raise PlanFileError(f"{path}: not a saxctl plan file (no format_version)")
    if document["format_version"] != FORMAT_VERSION:
        raise PlanFileError(
            f"{path}: plan format {document['format_version']!r} is not the one this saxctl reads ({FORMAT_VERSION!r})",
            hint="Make the plan again with this version of saxctl.",
        )
    errors = sorted(plan_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(top)"
        raise PlanFileError(f"{path}: not a valid saxctl plan: at {where}: {first.message}")
    try:
        return plan_from_json(document, kinds)
    except ValueError as error:
        raise PlanFileError(f"{path}: not a plan this saxctl can apply: {error}") from None


def plan_validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # only a saved plan is checked: a spec's plan need not import it

    schema_text = package_files.files("reconciler.engine").joinpath("plan.schema.json").read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(schema_text))
