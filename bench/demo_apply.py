"""The whole demo spec (specs/gptj-v5e-2x2.yaml) applied from nothing on the sandbox: apply wall time against the
critical path of its dependency graph and against the tutorial's order, one step after another (the sum); and the
tutorial's end to end, cold (apply from nothing) and warm (apply of a world in sync), to the model's first answer.

Buckets, cluster and TPU pool, IAM, the sample GPT-J converted and uploaded, the Kubernetes objects rolled out, the
Sax model published and loaded. Runs in its own sandbox, each apply in a project and namespace of its own, with the
GKE operation latencies of bench/gcp_half.py. A step's cost is its configured latency where the sandbox has one (the
cluster's and the pool's create); every other step (buckets, IAM, upload, rollouts, publish and load) costs what
the apply itself reported for it (its `ADDRESS: Created after N.Ns` progress line). Target: apply within 1.2x of
the critical path.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from bench.chaos_world import World
from bench.critical_path import paths, plan_steps
from bench.gcp_half import APPLY_DONE, LATENCIES, OPERATION_OF
from bench.harness import (call, demo_spec_as, in_own_sandbox, machine, saxctl, stats, with_sample_checkpoint,
                           write_results)

MODEL = "gptj4bf16bs32"  # the demo spec's model
_STEP_DONE = re.compile(r"^(?P<address>\S+): (Created|Updated|Replaced) after (?P<seconds>[0-9.]+)s$", re.MULTILINE)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.demo_apply", description=__doc__)
    parser.add_argument("--applies", type=int, default=2, help="applies from nothing to time (default 2)")
    args = parser.parse_args(argv)

    result = in_own_sandbox(lambda state, scratch: _measure(state, scratch, args.applies))
    write_results("demo_apply", result, _markdown(result))
    return result


def _measure(state: dict, scratch: Path, applies: int) -> dict:
    env = with_sample_checkpoint({**os.environ, **state["env"], "NO_COLOR": "1"}, scratch)
    call("POST", f"http://127.0.0.1:{state['emulators']['gke']['port']}/_sandbox/operation-latency", LATENCIES)
    world = World(env)
    runs = []
    for run in range(applies):
        name = f"bench-demo-{run}-{os.getpid() % 10000:04d}"
        world.make_namespace(name)
        runs.append(_apply(demo_spec_as(name, scratch), env))
    middle = sorted(runs, key=lambda run: run["over_critical_path"])[len(runs) // 2]
    return {
        "benchmark": "demo_apply",
        "machine": machine(),
        "spec": "specs/gptj-v5e-2x2.yaml, whole, with the sandbox's sample GPT-J as its checkpoint",
        "operation_latency_seconds": LATENCIES,
        "runs": applies,
        "critical_path_seconds": stats([run["critical_path_seconds"] for run in runs]),
        "sequential_sum_seconds": stats([run["sequential_sum_seconds"] for run in runs]),
        "apply_phase_seconds": stats([run["apply_phase_seconds"] for run in runs]),
        "cli_seconds": stats([run["cli_seconds"] for run in runs]),
        "first_answer_seconds": stats([run["first_answer_seconds"] for run in runs]),
        "warm_first_answer_seconds": stats([run["warm_first_answer_seconds"] for run in runs]),
        "apply_phase_over_critical_path": middle["over_critical_path"],
        "median_run": middle,
    }


def _apply(spec: Path, env: dict) -> dict:
    """One apply from nothing: its wall times, and each step's cost along the plan's graph."""
    steps = plan_steps(spec, env)
    started = time.perf_counter()
    completed = saxctl(["apply", "--auto-approve", str(spec)], env)
    cli = time.perf_counter() - started
    first_answer = cli + _generate(spec, env)
    started = time.perf_counter()
    saxctl(["apply", "--auto-approve", str(spec)], env)  # warm: everything in sync, the model loaded
    warm_answer = time.perf_counter() - started + _generate(spec, env)
    measured = reported_durations(completed.stderr)
    configured = {step.address: LATENCIES[OPERATION_OF[step.kind]] for step in steps if step.kind in OPERATION_OF}
    missing = [step.address for step in steps if step.address not in measured]
    if missing:
        raise SystemExit(f"apply reported no duration for {', '.join(missing)}:\n{completed.stderr}")
    cost = {step.address: configured.get(step.address, measured[step.address]) for step in steps}
    found = paths(steps, cost)
    apply_phase = float(APPLY_DONE.search(completed.stdout)[1])
    name = spec.stem
    return {
        "critical_path_seconds": found.critical_seconds,
        "sequential_sum_seconds": found.sequential_seconds,
        "apply_phase_seconds": apply_phase,
        "cli_seconds": round(cli, 3),
        "first_answer_seconds": round(first_answer, 3),
        "warm_first_answer_seconds": round(warm_answer, 3),
        "over_critical_path": round(apply_phase / found.critical_seconds, 3),
        "critical_path": [step.replace(name, "RUN") for step in found.chain],
        "steps": [{"address": step.address.replace(name, "RUN"), "kind": step.kind,
                   "parents": [parent.replace(name, "RUN") for parent in step.parents],
                   "configured_seconds": configured.get(step.address), "measured_seconds": measured[step.address]}
                  for step in steps],
    }


def _generate(spec: Path, env: dict) -> float:
    """Seconds `saxctl generate` takes to print the model's first answer (the demo's model, the README's prompt)."""
    started = time.perf_counter()
    answered = saxctl(["generate", str(spec), MODEL, "The capital of France is"], env)
    if not answered.stdout.strip():
        raise SystemExit(f"saxctl generate printed no answer:\n{answered.stderr}")
    return time.perf_counter() - started


