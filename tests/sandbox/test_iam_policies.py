"""A service account's own IAM policy through the real IAMClient: etags, read-modify-write, what a policy takes."""

import pytest
from google.api_core import exceptions
from google.iam.v1 import policy_pb2
from iam_support import TIMEOUT_S, create_account, new_project

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
CONCURRENT = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."


@pytest.fixture
def iam(sandbox):
    return sandbox.iam_client()


@pytest.fixture
def account(iam):
    return create_account(iam, new_project())


def ksa(account, name: str = "sax-sa") -> str:
    return f"serviceAccount:{account.project_id}.svc.id.goog[default/{name}]"


def set_policy(iam, account, policy: policy_pb2.Policy) -> policy_pb2.Policy:
    return iam.set_iam_policy(request={"resource": account.name, "policy": policy}, timeout=TIMEOUT_S)


def with_member(policy: policy_pb2.Policy, role: str, member: str) -> policy_pb2.Policy:
    """The read-modify-write edit saxctl makes: add one member, keep every other binding and member."""
    edited = policy_pb2.Policy()
    edited.CopyFrom(policy)
    binding = next((binding for binding in edited.bindings if binding.role == role), None) or edited.bindings.add(
        role=role)
    binding.members.append(member)
    return edited


def test_a_new_account_has_the_empty_policy_of_every_gcp_resource(iam, account):
    policy = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    assert (policy.etag, list(policy.bindings), policy.version) == (b"\x00\x20\x01", [], 0)  # "ACAB"


def test_a_policy_round_trips_and_every_write_moves_the_etag(iam, account):
    empty = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    first = set_policy(iam, account, with_member(empty, WORKLOAD_IDENTITY_USER, ksa(account)))
    assert first.version == 1 and first.etag and first.etag != empty.etag
    assert [(binding.role, list(binding.members)) for binding in first.bindings] == [
        (WORKLOAD_IDENTITY_USER, [ksa(account)])]
    assert iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S) == first
    second = set_policy(iam, account, first)  # the same bindings: still a write
    assert second.etag not in (first.etag, empty.etag) and list(second.bindings) == list(first.bindings)
    by_unique_id = f"projects/-/serviceAccounts/{account.unique_id}"
    assert iam.get_iam_policy(resource=by_unique_id, timeout=TIMEOUT_S) == second


def test_a_stale_etag_is_aborted_and_no_etag_overwrites(iam, account):
    read = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    written = set_policy(iam, account, with_member(read, WORKLOAD_IDENTITY_USER, ksa(account)))
    with pytest.raises(exceptions.Aborted) as raised:
        set_policy(iam, account, with_member(read, WORKLOAD_IDENTITY_USER, ksa(account, "other")))
    assert raised.value.message == CONCURRENT and raised.value.code == 409
    assert iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S) == written, "the stale write changed nothing"
    blind = policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/iam.serviceAccountUser", members=[
        "user:ada@example.com"])])
    overwritten = set_policy(iam, account, blind)
    assert [binding.role for binding in overwritten.bindings] == ["roles/iam.serviceAccountUser"]


def test_an_etag_moved_between_read_and_write_by_another_client_is_caught_and_the_retry_keeps_both(sandbox, iam,
                                                                                                   account):
    ours = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    other_client = sandbox.iam_client()  # its own channel: another process, as far as the emulator can tell
    foreign = "user:someone-else@example.com"
    theirs = other_client.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    set_policy(other_client, account, with_member(theirs, WORKLOAD_IDENTITY_USER, foreign))
    with pytest.raises(exceptions.Aborted):
        set_policy(iam, account, with_member(ours, WORKLOAD_IDENTITY_USER, ksa(account)))
    reread = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    merged = set_policy(iam, account, with_member(reread, WORKLOAD_IDENTITY_USER, ksa(account)))
    assert [list(binding.members) for binding in merged.bindings] == [[foreign, ksa(account)]]


def test_a_project_role_on_the_account_is_refused_as_the_real_api_does(iam, account):
    with pytest.raises(exceptions.InvalidArgument) as raised:
        set_policy(iam, account, policy_pb2.Policy(bindings=[policy_pb2.Binding(
            role="roles/storage.admin", members=[f"serviceAccount:{account.email}"])]))
    assert raised.value.message == "Role roles/storage.admin is not supported for this resource."
    custom = set_policy(iam, account, policy_pb2.Policy(bindings=[policy_pb2.Binding(
        role=f"projects/{account.project_id}/roles/saxImpersonator", members=["group:ops@example.com"])]))
    assert custom.bindings[0].role.endswith("/roles/saxImpersonator")


