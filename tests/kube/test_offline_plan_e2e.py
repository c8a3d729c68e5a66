"""`saxctl plan --from OLD --to NEW` against the live plan it stands for: OLD applied on the sandbox once, then for each
change of a pull request (NEW), the live `saxctl plan --json NEW` and the offline plan must hold the same changes.
The offline plan runs with no sandbox exports, bogus credentials, and makes no request to any emulator.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cli_runner import saxctl
from model_world import ModelWorld

from reconciler.sandbox.kube.nodes import cluster_namespace_annotations

MODEL = "gptj"
LOGGED = ("gcs", "gke", "iam", "resourcemanager", "compute")  # the emulators that keep a request log


@pytest.fixture(scope="module")
def applied(sandbox, tmp_path_factory):
    """One world for the whole module, OLD applied (minutes): each test plans a NEW against it, which changes nothing."""
    suffix = secrets.token_hex(4)
    world = ModelWorld(sandbox, tmp_path_factory.mktemp("offline"), f"o-{suffix}", f"p-offline-{suffix}",
                       f"ns-{suffix}", suffix)
    from kubernetes import client

    with sandbox.kube_api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": world.namespace,
                                            "annotations": cluster_namespace_annotations(world.cluster_name)}})
        try:
            world.write_models([{"name": MODEL}])
            world.apply()
            yield world
        finally:
            world.saxctl("destroy", "--auto-approve", "--force-delete-buckets", timeout=300)
            core.delete_namespace(world.namespace)


def _sax_servers_own(entry: dict) -> bool:
    """A request of the sandbox's Sax servers (they run all along): their cell files under the Sax roots."""
    return any(root in entry["path"] + entry["query"] for root in ("sax-root", "sax-fs-root"))


