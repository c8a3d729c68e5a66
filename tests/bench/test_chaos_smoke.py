"""`make chaos` cannot rot: its smoke mode (a baseline, one faulted run, one kill -9, one race) runs end to end."""

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
    assert "--only faults --seeds 1 --rates 5" in result["runs"][1]["replay"]
