"""Why a pod is not ready, as the rollout wait says it: from the first component that has not done its part.

Pods as the apiserver returns them (JSON), at each stage a Sax pod passes through on its way to Ready.
"""

from __future__ import annotations

import pytest

from reconciler.providers.kubernetes.rollout import _pod_reason


def pod(phase: str, *, node: str | None = None, conditions=(), containers=(), deleting: bool = False) -> dict:
    metadata = {"name": "sax-http-5d8f-abcde", **({"deletionTimestamp": "2026-12-02T10:00:00Z"} if deleting else {})}
    return {"metadata": metadata, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(containers)}}


UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient google.com/tpu. preemption: 0/3 nodes are "
                            "available: 3 No preemption victims found for incoming pod."}
READY = {"type": "Ready", "status": "True"}
NOT_READY = {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}


@pytest.mark.parametrize(("live", "said"), [
    (pod("Pending"), "Pending: waiting for the scheduler"),
    (pod("Pending", conditions=[UNSCHEDULABLE]), "Pending: 0/3 nodes are available: 3 Insufficient google.com/tpu"),
    (pod("Pending", node="gke-tpu-0"), "Pending on node gke-tpu-0: its containers have not started"),
    (pod("Pending", node="gke-tpu-0", containers=[{"name": "sax-http", "ready": False, "state": {
        "waiting": {"reason": "ContainerCreating"}}}]), "Pending on node gke-tpu-0: its containers have not started"),
    (pod("Pending", node="gke-tpu-0", containers=[{"name": "sax-http", "ready": False, "state": {
        "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]),
     "sax-http ImagePullBackOff: Back-off pulling image"),
    (pod("Running", node="gke-cpu-0", conditions=[NOT_READY], containers=[{"name": "sax-http", "ready": False}]),
     "Running on node gke-cpu-0, not ready: sax-http"),
    (pod("Failed", node="gke-cpu-0", conditions=[NOT_READY]) | {"status": {"phase": "Failed", "reason": "Evicted"}},
     "Failed: Evicted"),
])
def test_a_pod_that_is_not_ready_says_which_stage_it_waits_in(live, said):
    assert _pod_reason(live) == said


@pytest.mark.parametrize("live", [
    pod("Running", node="gke-cpu-0", conditions=[READY], containers=[{"name": "sax-http", "ready": True}]),
    pod("Pending", deleting=True),
])
def test_a_ready_pod_or_one_going_away_keeps_nothing_waiting(live):
    assert _pod_reason(live) is None
