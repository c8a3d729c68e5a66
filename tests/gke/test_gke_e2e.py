"""The GKE provider through the real `saxctl` CLI on the sandbox: the GCP half of every spec of specs/ from nothing to
no changes, drift repaired, chaos, a run killed mid-create, preflight refusals, stockouts, replacements and prunes.

Counts come from the emulators' request logs, never from saxctl's own output.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from ruamel.yaml import YAML
from cli_runner import Watched, saxctl, saxctl_background
from gke_support import CLUSTER_SPECS, SPECS, gcp_half, release

HELD = 600  # seconds: an operation that runs until the test releases it (release), whatever the machine's speed


def applied(spec, sandbox, *flags, env=None):
    run = saxctl("apply", "--auto-approve", *flags, str(spec), env={**sandbox.env, **(env or {})}, timeout=240)
    assert run.code == 0, run.text
    return run


def no_changes(spec, sandbox):
    run = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert run.code == 0, run.text
    assert "No changes." in run.out


def cluster_name(spec) -> str:
    return YAML(typ="safe").load(spec.read_text())["cluster"]["name"]


@pytest.mark.parametrize("source", CLUSTER_SPECS, ids=lambda path: path.stem)
def test_every_spec_from_nothing_to_no_changes_even_after_an_auto_upgrade(source, sandbox, world, tmp_path):
    spec = gcp_half(source, tmp_path, world.project)
    name = cluster_name(spec)
    world.reset_logs()
    first = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert first.code == 2, first.text
    assert f"+ gke.cluster.{name} create  # cluster {name} does not exist" in first.out
    assert f"gke.cluster.{name} does not exist yet: created after it" in first.out
    assert [call["path"] for call in world.calls() if "/nodePools" in call["path"]] == [], \
        "nothing is read inside a cluster that does not exist"
    assert world.writes("gke") == [] and world.writes("compute") == []

    applied(spec, sandbox)
    live = world.cluster(name)
    assert (live.status.name, live.release_channel.channel.name) == ("RUNNING", "RAPID")
    assert live.workload_identity_config.workload_pool == f"{world.project}.svc.id.goog"
    assert live.resource_labels["managed-by"] == "saxctl"
    tpu = [pool for pool in live.node_pools if pool.name != "default-pool"]
    assert [pool.config.machine_type for pool in tpu] == ["ct5lp-hightpu-4t"]
    nodes = 2 if "2x4" in source.name else 1
    assert tpu[0].initial_node_count == nodes and tpu[0].placement_policy.tpu_topology == ("2x4" if nodes == 2 else "2x2")
    assert tpu[0].placement_policy.type_.name == ("COMPACT" if nodes == 2 else "TYPE_UNSPECIFIED")
    assert len(world.handled("clusters.create")) == 1 and len(world.handled("nodePools.create")) == 1
    no_changes(spec, sandbox)

    upgrade = sandbox.control("POST", "gke", "auto-upgrade", {"cluster": f"{world.parent}/clusters/{name}"})
    world.wait(world.client.get_operation(name=f"{world.parent}/operations/{upgrade['name']}", timeout=10))
    assert world.cluster(name).current_master_version != live.current_master_version
    no_changes(spec, sandbox)


def test_out_of_band_resize_and_release_channel_are_shown_exactly_and_repaired(sandbox, world, tmp_path):
    from google.cloud import container_v1

    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    cluster = f"{world.parent}/clusters/saxml"
    world.wait(world.client.set_node_pool_size(request={"name": f"{cluster}/nodePools/default-pool", "node_count": 3}))
    world.wait(world.client.set_node_pool_size(request={"name": f"{cluster}/nodePools/tpu", "node_count": 0}))
    world.wait(world.client.update_cluster(name=cluster, update=container_v1.ClusterUpdate(
        desired_release_channel=container_v1.ReleaseChannel(channel=container_v1.ReleaseChannel.Channel.REGULAR))))

    drifted = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert drifted.code == 2, drifted.text
    changed = [line.strip() for line in drifted.out.splitlines() if line.startswith(("  ~", "  +", "  -"))]
    assert changed == ['~ gke.cluster.saxml update  # cpuNodes.nodeCount: 3 → 2; releaseChannel: "REGULAR" → "RAPID"',
                       "~ gke.node_pool.tpu update  # nodeCount: 0 → 1"]

    world.reset_logs()
    applied(spec, sandbox)
    assert [call["method_id"].rsplit(".", 2)[-2:] for call in world.calls() if call["read"] is False] == [
        ["clusters", "update"], ["nodePools", "setSize"], ["nodePools", "setSize"]]
    live = world.cluster("saxml")
    assert live.release_channel.channel.name == "RAPID"
    no_changes(spec, sandbox)


def test_twenty_percent_429_and_503_on_gke_and_compute_converge_without_a_duplicate_create(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x4-multihost.yaml", tmp_path, world.project)
    # The first cluster create happens but its reply is lost: the case that makes a naive create run twice.
    lost = sandbox.inject_fault("gke", method="POST", path=f"/{world.parent}/clusters$", status=503, after_commit=True,
                                count=1)
    for emulator in ("gke", "compute"):
        sandbox.inject_fault(emulator, status=503, probability=0.1, seed=15)
        sandbox.inject_fault(emulator, status=429, probability=0.1, seed=16, retry_after=0.05)
    world.reset_logs()
    applied(spec, sandbox)  # retries are budgeted by time: no count to raise for a chaos run
    plan_again = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    calls = world.calls("gke") + world.calls("compute")
    sandbox.clear_faults("gke")
    sandbox.clear_faults("compute")
    assert plan_again.code == 0, plan_again.text
    injected = [call for call in calls if call["fault"] not in (None, lost["id"])]
    # About 40 calls at 20%: none faulted would be a 1-in-7000 draw (the seeds replay a run given its project name).
    assert injected, f"no fault was injected in {len(calls)} calls of {world.project}"
    reached = [call for call in calls if call["method_id"].endswith("clusters.create")  # not refused before it ran
               and call["fault"] in (None, lost["id"])]
    assert [call["fault"] for call in reached] == [lost["id"]], "the create whose reply was lost, and no second call"
    assert [call["status"] for call in world.handled("nodePools.create")] == [200]
    assert [op.operation_type.name for op in world.operations()] == ["CREATE_CLUSTER", "CREATE_NODE_POOL"]


def test_a_run_killed_during_cluster_creation_is_resumed_on_the_same_operation(sandbox, world, tmp_path,
                                                                               operation_latency, gcs_client):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    operation_latency(CREATE_CLUSTER=HELD)
    first = saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)
    deadline = time.monotonic() + 60
    while not world.handled("clusters.create"):
        assert time.monotonic() < deadline and first.poll() is None, "the first apply never created the cluster"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    (creating,) = world.operations("CREATE_CLUSTER")
    assert creating.status.name != "DONE"

    admin = f"{world.project}-sax-admin"
    lock_id = json.loads(gcs_client.bucket(admin).blob("saxctl/lock.json").download_as_bytes())["id"]
    assert saxctl("force-unlock", lock_id, str(spec), env=sandbox.env).code == 0
    with Watched(saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)) as resumed:
        resumed.wait_for(f"resuming: {creating.name} (CREATE_CLUSTER) is already under way")
        release(sandbox, world, creating)
        code, out, err = resumed.finish(timeout=240)
    assert code == 0, out + err
    assert "cluster saxml is still being created by an earlier run: apply waits for that operation" in out
    assert len(world.handled("clusters.create")) == 1, "exactly one create call in the request log"
    assert world.handled("setSize") == [], "the nodes it was created with are the spec's: no resize"
    assert [op.name for op in world.operations("CREATE_CLUSTER")] == [creating.name]
    no_changes(spec, sandbox)


@pytest.mark.parametrize("case", ["zone-without-v5e", "quota-too-small"])
def test_a_preflight_failure_is_refused_at_plan_time_with_zero_writes(case, sandbox, world, tmp_path):
    if case == "zone-without-v5e":
        spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project,
                        edit=lambda text: text.replace("location: us-central1-a ", "location: us-central1-b "))
        expected = (f"{spec}:16:32: cluster.tpuPools[0].machineType: us-central1-b does not offer ct5lp-hightpu-4t "
                    "(TPU v5e); zones that do: us-central1-a, ")
    else:
        spec = gcp_half(SPECS / "gptj-v5e-2x4-multihost.yaml", tmp_path, world.project)
        sandbox.control("POST", "compute", "quotas", {"region": "us-central1", "metric": "TPU_LITE_PODSLICE_V5",
                                                      "limit": 6, "usage": 2, "project": world.project})
        expected = (f"{spec}:17:7: cluster.tpuPools[0]: us-central1-a: TPU v5e chips quota 4 of 8 free "
                    "(TPU_LITE_PODSLICE_V5 in us-central1: limit 6, 2 in use); request more or pick another zone")
    world.reset_logs()
    for command in ("plan", "apply"):
        refused = saxctl(command, "--auto-approve", str(spec), env=sandbox.env) if command == "apply" else \
            saxctl(command, str(spec), env=sandbox.env)
        assert refused.code == 1, refused.text
        assert expected in refused.text
        assert "Traceback" not in refused.text
    assert world.writes("gke") == [] and world.writes("compute") == [] and world.writes("gcs") == []
    assert [call for call in world.calls("gke") if call["read"] is False] == [], "not one write even tried"


def test_a_stockout_is_one_sentence_and_the_next_apply_makes_the_broken_pool_again(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    sandbox.control("POST", "gke", "operation-failures", {"operationType": "CREATE_NODE_POOL", "kind": "stockout"})
    try:
        failed = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    finally:
        sandbox.control("DELETE", "gke", "operation-failures")
    assert failed.code == 1, failed.text
    assert ("gke.node_pool.tpu: us-central1-a has no ct5lp-hightpu-4t capacity free right now (stockout); apply again "
            "later, or move it to another zone that offers it") in failed.err

    replanned = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert replanned.code == 2
    assert "-/+ gke.node_pool.tpu replace  # node pool tpu is in ERROR" in replanned.out
    applied(spec, sandbox)
    assert world.cluster("saxml").node_pools[1].status.name == "RUNNING"
    no_changes(spec, sandbox)


def test_a_new_slice_shape_is_a_replacement_refused_until_allowed_by_name(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("topology: 2x2, nodes: 1", "topology: 2x4, nodes: 2"))
    world.reset_logs()
    refused = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert refused.code == 1
    assert ('-/+ gke.node_pool.tpu replace  # tpuTopology "2x2" → "2x4" cannot change in place: the node pool will be '
            "deleted and created again") in refused.out
    assert 'placement: (none) → "COMPACT" (forces replacement)' in refused.out
    assert "stops every pod running on it" in refused.out
    assert "rerun with --allow-replace gke.node_pool.tpu to replace it anyway" in refused.err
    assert world.writes("gke") == []

    replaced = applied(spec, sandbox, "--allow-replace", "gke.node_pool.tpu")
    assert "agreed: --allow-replace gke.node_pool.tpu" in replaced.out
    pool = world.client.get_node_pool(name=f"{world.parent}/clusters/saxml/nodePools/tpu", timeout=10)
    assert (pool.placement_policy.tpu_topology, pool.placement_policy.type_.name) == ("2x4", "COMPACT")
    no_changes(spec, sandbox)


def test_a_slice_moved_to_another_zone_alone_is_a_replacement_refused_until_allowed_by_name(sandbox, world,
                                                                                             tmp_path):
    """A regional cluster in us-east5 (v5e in each of its zones): only the pool's zone changes."""
    east = lambda text: text.replace("region: us-central1", "region: us-east5").replace(  # noqa: E731
        "location: us-central1-a ", "location: us-east5       ").replace("nodes: 1}", "nodes: 1, zone: us-east5-a}")
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project, edit=east)
    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("zone: us-east5-a}", "zone: us-east5-b}"))
    world.reset_logs()
    refused = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert refused.code == 1, refused.text
    changed = [line.strip() for line in refused.out.splitlines() if line.startswith(("  ~", "  +", "  -"))]
    assert changed == ['-/+ gke.node_pool.tpu replace  # zone "us-east5-a" → "us-east5-b" cannot change in place: '
                       "the node pool will be deleted and created again"]
    assert "rerun with --allow-replace gke.node_pool.tpu to replace it anyway" in refused.out
    assert world.writes("gke") == []

    applied(spec, sandbox, "--allow-replace", "gke.node_pool.tpu")
    world.location = "us-east5"
    pool = world.client.get_node_pool(name=f"{world.parent}/clusters/saxml/nodePools/tpu", timeout=10)
    assert list(pool.locations) == ["us-east5-b"]
    no_changes(spec, sandbox)


