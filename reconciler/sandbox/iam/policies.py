"""IAM policy rules on a service account: which roles and members it takes, its etags and versions, its errors."""

from __future__ import annotations

import re
import secrets

from google.iam.v1 import policy_pb2
from google.protobuf import json_format

from reconciler.sandbox.base.grpc_errors import GrpcApiError

# Every GCP resource's policy that was never written carries this etag ("ACAB" in the JSON API).
EMPTY_POLICY_ETAG = b"\x00\x20\x01"
CONCURRENT_CHANGE = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential " \
                    "backoff."
# Predefined roles that hold service-account permissions, so a service account's policy takes them. The real API
# refuses a role with none ("Role roles/storage.admin is not supported for this resource."): the mistake of
# granting a project role on the account instead of on the project. Custom roles are taken as they are.
SERVICE_ACCOUNT_ROLES = frozenset({
    "roles/owner", "roles/editor", "roles/viewer",
    "roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.serviceAccountKeyAdmin", "roles/iam.serviceAccountViewer",
    "roles/iam.workloadIdentityUser", "roles/iam.securityAdmin", "roles/iam.securityReviewer",
})
_CUSTOM_ROLE = re.compile(r"(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+")
_MEMBER = re.compile(r"(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|deleted:user"
                     r"|deleted:serviceAccount|deleted:group|projectOwner|projectEditor|projectViewer):\S+"
                     r"|principal(Set)?://\S+)")
_VERSIONS = (0, 1, 3)


def stored(policy_json: dict | None) -> policy_pb2.Policy:
    if policy_json is None:
        return policy_pb2.Policy(etag=EMPTY_POLICY_ETAG)
    return json_format.ParseDict(policy_json, policy_pb2.Policy())


def check_requested_version(version: int) -> None:
    if version not in _VERSIONS:
        raise GrpcApiError("INVALID_ARGUMENT", f"Invalid requested policy version {version}: expected 0, 1 or 3.")


def check_etag(current: policy_pb2.Policy, sent_etag: bytes) -> None:
    """No etag overwrites; a stale one is refused, as the real API does, so the caller re-reads and re-applies."""
    if sent_etag and sent_etag != current.etag:
        raise GrpcApiError("ABORTED", CONCURRENT_CHANGE)


def written(bindings: list[policy_pb2.Binding], previous_etag: bytes) -> policy_pb2.Policy:
    """The policy as stored after a write: checked, bindings without members dropped, members deduplicated, a new
    etag, version 3 when a binding has a condition (else 1)."""
    kept = []
    for binding in bindings:
        _check_role(binding.role)
        for member in binding.members:
            if not _MEMBER.fullmatch(member):
                raise GrpcApiError("INVALID_ARGUMENT", 'Policy members must be of the form "<type>:<value>".')
        if binding.members:
            members = list(dict.fromkeys(binding.members))
            kept.append(policy_pb2.Binding(role=binding.role, members=members,
                                           condition=binding.condition if binding.HasField("condition") else None))
    etag = previous_etag
    while etag in (previous_etag, EMPTY_POLICY_ETAG):
        etag = b"\x07" + secrets.token_bytes(7)  # the shape of real etags: 8 bytes, "BwX..." in the JSON API
    version = 3 if any(binding.HasField("condition") for binding in kept) else 1
    return policy_pb2.Policy(version=version, bindings=kept, etag=etag)


def deleted_form(account: dict) -> str:
    """How a policy names a service account once it is deleted, until IAM purges the binding."""
    return f"deleted:serviceAccount:{account['email']}?uid={account['unique_id']}"


def to_json(policy: policy_pb2.Policy) -> dict:
    return json_format.MessageToDict(policy)


def _check_role(role: str) -> None:
    if role not in SERVICE_ACCOUNT_ROLES and not _CUSTOM_ROLE.fullmatch(role):
        raise GrpcApiError("INVALID_ARGUMENT", f"Role {role} is not supported for this resource.")
