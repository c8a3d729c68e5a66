"""The GCP half of specs/gptj-v5e-2x2.yaml (cluster, TPU pool, buckets) on the sandbox: apply wall time against the
critical path of its dependency graph, and a no-op plan's API calls and wall time.

Runs in its own sandbox (a temporary state dir), with GKE operation latencies set to a fixed ratio of real ones
(a cluster create takes longer than a node pool's). The critical path is the longest chain of operation latencies
along the plan's dependencies (the node pool waits for its cluster; buckets wait for nothing); the tutorial's
order, one step after another, is their sum. Target: apply within 1.2x of the critical path; a no-op plan makes one
read per object and no write.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

from bench.critical_path import paths, plan_steps
from bench.harness import call, in_own_sandbox, saxctl, stats as _stats, write_results

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "specs" / "gptj-v5e-2x2.yaml"
LATENCIES = {"CREATE_CLUSTER": 12.0, "CREATE_NODE_POOL": 8.0, "default": 0.5}  # seconds, per operation type
OPERATION_OF = {"gke.cluster": "CREATE_CLUSTER", "gke.node_pool": "CREATE_NODE_POOL"}  # what a create waits for
EMULATORS = ("gke", "compute", "gcs")
APPLY_DONE = re.compile(r"Apply complete! .* in ([0-9.]+)s\.")  # apply's last line: its apply phase's seconds


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.gcp_half", description=__doc__)
    parser.add_argument("--applies", type=int, default=3, help="applies from nothing to time (default 3)")
    parser.add_argument("--plans", type=int, default=10, help="no-op plans to time (default 10)")
    args = parser.parse_args(argv)

    result = in_own_sandbox(lambda state, scratch: _measure(state, scratch, args.applies, args.plans))
    write_results("gcp_half", result, _markdown(result))
    return result


def _measure(state: dict, scratch: Path, applies: int, plans: int) -> dict:
    env = {**os.environ, **state["env"], "NO_COLOR": "1"}
    urls = {name: f"http://127.0.0.1:{state['emulators'][name]['port']}/_sandbox" for name in EMULATORS}
    call("POST", f"{urls['gke']}/operation-latency", LATENCIES)
    apply_runs = []
    for run in range(applies):
        spec = _spec(scratch, f"bench-gcp-half-{run}-{os.getpid()}")
        critical, sequential = _paths(spec, env)
        started = time.perf_counter()
        completed = saxctl(["apply", "--auto-approve", str(spec)], env)
        wall = time.perf_counter() - started
        phase = float(APPLY_DONE.search(completed.stdout)[1])
        apply_runs.append({"cli_seconds": wall, "apply_seconds": phase, "critical_path_seconds": critical,
                           "sequential_seconds": sequential})
    calls, seconds = [], []
    for _ in range(plans):
        for name in EMULATORS:
            call("DELETE", f"{urls[name]}/requests")
        started = time.perf_counter()
        completed = saxctl(["plan", "--detailed-exitcode", str(spec)], env)
        seconds.append(time.perf_counter() - started)
        calls.append({name: call("GET", f"{urls[name]}/requests")["requests"] for name in EMULATORS})
    critical = apply_runs[0]["critical_path_seconds"]
    return {
        "benchmark": "gcp_half",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "spec": f"{SOURCE.relative_to(REPO)}: its project, cluster and buckets",
        "operation_latency_seconds": LATENCIES,
        "apply": {
            "runs": applies,
            "critical_path_seconds": critical,
            "sequential_sum_seconds": apply_runs[0]["sequential_seconds"],
            "apply_phase_seconds": _stats([run["apply_seconds"] for run in apply_runs]),
            "cli_seconds": _stats([run["cli_seconds"] for run in apply_runs]),
            "apply_phase_over_critical_path": round(
                sorted(run["apply_seconds"] for run in apply_runs)[len(apply_runs) // 2] / critical, 3),
        },
        "noop_plan": {
            "runs": plans,
            "cli_seconds": _stats(seconds),
            "calls_per_plan": {name: _counted(calls, name) for name in EMULATORS},
        },
    }


def _spec(scratch: Path, project: str) -> Path:
    """The 2x2 spec's GCP half (everything before its Kubernetes and Sax sections) in a project of its own."""
    text = SOURCE.read_text().replace("saxctl-demo", project)
    path = scratch / f"{project}.yaml"
    path.write_text(text[:text.index("\nidentity:")] + "\n")
    return path


def _paths(spec: Path, env: dict) -> tuple[float, float]:
    """(critical path, sequential sum) of the operation latencies of the plan's creates, along its dependencies."""
    steps = plan_steps(spec, env)
    found = paths(steps, {step.address: LATENCIES.get(OPERATION_OF.get(step.kind, ""), 0.0) for step in steps})
    return found.critical_seconds, found.sequential_seconds


def _counted(calls: list[dict], emulator: str) -> dict:
    per_plan = [runs[emulator] for runs in calls]
    reads = [sum(1 for call in run if call["method"] == "GET") for run in per_plan]
    writes = [sum(1 for call in run if call["method"] != "GET") for run in per_plan]
    methods = sorted({call.get("method_id") or f"{call['method']} {call['path']}" for run in per_plan for call in run})
    return {"reads": max(reads), "writes": max(writes), "methods": methods}


def _markdown(result: dict) -> str:
    apply, plan = result["apply"], result["noop_plan"]
    latency = ", ".join(f"{kind} {seconds:g} s" for kind, seconds in result["operation_latency_seconds"].items())
    rows = "\n".join(
        f"| {name} | {counts['reads']} | {counts['writes']} | {', '.join(counts['methods'])} |"
        for name, counts in plan["calls_per_plan"].items())
    return (
        f"# The GCP half of gptj-v5e-2x2 on the sandbox ({result['machine']['cpus']} cores)\n\n"
        f"Operation latencies: {latency}.\n\n"
        f"## Apply from nothing ({apply['runs']} runs)\n\n"
        f"| what | seconds |\n|---|---|\n"
        f"| critical path of the dependency graph | {apply['critical_path_seconds']:.1f} |\n"
        f"| the tutorial's order, one step after another | {apply['sequential_sum_seconds']:.1f} |\n"
        f"| `saxctl apply`: its apply phase, median | {apply['apply_phase_seconds']['median']:.1f} |\n"
        f"| `saxctl apply`: the whole command, median | {apply['cli_seconds']['median']:.1f} |\n\n"
        f"Apply phase / critical path: **{apply['apply_phase_over_critical_path']:.2f}x** (target 1.2x).\n\n"
        f"## No-op plan ({plan['runs']} runs): {plan['cli_seconds']['median'] * 1000:.0f} ms median, "
        f"{plan['cli_seconds']['p90'] * 1000:.0f} ms p90 (CLI, process start included)\n\n"
        f"| emulator | reads | writes | calls |\n|---|---|---|---|\n{rows}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
