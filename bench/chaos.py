"""Chaos and crashes: the demo spec applied under injected faults, killed mid-apply, and raced; then the world checked.

Runs in a sandbox of its own. Each run gets a project and a namespace of its own (same-length names, so listings
compare byte for byte), with another owner's bucket, IAM member and ConfigMap planted first. A faultless baseline
apply gives the expected end state. Then, per seed:

- faults: every emulator with an API (GCS front, GKE, Resource Manager, Compute, IAM gRPC) answers 429, 500, 503,
  drops the connection, loses the reply of a committed write (`after_commit`), or stalls; the run's Sax admin
  (given its rules by the pod runner at its start) answers saxctl's calls UNAVAILABLE, stalls into
  DEADLINE_EXCEEDED, or loses the reply of a committed Publish/Update/Unpublish; and the path to the apiserver (a
  TCP proxy the GKE emulator hands out as the run's cluster endpoint, so every Kubernetes call and port-forward
  takes it) resets, drops (before or after the reply) or stalls connections. At a total rate of 5 %, 15 % or 30 %
  (seeded rules: the same seed replays the same faults on the same calls).
  `saxctl apply --auto-approve` is re-run while it fails (at most ATTEMPTS times);
- crash: `kill -9` of the `saxctl apply` process at a seeded moment inside one phase (cluster create, pool create, IAM
  edits, checkpoint upload, rollout wait, the model's publish and load, anywhere); the lock it leaves must be reported with its age by the next
  apply and cleared only by `saxctl force-unlock`; then the re-apply converges;
- concurrency: two applies of one change at once: one fails naming the holder, the logs show one writer; then an
  apply of a further change (waiting for the lock) racing `saxctl drift SPEC --correct` (not waiting): the corrector
  fails naming the holder or goes first, the GKE log shows one write, the end state is the spec's.

Every run ends with the faults off and the checks made by listing every emulator, the apiserver and the model as the
cell's Sax HTTP server lists it: the world equals the baseline's (no duplicate, no orphan, no missing object), another
owner's objects are untouched, and
`saxctl plan --detailed-exitcode` exits 0. Each failed run prints the command that replays it.
Results: bench/results/chaos.{json,md}. `--smoke` runs one run of each kind (tests/bench/test_chaos_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_world import World, differences
from bench.harness import RESULTS, call, demo_spec_as, in_own_sandbox, machine, with_sample_checkpoint
from reconciler.providers.kubernetes.manifests import ADMIN_SERVER

EMULATORS = ("gcs", "gke", "resourcemanager", "compute", "iam")  # the sandbox's processes with fault rules
# And the run's Sax admin (a stand-in its apply creates), and the path to the apiserver (the proxy GKE hands out).
FAULTED = (*EMULATORS, "sax", "apiserver")
SAX_ADMIN_CALLS = r"^/sax\.Admin/(?!Join$)"  # saxctl's calls, not the model servers' joins
SAX_WRITES = r"^/sax\.Admin/(Publish|Update|Unpublish)$"
RATES = (5, 15, 30)  # percent of requests faulted, per emulator
ATTEMPTS = 6  # applies per run before it counts as not converged
COMMAND_TIMEOUT_S = 420
# A rollout that cannot finish fails the run in 45 s rather than apply's default 900 s.
APPLY = ("apply", "--auto-approve", "--rollout-timeout", "45")
# The phase a kill lands in: the apply's own progress line that opens it.
PHASES = {
    "cluster create": re.compile(r"\(CREATE_CLUSTER\)"),
    "pool create": re.compile(r"\(CREATE_NODE_POOL\)"),
    "IAM edits": re.compile(r"^iam\.\S+: (Creating|adding)"),
    "upload": re.compile(r"^checkpoint\.\S+: uploading"),
    "rollout wait": re.compile(r": rolling out"),
    "publish": re.compile(r"^sax\.model\.\S+: (publishing|\d+/\d+ replicas loaded)"),
    "anywhere": re.compile(r": Creating\.\.\."),
}
OPERATION_LATENCY = {"CREATE_CLUSTER": 3.0, "CREATE_NODE_POOL": 2.0, "default": 0.3}  # wider windows for kills
_REPLAY = "SAXCTL_SANDBOX_BIN=/work/main/.sandbox/bin .venv/bin/python -m bench.chaos"


@dataclass
class Run:
    kind: str  # faults | crash | concurrency | baseline
    seed: int
    name: str
    rate: int = 0
    phase: str = ""
    attempts: int = 0
    seconds: float = 0.0
    converged: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    faults_fired: dict[str, int] = field(default_factory=dict)

    @property
    def replay(self) -> str:
        rate = f" --rates {self.rate}" if self.kind == "faults" else ""
        phase = f" --phase '{self.phase}'" if self.kind == "crash" else ""
        return f"{_REPLAY} --only {self.kind} --seeds {self.seed}{rate}{phase}"

    def as_json(self) -> dict:
        return {"kind": self.kind, "seed": self.seed, "name": self.name, "rate_percent": self.rate,
                "phase": self.phase, "attempts": self.attempts, "seconds": round(self.seconds, 1),
                "converged": self.converged, "ok": not self.problems, "problems": self.problems,
                "notes": self.notes, "faults_fired": self.faults_fired,
                "replay": None if self.kind == "baseline" else self.replay}


class Chaos:
    """One sandbox's chaos session: its env, its scratch dir, the baseline's world."""

    def __init__(self, state: dict, scratch: Path):
        self.env = with_sample_checkpoint({**os.environ, **state["env"], "NO_COLOR": "1",
                                           "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA": "true"}, scratch)
        self.urls = {name: f"http://127.0.0.1:{state['emulators'][name]['port']}/_sandbox"
                     for name in (*EMULATORS, "pod-runner")}
        self.scratch = scratch
        self.world = World(self.env)
        self.expected: dict | None = None
        self.logs = scratch / "logs"
        self.logs.mkdir(exist_ok=True)

    # Runs.

    def baseline(self) -> Run:
        run = Run("baseline", 0, "chaos-b00-0000")
        spec, foreign = self._prepare(run)
        self._converge(run, spec)
        if run.converged:
            self.expected = self.world.snapshot(run.name, run.name)
        self._check(run, spec, foreign)
        return run

    def faults(self, seed: int, rate: int) -> Run:
        run = Run("faults", seed, f"chaos-f{rate:02d}-{seed:04d}", rate=rate)
        spec, foreign = self._prepare(run)
        for name in EMULATORS:
            call("POST", f"{self.urls[name]}/faults", fault_rules(seed, rate, name))
        # The run's Sax admin starts during its apply: the pod runner gives it the rules at its start.
        call("POST", f"{self.urls['pod-runner']}/standin-faults",
             {"namespace": run.name, "container": ADMIN_SERVER, "rules": fault_rules(seed, rate, "sax")})
        # The run's cluster is created with the proxy's address as its endpoint: every Kubernetes call (and each
        # port-forward to the Sax admin) takes the faulted path.
        call("POST", f"{self.urls['gke']}/apiserver-proxy", {"rules": fault_rules(seed, rate, "apiserver")})
        try:
            self._converge(run, spec)
        finally:
            call("DELETE", f"{self.urls['pod-runner']}/standin-faults")
            proxied = call("GET", f"{self.urls['gke']}/apiserver-proxy")["rules"]
            run.faults_fired["apiserver"] = sum(rule["hits"] for rule in proxied if rule["kind"] != "stall")
            call("DELETE", f"{self.urls['gke']}/apiserver-proxy")
            for name in EMULATORS:
                run.faults_fired[name] = _failing_hits_cleared(self.urls[name])
            run.faults_fired["sax"] = 0
            for url in self.world.sax_admin_controls(run.name):
                try:
                    run.faults_fired["sax"] += _failing_hits_cleared(url)
                except OSError as error:  # an admin between two runs of its process: its rules went with it
                    run.notes.append(f"the Sax admin's control port {url} did not answer: {error}")
        self._check(run, spec, foreign)
        return run

    def crash(self, seed: int, phase: str | None = None) -> Run:
        draw = random.Random(seed)
        phase = phase or draw.choice(sorted(PHASES))
        run = Run("crash", seed, f"chaos-k00-{seed:04d}", phase=phase)
        spec, foreign = self._prepare(run)
        call("POST", f"{self.urls['gke']}/operation-latency", OPERATION_LATENCY)
        try:
            delay = draw.uniform(0.0, 1.5)
            killed = self._kill_in(run, spec, PHASES[phase], delay)
            if killed:
                self._lock_left(run, spec)
            self._converge(run, spec)
        finally:
            call("POST", f"{self.urls['gke']}/operation-latency", {"CREATE_CLUSTER": 0.0, "CREATE_NODE_POOL": 0.0,
                                                                     "default": 0.0})
        self._check(run, spec, foreign)
        return run

    def concurrency(self, seed: int) -> Run:
        """Two applies of one change (the CPU pool grown) at once, on a world already applied."""
        run = Run("concurrency", seed, f"chaos-c00-{seed:04d}")
        spec, foreign = self._prepare(run)
        self._converge(run, spec)
        if not run.converged:
            return run
        grown = spec.with_name(f"{run.name}-grown.yaml")
        grown.write_text(spec.read_text().replace("cpuNodes: {count: 2,", "cpuNodes: {count: 3,"))
        for name in EMULATORS:
            call("DELETE", f"{self.urls[name]}/requests")
        command = [*APPLY, str(grown)]
        processes = [self._start(command, f"{run.name}-race-{index}") for index in range(2)]
        results = [self._finish(process, log) for process, log in processes]
        codes = sorted(code for code, _ in results)
        held = [text for code, text in results if code != 0]
        writes = [entry for entry in call("GET", f"{self.urls['gke']}/requests")["requests"]
                  if not entry["read"] and 200 <= entry["status"] < 300]
        run.notes.append(f"exit codes {codes}; GKE writes {len(writes)}: "
                         f"{', '.join(entry['method_id'] or entry['path'] for entry in writes)}")
        if codes == [0, 0]:
            run.notes.append("both succeeded: the second waited for the first, or found nothing left to do")
        elif codes[0] != 0:
            run.problems.append(f"neither apply succeeded: {held[0][-400:]}")
        elif not all("another run holds the lock" in text and "lock ID" in text for text in held):
            run.problems.append(f"the apply that lost does not name the lock's holder: {held[0][-400:]}")
        if len(writes) != 1:
            run.problems.append(f"expected one writer (one GKE write for the pool's new size), the GKE log shows "
                                f"{len(writes)}")
        self._race_the_drift_corrector(run, grown)
        self._check(run, grown, foreign)
        return run

    def _race_the_drift_corrector(self, run: Run, spec: Path) -> None:
        """`saxctl apply` of a change (the CPU pool grown again, written into the spec as a user edits it) and
        `saxctl drift SPEC --correct` at once. The apply waits for the lock (--lock-timeout); the corrector, which
        does not wait, fails naming the holder, or holds the lock first and the apply waits for it. Either way the
        GKE log shows one write of the pool's size (one writer at a time), and the end state is the spec's."""
        spec.write_text(spec.read_text().replace("cpuNodes: {count: 3,", "cpuNodes: {count: 4,"))
        for name in EMULATORS:
            call("DELETE", f"{self.urls[name]}/requests")
        applying = self._start([*APPLY, "--lock-timeout", "300", str(spec)], f"{run.name}-race-apply")
        correcting = self._start(["drift", "--correct", str(spec)], f"{run.name}-race-drift")
        (applied, apply_text), (corrected, drift_text) = self._finish(*applying), self._finish(*correcting)
        writes = [entry for entry in call("GET", f"{self.urls['gke']}/requests")["requests"]
                  if not entry["read"] and 200 <= entry["status"] < 300]
        waited = re.search(r"waiting up to \d+ s for the lock: another run holds the lock .*lock ID", apply_text)
        refused = "another run holds the lock" in drift_text and "lock ID" in drift_text
        run.notes.append(f"apply racing drift --correct: apply exited {applied}{' after waiting' if waited else ''},"
                         f" drift exited {corrected}{' naming the holder' if refused else ''}; GKE writes "
                         f"{len(writes)}: {', '.join(entry['method_id'] or entry['path'] for entry in writes)}")
        if applied != 0:
            run.problems.append(f"the apply racing the drift corrector failed: {_last_error(apply_text)}")
        if corrected == 1 and not refused:
            run.problems.append(f"the drift corrector failed without naming the lock's holder: "
                                f"{_last_error(drift_text)}")
        elif corrected not in (0, 1, 2):
            run.problems.append(f"the drift corrector exited {corrected}: {_last_error(drift_text)}")
        if len(writes) != 1:
            run.problems.append(f"apply and the drift corrector: expected one writer (one GKE write for the pool's "
                                f"new size), the GKE log shows {len(writes)}")

    # Steps.

    def _prepare(self, run: Run) -> tuple[Path, dict]:
        spec = demo_spec_as(run.name, self.scratch)
        foreign = self.world.plant_foreign(run.name, run.name)
        return spec, foreign

    def _saxctl(self, args: list[str], log: str) -> tuple[int, str]:
        return self._finish(*self._start(args, log))

    def _start(self, args: list[str], log: str) -> tuple[subprocess.Popen, Path]:
        path = self.logs / f"{log}.log"
        handle = path.open("w")
        process = subprocess.Popen([sys.executable, "-m", "reconciler", *args], env=self.env, stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        handle.close()
        return process, path

    def _finish(self, process: subprocess.Popen, log: Path) -> tuple[int, str]:
        try:
            code = process.wait(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            log.open("a").write(f"\n[chaos] killed after {COMMAND_TIMEOUT_S} s\n")
        return code, log.read_text()

    def _converge(self, run: Run, spec: Path) -> None:
        started = time.perf_counter()
        for attempt in range(1, ATTEMPTS + 1):
            run.attempts = attempt
            code, text = self._saxctl([*APPLY, str(spec)], f"{run.name}-apply-{attempt}")
            if code == 0:
                run.converged = True
                break
            last = _last_error(text)
            run.notes.append(f"apply {attempt} exited {code}: {last}")
            holder = re.search(r"another run holds the lock .*?lock ID (\S+?)[.;,\s]", text)
            if holder and "no longer running" in text:  # a faulted release left the lock of a finished run
                self._saxctl(["force-unlock", holder[1], str(spec)], f"{run.name}-unlock-{attempt}")
                run.notes.append(f"apply {attempt}: a lock left by an earlier attempt, broken with force-unlock")
        else:
            run.problems.append(f"did not converge in {ATTEMPTS} applies: {run.notes[-1]}")
        run.seconds += time.perf_counter() - started

    def _kill_in(self, run: Run, spec: Path, opens: re.Pattern, delay: float) -> bool:
        """Start an apply, kill -9 it `delay` s after its output enters the phase; False if it ended first."""
        process, log = self._start([*APPLY, str(spec)], f"{run.name}-killed")
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if any(opens.search(line) for line in log.read_text().splitlines()):
                break
            time.sleep(0.05)  # polling the apply's log for its phase, not a clock for the outcome
        if process.poll() is None:
            waited = threading.Event()
            waited.wait(delay)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                lines = log.read_text().splitlines()
                run.notes.append(f"killed {delay:.2f} s into {run.phase!r}; its last line: "
                                 f"{lines[-1] if lines else ''}")
                return True
        process.wait()
        run.notes.append(f"the apply ended (exit {process.returncode}) before the kill in {run.phase!r}")
        return False

    def _lock_left(self, run: Run, spec: Path) -> None:
        """The killed run's lock: reported with its age by the next apply, still there, gone after force-unlock."""
        locks = self.world.lock_objects(run.name)
        if not locks:
            run.notes.append("no lock left (killed before taking it)")
            return
        code, text = self._saxctl([*APPLY, str(spec)], f"{run.name}-locked")
        holder = re.search(r"lock ID (\S+?)[.;,\s]", text)
        aged = re.search(r"(last refreshed|not refreshed it for) \d+ (s|min)", text)
        taken = re.search(r"since (\S+), running", text)
        if code == 0 or holder is None or (aged or taken) is None:
            run.problems.append(f"the lock {locks[0]} left by the killed apply was not reported with its holder and "
                                f"age (exit {code}): {_last_error(text)}")
            return
        if self.world.lock_objects(run.name) != locks:
            run.problems.append(f"the lock {locks[0]} was cleared without force-unlock")
        code, text = self._saxctl(["force-unlock", holder[1], str(spec)], f"{run.name}-force-unlock")
        if code != 0 or self.world.lock_objects(run.name):
            run.problems.append(f"force-unlock {holder[1]} did not clear the lock (exit {code}): {_last_error(text)}")
        shown = aged[0] if aged else f"taken {taken[1]}; no age shown: its holder is dead, so it says only that"
        run.notes.append(f"lock reported ({shown}) and broken by force-unlock")

    def _check(self, run: Run, spec: Path, foreign: dict) -> None:
        """With the faults off: the world as listed equals the baseline's (the concurrency run changed it on
        purpose), another owner's objects as planted, and a plan with nothing to do."""
        expected = self.expected if run.kind in ("faults", "crash") else None
        found = self.world.snapshot(run.name, run.name)
        if expected is not None:
            run.problems += [f"world differs from the baseline: {line}" for line in differences(expected, found)]
        if found["gcs"]["objects"] and self.world.lock_objects(run.name):
            run.problems.append(f"a lock is left behind: {self.world.lock_objects(run.name)}")
        now = self.world.foreign(run.name, run.name)
        run.problems += [f"another owner's object touched: {line}" for line in differences(foreign, now)]
        code, text = self._saxctl(["plan", "--detailed-exitcode", str(spec)], f"{run.name}-plan")
        if code != 0:
            run.problems.append(f"the second plan exited {code}: {_last_error(text)}")


