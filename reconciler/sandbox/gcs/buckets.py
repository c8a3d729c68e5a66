"""The storage v1 bucket resource as GCS keeps it: validation, defaults, patch/update, preconditions, projections."""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
from datetime import datetime, timedelta, timezone

from reconciler.sandbox.base.api_errors import ApiError
from reconciler.sandbox.base.ids import project_number

# Fields a request may set, with the JSON type storage v1 gives them; every other Bucket property is the server's.
WRITABLE_FIELDS: dict[str, type] = {
    "acl": list, "autoclass": dict, "billing": dict, "cors": list, "customPlacementConfig": dict,
    "defaultEventBasedHold": bool, "defaultObjectAcl": list, "encryption": dict, "hierarchicalNamespace": dict,
    "iamConfiguration": dict, "ipFilter": dict, "labels": dict, "lifecycle": dict, "location": str, "logging": dict,
    "name": str, "objectRetention": dict, "retentionPolicy": dict, "rpo": str, "softDeletePolicy": dict,
    "storageClass": str, "versioning": dict, "website": dict,
}
# Server-managed properties a client may echo back (the Python client's update() sends the whole resource).
READ_ONLY_FIELDS = frozenset({"etag", "generation", "hardDeleteTime", "id", "kind", "locationType", "metageneration",
                              "owner", "projectNumber", "satisfiesPZI", "satisfiesPZS", "selfLink", "softDeleteTime",
                              "timeCreated", "updated"})
# Set once at creation: patch/update may repeat them but not change them.
IMMUTABLE_FIELDS = ("name", "location", "customPlacementConfig")

MULTI_REGIONS = frozenset({"US", "EU", "ASIA"})
DUAL_REGIONS = frozenset({"ASIA1", "EUR4", "EUR5", "EUR7", "EUR8", "NAM4"})
_REGION = re.compile(r"^[A-Z]+-[A-Z]+[0-9]+$")
STORAGE_CLASSES = frozenset({"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL",
                             "DURABLE_REDUCED_AVAILABILITY"})
_NAME_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_SOFT_DELETE_DEFAULT_SECONDS = "604800"  # 7 days, GCS's default soft-delete retention
_UNIFORM_ACCESS_LOCK_DAYS = 90  # GCS lets uniform access be turned off again for 90 days


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bucket_etag(metageneration: int) -> str:
    """GCS's bucket etag: canonical base64 of the metageneration as a protobuf varint field ("CAE=" for 1)."""
    varint = bytearray()
    value = metageneration
    while True:
        byte = value & 0x7F
        value >>= 7
        varint.append(byte | (0x80 if value else 0))
        if not value:
            break
    return base64.b64encode(b"\x08" + bytes(varint)).decode()


def check_bucket_name(name: object) -> str:
    """The name if GCS would accept it, else ApiError 400 worded as GCS words it."""
    invalid = ApiError(400, f"Invalid bucket name: '{name}'", "invalid")
    if not isinstance(name, str) or not _NAME_CHARS.match(name):
        raise invalid
    parts = name.split(".")
    if len(name) > (222 if len(parts) > 1 else 63) or len(name) < 3 or any(not 1 <= len(p) <= 63 for p in parts):
        raise invalid
    if name.startswith("goog") or re.search(r"g[o0]{2}g[l1]e", name):
        raise invalid
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return name
    raise invalid


def location_type(location: str, custom_placement: dict | None) -> str:
    if location in MULTI_REGIONS:
        return "dual-region" if custom_placement else "multi-region"
    if location in DUAL_REGIONS:
        return "dual-region"
    if _REGION.match(location):
        return "region"
    raise ApiError(400, "The specified location constraint is not valid.", "invalid")


def new_bucket(body: dict, project: str) -> dict:
    """The resource buckets.insert creates from a request body (already type-checked)."""
    name = body.get("name")
    if name is None:
        raise ApiError(400, "Required parameter: name", "required")
    check_bucket_name(name)
    now = now_rfc3339()
    number = project_number(project)
    resource = {"kind": "storage#bucket", "id": name, "name": name, "projectNumber": number,
                "generation": str(int(datetime.now(timezone.utc).timestamp() * 1_000_000)),
                "metageneration": "1", "timeCreated": now, "updated": now,
                "location": str(body.get("location") or "US").upper()}
    if "customPlacementConfig" in body:
        resource["customPlacementConfig"] = body["customPlacementConfig"]
    resource["locationType"] = location_type(resource["location"], resource.get("customPlacementConfig"))
    _apply_writable(resource, body, now, previous_iam=None)
    resource["etag"] = bucket_etag(1)
    return resource


