"""The addresses of the Kubernetes objects saxctl manages: `kubernetes.<kind>.<namespace>/<name>`."""

from __future__ import annotations

from reconciler.engine.address import Address

SERVICE_ACCOUNT = "kubernetes.service_account"
DEPLOYMENT = "kubernetes.deployment"
STATEFUL_SET = "kubernetes.stateful_set"  # the model servers of a multi-host TPU slice, one per host
SERVICE = "kubernetes.service"
APPLYSET = "kubernetes.applyset"  # the ConfigMap that records what saxctl made in a namespace (ApplySet parent)
KINDS = frozenset({SERVICE_ACCOUNT, DEPLOYMENT, STATEFUL_SET, SERVICE, APPLYSET})


def service_account(namespace: str, name: str) -> Address:
    return Address(SERVICE_ACCOUNT, f"{namespace}/{name}")


def deployment(namespace: str, name: str) -> Address:
    return Address(DEPLOYMENT, f"{namespace}/{name}")


def stateful_set(namespace: str, name: str) -> Address:
    return Address(STATEFUL_SET, f"{namespace}/{name}")


def service(namespace: str, name: str) -> Address:
    return Address(SERVICE, f"{namespace}/{name}")


def applyset(namespace: str, name: str) -> Address:
    return Address(APPLYSET, f"{namespace}/{name}")
