"""What the sandbox benchmarks share: a sandbox of their own in a temporary state dir, and their results written."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def in_scratch_sandbox(measure: Callable[[dict, Path], dict]) -> dict:
    """measure(sandbox state, scratch dir) in a sandbox started for it alone, stopped after: never one you run."""
    from reconciler.sandbox import supervisor

    with tempfile.TemporaryDirectory(prefix="saxctl-bench-") as scratch:
        os.environ["SAXCTL_SANDBOX_DIR"] = str(Path(scratch) / "sandbox")
        state, _ = supervisor.up(lambda message: print(f"[sandbox] {message}", file=sys.stderr))
        try:
            return measure(state, Path(scratch))
        finally:
            supervisor.down(lambda message: None)


def record(name: str, result: dict, markdown: str) -> dict:
    """bench/results/NAME.json and NAME.md, and the markdown printed."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
    return result