def patch_bucket(stored: dict, body: dict) -> dict:
    """buckets.patch: merge the body into the resource (null removes a key, as in JSON merge patch)."""
    check_immutable(stored, body)
    updated = copy.deepcopy(stored)
    merged = {key: _merge(updated.get(key), value) for key, value in body.items()
              if key in WRITABLE_FIELDS and key not in IMMUTABLE_FIELDS}
    _apply_writable(updated, merged, now_rfc3339(), previous_iam=stored.get("iamConfiguration"))
    return _next_metageneration(updated)


def update_bucket(stored: dict, body: dict) -> dict:
    """buckets.update (PUT): the body replaces every writable field; what it leaves out returns to the default."""
    check_immutable(stored, body)
    updated = {key: value for key, value in stored.items() if key not in WRITABLE_FIELDS or key in IMMUTABLE_FIELDS}
    _apply_writable(updated, {k: v for k, v in body.items() if k not in IMMUTABLE_FIELDS}, now_rfc3339(),
                    previous_iam=stored.get("iamConfiguration"))
    return _next_metageneration(updated)


def check_body(body: dict) -> None:
    """Reject unknown properties and wrong JSON types, naming the field, as GCS's JSON API does."""
    for key, value in body.items():
        if key in READ_ONLY_FIELDS:
            continue
        expected = WRITABLE_FIELDS.get(key)
        if expected is None:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.', "invalid")
        if value is not None and not isinstance(value, expected):
            raise ApiError(400, f"Invalid value for field '{key}': expected a JSON {_json_type(expected)}.", "invalid")


def check_immutable(stored: dict, body: dict) -> None:
    for key in IMMUTABLE_FIELDS:
        if key in body and body[key] is not None:
            given = body[key].upper() if key == "location" and isinstance(body[key], str) else body[key]
            if given != stored.get(key):
                raise ApiError(400, f"The {key} of an existing bucket cannot be changed.", "invalid")


def check_preconditions(resource: dict | None, params: dict[str, str], *, read: bool) -> None:
    """ifMetagenerationMatch / ifMetagenerationNotMatch: 412 like GCS (304 for a read whose NotMatch holds)."""
    for parameter in ("ifMetagenerationMatch", "ifMetagenerationNotMatch"):
        raw = params.get(parameter)
        if raw is None:
            continue
        try:
            expected = int(raw)
        except ValueError:
            raise ApiError(400, f"Invalid argument for {parameter}: '{raw}'", "invalid") from None
        if resource is None:
            continue  # the caller answers 404
        current = int(resource["metageneration"])
        if parameter == "ifMetagenerationMatch" and current != expected:
            raise ApiError(412, "Precondition Failed", "conditionNotMet")
        if parameter == "ifMetagenerationNotMatch" and current == expected:
            raise ApiError(304, "Not Modified", "notModified") if read else ApiError(
                412, "Precondition Failed", "conditionNotMet")


def render(resource: dict, projection: str, base_url: str) -> dict:
    """What GCS returns: noAcl leaves out acl, defaultObjectAcl and owner; full adds them (not under uniform access)."""
    rendered = {**resource, "selfLink": f"{base_url}/storage/v1/b/{resource['name']}"}
    owner_entity = f"project-owners-{resource['projectNumber']}"
    if projection != "full":
        for key in ("acl", "defaultObjectAcl", "owner"):
            rendered.pop(key, None)
        return rendered
    rendered["owner"] = {"entity": owner_entity}
    if resource["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"]:
        rendered.pop("acl", None)
        rendered.pop("defaultObjectAcl", None)
        return rendered
    rendered["acl"] = [_acl_entry(resource, team, role, "storage#bucketAccessControl", base_url)
                       for team, role in _acl_teams(resource.get("acl"))]
    rendered["defaultObjectAcl"] = [_acl_entry(resource, team, role, "storage#objectAccessControl", None)
                                    for team, role in _acl_teams(resource.get("defaultObjectAcl"))]
    return rendered


