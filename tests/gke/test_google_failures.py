"""What a Google API failure becomes for the user, with the real client libraries on a real (closed) port: a client's
own retries giving up (RetryError) and credentials that cannot be refreshed (RefreshError) are the user's to fix, named
with the API, the object and the endpoint; and one idempotent call is retried alone, by time, not by a count."""

from __future__ import annotations

import socket

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions

from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RemoteError, RetryableError, SaxctlError
from reconciler.providers.google_errors import known_failure, remote_call
from reconciler.providers.google_retry import idempotent

LOCK = "gs://my-sax-admin/saxctl/lock.json"


@pytest.fixture
def closed_port() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    return port


def retried_by_the_client(port: int):
    """What google-cloud-storage's default retry raises when the endpoint stops answering: a RetryError."""
    policy = api_retry.Retry(predicate=api_retry.if_exception_type(requests.ConnectionError), initial=0.01,
                             maximum=0.02, timeout=0.2)
    return policy(lambda: requests.put(f"http://127.0.0.1:{port}/upload/storage/v1/b/my-sax-admin/o", timeout=5))()


def test_a_clients_retries_giving_up_on_a_dead_endpoint_name_the_api_the_object_and_the_endpoint(closed_port):
    with pytest.raises(RemoteError) as caught:
        with remote_call("storage.objects.insert", LOCK):
            retried_by_the_client(closed_port)
    error = caught.value
    assert not isinstance(error, RetryableError), "the client retried already: final"
    assert error.message == (f"storage.objects.insert {LOCK}: the endpoint http://127.0.0.1:{closed_port} does not "
                             "answer (Connection refused); the client's retries gave up (Timeout of 0.2s exceeded)")
    assert "saxctl sandbox status" in error.hint


def test_one_that_escaped_every_call_wrapper_is_still_the_users_to_fix_and_anything_else_a_bug(closed_port):
    with pytest.raises(api_exceptions.RetryError) as escaped:
        retried_by_the_client(closed_port)
    known = known_failure(escaped.value)
    assert known is not None and f"http://127.0.0.1:{closed_port} does not answer (Connection refused)" in known.message
    assert known_failure(ValueError("a bug")) is None
    assert known_failure(KeyError("x")) is None


def test_credentials_that_cannot_be_refreshed_say_how_to_log_in_and_a_transient_refresh_is_retried():
    expired = auth_exceptions.RefreshError("invalid_grant: Token has been expired or revoked.",
                                           {"error": "invalid_grant"})
    with pytest.raises(SaxctlError) as caught:
        with remote_call("container.projects.locations.clusters.get", "projects/p/locations/z/clusters/saxml"):
            raise expired
    assert not isinstance(caught.value, RemoteError)
    assert caught.value.message == ("container.projects.locations.clusters.get projects/p/locations/z/clusters/saxml: "
                                    "the Google credentials could not be refreshed: invalid_grant: Token has been "
                                    "expired or revoked.")
    assert "gcloud auth application-default login" in caught.value.hint
    with pytest.raises(RetryableError):
        with remote_call("storage.buckets.get", "gs://a"):
            raise auth_exceptions.RefreshError("500 backend error", retryable=True)


FAST = RetryPolicy(deadline=1.0, initial_wait=0.001, max_wait=0.001)


def test_an_idempotent_call_is_retried_alone_until_it_answers():
    answers = [api_exceptions.ServiceUnavailable("down"), api_exceptions.TooManyRequests("slow down"), "regions/r"]
    calls = []

    def call():
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert idempotent("compute.regions.get", "projects/p/regions/r", call, FAST) == "regions/r"
    assert len(calls) == 3


def test_retries_are_budgeted_by_time_not_by_a_count_and_what_outlives_the_budget_is_final():
    calls = []

    def always_unavailable():
        calls.append(1)
        raise api_exceptions.ServiceUnavailable("503 backend down")

    with pytest.raises(RemoteError) as caught:
        idempotent("compute.regions.get", "projects/p/regions/r", always_unavailable, FAST)
    assert not isinstance(caught.value, RetryableError), "no outer layer retries it again"
    assert caught.value.message == ("compute.regions.get projects/p/regions/r: 503 503 backend down (still failing "
                                    "after 1 s of retries)")
    assert len(calls) > 6, "more than the six attempts a count used to allow"


def test_a_permanent_error_is_not_retried():
    calls = []

    def denied():
        calls.append(1)
        raise api_exceptions.PermissionDenied("no")

    with pytest.raises(RemoteError):
        idempotent("compute.regions.get", "projects/p/regions/r", denied, FAST)
    assert len(calls) == 1


def rest_error(code: int, status: str) -> api_exceptions.GoogleAPICallError:
    """An error as google-api-core makes it from a REST reply (container v1 over HTTP)."""
    response = requests.Response()
    response.status_code = code
    response._content = f'{{"error": {{"code": {code}, "message": "m", "status": "{status}"}}}}'.encode()
    response.request = requests.Request("POST", "http://127.0.0.1:1/v1/x").prepare()
    return api_exceptions.from_http_response(response)


def test_a_stale_etag_over_rest_is_retried_and_an_object_that_exists_is_not():
    for error, retried in ((rest_error(409, "ABORTED"), True), (rest_error(409, "ALREADY_EXISTS"), False)):
        with pytest.raises(RemoteError) as caught:
            with remote_call("container.projects.locations.clusters.update", "projects/p/locations/z/clusters/c"):
                raise error
        assert isinstance(caught.value, RetryableError) is retried
