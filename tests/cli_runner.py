"""Run the real `saxctl` command in a subprocess, as a user would, with the sandbox's exports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAXCTL = [sys.executable, "-m", "reconciler"]
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def saxctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120,
           stdin: str | None = None) -> Run:
    full_env = {**os.environ, "NO_COLOR": "1", "SAXCTL_RETRY_MAX_WAIT": "0.2", **(env or {})}
    try:
        completed = subprocess.run(SAXCTL + list(args), env=full_env, cwd=cwd or REPO, capture_output=True,
                                   text=True, timeout=timeout, input=stdin if stdin is not None else "")
    except subprocess.TimeoutExpired as expired:  # say what it was doing: pytest shortens the captured output
        raise AssertionError(f"saxctl {' '.join(args)} still running after {timeout} s; its last output:\n"
                             f"{_tail(expired.stdout)}\n--- stderr ---\n{_tail(expired.stderr)}") from None
    return Run(completed.returncode, completed.stdout, completed.stderr)


def _tail(output: bytes | str | None, lines: int = 40) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    return "\n".join(text.splitlines()[-lines:])


def saxctl_background(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                      sigint_ignored: bool = False) -> subprocess.Popen:
    """saxctl started and left running; `sigint_ignored`: with SIGINT ignored, as bash starts a background job."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    disposition = signal.SIG_IGN if sigint_ignored else signal.SIG_DFL
    return subprocess.Popen(SAXCTL + list(args), env=full_env, cwd=cwd or REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))


def buckets_spec(directory: Path, name: str, admin: str, data: str, *, data_labels: str = "{team: ml}",
                 data_location: str = "US") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: saxctl/v1
        kind: SaxDeployment
        metadata: {{name: {name}}}
        project: {{id: saxctl-test, region: us-central1}}
        buckets:
          admin: {{name: {admin}, location: US}}
          data: {{name: {data}, location: {data_location}, labels: {data_labels}}}
        """))
    return path


def wait_for_lock(sandbox, bucket: str, timeout: float = 30) -> None:
    """Until a run has taken the lock in `bucket` (its saxctl/lock.json exists)."""
    import time

    client = sandbox.storage_client("saxctl-test")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.bucket(bucket).get_blob("saxctl/lock.json") is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"no run took the lock in gs://{bucket}")


def drift_report(run: Run) -> dict:
    """The JSON `saxctl drift --json` printed, checked against its documented schema (schemas/drift-report.schema.json)."""
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads((REPO / "schemas" / "drift-report.schema.json").read_text())
    document = json.loads(run.out)
    Draft202012Validator(schema).validate(document)
    return document


class Watched:
    """A saxctl run in the background, its stdout and stderr read as they come: a test waits for what it says
    (a condition), never for a while."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((process.stdout, self.out), (process.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> "Watched":
        return self

    def __exit__(self, *raised) -> None:
        """A test that failed midway leaves no saxctl running behind it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Until stderr says `text` (the process still running)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self.err)):
            assert self.process.poll() is None, f"it ended without saying {text!r}:\n{''.join(self.out + self.err)}"
            assert time.monotonic() < deadline, f"not said within {timeout} s: {text!r}:\n{''.join(self.err)}"
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Its exit code, stdout and stderr once it has ended."""
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.process.returncode, "".join(self.out), "".join(self.err)
