"""IAM's desired resources from a spec: the Google service account, its project roles, its Workload Identity binding.

Members are named exactly as the API stores them, so that observing compares strings: a user-managed service
account's email is ACCOUNT_ID@PROJECT.iam.gserviceaccount.com, a Kubernetes service account's Workload Identity
principal is serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA].
"""

from __future__ import annotations

from typing import Collection

from reconciler.engine.address import Address
from reconciler.engine.resource import Resource
from reconciler.providers.gcs import bucket as gcs_bucket
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.iam import addresses as iam_at
from reconciler.spec.model import Spec

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
# Ownership of the members saxctl adds is recorded in the admin bucket (record.py): read and written there.
RECORD_HOME = gcs_bucket.address("admin")
MANAGED_BY = "managed-by: saxctl"  # the ownership mark, in the account's description
MEMBERS = "members"  # the one field of a binding: the members saxctl manages there, compared as a set


def email_of(project: str, account_id: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def account_name(project: str, email: str) -> str:
    """The IAM resource name of an account, also the resource its own policy is read and written on."""
    return f"projects/{project}/serviceAccounts/{email}"


def project_resource(project: str) -> str:
    return f"projects/{project}"


def account_member(email: str) -> str:
    return f"serviceAccount:{email}"


def workload_identity_member(project: str, namespace: str, ksa: str) -> str:
    return f"serviceAccount:{project}.svc.id.goog[{namespace}/{ksa}]"


def binding_id(members, role: str, policy: str) -> str:
    """How plans name saxctl's part of a role binding: its members, not the whole binding (not saxctl's)."""
    return f"{', '.join(sorted(members))} in {role} on {policy}"


def ownership_mark(spec_name: str) -> str:
    return f"{MANAGED_BY}; saxctl-spec: {spec_name}"


def owner_in(description: str) -> str | None:
    """The spec named by the ownership mark a description carries, or None without one."""
    head, _, spec_name = description.partition(f"{MANAGED_BY}; saxctl-spec: ")
    return spec_name.split()[0] if not head and spec_name.strip() else None


def desired_resources(spec: Spec, managed_kinds: Collection[str]) -> list[Resource]:
    """managed_kinds: the kinds this run manages (the provider table's); a dependency on a kind that is not
    managed yet cannot be waited for, so it is left out."""
    if spec.identity is None:
        return []
    project = spec.project.id
    gsa, ksa = spec.identity.google_service_account, spec.identity.kubernetes_service_account
    email = email_of(project, gsa.name)
    account = iam_at.service_account(gsa.name)
    resources = [Resource(
        address=account, kind=iam_at.SERVICE_ACCOUNT, name=gsa.name,
        fields={"displayName": f"Sax workloads of {spec.name}"[:100], "description": ownership_mark(spec.name)},
        params={"project": project, "email": email},
        spec_field="identity.googleServiceAccount", remote_id=email,
    )]
    for index, role in enumerate(gsa.project_roles):
        resources.append(_binding(
            iam_at.project_binding(role), policy=project_resource(project), role=role,
            member=account_member(email), depends_on=(account, RECORD_HOME), inside=None,
            spec_field=f"identity.googleServiceAccount.projectRoles[{index}]"))
    # The pool PROJECT.svc.id.goog exists only once a cluster with Workload Identity does: before, the API answers
    # "Identity Pool does not exist".
    cluster = [gke_at.cluster(spec.cluster.name)] if spec.cluster is not None and gke_at.CLUSTER in managed_kinds \
        else []
    resources.append(_binding(
        iam_at.workload_identity(ksa.namespace, ksa.name), policy=account_name(project, email),
        role=WORKLOAD_IDENTITY_USER, member=workload_identity_member(project, ksa.namespace, ksa.name),
        depends_on=(RECORD_HOME, *cluster), inside=account, spec_field="identity"))
    return resources


def _binding(address: Address, *, policy: str, role: str, member: str, depends_on: tuple[Address, ...],
             inside: Address | None, spec_field: str) -> Resource:
    return Resource(
        address=address, kind=address.kind, name=address.name,
        fields={MEMBERS: (member,)}, list_keys={MEMBERS: ""},
        depends_on=depends_on, inside=inside,
        params={"policy": policy, "role": role},
        spec_field=spec_field, remote_id=binding_id((member,), role, policy),
    )
