"""CONTRACT: what the GCS front layer accepts and returns matches storage v1's discovery document."""

import pytest
import requests
from contract import Discovery

from reconciler.sandbox.gcs import buckets as gcs_buckets
from reconciler.sandbox.gcs.front import ROUTES

PROJECT = "saxctl-contract-test"
TIMEOUT_S = 10
_PYTHON_TYPES = {"object": dict, "array": list, "boolean": bool, "string": str}


@pytest.fixture(scope="module")
def storage():
    return Discovery.load("storage", "v1")


def test_the_layer_knows_exactly_the_bucket_properties_of_storage_v1(storage):
    declared = set(storage.schemas["Bucket"]["properties"])
    known = set(gcs_buckets.WRITABLE_FIELDS) | gcs_buckets.READ_ONLY_FIELDS
    assert known == declared, f"missing: {sorted(declared - known)}, not in storage v1: {sorted(known - declared)}"
    assert not set(gcs_buckets.WRITABLE_FIELDS) & gcs_buckets.READ_ONLY_FIELDS


@pytest.mark.parametrize("field", sorted(gcs_buckets.WRITABLE_FIELDS))
def test_writable_fields_have_the_json_type_storage_v1_gives_them(storage, field):
    assert _PYTHON_TYPES[storage.schemas["Bucket"]["properties"][field]["type"]] is gcs_buckets.WRITABLE_FIELDS[field]


@pytest.mark.parametrize("route", list(ROUTES), ids=lambda route: route.method_id)
def test_each_route_is_the_verb_and_path_of_its_discovery_method(storage, route):
    method = storage.method(route.method_id)
    assert method["httpMethod"] == route.verb
    sample = storage.service_path + method["path"].replace("{bucket}", "some-bucket")
    assert ROUTES.match(route.verb, sample)[0] == route, f"{route.method_id} answers at {sample}"
    assert route.method_id in storage.match(route.verb, sample)


# A body using most of what storage v1 lets a client set on a bucket, checked against the document before use.
FULL_BODY = {
    "location": "us-central1", "storageClass": "NEARLINE",
    "labels": {"app": "sax", "managed-by": "saxctl"},
    "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}, "publicAccessPrevention": "enforced"},
    "versioning": {"enabled": True},
    "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30}}]},
    "cors": [{"origin": ["*"], "method": ["GET"], "maxAgeSeconds": 60}],
    "softDeletePolicy": {"retentionDurationSeconds": "0"},
    "website": {"mainPageSuffix": "index.html"}, "billing": {"requesterPays": False},
    "retentionPolicy": {"retentionPeriod": "60"}, "defaultEventBasedHold": False,
    "hierarchicalNamespace": {"enabled": False}, "autoclass": {"enabled": False},
}


def test_every_reply_of_a_bucket_lifecycle_matches_the_discovery_schemas(sandbox, storage, unique_name):
    base = f"{sandbox.gcs_endpoint}/storage/v1/b"
    name = unique_name("c")
    insert_body = {"name": name, **FULL_BODY}
    patch_body = {"labels": {"app": None, "tier": "gold"}, "versioning": {"enabled": False}}
    assert storage.check_request("storage.buckets.insert", insert_body) == []
    assert storage.check_request("storage.buckets.patch", patch_body) == []

    replies = {
        "storage.buckets.insert": requests.post(base, params={"project": PROJECT}, json=insert_body,
                                                timeout=TIMEOUT_S),
        "storage.buckets.get": requests.get(f"{base}/{name}", params={"projection": "full"}, timeout=TIMEOUT_S),
        "storage.buckets.patch": requests.patch(f"{base}/{name}", json=patch_body, timeout=TIMEOUT_S),
        "storage.buckets.list": requests.get(base, params={"project": PROJECT, "prefix": name, "maxResults": 1},
                                             timeout=TIMEOUT_S),
    }
    for method_id, reply in replies.items():
        assert reply.status_code == 200, (method_id, reply.text)
        assert storage.check_response(method_id, reply.json()) == [], method_id

    whole = replies["storage.buckets.patch"].json()
    assert storage.check_request("storage.buckets.update", whole) == [], "a reply is a valid PUT body"
    updated = requests.put(f"{base}/{name}", json={**whole, "storageClass": "COLDLINE"}, timeout=TIMEOUT_S)
    assert updated.status_code == 200 and storage.check_response("storage.buckets.update", updated.json()) == []
    for key in ("lifecycle", "cors", "website", "retentionPolicy", "billing"):
        assert updated.json()[key] == FULL_BODY[key], f"{key} is kept through insert, patch and update"
    assert updated.json()["labels"] == {"managed-by": "saxctl", "tier": "gold"}
    assert requests.delete(f"{base}/{name}", timeout=TIMEOUT_S).status_code == 204


def test_a_property_storage_v1_does_not_define_is_refused(sandbox, storage, unique_name):
    body = {"name": unique_name("c"), "tier": "gold"}
    assert storage.check_request("storage.buckets.insert", body) == [
        "storage.buckets.insert request Bucket: unknown property 'tier'"]
    reply = requests.post(f"{sandbox.gcs_endpoint}/storage/v1/b", params={"project": PROJECT}, json=body,
                          timeout=TIMEOUT_S)
    assert reply.status_code == 400 and 'Unknown name "tier"' in reply.json()["error"]["message"]
    assert requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{body['name']}", timeout=TIMEOUT_S).status_code == 404


def test_the_checker_catches_wrong_types_and_formats(storage):
    """The checker itself must be able to fail, or the contract tests above prove nothing."""
    problems = storage.check("Bucket", {"labels": {"a": 1}, "metageneration": "one", "timeCreated": "yesterday",
                                        "versioning": {"enabled": "yes"}, "cors": {}})
    assert problems == [
        "Bucket.labels.a: expected string, got int 1",
        "Bucket.metageneration: 'one' is not an int64 string",
        "Bucket.timeCreated: 'yesterday' is not an RFC 3339 date-time",
        "Bucket.versioning.enabled: expected boolean, got str 'yes'",
        "Bucket.cors: expected array, got dict {}",
    ]
