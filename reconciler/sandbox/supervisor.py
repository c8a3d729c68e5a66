"""Start, check and stop the sandbox's emulators as detached processes, recorded in a state file."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from reconciler.errors import EndpointError, SaxctlError
from reconciler.sandbox import gobuild, paths
from reconciler.sandbox.emulators import BY_NAME, EMULATORS, Launch
from reconciler.sandbox.base.faults import FaultSet

STOP_TIMEOUT_S = 5.0  # SIGTERM grace before SIGKILL
HEALTH_TIMEOUT_S = 2.0
_PORT_ATTEMPTS = 3
MARKER_ENV = {"SAXCTL_SANDBOX": "1"}
SAMPLE_CHECKPOINT_ENV = "GPTJ_CHECKPOINT"  # the checkpoint source of specs/gptj-v5e-2x2.yaml

Say = Callable[[str], None]

# Popen handles of the emulators this process started, so `down` can reap them (no zombies in a test session).
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True, slots=True)
class EmulatorStatus:
    name: str
    pid: int | None
    port: int | None
    healthy: bool
    log: str
    detail: str  # why it is unhealthy, or "" when healthy
    ports: dict[str, int] = dataclasses.field(default_factory=dict)  # its extra ports by name, e.g. {"grpc": 41235}


class NotYourSandboxError(SaxctlError):
    """The sandbox was started by another checkout (or user): stopping it would break that one's runs."""


def up(say: Say, faults: dict[str, list] | None = None) -> tuple[dict, bool]:
    """Start every emulator unless all are already healthy. Returns (state, already_up)."""
    _check_faults(faults or {})
    with _locked():
        state = read_state()
        if state and all(row.healthy for row in _check(state)):
            for name, rules in (faults or {}).items():
                _post_faults(f"{emulator_url(state, name)}/_sandbox/faults", rules)
            return state, True
        if state:
            say(f"sandbox partly up: restarting it (it was {whose(state)})")
            _stop(state, say)
        return _start(say, faults or {}), False


def down(say: Say, purge: bool = False, force: bool = False) -> bool:
    """Stop every emulator; with purge also delete the stored data. Returns whether anything was running.

    Refuses (NotYourSandboxError) a sandbox that another checkout started, unless force.
    """
    with _locked():
        state = read_state()
        if state and not force and not is_ours(state):
            raise NotYourSandboxError(
                f"the sandbox in {paths.state_dir()} was {whose(state)}: stopping it would break what runs there",
                hint="Stop it from there, or pass --force to stop it anyway")
        if state:
            _stop(state, say)
        if purge:
            for directory in (paths.state_dir() / "data", paths.logs_dir(), paths.sample_checkpoint_dir().parent):
                shutil.rmtree(directory, ignore_errors=True)
        return state is not None


def is_ours(state: dict) -> bool:
    """Whether this saxctl's checkout (or user) started the sandbox; a state from before owners were kept counts."""
    return state.get("owner", paths.owner()) == paths.owner()


def whose(state: dict) -> str:
    """Whose the sandbox is, for people: 'started from this checkout /x', 'started from checkout /y, not this one'."""
    recorded = state.get("owner")
    if recorded is None:
        return "started by an older saxctl"
    started = f"started {'from' if recorded.startswith('checkout ') else 'by'}"
    if recorded == paths.owner():
        return f"{started} this {recorded}"
    return f"{started} {recorded}, not this {paths.owner()}"


def status() -> list[EmulatorStatus]:
    """One row per emulator of the table; an emulator that is not running shows as unhealthy."""
    state = read_state() or {"emulators": {}}
    return _check(state)


def env_exports(state: dict | None = None) -> dict[str, str]:
    """The endpoints of the running sandbox, and the demo's sample checkpoint when there is one.

    GPTJ_CHECKPOINT is the source specs/gptj-v5e-2x2.yaml reads: exported only when the sample exists and the user
    has set none, so that plan/status/destroy of the demo's spec work in a shell pointed at the sandbox.
    """
    state = state if state is not None else read_state()
    if state is None:
        raise EndpointError("the sandbox is not up", hint='Start it with: eval "$(saxctl sandbox up)"')
    env = dict(state["env"])
    if SAMPLE_CHECKPOINT_ENV not in os.environ and _sample_written():
        env[SAMPLE_CHECKPOINT_ENV] = str(paths.sample_checkpoint_dir())
    return env


def unset_lines() -> str:
    """Shell lines undoing every export `env` may print (whether or not the sandbox is up).

    GPTJ_CHECKPOINT is unset only while it is the sandbox's sample: a value of the user's own stays.
    """
    ports = {key: 0 for emulator in EMULATORS for key in emulator.port_keys()}
    names = [name for emulator in EMULATORS for name in emulator.exports(ports)] + ["SAXCTL_SANDBOX_DIR", *MARKER_ENV]
    sample = shlex.quote(str(paths.sample_checkpoint_dir()))
    return "".join(f"unset {name}\n" for name in names) + \
        f'[ "${{{SAMPLE_CHECKPOINT_ENV}-}}" != {sample} ] || unset {SAMPLE_CHECKPOINT_ENV}\n'


