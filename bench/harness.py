"""What the sandbox benchmarks share: a throwaway sandbox of their own, summary statistics, bench/results/ files."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def in_own_sandbox(measure: Callable[[dict, Path], dict]) -> dict:
    """measure(state, scratch dir) in a sandbox of its own (a temporary state dir): never one you have running."""
    from reconciler.sandbox import supervisor

    with tempfile.TemporaryDirectory(prefix="saxctl-bench-") as scratch:
        os.environ["SAXCTL_SANDBOX_DIR"] = str(Path(scratch) / "sandbox")
        state, _ = supervisor.up(lambda message: print(f"[sandbox] {message}", file=sys.stderr))
        try:
            return measure(state, Path(scratch))
        finally:
            supervisor.down(lambda message: None)


def write_results(name: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def stats(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median": round(statistics.median(ordered), 4), "min": round(ordered[0], 4),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4)}
