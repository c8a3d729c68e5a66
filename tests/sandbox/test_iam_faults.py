"""Fault rules, latency and the request log of the IAM emulator, seen through the real IAMClient.

What a provider needs to know is asserted here: which errors the client retries by itself (UNAVAILABLE on the
methods its defaults retry) and which reach the caller at once (RESOURCE_EXHAUSTED, anything on Create, Patch and
the policy methods), and how the retry hint travels (google.rpc.RetryInfo in `exc.details`).
"""

import pytest
import requests
from google.api_core import exceptions
from google.rpc import error_details_pb2
from iam_support import IAM, TIMEOUT_S, calls, create_account, new_account_id, new_project


@pytest.fixture
def iam(sandbox):
    return sandbox.iam_client()


@pytest.fixture
def fresh_log(sandbox):
    sandbox.reset_requests("iam")


def test_a_quota_error_carries_retry_info_and_error_info_and_the_client_does_not_retry_it(sandbox, iam, fresh_log):
    project = new_project()
    sandbox.inject_fault("iam", path="CreateServiceAccount$", status=429, count=1)
    with pytest.raises(exceptions.ResourceExhausted) as raised:
        create_account(iam, project)
    (retry,) = [detail for detail in raised.value.details if isinstance(detail, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToTimedelta().total_seconds() == 1
    assert (raised.value.reason, raised.value.domain) == ("RATE_LIMIT_EXCEEDED", "googleapis.com")
    assert raised.value.metadata["service"] == "iam.googleapis.com"
    assert "Quota exceeded for quota metric" in raised.value.message
    assert calls(sandbox) == [("CreateServiceAccount", "RESOURCE_EXHAUSTED")], "one call: no client retry"
    assert list(iam.list_service_accounts(name=f"projects/{project}", timeout=TIMEOUT_S)) == []


def test_even_a_get_is_not_retried_on_resource_exhausted_and_retry_after_sets_the_hint(sandbox, iam, fresh_log):
    account = create_account(iam, new_project())
    sandbox.inject_fault("iam", path="GetServiceAccount$", status=429, retry_after=7.5, count=1)
    with pytest.raises(exceptions.ResourceExhausted) as raised:
        iam.get_service_account(name=account.name, timeout=TIMEOUT_S)
    (retry,) = [detail for detail in raised.value.details if isinstance(detail, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToTimedelta().total_seconds() == 7.5
    assert calls(sandbox, "GetServiceAccount") == [("GetServiceAccount", "RESOURCE_EXHAUSTED")]


def test_unavailable_is_retried_by_the_client_on_get_but_reaches_the_caller_on_create(sandbox, iam, fresh_log):
    account = create_account(iam, new_project())
    sandbox.inject_fault("iam", path="GetServiceAccount$", status=503, count=2)
    assert iam.get_service_account(name=account.name, timeout=TIMEOUT_S) == account  # the default retry
    assert calls(sandbox, "GetServiceAccount") == [("GetServiceAccount", "UNAVAILABLE")] * 2 + [
        ("GetServiceAccount", "OK")]
    sandbox.inject_fault("iam", path="CreateServiceAccount$", status=503, count=1)
    with pytest.raises(exceptions.ServiceUnavailable, match="The service is currently unavailable."):
        create_account(iam, new_project())
    assert calls(sandbox, "CreateServiceAccount") == [("CreateServiceAccount", "OK"),
                                                      ("CreateServiceAccount", "UNAVAILABLE")]


@pytest.mark.parametrize("rule, error", [
    ({"status": 409}, exceptions.Aborted),
    ({"status": 404}, exceptions.NotFound),
    ({"status": 403}, exceptions.PermissionDenied),
    ({"status": 500}, exceptions.InternalServerError),
    ({"status": 504}, exceptions.DeadlineExceeded),
    ({"grpc_code": "ALREADY_EXISTS"}, exceptions.AlreadyExists),
    ({"status": 503, "grpc_code": "FAILED_PRECONDITION"}, exceptions.FailedPrecondition),
    ({"drop": True}, exceptions.ServiceUnavailable),
], ids=lambda value: str(value))
def test_a_rule_answers_the_canonical_grpc_code_of_its_status_or_its_explicit_code(sandbox, iam, rule, error):
    sandbox.inject_fault("iam", path="CreateServiceAccount$", count=1, **rule)
    with pytest.raises(error):
        create_account(iam, new_project())


def test_a_rule_can_word_the_error_itself(sandbox, iam):
    sandbox.inject_fault("iam", path="CreateServiceAccount$", status=400, count=1,
                         body={"error": {"message": "Precondition check failed: billing is disabled."}})
    with pytest.raises(exceptions.InvalidArgument, match="billing is disabled"):
        create_account(iam, new_project())


def test_an_after_commit_fault_loses_the_reply_but_the_account_exists(sandbox, iam, fresh_log):
    project, account_id = new_project(), new_account_id()
    sandbox.inject_fault("iam", path="CreateServiceAccount$", status=503, after_commit=True, count=1)
    with pytest.raises(exceptions.ServiceUnavailable):
        create_account(iam, project, account_id)
    (account,) = iam.list_service_accounts(name=f"projects/{project}", timeout=TIMEOUT_S)
    assert account.email.startswith(f"{account_id}@")
    with pytest.raises(exceptions.AlreadyExists):  # what a naive retry of the create meets
        create_account(iam, project, account_id)
    assert calls(sandbox, "CreateServiceAccount") == [("CreateServiceAccount", "UNAVAILABLE"),
                                                      ("CreateServiceAccount", "ALREADY_EXISTS")]


def test_an_after_commit_fault_on_set_iam_policy_moves_the_etag_a_blind_retry_then_holds(sandbox, iam):
    account = create_account(iam, new_project())
    read = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    edited = type(read)()
    edited.CopyFrom(read)
    edited.bindings.add(role="roles/iam.serviceAccountUser", members=["user:ada@example.com"])
    sandbox.inject_fault("iam", path="SetIamPolicy$", grpc_code="DEADLINE_EXCEEDED", after_commit=True, count=1)
    with pytest.raises(exceptions.DeadlineExceeded):
        iam.set_iam_policy(request={"resource": account.name, "policy": edited}, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.Aborted):  # the write happened: the etag the retry carries is stale
        iam.set_iam_policy(request={"resource": account.name, "policy": edited}, timeout=TIMEOUT_S)
    assert [binding.role for binding in iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S).bindings] == [
        "roles/iam.serviceAccountUser"]


def test_a_lost_delete_reply_is_retried_by_the_client_itself_and_then_reads_not_found(sandbox, iam, fresh_log):
    """Why a provider treats NotFound on delete as done: the client's default retry re-sends the delete."""
    account = create_account(iam, new_project())
    sandbox.inject_fault("iam", path="DeleteServiceAccount$", status=503, after_commit=True, count=1)
    with pytest.raises(exceptions.NotFound):
        iam.delete_service_account(name=account.name, timeout=TIMEOUT_S)
    assert calls(sandbox, "DeleteServiceAccount") == [("DeleteServiceAccount", "UNAVAILABLE"),
                                                      ("DeleteServiceAccount", "NOT_FOUND")]


def outcomes(sandbox, iam, account, times: int = 24) -> list[bool]:
    """Which of `times` gets the rule failed (429: the client does not retry it, so one call is one verdict)."""
    failed = []
    for _ in range(times):
        try:
            iam.get_service_account(name=account.name, timeout=TIMEOUT_S)
            failed.append(False)
        except exceptions.ResourceExhausted:
            failed.append(True)
    return failed


def test_a_seeded_chaos_rule_replays_the_same_failures(sandbox, iam):
    account = create_account(iam, new_project())
    rule = {"path": "GetServiceAccount$", "status": 429, "probability": 0.5}
    installed = sandbox.inject_fault("iam", **rule)
    assert isinstance(installed["seed"], int), "a rule without a seed gets one drawn, and shows it"
    first_run = outcomes(sandbox, iam, account)
    assert True in first_run and False in first_run
    sandbox.clear_faults("iam")
    sandbox.inject_fault("iam", **rule, seed=installed["seed"])  # replay: the rule as GET /_sandbox/faults shows it
    assert outcomes(sandbox, iam, account) == first_run
    sandbox.clear_faults("iam")
    sandbox.inject_fault("iam", **rule, seed=installed["seed"] + 1)
    assert outcomes(sandbox, iam, account) != first_run


def test_latency_applies_and_shows_in_the_request_log(sandbox, iam, fresh_log):
    account = create_account(iam, new_project())
    sandbox.inject_fault("iam", path="GetServiceAccount$", delay_s=0.2, count=1)
    assert iam.get_service_account(name=account.name, timeout=TIMEOUT_S) == account
    (slow,) = [entry for entry in sandbox.requests("iam") if entry["path"].endswith("GetServiceAccount")]
    assert slow["status"] == "OK" and slow["ms"] >= 200


def test_the_request_log_counts_reads_and_writes(sandbox, iam, fresh_log):
    account = create_account(iam, new_project())
    iam.get_service_account(name=account.name, timeout=TIMEOUT_S)
    list(iam.list_service_accounts(name=f"projects/{account.project_id}", timeout=TIMEOUT_S))
    policy = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    iam.set_iam_policy(request={"resource": account.name, "policy": policy}, timeout=TIMEOUT_S)
    logged = requests.get(f"{sandbox.url('iam')}/_sandbox/requests", timeout=TIMEOUT_S).json()
    assert (logged["reads"], logged["writes"]) == (3, 2)
    assert [(entry["method"], entry["path"], entry["read"]) for entry in logged["requests"]] == [
        ("POST", IAM + "CreateServiceAccount", False), ("POST", IAM + "GetServiceAccount", True),
        ("POST", IAM + "ListServiceAccounts", True), ("POST", IAM + "GetIamPolicy", True),
        ("POST", IAM + "SetIamPolicy", False)]
    assert all(isinstance(entry["ms"], float) for entry in logged["requests"])


def test_a_method_the_emulator_lacks_is_unimplemented_and_logged(sandbox, iam, fresh_log):
    with pytest.raises(exceptions.MethodNotImplemented, match="does not implement /google.iam.admin.v1.IAM/ListRoles"):
        iam.list_roles(timeout=TIMEOUT_S)
    assert calls(sandbox) == [("ListRoles", "UNIMPLEMENTED")]


def test_the_control_port_has_no_api_and_says_where_it_is(sandbox):
    reply = requests.get(f"{sandbox.url('iam')}/v1/projects/p/serviceAccounts", timeout=TIMEOUT_S)
    assert reply.status_code == 404 and sandbox.iam_endpoint in reply.json()["error"]["message"]
    health = requests.get(f"{sandbox.url('iam')}/_sandbox/health", timeout=TIMEOUT_S).json()
    assert health == {"ok": True, "emulator": "iam", "grpc": sandbox.iam_endpoint}
