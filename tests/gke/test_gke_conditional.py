"""Updates of GKE objects are conditional on what the plan read, through the real `saxctl` CLI on the sandbox: a change
made by someone else between the plan and the write is never overwritten.

A saved plan is refused when a cluster or pool it read moved; a live apply re-reads each object before each write,
stops the change when someone moved a field it sets, and sends the etag of that read (GKE answers ABORTED to a stale
one), so a change landing in between makes GKE refuse the write rather than saxctl overwrite it. Every wait here is on
a condition the request log or the emulator shows, never a clock.
"""

from __future__ import annotations

import time

import pytest
from cli_runner import Watched, saxctl, saxctl_background
from gke_support import SPECS, gcp_half, release

from google.cloud import container_v1

Channel = container_v1.ReleaseChannel.Channel
HELD = 600  # seconds: an operation that runs until the test releases it, whatever the machine's speed


def applied(spec, sandbox, *flags):
    run = saxctl("apply", "--auto-approve", *flags, str(spec), env=sandbox.env, timeout=240)
    assert run.code == 0, run.text
    return run


def set_channel(world, channel: str, **options):
    return world.client.update_cluster(name=f"{world.parent}/clusters/saxml", update=container_v1.ClusterUpdate(
        desired_release_channel=container_v1.ReleaseChannel(channel=Channel[channel])), timeout=10, **options)


@pytest.mark.parametrize("meanwhile", ["pool-resized", "channel-changed"])
def test_a_saved_plan_is_refused_when_the_cluster_or_a_pool_changed_after_it(meanwhile, sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("cpuNodes: {count: 2,", "cpuNodes: {count: 3,"))
    plan_file = tmp_path / "plan.json"
    planned = saxctl("plan", "-out", str(plan_file), str(spec), env=sandbox.env)
    assert planned.code == 0, planned.text
    assert "cpuNodes.nodeCount: 2 → 3" in planned.out

    if meanwhile == "pool-resized":  # someone resizes the pool the plan resizes
        world.wait(world.client.set_node_pool_size(request={
            "name": f"{world.parent}/clusters/saxml/nodePools/default-pool", "node_count": 5}, timeout=10))
    else:  # someone changes the cluster elsewhere: its etag moves
        world.wait(set_channel(world, "REGULAR"))
    world.reset_logs()
    refused = saxctl("apply", str(plan_file), env=sandbox.env)
    assert refused.code == 1, refused.text
    assert "the saved plan is stale: the world changed since it was made" in refused.err
    assert "gke.cluster.saxml" in refused.err and "Traceback" not in refused.text
    assert world.writes("gke") == [] and world.writes("compute") == [], "nothing written over the change"
    live = world.cluster("saxml")
    assert live.release_channel.channel.name == ("REGULAR" if meanwhile == "channel-changed" else "RAPID")


def _refused_as_busy(world) -> bool:
    return any(call["method_id"].endswith("clusters.update") and call["status"] == 400 for call in world.calls())


@pytest.mark.parametrize("meanwhile", ["labels-added", "channel-changed"])
def test_a_live_apply_whose_write_meets_a_stale_etag_stops_only_when_the_change_touched_what_it_sets(
        meanwhile, sandbox, world, tmp_path, operation_latency):
    """The apply plans `releaseChannel: REGULAR → RAPID` while another client's operation holds the cluster; its write
    waits for that operation (GKE runs one per cluster at a time), which moves the cluster's etag when it ends. The
    write with the etag read before is refused ABORTED; the apply reads the cluster again: labels someone added are
    not what it sets, so it writes again over the new etag (and keeps them); a release channel someone set is, so it
    stops, naming the field, and leaves it as that someone set it."""
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    world.wait(set_channel(world, "REGULAR"))
    operation_latency(SET_LABELS=HELD, UPDATE_CLUSTER=HELD)  # held until the test releases it
    cluster = world.cluster("saxml")
    if meanwhile == "labels-added":
        holding = world.client.set_labels(request=container_v1.SetLabelsRequest(
            name=f"{world.parent}/clusters/saxml", resource_labels={**cluster.resource_labels, "team": "ml"},
            label_fingerprint=cluster.label_fingerprint), timeout=10)
    else:
        holding = set_channel(world, "STABLE")
    operation_latency(UPDATE_CLUSTER=0.2)  # saxctl's own update, once it may run
    world.reset_logs()
    with Watched(saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)) as running:
        deadline = time.monotonic() + 120
        while not _refused_as_busy(world):  # saxctl planned and tried its write: refused while `holding` runs
            assert time.monotonic() < deadline and running.process.poll() is None, "saxctl never tried its update"
            time.sleep(0.05)
        release(sandbox, world, holding)
        code, out, err = running.finish(timeout=120)
    updates = [(call["status"], call["fault"]) for call in world.calls() if call["method_id"].endswith("clusters.update")]
    assert (409, None) in updates, f"the write with the etag read before the other change was refused: {updates}"
    live = world.cluster("saxml")
    if meanwhile == "labels-added":
        assert code == 0, out + err
        assert updates[-1] == (200, None)
        assert live.release_channel.channel.name == "RAPID" and live.resource_labels["team"] == "ml"
        plan = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
        assert plan.code == 0, plan.text
    else:
        assert code == 1, out + err
        assert ('gke.cluster.saxml: projects/{p}/locations/us-central1-a/clusters/saxml changed since the plan '
                '(releaseChannel: "REGULAR" → "STABLE"): saxctl did not overwrite it').format(p=world.project) in err
        assert "Traceback" not in out + err
        assert live.release_channel.channel.name == "STABLE", "what someone else set stays"
        assert [status for status, _ in updates].count(200) == 0, "no update was carried out"


def test_a_resize_that_meets_someone_elses_resize_stops_without_overwriting_it(sandbox, world, tmp_path,
                                                                             operation_latency):
    """setSize takes no etag (container v1): the apply checks the pool against the plan before each attempt, also
    after waiting out the operation that held the cluster, which here resized the same pool."""
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    applied(spec, sandbox)
    pool = f"{world.parent}/clusters/saxml/nodePools/tpu"
    world.wait(world.client.set_node_pool_size(request={"name": pool, "node_count": 0}, timeout=10))
    operation_latency(SET_NODE_POOL_SIZE=HELD)
    holding = world.client.set_node_pool_size(request={"name": pool, "node_count": 2}, timeout=10)
    operation_latency(SET_NODE_POOL_SIZE=0.2)
    world.reset_logs()
    with Watched(saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env)) as running:
        deadline = time.monotonic() + 120
        while not any(call["method_id"].endswith("nodePools.setSize") and call["status"] == 400
                      for call in world.calls()):  # planned 0 → 1, and refused while `holding` runs
            assert time.monotonic() < deadline and running.process.poll() is None, "saxctl never tried its resize"
            time.sleep(0.05)
        release(sandbox, world, holding)
        code, out, err = running.finish(timeout=120)
    assert code == 1, out + err
    assert "~ gke.node_pool.tpu update  # nodeCount: 0 → 1" in out
    assert (f"gke.node_pool.tpu: {pool} changed since the plan (nodeCount: 0 → 2): saxctl did not overwrite it"
            in err)
    assert [call["status"] for call in world.calls() if call["method_id"].endswith("nodePools.setSize")] == [400]
    replanned = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert replanned.code == 2 and "nodeCount: 2 → 1" in replanned.out, "the size someone else set stays"
