"""The addresses of IAM's resources: other families build their dependencies on them from here."""

from __future__ import annotations

from reconciler.engine.address import Address

SERVICE_ACCOUNT = "iam.service_account"
PROJECT_BINDING = "iam.project_binding"
WORKLOAD_IDENTITY = "iam.workload_identity"


def service_account(account_id: str) -> Address:
    return Address(SERVICE_ACCOUNT, account_id)


def project_binding(role: str) -> Address:
    return Address(PROJECT_BINDING, role)


def workload_identity(namespace: str, ksa: str) -> Address:
    return Address(WORKLOAD_IDENTITY, f"{namespace}/{ksa}")
