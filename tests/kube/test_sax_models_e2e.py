"""Sax models through the real CLI against the sandbox: publish and generate, drift of the replicas (by plan and
apply, and by `saxctl drift --correct` beside an IAM member removed by hand), a checkpoint
change, removal, a model published by hand, markers missing, and servers that cannot serve the model.

The Sax admin, model server and HTTP server run as the pod runner's stand-ins for the pods saxctl applies; saxctl
reaches the admin and the HTTP server through the apiserver's port-forward, as on GKE. A model published by hand goes
straight to the HTTP server at its pod's IP, as a user inside the VPC would.
"""

from __future__ import annotations

import json
import re
import urllib.error

import pytest
from cli_runner import drift_report
from kube_testkit import wait_for
from model_world import GPTJ, MODEL

from reconciler.checkpoint.manifest import MARKER_NAME
from reconciler.providers.kubernetes.manifests import ADMIN_SERVER

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
_ADMIN_CALL = re.compile(r"sax Admin/(?P<method>\w+) →")


def admin_calls(run) -> list[str]:
    return [match["method"] for match in _ADMIN_CALL.finditer(run.err)]


def test_a_model_is_published_loaded_and_answers_then_a_plan_makes_one_list_and_one_stats(models_world):
    applied = models_world.apply()
    assert f"sax.model.{MODEL}" in applied.out
    assert "Apply complete!" in applied.out
    generated = models_world.generate("The capital of France is")
    assert generated.code == 0, generated.text
    lines = generated.out.strip().splitlines()
    assert len(lines) == 4, "Sax's GPT-J decodes 4 beams, each printed with its score"
    assert all(re.match(r"^\s*-?\d+\.\d{4}  ", line) for line in lines), lines
    as_json = models_world.generate("The capital of France is", "--json")
    assert len(json.loads(as_json.out)["generate_response"]) == 4

    again = models_world.saxctl("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.text
    assert sorted(admin_calls(again)) == ["List", "Stats"]
    status = models_world.saxctl("status")
    assert re.search(rf"sax\.model\.{MODEL} .*in sync.*1 requested, 1 assigned, 1 loaded", status.out), status.out


def test_a_publish_whose_reply_is_lost_after_it_committed_is_published_once(models_world, sandbox):
    """The admin commits the first Publish and its reply is lost (UNAVAILABLE): the retried Publish finds the model
    published as the spec says and the apply succeeds; the cell holds it once. The pod runner gives the admin that
    rule at its start, as it gives a chaos run's admin its faults."""
    lost = {"path": r"^/sax\.Admin/Publish$", "grpc_code": "UNAVAILABLE", "after_commit": True, "count": 1}
    sandbox.control("POST", "pod-runner", "standin-faults",
                    {"namespace": models_world.namespace, "container": ADMIN_SERVER, "rules": [lost]})
    try:
        applied = models_world.apply()
    finally:
        sandbox.control("DELETE", "pod-runner", "standin-faults")
    published = admin_calls(applied)
    assert published.count("Publish") == 2, applied.err  # the lost reply, then the retry that finds it published
    assert "sax Admin/Publish → UNAVAILABLE" in applied.err
    listed = models_world.http("GET", "/listcell", {"model": models_world.model_id()})
    assert listed["max_replicas"] == 1, listed
    again = models_world.saxctl("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.text


def test_replicas_changed_by_hand_are_updated_back(models_world):
    models_world.apply()
    models_world.http("PUT", "/update", {"model": models_world.model_id(), "model_path": GPTJ, "replicas": 2,
                                         "checkpoint": f"gs://dat-{models_world.spec_name}/sample/checkpoint_00000000"})
    drifted = models_world.saxctl("plan", "--detailed-exitcode")
    assert drifted.code == 2, drifted.text
    assert f"~ sax.model.{MODEL} update" in drifted.out
    assert "replicas 2 → 1 (Update)" in drifted.out
    applied = models_world.apply()
    assert "Update" in applied.out or "1 changed" in applied.out
    assert models_world.saxctl("plan", "--detailed-exitcode").code == 0


def test_replicas_changed_through_the_http_server_and_a_removed_workload_identity_member_are_drift_set_back(
        models_world):
    from google.iam.v1 import policy_pb2

    models_world.apply()
    iam = models_world.sandbox.iam_client()
    account = f"projects/{models_world.project}/serviceAccounts/sa-{models_world.suffix}@{models_world.project}" \
              ".iam.gserviceaccount.com"
    member = f"serviceAccount:{models_world.project}.svc.id.goog[{models_world.namespace}/sax-sa]"

    def workload_identity_members() -> list[str]:
        policy = iam.get_iam_policy(resource=account, timeout=30)
        return [m for binding in policy.bindings if binding.role == WORKLOAD_IDENTITY_USER for m in binding.members]

    assert workload_identity_members() == [member]
    by_hand = policy_pb2.Policy()
    by_hand.CopyFrom(iam.get_iam_policy(resource=account, timeout=30))
    del by_hand.bindings[:]
    iam.set_iam_policy(request={"resource": account, "policy": by_hand}, timeout=30)
    models_world.http("PUT", "/update", {"model": models_world.model_id(), "model_path": GPTJ, "replicas": 2,
                                         "checkpoint": f"gs://dat-{models_world.spec_name}/sample/checkpoint_00000000"})

    reported = models_world.saxctl("drift", "--json")
    assert reported.code == 2, reported.text
    found = {entry["address"]: entry for entry in drift_report(reported)["drifts"]}
    replicas = found[f"sax.model.{MODEL}"]
    assert (replicas["field"], replicas["desired"], replicas["live"], replicas["outcome"]) == (
        "replicas", 1, 2, "reported")
    assert found[f"iam.workload_identity.{models_world.namespace}/sax-sa"]["outcome"] == "reported"
    assert workload_identity_members() == [], "a report changes nothing"

    corrected = models_world.saxctl("drift", "--correct", "--json", "--rollout-timeout", "120")
    assert corrected.code == 0, corrected.text
    assert {entry["outcome"] for entry in drift_report(corrected)["drifts"]} == {"corrected"}
    assert workload_identity_members() == [member]
    assert models_world.http("GET", "/listcell", {"model": models_world.model_id()})["max_replicas"] == 1
    assert models_world.saxctl("drift").code == 0


def test_a_checkpoint_change_unpublishes_and_publishes_again(models_world):
    models_world.apply()
    models_world.write_models([{"name": MODEL, "checkpoint": "sample-again"}], second_checkpoint=True)
    planned = models_world.saxctl("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert f"-/+ sax.model.{MODEL} replace" in planned.out
    assert "checkpoint " in planned.out and "will be unpublished and published again" in planned.out
    models_world.apply()
    listed = models_world.http("GET", "/listcell", {"model": models_world.model_id()})
    assert listed["checkpoint"].endswith("/again/checkpoint_00000000")


def test_a_model_removed_from_the_spec_is_unpublished_and_forgotten(models_world):
    models_world.apply()
    models_world.write_models([])
    planned = models_world.saxctl("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert f"- sax.model.{MODEL} delete" in planned.out
    assert "no longer in the spec" in planned.out
    models_world.apply()
    with pytest.raises(urllib.error.HTTPError):
        models_world.http("GET", "/listcell", {"model": models_world.model_id()})


def test_a_model_published_by_hand_is_shown_as_foreign_and_left_alone(models_world):
    models_world.apply()
    checkpoint = f"gs://dat-{models_world.spec_name}/sample/checkpoint_00000000"
    models_world.http("POST", "/publish", {"model": "/sax/test/byhand", "model_path": GPTJ,
                                           "checkpoint": checkpoint, "replicas": 1})
    planned = models_world.saxctl("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.text
    assert "byhand" not in planned.out, "never pruned: saxctl did not publish it"
    status = models_world.saxctl("status")
    assert re.search(r"/sax/test/byhand\s+foreign\s+published by someone else, left alone", status.out), status.out
    models_world.apply()
    assert models_world.http("GET", "/listcell", {"model": "/sax/test/byhand"})["model"] == "/sax/test/byhand"


def test_a_checkpoint_without_its_markers_blocks_the_publish(models_world):
    models_world.apply("--target", "checkpoint.sample")
    storage = models_world.sandbox.storage_client(models_world.project)
    storage.bucket(f"dat-{models_world.spec_name}").blob(f"sample/checkpoint_00000000/{MARKER_NAME}").delete()
    url = f"gs://dat-{models_world.spec_name}/sample/checkpoint_00000000"
    models_world.write_models([{"name": MODEL, "checkpoint": url}])
    planned = models_world.saxctl("plan")
    assert planned.code == 1, planned.text
    assert f"{url} has no commit markers ({MARKER_NAME} missing)" in planned.out + planned.err


def test_servers_that_cannot_serve_the_model_are_a_plan_error_with_the_numbers(models_world):
    # LLaMA7B shards over 1 chip; saxctl's table does not know it, so only the servers can say they lack it.
    models_world.write_models([{"name": MODEL, "path": "saxml.server.pax.lm.params.lm_cloud.LLaMA7B"}])
    namespace = models_world.namespace
    models_world.apply("--target", f"kubernetes.deployment.{namespace}/sax-admin-server",
                       "--target", f"kubernetes.deployment.{namespace}/sax-model-server")
    expected = f"0 model servers can serve LLaMA7B: pool {models_world.pool} is ct5lp-hightpu-4t (4 chips)"

    def refused():  # once the model server has joined the admin (2 s after it starts)
        planned = models_world.saxctl("plan")
        return planned if planned.code == 1 and expected in planned.err else None

    planned = wait_for("the plan says no joined server can serve the model", refused)
    assert f"models[0].replicas: {expected}" in planned.err
