"""The whole tutorial as the demo spec, end to end through the CLI, in a sandbox of its own: apply
specs/gptj-v5e-2x2.yaml (the sample GPT-J converted, uploaded, published, loaded), `saxctl generate` answers, then
`saxctl destroy --auto-approve --force-delete-buckets` leaves nothing, as every emulator lists it, and a plan shows
everything to create again.

A sandbox of its own (as the README's demo starts one): the demo spec's names are fixed (project saxctl-demo,
namespace default), so it must not meet the session sandbox's other tests, and "nothing left" means nothing at all.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from cli_runner import REPO, saxctl
from kube_testkit import wait_for
from sandbox_fixture import Sandbox

from reconciler.sandbox.paths import bin_dir

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1200)]
SPEC = "specs/gptj-v5e-2x2.yaml"
NAME = "gptj-demo"  # its metadata.name: the mark on everything it makes
PROJECT = "saxctl-demo"
LOCATION = "us-central1-a"
ACCOUNT = f"sax-iam-sa@{PROJECT}.iam.gserviceaccount.com"
APPLY_S = 900
_PLAN_LINE = re.compile(r"Plan: (\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete")


@pytest.fixture
def demo_sandbox(tmp_path) -> Sandbox:
    """`saxctl sandbox up` and `sandbox sample-checkpoint` in a state dir of this test's own, as the demo runs them;
    its exports (GPTJ_CHECKPOINT too) as `saxctl sandbox env` prints them. Stopped and purged at the end."""
    state_dir = tmp_path / "state"
    env = {"SAXCTL_SANDBOX_DIR": str(state_dir), "NO_COLOR": "1"}
    saxctl_command = str(REPO / ".venv" / "bin" / "saxctl")
    script = (f'eval "$({saxctl_command} sandbox up)" >&2 && {saxctl_command} sandbox sample-checkpoint >&2 && '
              f'{saxctl_command} sandbox env')
    try:
        started = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600,
                                 env={**os.environ, **env})
        assert started.returncode == 0, started.stderr[-3000:]
        exports = dict(re.findall(r"^export (\w+)=(.*)$", started.stdout, re.MULTILINE))
        exports = {key: shlex.split(value)[0] if value else value for key, value in exports.items()}
        sandbox = Sandbox(json.loads((state_dir / "state.json").read_text()), state_dir)
        sandbox.env = {**sandbox.env, **exports, **env}
        assert "GPTJ_CHECKPOINT" in sandbox.env, started.stdout
        yield sandbox
        sandbox.close_clients()
    finally:
        subprocess.run([saxctl_command, "sandbox", "down", "--purge"], capture_output=True, timeout=120,
                       env={**os.environ, **env})


def run(sandbox: Sandbox, *args: str, timeout: float = 300):
    return saxctl(*args, env=sandbox.env, timeout=timeout)


def kubectl(sandbox: Sandbox, *args: str) -> str:
    completed = subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"],
                                *args], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def project_members(sandbox: Sandbox) -> dict[str, set[str]]:
    policy = sandbox.projects_client().get_iam_policy(resource=f"projects/{PROJECT}")
    return {binding.role: set(binding.members) for binding in policy.bindings}


def test_the_demo_applied_answers_and_destroyed_leaves_nothing_then_plans_everything_again(demo_sandbox):
    sandbox = demo_sandbox
    members_before = project_members(sandbox)

    applied = run(sandbox, "apply", "--auto-approve", SPEC, timeout=APPLY_S)
    assert applied.code == 0, applied.text[-5000:]
    created = _PLAN_LINE.search(applied.out)
    assert created and created.groups()[1:] == ("0", "0", "0"), applied.out
    generated = run(sandbox, "generate", SPEC, "gptj4bf16bs32", "The capital of France is")
    assert generated.code == 0, generated.text
    assert len(generated.out.strip().splitlines()) == 4, generated.out  # 4 beams, each with its score
    again = run(sandbox, "plan", "--detailed-exitcode", SPEC)
    assert again.code == 0 and "No changes." in again.out, again.text

    destroyed = run(sandbox, "destroy", "--auto-approve", "--force-delete-buckets", SPEC, timeout=APPLY_S)
    assert destroyed.code == 0, destroyed.text[-5000:]
    assert "sax.model.gptj4bf16bs32" in destroyed.out, "the model is unpublished, before its servers go"

    # Nothing left, as every emulator lists it.
    assert [bucket.name for bucket in sandbox.storage_client(PROJECT).list_buckets()] == []
    clusters = sandbox.gke_client().list_clusters(parent=f"projects/{PROJECT}/locations/{LOCATION}").clusters
    assert [cluster.name for cluster in clusters] == []
    accounts = sandbox.iam_client().list_service_accounts(name=f"projects/{PROJECT}")
    assert ACCOUNT not in [account.email for account in accounts], "the Google service account is deleted"
    assert project_members(sandbox) == members_before, "every member saxctl added to the project's policy is gone"
    labelled = kubectl(sandbox, "get", "all,configmaps,serviceaccounts,statefulsets", "--all-namespaces",
                       "-l", f"saxctl-spec={NAME}", "-o", "name")
    assert labelled == "", labelled
    wait_for("the Sax pods are gone, and with them every stand-in process (the admin that held the models)",
             lambda: sandbox.control("GET", "pod-runner", "containers")["containers"] == [])
    assert "sax-" not in kubectl(sandbox, "get", "pods", "--all-namespaces", "-o", "name")
    nodes = kubectl(sandbox, "get", "nodes", "-o", "name")
    assert "saxml" not in nodes, f"the cluster's nodes are gone: {nodes}"
    # The Sax models lived in the admin bucket's state.proto, gone with the bucket; the plan finds no admin to ask.

    planned = run(sandbox, "plan", "--detailed-exitcode", SPEC)
    assert planned.code == 2, planned.text
    everything = _PLAN_LINE.search(planned.out)
    assert everything and everything.groups() == created.groups(), (planned.out, created.groups())