def fault_rules(seed: int, rate: int, emulator: str) -> list[dict]:
    """The seeded rules of one emulator: 429, 500, 503, a dropped connection, a lost reply after a committed write,
    each at a fifth of `rate`; then a stall (2 s) on as many requests again. The Sax admin's (saxctl's calls only):
    UNAVAILABLE, a stall ending in DEADLINE_EXCEEDED, and a lost reply after a committed Publish, Update or
    Unpublish, each at a third of `rate`; then the stall. The apiserver proxy's (per connection): a reset, a drop,
    a drop once the reply starts (the request served, its reply lost), each at a third of `rate`; then the stall."""
    if emulator == "apiserver":  # the proxy's rules, per connection
        share = rate / 100 / 3
        rules = [{"kind": "reset", "probability": share}, {"kind": "drop", "probability": share},
                 {"kind": "drop", "after_reply": True, "probability": share},
                 {"kind": "stall", "delay_s": 2.0, "probability": rate / 100}]
        return _seeded(rules, seed, emulator)
    if emulator == "sax":
        share = rate / 100 / 3
        rules = [{"path": SAX_ADMIN_CALLS, "grpc_code": "UNAVAILABLE", "probability": share},
                 {"path": SAX_ADMIN_CALLS, "grpc_code": "DEADLINE_EXCEEDED", "delay_s": 2.0, "probability": share},
                 {"path": SAX_WRITES, "grpc_code": "UNAVAILABLE", "after_commit": True, "probability": share},
                 {"path": SAX_ADMIN_CALLS, "delay_s": 2.0, "probability": rate / 100}]
        return _seeded(rules, seed, emulator)
    share = rate / 100 / 5
    # The gRPC server cannot drop a connection mid-call: its stand-in is the deadline a stalled call ends with.
    lost = {"grpc_code": "DEADLINE_EXCEEDED"} if emulator == "iam" else {"drop": True}
    kinds = [{"status": 429}, {"status": 500}, {"status": 503}, lost]
    rules = [{**kind, "probability": share} for kind in kinds]
    writes = ("POST",) if emulator == "iam" else ("POST", "PUT", "PATCH", "DELETE")  # gRPC calls are all POSTs
    rules += [{"method": method, "status": 503, "after_commit": True, "probability": share} for method in writes]
    rules.append({"delay_s": 2.0, "probability": rate / 100})
    return _seeded(rules, seed, emulator)


