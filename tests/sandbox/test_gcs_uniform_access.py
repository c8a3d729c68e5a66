"""A bucket with uniform bucket-level access refuses object ACLs with GCS's 400, whichever way a client sends them."""

import pytest
import requests
from google.api_core import exceptions

from reconciler.sandbox.gcs.front import UNIFORM_ACCESS_ACL

PROJECT = "saxctl-sandbox-test"
TIMEOUT_S = 10


def bucket_with(sandbox, name, *, uniform):
    client = sandbox.storage_client(PROJECT)
    bucket = client.bucket(name)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = uniform
    bucket = client.create_bucket(bucket, location="US", timeout=TIMEOUT_S)
    bucket.blob("a.txt").upload_from_string(b"hello", timeout=TIMEOUT_S)
    return bucket


def test_an_acl_grant_from_the_client_is_refused_on_a_uniform_bucket(sandbox, unique_name):
    blob = bucket_with(sandbox, unique_name("u"), uniform=True).blob("a.txt")
    blob.acl.all().grant_read()
    with pytest.raises(exceptions.BadRequest) as refused:
        blob.acl.save(timeout=TIMEOUT_S)  # PATCH of the object with an `acl`
    assert UNIFORM_ACCESS_ACL in refused.value.message
    assert refused.value.errors[0]["reason"] == "invalid"


def test_an_upload_with_a_predefined_acl_is_refused_and_writes_nothing(sandbox, unique_name):
    bucket = bucket_with(sandbox, unique_name("u"), uniform=True)
    with pytest.raises(exceptions.BadRequest, match="uniform bucket-level access is enabled"):
        bucket.blob("public.txt").upload_from_string(b"x", predefined_acl="publicRead", timeout=TIMEOUT_S)
    assert bucket.get_blob("public.txt", timeout=TIMEOUT_S) is None


def test_the_object_acl_api_is_refused_and_other_object_changes_pass(sandbox, unique_name):
    name = unique_name("u")
    bucket_with(sandbox, name, uniform=True)
    acl = f"{sandbox.gcs_endpoint}/storage/v1/b/{name}/o/a.txt/acl"
    reply = requests.post(acl, json={"entity": "allUsers", "role": "READER"}, timeout=TIMEOUT_S)
    assert reply.status_code == 400 and reply.json()["error"]["message"] == UNIFORM_ACCESS_ACL
    assert requests.delete(f"{acl}/allUsers", timeout=TIMEOUT_S).status_code == 400
    changed = requests.patch(f"{sandbox.gcs_endpoint}/storage/v1/b/{name}/o/a.txt", json={"metadata": {"k": "v"}},
                             timeout=TIMEOUT_S)
    assert changed.status_code == 200 and changed.json()["metadata"] == {"k": "v"}, changed.text


def test_a_fine_grained_bucket_takes_object_acls(sandbox, unique_name):
    blob = bucket_with(sandbox, unique_name("f"), uniform=False).blob("a.txt")
    blob.acl.all().grant_read()
    blob.acl.save(timeout=TIMEOUT_S)
    blob.acl.reload(timeout=TIMEOUT_S)
    assert "READER" in blob.acl.all().get_roles()
