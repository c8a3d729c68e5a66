"""The addresses of GKE's resources: other families build their dependencies on them from here."""

from __future__ import annotations

from reconciler.engine.address import Address

CLUSTER = "gke.cluster"
NODE_POOL = "gke.node_pool"


def cluster(name: str) -> Address:
    return Address(CLUSTER, name)


def node_pool(name: str) -> Address:
    return Address(NODE_POOL, name)
