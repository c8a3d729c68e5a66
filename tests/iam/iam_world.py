"""What the IAM end-to-end tests share: a project of their own, a spec with an identity, views of the sandbox."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from reconciler.providers.iam.record import RECORD_OBJECT

ACCOUNT = "sax-iam-sa"
TIMEOUT_S = 10


@dataclass
class World:
    """One test's project, names and spec file, and how to look at what the sandbox holds for them."""

    sandbox: object
    project: str
    spec_name: str
    admin: str
    data: str
    path: Path

    @property
    def email(self) -> str:
        return f"{ACCOUNT}@{self.project}.iam.gserviceaccount.com"

    @property
    def account_name(self) -> str:
        return f"projects/{self.project}/serviceAccounts/{self.email}"

    @property
    def gsa_member(self) -> str:
        return f"serviceAccount:{self.email}"

    def ksa_member(self, namespace: str = "default", name: str = "sax-sa") -> str:
        return f"serviceAccount:{self.project}.svc.id.goog[{namespace}/{name}]"

    def write_spec(self, roles=("roles/storage.admin",), ksa: str = "sax-sa") -> Path:
        self.path.write_text(textwrap.dedent(f"""\
            apiVersion: saxctl/v1
            kind: SaxDeployment
            metadata: {{name: {self.spec_name}}}
            project: {{id: {self.project}, region: us-central1}}
            buckets:
              admin: {{name: {self.admin}, location: US}}
              data: {{name: {self.data}, location: US}}
            identity:
              kubernetesServiceAccount: {{namespace: default, name: {ksa}}}
              googleServiceAccount: {{name: {ACCOUNT}, projectRoles: [{", ".join(roles)}]}}
            """))
        return self.path

    def project_policy(self) -> dict[str, list[str]]:
        """role → members of the project's policy, as Resource Manager holds it."""
        (policy,) = [p["policy"] for p in self.sandbox.control("GET", "resourcemanager", "projects")["projects"]
                     if p["projectId"] == self.project]
        return {binding["role"]: binding["members"] for binding in policy["bindings"]}

    def edit_project_policy(self, add=(), remove=()) -> None:
        """An out-of-band edit (someone else, between two runs or in the middle of one): moves the etag."""
        self.sandbox.control("POST", "resourcemanager", "policy", {
            "project": self.project, "add": [{"role": r, "member": m} for r, m in add],
            "remove": [{"role": r, "member": m} for r, m in remove]})

    def account(self):
        """The service account, or None."""
        from google.api_core.exceptions import NotFound

        try:
            return self.sandbox.iam_client().get_service_account(name=self.account_name, timeout=TIMEOUT_S)
        except NotFound:
            return None

    def account_policy(self) -> dict[str, list[str]]:
        policy = self.sandbox.iam_client().get_iam_policy(resource=self.account_name, timeout=TIMEOUT_S)
        return {binding.role: sorted(binding.members) for binding in policy.bindings}

    def add_to_account_policy(self, role: str, member: str, client=None) -> None:
        iam = client or self.sandbox.iam_client()
        policy = iam.get_iam_policy(resource=self.account_name, timeout=TIMEOUT_S)
        binding = next((b for b in policy.bindings if b.role == role), None) or policy.bindings.add(role=role)
        binding.members.append(member)
        iam.set_iam_policy(request={"resource": self.account_name, "policy": policy}, timeout=TIMEOUT_S)

    def record(self) -> dict | None:
        blob = self.sandbox.storage_client(self.project).bucket(self.admin).get_blob(RECORD_OBJECT)
        return None if blob is None else json.loads(blob.download_as_bytes())

    def recorded(self) -> set[tuple[str, str, str]]:
        """(resource, role, member) of every member the record says saxctl added."""
        record = self.record() or {"members": []}
        return {(entry["resource"], entry["role"], entry["member"]) for entry in record["members"]}


def calls(sandbox, emulator: str) -> list[tuple[str, str, object]]:
    """(method, path, status) of every call the emulator logged since its last reset."""
    return [(entry["method"], entry["path"], entry["status"]) for entry in sandbox.requests(emulator)]