def _seeded(rules: list[dict], seed: int, emulator: str) -> list[dict]:
    return [{**rule, "seed": seed * 1000 + index * 10 + FAULTED.index(emulator)} for index, rule in enumerate(rules)]


def _failing_hits_cleared(control: str) -> int:
    """How many requests an emulator's failing rules answered (latency alone not counted); then its rules cleared."""
    hits = sum(rule["hits"] for rule in call("GET", f"{control}/faults")["rules"]
               if rule["status"] or rule["drop"] or rule["grpc_code"])
    call("DELETE", f"{control}/faults")
    return hits


def _last_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    failed = [line for line in lines if ": failed after " in line or line.startswith("Error")]  # what, and why
    return "; ".join(failed[-2:] or lines[-1:])[:400]


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="fault rates in percent (default 5,15,30)")
    parser.add_argument("--kills", type=int, default=20, help="crash runs, seeds 1..N (default 20)")
    parser.add_argument("--phase", choices=sorted(PHASES), help="land every kill in this phase (default: seeded)")
    parser.add_argument("--only", choices=("faults", "crash", "concurrency"), action="append",
                        help="run only these kinds (repeatable); with --seeds, crash runs use those seeds")
    parser.add_argument("--smoke", action="store_true", help="one run of each kind; results not written")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    rates = [int(rate) for rate in args.rates.split(",")]
    kinds = args.only or ["faults", "crash", "concurrency"]
    if args.smoke:
        seeds, rates, kill_seeds = seeds[:1], rates[:1], seeds[:1]
    else:
        kill_seeds = seeds if args.only else list(range(1, args.kills + 1))

    def session(state: dict, scratch: Path) -> dict:
        chaos = Chaos(state, scratch)
        runs: list[Run] = []

        def done(run: Run) -> None:  # results after each run: a long session stopped early still leaves its figures
            runs.append(run)
            _say(run)
            if not args.smoke:
                _write(_result(runs, scratch, chaos.expected, scan=False))

        done(chaos.baseline())
        if runs[0].problems:
            return _result(runs, scratch, chaos.expected)
        for kind in kinds:
            if kind == "faults":
                for rate in rates:
                    for seed in seeds:
                        done(chaos.faults(seed, rate))
            elif kind == "crash":
                for seed in kill_seeds:
                    done(chaos.crash(seed, "upload" if args.smoke else args.phase))
            else:
                done(chaos.concurrency(seeds[0]))
        return _result(runs, scratch, chaos.expected)

    result = in_own_sandbox(session)
    if not args.smoke:
        _write(result)  # with the secrets scan, which the results written after each run leave out
    print(markdown(result))
    return result


