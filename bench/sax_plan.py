"""A no-op plan of Sax models with 1, 10, 100 and 1,000 published: admin calls and wall time.

The Sax provider reads a cell with one List (every model) and one Stats, whatever the number of models, plus the
ownership record. Measured in a sandbox of its own: the tutorial's spec applied (its one model published and loaded
by the stand-ins), then more models published straight to the admin (through the same port-forward). A valid spec
cannot hold 1,000 models on one model server (Sax loads one model per server, and the spec check says so), so the
provider is timed in process on N desired models built from the spec's first one (its observe, owned and diff: the
plan's Sax part); and the whole `saxctl plan` of the spec is timed too, with the other N-1 models in the cell (the
List grows with them).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import time
from pathlib import Path

from bench.harness import in_own_sandbox, machine, run_measured, stats, write_results

COUNTS = (1, 10, 100, 1000)
_ADMIN_CALL = re.compile(r"sax Admin/(?P<method>\w+) →")


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.sax_plan", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed plans per count (default 5)")
    args = parser.parse_args(argv)
    result = in_own_sandbox(lambda state, scratch: _measure(state, scratch, args.runs))
    write_results("sax_plan", result, _markdown(result))
    return result


def _measure(state: dict, scratch: Path, runs: int) -> dict:
    from reconciler.sandbox.sample_checkpoint import write_sample_gptj

    env = {**os.environ, **state["env"], "NO_COLOR": "1", "GPTJ_CHECKPOINT": str(write_sample_gptj(scratch / "gptj"))}
    os.environ.update(env)
    spec_path = Path(__file__).resolve().parents[1] / "specs" / "gptj-v5e-2x2.yaml"
    saxctl = str(Path(sys.executable).with_name("saxctl"))
    first = run_measured([saxctl, "apply", "--auto-approve", str(spec_path)], env=env)
    cell, template, spec = _in_process_parts(str(spec_path))
    counts = {}
    for count in COUNTS:
        _publish_up_to(cell, template, count)
        counts[str(count)] = {"in_process": _time_provider(template, spec, count, runs),
                              "cli_plan": _time_cli(saxctl, spec_path, env, runs)}
    return {"benchmark": "sax_plan", "machine": machine(), "runs": runs,
            "first_apply_seconds": round(first.seconds, 2), "counts": counts}


def _in_process_parts(spec_path: str):
    from reconciler.providers import table
    from reconciler.providers.clients import Clients
    from reconciler.providers.kubernetes.options import KubeOptions
    from reconciler.providers.sax.cell import Cell, Kube
    from reconciler.providers.sax.generate import model_params
    from reconciler.spec.loader import load_spec

    spec = load_spec(spec_path)
    params = model_params(spec, table.connect(spec).providers, spec.models[0].name)
    storage = Clients(spec).storage
    cell = Cell(params, storage, Kube(params, KubeOptions()))
    assert cell.connect(), "the admin has written its location"
    template = next(r for r in table.desired_resources(spec) if r.kind == "sax.model")
    return cell, dataclasses.replace(template, params={**template.params, **params}), spec


def _model(template, index: int):
    from reconciler.providers.sax import addresses

    if index == 0:
        return template
    name = f"bench{index:04d}"
    return dataclasses.replace(template, address=addresses.model(name), name=name,
                               params={**template.params, "model_id": f"/sax/test/{name}"},
                               remote_id=f"/sax/test/{name}")


def _publish_up_to(cell, template, count: int) -> None:
    """Models 1..count-1 published straight to the admin (model 0 is the spec's). They are not in the ownership
    record: the spec's plan leaves them alone (a record listing them would prune them), and the provider reads and
    compares them all the same."""
    have = {model.model_id for model in cell.list()}
    for index in range(1, count):
        resource = _model(template, index)
        model_id = resource.params["model_id"]
        if model_id not in have:
            cell.publish(model_id, resource.fields)


def _time_provider(template, spec, count: int, runs: int) -> dict:
    """The plan's Sax part on count desired models, with a provider of its own each time as a plan has: observe (the
    location, the admin pod, List + Stats, the record), owned, diff."""
    from reconciler.providers import table

    calls: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: calls.append(record.getMessage())
    log = logging.getLogger("reconciler.providers.sax.cell")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    resources = [_model(template, index) for index in range(count)]
    seconds, admin_calls = [], []
    try:
        for _ in range(runs):
            calls.clear()
            started = time.perf_counter()
            provider = table.connect(spec).providers.for_kind("sax.model")
            observed = provider.observe(resources)
            provider.owned(spec.name, frozenset({"sax.model"}))
            actions = {provider.diff(r, observed[r.address]).action.value for r in resources}
            seconds.append(time.perf_counter() - started)
            assert actions == {"no-op"}, actions
            admin_calls.append(sorted(_ADMIN_CALL.search(call)["method"] for call in calls if _ADMIN_CALL.search(call)))
    finally:
        log.removeHandler(handler)
    assert all(each == admin_calls[0] for each in admin_calls)
    return {"seconds": stats(seconds), "admin_calls": admin_calls[0]}


def _time_cli(saxctl: str, spec_path: Path, env: dict, runs: int) -> dict:
    seconds = [run_measured([saxctl, "plan", "--detailed-exitcode", str(spec_path)], env=env).seconds
               for _ in range(runs)]
    logged = run_measured([saxctl, "-v", "plan", "--detailed-exitcode", str(spec_path)], env=env).err
    return {"seconds": stats(seconds), "admin_calls": sorted(m["method"] for m in _ADMIN_CALL.finditer(logged))}


def _markdown(result: dict) -> str:
    lines = ["# No-op plan of Sax models (bench/sax_plan.py)", "",
             f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}, load "
             f"{result['machine']['load_average_1min_at_end']} at the end; {result['runs']} runs each, median (min, "
             f"p90). First apply of the tutorial spec (cluster to loaded model): {result['first_apply_seconds']} s.",
             "", "| published models | provider in process (observe + owned + diff) | admin calls "
             "| whole `saxctl plan` (the spec's 1 model, the rest in the cell) | admin calls |",
             "|---|---|---|---|---|"]
    for count, measured in result["counts"].items():
        inner, cli = measured["in_process"], measured["cli_plan"]
        lines.append(f"| {count} | {_seconds(inner['seconds'])} | {' + '.join(inner['admin_calls'])} | "
                     f"{_seconds(cli['seconds'])} | {' + '.join(cli['admin_calls'])} |")
    return "\n".join(lines) + "\n"


def _seconds(measured: dict) -> str:
    return f"{measured['median'] * 1000:.0f} ms ({measured['min'] * 1000:.0f}, {measured['p90'] * 1000:.0f})"


if __name__ == "__main__":
    main(sys.argv[1:])
