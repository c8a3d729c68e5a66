"""One container of a pod as a local process: started, restarted as a kubelet restarts it, its output kept as the
kubelet keeps it (one file per run, in the CRI log format kwok's log reader parses), and stopped."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Protocol

log = logging.getLogger(__name__)

# A kubelet waits 10 s after a container's first exit and doubles that up to 5 min (CrashLoopBackOff), starting
# afresh once a run lasted 10 min. The sandbox keeps the shape at a shorter scale: a stand-in killed in a test is back
# in a second, and one that crashes at start costs little CPU on a machine of 2 cores.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
BACKOFF_RESET_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What runs for one container of one pod; a different spec for the same key means a new process."""

    namespace: str
    pod: str
    pod_uid: str
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    restart_policy: str  # Always, OnFailure or Never (the pod's)
    grace_s: float  # the pod's terminationGracePeriodSeconds
    # Env the sandbox adds at start that is not the pod's (a stand-in's fault rules): changing it restarts nothing.
    start_env: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.namespace, self.pod, self.pod_uid, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.pod} container {self.name}"


def restart_delay(previous_delay: float, ran_s: float) -> float:
    """How long to wait before the next run: the kubelet's doubling backoff, reset by a long enough run."""
    if ran_s >= BACKOFF_RESET_AFTER_S or previous_delay == 0:
        return BACKOFF_INITIAL_S
    return min(previous_delay * 2, BACKOFF_MAX_S)


def should_restart(restart_policy: str, exit_code: int) -> bool:
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


@dataclass(frozen=True, slots=True)
class Exit:
    """How a run ended: what a kubelet reports as the container's lastState."""

    code: int
    started: datetime
    finished: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a container, told to the runner before it starts."""

    restarts: int
    log: Path
    previous_log: Path | None
    previous_exit: Exit | None  # None for the first run


class Reporter(Protocol):
    """Where a container's life goes: the pod's status and kwok's Logs (the runner), as a kubelet reports it."""

    def running(self, spec: ContainerSpec, run: Run) -> None: ...

    def backing_off(self, spec: ContainerSpec, restarts: int, exit: Exit, delay_s: float) -> None: ...

    def exited(self, spec: ContainerSpec, restarts: int, exit: Exit) -> None: ...


class ContainerProcess:
    """Runs `spec` until stopped: each run's stdout and stderr go to <log_dir>/<restart count>.log."""

    def __init__(self, spec: ContainerSpec, log_dir: Path, reporter: Reporter):
        self.spec = spec
        self._log_dir = log_dir
        self._reporter = reporter
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen | None = None
        self.restarts = 0
        self._thread = threading.Thread(target=self._supervise, name=str(spec), daemon=True)

    def start(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def signal_stop(self) -> None:
        """SIGTERM to the running process's group (as a kubelet stops a container); no restart after."""
        with self._lock:
            self._stopping.set()
            self._signal(signal.SIGTERM)

    def wait_stopped(self, grace_s: float) -> None:
        """Wait up to `grace_s` for the process to exit, then SIGKILL it (what a pod's grace period means)."""
        self._thread.join(grace_s)
        if self._thread.is_alive():
            log.warning("%s did not exit within %.0f s of SIGTERM: killing it", self.spec, grace_s)
            with self._lock:
                self._signal(signal.SIGKILL)
            self._thread.join()

    def _signal(self, number: int) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, number)  # its own session: the group is it and its children

    def _supervise(self) -> None:
        delay = 0.0
        run = Run(0, self._log_dir / "0.log", None, None)
        while True:
            self._report(self._reporter.running, self.spec, run)
            started, started_at = time.monotonic(), datetime.now(timezone.utc)
            exit_code = self._run_once(run.log)
            ran_s = time.monotonic() - started
            ended = Exit(exit_code, started_at, datetime.now(timezone.utc))
            if self._stopping.is_set():
                log.info("%s stopped (exit code %s)", self.spec, exit_code)
                return
            if not should_restart(self.spec.restart_policy, exit_code):
                log.info("%s exited with code %s after %.1f s; restartPolicy %s: not restarted", self.spec,
                         exit_code, ran_s, self.spec.restart_policy)
                self._report(self._reporter.exited, self.spec, self.restarts, ended)
                return
            delay = restart_delay(delay, ran_s)
            log.info("%s exited with code %s after %.1f s; restarting in %.0f s", self.spec, exit_code, ran_s, delay)
            self._report(self._reporter.backing_off, self.spec, self.restarts, ended, delay)
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            run = Run(self.restarts, self._log_dir / f"{self.restarts}.log", run.log, ended)

    def _report(self, report, *args) -> None:
        try:
            report(*args)
        except Exception:  # noqa: BLE001 (the process runs all the same; its log or status may lag)
            log.exception("%s: could not report its state", self.spec)

    def _run_once(self, log_path: Path) -> int:
        with open(log_path, "ab") as output:
            writer = _CriLogWriter(output)
            with self._lock:
                if self._stopping.is_set():
                    return 0
                try:
                    self._process = subprocess.Popen(
                        self.spec.argv, env={**dict(self.spec.env), **dict(self.spec.start_env)},
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        start_new_session=True, close_fds=True, cwd=self._log_dir)
                except OSError as error:  # what a runtime reports as a failed start: exit code 128
                    writer.write("stderr", f"failed to start {self.spec.argv[0]}: {error}\n".encode())
                    return 128
            process = self._process
            log.info("%s started (pid %d): %s", self.spec, process.pid, " ".join(self.spec.argv))
            pumps = [threading.Thread(target=writer.copy, args=(stream, name), daemon=True)
                     for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]
            for pump in pumps:
                pump.start()
            exit_code = process.wait()
            for pump in pumps:
                pump.join()
            return exit_code if exit_code >= 0 else 128 - exit_code  # killed by signal N: 128+N, as a runtime says


class _CriLogWriter:
    """Lines of stdout and stderr into one file as the CRI writes them: `<RFC 3339 time> <stream> F <line>`."""

    def __init__(self, output: BinaryIO):
        self._output = output
        self._lock = threading.Lock()

    def copy(self, stream: BinaryIO, name: str) -> None:
        for line in iter(stream.readline, b""):
            self.write(name, line)
        stream.close()

    def write(self, name: str, line: bytes) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        with self._lock:
            self._output.write(b"%s %s F %s" % (stamp, name.encode(), line if line.endswith(b"\n") else line + b"\n"))
            self._output.flush()
