"""iam.project_binding and iam.workload_identity: members saxctl adds to one role of one policy, and only those.

A binding's one field is `members`: the members of its role that are saxctl's, compared as a set. Observed, that
is every member of the role saxctl recorded (record.py) plus the desired member when it is there: so a member
recorded for the binding that the spec no longer names (the account renamed) shows as a change and is removed, and
a desired member that is there but was never recorded is one saxctl did not add, a conflict unless --adopt.
Members of other roles, other members of the role, and conditional bindings are never touched.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import RetryableError
from reconciler.providers.iam import addresses as iam_at
from reconciler.engine.diffing import planned_change
from reconciler.providers.iam.members import edited, members_of
from reconciler.providers.iam.record import Entry, MemberRecord
from reconciler.providers.iam.resources import MEMBERS, RECORD_HOME, binding_id
from reconciler.providers.parallel import observe_each


class Bindings(Provider):
    """The bindings of one kind, on the policies `policies` reads and writes."""

    def __init__(self, kind: str, policies, record: MemberRecord):
        self.kinds = frozenset({kind})
        self._kind = kind
        self._policies = policies
        self._record = record
        # This run's own policy edits go one at a time: in parallel, edits of one policy (every project binding is
        # on the project's) would only make each other's etags stale.
        self._edit_lock = threading.Lock()

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One policy read per policy, whatever the number of bindings on it; the record is read once per run."""
        by_policy: dict[str, list[Resource]] = defaultdict(list)
        for resource in desired:
            by_policy[resource.params["policy"]].append(resource)
        read = observe_each([group[0] for group in by_policy.values()],
                            lambda first: self._policies.read(first.params["policy"]), "iam-policy")
        observed: dict[str, Observed | None] = {}
        for group in by_policy.values():
            policy = read[group[0].address]
            for resource in group:
                observed[resource.address] = None if policy is None else self._observed(resource, policy)
        return observed

    def _observed(self, resource: Resource, policy) -> Observed | None:
        role = resource.params["role"]
        present = members_of(policy, role)
        recorded = self._recorded(resource.name, resource.params["policy"], role)
        ours = present & (recorded | set(resource.fields[MEMBERS]))
        if not ours:
            return None
        return _as_observed(resource.address, binding_id(ours, role, resource.params["policy"]), ours,
                            owner=self._record.spec_name if ours <= recorded else None)

    def _recorded(self, name: str, policy: str, role: str) -> set[str]:
        return {entry.member for entry in self._record.entries()
                if (entry.kind, entry.name, entry.resource, entry.role) == (self._kind, name, policy, role)}

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """The members applying `applied` added and recorded, when it is the same role on the same policy."""
        if applied is None or (applied.name, applied.params) != (desired.name, desired.params):
            return None
        members = set(applied.fields[MEMBERS])
        return _as_observed(desired.address, binding_id(members, applied.params["role"], applied.params["policy"]),
                            members, owner=self._record.spec_name)

    def left_behind(self, applied: Resource) -> Owned | None:
        """As owned() finds it in the record."""
        return _recorded(self._kind, applied.name, applied.params["policy"], applied.params["role"],
                         set(applied.fields[MEMBERS]), self._record.spec_name)

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        members = ", ".join(desired.fields[MEMBERS])
        return planned_change(desired, observed, noun="binding",
                              absent=f"{members} is not in {desired.params['role']} on {desired.params['policy']}")

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        policy_name, role = resource.params["policy"], resource.params["role"]
        recorded = self._recorded(resource.name, policy_name, role)
        if change.action is Action.DELETE:
            self._edit(resource, add=set(), remove=recorded, progress=progress)
            return None
        if change.action not in (Action.CREATE, Action.UPDATE):
            raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")
        wanted = set(resource.fields[MEMBERS])
        # Recorded before it is added: a run killed after the write still knows the member is saxctl's.
        self._record.add(self._entry(resource, member) for member in wanted)
        self._edit(resource, add=wanted, remove=recorded - wanted, progress=progress)
        return _as_observed(resource.address, resource.remote_id, wanted, owner=self._record.spec_name)

    def _edit(self, resource: Resource, *, add: set[str], remove: set[str], progress: Progress) -> None:
        """Read, edit, write with the etag read; then forget what was removed."""
        policy_name, role = resource.params["policy"], resource.params["role"]
        with self._edit_lock:
            self._edit_policy(policy_name, role, add, remove, progress)
        if remove:
            self._record.forget(lambda entry: not (entry.kind == self._kind and entry.name == resource.name
                                                   and entry.resource == policy_name and entry.member in remove))

    def _edit_policy(self, policy_name: str, role: str, add: set[str], remove: set[str], progress: Progress) -> None:
        policy = self._policies.read(policy_name)
        if policy is None and add:
            # A service account just created may not be visible yet to its policy methods (IAM is eventually
            # consistent): try again shortly.
            raise RetryableError(f"iam.serviceAccounts.getIamPolicy {policy_name}: the account does not exist (yet)")
        new_policy = None if policy is None else edited(policy, role, add, remove)
        if new_policy is not None:
            present = members_of(policy, role)
            said = [f"adding {', '.join(sorted(add - present))}"] if add - present else []
            said += [f"removing {', '.join(sorted(remove & present))}"] if remove & present else []
            progress.update(f"{' and '.join(said) or 'removing members of deleted accounts'} ({role} on {policy_name})")
            self._policies.write(policy_name, new_policy)

    def _entry(self, resource: Resource, member: str) -> Entry:
        return Entry(self._kind, resource.name, resource.params["policy"], resource.params["role"], member)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """What the record says saxctl added for this kind (no call beyond the record): the engine prunes those
        whose address has left the spec. Without an admin bucket there is no record to read."""
        if self._kind not in kinds or spec_name != self._record.spec_name or RECORD_HOME not in known:
            return ()
        grouped: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for entry in self._record.entries():
            if entry.kind == self._kind:
                grouped[(entry.name, entry.resource, entry.role)].add(entry.member)
        return [_recorded(self._kind, name, policy_name, role, members, spec_name)
                for (name, policy_name, role), members in sorted(grouped.items())]


def _recorded(kind: str, name: str, policy_name: str, role: str, members: set[str], spec_name: str) -> Owned:
    """Members the record says saxctl added, as a binding the engine may prune."""
    address = Address(kind, name)
    remote_id = binding_id(members, role, policy_name)
    resource = Resource(address, kind, name, {MEMBERS: tuple(sorted(members))}, list_keys={MEMBERS: ""},
                        inside=_account_of(policy_name), params={"policy": policy_name, "role": role},
                        remote_id=remote_id)
    return Owned(resource, _as_observed(address, remote_id, members, owner=spec_name))


def _as_observed(address: str, remote_id: str, members: set[str], owner: str | None) -> Observed:
    listed = sorted(members)
    return Observed(address=address, remote_id=remote_id, fields={MEMBERS: listed},
                    fingerprint=f"{', '.join(listed)} ({'recorded' if owner else 'not recorded'})", owner=owner)


def _account_of(policy_name: str) -> Address | None:
    """The service account a policy belongs to (so that its bindings go before it), None for a project's."""
    _, _, email = policy_name.partition("/serviceAccounts/")
    return iam_at.service_account(email.split("@", 1)[0]) if email else None
