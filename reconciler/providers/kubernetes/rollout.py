"""Wait for a Deployment or StatefulSet to roll out, and say why it has not: from its pods' status and its nodes.

Done is what `kubectl rollout status` calls done: the controller has seen the latest spec, and every replica runs
it and is available (ready). While it is not, the pods say why: the scheduler writes its reason into a Pending pod's
PodScheduled condition ("0/3 nodes are available: 3 Insufficient google.com/tpu"), the kubelet into a container's
waiting state (ImagePullBackOff); for the model server, the pool's node count completes the picture.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from reconciler.engine.provider import Progress
from reconciler.errors import RemoteError
from reconciler.providers.kubernetes.api import KubeApi
from reconciler.providers.kubernetes import unschedulable
from reconciler.providers.kubernetes.kinds import KINDS, NODES, describe, path_of
from reconciler.providers.kubernetes.manifests import NODE_POOL_LABEL

FIRST_POLL_S = 0.25  # a controller usually answers within a second: look soon, then less often
POLL_S = 2.0


def wait(api: KubeApi, manifest: Mapping[str, Any], pool: str | None, progress: Progress, timeout_s: float,
         pool_size: int | None = None) -> dict:
    """The live object once rolled out; RemoteError naming why not once timeout_s (or the change's deadline) is up,
    or at once when its pods cannot be scheduled until someone acts (unschedulable.py)."""
    deadline = time.monotonic() + timeout_s
    what = describe(manifest)
    interval = FIRST_POLL_S
    # Named if the user interrupts: the rollout goes on in the cluster without saxctl.
    progress.operation(f"rollout of {what}")
    while True:
        live = api.get(path_of(manifest), what) or {}
        done, summary = state(live)
        if done:
            progress.operation(None)
            return live
        pods = _pods(api, manifest)
        pending = pool is not None and any((_pod_reason(pod) or "").startswith("Pending:") for pod in pods)
        nodes = api.list(NODES, f"nodes of pool {pool}", f"{NODE_POOL_LABEL}={pool}") if pending else None
        why = explain(manifest, pods, pool, nodes)
        progress.update(f"rolling out: {summary}" + (f"; {why}" if why else ""))
        # Decided only once the controller has seen the spec: until then its pods are the old spec's.
        status, meta = live.get("status") or {}, live.get("metadata") or {}
        seen = status.get("observedGeneration", 0) >= meta.get("generation", 1)
        blocked = _blocked(api, manifest, pods, pool, pool_size, nodes) if pending and seen else None
        left = min(deadline - time.monotonic(), progress.time_left() if progress.time_left() is not None else 1e9)
        if blocked or left <= 0:
            meta = manifest["metadata"]
            said = (f"{what} cannot be scheduled ({summary}): {blocked}" if blocked else
                    f"{what} is not ready after {timeout_s:.0f} s ({summary})" + (f": {why}" if why else ""))
            raise RemoteError(said, hint=f"It is applied, and the cluster keeps trying: fix what stops it, then follow "
                                         f"it with `kubectl -n {meta['namespace']} rollout status "
                                         f"{manifest['kind'].lower()}/{meta['name']}` (or wait longer: "
                                         "--rollout-timeout).")
        progress.sleep(min(interval, left))
        interval = min(POLL_S, interval * 2)


def _pods(api: KubeApi, manifest: Mapping[str, Any]) -> list[dict]:
    meta = manifest["metadata"]
    selector = ",".join(f"{key}={value}" for key, value in manifest["spec"]["selector"]["matchLabels"].items())
    return api.list(KINDS["Pod"].collection(meta["namespace"]), f"pods of {describe(manifest)}", selector)


def _blocked(api: KubeApi, manifest: Mapping[str, Any], pods: list[dict], pool: str, pool_size: int | None,
             nodes: list[dict]) -> str | None:
    """Why the pods the scheduler refused will stay refused (unschedulable.stuck), reading the pods on the nodes
    they select; None while waiting may help."""
    refused = [pod for pod in pods if unschedulable.refused(pod)]
    if not pool_size or not refused:
        return None
    pod_spec = manifest["spec"]["template"]["spec"]
    selector = pod_spec.get("nodeSelector") or {}
    names = [node["metadata"]["name"] for node in nodes if unschedulable.selects(node, selector)]
    pods_on = {name: api.list(KINDS["Pod"].all_namespaces, f"pods on node {name}",
                              field_selector=f"spec.nodeName={name}") for name in names}
    return unschedulable.stuck(manifest, refused, pool, pool_size, nodes, pods_on)


def state(live: Mapping[str, Any]) -> tuple[bool, str]:
    """(rolled out?, what it waits for) of a Deployment or StatefulSet as read, in `kubectl rollout status` terms."""
    spec, status = live.get("spec") or {}, live.get("status") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < (live.get("metadata") or {}).get("generation", 1):
        return False, "waiting for the controller to see the new spec"
    updated = status.get("updatedReplicas", 0)
    if updated < wanted:
        return False, f"{updated}/{wanted} replicas updated"
    if live.get("kind") == "StatefulSet":
        ready = status.get("readyReplicas", 0)
        if ready < wanted:
            return False, f"{ready}/{wanted} replicas ready"
        if status.get("currentRevision") != status.get("updateRevision"):
            return False, "waiting for the last replicas to be updated"
        return True, f"{wanted}/{wanted} replicas ready"
    old = status.get("replicas", 0) - updated
    if old > 0:
        return False, f"{old} old replica{'s' if old > 1 else ''} still running"
    available = status.get("availableReplicas", 0)
    if available < wanted:
        return False, f"{available}/{wanted} updated replicas available"
    return True, f"{wanted}/{wanted} replicas available"


def explain(manifest: Mapping[str, Any], pods: list[dict], pool: str | None, nodes: list[dict] | None) -> str:
    """Why the workload's pods are not ready, in the scheduler's and kubelet's words; "" when nothing says.
    nodes: the pool's, read when a pod waits for the scheduler."""
    meta = manifest["metadata"]
    if not pods:
        return f"{meta['name']}: no pod made yet"
    reasons = sorted({reason for pod in pods if (reason := _pod_reason(pod))})
    if not reasons:
        return ""
    text = f"{meta['name']}: " + "; ".join(reasons)
    if nodes is not None:
        text += f"; pool {pool} has {len(nodes)} node{'' if len(nodes) == 1 else 's'}"
    return text


def _pod_reason(pod: Mapping[str, Any]) -> str | None:
    """What keeps one pod from being ready, from the first component that has not done its part: the scheduler (no
    node yet), the node (bound, nothing started: on GKE a node still pulling or a kubelet not reporting), a container
    (waiting, or running but not ready), or the pod's failure. None for a ready pod or one going away."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None  # an old pod going away
    node = (pod.get("spec") or {}).get("nodeName")
    if status.get("phase") == "Pending" and not node:
        scheduled = conditions.get("PodScheduled")
        if scheduled is None or scheduled.get("status") != "False":
            return "Pending: waiting for the scheduler"
        # The scheduler's first sentence, "0/3 nodes are available: 3 Insufficient google.com/tpu", without its
        # notes on claims and preemption.
        message = (scheduled.get("message") or scheduled.get("reason") or "not scheduled").split(". ")[0]
        return f"Pending: {message.rstrip('.')}"
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return f"{container.get('name')} {waiting['reason']}{detail}"
    if status.get("phase") == "Failed":
        return f"Failed: {status.get('message') or status.get('reason') or 'the pod failed'}"
    if status.get("phase") == "Pending":
        return f"Pending on node {node}: its containers have not started"
    ready = conditions.get("Ready")
    if status.get("phase") == "Running" and (ready is None or ready.get("status") != "True"):
        unready = [c.get("name") for c in status.get("containerStatuses") or () if not c.get("ready")]
        return f"Running on node {node}, not ready" + (f": {', '.join(unready)}" if unready else "")
    return None
