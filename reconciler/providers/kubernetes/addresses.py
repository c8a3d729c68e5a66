"""The addresses of the Kubernetes objects saxctl manages: `kubernetes.<kind>.<namespace>/<name>`."""

from __future__ import annotations

from reconciler.engine.address import Address

SERVICE_ACCOUNT = "kubernetes.service_account"
DEPLOYMENT = "kubernetes.deployment"
SERVICE = "kubernetes.service"


def service_account(namespace: str, name: str) -> Address:
    return Address(SERVICE_ACCOUNT, f"{namespace}/{name}")


def deployment(namespace: str, name: str) -> Address:
    return Address(DEPLOYMENT, f"{namespace}/{name}")


def service(namespace: str, name: str) -> Address:
    return Address(SERVICE, f"{namespace}/{name}")
