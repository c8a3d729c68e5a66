"""Which remote errors saxctl retries, and how it words them: decided from the error, not the HTTP status alone."""

import pytest
from google.api_core import exceptions as api_exceptions
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from reconciler.errors import RemoteError, RetryableError
from reconciler.providers.google_errors import remote_call


def raised(error, **options):
    with pytest.raises(RemoteError) as caught:
        with remote_call("iam.projects.serviceAccounts.create", "sax-iam-sa", **options):
            raise error
    return caught.value


@pytest.mark.parametrize("error", [
    api_exceptions.ServiceUnavailable("backend down"),
    api_exceptions.TooManyRequests("slow down"),
    api_exceptions.DeadlineExceeded("too slow"),
    api_exceptions.Aborted("There were concurrent policy changes."),
], ids=["unavailable", "429", "deadline", "aborted-etag"])
def test_transient_errors_are_retryable(error):
    assert isinstance(raised(error), RetryableError)


@pytest.mark.parametrize("error", [
    api_exceptions.AlreadyExists("exists"), api_exceptions.PermissionDenied("no"), api_exceptions.BadRequest("bad"),
], ids=["already-exists", "denied", "bad-request"])
def test_other_errors_are_not(error):
    assert type(raised(error)) is RemoteError


def test_an_error_that_ends_when_something_else_finishes_is_retried_until_the_deadline():
    in_progress = api_exceptions.FailedPrecondition("Cluster is running incompatible operation operation-1.")
    error = raised(in_progress, busy=lambda e: "incompatible operation" in e.message)
    assert isinstance(error, RetryableError) and error.until_deadline


def test_a_grpc_retry_hint_is_honoured():
    hint = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000))
    error = raised(api_exceptions.ResourceExhausted("quota", details=[hint]))
    assert error.retry_after == 2.5


def test_the_message_names_method_object_and_status_without_the_clients_url():
    error = raised(api_exceptions.NotFound("GET http://127.0.0.1:4443/v1/projects/p/x?alt=json: not here"))
    assert error.message == "iam.projects.serviceAccounts.create sax-iam-sa: 404 not here"
