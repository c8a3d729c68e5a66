"""The GCS front layer keeps the whole bucket resource, as GCS does, through the real google-cloud-storage client."""

import pytest
import requests
from google.api_core import exceptions

PROJECT = "saxctl-sandbox-test"
TIMEOUT_S = 10


@pytest.fixture
def client(sandbox):
    return sandbox.storage_client(PROJECT)


def create(client, name, *, labels=None, location="US", storage_class="STANDARD", uniform=False, versioning=False):
    bucket = client.bucket(name)
    bucket.labels = labels or {}
    bucket.storage_class = storage_class
    bucket.iam_configuration.uniform_bucket_level_access_enabled = uniform
    bucket.versioning_enabled = versioning
    return client.create_bucket(bucket, location=location, timeout=TIMEOUT_S)


def test_insert_keeps_what_fake_gcs_server_drops(client, unique_name):
    name = unique_name("b")
    created = create(client, name, labels={"app": "sax", "managed-by": "saxctl"}, location="europe-west4",
                     storage_class="NEARLINE", uniform=True, versioning=True)
    for bucket in (created, client.get_bucket(name, timeout=TIMEOUT_S),
                   next(b for b in client.list_buckets(prefix=name, timeout=TIMEOUT_S))):
        assert bucket.labels == {"app": "sax", "managed-by": "saxctl"}
        assert (bucket.location, bucket.location_type, bucket.storage_class) == ("EUROPE-WEST4", "region", "NEARLINE")
        assert bucket.iam_configuration.uniform_bucket_level_access_enabled
        assert bucket.iam_configuration.uniform_bucket_level_access_locked_time is not None
        assert bucket.versioning_enabled
        assert bucket.metageneration == 1 and bucket.project_number == created.project_number


def test_patch_changes_only_what_it_names_and_bumps_the_metageneration(client, unique_name):
    bucket = create(client, unique_name("b"), labels={"keep": "1", "drop": "2"}, storage_class="COLDLINE",
                    uniform=True, versioning=True)
    bucket.labels = {"keep": "1", "new": "3"}  # the client sends {"labels": {"drop": null, "new": "3", ...}}
    bucket.patch(timeout=TIMEOUT_S)
    fresh = client.get_bucket(bucket.name, timeout=TIMEOUT_S)
    assert fresh.labels == {"keep": "1", "new": "3"}
    assert fresh.versioning_enabled, "fake-gcs-server turns versioning off on a labels patch; the layer must not"
    assert fresh.storage_class == "COLDLINE" and fresh.iam_configuration.uniform_bucket_level_access_enabled
    assert fresh.metageneration == 2 and fresh.etag == "CAI="


def test_update_sends_the_whole_resource_and_keeps_it(client, unique_name):
    bucket = create(client, unique_name("b"), labels={"a": "1"})
    bucket.storage_class = "ARCHIVE"
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.update(timeout=TIMEOUT_S)
    fresh = client.get_bucket(bucket.name, timeout=TIMEOUT_S)
    assert (fresh.storage_class, fresh.labels, fresh.metageneration) == ("ARCHIVE", {"a": "1"}, 2)
    assert fresh.iam_configuration.uniform_bucket_level_access_enabled


def test_metageneration_preconditions(client, unique_name):
    bucket = create(client, unique_name("b"))
    bucket.labels = {"x": "y"}
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.patch(if_metageneration_match=7, timeout=TIMEOUT_S)
    bucket.patch(if_metageneration_match=1, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.NotModified):
        client.get_bucket(bucket.name, if_metageneration_not_match=2, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.delete(if_metageneration_match=1, timeout=TIMEOUT_S)
    assert client.get_bucket(bucket.name, timeout=TIMEOUT_S).labels == {"x": "y"}, "a refused delete deletes nothing"
    bucket.delete(if_metageneration_match=2, timeout=TIMEOUT_S)
    assert client.lookup_bucket(bucket.name, timeout=TIMEOUT_S) is None


def test_list_pages_by_project_and_prefix(sandbox, client, unique_name):
    prefix = unique_name("ls")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for name in names:
        client.create_bucket(name, timeout=TIMEOUT_S)
    sandbox.storage_client("another-project").create_bucket(f"{prefix}-other", timeout=TIMEOUT_S)
    sandbox.reset_requests()
    pages = client.list_buckets(prefix=prefix, page_size=2, timeout=TIMEOUT_S).pages
    assert [[b.name for b in page] for page in pages] == [names[0:2], names[2:4], names[4:5]]
    assert [r["method"] + " " + r["path"] for r in sandbox.requests()] == ["GET /storage/v1/b"] * 3


def test_deleting_a_non_empty_bucket_is_409_as_in_gcs(sandbox, client, unique_name):
    bucket = create(client, unique_name("b"))
    bucket.blob("checkpoints/commit_success.txt").upload_from_string(b"ok", timeout=TIMEOUT_S)
    with pytest.raises(exceptions.Conflict, match="The bucket you tried to delete is not empty."):
        bucket.delete(timeout=TIMEOUT_S)
    assert client.get_bucket(bucket.name, timeout=TIMEOUT_S).name == bucket.name
    bucket.delete(force=True, timeout=TIMEOUT_S)
    assert client.lookup_bucket(bucket.name, timeout=TIMEOUT_S) is None
    reply = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}/o", timeout=TIMEOUT_S)
    assert reply.status_code == 404, "fake-gcs-server's copy is gone too"


