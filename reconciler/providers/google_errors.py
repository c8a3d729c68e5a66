"""Turn google-api-core and transport exceptions into saxctl's error types, naming the API method and object.

What is transient is decided here, from the error itself and not the HTTP status alone: 429/5xx, gRPC UNAVAILABLE,
RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED, and ABORTED (an IAM etag that moved: re-read and try again). A provider
names the errors that only end when something else finishes (GKE's "operation in progress") with `busy`; those are
retried until the change's deadline rather than a fixed number of times.

What is not the API's answer is said for the user to act on: an endpoint that does not answer (a refused connection,
google-api-core's RetryError after a client's own retries) names the endpoint; credentials that cannot be refreshed
(google-auth's RefreshError) say how to get new ones. Neither is a bug in saxctl.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import urlsplit

from reconciler.errors import RemoteError, RetryableError, SaxctlError

if TYPE_CHECKING:
    from google.api_core import exceptions as api_exceptions

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# google-api-core words an HTTP error "GET http://host/storage/v1/b/x?projection=noAcl&prettyPrint=false: reason":
# the client's URL says nothing the method and object do not, and can be long.
_REQUEST_PREFIX = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE) \S+: ")
# urllib3 words a failed connection "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /x
# (Caused by NewConnectionError(...: Failed to establish a new connection: [Errno 111] Connection refused'))".
_POOL_HOST = re.compile(r"host='([^']+)', port=(\d+)")
_OS_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
LOGIN_HINT = ("Run `gcloud auth application-default login` (or point GOOGLE_APPLICATION_CREDENTIALS at a valid key), "
              "then run saxctl again.")


@contextmanager
def remote_call(method: str, target: str, *,
                busy: Callable[[api_exceptions.GoogleAPICallError], bool] | None = None) -> Iterator[None]:
    """Run an API call; transient failures become RetryableError, the rest RemoteError with status and reason.

    Catch the specific api_core exceptions a caller expects (NotFound, Conflict...) inside this block.
    The client libraries are imported when an error needs them: a command that makes no call (validate, render, a
    plan's desired state) does not pay for google-api-core, requests and grpc.
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001 (classified below; anything else goes on unchanged)
        _classify(error, f"{method} {target}", busy)
        raise


def _classify(error: BaseException, what: str, busy=None) -> None:
    """Raise the saxctl error an API failure is (`what`: the method and object, to name them); return for anything
    that is not one."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(error, api_exceptions.GoogleAPICallError):
        status = error.code if isinstance(error.code, int) else None
        reason = _REQUEST_PREFIX.sub("", str(error.message or "")).strip() or type(error).__name__
        text = f"{what}: {status or ''} {reason}".replace("  ", " ")
        if busy is not None and busy(error):
            raise RetryableError(text, retry_after=_retry_after(error), until_deadline=True) from None
        # A stale etag: ABORTED over gRPC; over REST a 409 Conflict whose status says ABORTED (409 is also
        # ALREADY_EXISTS, which is not transient).
        if status in TRANSIENT_STATUS or isinstance(error, api_exceptions.Aborted) or api_status(error) == "ABORTED":
            raise RetryableError(text, retry_after=_retry_after(error)) from None
        raise RemoteError(text) from None
    if isinstance(error, api_exceptions.RetryError):  # a client's own retries gave up (storage's default retry)
        raise _gave_up(error, what) from None
    if isinstance(error, auth_exceptions.RefreshError):
        text = f"{what}: the Google credentials could not be refreshed: {_auth_reason(error)}"
        if error.retryable:  # google-auth says the token endpoint failed transiently
            raise RetryableError(text) from None
        raise SaxctlError(text, hint=LOGIN_HINT) from None
    if isinstance(error, (requests.ConnectionError, requests.Timeout, auth_exceptions.TransportError)):
        raise RetryableError(f"{what}: {_not_answering(error)}",
                             hint=_endpoint_hint(_endpoint_of(error))) from None


def api_status(error) -> str | None:
    """The canonical status of a REST error (FAILED_PRECONDITION, ABORTED...): its HTTP code alone is ambiguous."""
    response = getattr(error, "response", None)
    try:
        return response.json()["error"]["status"]
    except (AttributeError, ValueError, KeyError, TypeError):
        return None


def known_failure(error: BaseException) -> SaxctlError | None:
    """The user's error that a client failure escaping every remote_call is (one raised in a client's own thread),
    or None when it is none of them: an endpoint that does not answer, or credentials that cannot be refreshed."""
    if not type(error).__module__.startswith(("google.", "requests", "urllib3")):
        return None
    try:
        _classify(error, "a Google API call")
    except SaxctlError as known:
        return known
    return None


def _gave_up(error, what: str) -> SaxctlError:
    """A RetryError: the API's last answer (a 503...) or the endpoint that stopped answering, and the time spent."""
    cause, spent = error.cause, str(error.message).split(",")[0]  # "Timeout of 120.0s exceeded"
    try:
        if cause is not None:
            _classify(cause, what)
    except RemoteError as last:
        return RemoteError(f"{last.message}; the client's retries gave up ({spent})", hint=last.hint)
    except SaxctlError as last:
        return last
    return RemoteError(f"{what}: {error.message}")


def _not_answering(error: Exception) -> str:
    """"the endpoint http://127.0.0.1:9 does not answer (Connection refused)", from a requests/google-auth error."""
    reason = _OS_REASON.search(str(error))
    why = reason[1].strip() if reason else ("timed out" if "timed out" in str(error).lower() else type(error).__name__)
    endpoint = _endpoint_of(error)
    return f"the endpoint {endpoint} does not answer ({why})" if endpoint else f"connection failed ({why})"


def _endpoint_of(error: Exception) -> str | None:
    url = getattr(getattr(error, "request", None), "url", None)
    if url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    found = _POOL_HOST.search(str(error))
    return f"{found[1]}:{found[2]}" if found else None


def _endpoint_hint(endpoint: str | None) -> str:
    if endpoint and any(local in endpoint for local in ("127.0.0.1", "localhost", "[::1]")):
        return "Is the sandbox running? `saxctl sandbox status`; start it with: eval \"$(saxctl sandbox up)\""
    return "Check the network connection to Google Cloud (a proxy, a firewall), then run saxctl again."


def _auth_reason(error: Exception) -> str:
    """google-auth's RefreshError carries (message, response body): the message is what to show."""
    first = error.args[0] if error.args else ""
    return str(first).strip() or type(error).__name__


def _retry_after(error: api_exceptions.GoogleAPICallError) -> float | None:
    """Seconds the server asked for: Retry-After over HTTP, a google.rpc.RetryInfo detail over gRPC."""
    for detail in getattr(error, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "seconds"):
            return delay.seconds + delay.nanos / 1e9
    response = getattr(error, "response", None)
    header = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(header) if header else None
    except ValueError:
        return None
