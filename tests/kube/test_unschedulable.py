"""When a pod the scheduler refused will stay refused (the rollout wait fails at once), and when waiting may help.

Nodes and pods as the apiserver returns them (JSON): a pool of one TPU v5e 2x2 node, the model server's pod template.
"""

from __future__ import annotations

from reconciler.providers.kubernetes.unschedulable import refused, stuck

SELECTOR = {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x2",
            "cloud.google.com/gke-nodepool": "tpu"}
MODEL_SERVER = {"metadata": {"name": "sax-model-server", "namespace": "sax"}, "spec": {
    "selector": {"matchLabels": {"app": "sax-model-server"}},
    "template": {"spec": {"nodeSelector": SELECTOR, "containers": [
        {"name": "sax-model-server", "resources": {"requests": {"google.com/tpu": "4"}}}]}}}}


WAITING = {"metadata": {"name": "sax-model-server-new", "uid": "uid-new"}, "spec": {},
           "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                          "reason": "Unschedulable"}]}}


def node(name: str = "gke-tpu-0", topology: str = "2x2", ready: bool = True) -> dict:
    return {"metadata": {"name": name, "labels": {**SELECTOR, "cloud.google.com/gke-tpu-topology": topology}},
            "status": {"allocatable": {"google.com/tpu": "4"},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def holder(name: str, chips: int = 4, deleting: bool = False, phase: str = "Running") -> dict:
    metadata = {"name": name, "namespace": "old", "uid": f"uid-{name}"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-07T10:00:00Z"
    return {"metadata": metadata, "spec": {"nodeName": "gke-tpu-0", "containers": [
        {"name": "c", "resources": {"requests": {"google.com/tpu": str(chips)}}}]}, "status": {"phase": phase}}


def test_every_chip_held_by_a_pod_nobody_removes_is_said_at_once_naming_it():
    why = stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [holder("sax-model-server-abc")]})
    assert why is not None and "every google.com/tpu chip of pool tpu's 1 node(s)" in why
    assert "old/sax-model-server-abc" in why


def test_a_pool_of_another_shape_at_its_full_size_is_said_at_once():
    why = stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node(topology="2x4")], {})
    assert why is not None and "none of pool tpu's 1 node(s) has the labels" in why and "2x4" in why


def test_waiting_helps_while_a_holder_goes_the_pool_grows_a_node_is_not_ready_or_chips_are_free():
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [holder("old-0", deleting=True)]}) is None
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 2, [node()], {"gke-tpu-0": [holder("old-0")]}) is None, \
        "the pool is growing"
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [], {}) is None, "its nodes are still coming"
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node(ready=False)], {"gke-tpu-0": [holder("old-0")]}) is None
    finished = holder("done-0", phase="Succeeded")
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [finished]}) is None
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [holder("half-0", chips=0)]}) is None


def test_chips_its_own_pods_hold_are_its_controllers_to_free():
    """A rollout or a rollback of the same Deployment: the controller scales the other revision down."""
    own = holder("sax-model-server-old")
    own["metadata"].update(namespace="sax", labels={"app": "sax-model-server"})
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [own]}) is None


def test_a_pod_placed_since_the_scheduler_refused_it_is_no_reason_to_stop():
    """Its PodScheduled condition is an earlier try's (the node was not there yet): it holds the chips now."""
    assert stuck(MODEL_SERVER, [WAITING], "tpu", 1, [node()], {"gke-tpu-0": [holder("new")]}) is None


def test_only_a_pod_the_scheduler_refused_counts():
    pending = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    assert refused(pending)
    assert not refused({**pending, "status": {"phase": "Pending", "conditions": []}}), "not tried yet"
    assert not refused({**pending, "metadata": {"name": "p", "deletionTimestamp": "2026-12-07T10:00:00Z"}})