def reported_durations(progress: str) -> dict[str, float]:
    """Each step's duration as the apply's progress lines report it when the step is done (render/progress.py)."""
    return {found["address"]: float(found["seconds"]) for found in _STEP_DONE.finditer(progress)}


def _markdown(result: dict) -> str:
    run = result["median_run"]
    on_path = set(run["critical_path"])
    rows = "\n".join(_row(step, step["address"] in on_path) for step in run["steps"])
    return (
        f"# The whole gptj-v5e-2x2 demo spec applied on the sandbox ({result['machine']['cpus']} cores, "
        f"load {result['machine']['load_average_1min_at_end']} at the end)\n\n"
        f"Buckets, cluster and TPU pool, IAM, the sample GPT-J converted and uploaded, the Kubernetes objects rolled "
        f"out, the Sax model published and loaded. A step costs its configured GKE operation latency where it has "
        f"one, else what the apply reported for it.\n\n"
        f"## Apply from nothing ({result['runs']} runs, medians)\n\n"
        f"| what | seconds |\n|---|---|\n"
        f"| critical path of the dependency graph | {result['critical_path_seconds']['median']:.1f} |\n"
        f"| the tutorial's order, one step after another | {result['sequential_sum_seconds']['median']:.1f} |\n"
        f"| `saxctl apply`: its apply phase | {result['apply_phase_seconds']['median']:.1f} |\n"
        f"| `saxctl apply`: the whole command | {result['cli_seconds']['median']:.1f} |\n"
        f"| cold: `saxctl apply` from nothing, then `saxctl generate` until its first answer | "
        f"{result['first_answer_seconds']['median']:.1f} |\n"
        f"| warm: `saxctl apply` with everything in sync, then `saxctl generate` | "
        f"{result['warm_first_answer_seconds']['median']:.1f} |\n\n"
        f"Apply phase / critical path: **{result['apply_phase_over_critical_path']:.2f}x** (target 1.2x).\n\n"
        f"## Steps of the median run (critical path in bold: {' → '.join(run['critical_path'])})\n\n"
        f"| step | configured latency, s | reported by the apply, s |\n|---|---|---|\n{rows}\n")


def _row(step: dict, on_path: bool) -> str:
    address = f"**{step['address']}**" if on_path else step["address"]
    configured = "" if step["configured_seconds"] is None else f"{step['configured_seconds']:g}"
    return f"| {address} | {configured} | {step['measured_seconds']:.1f} |"


if __name__ == "__main__":
    main(sys.argv[1:])
