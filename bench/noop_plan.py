"""A no-op plan over the two buckets: wall time and API calls (target: one read per bucket, zero writes).

Runs in its own sandbox (a temporary state dir), so it never touches a sandbox you have running.
Compared with the floor any tool must pay: the same two bucket reads made directly with google-cloud-storage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.scratch import in_scratch_sandbox, record

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: bench-noop}
project: {id: saxctl-bench, region: us-central1}
buckets:
  admin: {name: bench-noop-admin, location: US}
  data: {name: bench-noop-data, location: US, labels: {team: ml}}
"""


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.noop_plan", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="plans to time (default 15)")
    args = parser.parse_args(argv)

    result = in_scratch_sandbox(lambda state, scratch: _measure(state, scratch, args.runs))
    return record("noop_plan", result, _markdown(result))


def _measure(state: dict, scratch: Path, runs: int) -> dict:
    env = {**os.environ, **state["env"], "NO_COLOR": "1"}
    spec = scratch / "bench-noop.yaml"
    spec.write_text(SPEC)
    saxctl = [sys.executable, "-m", "reconciler"]
    subprocess.run(saxctl + ["apply", "--auto-approve", str(spec)], env=env, check=True, capture_output=True)
    control = f"{state['env']['STORAGE_EMULATOR_HOST']}/_sandbox/requests"

    cli_seconds, calls = [], []
    for _ in range(runs):
        _control("DELETE", control)
        started = time.perf_counter()
        completed = subprocess.run(saxctl + ["plan", "--detailed-exitcode", str(spec)], env=env, capture_output=True)
        cli_seconds.append(time.perf_counter() - started)
        if completed.returncode != 0:
            raise SystemExit(f"the no-op plan reported changes or failed:\n{completed.stdout}{completed.stderr}")
        calls.append(_control("GET", control)["requests"])

    in_process, floor = _in_process(spec, env, runs)
    reads = [sum(1 for c in run if c["method"] == "GET") for run in calls]
    writes = [sum(1 for c in run if c["method"] != "GET") for run in calls]
    return {
        "benchmark": "noop_plan",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": runs,
        "buckets": 2,
        "api_calls_per_plan": {"reads": max(reads), "writes": max(writes),
                               "calls": sorted({f"{c['method']} {c['path']}" for run in calls for c in run})},
        "saxctl_plan_cli_seconds": _stats(cli_seconds),
        "saxctl_plan_in_process_seconds": _stats(in_process),
        "floor_two_bucket_gets_seconds": _stats(floor),
    }


def _in_process(spec: Path, env: dict, runs: int) -> tuple[list[float], list[float]]:
    """Plan without the process start-up, and the bare client reads, over the same endpoint."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("STORAGE_EMULATOR_HOST", "SAXCTL_"))})
    from reconciler import runner
    from reconciler.providers.gcs.client import storage_client

    workspace = runner.open_workspace(str(spec))
    plans, gets = [], []
    client = storage_client("saxctl-bench")
    for _ in range(runs):
        started = time.perf_counter()
        assert not runner.make_plan(workspace).has_changes
        plans.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.get_bucket("bench-noop-admin")
        client.get_bucket("bench-noop-data")
        gets.append(time.perf_counter() - started)
    return plans, gets


def _control(method: str, url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
        return json.load(response)


def _stats(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median": round(statistics.median(ordered), 4), "min": round(ordered[0], 4),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4)}


def _markdown(result: dict) -> str:
    calls = result["api_calls_per_plan"]
    rows = [
        ("`saxctl plan` (CLI, process start included)", result["saxctl_plan_cli_seconds"]),
        ("saxctl plan in process (observe + diff)", result["saxctl_plan_in_process_seconds"]),
        ("floor: two `get_bucket` calls, google-cloud-storage", result["floor_two_bucket_gets_seconds"]),
    ]
    table = "\n".join(f"| {name} | {s['median'] * 1000:.1f} | {s['p90'] * 1000:.1f} |" for name, s in rows)
    return (f"# No-op plan over two buckets (sandbox, {result['runs']} runs, {result['machine']['cpus']} cores)\n\n"
            f"API calls per plan: **{calls['reads']} reads, {calls['writes']} writes** "
            f"({', '.join(calls['calls'])}).\n\n"
            f"| what | median ms | p90 ms |\n|---|---|---|\n{table}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