def test_a_slice_that_left_the_spec_is_pruned_only_when_allowed(sandbox, world, tmp_path):
    two = lambda text: text.replace(  # noqa: E731
        "    - {name: tpu, machineType: ct5lp-hightpu-4t, topology: 2x2, nodes: 1}\n",
        "    - {name: tpu, machineType: ct5lp-hightpu-4t, topology: 2x2, nodes: 1}\n"
        "    - {name: tpu-small, machineType: ct5lp-hightpu-1t, topology: 1x1, nodes: 1}\n")
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project, edit=two)
    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("    - {name: tpu-small, machineType: ct5lp-hightpu-1t, topology: 1x1, "
                                             "nodes: 1}\n", ""))
    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1
    assert (f"- gke.node_pool.tpu-small delete  # no longer in the spec: {world.parent}/clusters/saxml/nodePools/"
            "tpu-small will be deleted") in blocked.out
    assert "rerun with --allow-delete gke.node_pool.tpu-small" in blocked.err
    applied(spec, sandbox, "--allow-delete", "gke.node_pool.tpu-small")
    assert [pool.name for pool in world.cluster("saxml").node_pools] == ["default-pool", "tpu"]
    no_changes(spec, sandbox)


def test_a_cluster_saxctl_did_not_create_is_a_conflict_until_adopted(sandbox, world, tmp_path):
    from google.cloud import container_v1

    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    world.wait(world.client.create_cluster(parent=world.parent, cluster=container_v1.Cluster(
        name="saxml", release_channel=container_v1.ReleaseChannel(channel=container_v1.ReleaseChannel.Channel.RAPID),
        workload_identity_config=container_v1.WorkloadIdentityConfig(workload_pool=f"{world.project}.svc.id.goog"),
        resource_labels={"team": "ml"}, node_pools=[container_v1.NodePool(
            name="default-pool", initial_node_count=2, config=container_v1.NodeConfig(machine_type="e2-standard-4"))]),
        timeout=10))
    conflict = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert conflict.code == 1
    assert (f"{world.parent}/clusters/saxml exists but saxctl did not create it (it carries no saxctl ownership "
            "mark); rerun with --adopt to take it over") in conflict.out
    assert [pool.name for pool in world.cluster("saxml").node_pools] == ["default-pool"], "nothing was created in it"

    applied(spec, sandbox, "--adopt")
    live = world.cluster("saxml")
    assert dict(live.resource_labels) == {"team": "ml", "managed-by": "saxctl", "saxctl-spec": "gptj-demo"}
    assert [pool.name for pool in live.node_pools] == ["default-pool", "tpu"]
    no_changes(spec, sandbox)


