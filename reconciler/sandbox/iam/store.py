"""The service accounts and their IAM policies the IAM emulator keeps, in one JSON file so they survive a restart."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class AccountStore:
    """email → service account fields, unique id → policy (google.iam.v1.Policy in its JSON mapping).

    Every change is written through atomically. Callers hold `lock` across a read-check-write (an etag or an
    existence check) so that two writers cannot both pass the same check.
    """

    def __init__(self, path: Path):
        self._path = path
        self._lock = threading.RLock()
        saved = json.loads(path.read_text()) if path.is_file() else {}
        self._accounts: dict[str, dict] = saved.get("accounts", {})
        self._policies: dict[str, dict] = saved.get("policies", {})

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def find(self, email_or_unique_id: str) -> dict | None:
        with self._lock:
            if email_or_unique_id in self._accounts:
                return dict(self._accounts[email_or_unique_id])
            for account in self._accounts.values():
                if account["unique_id"] == email_or_unique_id:
                    return dict(account)
            return None

    def in_project(self, project: str) -> list[dict]:
        with self._lock:
            return [dict(account) for email, account in sorted(self._accounts.items())
                    if account["project_id"] == project]

    def put(self, account: dict) -> None:
        with self._lock:
            self._accounts[account["email"]] = dict(account)
            self._save()

    def delete(self, account: dict) -> None:
        """The account and its policy: a new account with the same email starts with a new unique id and policy."""
        with self._lock:
            self._accounts.pop(account["email"], None)
            self._policies.pop(account["unique_id"], None)
            self._save()

    def policy(self, unique_id: str) -> dict | None:
        with self._lock:
            return self._policies.get(unique_id)

    def put_policy(self, unique_id: str, policy: dict) -> None:
        with self._lock:
            self._policies[unique_id] = policy
            self._save()

    def policies_naming(self, member: str) -> list[tuple[str, dict]]:
        """(unique id, policy) of every account whose policy names member."""
        with self._lock:
            return [(unique_id, policy) for unique_id, policy in self._policies.items()
                    if any(member in binding.get("members", []) for binding in policy.get("bindings", []))]

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"accounts": self._accounts, "policies": self._policies}, indent=1))
        os.replace(scratch, self._path)
