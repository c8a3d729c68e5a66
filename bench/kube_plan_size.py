"""No-op plan cost against the number of Kubernetes objects, 10 → 200: saxctl against `kubectl diff --server-side`
of the same objects on the same apiserver, wall and CPU time and requests per plan; requests must grow at most
linearly with the objects, and the benchmark fails when they do not.

A spec cannot hold 200 Kubernetes objects: it has 6 (7 for a multi-host slice), one cell, one namespace, and
replicas add pods, not objects. So each size is the tutorial spec's objects plus copies of its members under new
names, members of the spec's ApplySet like its own (bench/kube_sized_plan.py), and each timed saxctl process is the
Kubernetes part of `saxctl plan --kubeconfig` on them (start, spec load, provider import, observe, the ApplySet's
lists, diff, preflight; no GCP family, no rendering: bench/kube_plan_apply.py times the whole CLI on the spec's own
six). kubectl is the sandbox's, with a warm discovery cache, as in bench/kube_plan_apply.py.

Every object is applied once by kubectl with field manager saxctl, so both tools' plans are no-ops. Each command is
timed as a whole process (wall, and CPU from wait4: hardly inflated by a loaded machine), saxctl and kubectl
interleaved run by run; requests are counted as the other benchmarks count them, from each client's own log of its
requests to the apiserver, in one extra run per size (saxctl's -v lines, kubectl's -v=6).

Runs in its own sandbox (a temporary state dir), so it never touches a sandbox you have running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.harness import in_own_sandbox, machine, run_measured, stats, write_results
from bench.kube_plan_apply import HTTP_IMAGE, SPEC, saxctl_requests
from bench.kubectl_baseline import Kubectl, kubectl_requests

SIZES = (10, 25, 50, 100, 200)
TOOLS = ("saxctl", "kubectl")
SIZED_PLAN = Path(__file__).resolve().with_name("kube_sized_plan.py")


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.kube_plan_size", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="timed plans of each tool per size (default 7)")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, metavar="OBJECTS",
                        help=f"numbers of Kubernetes objects (default {' '.join(map(str, SIZES))})")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest size, one run; the result printed as JSON, not written")
    args = parser.parse_args(argv)
    sizes, runs = (sorted(args.sizes)[:1], 1) if args.smoke else (sorted(set(args.sizes)), args.runs)

    from reconciler.sandbox import gobuild

    kubectl = gobuild.ensure_binary("kubectl", lambda message: print(f"[sandbox] {message}", file=sys.stderr))
    result = in_own_sandbox(lambda state, scratch: _measure(state, scratch, kubectl, sizes, runs))
    if args.smoke:
        print(json.dumps(result))  # for tests/bench/test_kube_plan_size.py
    else:
        write_results("kube_plan_size", result, _markdown(result))
    if not result["linear_requests"]["saxctl"]["ok"]:
        raise SystemExit(f"saxctl's plan requests grow faster than the objects: {result['linear_requests']['saxctl']}")
    return result


def _measure(state: dict, scratch: Path, kubectl_binary: Path, sizes: list[int], runs: int) -> dict:
    from bench.kube_sized_plan import sized_resources
    from reconciler.spec.loader import load_spec

    env = {**os.environ, **state["env"], "NO_COLOR": "1"}
    kubeconfig = state["env"]["SAXCTL_SANDBOX_KUBECONFIG"]
    spec_path = scratch / "bench-kube.yaml"
    spec_path.write_text(SPEC.format(http_image=f"{HTTP_IMAGE}:v1.0.0"))
    spec = load_spec(str(spec_path))
    kubectl = Kubectl(kubectl_binary, kubeconfig, scratch, field_manager="saxctl")

    def plan(size: int, *extra: str):
        # -P: bench/ is not put on the path, so the process imports what a saxctl process imports
        return run_measured([sys.executable, "-P", str(SIZED_PLAN), str(spec_path), str(size), kubeconfig, *extra],
                            env=env)

    measured = {}
    for size in sizes:
        objects = [resource.params["manifest"] for resource in sized_resources(spec, size)]
        kubectl.write_manifest(objects)
        kubectl.run("apply")  # creates what the size adds; the objects of the sizes before are there already
        plan(size)  # untimed: fills the page cache, and exits 1 if the plan is not a no-op
        kubectl.run("diff")  # untimed: fills kubectl's discovery cache, as a kubectl user's is
        timed: dict[str, dict[str, list[float]]] = {tool: {"wall": [], "cpu": []} for tool in TOOLS}
        for _ in range(runs):
            for tool, run in (("saxctl", lambda: plan(size)), ("kubectl", lambda: kubectl.measure("diff"))):
                one = run()
                timed[tool]["wall"].append(one.seconds)
                timed[tool]["cpu"].append(one.cpu_seconds)
        requests = {"saxctl": saxctl_requests(plan(size, "-v").err),
                    "kubectl": kubectl_requests(kubectl.measure("diff", "-v=6").err)}
        measured[str(len(objects))] = {tool: {"seconds": stats(timed[tool]["wall"]),
                                              "cpu_seconds": stats(timed[tool]["cpu"]),
                                              "requests": requests[tool]} for tool in TOOLS}
    return {
        "benchmark": "kube_plan_size",
        "machine": machine(),
        "kubectl": kubectl.version(),
        "runs": runs,
        "spec_objects": len(sized_resources(spec, 0)),
        "sizes": measured,
        "linear_requests": {tool: linear_growth({int(size): each[tool]["requests"]["count"]
                                                 for size, each in measured.items()}) for tool in TOOLS},
    }


def linear_growth(requests: dict[int, int]) -> dict:
    """Requests per object at each size, and per object added since the size before. They grow at most linearly
    when no size asks more per object than the smallest: a fixed part plus so many per object asks less and less
    per object as objects are added; a read that grows with the objects for each object (a list per object, say)
    asks more and more."""
    sizes = sorted(requests)
    per_object = {size: requests[size] / size for size in sizes}
    bound = per_object[sizes[0]]
    return {"per_object": {str(size): round(ratio, 3) for size, ratio in per_object.items()},
            "per_added_object": {f"{before}→{after}": round((requests[after] - requests[before]) / (after - before),
                                                             3) for before, after in zip(sizes, sizes[1:])},
            "bound": round(bound, 3),
            "ok": all(ratio <= bound for ratio in per_object.values())}


def _markdown(result: dict) -> str:
    def cell(measured: dict) -> str:
        wall, cpu, requests = measured["seconds"], measured["cpu_seconds"], measured["requests"]
        verbs = ", ".join(f"{verb} {n}" for verb, n in requests["by_verb"].items())
        return (f"{wall['median'] * 1000:.0f} ({wall['p90'] * 1000:.0f}) | {cpu['median'] * 1000:.0f} | "
                f"{requests['count']} ({verbs})")

    rows = "\n".join(f"| {size} | {cell(each['saxctl'])} | {cell(each['kubectl'])} |"
                     for size, each in result["sizes"].items())
    linear = result["linear_requests"]

    def growth(tool: str) -> str:
        check = linear[tool]
        per_object = ", ".join(f"{size}: {ratio}" for size, ratio in check["per_object"].items())
        per_added = ", ".join(f"{step}: {ratio}" for step, ratio in check["per_added_object"].items())
        verdict = "at most linear" if check["ok"] else "**faster than linear**"
        return (f"- {tool}: requests per object {per_object}; per object added {per_added or '(one size)'}: "
                f"{verdict} (no size above {check['bound']} per object).")

    m = result["machine"]
    return (f"# No-op plan against the number of Kubernetes objects: saxctl and `kubectl diff --server-side` "
            f"(kubectl {result['kubectl']}, sandbox apiserver, {result['runs']} runs, {m['cpus']} cores, load "
            f"average {m['load_average_1min_at_end']} at the end)\n\n"
            f"A spec holds {result['spec_objects']} Kubernetes objects; each size is its objects and copies of its "
            "members in the spec's ApplySet (bench/kube_sized_plan.py). saxctl: the Kubernetes part of `saxctl plan` "
            "as a process of its own (start, spec, provider, observe, the ApplySet's lists, diff); kubectl: the "
            "whole `kubectl diff --server-side` of the same objects, warm discovery cache. Whole processes, "
            "interleaved; wall median (p90) and CPU median in ms; requests to the apiserver from each client's own "
            "log.\n\n"
            "| objects | saxctl wall ms | saxctl CPU ms | saxctl requests | kubectl wall ms | kubectl CPU ms "
            "| kubectl requests |\n|---|---|---|---|---|---|---|\n"
            f"{rows}\n\nGrowth of the requests:\n\n{growth('saxctl')}\n{growth('kubectl')}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