def test_a_regional_cluster_has_cpu_nodes_in_each_zone_and_its_slice_in_the_zone_named(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project, edit=lambda text: text.replace(
        "location: us-central1-a ", "location: us-central1   ").replace("nodes: 1}", "nodes: 1, zone: us-central1-a}"))
    applied(spec, sandbox)
    world.location = "us-central1"
    live = world.cluster("saxml")
    cpu, tpu = live.node_pools
    assert (list(cpu.locations), len(cpu.instance_group_urls)) == (["us-central1-a", "us-central1-b", "us-central1-c"], 3)
    assert list(tpu.locations) == ["us-central1-a"], "the only zone of us-central1 with v5e"
    no_changes(spec, sandbox)


def test_ctrl_c_twice_during_a_create_names_its_operation_and_the_next_apply_resumes_it(sandbox, world, tmp_path,
                                                                                        operation_latency):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    operation_latency(CREATE_CLUSTER=HELD)
    with Watched(saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)) as running:
        deadline = time.monotonic() + 60
        while not world.handled("clusters.create") or not world.handled("operations.get"):
            assert time.monotonic() < deadline and running.process.poll() is None, "it never waited on its create"
            time.sleep(0.1)
        running.process.send_signal(signal.SIGINT)
        running.wait_for("Interrupted: no new change will start")  # the first Ctrl-C is taken: now the second
        running.process.send_signal(signal.SIGINT)
        code, out, err = running.finish(timeout=30)
    assert code == 130, out + err
    (creating,) = world.operations("CREATE_CLUSTER")
    assert f"gke.cluster.saxml: creating — {creating.name} (CREATE_CLUSTER) runs remotely" in err
    assert creating.status.name != "DONE", "it goes on without saxctl"

    with Watched(saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)) as resumed:  # lock freed
        resumed.wait_for(f"resuming: {creating.name} (CREATE_CLUSTER) is already under way")
        release(sandbox, world, creating)
        code, out, err = resumed.finish(timeout=240)
    assert code == 0, out + err
    assert len(world.handled("clusters.create")) == 1
    no_changes(spec, sandbox)


