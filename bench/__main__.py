"""Run every benchmark (or those named: python -m bench noop_plan checkpoint_convert) and write bench/results/."""

from __future__ import annotations

import importlib
import sys

# plots last: it draws what the others wrote
BENCHMARKS = ("noop_plan", "gcp_half", "demo_apply", "checkpoint_codecs", "checkpoint_convert",
              "kubectl_baseline", "kube_plan_apply", "kube_plan_size", "sax_plan", "plots")


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names or BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
