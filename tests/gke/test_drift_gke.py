"""`saxctl drift` through the CLI on the sandbox's GKE: node counts set back; a slice's machine type changed elsewhere
is reported and left until --allow-replace names it."""

from __future__ import annotations

from cli_runner import drift_report, saxctl
from gke_support import SPECS, gcp_half


def drift(spec, sandbox, *flags):
    return saxctl("drift", *flags, str(spec), env=sandbox.env, timeout=240)


def entries(run) -> dict[tuple[str, str], dict]:
    return {(entry["address"], entry["field"]): entry for entry in drift_report(run)["drifts"]}


def test_cpu_node_count_and_tpu_pool_size_are_detected_and_corrected(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env, timeout=240).code == 0
    cluster = f"{world.parent}/clusters/saxml"
    world.wait(world.client.set_node_pool_size(request={"name": f"{cluster}/nodePools/default-pool", "node_count": 3}))
    world.wait(world.client.set_node_pool_size(request={"name": f"{cluster}/nodePools/tpu", "node_count": 0}))

    reported = drift(spec, sandbox, "--json")
    assert reported.code == 2, reported.text
    found = entries(reported)
    assert {key: (e["desired"], e["live"], e["outcome"]) for key, e in found.items()} == {
        ("gke.cluster.saxml", "cpuNodes.nodeCount"): (2, 3, "reported"),
        ("gke.node_pool.tpu", "nodeCount"): (1, 0, "reported")}

    world.reset_logs()
    corrected = drift(spec, sandbox, "--correct", "--json")
    assert corrected.code == 0, corrected.text
    assert {e["outcome"] for e in entries(corrected).values()} == {"corrected"}
    assert [call["method_id"].rsplit(".", 2)[-2:] for call in world.calls() if call["read"] is False] == [
        ["nodePools", "setSize"], ["nodePools", "setSize"]], "each pool resized back"
    assert drift(spec, sandbox).code == 0, "nothing drifted any more"


def test_a_slice_whose_machine_type_changed_elsewhere_is_left_until_allowed(sandbox, world, tmp_path):
    from google.cloud import container_v1

    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env, timeout=240).code == 0
    cluster = f"{world.parent}/clusters/saxml"
    live = world.client.get_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10)
    world.wait(world.client.delete_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10))
    other = container_v1.NodePool(name="tpu", initial_node_count=1, locations=list(live.locations),
                                  config=container_v1.NodeConfig(machine_type="ct5lp-hightpu-8t",
                                                                 resource_labels=dict(live.config.resource_labels)),
                                  placement_policy=container_v1.NodePool.PlacementPolicy(tpu_topology="2x4"))
    world.wait(world.client.create_node_pool(parent=cluster, node_pool=other, timeout=10))

    left = drift(spec, sandbox, "--correct", "--json")
    assert left.code == 2, left.text
    machine = entries(left)[("gke.node_pool.tpu", "machineType")]
    assert (machine["desired"], machine["live"], machine["outcome"]) == (
        "ct5lp-hightpu-4t", "ct5lp-hightpu-8t", "left")
    assert machine["why"].startswith("needs --allow-replace gke.node_pool.tpu")
    pool = world.client.get_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10)
    assert pool.config.machine_type == "ct5lp-hightpu-8t", "an unsafe change is not made without its flag"

    replaced = drift(spec, sandbox, "--correct", "--allow-replace", "gke.node_pool.tpu")
    assert replaced.code == 0, replaced.text
    pool = world.client.get_node_pool(name=f"{cluster}/nodePools/tpu", timeout=10)
    assert pool.config.machine_type == "ct5lp-hightpu-4t"
