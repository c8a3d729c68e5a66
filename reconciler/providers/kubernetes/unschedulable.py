"""Whether a pod the scheduler refused will stay refused however long saxctl waits, and why.

The scheduler retries a pending pod whenever the cluster changes, so waiting helps while something is on its way:
the pool growing to its size, a node not yet ready, a pod that holds chips being deleted. When none of that is so —
the pool has all its nodes and none has the shape the pod selects, or every TPU chip of every node it selects is held
by pods nobody is removing — the rollout can only finish after someone acts, and the wait says so at once rather
than at its timeout. The decision is a pure function of what was read (pods, nodes, the pods on those nodes).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from reconciler.providers.kubernetes.manifests import TPU_ACCELERATOR_LABEL, TPU_RESOURCE, TPU_TOPOLOGY_LABEL

Obj = Mapping[str, Any]


def refused(pod: Obj) -> bool:
    """Pending, on no node, and the scheduler said it cannot place it (not merely: not tried yet)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or (pod.get("spec") or {}).get("nodeName"):
        return False
    scheduled = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), {})
    return status.get("phase") == "Pending" and scheduled.get("reason") == "Unschedulable"


def tpu_request(pod_spec: Obj) -> int:
    return sum(int(((container.get("resources") or {}).get("requests") or {}).get(TPU_RESOURCE, 0))
               for container in pod_spec.get("containers") or ())


def selects(node: Obj, node_selector: Mapping[str, str]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in node_selector.items())


def stuck(workload: Obj, refused_pods: Sequence[Obj], pool: str, pool_size: int, pool_nodes: Sequence[Obj],
          pods_on: Mapping[str, Sequence[Obj]]) -> str | None:
    """Why pods of this workload (its manifest) cannot be placed in `pool` until someone acts; None while waiting
    may help.

    refused_pods: the pods the scheduler refused, as read before the nodes; pool_size: the node count the spec gives
    the pool; pool_nodes: its nodes as read; pods_on: node name → the pods bound to it (read only for the nodes the
    template selects).
    """
    pod_spec = workload["spec"]["template"]["spec"]
    if len(pool_nodes) < pool_size or not all(_ready(node) for node in pool_nodes):
        return None  # nodes are still coming: GKE is adding or repairing them
    refused_ids = {(pod.get("metadata") or {}).get("uid") for pod in refused_pods}
    if any((pod.get("metadata") or {}).get("uid") in refused_ids for pods in pods_on.values() for pod in pods):
        return None  # placed since it was read: the scheduler's refusal was an earlier try's
    selector = pod_spec.get("nodeSelector") or {}
    matching = [node for node in pool_nodes if selects(node, selector)]
    if not matching:
        shapes = sorted({_shape(node) for node in pool_nodes})
        return (f"none of pool {pool}'s {len(pool_nodes)} node(s) has the labels the pods select "
                f"({', '.join(f'{k}={v}' for k, v in sorted(selector.items()))}): they are {', '.join(shapes)}")
    wanted = tpu_request(pod_spec)
    if not wanted:
        return None  # not a question of chips: the scheduler's own reason stands, and may pass
    holders: list[str] = []
    for node in matching:
        name = node["metadata"]["name"]
        on_node = [pod for pod in pods_on.get(name, ()) if _holds(pod)]
        if any((pod.get("metadata") or {}).get("deletionTimestamp") for pod in on_node):
            return None  # chips are being freed
        if any(_member(pod, workload) for pod in on_node):
            return None  # its own pods: its controller is replacing them (a rollout, a rollback)
        allocatable = int(((node.get("status") or {}).get("allocatable") or {}).get(TPU_RESOURCE, 0))
        if allocatable - sum(tpu_request(pod.get("spec") or {}) for pod in on_node) >= wanted:
            return None  # room: the scheduler places it on its next try
        holders += [f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}" for pod in on_node
                    if tpu_request(pod.get("spec") or {})]
    return (f"every {TPU_RESOURCE} chip of pool {pool}'s {len(matching)} node(s) is held by pods nobody is "
            f"removing ({', '.join(sorted(holders)) or 'none named'}); the pods need {wanted} each")


def _member(pod: Obj, workload: Obj) -> bool:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return meta.get("namespace") == workload["metadata"]["namespace"] and all(
        labels.get(key) == value for key, value in workload["spec"]["selector"]["matchLabels"].items())


def _holds(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions) and \
        not (node.get("spec") or {}).get("unschedulable")


def _shape(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return f"{labels.get(TPU_ACCELERATOR_LABEL, 'no TPU')} {labels.get(TPU_TOPOLOGY_LABEL, '')}".strip()
