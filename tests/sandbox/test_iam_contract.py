"""CONTRACT: the IAM emulator serves google.iam.admin.v1.IAM as google-cloud-iam knows it, with iam v1's shapes.

Every reply parses with the client's own types by construction (the emulator serialises them); what can still
break is checked here: that the methods are the client's, that each reply's JSON mapping is valid against the iam
v1 discovery document, the formats of what the server fills in, and the error codes saxctl's provider handles.
"""

import base64
import json
import re
from pathlib import Path

import pytest
from contract import Discovery
from google.api_core import exceptions
from google.cloud import iam_admin_v1
from google.cloud.iam_admin_v1 import types
from google.iam.v1 import policy_pb2
from google.protobuf import field_mask_pb2, json_format
from iam_support import TIMEOUT_S, create_account, new_account_id, new_project

from reconciler.sandbox.iam import service
from reconciler.sandbox.iam.store import AccountStore

ACCOUNT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]"
PROJECT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]"


@pytest.fixture(scope="module")
def iam_v1():
    return Discovery.load("iam", "v1")


@pytest.fixture
def iam(sandbox):
    return sandbox.iam_client()


def as_json(message) -> dict:
    """The JSON mapping of a reply: what the REST API would answer for it (camelCase, bytes as base64)."""
    raw = message._pb if hasattr(message, "_pb") else message
    return json_format.MessageToDict(raw, always_print_fields_with_no_presence=True)


def test_every_method_the_emulator_serves_is_an_rpc_of_the_client(tmp_path):
    metadata = json.loads((Path(iam_admin_v1.__file__).parent / "gapic_metadata.json").read_text())
    client_rpcs = set(metadata["services"]["IAM"]["clients"]["grpc"]["rpcs"])
    emulator = service.build_emulator(AccountStore(tmp_path / "accounts.json"))
    served = {path.removeprefix(f"/{service.SERVICE}/") for path in emulator.methods}
    assert served <= client_rpcs and {"CreateServiceAccount", "GetServiceAccount", "ListServiceAccounts",
                                      "PatchServiceAccount", "DeleteServiceAccount", "GetIamPolicy",
                                      "SetIamPolicy"} <= served


def test_an_account_carries_exactly_the_fields_of_iam_v1s_service_account(iam, iam_v1):
    account = as_json(create_account(iam, new_project(), display_name="Sax", description="d"))
    assert set(account) == set(iam_v1.schemas["ServiceAccount"]["properties"])
    assert iam_v1.check("ServiceAccount", account) == []


def test_every_account_reply_is_valid_iam_v1_json_with_the_formats_the_real_api_uses(iam, iam_v1):
    project, account_id = new_project(), new_account_id()
    created = create_account(iam, project, account_id, display_name="Sax")
    replies = {
        "create": created,
        "get": iam.get_service_account(name=created.name, timeout=TIMEOUT_S),
        "patch": iam.patch_service_account(request=types.PatchServiceAccountRequest(
            service_account=types.ServiceAccount(name=created.name, description="new"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])), timeout=TIMEOUT_S),
        "update": iam.update_service_account(request=types.ServiceAccount(name=created.name, display_name="x"),
                                             timeout=TIMEOUT_S),
    }
    listed = next(iter(iam.list_service_accounts(request={"name": f"projects/{project}", "page_size": 1},
                                                 timeout=TIMEOUT_S).pages))
    assert iam_v1.check("ListServiceAccountsResponse", as_json(listed)) == []
    for method, reply in replies.items():
        assert iam_v1.check("ServiceAccount", as_json(reply)) == [], method
    for reply in (created, replies["get"], replies["update"], *listed.accounts):
        assert re.fullmatch(rf"projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT_ID}@{PROJECT_ID}"
                            r"\.iam\.gserviceaccount\.com", reply.name)
        assert reply.email == f"{account_id}@{project}.iam.gserviceaccount.com" == reply.name.rsplit("/", 1)[1]
        assert re.fullmatch(r"1\d{20}", reply.unique_id) and reply.oauth2_client_id == reply.unique_id
        assert reply.project_id == project and reply.etag and isinstance(reply.etag, bytes)


def test_policies_are_valid_iam_v1_json_with_non_empty_byte_etags_that_move_on_every_write(iam, iam_v1):
    account = create_account(iam, new_project())
    etags = []
    policy = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    for member in ("user:ada@example.com", "group:ops@example.com"):
        etags.append(policy.etag)
        policy.bindings.add(role="roles/iam.serviceAccountUser", members=[member])
        policy = iam.set_iam_policy(request={"resource": account.name, "policy": policy}, timeout=TIMEOUT_S)
        assert iam_v1.check("Policy", as_json(policy)) == []
    etags.append(policy.etag)
    assert all(isinstance(etag, bytes) and etag for etag in etags) and len(set(etags)) == 3
    assert as_json(policy)["etag"] == base64.b64encode(policy.etag).decode(), "canonical base64 in JSON"
    assert as_json(iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)) == as_json(policy)


def quota_error(sandbox, iam):
    sandbox.inject_fault("iam", path="GetServiceAccount$", status=429, count=1)
    iam.get_service_account(name=create_account(iam, new_project()).name, timeout=TIMEOUT_S)


def duplicate_create(sandbox, iam):
    account_id, project = new_account_id(), new_project()
    create_account(iam, project, account_id)
    create_account(iam, project, account_id)


def stale_etag(sandbox, iam):
    account = create_account(iam, new_project())
    iam.set_iam_policy(request={"resource": account.name, "policy": policy_pb2.Policy()}, timeout=TIMEOUT_S)
    iam.set_iam_policy(request={"resource": account.name, "policy": policy_pb2.Policy(etag=b"\x00\x20\x01")},
                       timeout=TIMEOUT_S)


def missing_account(sandbox, iam):
    project = new_project()
    iam.get_service_account(name=f"projects/{project}/serviceAccounts/gone-away@{project}.iam.gserviceaccount.com",
                            timeout=TIMEOUT_S)


@pytest.mark.parametrize("case, error, code, http", [
    (duplicate_create, exceptions.AlreadyExists, "ALREADY_EXISTS", 409),
    (stale_etag, exceptions.Aborted, "ABORTED", 409),
    (missing_account, exceptions.NotFound, "NOT_FOUND", 404),
    (quota_error, exceptions.ResourceExhausted, "RESOURCE_EXHAUSTED", 429),
], ids=lambda value: getattr(value, "__name__", None))
def test_the_errors_saxctl_handles_have_their_real_codes(sandbox, iam, case, error, code, http):
    with pytest.raises(error) as raised:
        case(sandbox, iam)
    assert (raised.value.grpc_status_code.name, raised.value.code) == (code, http)
    assert raised.value.message