def _changes(document: dict) -> dict[str, tuple]:
    """The plan's changes as compared: address → (action, reason, fields changed, pruned)."""
    return {change["address"]: (change["action"], change["reason"],
                                [(f["path"], f["before"], f["after"], f["forces_replacement"])
                                 for f in change["fields"]], change["pruned"])
            for change in document["changes"]}


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No sandbox export at all; credentials that would fail if anything looked them up."""
    import os

    kept = {key: value for key, value in os.environ.items()
            if not key.startswith(("SAXCTL_", "GOOGLE_", "CLOUDSDK_")) and key not in
            ("STORAGE_EMULATOR_HOST", "KUBECONFIG", "HOME")}
    return {**kept, "HOME": str(tmp_path), "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json"),
            "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), **extra}


def offline_plan(world: ModelWorld, new: Path, env: dict[str, str], *flags: str):
    # cli_runner adds os.environ under env: every key it must not see is overridden or emptied here.
    return saxctl("plan", *flags, "--from", str(world.path), "--to", str(new), env=env, timeout=120)


def _eight_chips(text: str) -> str:
    return text.replace("gptj.GPTJ4BF16BS32", "lm_cloud.LLaMA7BTPUv5e8")


VARIANTS = {
    "bucket-label": lambda w, text: text.replace(f"data: {{name: dat-{w.spec_name}, location: US}}",
                                                 f"data: {{name: dat-{w.spec_name}, location: US, labels: {{team: ml}}}}"),
    "model-added-and-removed": lambda w, text: text.replace(f"{{name: {MODEL}, ", f"{{name: {MODEL}-b, "),
    # A v5e slice's node count follows its topology, and the model's class its chips (the spec checks both): 2 hosts
    # are a 2x4 multi-host slice of 8 chips, served by a class sharded over 8.
    "tpu-node-count": lambda w, text: _eight_chips(text.replace("topology: 2x2, nodes: 1}", "topology: 2x4, nodes: 2}")),
    "tpu-machine-type": lambda w, text: _eight_chips(text.replace("machineType: ct5lp-hightpu-4t, topology: 2x2",
                                                                  "machineType: ct5lp-hightpu-8t, topology: 2x4")),
    "cpu-node-count": lambda w, text: text.replace("cpuNodes: {count: 1,", "cpuNodes: {count: 2,"),
    "gsa-role-added": lambda w, text: text.replace("projectRoles: [roles/storage.admin]",
                                                   "projectRoles: [roles/storage.admin, roles/logging.logWriter]"),
    "exposure-public": lambda w, text: text.replace("exposure: internal", "exposure: public"),
    "checkpoint-destination": lambda w, text: text.replace("/sample/checkpoint_00000000", "/moved/checkpoint_00000000"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_offline_plan_of_a_change_equals_the_live_plan_where_old_was_applied(applied, variant, tmp_path):
    old_text = applied.path.read_text()
    new_text = VARIANTS[variant](applied, old_text)
    assert new_text != old_text, f"the {variant} variant changes nothing: the spec's shape moved"
    new = applied.directory / f"{variant}.yaml"
    new.write_text(new_text)

    live = saxctl("plan", "--json", str(new), env=applied.sandbox.env, timeout=240)
    assert live.out.startswith("{"), live.text
    offline = offline_plan(applied, new, offline_env(tmp_path), "--json")
    assert offline.out.startswith("{"), offline.text
    assert offline.code == live.code, (offline.text, live.text)
    live_plan, offline_plan_ = json.loads(live.out), json.loads(offline.out)
    live_changes, offline_changes = _changes(live_plan), _changes(offline_plan_)
    assert [c for c in live_changes.values() if c[0] != "no-op"], f"{variant}: the live plan changes nothing"
    assert offline_changes == live_changes
    # Blocked alike: the hazards weighed here are the providers' pure ones (a slice replaced, a checkpoint pruned).
    assert [b["address"] for b in offline_plan_["blocked"]] == [b["address"] for b in live_plan["blocked"]]
    # A preflight's reads are not made offline, and the plan says so; what needs no read is found alike.
    assert offline_plan_["problems"] == [p for p in live_plan["problems"] if p["kind"] != "preflight"]
    if any(p["kind"] == "preflight" for p in live_plan["problems"]):
        assert "Not checked offline: checking quotas and offers: " in offline.err
    assert "Offline plan of" in offline.err and "no API call was made" in offline.err


def test_the_offline_plan_of_a_new_spec_equals_the_live_plan_where_nothing_of_it_exists(sandbox, tmp_path):
    """A spec a pull request adds (no base): `--to` alone against a live plan in a project that never saw it."""
    suffix = secrets.token_hex(4)
    world = ModelWorld(sandbox, tmp_path, f"o-{suffix}", f"p-new-{suffix}", f"ns-{suffix}", suffix)
    world.write_models([{"name": MODEL}])
    live = saxctl("plan", "--json", str(world.path), env=sandbox.env, timeout=240)
    assert live.out.startswith("{"), live.text
    offline = saxctl("plan", "--json", "--to", str(world.path), env=offline_env(tmp_path), timeout=120)
    assert offline.code == live.code, (offline.text, live.text)
    live_plan, offline_plan_ = json.loads(live.out), json.loads(offline.out)
    assert {change[0] for change in _changes(live_plan).values()} == {"create"}
    assert _changes(offline_plan_) == _changes(live_plan)
    assert offline_plan_["problems"] == [p for p in live_plan["problems"] if p["kind"] != "preflight"]


def test_an_offline_plan_sends_no_request_to_any_emulator_even_with_their_exports(applied, tmp_path):
    new = applied.directory / "offline-requests.yaml"
    new.write_text(VARIANTS["tpu-node-count"](applied, applied.path.read_text()))
    for emulator in LOGGED:
        applied.sandbox.reset_requests(emulator)
    # The sandbox's exports too: a client built by mistake would reach an emulator and be counted.
    planned = offline_plan(applied, new, offline_env(tmp_path, **applied.sandbox.env), "--markdown",
                           "--allow-replace", f"gke.node_pool.{applied.pool}")
    assert planned.code == 0, planned.text
    assert "gke.node_pool" in planned.out
    seen = {emulator: [entry for entry in applied.sandbox.requests(emulator) if not _sax_servers_own(entry)]
            for emulator in LOGGED}
    assert seen == {emulator: [] for emulator in LOGGED}
    # The logs count: the live plan of the same spec is in them.
    saxctl("plan", "--json", str(new), env=applied.sandbox.env, timeout=240)
    assert all(applied.sandbox.requests(emulator) for emulator in ("gcs", "gke", "iam", "resourcemanager"))
    # What an offline plan cannot know is said, not guessed: the TPU quota of the added node.
    assert "Not checked offline: checking quotas and offers" in planned.out
