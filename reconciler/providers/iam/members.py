"""The additive edit of an IAM policy: add and remove given members of one role, keep everything else as it was.

saxctl is never authoritative over a policy: bindings of other roles, other members of its roles, conditional
bindings and audit configs go back exactly as they were read, with the etag read, so a concurrent change is refused
(ABORTED) rather than overwritten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AbstractSet

if TYPE_CHECKING:
    from google.iam.v1 import policy_pb2

# Once a service account is deleted, IAM shows its bindings as `deleted:serviceAccount:EMAIL?uid=UNIQUE_ID` until it
# purges them: still the member saxctl added, under the name of an account that no longer exists.
_DELETED = "deleted:"


def members_of(policy: policy_pb2.Policy, role: str) -> set[str]:
    """The members of role's unconditional bindings (those saxctl could have added)."""
    return {member for binding in policy.bindings if binding.role == role and not binding.HasField("condition")
            for member in binding.members}


def edited(policy: policy_pb2.Policy, role: str, add: AbstractSet[str],
           remove: AbstractSet[str]) -> policy_pb2.Policy | None:
    """A copy of policy with `add` in role's unconditional binding and `remove` gone from it; None when the policy
    already is so (no write needed). The deleted: forms of both go too: grants to accounts that no longer exist
    under the names saxctl manages (an account deleted and created again is not granted what the old one was)."""
    result = type(policy)()
    result.CopyFrom(policy)
    changed = False
    binding = None
    for candidate in result.bindings:
        if candidate.role != role or candidate.HasField("condition"):
            continue
        kept = [member for member in candidate.members
                if member not in remove and _deleted_account(member) not in (remove | add)]
        if len(kept) != len(candidate.members):
            del candidate.members[:]
            candidate.members.extend(kept)
            changed = True
        binding = binding or candidate
    missing = sorted(set(add) - members_of(result, role))
    if missing:
        if binding is None:
            binding = result.bindings.add(role=role)
        binding.members.extend(missing)
        changed = True
    if not changed:
        return None
    # A binding left without members is dropped, as the API keeps a policy.
    kept_bindings = [b for b in result.bindings if b.members]
    del result.bindings[:]
    result.bindings.extend(kept_bindings)
    return result


def _deleted_account(member: str) -> str | None:
    """`deleted:serviceAccount:EMAIL?uid=ID` → `serviceAccount:EMAIL`; None for a member that is not deleted."""
    return member.removeprefix(_DELETED).split("?uid=", 1)[0] if member.startswith(_DELETED) else None
