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


def what_is_there(sandbox: Sandbox) -> dict:
    """What each emulator lists of the demo: buckets, clusters, its account, the project's policy, the Kubernetes
    objects carrying the spec's mark, and the stand-in processes running for pods (once those have settled)."""
    labelled = kubectl(sandbox, "get", "all,configmaps,serviceaccounts,statefulsets", "--all-namespaces",
                       "-l", f"saxctl-spec={NAME}", "-o", "name")
    processes = wait_for("no pod is starting or going", lambda: _settled_processes(sandbox, labelled))
    return {"buckets": sorted(bucket.name for bucket in sandbox.storage_client(PROJECT).list_buckets()),
            "clusters": [cluster.name for cluster in sandbox.gke_client().list_clusters(
                parent=f"projects/{PROJECT}/locations/{LOCATION}").clusters],
            "account": ACCOUNT in [account.email for account in
                                   sandbox.iam_client().list_service_accounts(name=f"projects/{PROJECT}")],
            "members": project_members(sandbox), "labelled": labelled, "processes": processes[0]}


def _settled_processes(sandbox: Sandbox, labelled: str) -> tuple[int] | None:
    """(how many stand-ins run,) once it is 3 while the servers exist, 0 once they are gone (pods stop in seconds)."""
    running = len(sandbox.control("GET", "pod-runner", "containers")["containers"])
    return (running,) if running == (3 if labelled else 0) else None


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

    there = what_is_there(sandbox)
    assert there["buckets"] == ["saxctl-demo-sax-admin", "saxctl-demo-sax-data"] and there["clusters"] == ["saxml"]
    assert there["account"] and there["members"] != members_before and there["labelled"], there
    assert there["processes"] == 3, "the Sax admin, model server and HTTP server run"
    destroyed = run(sandbox, "destroy", "--auto-approve", "--force-delete-buckets", SPEC, timeout=APPLY_S)
    assert destroyed.code == 0, destroyed.text[-5000:]
    unpublished = destroyed.err.find("sax.model.gptj4bf16bs32: Deleted")
    assert 0 <= unpublished < destroyed.err.find("kubernetes.deployment.default/sax-model-server: Deleting..."), \
        "the model is unpublished before its servers go: " + destroyed.err[-3000:]

    # Nothing left, as every emulator lists it (the same listings saw it all before the destroy).
    assert what_is_there(sandbox) == {"buckets": [], "clusters": [], "account": False, "members": members_before,
                                      "labelled": "", "processes": 0}
    assert "sax-" not in kubectl(sandbox, "get", "pods", "--all-namespaces", "-o", "name")
    nodes = kubectl(sandbox, "get", "nodes", "-o", "name")
    assert "saxml" not in nodes, f"the cluster's nodes are gone: {nodes}"
    # The Sax models lived in the admin bucket's state.proto, gone with the bucket, and no admin runs to hold them.

    planned = run(sandbox, "plan", "--detailed-exitcode", SPEC)
    assert planned.code == 2, planned.text
    everything = _PLAN_LINE.search(planned.out)
    assert everything and everything.groups() == created.groups(), (planned.out, created.groups())

