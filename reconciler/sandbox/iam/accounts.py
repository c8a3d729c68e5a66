"""Service-account rules of the IAM API: names, account ids, the fields the server fills in, and its error texts.

The ALREADY_EXISTS, NOT_FOUND, PERMISSION_DENIED and account-id length texts are the real API's, as public error
reports quote them; the others are ours, in the same style.
"""

from __future__ import annotations

import re
import secrets

from google.cloud.iam_admin_v1 import types
from google.rpc import error_details_pb2

from reconciler.sandbox.base.grpc_errors import GrpcApiError, error_info

ACCOUNT_ID = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])")  # the API reference's pattern, with 6-30 characters
_PROJECT_NAME = re.compile(r"projects/(?P<project>[^/]+)")
_ACCOUNT_NAME = re.compile(r"projects/(?P<project>[^/]+)/serviceAccounts/(?P<account>[^/]+)")
MAX_DISPLAY_NAME_BYTES = 100
MAX_DESCRIPTION_BYTES = 256
# ServiceAccount.etag is deprecated ("Do not use"); the real API still sends it, the same bytes for every account
# (MDEwMjE5MjA= in the JSON API).
ACCOUNT_ETAG = b"01021920"
PATCHABLE_FIELDS = ("display_name", "description")


def project_of(name: str) -> str:
    """`projects/P` → P (the parent of create and list)."""
    match = _PROJECT_NAME.fullmatch(name)
    if match is None or match["project"] == "-":
        raise GrpcApiError("INVALID_ARGUMENT", f"Invalid project resource name {name!r}: expected projects/PROJECT_ID.")
    return match["project"]


def parse_name(name: str) -> tuple[str, str]:
    """`projects/P/serviceAccounts/EMAIL_OR_UNIQUE_ID` → (P or "-", EMAIL_OR_UNIQUE_ID)."""
    match = _ACCOUNT_NAME.fullmatch(name)
    if match is None:
        raise GrpcApiError("INVALID_ARGUMENT", f"Invalid service account name {name!r}: expected "
                                               "projects/PROJECT_ID/serviceAccounts/EMAIL_OR_UNIQUE_ID.")
    return match["project"], match["account"]


def check_account_id(account_id: str) -> None:
    # The length text is the API's own; the pattern text is ours (the API's was not found in public reports).
    if not 6 <= len(account_id) <= 30:
        raise GrpcApiError("INVALID_ARGUMENT", f'The account ID "{account_id}" does not have a length between 6 and 30.')
    if not ACCOUNT_ID.fullmatch(account_id):
        raise GrpcApiError("INVALID_ARGUMENT", f'The account ID "{account_id}" does not match the regular expression '
                                               f"{ACCOUNT_ID.pattern}.")


def check_text_fields(display_name: str, description: str) -> None:
    if len(display_name.encode()) > MAX_DISPLAY_NAME_BYTES:
        raise GrpcApiError("INVALID_ARGUMENT", f"The display name is longer than {MAX_DISPLAY_NAME_BYTES} bytes.")
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        raise GrpcApiError("INVALID_ARGUMENT", f"The description is longer than {MAX_DESCRIPTION_BYTES} bytes.")


def email_of(project: str, account_id: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def new_account(project: str, account_id: str, display_name: str, description: str) -> dict:
    email = email_of(project, account_id)
    # Real unique ids are 21 decimal digits starting with 1; the OAuth2 client id is the same number.
    unique_id = "1" + "".join(secrets.choice("0123456789") for _ in range(20))
    return {"name": f"projects/{project}/serviceAccounts/{email}", "project_id": project, "unique_id": unique_id,
            "email": email, "display_name": display_name, "description": description,
            "oauth2_client_id": unique_id, "disabled": False}


def to_message(account: dict, fields: tuple[str, ...] | None = None) -> types.ServiceAccount:
    """The reply; with `fields`, only the name and those fields (what PatchServiceAccount promises to return)."""
    if fields is not None:
        return types.ServiceAccount(name=account["name"], **{field: account[field] for field in fields})
    return types.ServiceAccount(etag=ACCOUNT_ETAG, **account)


def already_exists(project: str, account_id: str, email: str) -> GrpcApiError:
    return GrpcApiError("ALREADY_EXISTS", f"Service account {account_id} already exists within project "
                                          f"projects/{project}.",
                        (error_details_pb2.ResourceInfo(resource_name=f"projects/{project}/serviceAccounts/{email}"),))


def not_found() -> GrpcApiError:
    return GrpcApiError("NOT_FOUND", "Unknown service account")


def permission_denied(permission: str) -> GrpcApiError:
    """What `projects/-/serviceAccounts/ACCOUNT` gets for an account that does not exist (the API reference says a
    403 instead of a 404 there)."""
    return GrpcApiError("PERMISSION_DENIED", f"Permission '{permission}' denied on resource (or it may not exist).",
                        (error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", permission=permission),))


def update_mask_fields(paths: list[str]) -> tuple[str, ...]:
    if not paths:
        raise GrpcApiError("INVALID_ARGUMENT", "update_mask must list the fields to patch: "
                                               f"{', '.join(PATCHABLE_FIELDS)}.")
    unknown = [path for path in paths if path not in PATCHABLE_FIELDS]
    if unknown:
        raise GrpcApiError("INVALID_ARGUMENT", f"Invalid update_mask path(s) {unknown}: only "
                                               f"{' and '.join(PATCHABLE_FIELDS)} can be patched.")
    return tuple(dict.fromkeys(paths))
