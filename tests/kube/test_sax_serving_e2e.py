"""A published model while its model server is slow, killed or replaced, through the CLI against the sandbox: apply
waits and says how many replicas have loaded; `status` says when a model is not served and why, and exits 2 with
--detailed-exitcode; the plan then shows the repair, and apply restarts the Sax admin, which loads the model again.

The model server is the pod runner's stand-in for the model server's pod: killed as a container dies (kill -9 of the
process the runner started for it, which the runner restarts in the same pod, as a kubelet does), or its pod deleted
through the apiserver (the Deployment makes a new one). Sax's admin keeps a model assigned to a server that rejoins
at the same address, and counts it loaded, though the restarted process holds nothing (admin/mgr.go Join: a known
server is "healthy"); only the server itself says the truth (sax.Modelet/GetStatus), and that is what saxctl reads.
"""

from __future__ import annotations

import os
import re
import signal
import urllib.request

import pytest
from cli_runner import Watched, drift_report, saxctl, saxctl_background
from kube_testkit import wait_for
from model_world import MODEL, ModelWorld, open_when_listening

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(600)]
RECOVERY_S = 240.0  # the admin drops a silent server after 25 s and assigns at its next 10 s refresh; then a load
LOAD_DELAY_S = 12  # a slow load: more than two of apply's 5 s WaitForReady rounds
KILLED_LOAD_DELAY_S = 45  # ample time, after the kill, for a plan to see the load under way
# The model's row and the lines its long NOW column folds onto (they start with blanks).
MODEL_ROW = re.compile(rf"^sax\.model\.{MODEL} .*(?:\n[ ]+\S.*)*", re.MULTILINE)


def model_row(world: ModelWorld) -> tuple[int, str]:
    """`saxctl status --detailed-exitcode`: its exit code and the model's row (the table's lines joined)."""
    shown = world.saxctl("status", "--detailed-exitcode", env_overrides={"COLUMNS": "3000"})  # one line a row
    assert shown.code in (0, 2), shown.text
    row = MODEL_ROW.search(shown.out)
    assert row, shown.out
    return shown.code, " ".join(row.group(0).split())


def served(world: ModelWorld):
    """The model's answer to a prompt through `saxctl generate`, or None while it does not answer."""
    generated = world.generate("The capital of France is")
    return generated.out if generated.code == 0 else None


def in_sync_and_serving(world: ModelWorld):
    code, row = model_row(world)
    return row if code == 0 and "1 requested, 1 assigned, 1 loaded" in row and "not all serving" not in row else None


def slow_next_load(world: ModelWorld, delay_s: float) -> None:
    """Everything but the model applied (the model server has joined, idle); then the model server's next load takes
    delay_s (a rule on the stand-in's control port, the API port + 1000, at the pod's IP), and the spec has the model."""
    world.write_models([])
    world.apply()
    [pod] = world.model_server_pods()
    slow = urllib.request.Request(f"http://{pod['status']['podIP']}:11001/_sandbox/faults", method="POST",
                                  data=f'[{{"method": "LOAD", "path": "{MODEL}", "delay_s": {delay_s}}}]'.encode(),
                                  headers={"Content-Type": "application/json"})
    open_when_listening(slow)
    world.write_models([{"name": MODEL}])


def test_a_publish_waits_for_a_slow_load_saying_how_many_replicas_have_loaded_then_succeeds(models_world):
    slow_next_load(models_world, LOAD_DELAY_S)
    applied = models_world.apply()
    waited = applied.err.count(f"sax.model.{MODEL}: 0/1 replicas loaded")
    assert waited >= 2, applied.err  # said again at each round of the wait, not once
    assert f"sax.model.{MODEL}: 1/1 replicas loaded" in applied.err
    assert "Apply complete! 1 created, 0 updated" in applied.out, applied.out
    assert in_sync_and_serving(models_world)
    assert served(models_world)


