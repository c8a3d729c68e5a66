"""Objects, uploads and downloads stream through the front layer, where faults and latency can be injected."""

import io
import os
import time

import pytest
import requests
from google.api_core import exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

PROJECT = "saxctl-sandbox-test"
TIMEOUT_S = 10
CHUNK = 256 * 1024  # the smallest chunk google-cloud-storage allows
FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.05, maximum=0.2).with_timeout(20)  # GCS's predicate, short waits


@pytest.fixture
def bucket(sandbox, unique_name):
    return sandbox.storage_client(PROJECT).create_bucket(unique_name("b"), timeout=TIMEOUT_S)


def calls(sandbox, path_start: str) -> list[tuple[str, int]]:
    return [(r["method"], r["status"]) for r in sandbox.requests() if r["path"].startswith(path_start)]


def test_a_resumable_upload_sends_every_chunk_through_the_layer(sandbox, bucket):
    """RECIPES §2: with Host kept, fake-gcs-server's upload Location leads back to the layer, not around it."""
    data = os.urandom(3 * CHUNK + 1000)
    blob = bucket.blob("checkpoints/state.bin", chunk_size=CHUNK)
    sandbox.reset_requests()
    blob.upload_from_file(io.BytesIO(data), timeout=TIMEOUT_S)  # no size given: a resumable upload
    assert calls(sandbox, "/upload/") == [("POST", 200), ("PUT", 308), ("PUT", 308), ("PUT", 308), ("PUT", 200)]
    assert bucket.blob("checkpoints/state.bin").download_as_bytes(timeout=TIMEOUT_S) == data


def test_a_fault_on_one_chunk_is_retried_and_the_upload_completes(sandbox, bucket):
    data = os.urandom(2 * CHUNK + 10)
    sandbox.inject_fault(method="PUT", path="^/upload/storage/v1/b/.+/o$", status=503, count=1)
    sandbox.reset_requests()
    blob = bucket.blob("retried.bin", chunk_size=CHUNK)
    blob.upload_from_file(io.BytesIO(data), timeout=TIMEOUT_S, retry=FAST_RETRY)
    uploads = calls(sandbox, "/upload/")
    assert uploads[:2] == [("POST", 200), ("PUT", 503)], "the layer answered the first chunk itself"
    assert uploads[-1] == ("PUT", 200)
    assert bucket.blob("retried.bin").download_as_bytes(timeout=TIMEOUT_S) == data


def test_links_in_object_resources_lead_back_to_the_layer(sandbox, bucket):
    bucket.blob("a.txt").upload_from_string(b"hello", timeout=TIMEOUT_S)
    listed = bucket.get_blob("a.txt", timeout=TIMEOUT_S)
    assert listed.media_link.startswith(sandbox.gcs_endpoint + "/download/storage/v1/b/")
    sandbox.reset_requests()
    assert listed.download_as_bytes(timeout=TIMEOUT_S) == b"hello"
    assert calls(sandbox, "/download/") == [("GET", 200)]


def test_ranged_download_and_generation_preconditions_pass_through(bucket):
    blob = bucket.blob("ranged.bin")
    data = os.urandom(5000)
    blob.upload_from_string(data, if_generation_match=0, timeout=TIMEOUT_S)
    assert blob.download_as_bytes(start=100, end=1099, timeout=TIMEOUT_S) == data[100:1100]
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("ranged.bin").upload_from_string(b"again", if_generation_match=0, timeout=TIMEOUT_S)


def test_a_delete_at_a_stale_generation_is_refused_with_gcs_412_and_deletes_nothing(sandbox, bucket):
    """fake-gcs-server deletes whatever generation is there; GCS refuses: the layer checks ifGenerationMatch."""
    blob = bucket.blob("saxctl/lock.json")
    blob.upload_from_string(b"first", timeout=TIMEOUT_S)
    stale = blob.generation
    blob.upload_from_string(b"second", timeout=TIMEOUT_S)
    current = blob.generation
    assert current != stale
    reply = requests.delete(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}/o/saxctl%2Flock.json",
                            params={"ifGenerationMatch": stale}, timeout=TIMEOUT_S)
    assert reply.status_code == 412
    assert reply.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert reply.json()["error"]["message"] == "At least one of the pre-conditions you specified did not hold."
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.delete_blob("saxctl/lock.json", if_generation_match=0, timeout=TIMEOUT_S)
    assert bucket.blob("saxctl/lock.json").download_as_bytes(timeout=TIMEOUT_S) == b"second"
    bucket.delete_blob("saxctl/lock.json", if_generation_match=current, timeout=TIMEOUT_S)
    assert bucket.get_blob("saxctl/lock.json", timeout=TIMEOUT_S) is None
    with pytest.raises(exceptions.NotFound):
        bucket.delete_blob("saxctl/lock.json", if_generation_match=current, timeout=TIMEOUT_S)


def test_a_copy_checks_its_generation_preconditions_as_gcs_does(sandbox, bucket):
    source = bucket.blob("saxctl/iam-members.json")
    source.upload_from_string(b"{}", timeout=TIMEOUT_S)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.copy_blob(source, bucket, "stash/a.json", if_source_generation_match=source.generation + 1,
                         timeout=TIMEOUT_S)
    assert bucket.get_blob("stash/a.json", timeout=TIMEOUT_S) is None, "a refused copy writes nothing"
    copied = bucket.copy_blob(source, bucket, "stash/a.json", if_source_generation_match=source.generation,
                              if_generation_match=0, timeout=TIMEOUT_S)
    assert copied.crc32c == source.crc32c
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.copy_blob(source, bucket, "stash/a.json", if_generation_match=0, timeout=TIMEOUT_S)
    assert bucket.copy_blob(source, bucket, "stash/a.json", if_generation_match=copied.generation,
                            timeout=TIMEOUT_S).generation != copied.generation