def _sample_written() -> bool:
    return (paths.sample_checkpoint_dir() / "config.json").is_file()


def shell_exports(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def read_state() -> dict | None:
    try:
        return json.loads(paths.state_file().read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        raise SaxctlError(f"the sandbox state file {paths.state_file()} is corrupt: {error}",
                          hint="Stop leftover emulators by hand if any, then delete that file") from None


def emulator_url(state: dict, name: str) -> str:
    return f"http://127.0.0.1:{state['emulators'][name]['port']}"


# --- starting --------------------------------------------------------------------------------------------------------

def _start(say: Say, faults: dict[str, list]) -> dict:
    started_at = time.monotonic()
    binaries = {emulator.go_tool: gobuild.ensure_binary(emulator.go_tool, say)
                for emulator in EMULATORS if emulator.go_tool}
    for directory in (paths.logs_dir(), paths.pids_dir(), paths.state_dir() / "data"):
        directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        launch = Launch(ports={key: _free_port() for emulator in EMULATORS for key in emulator.port_keys()},
                        binaries=binaries,
                        faults_json={name: json.dumps(rules) for name, rules in faults.items()})
        try:
            state = _launch_all(launch, say)
            break
        except _PortTaken as taken:
            if attempt == _PORT_ATTEMPTS:
                raise EndpointError(f"could not start {taken.name}: its port was taken {attempt} times in a row",
                                    hint=f"Full log: {taken.log}") from None
            say(f"{taken.name}'s port was taken by another process meanwhile: retrying with new ports")
    state["start_seconds"] = round(time.monotonic() - started_at, 2)
    _write_state(state)
    return state


def _launch_all(launch: Launch, say: Say) -> dict:
    state = {"version": 1, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "owner": paths.owner(), "emulators": {}, "env": {}}
    started_at = time.monotonic()
    healthy: set[str] = set()

    def wait_for(name: str) -> None:
        if name not in healthy:
            record = state["emulators"][name]
            _wait_healthy(name, record)
            record["start_seconds"] = round(time.monotonic() - started_at, 2)  # what `up` waited for it
            healthy.add(name)

    try:
        # Each starts as soon as what it needs is healthy (the Python emulators spend a second or two importing
        # their client library's types, so they start together); then every one is waited for.
        for emulator in EMULATORS:
            for needed in emulator.needs:
                wait_for(needed)
            paths.data_dir(emulator.name).mkdir(parents=True, exist_ok=True)
            if emulator.prepare:
                emulator.prepare(launch)
            record = _launch(emulator.name, emulator.command(launch), launch.ports[emulator.name])
            if emulator.extra_ports:
                record["ports"] = {extra: launch.ports[f"{emulator.name}:{extra}"] for extra in emulator.extra_ports}
            state["emulators"][emulator.name] = record
            _write_state(state)  # written as we go: a failed start can still be stopped
        for emulator in EMULATORS:
            wait_for(emulator.name)
    except BaseException:
        _stop(state, say)
        raise
    for emulator in EMULATORS:
        state["env"].update(emulator.exports(launch.ports))
    state["env"].update({"SAXCTL_SANDBOX_DIR": str(paths.state_dir()), **MARKER_ENV})
    return state


def _check_faults(faults: dict[str, list]) -> None:
    """Refuse bad rules before anything starts, rather than as an emulator's crash log."""
    takes_faults = [emulator.name for emulator in EMULATORS if emulator.takes_faults]
    unknown = set(faults) - set(takes_faults)
    if unknown:
        raise SaxctlError(f"fault rules for unknown emulator(s) {sorted(unknown)}; emulators taking faults: "
                          f"{takes_faults}")
    for name, rules in faults.items():
        try:
            FaultSet().add(rules)
        except (ValueError, TypeError) as error:
            raise SaxctlError(f"bad fault rule for {name}: {error}") from None


def _post_faults(url: str, rules: list) -> None:
    request = urllib.request.Request(url, data=json.dumps(rules).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise EndpointError(f"could not install fault rules at {url}: {error}") from None


def _launch(name: str, command: list[str], port: int) -> dict:
    log_path = paths.logs_dir() / f"{name}.log"
    with open(log_path, "ab") as log:
        log.write(f"\n--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} {shlex.join(command)}\n".encode())
        log.flush()
        # Own session: the emulator outlives `saxctl sandbox up` and a Ctrl-C in the user's shell.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True, cwd=paths.state_dir())
    _children[process.pid] = process
    (paths.pids_dir() / f"{name}.pid").write_text(f"{process.pid}\n")
    emulator = BY_NAME[name]
    scheme = "https" if emulator.health_ca else "http"
    return {"pid": process.pid, "port": port, "log": str(log_path),
            "health_url": f"{scheme}://127.0.0.1:{port}{emulator.health_path}",
            "health_ca": str(emulator.health_ca()) if emulator.health_ca else None}


def _wait_healthy(name: str, record: dict) -> None:
    timeout_s = BY_NAME[name].start_timeout_s  # not healthy by then: reported, with its log, instead of hanging
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        if not _alive(record["pid"], BY_NAME[name].marker):
            if "address already in use" in log_tail(record["log"]).lower():
                raise _PortTaken(name, record["log"])
            raise EndpointError(f"the sandbox emulator {name} exited while starting:\n{log_tail(record['log'])}",
                                hint=f"Full log: {record['log']}")
        healthy, detail = _probe(record["health_url"], record.get("health_ca"))
        if healthy:
            return
        time.sleep(0.05)
    raise EndpointError(f"the sandbox emulator {name} was not healthy after {timeout_s:.0f} s ({detail}):\n"
                        f"{log_tail(record['log'])}", hint=f"Full log: {record['log']}")


class _PortTaken(Exception):
    """Another process bound the port we picked before the emulator did (a free port is only free until used)."""

    def __init__(self, name: str, log: str):
        super().__init__(name)
        self.name = name
        self.log = log


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- checking --------------------------------------------------------------------------------------------------------

def _check(state: dict) -> list[EmulatorStatus]:
    rows = []
    for emulator in EMULATORS:
        record = state["emulators"].get(emulator.name)
        log_path = str(paths.logs_dir() / f"{emulator.name}.log")
        if record is None:
            rows.append(EmulatorStatus(emulator.name, None, None, False, log_path, "not started"))
            continue
        extra_ports = record.get("ports", {})
        if not _alive(record["pid"], emulator.marker):
            rows.append(EmulatorStatus(emulator.name, record["pid"], record["port"], False, record["log"],
                                       "process not running", extra_ports))
            continue
        healthy, detail = _probe(record["health_url"], record.get("health_ca"))
        rows.append(EmulatorStatus(emulator.name, record["pid"], record["port"], healthy, record["log"], detail,
                                   extra_ports))
    return rows


def _probe(url: str, ca_file: str | None = None) -> tuple[bool, str]:
    try:
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S, context=context) as response:
            return response.status == 200, "" if response.status == 200 else f"health answered {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"health answered {error.code}"
    except (OSError, ValueError) as error:
        return False, f"health check failed: {getattr(error, 'reason', error)}"


def _alive(pid: int, marker: str) -> bool:
    """Running, not a zombie, and still the process we started (its command line carries our marker)."""
    child = _children.get(pid)
    if child is not None:  # ours for sure; its command line may still be Python's between fork and exec
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and marker.encode() in cmdline


# --- stopping --------------------------------------------------------------------------------------------------------

def _stop(state: dict, say: Say) -> None:
    for emulator in reversed(EMULATORS):
        record = state["emulators"].get(emulator.name)
        if record is not None:
            _terminate(emulator.name, record["pid"], emulator.marker, say)
        (paths.pids_dir() / f"{emulator.name}.pid").unlink(missing_ok=True)
    paths.state_file().unlink(missing_ok=True)


def _terminate(name: str, pid: int, marker: str, say: Say) -> None:
    if not _alive(pid, marker):
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid, marker):
            return
        time.sleep(0.05)
    say(f"{name} (pid {pid}) did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM: sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid, wait=True)


def _reap(pid: int, wait: bool = False) -> None:
    child = _children.get(pid)
    if child is None:
        return
    if wait:
        child.wait(timeout=STOP_TIMEOUT_S)
    if child.poll() is not None:
        _children.pop(pid, None)


# --- files -----------------------------------------------------------------------------------------------------------

def _write_state(state: dict) -> None:
    scratch = paths.state_file().with_suffix(".tmp")
    # 0600: the exports it keeps for `env` include a bearer token (SAXCTL_SANDBOX_TOKEN).
    with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(json.dumps(state, indent=2) + "\n")
    os.replace(scratch, paths.state_file())


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One up/down at a time per state dir (two shells, or two test sessions sharing it)."""
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    with open(paths.state_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def log_tail(log_path: str, lines: int = 15) -> str:
    """The last lines the latest launch wrote (the log is appended to across launches, each after a "--- " line)."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    latest = text.rsplit("\n--- ", 1)[-1].splitlines()[1:]
    return "\n".join(latest[-lines:]) or "(the emulator wrote nothing)"
