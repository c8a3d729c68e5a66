"""What the tests against the sandbox's kube-apiserver build nodes from, and how they wait for it to react."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from reconciler.sandbox.gke.nodes import NodeSpec

WAIT_S = 90.0  # generous: kwok and the scheduler react in well under a second, but CI machines are shared
TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}  # what GKE puts on TPU nodes


def cpu_node(cluster: str, pool: str, index: int) -> NodeSpec:
    """An e2-standard-4 node as GKE labels it."""
    return NodeSpec(name=f"gke-{cluster}-{pool}-{index}",
                    labels={"cloud.google.com/gke-nodepool": pool,
                            "node.kubernetes.io/instance-type": "e2-standard-4"},
                    taints=(), capacity={"cpu": "4", "memory": "16Gi", "pods": "110"})


def tpu_node(cluster: str, pool: str, index: int) -> NodeSpec:
    """A ct5lp-hightpu-4t node (TPU v5e, topology 2x2, 4 chips) as GKE labels and taints it."""
    return NodeSpec(name=f"gke-{cluster}-{pool}-{index}",
                    labels={"cloud.google.com/gke-nodepool": pool,
                            "node.kubernetes.io/instance-type": "ct5lp-hightpu-4t",
                            "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                            "cloud.google.com/gke-tpu-topology": "2x2"},
                    taints=(TPU_TAINT,),
                    capacity={"cpu": "24", "memory": "48Gi", "pods": "110", "google.com/tpu": "4"})


def wait_for(what: str, check: Callable[[], object], timeout_s: float = WAIT_S):
    """Poll `check` until it returns something truthy; fail naming `what` (and its last value) if it never does."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"{what}: not so after {timeout_s:.0f} s (last seen: {last!r})")