def _say(run: Run) -> None:
    verdict = "ok" if not run.problems else "FAILED"
    what = {"faults": f"{run.rate} % faults", "crash": f"kill -9 in {run.phase}"}.get(run.kind, run.kind)
    print(f"[chaos] {run.kind} seed {run.seed} ({what}): {verdict}, {run.attempts} apply(s), {run.seconds:.0f} s",
          flush=True)
    for problem in run.problems:
        print(f"[chaos]   {problem}", flush=True)
    if run.problems and run.kind != "baseline":
        print(f"[chaos]   replay: {run.replay}", flush=True)


def _write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "chaos.md").write_text(markdown(result))


def _result(runs: list[Run], scratch: Path, baseline_world: dict | None, *, scan: bool = True) -> dict:
    """The runs so far and the world every run must end in (the baseline's, as listed); with `scan`, the secrets scan
    of everything they left on disk (logs, specs, the sandbox)."""
    from reconciler.sandbox import leaks

    found = leaks.scan([scratch, Path(os.environ["SAXCTL_SANDBOX_DIR"])]) if scan else []
    return {"benchmark": "chaos", "machine": machine(), "runs": [run.as_json() for run in runs],
            "secrets_scanned": scan, "secrets_found": [str(leak) for leak in found],
            "summary": _summary(runs), "baseline_world": baseline_world}


