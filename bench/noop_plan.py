"""No-op plans: over two buckets (wall time and API calls: one read per bucket, zero writes), and of the tutorial's
spec (specs/gptj-v5e-2x2.yaml, applied first) with where its time goes, phase by phase.

The tutorial's plan is timed as whole processes (target: 0.6 s median on an idle 2-core machine), with each process's
CPU time (user + system, from wait4), which the shared machine's load does not inflate as it does the wall time; then
the same plan under bench.plan_phases: start, CLI import, command, spec, connect, plan, render, and within the plan
each API family's import and reads (CPU and wall), the modules imported, so that a regression shows which phase grew.
`saxctl validate` of the spec (start, spec load and checks, no API call; target 0.15 s) is timed beside it.

Runs in its own sandbox (a temporary state dir), so it never touches a sandbox you have running.
Compared with the floor any tool must pay: the same two bucket reads made directly with google-cloud-storage.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import call, in_own_sandbox, machine, run_measured, stats, write_results

SPEC = """\
apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: bench-noop}
project: {id: saxctl-bench, region: us-central1}
buckets:
  admin: {name: bench-noop-admin, location: US}
  data: {name: bench-noop-data, location: US, labels: {team: ml}}
"""
TUTORIAL = Path(__file__).resolve().parents[1] / "specs" / "gptj-v5e-2x2.yaml"
PHASES = ("start", "cli", "command", "spec", "connect", "plan", "render")


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.noop_plan", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="plans to time (default 15)")
    args = parser.parse_args(argv)

    # Measured as installed: pip compiles saxctl's bytecode. A checkout never imported with bytecode writing on
    # (PYTHONDONTWRITEBYTECODE) would compile its ~100 modules from source on every run: 0.3-0.4 s of CPU.
    compileall.compile_dir(TUTORIAL.parents[1] / "reconciler", quiet=1)
    result = in_own_sandbox(lambda state, scratch: {**_measure(state, scratch, args.runs),
                                                    "tutorial": _tutorial(state, scratch, args.runs)})
    write_results("noop_plan", result, _markdown(result) + _tutorial_markdown(result["tutorial"]))
    return result


def _measure(state: dict, scratch: Path, runs: int) -> dict:
    env = {**os.environ, **state["env"], "NO_COLOR": "1"}
    spec = scratch / "bench-noop.yaml"
    spec.write_text(SPEC)
    saxctl = [sys.executable, "-m", "reconciler"]
    subprocess.run(saxctl + ["apply", "--auto-approve", str(spec)], env=env, check=True, capture_output=True)
    control = f"{state['env']['STORAGE_EMULATOR_HOST']}/_sandbox/requests"

    cli_seconds, calls = [], []
    for _ in range(runs):
        call("DELETE", control)
        started = time.perf_counter()
        completed = subprocess.run(saxctl + ["plan", "--detailed-exitcode", str(spec)], env=env, capture_output=True)
        cli_seconds.append(time.perf_counter() - started)
        if completed.returncode != 0:
            raise SystemExit(f"the no-op plan reported changes or failed:\n{completed.stdout}{completed.stderr}")
        calls.append(call("GET", control)["requests"])

    in_process, floor = _in_process(spec, env, runs)
    reads = [sum(1 for c in run if c["method"] == "GET") for run in calls]
    writes = [sum(1 for c in run if c["method"] != "GET") for run in calls]
    return {
        "benchmark": "noop_plan",
        "machine": machine(),
        "runs": runs,
        "buckets": 2,
        "api_calls_per_plan": {"reads": max(reads), "writes": max(writes),
                               "calls": sorted({f"{c['method']} {c['path']}" for run in calls for c in run})},
        "saxctl_plan_cli_seconds": stats(cli_seconds),
        "saxctl_plan_in_process_seconds": stats(in_process),
        "floor_two_bucket_gets_seconds": stats(floor),
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


def _tutorial(state: dict, scratch: Path, runs: int) -> dict:
    """The tutorial's spec applied, then its no-op plan: whole processes, and phase by phase."""
    from reconciler.sandbox.sample_checkpoint import write_sample_gptj

    env = {**os.environ, **state["env"], "NO_COLOR": "1", "GPTJ_CHECKPOINT": str(write_sample_gptj(scratch / "gptj"))}
    saxctl = str(Path(sys.executable).with_name("saxctl"))
    run_measured([saxctl, "apply", "--auto-approve", str(TUTORIAL)], env=env)
    plan = [saxctl, "plan", "--detailed-exitcode", str(TUTORIAL)]
    wall, cpu, validate_wall, validate_cpu, phased = [], [], [], [], []
    for _ in range(runs):  # interleaved, so that the shared machine's load weighs on each alike
        measured = run_measured(plan, env=env)
        wall.append(measured.seconds)
        cpu.append(measured.cpu_seconds)
        measured = run_measured([saxctl, "validate", str(TUTORIAL)], env=env)
        validate_wall.append(measured.seconds)
        validate_cpu.append(measured.cpu_seconds)
        phased.append(_phased(plan[1:], env, scratch / "phases.json"))
    families = sorted({family for run in phased for family in run["families"]})
    return {
        "spec": str(TUTORIAL.relative_to(TUTORIAL.parents[1])),
        "plan_cli_seconds": stats(wall),
        "plan_cli_cpu_seconds": stats(cpu),
        "plan_modules_imported": max(run["modules"] for run in phased),
        "validate_cli_seconds": stats(validate_wall),
        "validate_cli_cpu_seconds": stats(validate_cpu),
        "phases_seconds": {phase: stats([run["phases_seconds"][phase] for run in phased]) for phase in PHASES},
        "families": {family: {key: stats([run["families"].get(family, {}).get(key, 0.0) for run in phased])
                              for key in ("import_cpu", "import_wall", "reads_cpu", "reads_wall")}
                     | {"imported_modules": max(run["families"].get(family, {}).get("imported_modules", 0)
                                                for run in phased)}
                     for family in families},
    }


