"""Turn google-api-core and transport exceptions into saxctl's error types, naming the API method and object.

What is transient is decided here, from the error itself and not the HTTP status alone: 429/5xx, gRPC UNAVAILABLE,
RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED, and ABORTED (an IAM etag that moved: re-read and try again). A provider
names the errors that only end when something else finishes (GKE's "operation in progress") with `busy`; those are
retried until the change's deadline rather than a fixed number of times.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from reconciler.errors import RemoteError, RetryableError

if TYPE_CHECKING:
    from google.api_core import exceptions as api_exceptions

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# google-api-core words an HTTP error "GET http://host/storage/v1/b/x?projection=noAcl&prettyPrint=false: reason":
# the client's URL says nothing the method and object do not, and can be long.
_REQUEST_PREFIX = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE) \S+: ")


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
        _classify(error, method, target, busy)
        raise


def _classify(error: Exception, method: str, target: str, busy) -> None:
    """Raise the saxctl error an API failure is; return for anything that is not one."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(error, api_exceptions.GoogleAPICallError):
        status = error.code if isinstance(error.code, int) else None
        reason = _REQUEST_PREFIX.sub("", str(error.message or "")).strip() or type(error).__name__
        text = f"{method} {target}: {status or ''} {reason}".replace("  ", " ")
        if busy is not None and busy(error):
            raise RetryableError(text, retry_after=_retry_after(error), until_deadline=True) from None
        if status in TRANSIENT_STATUS or isinstance(error, api_exceptions.Aborted):
            raise RetryableError(text, retry_after=_retry_after(error)) from None
        raise RemoteError(text) from None
    if isinstance(error, (requests.ConnectionError, requests.Timeout, auth_exceptions.TransportError)):
        raise RetryableError(f"{method} {target}: connection failed: {type(error).__name__}") from None


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
