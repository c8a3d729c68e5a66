"""The GKE provider's pure side: what the spec asks for, how it compares with clusters and pools as container v1 returns
them (the client's own types, filled as GKE fills them), what a replacement loses, and what the preflight counts."""

from __future__ import annotations

import dataclasses

import pytest
from google.cloud import container_v1

from reconciler.engine.resource import Action, Change
from reconciler.errors import RemoteError, SaxctlError
from reconciler.providers.gke import cluster, node_pool
from reconciler.providers.gke.diffs import moved_since_plan
from reconciler.providers.gke.operations import Where, check_done, is_busy
from reconciler.providers.gke.preflight import _chips
from reconciler.providers.gke.resources import desired_resources
from reconciler.spec.model import Bucket, Buckets, Cluster, CpuNodes, Project, Spec, TpuPool

PATH = "projects/p-test/locations/us-central1-a/clusters/saxml"
LINK = "https://container.googleapis.com/v1/projects/p-test/zones/us-central1-a/clusters/saxml"
MARK = {"managed-by": "saxctl", "saxctl-spec": "gptj-demo"}


def spec(*pools: TpuPool, location: str = "us-central1-a", channel: str = "RAPID", cpu_count: int = 2) -> Spec:
    return Spec(
        api_version="saxctl/v1", kind="SaxDeployment", name="gptj-demo",
        project=Project(id="p-test", region="us-central1"),
        buckets=Buckets(admin=Bucket(name="a", location="US"), data=Bucket(name="d", location="US")),
        cluster=Cluster(name="saxml", location=location, release_channel=channel,
                        cpu_nodes=CpuNodes(count=cpu_count, machine_type="e2-standard-4"),
                        tpu_pools=pools or (TpuPool("tpu", "ct5lp-hightpu-4t", "2x2", 1),)),
    )


def live_cluster(*, channel="RAPID", labels=None, status="RUNNING", machine_type="e2-standard-4", autoscaled=False,
                 location="us-central1-a"):
    """A cluster as GKE returns it: server-chosen versions, GKE's own labels, everything it fills in."""
    Channel = container_v1.ReleaseChannel.Channel
    return container_v1.Cluster(
        name="saxml", location=location, self_link=LINK.replace("us-central1-a", location), etag="e1",
        status=container_v1.Cluster.Status[status], status_message="", endpoint="34.1.2.3",
        master_auth=container_v1.MasterAuth(cluster_ca_certificate="LS0tQ0E="),
        release_channel=container_v1.ReleaseChannel(channel=Channel[channel]),
        workload_identity_config=container_v1.WorkloadIdentityConfig(workload_pool="p-test.svc.id.goog"),
        resource_labels={**MARK, "goog-gke-node": "x"} if labels is None else labels,
        current_master_version="1.34.2-gke.1120000", current_node_count=3, label_fingerprint="f1",
        node_pools=[container_v1.NodePool(
            name="default-pool", initial_node_count=2, version="1.34.2-gke.1120000",
            status=container_v1.NodePool.Status.RUNNING,
            config=container_v1.NodeConfig(machine_type=machine_type, disk_size_gb=100, image_type="COS_CONTAINERD"),
            autoscaling=container_v1.NodePoolAutoscaling(enabled=autoscaled),
            management=container_v1.NodeManagement(auto_upgrade=True, auto_repair=True))],
    )


def live_pool(*, topology="2x2", machine_type="ct5lp-hightpu-4t", status="RUNNING", placement=None, labels=None,
              autoscaled=False, zone="us-central1-a"):
    policy = container_v1.NodePool.PlacementPolicy(tpu_topology=topology)
    if placement:
        policy.type_ = container_v1.NodePool.PlacementPolicy.Type[placement]
    return container_v1.NodePool(
        name="tpu", initial_node_count=1, locations=[zone], version="1.34.1-gke.1431000", etag="pe",
        status=container_v1.NodePool.Status[status], status_message="stockout" if status == "ERROR" else "",
        config=container_v1.NodeConfig(machine_type=machine_type, image_type="COS_CONTAINERD", disk_size_gb=100,
                                       resource_labels=MARK if labels is None else labels),
        placement_policy=policy, autoscaling=container_v1.NodePoolAutoscaling(enabled=autoscaled))


def resources(the_spec: Spec):
    cluster_resource, *pools = desired_resources(the_spec)
    return cluster_resource, pools


def cluster_change(the_spec: Spec, live, cpu_nodes=2) -> Change:
    desired, _ = resources(the_spec)
    return cluster.diff(desired, cluster.observed_cluster(desired.address, "p-test", live, cpu_nodes))


