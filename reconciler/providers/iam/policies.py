"""Read and write the two IAM policies saxctl edits: a project's (Resource Manager, REST) and a service account's own
(IAM admin, gRPC). Both are google.iam.v1 Policy messages, edited the same way (members.py).

Policies are read at version 3 and written back at the version read, so conditional bindings saxctl does not touch
survive. Every write carries the etag read: a policy changed meanwhile is refused with ABORTED, which is retryable
(the apply reads the policy again and makes the same edit). Calls pass retry=None: saxctl retries, not the client
(its default retry would re-send Get/Set on UNAVAILABLE on top of ours).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.iam.v1 import policy_pb2

from reconciler.providers.google_errors import remote_call

TIMEOUT = 30  # seconds per call
_READ_OPTIONS = {"requested_policy_version": 3}
_MASK = {"paths": ["bindings", "etag"]}  # the documented default, said explicitly: audit configs are left alone
_READ_BODY = {"options": {"requestedPolicyVersion": 3}}  # _READ_OPTIONS in a REST body


class ProjectPolicies:
    """projects/P policies over cloudresourcemanager v3's REST API, without its client package (google_rest.py): the
    same two methods, paths and JSON bodies as its REST transport's, the policies the same Policy messages."""

    def __init__(self, api):
        self._api = api  # a reconciler.providers.google_rest.RestApi of cloudresourcemanager

    def read(self, resource: str) -> policy_pb2.Policy | None:
        with remote_call("cloudresourcemanager.projects.getIamPolicy", resource):
            return _policy(self._api.call("POST", f"v3/{resource}:getIamPolicy", _READ_BODY))

    def write(self, resource: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
        from google.api_core import exceptions
        from google.protobuf import json_format

        body = {"policy": json_format.MessageToDict(policy), "updateMask": ",".join(_MASK["paths"])}
        with remote_call("cloudresourcemanager.projects.setIamPolicy", resource):
            try:
                return _policy(self._api.call("POST", f"v3/{resource}:setIamPolicy", body))
            except exceptions.Conflict as error:
                # google-api-core picks the exception by HTTP status: 409 is Conflict for ALREADY_EXISTS and ABORTED
                # (a stale etag) alike; the body says which.
                if _rest_status(error) == "ABORTED":
                    raise exceptions.Aborted(error.message, response=error.response) from None
                raise


class AccountPolicies:
    """projects/P/serviceAccounts/EMAIL policies over the IAM admin API."""

    def __init__(self, client):
        self._client = client

    def read(self, resource: str) -> policy_pb2.Policy | None:
        """None when the account does not exist."""
        from google.api_core.exceptions import NotFound

        with remote_call("iam.serviceAccounts.getIamPolicy", resource):
            try:
                return self._client.get_iam_policy(request={"resource": resource, "options": _READ_OPTIONS},
                                                   retry=None, timeout=TIMEOUT)
            except NotFound:
                return None

    def write(self, resource: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
        with remote_call("iam.serviceAccounts.setIamPolicy", resource):
            return self._client.set_iam_policy(request={"resource": resource, "policy": policy,
                                                        "update_mask": _MASK}, retry=None, timeout=TIMEOUT)


def _rest_status(error) -> str | None:
    try:
        return error.response.json()["error"]["status"]
    except (AttributeError, ValueError, KeyError, TypeError):
        return None


def _policy(reply: dict) -> policy_pb2.Policy:
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    return json_format.ParseDict(reply, policy_pb2.Policy(), ignore_unknown_fields=True)
