"""What the sandbox benchmarks share: a throwaway sandbox of their own, summary statistics, bench/results/ files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEMO_SPEC = Path(__file__).resolve().parent.parent / "specs" / "gptj-v5e-2x2.yaml"


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


def demo_spec_as(name: str, scratch: Path) -> Path:
    """specs/gptj-v5e-2x2.yaml as a run of its own: its project, buckets, namespace and spec name made from name."""
    text = DEMO_SPEC.read_text().replace("saxctl-demo", name).replace("namespace: default", f"namespace: {name}")
    spec = scratch / f"{name}.yaml"
    spec.write_text(text.replace("name: gptj-demo", f"name: {name}"))
    return spec


def with_sample_checkpoint(env: dict, scratch: Path) -> dict:
    """env with GPTJ_CHECKPOINT (the demo spec's source) at the project's sample GPT-J, written into scratch."""
    sample = scratch / "sample-gptj"
    subprocess.run([sys.executable, "-m", "reconciler", "sandbox", "sample-checkpoint", str(sample)], env=env,
                   check=True, capture_output=True)
    return {**env, "GPTJ_CHECKPOINT": str(sample)}


def write_results(name: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def saxctl(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """`saxctl ARGS` run to its end; a failure ends the benchmark with what saxctl said."""
    completed = subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"saxctl {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}")
    return completed


def machine() -> dict:
    """The machine a result was measured on; the 1-minute load average at the end, since the machine is shared; and
    the CPU time of a fixed loop of Python (`cpu_speed_seconds`): this virtual machine's speed drifts by ±15 % between
    hours, so two results compare through it."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2), "cpu_speed_seconds": cpu_speed()}


def cpu_speed(rounds: int = 5) -> float:
    """Median CPU seconds of 10 million additions in a Python loop (0.30-0.41 s on this machine, 2026-12-07)."""
    def once() -> float:
        started, total = time.process_time(), 0
        for number in range(10_000_000):
            total += number
        return time.process_time() - started

    return round(statistics.median(once() for _ in range(rounds)), 3)


def stats(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median": round(statistics.median(ordered), 4), "min": round(ordered[0], 4),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4)}


def call(method: str, url: str, payload: object = None) -> dict:
    """A JSON call to a sandbox endpoint (an emulator's API or its /_sandbox controls); its reply, {} when empty."""
    import urllib.request

    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else {}


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_bytes: int
    out: str
    err: str
    cpu_seconds: float = 0.0  # user + system: unlike the wall time, hardly inflated by the shared machine's load


# Starts the command from a small process and reports its wait4: the kernel carries a parent's peak RSS into the
# child at exec, so a command started straight from a benchmark (tens of MiB of imports) would report at least that.
_LAUNCHER = """import json, os, sys, time
fd, command = int(sys.argv[1]), sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(fd)
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(fd, json.dumps([time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss,
                         usage.ru_utime + usage.ru_stime]).encode())
"""


def run_measured(command: Sequence[str], *, env: dict | None = None, expect: tuple[int, ...] = (0,)) -> Measured:
    """One whole process: wall time, peak RSS and CPU time (from wait4: this process alone), its output; exits on a
    wrong code."""
    report_read, report_write = os.pipe()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        launcher = subprocess.Popen([sys.executable, "-S", "-E", "-c", _LAUNCHER, str(report_write), *command],
                                    stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env,
                                    pass_fds=(report_write,))
        os.close(report_write)
        with os.fdopen(report_read) as report:
            seconds, code, max_rss_kib, cpu_seconds = json.loads(report.read())
        launcher.wait()
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode()
    if code not in expect:
        raise SystemExit(f"{' '.join(command)} exited {code}:\n{out}{err}")
    return Measured(seconds, max_rss_kib * 1024, out, err, cpu_seconds)  # ru_maxrss is in KiB on Linux
