"""An injected 429 on the GCS front answers in the words GCS uses for that kind of request."""

import pytest
import requests

from reconciler.sandbox.gcs import rate_limits

TIMEOUT_S = 10
OBJECT_LIMIT = rate_limits.OBJECT_MUTATION.format


@pytest.mark.parametrize("method, path, query, message", [
    ("GET", "/storage/v1/b/data", "", rate_limits.READ),
    ("GET", "/download/storage/v1/b/data/o/m%2Fa.bin", "alt=media", rate_limits.READ),
    ("POST", "/storage/v1/b", "project=p", rate_limits.BUCKET_CREATE_OR_DELETE),
    ("DELETE", "/storage/v1/b/data", "", rate_limits.BUCKET_CREATE_OR_DELETE),
    ("PATCH", "/storage/v1/b/data", "", rate_limits.BUCKET_MUTATION),
    ("PUT", "/storage/v1/b/data/iam", "", rate_limits.BUCKET_MUTATION),
    ("POST", "/upload/storage/v1/b/data/o", "uploadType=media&name=m%2Fa.bin", OBJECT_LIMIT(object="data/m/a.bin")),
    ("DELETE", "/storage/v1/b/data/o/m%2Fa.bin", "", OBJECT_LIMIT(object="data/m/a.bin")),
    ("POST", "/storage/v1/b/data/o/a/copyTo/b/stash/o/b", "", OBJECT_LIMIT(object="stash/b")),
    ("PUT", "/upload/storage/v1/b/data/o", "uploadType=resumable&upload_id=7", OBJECT_LIMIT(object="data")),
], ids=["bucket-get", "download", "bucket-insert", "bucket-delete", "bucket-patch", "bucket-iam", "upload",
        "object-delete", "copy", "upload-chunk"])
def test_each_kind_of_request_gets_its_own_429_text(method, path, query, message):
    assert rate_limits.rate_limit_message(method, path, query) == message


def test_an_injected_429_on_the_front_fits_the_request_it_answers(sandbox, unique_name):
    name = unique_name("r")
    base = f"{sandbox.gcs_endpoint}/storage/v1/b"
    assert requests.post(base, params={"project": "p"}, json={"name": name}, timeout=TIMEOUT_S).status_code == 200
    sandbox.inject_fault(path=f"/b/{name}", status=429)
    read = requests.get(f"{base}/{name}", timeout=TIMEOUT_S)
    upload = requests.post(f"{sandbox.gcs_endpoint}/upload/storage/v1/b/{name}/o",
                           params={"uploadType": "media", "name": "x.txt"}, data=b"x", timeout=TIMEOUT_S)
    change = requests.patch(f"{base}/{name}", json={"labels": {"a": "b"}}, timeout=TIMEOUT_S)
    for reply, message in ((read, rate_limits.READ), (upload, OBJECT_LIMIT(object=f"{name}/x.txt")),
                           (change, rate_limits.BUCKET_MUTATION)):
        error = reply.json()["error"]
        assert (reply.status_code, error["message"], error["errors"][0]["reason"]) == (429, message,
                                                                                       "rateLimitExceeded")
        assert reply.headers["Retry-After"] == "1"