def four_chip_quota(sandbox, world) -> None:
    """The region's TPU v5e quota of this test's project: 4 chips, one 2x2 slice."""
    sandbox.control("POST", "compute", "quotas", {"region": "us-central1", "metric": "TPU_LITE_PODSLICE_V5",
                                                  "limit": 4, "usage": 0, "project": world.project})


def test_a_slice_renamed_under_a_quota_it_fills_is_deleted_before_its_successor_takes_the_chips(sandbox, world,
                                                                                               tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    four_chip_quota(sandbox, world)
    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("- {name: tpu,", "- {name: a-tpu,"))  # created first without an order

    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1
    assert "quota" not in blocked.text, "the chips of the slice it deletes are free for the new one"
    assert "+ gke.node_pool.a-tpu create" in blocked.out
    assert "rerun with --allow-delete gke.node_pool.tpu to delete it anyway" in blocked.err

    world.reset_logs()
    applied(spec, sandbox, "--allow-delete", "gke.node_pool.tpu")
    writes = [(call["method_id"].rsplit(".", 2)[-2:], call["status"]) for call in world.calls() if not call["read"]]
    assert writes == [(["nodePools", "delete"], 200), (["nodePools", "create"], 200)], \
        "the create is sent once the delete is done: never refused for an operation under way"
    assert [pool.name for pool in world.cluster("saxml").node_pools] == ["default-pool", "a-tpu"]
    no_changes(spec, sandbox)