def gcs_error(code, message, reason):
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}


def test_error_bodies_are_the_ones_gcs_sends(sandbox, unique_name):
    endpoint = f"{sandbox.gcs_endpoint}/storage/v1/b"
    name = unique_name("b")
    assert requests.post(endpoint, params={"project": PROJECT}, json={"name": name}, timeout=TIMEOUT_S).ok
    cases = [
        (requests.post(endpoint, params={"project": PROJECT}, json={"name": name}, timeout=TIMEOUT_S),
         gcs_error(409, "Your previous request to create the named bucket succeeded and you already own it.",
                   "conflict")),
        (requests.post(endpoint, params={"project": "someone-else"}, json={"name": name}, timeout=TIMEOUT_S),
         gcs_error(409, "The requested bucket name is not available. The bucket namespace is shared by all users "
                        "of the system. Please select a different name and try again.", "conflict")),
        (requests.get(f"{endpoint}/{name}-missing", timeout=TIMEOUT_S),
         gcs_error(404, "The specified bucket does not exist.", "notFound")),
        (requests.post(endpoint, params={"project": PROJECT}, json={"name": "Bad_Name"}, timeout=TIMEOUT_S),
         gcs_error(400, "Invalid bucket name: 'Bad_Name'", "invalid")),
        (requests.patch(f"{endpoint}/{name}", params={"ifMetagenerationMatch": "5"}, json={}, timeout=TIMEOUT_S),
         gcs_error(412, "Precondition Failed", "conditionNotMet")),
        (requests.get(endpoint, timeout=TIMEOUT_S), gcs_error(400, "Required parameter: project", "required")),
    ]
    for reply, body in cases:
        assert (reply.status_code, reply.json()) == (body["error"]["code"], body)
        assert reply.headers["Content-Type"].startswith("application/json")


def test_projection_full_shows_acls_only_without_uniform_access(sandbox, client, unique_name):
    fine_grained = create(client, unique_name("b"))
    uniform = create(client, unique_name("b"), uniform=True)
    number = fine_grained.project_number
    full = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{fine_grained.name}", params={"projection": "full"},
                        timeout=TIMEOUT_S).json()
    assert full["owner"] == {"entity": f"project-owners-{number}"}
    assert {entry["entity"]: entry["role"] for entry in full["acl"]} == {f"project-owners-{number}": "OWNER",
                                                                       f"project-editors-{number}": "OWNER",
                                                                       f"project-viewers-{number}": "READER"}
    no_acl = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{fine_grained.name}", timeout=TIMEOUT_S).json()
    assert not {"acl", "defaultObjectAcl", "owner"} & set(no_acl)
    uniform_full = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{uniform.name}", params={"projection": "full"},
                                timeout=TIMEOUT_S).json()
    assert "acl" not in uniform_full and "defaultObjectAcl" not in uniform_full


def test_bad_bodies_change_nothing(sandbox, client, unique_name):
    bucket = create(client, unique_name("b"), labels={"a": "1"})
    url = f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}"
    for body in ({"labels": {"Bad Key": "x"}}, {"colour": "red"}, {"location": "ASIA"}, {"storageClass": "CHEAP"}):
        reply = requests.patch(url, json=body, timeout=TIMEOUT_S)
        assert reply.status_code == 400 and reply.json()["error"]["errors"][0]["reason"] == "invalid", body
    reply = requests.patch(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert reply.status_code == 400
    fresh = client.get_bucket(bucket.name, timeout=TIMEOUT_S)
    assert (fresh.labels, fresh.metageneration) == ({"a": "1"}, 1)


@pytest.mark.parametrize("projection", ["noAcl", "full"])
def test_every_bucket_the_tests_above_left_matches_storage_v1(sandbox, projection):
    """CONTRACT over everything this module created: listed through the layer, checked against discovery."""
    from contract import Discovery

    reply = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b", params={"project": PROJECT, "projection": projection},
                         timeout=TIMEOUT_S)
    assert reply.status_code == 200
    assert len(reply.json()["items"]) >= 10
    assert Discovery.load("storage", "v1").check_response("storage.buckets.list", reply.json()) == []
