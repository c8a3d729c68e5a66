"""iam.service_account: the Google service account, over the IAM admin API (create, get, patch, delete, list).

The account carries saxctl's ownership mark in its description (a service account has no labels). Its outputs are
what other resources refer to: the email the Kubernetes service account is annotated with, the unique id, the name.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import ConflictError
from reconciler.providers.google_errors import remote_call
from reconciler.providers.iam import addresses as iam_at
from reconciler.engine.diffing import planned_change
from reconciler.providers.iam.policies import AccountPolicies
from reconciler.providers.iam.record import MemberRecord
from reconciler.providers.iam.resources import account_name, owner_in, project_resource
from reconciler.providers.parallel import observe_each

KIND = iam_at.SERVICE_ACCOUNT
TIMEOUT = 30  # seconds per call
_API_FIELDS = {"displayName": "display_name", "description": "description"}  # saxctl's names → the message's


def _observed(address: str, account) -> Observed:
    fields = {name: getattr(account, attribute) for name, attribute in _API_FIELDS.items()}
    return _account_observed(address, account.email, fields, account.unique_id, account.name)


def _account_observed(address: str, email: str, fields: dict, unique_id: str, name: str) -> Observed:
    digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:8]
    return Observed(
        address=address, remote_id=email, fields=fields,
        fingerprint=f"unique id {unique_id}, fields {digest}",
        owner=owner_in(fields["description"]),
        outputs={"email": email, "unique_id": unique_id, "name": name},
    )


class ServiceAccounts(Provider):
    kinds = frozenset({KIND})

    def __init__(self, client, project: str, record: MemberRecord):
        self._client = client  # google.cloud.iam_admin_v1.IAMClient (gRPC: see client.py)
        self._project = project  # where owned() lists accounts that left the spec
        self._record = record
        self._policies = AccountPolicies(client)

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        return observe_each(desired, lambda resource: self._get(resource.address, resource.params),
                            "iam-account-observe")

    def _get(self, address: str, params: Mapping) -> Observed | None:
        from google.api_core.exceptions import NotFound

        name = account_name(params["project"], params["email"])
        with remote_call("iam.serviceAccounts.get", name):
            try:
                account = self._client.get_service_account(request={"name": name}, retry=None, timeout=TIMEOUT)
            except NotFound:
                return None
        return _observed(address, account)

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """The account of that email, as created; its unique id is a stand-in (nothing shows it)."""
        if applied is None or applied.params["email"] != desired.params["email"]:
            return None
        email = applied.params["email"]
        return _account_observed(desired.address, email, dict(applied.fields), "(not read: offline)",
                                 account_name(applied.params["project"], email))

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        return planned_change(desired, observed, absent=f"service account {desired.remote_id} does not exist",
                              noun="service account")

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        if change.action is Action.CREATE:
            return self._create(change.desired, progress)
        if change.action is Action.UPDATE:
            return self._patch(change, progress)
        if change.action is Action.DELETE:
            self._delete(change.desired, progress)
            return None
        raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")

    def _create(self, resource: Resource, progress: Progress) -> Observed:
        from google.api_core.exceptions import AlreadyExists

        parent = project_resource(resource.params["project"])
        progress.update(f"creating service account {resource.remote_id}")
        with remote_call("iam.serviceAccounts.create", resource.remote_id):
            try:
                account = self._client.create_service_account(request={
                    "name": parent, "account_id": resource.name,
                    "service_account": {_API_FIELDS[name]: value for name, value in resource.fields.items()},
                }, retry=None, timeout=TIMEOUT)
            except AlreadyExists:
                return self._already_created(resource)
        return _observed(resource.address, account)

    def _already_created(self, resource: Resource) -> Observed:
        """ALREADY_EXISTS: ours if an earlier attempt's reply was lost (it carries our mark), else a conflict."""
        observed = self._get(resource.address, resource.params)
        if observed is None or observed.owner != owner_in(resource.fields["description"]):
            raise ConflictError(f"service account {resource.remote_id} exists but saxctl did not create it",
                                hint="Pick another googleServiceAccount name, or run `saxctl plan --adopt` if the "
                                     "account is yours.")
        return observed

    def _patch(self, change: Change, progress: Progress) -> Observed:
        resource = change.desired
        changed = sorted({c.path.split(".", 1)[0] for c in change.field_changes} or resource.fields)
        name = account_name(resource.params["project"], resource.params["email"])
        progress.update(f"updating {', '.join(changed)}")
        with remote_call("iam.serviceAccounts.patch", resource.remote_id):
            self._client.patch_service_account(request={
                "service_account": {"name": name, **{_API_FIELDS[field]: resource.fields[field] for field in changed}},
                "update_mask": {"paths": [_API_FIELDS[field] for field in changed]},
            }, retry=None, timeout=TIMEOUT)
        # The reply holds only the patched fields: the rest is as observed.
        fields = {**change.observed.fields, **{field: resource.fields[field] for field in changed}}
        return Observed(address=resource.address, remote_id=resource.remote_id, fields=fields,
                        fingerprint=change.observed.fingerprint, owner=owner_in(fields["description"]),
                        outputs=change.observed.outputs)

    def _delete(self, resource: Resource, progress: Progress) -> None:
        from google.api_core.exceptions import NotFound

        name = account_name(resource.params["project"], resource.params["email"])
        progress.update(f"deleting service account {resource.remote_id}")
        with remote_call("iam.serviceAccounts.delete", resource.remote_id):
            try:
                self._client.delete_service_account(request={"name": name}, retry=None, timeout=TIMEOUT)
            except NotFound:  # gone already, or an earlier attempt's reply was lost
                pass
        # Its policy went with it, and with it the members saxctl had added there.
        self._record.forget(lambda entry: entry.resource != name)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """The project's accounts that carry this spec's mark (one list call, paged)."""
        if KIND not in kinds:
            return ()
        parent = project_resource(self._project)
        with remote_call("iam.serviceAccounts.list", parent):
            listed = list(self._client.list_service_accounts(request={"name": parent, "page_size": 100},
                                                             retry=None, timeout=TIMEOUT))
        found = []
        for account in listed:
            if owner_in(account.description) != spec_name:
                continue
            account_id = account.email.split("@", 1)[0]
            resource = Resource(iam_at.service_account(account_id), KIND, account_id, {},
                                params={"project": self._project, "email": account.email}, remote_id=account.email)
            found.append(Owned(resource, _observed(resource.address, account)))
        return found

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """Deleting an account deletes its policy: members saxctl did not add there would go with it."""
        name = account_name(change.desired.params["project"], change.desired.params["email"])
        policy = self._policies.read(name)
        if policy is None:
            return None
        ours = {entry.member for entry in self._record.entries() if entry.resource == name}
        foreign = sorted((binding.role, member) for binding in policy.bindings for member in binding.members
                         if member not in ours)
        if not foreign:
            return None
        listed = ", ".join(f"{member} as {role}" for role, member in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return Hazard(f"the IAM policy of {change.desired.remote_id} holds {len(foreign)} member(s) saxctl did not "
                      f"add ({listed}): deleting the account drops them", needs_approval=True)