def test_an_apply_killed_after_the_publish_leaves_a_load_the_next_apply_waits_for(models_world):
    """kill -9 of `saxctl apply` once the model is published, before it has loaded: the model is published as the spec
    says, and not serving. The plan says so, and the next apply waits for the load, as the killed one would have (it
    used to say "published as the spec says" and succeed at once, with the model not answering)."""
    slow_next_load(models_world, KILLED_LOAD_DELAY_S)
    env = models_world.sandbox.env
    with Watched(saxctl_background("-v", "apply", "--auto-approve", str(models_world.path), env=env)) as killed:
        killed.wait_for(f"sax.model.{MODEL}: 0/1 replicas loaded", timeout=300)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=30)

    planned = models_world.saxctl("plan", "--detailed-exitcode", env_overrides={"COLUMNS": "3000"})
    assert planned.code == 2, planned.text
    assert f"~ sax.model.{MODEL} update" in planned.out, planned.out
    assert re.search(r"0/1 replicas loaded \((1 not assigned to a model server yet|1 loading)\): apply waits for "
                     r"the load", planned.out), planned.out
    assert served(models_world) is None
    drifted = models_world.saxctl("drift", "--json")  # the corrector's view: nobody changed it, Sax is at it
    assert drifted.code == 0, drifted.text
    [model] = [entry for entry in drift_report(drifted)["drifts"] if entry["address"] == f"sax.model.{MODEL}"]
    assert model["outcome"] == "settling" and "replicas loaded" in model["why"], model

    held = models_world.saxctl("apply", "--auto-approve")  # the killed run's lock: reported, cleared by the user only
    lock_id = re.search(r"saxctl force-unlock (\S+) SPEC", held.err)
    assert held.code != 0 and lock_id, held.text
    assert saxctl("force-unlock", lock_id[1], str(models_world.path), env=env).code == 0
    applied = models_world.apply()
    assert f"sax.model.{MODEL}: 1/1 replicas loaded" in applied.err, applied.err
    assert "restarting the Sax admin" not in applied.err, "a load under way needs no new admin"
    assert "Apply complete! 0 created, 1 updated" in applied.out, applied.out
    assert in_sync_and_serving(models_world)
    assert served(models_world)
    assert models_world.http("GET", "/listcell", {"model": models_world.model_id()})["max_replicas"] == 1
    assert models_world.saxctl("plan", "--detailed-exitcode").code == 0


def model_server_holds_nothing(world: ModelWorld, pod_name: str, restarts: str) -> str:
    """Wait until status says the model server that came back at its address holds nothing; its row then."""
    def said():
        code, row = model_row(world)
        return (code, row) if "holds nothing" in row else None

    code, row = wait_for("status says the model server holds nothing", said, RECOVERY_S)
    assert code == 2, row  # --detailed-exitcode: something falls short of the spec
    assert "1 requested, 1 assigned, 0 loaded" in row and "not all serving" in row, row
    assert f"(pod {world.namespace}/{pod_name}{restarts}) holds nothing" in row, row
    assert served(world) is None, "the admin's own count says loaded; the model does not answer"
    return row


def apply_restarts_the_admin_and_the_model_is_served_again(world: ModelWorld, server: str) -> None:
    """What status says to run: the plan shows the repair, apply restarts the admin and waits for the load."""
    planned = world.saxctl("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert f"~ sax.model.{MODEL} update" in planned.out, planned.out
    assert f"not loaded on {server}, back at the same address holding nothing" in planned.out, planned.out
    admin_before = world.kubectl("get", "pods", "-l", "app=sax-admin-server", "-o", "name").stdout.split()
    applied = world.apply()
    assert f"sax.model.{MODEL}: restarting the Sax admin" in applied.err, applied.err
    assert f"sax.model.{MODEL}: 1/1 replicas loaded" in applied.err, applied.err
    assert "Apply complete! 0 created, 1 updated" in applied.out, applied.out
    assert in_sync_and_serving(world), "loaded, as the model server itself says"
    assert served(world)
    admin_after = world.kubectl("get", "pods", "-l", "app=sax-admin-server", "-o", "name").stdout.split()
    assert set(admin_after) - set(admin_before), "a new admin pod"
    assert world.saxctl("plan", "--detailed-exitcode").code == 0


def test_a_killed_model_server_is_reported_not_serving_until_the_admin_loads_the_model_again(models_world):
    models_world.apply()
    [pod] = models_world.model_server_pods()
    process = models_world.process_of(pod)
    os.kill(process["pid"], signal.SIGKILL)  # the container dies; the runner restarts it in the same pod

    row = model_server_holds_nothing(models_world, pod["metadata"]["name"], ", restarted 1 time")
    assert "`saxctl apply` restarts the admin" in row, row
    apply_restarts_the_admin_and_the_model_is_served_again(models_world, f"{pod['status']['podIP']}:10001")


def test_a_deleted_model_server_pod_is_replaced_by_the_deployment_and_the_model_served_again(models_world):
    models_world.apply()
    [old] = models_world.model_server_pods()
    models_world.kubectl("delete", "pod", old["metadata"]["name"])

    def new_pod():
        pods = [pod for pod in models_world.model_server_pods() if pod["metadata"]["uid"] != old["metadata"]["uid"]]
        return pods[0] if pods else None

    replaced = wait_for("the Deployment makes a new model server pod", new_pod)
    if replaced["status"]["podIP"] != old["status"]["podIP"]:
        # A new address: the admin drops the old one after 25 s of silence and loads the model on the new server.
        wait_for("the model is loaded on the new pod", lambda: in_sync_and_serving(models_world), RECOVERY_S)
        assert served(models_world)
        return
    # kwok gave the new pod the IP the old one freed (GKE can too): to Sax the same server came back, holding nothing.
    model_server_holds_nothing(models_world, replaced["metadata"]["name"], "")
    apply_restarts_the_admin_and_the_model_is_served_again(models_world, f"{replaced['status']['podIP']}:10001")