def _phased(args: list[str], env: dict, out: Path) -> dict:
    """One CLI run under bench.plan_phases (the same command, its phases timed)."""
    command = [sys.executable, "-m", "bench.plan_phases", str(out), repr(time.perf_counter()), "--", *args]
    completed = subprocess.run(command, env={**env, "PYTHONPATH": str(TUTORIAL.parents[1])}, capture_output=True,
                               text=True)
    if completed.returncode != 0:
        raise SystemExit(f"the tutorial's no-op plan reported changes or failed:\n{completed.stdout}{completed.stderr}")
    return json.loads(out.read_text())


def _markdown(result: dict) -> str:
    calls = result["api_calls_per_plan"]
    rows = [
        ("`saxctl plan` (CLI, process start included)", result["saxctl_plan_cli_seconds"]),
        ("saxctl plan in process (observe + diff)", result["saxctl_plan_in_process_seconds"]),
        ("floor: two `get_bucket` calls, google-cloud-storage", result["floor_two_bucket_gets_seconds"]),
    ]
    table = "\n".join(f"| {name} | {s['median'] * 1000:.1f} | {s['p90'] * 1000:.1f} |" for name, s in rows)
    return (f"# No-op plan over two buckets (sandbox, {result['runs']} runs, {result['machine']['cpus']} cores, "
            f"1-minute load average {result['machine']['load_average_1min_at_end']} at the end: the machine is "
            "shared)\n\n"
            f"API calls per plan: **{calls['reads']} reads, {calls['writes']} writes** "
            f"({', '.join(calls['calls'])}).\n\n"
            f"| what | median ms | p90 ms |\n|---|---|---|\n{table}\n")



def _tutorial_markdown(tutorial: dict) -> str:
    def ms(figures: dict) -> str:
        return f"{figures['median'] * 1000:.0f} | {figures['p90'] * 1000:.0f}"

    phases = "\n".join(f"| {phase} | {ms(tutorial['phases_seconds'][phase])} |" for phase in PHASES)
    families = "\n".join(
        f"| {name} | {ms(f['import_cpu'])} | {ms(f['import_wall'])} | {f['imported_modules']} | {ms(f['reads_cpu'])} | "
        f"{ms(f['reads_wall'])} |" for name, f in tutorial["families"].items())
    return (f"\n# No-op plan of the tutorial's spec ({tutorial['spec']}, applied)\n\n"
            "| command | median ms | p90 ms | CPU median ms | CPU p90 ms |\n|---|---|---|---|---|\n"
            f"| `saxctl plan --detailed-exitcode` | {ms(tutorial['plan_cli_seconds'])} | "
            f"{ms(tutorial['plan_cli_cpu_seconds'])} |\n"
            f"| `saxctl validate` | {ms(tutorial['validate_cli_seconds'])} | "
            f"{ms(tutorial['validate_cli_cpu_seconds'])} |\n\n"
            "Both as a user meets them after the first run: the spec's schema check remembered (schema_cache), "
            "bytecode compiled.\n\n"
            f"Modules imported by the plan: {tutorial['plan_modules_imported']}. Phases of the plan, one after the "
            "other (wall; `python -m bench.plan_phases`): start is the interpreter, cli the import of saxctl's CLI, "
            "command the argument parsing and the plan command's own imports, spec its load and checks with the "
            "desired resources, connect the storage client of the lock's homes, plan the reads and the diff, render "
            "the rest to the exit.\n\n"
            f"| phase | median ms | p90 ms |\n|---|---|---|\n{phases}\n\n"
            "Within connect and plan, by API family (families read in parallel: their wall times overlap, their CPU "
            "times add up; a module is the import of the family that imported it first):\n\n"
            "| family | import CPU ms | p90 | import wall ms | p90 | modules | reads CPU ms | p90 | reads wall ms | "
            f"p90 |\n|---|---|---|---|---|---|---|---|---|---|\n{families}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