def test_a_slice_an_interrupted_apply_left_provisioning_is_not_counted_twice_against_the_quota(
        sandbox, world, tmp_path, operation_latency, gcs_client):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    four_chip_quota(sandbox, world)
    operation_latency(CREATE_NODE_POOL=20)
    first = saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)
    deadline = time.monotonic() + 90
    while not world.handled("nodePools.create"):
        assert time.monotonic() < deadline and first.poll() is None, "the first apply never created the slice"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert world.client.get_node_pool(name=f"{world.parent}/clusters/saxml/nodePools/tpu",
                                      timeout=10).status.name == "PROVISIONING"
    region = sandbox.regions_client().get(project=world.project, region="us-central1", timeout=10)
    assert [quota.usage for quota in region.quotas if quota.metric == "TPU_LITE_PODSLICE_V5"] == [4.0], \
        "its machines, being created, count in the quota's usage"

    admin = f"{world.project}-sax-admin"
    lock_id = json.loads(gcs_client.bucket(admin).blob("saxctl/lock.json").download_as_bytes())["id"]
    assert saxctl("force-unlock", lock_id, str(spec), env=sandbox.env).code == 0
    resumed = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert resumed.code == 2, resumed.text
    assert "node pool tpu is still being created by an earlier run: apply waits for that operation" in resumed.out
    applied(spec, sandbox)
    assert len(world.handled("nodePools.create")) == 1
    no_changes(spec, sandbox)


def test_a_removed_cluster_section_prunes_its_cluster_only_when_allowed(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    text = spec.read_text()
    spec.write_text(text[:text.index("cluster:\n")] + text[text.index("buckets:\n"):])

    world.reset_logs()
    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1, blocked.text
    assert (f"- gke.cluster.saxml delete  # no longer in the spec: {world.parent}/clusters/saxml will be deleted"
            in blocked.out)
    assert "rerun with --allow-delete gke.cluster.saxml to delete it anyway" in blocked.err
    assert world.writes("gke") == []

    applied(spec, sandbox, "--allow-delete", "gke.cluster.saxml")
    assert list(world.client.list_clusters(parent=world.parent, timeout=10).clusters) == []
    no_changes(spec, sandbox)


def test_a_removed_identity_section_prunes_its_iam_objects_and_what_it_made_in_the_cluster(sandbox, world, tmp_path):
    from kubernetes import client as kube

    own = lambda text: text.replace("name: gptj-demo", f"name: {world.project}").replace(  # noqa: E731
        "name: sax-sa}", f"name: {world.project}}}")  # objects of its own in the sandbox's one apiserver
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project, edit=own)
    applied(spec, sandbox)
    record = f"saxctl-{world.project}"
    with sandbox.kube_api_client() as api:
        assert kube.CoreV1Api(api).read_namespaced_config_map(record, "default").metadata.name == record
    text = spec.read_text()
    spec.write_text(text[:text.index("identity:\n")])

    pruned = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert pruned.code == 2, pruned.text
    assert sorted(line.split("#")[0].strip() for line in pruned.out.splitlines() if line.startswith("  - ")) == [
        "- iam.project_binding.roles/storage.admin delete", "- iam.service_account.sax-iam-sa delete",
        f"- iam.workload_identity.default/{world.project} delete", f"- kubernetes.applyset.default/{record} delete",
        f"- kubernetes.service_account.default/{world.project} delete"], pruned.out
    applied(spec, sandbox)
    with sandbox.kube_api_client() as api:
        core = kube.CoreV1Api(api)
        assert [m.metadata.name for m in core.list_config_map_for_all_namespaces(
            label_selector=f"saxctl-spec={world.project}").items] == []
        assert [m.metadata.name for m in core.list_service_account_for_all_namespaces(
            label_selector=f"saxctl-spec={world.project}").items] == []
    no_changes(spec, sandbox)
