"""The IAM emulator's service accounts through the real IAMClient: create, get, list, patch, update, delete."""

import pytest
from google.api_core import exceptions
from google.cloud.iam_admin_v1 import types
from google.protobuf import field_mask_pb2
from iam_support import TIMEOUT_S, create_account, new_account_id, new_project


@pytest.fixture
def iam(sandbox):
    return sandbox.iam_client()


def test_create_fills_in_what_the_server_owns_and_every_name_form_gets_the_account(iam):
    project, account_id = new_project(), new_account_id()
    created = create_account(iam, project, account_id, display_name="Sax", description="serves GPT-J",
                             email="ignored@example.com", unique_id="42")  # output-only fields are the server's
    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    assert (created.name, created.project_id, created.email) == (f"projects/{project}/serviceAccounts/{email}",
                                                                 project, email)
    assert (created.display_name, created.description, created.disabled) == ("Sax", "serves GPT-J", False)
    assert created.unique_id != "42" and created.oauth2_client_id == created.unique_id
    for name in (created.name, f"projects/-/serviceAccounts/{email}", f"projects/{project}/serviceAccounts/"
                 f"{created.unique_id}", f"projects/-/serviceAccounts/{created.unique_id}"):
        assert iam.get_service_account(name=name, timeout=TIMEOUT_S) == created, name


def test_a_second_create_of_the_same_id_is_already_exists_worded_as_iam_does(iam):
    project, account_id = new_project(), new_account_id()
    first = create_account(iam, project, account_id, display_name="first")
    with pytest.raises(exceptions.AlreadyExists) as raised:
        create_account(iam, project, account_id, display_name="second")
    assert raised.value.message == f"Service account {account_id} already exists within project projects/{project}."
    assert [detail.resource_name for detail in raised.value.details] == [first.name]
    assert iam.get_service_account(name=first.name, timeout=TIMEOUT_S).display_name == "first"
    assert create_account(iam, new_project(), account_id).unique_id != first.unique_id, "ids are per project"


@pytest.mark.parametrize("account_id, message", [
    ("sa-12", 'The account ID "sa-12" does not have a length between 6 and 30.'),
    ("s" * 31, f'The account ID "{"s" * 31}" does not have a length between 6 and 30.'),
    ("1sa-account", "does not match the regular expression [a-z]([-a-z0-9]*[a-z0-9])"),
    ("sa_account", "does not match the regular expression"),
    ("sa-account-", "does not match the regular expression"),
    ("Sa-account", "does not match the regular expression"),
])
def test_account_ids_are_checked_as_the_api_reference_states(iam, account_id, message):
    with pytest.raises(exceptions.InvalidArgument, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace("*", r"\*")):
        create_account(iam, new_project(), account_id)


@pytest.mark.parametrize("account_id", ["a" * 6, "a" * 29 + "9", "sax-iam-sa"])
def test_ids_at_the_limits_are_taken(iam, account_id):
    assert create_account(iam, new_project(), account_id).email.startswith(f"{account_id}@")


def test_text_fields_longer_than_the_api_allows_are_refused(iam):
    with pytest.raises(exceptions.InvalidArgument, match="display name is longer than 100 bytes"):
        create_account(iam, new_project(), display_name="é" * 51)  # 102 bytes
    with pytest.raises(exceptions.InvalidArgument, match="description is longer than 256 bytes"):
        create_account(iam, new_project(), description="d" * 257)


def test_a_missing_account_is_not_found_in_its_project_and_permission_denied_under_the_wildcard(iam):
    project = new_project()
    missing = f"nobody-here@{project}.iam.gserviceaccount.com"
    with pytest.raises(exceptions.NotFound, match="Unknown service account"):
        iam.get_service_account(name=f"projects/{project}/serviceAccounts/{missing}", timeout=TIMEOUT_S)
    # The API reference: under projects/-, a missing account answers 403, not 404.
    with pytest.raises(exceptions.PermissionDenied) as raised:
        iam.get_service_account(name=f"projects/-/serviceAccounts/{missing}", timeout=TIMEOUT_S)
    assert raised.value.message == "Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist)."
    assert (raised.value.reason, raised.value.domain) == ("IAM_PERMISSION_DENIED", "iam.googleapis.com")
    existing = create_account(iam, project)
    with pytest.raises(exceptions.NotFound):
        iam.get_service_account(name=f"projects/{new_project()}/serviceAccounts/{existing.email}", timeout=TIMEOUT_S)
    with pytest.raises(exceptions.InvalidArgument, match="Invalid service account name"):
        iam.get_service_account(name=existing.email, timeout=TIMEOUT_S)


