"""Plots of the benchmark results a person reads at a glance: PNGs in bench/results/, from the results' JSON.

`python -m bench plots` redraws them from what is in bench/results/ (run the benchmarks first); a result that is
not there yet is skipped with a note. matplotlib comes with the `bench` extra.
"""

from __future__ import annotations

import json
import sys

from bench.harness import RESULTS

TOOLS = {"saxctl": "#1f77b4", "kubectl": "#7f7f7f", "ansible": "#d62728"}
# The same step by each tool (saxctl's plan is kubectl's diff and Ansible's check mode).
STEPS = {
    "no-op plan": {"saxctl": "saxctl_plan_no_change", "kubectl": "kubectl_diff_no_change",
                   "ansible": "ansible_check_no_change"},
    "plan, one image changed": {"saxctl": "saxctl_plan_one_image_changed", "kubectl": "kubectl_diff_one_image_changed",
                                "ansible": "ansible_check_one_image_changed"},
    "no-op apply": {"saxctl": "saxctl_apply_no_change", "kubectl": "kubectl_apply_no_change",
                    "ansible": "ansible_apply_no_change"},
}


def main(argv: list[str]) -> dict:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    drawn = {}
    for name, draw in (("plan_time_by_tool", _plan_time_by_tool), ("plan_time_by_size", _plan_time_by_size),
                       ("apply_vs_critical_path", _apply_vs_critical_path), ("conversion_vs_cp", _conversion_vs_cp)):
        figure = draw()
        if figure is None:
            print(f"plots: {name}.png skipped: its benchmark's results are not in {RESULTS}", file=sys.stderr)
            continue
        path = RESULTS / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        drawn[name] = str(path)
        print(f"plots: wrote {path}")
    return drawn