def _apply_writable(resource: dict, body: dict, now: str, *, previous_iam: dict | None) -> None:
    """Set writable fields from body, validating each, and fill GCS's defaults where a field is absent."""
    for key, value in body.items():
        if key in WRITABLE_FIELDS and key not in IMMUTABLE_FIELDS:
            if value is None:
                resource.pop(key, None)
            else:
                resource[key] = copy.deepcopy(value)
    storage_class = resource.get("storageClass") or "STANDARD"
    if storage_class not in STORAGE_CLASSES:
        raise ApiError(400, f"Invalid storage class: '{storage_class}'", "invalid")
    resource["storageClass"] = storage_class
    _check_labels(resource.get("labels") or {})
    if "labels" in resource and not resource["labels"]:
        del resource["labels"]
    if resource["locationType"] != "region" and "rpo" not in resource:
        resource["rpo"] = "DEFAULT"
    resource["iamConfiguration"] = _iam_configuration(resource.get("iamConfiguration") or {}, previous_iam, now)
    policy = resource.get("softDeletePolicy") or {}
    resource["softDeletePolicy"] = {"retentionDurationSeconds": str(policy.get("retentionDurationSeconds",
                                                                               _SOFT_DELETE_DEFAULT_SECONDS)),
                                    "effectiveTime": policy.get("effectiveTime", now)}
    versioning = resource.get("versioning")
    if versioning is not None and not isinstance(versioning.get("enabled", False), bool):
        raise ApiError(400, "Invalid value for field 'versioning.enabled': expected a JSON boolean.", "invalid")
    resource["updated"] = now


def _iam_configuration(requested: dict, old: dict | None, now: str) -> dict:
    """Uniform access mirrored into the legacy bucketPolicyOnly; lockedTime set when it is turned on."""
    uniform = requested.get("uniformBucketLevelAccess") or requested.get("bucketPolicyOnly") or {}
    enabled = uniform.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ApiError(400, "Invalid value for field 'iamConfiguration.uniformBucketLevelAccess.enabled': "
                            "expected a JSON boolean.", "invalid")
    block = {"enabled": enabled}
    if enabled:
        old_uniform = (old or {}).get("uniformBucketLevelAccess") or {}
        locked = old_uniform.get("lockedTime") if old_uniform.get("enabled") else None
        if locked is None:
            moment = datetime.fromisoformat(now.replace("Z", "+00:00")) + timedelta(days=_UNIFORM_ACCESS_LOCK_DAYS)
            locked = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        block["lockedTime"] = locked
    prevention = requested.get("publicAccessPrevention", "inherited")
    if prevention == "unspecified":
        prevention = "inherited"
    if prevention not in ("inherited", "enforced"):
        raise ApiError(400, f"Invalid value for publicAccessPrevention: '{prevention}'", "invalid")
    return {"bucketPolicyOnly": dict(block), "uniformBucketLevelAccess": block, "publicAccessPrevention": prevention}


def _check_labels(labels: dict) -> None:
    if len(labels) > 64:
        raise ApiError(400, "A bucket may have at most 64 labels.", "invalid")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ApiError(400, f"Invalid label key '{key}': keys start with a lowercase letter and hold at most "
                                "63 lowercase letters, digits, '_' and '-'.", "invalid")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ApiError(400, f"Invalid value for label '{key}': values hold at most 63 lowercase letters, "
                                "digits, '_' and '-'.", "invalid")


def _next_metageneration(resource: dict) -> dict:
    metageneration = int(resource["metageneration"]) + 1
    resource["metageneration"] = str(metageneration)
    resource["etag"] = bucket_etag(metageneration)
    return resource


def _merge(current: object, patch: object) -> object:
    if isinstance(current, dict) and isinstance(patch, dict):
        merged = dict(current)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _merge(merged.get(key), value)
        return merged
    return patch


def _acl_teams(requested: list | None) -> list[tuple[str, str]]:
    if requested:
        return [(entry.get("entity", ""), entry.get("role", "READER")) for entry in requested]
    return [("owners", "OWNER"), ("editors", "OWNER"), ("viewers", "READER")]


def _acl_entry(resource: dict, team: str, role: str, kind: str, base_url: str | None) -> dict:
    number = resource["projectNumber"]
    entity = team if team.startswith(("project-", "user-", "group-", "domain-", "all")) else f"project-{team}-{number}"
    entry = {"kind": kind, "entity": entity, "role": role, "etag": resource["etag"], "bucket": resource["name"]}
    if entity.startswith("project-"):
        entry["projectTeam"] = {"projectNumber": number, "team": entity.split("-")[1]}
    if base_url is not None:
        entry["id"] = f"{resource['name']}/{entity}"
        entry["selfLink"] = f"{base_url}/storage/v1/b/{resource['name']}/acl/{entity}"
    return entry


def _json_type(expected: type) -> str:
    return {dict: "object", list: "array", bool: "boolean", str: "string"}[expected]