def test_429_answers_with_retry_after_and_the_rate_limit_body(sandbox, bucket):
    sandbox.inject_fault(method="GET", path=f"^/storage/v1/b/{bucket.name}$", status=429, count=1)
    reply = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}", timeout=TIMEOUT_S)
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "1"
    assert reply.json()["error"]["errors"][0] == {
        "message": reply.json()["error"]["message"], "domain": "usageLimits", "reason": "rateLimitExceeded"}
    assert requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}", timeout=TIMEOUT_S).ok, "count ran out"


def test_a_dropped_connection_is_seen_by_the_client_which_retries(sandbox, bucket):
    sandbox.inject_fault(method="GET", path=f"^/storage/v1/b/{bucket.name}$", drop=True, count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}", timeout=TIMEOUT_S)
    sandbox.inject_fault(method="GET", path=f"^/storage/v1/b/{bucket.name}$", drop=True, count=1)
    sandbox.reset_requests()
    client = sandbox.storage_client(PROJECT)
    assert client.get_bucket(bucket.name, timeout=TIMEOUT_S, retry=FAST_RETRY).name == bucket.name
    assert [r["status"] for r in sandbox.requests()] == [0, 200]


def test_latency_rule_delays_without_failing(sandbox, bucket):
    sandbox.inject_fault(method="GET", path=f"^/storage/v1/b/{bucket.name}$", delay_s=0.3)
    sandbox.reset_requests()
    sandbox.storage_client(PROJECT).get_bucket(bucket.name, timeout=TIMEOUT_S)
    (call,) = sandbox.requests()
    assert call["status"] == 200 and call["ms"] >= 300


def test_fault_control_endpoint_refuses_bad_rules_and_lists_and_clears(sandbox):
    url = f"{sandbox.gcs_endpoint}/_sandbox/faults"
    reply = requests.post(url, json=[{"status": 503}, {"path": "("}], timeout=TIMEOUT_S)
    assert reply.status_code == 400 and "not a valid regular expression" in reply.json()["error"]["message"]
    assert sandbox.faults() == [], "a refused list adds no rule"
    installed = sandbox.inject_fault(path="^/never$", status=500, count=3)
    assert [(r["id"], r["count"]) for r in sandbox.faults()] == [(installed["id"], 3)]
    sandbox.clear_faults()
    assert sandbox.faults() == []


def test_the_request_log_counts_api_calls_not_control_calls(sandbox, bucket):
    sandbox.reset_requests()
    sandbox.storage_client(PROJECT).get_bucket(bucket.name, timeout=TIMEOUT_S)
    sandbox.faults()
    assert [(r["method"], r["path"], r["status"]) for r in sandbox.requests()] == [
        ("GET", f"/storage/v1/b/{bucket.name}", 200)]
    bucket.labels = {"a": "b"}
    bucket.patch(timeout=TIMEOUT_S)
    summary = requests.get(f"{sandbox.gcs_endpoint}/_sandbox/requests", timeout=TIMEOUT_S).json()
    assert (summary["reads"], summary["writes"]) == (1, 1)


def test_a_chunked_request_body_and_a_long_listing_pass_through(sandbox, bucket):
    """Bodies of unknown length both ways: a chunked upload, and a listing fake-gcs-server sends chunked."""
    url = f"{sandbox.gcs_endpoint}/upload/storage/v1/b/{bucket.name}/o"
    parts = [os.urandom(10_000) for _ in range(3)]
    reply = requests.post(url, params={"uploadType": "media", "name": "chunked.bin"}, data=iter(parts),
                          headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT_S)
    assert reply.status_code == 200 and reply.json()["size"] == "30000"
    assert bucket.blob("chunked.bin").download_as_bytes(timeout=TIMEOUT_S) == b"".join(parts)
    for index in range(40):
        bucket.blob(f"many/object-with-a-longish-name-{index:03d}").upload_from_string(b"x", timeout=TIMEOUT_S)
    listing = requests.get(f"{sandbox.gcs_endpoint}/storage/v1/b/{bucket.name}/o", params={"prefix": "many/"},
                           timeout=TIMEOUT_S)
    assert listing.headers.get("Transfer-Encoding") == "chunked", "the case this test is for"
    assert len(listing.json()["items"]) == 40


def test_what_no_emulator_route_handles_still_gets_an_http_answer(sandbox):
    assert requests.options(f"{sandbox.gcs_endpoint}/storage/v1/b", timeout=TIMEOUT_S).status_code == 501
    unknown = requests.get(f"{sandbox.gcs_endpoint}/_sandbox/nothing", timeout=TIMEOUT_S)
    assert unknown.status_code == 404 and "no sandbox control endpoint" in unknown.json()["error"]["message"]
    assert requests.get(f"{sandbox.gcs_endpoint}/_sandbox/health", timeout=TIMEOUT_S).json()["ok"] is True


def test_the_fixture_keeps_the_client_from_fetching_buckets_in_the_background(sandbox, bucket):
    """google-cloud-storage 3.17 GETs a bucket from a background thread on the first object call; the fixture
    turns that off so request counts and count-limited faults only see the calls a test makes."""
    fresh = sandbox.storage_client(PROJECT)
    sandbox.reset_requests()
    fresh.bucket(bucket.name).blob("quiet.txt").upload_from_string(b"x", timeout=TIMEOUT_S)
    time.sleep(0.5)  # the background fetch, if on, starts within milliseconds
    assert [(r["method"], r["path"]) for r in sandbox.requests()] == [("POST", f"/upload/storage/v1/b/{bucket.name}/o")]