@pytest.mark.parametrize("member", ["ada@example.com", "serviceAccount:", "robot:r2d2"])
def test_members_must_carry_their_type(iam, account, member):
    with pytest.raises(exceptions.InvalidArgument, match='Policy members must be of the form "<type>:<value>".'):
        set_policy(iam, account, policy_pb2.Policy(bindings=[policy_pb2.Binding(role=WORKLOAD_IDENTITY_USER,
                                                                                 members=[member])]))


def test_bindings_without_members_are_dropped_and_members_are_not_repeated(iam, account):
    written = set_policy(iam, account, policy_pb2.Policy(bindings=[
        policy_pb2.Binding(role="roles/iam.serviceAccountUser", members=[]),
        policy_pb2.Binding(role=WORKLOAD_IDENTITY_USER, members=[ksa(account), ksa(account)])]))
    assert [(binding.role, list(binding.members)) for binding in written.bindings] == [
        (WORKLOAD_IDENTITY_USER, [ksa(account)])]


def test_a_mask_without_bindings_keeps_them(iam, account):
    written = set_policy(iam, account, with_member(policy_pb2.Policy(), WORKLOAD_IDENTITY_USER, ksa(account)))
    kept = iam.set_iam_policy(request={"resource": account.name, "policy": policy_pb2.Policy(etag=written.etag),
                                       "update_mask": {"paths": ["etag"]}}, timeout=TIMEOUT_S)
    assert list(kept.bindings) == list(written.bindings) and kept.etag != written.etag


def test_the_policy_goes_with_the_account(iam, account):
    set_policy(iam, account, with_member(policy_pb2.Policy(), WORKLOAD_IDENTITY_USER, ksa(account)))
    iam.delete_service_account(name=account.name, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.NotFound, match="Unknown service account"):
        iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.PermissionDenied, match="iam.serviceAccounts.setIamPolicy"):
        iam.set_iam_policy(request={"resource": f"projects/-/serviceAccounts/{account.email}",
                                    "policy": policy_pb2.Policy()}, timeout=TIMEOUT_S)
    again = create_account(iam, account.project_id, account.email.split("@")[0])
    assert list(iam.get_iam_policy(resource=again.name, timeout=TIMEOUT_S).bindings) == []


def test_an_unknown_requested_policy_version_is_refused(iam, account):
    with pytest.raises(exceptions.InvalidArgument, match="requested policy version 2"):
        iam.get_iam_policy(request={"resource": account.name, "options": {"requested_policy_version": 2}},
                           timeout=TIMEOUT_S)
    assert iam.get_iam_policy(request={"resource": account.name, "options": {"requested_policy_version": 3}},
                              timeout=TIMEOUT_S).etag == b"\x00\x20\x01"


def test_a_deleted_accounts_grants_are_named_deleted_in_project_and_account_policies(sandbox, iam, account):
    """As IAM shows a deleted principal's bindings until it purges them: not the grants of a new same-named one."""
    project = account.project_id
    member = f"serviceAccount:{account.email}"
    deleted = f"deleted:serviceAccount:{account.email}?uid={account.unique_id}"
    sandbox.control("POST", "resourcemanager", "policy",
                    {"project": project, "add": [{"role": "roles/storage.admin", "member": member}]})
    other = create_account(iam, project)
    set_policy(iam, other, with_member(policy_pb2.Policy(), "roles/iam.serviceAccountUser", member))
    before = iam.get_iam_policy(resource=other.name, timeout=TIMEOUT_S)
    iam.delete_service_account(name=account.name, timeout=TIMEOUT_S)
    (listed,) = [p["policy"] for p in sandbox.control("GET", "resourcemanager", "projects")["projects"]
                 if p["projectId"] == project]
    assert {b["role"]: b["members"] for b in listed["bindings"]}["roles/storage.admin"] == [deleted]
    after = iam.get_iam_policy(resource=other.name, timeout=TIMEOUT_S)
    assert [list(b.members) for b in after.bindings] == [[deleted]] and after.etag != before.etag
