"""Run every benchmark (or those named: python -m bench noop_plan checkpoint_convert) and write bench/results/.

Each runs in an interpreter of its own, as `python -m bench.NAME` runs it: one benchmark's imports and threads never
sit under another's measurements."""

from __future__ import annotations

import subprocess
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
        ran = subprocess.run([sys.executable, "-m", f"bench.{name}"])
        if ran.returncode != 0:
            return ran.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
