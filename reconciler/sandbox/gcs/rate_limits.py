"""GCS's 429 bodies, one per kind of request it limits: a fault must answer the request it stands in for.

GCS words a rate limit by what was limited: bucket creation and deletion per project, metadata changes per bucket,
mutations per object (about one a second). Reads have no such limit of their own; a 429 on one is the usageLimits
body Google's JSON APIs send. Sources are in reconciler/sandbox/README.md, "Fidelity".
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from reconciler.sandbox.base.api_errors import ApiError

BUCKET_CREATE_OR_DELETE = "The project exceeded the rate limit for creating and deleting buckets."
BUCKET_MUTATION = ("The rate of change requests to the bucket exceeds the rate limit. Please reduce the rate of "
                   "create, update, and delete requests.")
OBJECT_MUTATION = ("The object {object} exceeded the rate limit for object mutation operations (create, update, and "
                   "delete). Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429.")
READ = "Rate Limit Exceeded"

_BUCKET = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)(?P<rest>/.*)?$")
_OBJECT = re.compile(r"^/(?:upload/|download/)?storage/v1/b/(?P<bucket>[^/]+)/o(?:/(?P<name>[^/]+))?")


def too_many_requests(method: str, path: str, query: str) -> ApiError:
    """The 429 GCS answers this request with when it is rate limited."""
    return ApiError(429, rate_limit_message(method, path, query), "rateLimitExceeded")


def rate_limit_message(method: str, path: str, query: str) -> str:
    if method in ("GET", "HEAD"):
        return READ
    if path == "/storage/v1/b" or (method == "DELETE" and (found := _BUCKET.match(path)) and not found["rest"]):
        return BUCKET_CREATE_OR_DELETE
    objects = _OBJECT.match(path)
    if objects is None:  # the bucket itself: patch, update, its IAM policy, ACLs
        return BUCKET_MUTATION
    target = re.search(r"/(?:copyTo|rewriteTo)/b/([^/]+)/o/([^/]+)", path)
    bucket, name = (target.group(1), target.group(2)) if target else (objects["bucket"], objects["name"])
    name = name or dict(parse_qsl(query)).get("name")  # an upload names its object in the query
    return OBJECT_MUTATION.format(object=f"{unquote(bucket)}/{unquote(name)}" if name else unquote(bucket))