def test_list_pages_through_one_project_only(iam):
    project = new_project()
    created = sorted((create_account(iam, project) for _ in range(5)), key=lambda account: account.email)
    create_account(iam, new_project())  # another project's account is not listed
    first_page = iam.list_service_accounts(request={"name": f"projects/{project}", "page_size": 2},
                                           timeout=TIMEOUT_S)
    assert [account.email for account in first_page.accounts] == [account.email for account in created[:2]]
    assert first_page.next_page_token
    every = list(iam.list_service_accounts(request={"name": f"projects/{project}", "page_size": 2},
                                           timeout=TIMEOUT_S))
    assert every == created
    assert list(iam.list_service_accounts(name=f"projects/{new_project()}", timeout=TIMEOUT_S)) == []
    with pytest.raises(exceptions.InvalidArgument, match="Invalid page token"):
        iam.list_service_accounts(request={"name": f"projects/{project}", "page_token": "%%%"}, timeout=TIMEOUT_S)


def test_patch_changes_the_masked_fields_only_and_returns_only_them(iam):
    account = create_account(iam, new_project(), display_name="old", description="kept")
    patched = iam.patch_service_account(request=types.PatchServiceAccountRequest(
        service_account=types.ServiceAccount(name=account.name, display_name="new", description="not in the mask"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), timeout=TIMEOUT_S)
    # "Only the fields specified in the request are guaranteed to be returned in the response."
    assert (patched.name, patched.display_name, patched.description, patched.email) == (account.name, "new", "", "")
    stored = iam.get_service_account(name=account.name, timeout=TIMEOUT_S)
    assert (stored.display_name, stored.description, stored.unique_id) == ("new", "kept", account.unique_id)


@pytest.mark.parametrize("paths, message", [([], "update_mask must list the fields"),
                                            (["email"], r"Invalid update_mask path\(s\) \['email'\]")])
def test_patch_needs_a_mask_of_patchable_fields(iam, paths, message):
    account = create_account(iam, new_project())
    with pytest.raises(exceptions.InvalidArgument, match=message):
        iam.patch_service_account(request=types.PatchServiceAccountRequest(
            service_account=types.ServiceAccount(name=account.name, email="x@y.z"),
            update_mask=field_mask_pb2.FieldMask(paths=paths)), timeout=TIMEOUT_S)


def test_update_sets_the_display_name_only(iam):
    account = create_account(iam, new_project(), display_name="old", description="kept")
    updated = iam.update_service_account(request=types.ServiceAccount(name=account.name, display_name="new",
                                                                      description="ignored"), timeout=TIMEOUT_S)
    assert (updated.display_name, updated.description, updated.email) == ("new", "kept", account.email)


def test_delete_removes_the_account_and_a_new_one_with_the_same_id_gets_a_new_unique_id(iam):
    project, account_id = new_project(), new_account_id()
    account = create_account(iam, project, account_id)
    iam.delete_service_account(name=account.name, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.NotFound):
        iam.get_service_account(name=account.name, timeout=TIMEOUT_S)
    with pytest.raises(exceptions.NotFound):
        iam.delete_service_account(name=account.name, timeout=TIMEOUT_S)
    assert list(iam.list_service_accounts(name=f"projects/{project}", timeout=TIMEOUT_S)) == []
    again = create_account(iam, project, account_id)
    assert again.email == account.email and again.unique_id != account.unique_id
    with pytest.raises(exceptions.NotFound):
        iam.get_service_account(name=f"projects/{project}/serviceAccounts/{account.unique_id}", timeout=TIMEOUT_S)
