"""`saxctl plan --from OLD --to NEW` where a reviewer meets it: no sandbox, no credentials, endpoints that answer
nothing; flags that do not go together. Its equality with the live plan is tests/kube/test_offline_plan_e2e.py's."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import REPO, saxctl

DEMO = REPO / "specs" / "gptj-v5e-2x2.yaml"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


def no_cloud_env(tmp_path: Path) -> dict[str, str]:
    """Every endpoint at a closed port, credentials that do not exist: a client built at all would fail."""
    return {"HOME": str(tmp_path), "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json"),
            "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), "STORAGE_EMULATOR_HOST": CLOSED,
            **{f"SAXCTL_{api}_ENDPOINT": CLOSED for api in ("GKE", "COMPUTE", "RESOURCEMANAGER")},
            "SAXCTL_IAM_ENDPOINT": "127.0.0.1:9", "GPTJ_CHECKPOINT": str(tmp_path / "no-checkpoint-here")}


def variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = DEMO.read_text()
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_an_offline_plan_needs_no_cloud_and_plans_the_change_alone(tmp_path):
    new = variant(tmp_path, "nodes", "cpuNodes: {count: 2,", "cpuNodes: {count: 3,")
    planned = saxctl("plan", "--json", "--from", str(DEMO), "--to", str(new), env=no_cloud_env(tmp_path), timeout=60)
    assert planned.code == 0, planned.text
    changed = {c["address"]: c for c in json.loads(planned.out)["changes"] if c["action"] != "no-op"}
    assert list(changed) == ["gke.cluster.saxml"]
    assert changed["gke.cluster.saxml"]["reason"] == "cpuNodes.nodeCount: 2 → 3"


def test_a_checkpoint_whose_source_is_not_there_is_planned_from_the_spec_and_says_so(tmp_path):
    new = variant(tmp_path, "moved", "/checkpoints/checkpoint_00000000", "/moved/checkpoint_00000000")
    planned = saxctl("plan", "--from", str(DEMO), "--to", str(new), env=no_cloud_env(tmp_path), timeout=60)
    source = tmp_path / "no-checkpoint-here"
    assert (f"+ checkpoint.gptj-6b create  # no checkpoint at gs://saxctl-demo-sax-data/moved/checkpoint_00000000: it "
            f"will be converted and uploaded (its source {source} is not checked offline)") in planned.out
    # The old one is pruned as a live plan prunes it, blocked as it is: nothing could convert it again.
    assert "checkpoint.saxctl-demo-sax-data/checkpoints/checkpoint_00000000 delete" in planned.out
    assert planned.code == 1 and "--allow-delete checkpoint.saxctl-demo-sax-data/checkpoints/" in planned.text


def test_what_only_the_apply_knows_is_said_as_a_live_plan_says_it(tmp_path):
    """OLD has no cluster: what lives in the one NEW creates is planned without a read, after it."""
    text = DEMO.read_text()
    old = tmp_path / "buckets.yaml"
    old.write_text(text[:text.index("cluster:")] + text[text.index("buckets:"):text.index("identity:")])
    planned = saxctl("plan", "--json", "--from", str(old), "--to", str(DEMO), env=no_cloud_env(tmp_path), timeout=60)
    assert planned.code == 0, planned.text
    changes = {c["address"]: c for c in json.loads(planned.out)["changes"]}
    assert {c["action"] for a, c in changes.items() if not a.startswith("gcs.")} == {"create"}
    assert changes["gcs.bucket.admin"]["action"] == "no-op"
    assert changes["kubernetes.deployment.default/sax-http"]["reason"] == \
        "gke.cluster.saxml does not exist yet: created after it"


def test_from_and_to_go_together_and_without_a_spec_argument(tmp_path):
    for args, said in ((["--from", str(DEMO)], "--from needs --to"),
                       (["--from", str(DEMO), "--to", str(DEMO), str(DEMO)], "SPEC (" + str(DEMO) + ") and --from/--to"),
                       (["--from", str(DEMO), "--to", str(DEMO), "-out", str(tmp_path / "p.json")],
                        "-out does not go with --from/--to"),
                       ([], "missing argument SPEC")):
        refused = saxctl("plan", *args, env=no_cloud_env(tmp_path))
        # 1, not 2: 2 is --detailed-exitcode's "changes present" (tests/test_cli.py)
        assert refused.code == 1, refused.text
        assert said in refused.err and "Traceback" not in refused.err
    assert not (tmp_path / "p.json").exists()
    assert "--from OLD_SPEC" in saxctl("plan", "--help").out


def test_an_offline_markdown_comment_says_it_is_offline_and_claims_no_live_read(tmp_path):
    planned = saxctl("plan", "--markdown", "--from", str(DEMO), "--to", str(DEMO), env=no_cloud_env(tmp_path),
                     timeout=60)
    assert planned.code == 0, planned.text
    lines = planned.out.splitlines()
    assert lines[0] == "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy"
    assert f"Offline plan of {DEMO} where {DEMO} was applied: no API call was made." in lines
    assert "No changes: the world the earlier spec left matches the spec." in lines
    assert "live state" not in planned.out


def test_an_offline_plan_costs_the_change_at_your_prices(tmp_path):
    """4 more v5e chips (a 2x2 slice becomes 2x4): 4 x $0.84 x 730 h = $2,452.80 a month."""
    new = variant(tmp_path, "eight", "ct5lp-hightpu-4t, topology: 2x2", "ct5lp-hightpu-8t, topology: 2x4")
    new.write_text(new.read_text().replace("gptj.GPTJ4BF16BS32", "lm_cloud.LLaMA7BTPUv5e8"))
    mine = tmp_path / "prices.yaml"
    mine.write_text("basis: negotiated\ntpuChipHour:\n  v5e: 0.84\n")
    planned = saxctl("plan", "--markdown", "--prices", str(mine), "--allow-replace", "gke.node_pool.tpu",
                     "--from", str(DEMO), "--to", str(new), env=no_cloud_env(tmp_path), timeout=60)
    assert "**Cost:** +$2,452.80 per month" in planned.out, planned.text
    assert "TPU v5e chips: +4 (4 → 8)" in planned.out


def test_a_new_spec_alone_is_planned_offline_as_all_to_create_with_its_cost(tmp_path):
    """A pull request that adds a spec has no base: `--to` alone plans it in a world with nothing of it."""
    planned = saxctl("plan", "--json", "--to", str(DEMO), env=no_cloud_env(tmp_path), timeout=60)
    assert planned.code == 0, planned.text
    changes = json.loads(planned.out)["changes"]
    assert changes and {c["action"] for c in changes} == {"create"}
    assert not any(c["pruned"] for c in changes)
    assert f"Offline plan of {DEMO} where nothing of it exists yet: no API call was made." in planned.err
    markdown = saxctl("plan", "--markdown", "--to", str(DEMO), env=no_cloud_env(tmp_path), timeout=60)
    assert markdown.out.splitlines()[0] == f"Plan: {len(changes)} to add, 0 to change, 0 to replace, 0 to destroy"
    assert "TPU v5e chips: +4 (0 → 4)" in markdown.out, markdown.out
