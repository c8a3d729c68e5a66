"""GKE's node pools as Compute sees them, through the real clients: each pool a managed instance group per zone whose
targetSize follows setSize, TPU chips of pools made or being made in the region's quota usage, and a pool moved to
another machine type in place. The instance group replies are checked against compute.v1's discovery document."""

import time

import pytest
import requests
from contract import Discovery
from google.api_core import exceptions
from google.cloud import container_v1

LOCATION = "us-central1-a"


@pytest.fixture
def gke(sandbox):
    return sandbox.gke_client()


def wait(gke, parent: str, operation):
    deadline = time.monotonic() + 30
    while operation.status != container_v1.Operation.Status.DONE:
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)
        operation = gke.get_operation(name=f"{parent}/operations/{operation.name}", timeout=10)
    return operation


def instance_group(sandbox, url: str) -> requests.Response:
    path = url.split("/compute/v1/", 1)[1]
    return requests.get(f"{sandbox.env['SAXCTL_COMPUTE_ENDPOINT']}/compute/v1/{path}", timeout=10)


def tpu_quota(sandbox, project: str) -> dict:
    region = sandbox.regions_client().get(project=project, region="us-central1", timeout=10)
    return next({"limit": quota.limit, "usage": quota.usage} for quota in region.quotas
                if quota.metric == "TPU_LITE_PODSLICE_V5")


def test_a_pool_is_an_instance_group_whose_size_follows_set_size_and_holds_quota(gke, sandbox, unique_project):
    project = unique_project()
    parent = f"projects/{project}/locations/{LOCATION}"
    cluster = f"{parent}/clusters/saxml"
    assert tpu_quota(sandbox, project) == {"limit": 32.0, "usage": 0.0}
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=container_v1.Cluster(
        name="saxml", node_pools=[container_v1.NodePool(name="default-pool", initial_node_count=2, config=(
            container_v1.NodeConfig(machine_type="e2-standard-4")))]), timeout=10))
    creating = gke.create_node_pool(parent=cluster, node_pool=container_v1.NodePool(
        name="tpu", initial_node_count=2, config=container_v1.NodeConfig(machine_type="ct5lp-hightpu-4t"),
        placement_policy=container_v1.NodePool.PlacementPolicy(tpu_topology="2x4")), timeout=10)
    (url,) = gke.get_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10).instance_group_urls
    assert gke.get_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10).status.name == "PROVISIONING"
    assert instance_group(sandbox, url).json()["targetSize"] == 2, "GKE makes the groups while it creates the pool"
    assert tpu_quota(sandbox, project)["usage"] == 8.0, "the machines being created count in quota usage"
    wait(gke, parent, creating)

    reply = instance_group(sandbox, url)
    assert Discovery.load("compute", "v1").check_response("compute.instanceGroupManagers.get", reply.json()) == []
    assert (reply.json()["targetSize"], reply.json()["name"]) == (2, url.rsplit("/", 1)[1])
    assert tpu_quota(sandbox, project) == {"limit": 32.0, "usage": 8.0}, "two hosts of 4 v5e chips"
    wait(gke, parent, gke.set_node_pool_size(request={"name": f"{cluster}/nodePools/tpu", "node_count": 0},
                                             timeout=10))
    assert instance_group(sandbox, url).json()["targetSize"] == 0
    assert tpu_quota(sandbox, project)["usage"] == 0.0


def test_a_cpu_pool_moves_to_another_machine_type_in_place_but_a_tpu_pool_does_not(gke, sandbox, unique_project):
    parent = f"projects/{unique_project()}/locations/{LOCATION}"
    cluster = f"{parent}/clusters/saxml"
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=container_v1.Cluster(
        name="saxml", node_pools=[container_v1.NodePool(name="default-pool", initial_node_count=1, config=(
            container_v1.NodeConfig(machine_type="e2-standard-4")))]), timeout=10))
    pool = gke.get_node_pool(name=f"{cluster}/nodePools/default-pool", timeout=10)
    wait(gke, parent, gke.update_node_pool(request=container_v1.UpdateNodePoolRequest(
        name=f"{cluster}/nodePools/default-pool", node_version=pool.version, image_type=pool.config.image_type,
        machine_type="e2-standard-8"), timeout=10))
    assert gke.get_node_pool(name=f"{cluster}/nodePools/default-pool", timeout=10).config.machine_type == \
        "e2-standard-8"
    nodes = [node for node in sandbox.control("GET", "gke", "nodes")["nodes"] if node["cluster"] == cluster]
    assert [node["capacity"]["cpu"] for node in nodes] == ["8"]
    with pytest.raises(exceptions.BadRequest, match="machine type of a TPU node pool in place is not emulated"):
        gke.update_node_pool(request=container_v1.UpdateNodePoolRequest(
            name=f"{cluster}/nodePools/default-pool", node_version=pool.version, image_type=pool.config.image_type,
            machine_type="ct5lp-hightpu-4t"), timeout=10)