def _result(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _plan_time_by_tool():
    result = _result("kube_plan_apply")
    if result is None:
        return None
    import matplotlib.pyplot as plt

    commands = result["commands"]
    figure, axes = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(TOOLS)
    for offset, (tool, colour) in enumerate(TOOLS.items()):
        xs, medians, spreads = [], [], []
        for index, names in enumerate(STEPS.values()):
            timed = commands.get(names[tool])
            if timed is None:
                continue
            seconds = timed["seconds"]
            xs.append(index + (offset - 1) * width)
            medians.append(seconds["median"] * 1000)
            spreads.append((seconds["p90"] - seconds["median"]) * 1000)
        if xs:  # a result from before that tool was benchmarked has none of its commands
            axes.bar(xs, medians, width, yerr=[[0] * len(spreads), spreads], color=colour, label=tool, capsize=3)
    axes.set_xticks(range(len(STEPS)), list(STEPS))
    axes.set_ylabel("ms per command (median; whisker: p90)")
    axes.set_title(f"The tutorial's Kubernetes objects, whole processes, {result['runs']} runs "
                   f"({result['machine']['cpus']} cores)")
    axes.legend()
    return figure


def _plan_time_by_size():
    """Plan time and requests against the number of Kubernetes objects, one line per tool (bench/kube_plan_size.py)."""
    result = _result("kube_plan_size")
    if result is None:
        return None
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    objects = [int(size) for size in sizes]
    figure, (times, requests) = plt.subplots(1, 2, figsize=(10, 4))
    for tool in ("saxctl", "kubectl"):
        label = {"saxctl": "saxctl plan (Kubernetes part)", "kubectl": "kubectl diff --server-side"}[tool]
        medians = [sizes[size][tool]["seconds"]["median"] * 1000 for size in sizes]
        spreads = [sizes[size][tool]["seconds"]["p90"] * 1000 - median for size, median in zip(sizes, medians)]
        times.errorbar(objects, medians, yerr=[[0] * len(spreads), spreads], color=TOOLS[tool], marker="o",
                       capsize=3, label=f"{label}: wall")
        # CPU time (user + system): hardly inflated by a shared machine's load, unlike the wall time
        times.plot(objects, [sizes[size][tool]["cpu_seconds"]["median"] * 1000 for size in sizes], color=TOOLS[tool],
                   marker=".", linestyle="--", label=f"{label}: CPU")
        requests.plot(objects, [sizes[size][tool]["requests"]["count"] for size in sizes], color=TOOLS[tool],
                      marker="o", label=label)
    times.set_xlabel("Kubernetes objects")
    times.set_ylabel("ms per no-op plan (median; whisker: p90 of wall)")
    times.set_ylim(bottom=0)
    times.legend()
    requests.set_xlabel("Kubernetes objects")
    requests.set_ylabel("requests to the apiserver per plan")
    requests.set_ylim(bottom=0)
    figure.suptitle(f"No-op plan against size, whole processes, {result['runs']} runs ({result['machine']['cpus']} "
                    f"cores, load {result['machine']['load_average_1min_at_end']})")
    return figure


def _apply_vs_critical_path():
    """The GCP half (bench/gcp_half.py) and the whole demo spec (bench/demo_apply.py) side by side, where measured."""
    measured = {"GCP half": _gcp_half_bars(_result("gcp_half")), "whole spec": _demo_bars(_result("demo_apply"))}
    measured = {label: bars for label, bars in measured.items() if bars is not None}
    if not measured:
        return None
    import matplotlib.pyplot as plt

    names = ("critical path", "saxctl apply (apply phase)", "saxctl apply (whole command)",
             "sequential (the tutorial's order)")
    colours = ("#7f7f7f", "#1f77b4", "#aec7e8", "#ff7f0e")
    figure, axes = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for offset, (name, colour) in enumerate(zip(names, colours)):
        xs = [group + (offset - 1.5) * width for group in range(len(measured))]
        drawn = axes.bar(xs, [bars[offset] for bars, _ in measured.values()], width, color=colour, label=name)
        axes.bar_label(drawn, fmt="%.1f", fontsize="small")
    axes.set_xticks(range(len(measured)), [f"{label}: apply {ratio}× its critical path"
                                           for label, (_, ratio) in measured.items()])
    axes.set_ylabel("seconds")
    axes.set_title("Apply of the demo spec from nothing against its critical path")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return figure


def _gcp_half_bars(result: dict | None) -> tuple[list[float], float] | None:
    if result is None:
        return None
    apply = result["apply"]
    return ([apply["critical_path_seconds"], apply["apply_phase_seconds"]["median"], apply["cli_seconds"]["median"],
             apply["sequential_sum_seconds"]], apply["apply_phase_over_critical_path"])


def _demo_bars(result: dict | None) -> tuple[list[float], float] | None:
    if result is None:
        return None
    return ([result[name]["median"] for name in ("critical_path_seconds", "apply_phase_seconds", "cli_seconds",
                                                 "sequential_sum_seconds")], result["apply_phase_over_critical_path"])


def _conversion_vs_cp():
    result = _result("checkpoint_convert")
    if result is None:
        return None
    import matplotlib.pyplot as plt

    runs = sorted(result["runs"], key=lambda run: run["layers"])
    labels = [f"{run['layers']} layers\n({run['source_mb'] / 1024:.1f} GiB)" for run in runs]
    figure, axes = plt.subplots(figsize=(7, 4))
    xs = range(len(runs))
    axes.bar([x - 0.2 for x in xs], [run["mb_per_s"] for run in runs], 0.4, label="saxctl checkpoint convert")
    axes.bar([x + 0.2 for x in xs], [run["cp_mb_per_s"] for run in runs], 0.4, label="cp -r of the same bytes",
             color="#7f7f7f")
    for x, run in zip(xs, runs):
        axes.annotate(f"{run['ratio_to_cp']}× cp", (x - 0.2, run["mb_per_s"]), ha="center", va="bottom")
    axes.set_xticks(list(xs), labels)
    axes.set_ylabel("MB/s")
    axes.set_title("HF GPT-J → Pax conversion against cp, GPT-J 6B shapes")
    axes.legend()
    return figure


if __name__ == "__main__":
    main(sys.argv[1:])
