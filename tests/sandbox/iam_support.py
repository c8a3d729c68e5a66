"""Shared by the IAM emulator tests: fresh project and account ids, so tests on the session sandbox never meet."""

from __future__ import annotations

import secrets

from google.cloud.iam_admin_v1 import types

IAM = "/google.iam.admin.v1.IAM/"
TIMEOUT_S = 10  # explicit: the client's own default is 60 s, retried (RECIPES §3)


def new_project() -> str:
    return f"p-{secrets.token_hex(4)}"


def new_account_id() -> str:
    return f"sa-{secrets.token_hex(5)}"


def create_account(client, project: str, account_id: str | None = None, **fields) -> types.ServiceAccount:
    return client.create_service_account(name=f"projects/{project}", account_id=account_id or new_account_id(),
                                         service_account=types.ServiceAccount(**fields), timeout=TIMEOUT_S)


def calls(sandbox, method: str | None = None) -> list[tuple[str, str]]:
    """(RPC name, status code name) of each IAM call the emulator logged, optionally of one RPC only."""
    logged = [(entry["path"].removeprefix(IAM), entry["status"]) for entry in sandbox.requests("iam")]
    return [call for call in logged if method is None or call[0] == method]