def _summary(runs: list[Run]) -> dict:
    def of(kind: str) -> list[Run]:
        return [run for run in runs if run.kind == kind]

    kills = [run for run in of("crash") if any(note.startswith("killed") for note in run.notes)]
    return {
        "fault_runs": len(of("faults")), "fault_runs_ok": sum(not run.problems for run in of("faults")),
        "faults_fired": sum(sum(run.faults_fired.values()) for run in of("faults")),
        "crash_runs": len(of("crash")), "kills_landed": len(kills),
        "crash_runs_ok": sum(not run.problems for run in of("crash")),
        "kill_phases": sorted({run.phase for run in kills}),
        "concurrency_runs": len(of("concurrency")),
        "concurrency_ok": sum(not run.problems for run in of("concurrency")),
    }


def markdown(result: dict) -> str:
    summary = result["summary"]
    rows = "\n".join(
        f"| {run['kind']} | {run['seed']} | {run['rate_percent'] or ''} | {run['phase']} | "
        f"{sum(run['faults_fired'].values()) or ''} | {run['attempts']} | {'ok' if run['ok'] else 'FAILED'} | "
        f"{'; '.join(run['problems'])[:300]} |" for run in result["runs"])
    return (
        f"# Chaos and crashes (`make chaos`, {result['machine']['cpus']} cores)\n\n"
        f"Faults: {summary['fault_runs_ok']}/{summary['fault_runs']} runs converged to the baseline's world "
        f"({summary['faults_fired']} failing faults fired). Crashes: {summary['kills_landed']} kill -9 landed "
        f"({', '.join(summary['kill_phases'])}), {summary['crash_runs_ok']}/{summary['crash_runs']} runs converged. "
        f"Concurrency: {summary['concurrency_ok']}/{summary['concurrency_runs']}. Secrets found on disk: "
        f"{len(result['secrets_found']) if result.get('secrets_scanned', True) else 'not scanned yet'}.\n\n"
        f"| kind | seed | rate % | kill phase | faults fired | applies | verdict | problems |\n"
        f"|---|---|---|---|---|---|---|---|\n{rows}\n\n"
        f"Replay a failed run with the command in its `replay` field of chaos.json.\n")


if __name__ == "__main__":
    sys.exit(1 if any(not run["ok"] for run in main(sys.argv[1:])["runs"]) else 0)