def pool_change(the_spec: Spec, live, nodes=1, index=0) -> Change:
    _, pools = resources(the_spec)
    desired = pools[index]
    return node_pool.diff(desired, node_pool.observed_pool(desired.address, PATH, live, nodes))


def test_the_spec_becomes_a_cluster_with_its_cpu_nodes_and_a_pool_per_slice_inside_it():
    desired, (pool,) = resources(spec())
    assert (desired.address, desired.remote_id, desired.spec_field) == ("gke.cluster.saxml", PATH, "cluster")
    assert desired.fields == {"location": "us-central1-a", "releaseChannel": "RAPID",
                              "workloadPool": "p-test.svc.id.goog", "resourceLabels": MARK,
                              "cpuNodes": {"machineType": "e2-standard-4", "nodeCount": 2}}
    assert (pool.address, pool.inside, pool.remote_id) == ("gke.node_pool.tpu", "gke.cluster.saxml",
                                                           f"{PATH}/nodePools/tpu")
    assert pool.fields == {"zone": "us-central1-a", "machineType": "ct5lp-hightpu-4t", "tpuTopology": "2x2",
                           "nodeCount": 1, "resourceLabels": MARK}
    assert desired.timeout_s >= 30 * 60 and pool.timeout_s >= 20 * 60, "GKE operations take minutes"


def test_a_multi_host_slice_asks_for_compact_placement_and_a_regional_pool_for_its_own_zone():
    _, (multi,) = resources(spec(TpuPool("tpu-2x4", "ct5lp-hightpu-4t", "2x4", 2)))
    assert multi.fields["placement"] == "COMPACT"
    body = node_pool.node_pool_body(multi)
    assert (body.placement_policy.type_, body.placement_policy.tpu_topology, body.initial_node_count,
            list(body.locations)) == (container_v1.NodePool.PlacementPolicy.Type.COMPACT, "2x4", 2, ["us-central1-a"])
    regional, (pool,) = resources(spec(TpuPool("tpu", "ct5lp-hightpu-4t", "2x2", 1, zone="us-central1-c"),
                                       location="us-central1"))
    assert regional.remote_id == "projects/p-test/locations/us-central1/clusters/saxml"
    assert pool.fields["zone"] == "us-central1-c" and "placement" not in pool.fields


def test_the_provider_never_sends_a_slice_the_spec_checks_refuse():
    _, (pool,) = resources(spec())
    bad = dataclasses.replace(pool, fields={**pool.fields, "tpuTopology": "2x4"})  # 2x4 needs two -4t hosts
    with pytest.raises(SaxctlError, match="refusing to send a node pool the spec checks refuse.*nodes must be 2"):
        node_pool.node_pool_body(bad)


def test_what_gke_fills_in_and_an_auto_upgrade_are_no_change():
    change = cluster_change(spec(), live_cluster())
    assert change.action is Action.NOOP, change.reason
    assert pool_change(spec(), live_pool()).action is Action.NOOP


def test_outputs_are_what_the_kubernetes_and_iam_providers_ref():
    observed = cluster.observed_cluster("gke.cluster.saxml", "p-test", live_cluster(), 2)
    assert observed.outputs == {"endpoint": "34.1.2.3", "ca_certificate": "LS0tQ0E=", "name": PATH,
                                "location": "us-central1-a", "workload_pool": "p-test.svc.id.goog"}
    provisioning = cluster.observed_cluster("gke.cluster.saxml", "p-test", live_cluster(status="PROVISIONING"), None)
    assert set(provisioning.outputs) == {"name", "location", "workload_pool"}, \
        "the API server of a cluster still being created stays unknown (known after apply) to what depends on it"


def test_a_changed_release_channel_and_node_count_are_updates_naming_each_field():
    change = cluster_change(spec(), live_cluster(channel="REGULAR"), cpu_nodes=3)
    assert change.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in change.field_changes] == [
        ("cpuNodes.nodeCount", 3, 2), ("releaseChannel", "REGULAR", "RAPID")]
    assert change.reason == 'cpuNodes.nodeCount: 3 → 2; releaseChannel: "REGULAR" → "RAPID"'
    resized = pool_change(spec(), live_pool(), nodes=0)
    assert (resized.action, resized.reason) == (Action.UPDATE, "nodeCount: 0 → 1")


def test_a_count_the_autoscaler_decides_is_never_a_change():
    assert cluster_change(spec(), live_cluster(autoscaled=True), cpu_nodes=5).action is Action.NOOP
    assert pool_change(spec(), live_pool(autoscaled=True), nodes=0).action is Action.NOOP


