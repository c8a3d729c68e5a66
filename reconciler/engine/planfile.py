"""The plan as a JSON document: the stable, documented format of `plan -out`, `plan --json` and `apply PLANFILE`.

The contract is schemas/plan.schema.json; format_version changes whenever a key changes meaning.
"""

from __future__ import annotations

import json
import os
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import jsonschema

from reconciler import __version__
from reconciler.engine.plan import Conflict, Plan, SpecRef, Unmanaged
from reconciler.engine.resource import Action, Change, FieldChange, Observed, Resource
from reconciler.errors import SaxctlError

FORMAT_VERSION = "1"


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
            "unmanaged": len(plan.unmanaged),
        },
        "changes": [_change_to_json(change) for change in plan.changes],
        "conflicts": [
            {"address": c.address, "remote_id": c.remote_id, "message": c.message} for c in plan.conflicts
        ],
        "unmanaged": [{"address": u.address, "spec_field": u.spec_field, "reason": u.reason} for u in plan.unmanaged],
        "observed_fingerprints": dict(plan.fingerprints),
    }


def _change_to_json(change: Change) -> dict[str, Any]:
    observed = change.observed
    return {
        "address": change.address,
        "kind": change.kind,
        "action": change.action.value,
        "reason": change.reason,
        "fields": [
            {"path": f.path, "before": f.before, "after": f.after, "forces_replacement": f.forces_replacement}
            for f in change.field_changes
        ],
        "before": dict(change.before) if change.before is not None else None,
        "after": dict(change.after) if change.after is not None else None,
        "resource": change.desired.to_json() if change.desired is not None else None,
        "observed": None
        if observed is None
        else {
            "remote_id": observed.remote_id,
            "fingerprint": observed.fingerprint,
            "owner": observed.owner,
            "fields": dict(observed.fields),
            "facts": dict(observed.facts),
        },
    }


def plan_from_json(document: dict[str, Any]) -> Plan:
    changes = []
    for item in document["changes"]:
        desired = Resource.from_json(item["resource"]) if item["resource"] is not None else None
        observed = None
        if item["observed"] is not None:
            o = item["observed"]
            observed = Observed(item["address"], o["remote_id"], o["fields"], o["fingerprint"], o["owner"], o["facts"])
        field_changes = tuple(
            FieldChange(f["path"], f["before"], f["after"], f["forces_replacement"]) for f in item["fields"]
        )
        changes.append(
            Change(item["address"], item["kind"], Action(item["action"]), item["reason"], field_changes, desired, observed)
        )
    spec = document["spec"]
    return Plan(
        mode=document["mode"],
        spec=SpecRef(spec["name"], spec["file"], spec["sha256"]),
        changes=tuple(changes),
        conflicts=tuple(Conflict(c["address"], c["remote_id"], c["message"]) for c in document["conflicts"]),
        unmanaged=tuple(Unmanaged(u["address"], u["spec_field"], u["reason"]) for u in document["unmanaged"]),
        fingerprints=document["observed_fingerprints"],
        targets=tuple(document["targets"]),
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


def read_plan(path: Path) -> Plan:
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
    return plan_from_json(document)


def plan_validator() -> jsonschema.Draft202012Validator:
    schema_text = package_files.files("reconciler.engine").joinpath("plan.schema.json").read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(schema_text))
