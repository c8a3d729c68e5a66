"""`make chaos` cannot rot: its smoke mode (a baseline, one faulted run, one kill -9, the races) runs end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import chaos

REPO = Path(__file__).resolve().parents[2]


def test_fault_rules_are_seeded_and_cover_every_fault_kind():
    rules = chaos.fault_rules(7, 15, "gcs")
    assert rules == chaos.fault_rules(7, 15, "gcs")  # a seed replays the same rules
    assert {rule["seed"] for rule in rules}.isdisjoint({rule["seed"] for rule in chaos.fault_rules(8, 15, "gcs")})
    failing = [rule for rule in rules if "delay_s" not in rule]
    assert round(sum(rule["probability"] for rule in failing if rule.get("method", "*") in ("*", "POST")), 6) == 0.15
    assert {rule.get("status") for rule in failing} >= {429, 500, 503}
    assert any(rule.get("drop") for rule in failing) and any(rule.get("after_commit") for rule in failing)
    assert not any(rule.get("drop") for rule in chaos.fault_rules(7, 15, "iam"))  # gRPC: a deadline instead


def test_the_sax_admins_and_the_apiserver_paths_rules_are_seeded_and_spare_the_model_servers_joins():
    import re

    sax = chaos.fault_rules(7, 30, "sax")
    assert sax == chaos.fault_rules(7, 30, "sax") and sax != chaos.fault_rules(8, 30, "sax")
    assert {rule.get("grpc_code") for rule in sax} >= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    [lost] = [rule for rule in sax if rule.get("after_commit")]
    assert re.search(lost["path"], "/sax.Admin/Publish") and not re.search(lost["path"], "/sax.Admin/List")
    assert all(re.search(rule["path"], "/sax.Admin/WaitForReady") for rule in sax if rule is not lost)
    assert not any(re.search(rule["path"], "/sax.Admin/Join") for rule in sax)
    proxy = chaos.fault_rules(7, 30, "apiserver")
    assert {rule["kind"] for rule in proxy} == {"reset", "drop", "stall"}
    assert any(rule.get("after_reply") for rule in proxy)
    assert len({rule["seed"] for rule in [*sax, *proxy]}) == len(sax) + len(proxy)


@pytest.mark.sandbox
@pytest.mark.timeout(1200)
def test_chaos_smoke_converges_and_checks_the_world(tmp_path):
    env = {**os.environ, "SAXCTL_SANDBOX_DIR": str(tmp_path / "unused")}  # chaos makes a sandbox of its own
    script = ("import json, sys; from bench import chaos; "
              "print('RESULT ' + json.dumps(chaos.main(['--smoke', '--seeds', '1', '--rates', '5'])))")
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=1150)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    kinds = [run["kind"] for run in result["runs"]]
    assert kinds == ["baseline", "faults", "crash", "concurrency"], completed.stdout[-3000:]
    failed = [run for run in result["runs"] if not run["ok"]]
    assert not failed, json.dumps(failed, indent=1)
    assert all(run["converged"] for run in result["runs"])
    assert result["summary"]["kills_landed"] == 1
    assert result["secrets_found"] == []
    model = result["baseline_world"]["sax"]["/sax/test/gptj4bf16bs32"]  # the checks list Sax too, and it serves
    assert (model["max_replicas"], model["active_replicas"]) == (1, 1), model
    assert "--only faults --seeds 1 --rates 5" in result["runs"][1]["replay"]
    assert {"sax", "apiserver"} <= set(result["runs"][1]["faults_fired"])  # both were faulted and counted
    assert any("apply racing drift --correct" in note for note in result["runs"][3]["notes"])