def test_the_cpu_machine_type_changes_in_place_but_a_slice_shape_or_a_location_forces_replacement():
    assert cluster_change(spec(), live_cluster(machine_type="e2-standard-8")).action is Action.UPDATE
    moved = cluster_change(spec(), live_cluster(location="us-central1-c"))
    assert moved.action is Action.REPLACE
    assert moved.reason == ('location "us-central1-c" → "us-central1-a" cannot change in place: the cluster will be '
                            "deleted and created again")
    reshaped = pool_change(spec(TpuPool("tpu", "ct5lp-hightpu-4t", "2x4", 2)), live_pool(), nodes=1)
    assert reshaped.action is Action.REPLACE
    assert [f.path for f in reshaped.field_changes if f.forces_replacement] == ["placement", "tpuTopology"]
    assert reshaped.reason.startswith('tpuTopology "2x2" → "2x4" cannot change in place'), "the shape comes first"


@pytest.mark.parametrize("field, asked, live", [
    ("machineType", TpuPool("tpu", "ct5lp-hightpu-4t", "2x2", 1, zone="us-central1-a"),
     {"machine_type": "ct5lp-hightpu-8t"}),
    ("tpuTopology", TpuPool("tpu", "ct5lp-hightpu-4t", "2x2", 1, zone="us-central1-a"), {"topology": "2x4"}),
    ("placement", TpuPool("tpu", "ct5lp-hightpu-4t", "2x4", 2, zone="us-central1-a"), {"topology": "2x4"}),
    ("zone", TpuPool("tpu", "ct5lp-hightpu-4t", "2x2", 1, zone="us-central1-c"), {}),
], ids=lambda value: value if isinstance(value, str) else "")
def test_each_part_of_a_slice_shape_alone_forces_its_replacement(field, asked, live):
    """One field at a time, in a regional cluster whose pools name their zone: a zone moved, and nothing else,
    is a replacement too (a slice lives in one zone; GKE moves no pool)."""
    change = pool_change(spec(asked, location="us-central1"), live_pool(**live), nodes=1)
    assert change.action is Action.REPLACE, change.reason
    assert [f.path for f in change.field_changes if f.forces_replacement] == [field]
    assert change.reason.startswith(f"{field} ") and "cannot change in place" in change.reason


def test_a_field_someone_else_changed_after_the_plan_is_named_and_one_saxctl_set_or_did_not_touch_is_not():
    planned = cluster_change(spec(), live_cluster(channel="REGULAR"), cpu_nodes=3)  # REGULAR → RAPID, 3 → 2

    def now(channel, cpu_nodes, **fields):
        return cluster.observed_cluster("gke.cluster.saxml", "p-test", live_cluster(channel=channel, **fields),
                                        cpu_nodes)

    assert moved_since_plan(planned, now("REGULAR", 3, labels={**MARK, "team": "ml"})) == [], "not what it sets"
    assert moved_since_plan(planned, now("RAPID", 3)) == [], "saxctl's own first operation of the change"
    assert moved_since_plan(planned, now("STABLE", 5)) == ['cpuNodes.nodeCount: 3 → 5',
                                                           'releaseChannel: "REGULAR" → "STABLE"']
    creating = cluster_change(spec(), live_cluster(status="PROVISIONING"), cpu_nodes=None)
    assert moved_since_plan(creating, now("RAPID", 4)) == [], "a size the plan could not read yet is not compared"
    resize = pool_change(spec(), live_pool(), nodes=0)
    live = node_pool.observed_pool(resize.address, PATH, live_pool(), 3)
    assert moved_since_plan(resize, live) == ["nodeCount: 0 → 3"]


def test_labels_gke_or_others_added_are_kept_out_of_the_diff_and_a_missing_mark_is_an_update():
    assert cluster_change(spec(), live_cluster(labels={**MARK, "team": "ml"})).action is Action.NOOP
    unmarked = cluster_change(spec(), live_cluster(labels={"team": "ml"}))
    assert unmarked.action is Action.UPDATE
    assert {f.path for f in unmarked.field_changes} == {"resourceLabels.managed-by", "resourceLabels.saxctl-spec"}
    assert cluster.observed_cluster("a", "p-test", live_cluster(labels={"team": "ml"}), 2).owner is None


def test_an_object_still_being_created_is_waited_for_and_a_broken_one_made_again():
    waiting = cluster_change(spec(), live_cluster(status="PROVISIONING"), cpu_nodes=None)
    assert waiting.action is Action.UPDATE
    assert waiting.reason.startswith("cluster saxml is still being created by an earlier run: apply waits")
    broken = pool_change(spec(), live_pool(status="ERROR"), nodes=None)
    assert (broken.action, broken.reason) == (
        Action.REPLACE, "node pool tpu is in ERROR (stockout): it will be deleted and created again")
    going = pool_change(spec(), live_pool(status="STOPPING"), nodes=None)
    assert going.action is Action.REPLACE and "is being deleted" in going.reason


@pytest.mark.parametrize("action, pruned, status, needs_approval", [
    (Action.REPLACE, False, "RUNNING", True),
    (Action.DELETE, True, "RUNNING", True),
    (Action.DELETE, False, "RUNNING", False),
    (Action.REPLACE, False, "ERROR", False),
], ids=["replace", "pruned", "destroyed", "pool-in-error"])
def test_replacing_or_pruning_what_runs_needs_a_yes_by_name(action, pruned, status, needs_approval):
    cluster_resource, (pool_resource,) = resources(spec())
    observed_pool = node_pool.observed_pool(pool_resource.address, PATH, live_pool(status=status), 1)
    pool_hazard = node_pool.hazard(Change(pool_resource.address, pool_resource.kind, action, "r",
                                          desired=pool_resource, observed=observed_pool, pruned=pruned))
    assert pool_hazard.needs_approval is needs_approval
    if status == "RUNNING":
        assert "(ct5lp-hightpu-4t 2x2, 1 node(s)) stops every pod running on it" in pool_hazard.what
        observed_cluster = cluster.observed_cluster(cluster_resource.address, "p-test", live_cluster(), 2)
        cluster_hazard = cluster.hazard(Change(cluster_resource.address, cluster_resource.kind, action, "r",
                                               desired=cluster_resource, observed=observed_cluster, pruned=pruned))
        assert cluster_hazard.needs_approval is needs_approval
        assert cluster_hazard.what.startswith(f"deleting cluster {PATH} stops everything running on it: 3 node(s) "
                                              "in 1 pool(s) (default-pool)")


def test_gke_busy_with_another_operation_is_a_wait_not_an_error():
    from google.api_core.exceptions import BadRequest

    class Reply:
        def __init__(self, status):
            self.status = status

        def json(self):
            return {"error": {"status": self.status}}

    busy = BadRequest("Operation operation-1 is currently creating cluster saxml. Please wait and try again once it "
                      "is done.", response=Reply("FAILED_PRECONDITION"))
    incompatible = BadRequest("Cluster is running incompatible operation operation-2.",
                              response=Reply("FAILED_PRECONDITION"))
    invalid = BadRequest("Please wait and try again", response=Reply("INVALID_ARGUMENT"))
    assert [is_busy(error) for error in (busy, incompatible, invalid)] == [True, True, False]


def test_a_stockout_or_a_quota_failure_is_one_sentence_with_the_zone_and_what_to_try():
    where = Where("us-central1-a", "us-central1", "ct5lp-hightpu-4t")

    def failed(message):
        operation = container_v1.Operation(name="operation-1", operation_type="CREATE_NODE_POOL",
                                           status_message=message)
        operation.error.code, operation.error.message = 8, message
        return operation

    with pytest.raises(RemoteError) as stockout:
        check_done(failed("[GCE_STOCKOUT]: The zone 'projects/p/zones/us-central1-a' does not have enough resources"),
                   "gke.node_pool.tpu", where)
    assert stockout.value.message == ("gke.node_pool.tpu: us-central1-a has no ct5lp-hightpu-4t capacity free right "
                                      "now (stockout); apply again later, or move it to another zone that offers it")
    with pytest.raises(RemoteError) as quota:
        check_done(failed('Insufficient regional quota: resource "TPU_LITE_PODSLICE_V5": request requires more'),
                   "gke.node_pool.tpu", where)
    assert "the quota (TPU_LITE_PODSLICE_V5) of us-central1 does not cover" in quota.value.message
    check_done(container_v1.Operation(name="operation-2"), "gke.node_pool.tpu", where)  # no error: nothing raised


@pytest.mark.parametrize("action, live, nodes, chips", [
    (Action.CREATE, None, None, 8),
    (Action.REPLACE, "RUNNING", 1, 4),
    (Action.REPLACE, "ERROR", None, 8),
    (Action.UPDATE, "RUNNING", 0, 8),
], ids=["create", "replace-a-running-2x2", "replace-a-broken-one", "resize-from-0"])
def test_the_preflight_counts_the_chips_a_change_adds(action, live, nodes, chips):
    """A 2x4 slice holds 8 chips; a running 2x2 (4 chips) it replaces is deleted first and frees its own."""
    _, (pool,) = resources(spec(TpuPool("tpu", "ct5lp-hightpu-4t", "2x4", 2)))
    observed = None if live is None else node_pool.observed_pool(pool.address, PATH, live_pool(status=live), nodes)
    asked = list(_chips(Change(pool.address, pool.kind, action, "r", desired=pool, observed=observed)))
    assert sum(ask.chips for ask in asked) == chips
