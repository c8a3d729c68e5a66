"""Pytest plugin: a failed test that used the sandbox carries, in its report, what the sandbox's parts were doing when
it failed: each Python emulator's threads (the stack dump it writes on SIGUSR1: the GKE emulator, the pod runner...)
and last log lines, kwok's last log lines, and the apiserver's watch cache of pods. A failure that a stalled part
caused then says so in CI's output, where the sandbox itself is gone by the time anyone looks."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sandbox_fixture import Sandbox, live_sandboxes

_TAIL_LINES = 40
_LINE_CHARS = 300
_DUMP_WAIT_S = 0.5  # an emulator writes its stacks from a signal handler: at once, unless the GIL is held
_METRICS_TIMEOUT_S = 5
# Whether the apiserver's cache of pods still follows etcd, and what it sent its watchers (kwok's, the runner's).
_WATCH_CACHE_METRICS = ("apiserver_watch_cache_resource_version", "apiserver_watch_cache_events_received_total",
                        "apiserver_watch_cache_events_dispatched_total", "apiserver_storage_events_received_total")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "sandbox" in getattr(item, "fixturenames", ()):
        for running in live_sandboxes():
            report.sections.append(("the sandbox when the test failed", postmortem(running)))


def postmortem(running: Sandbox) -> str:
    from reconciler.sandbox.emulators import BY_NAME

    emulators = running.state["emulators"]
    python = [name for name in emulators if BY_NAME[name].go_tool is None]
    unasked = {name: _said(_ask_for_stacks, emulators[name]) for name in python}  # "" once asked
    time.sleep(_DUMP_WAIT_S)
    parts = [("the apiserver's watch cache of pods", _said(_pod_watch_cache, running))]
    parts += [(f"{name}: its threads and last log lines",
               unasked[name] or _said(_log_tail, Path(emulators[name]["log"]), 2 * _TAIL_LINES)) for name in python]
    parts.append(("kwok: its last log lines", _said(_log_tail, Path(emulators["kwok"]["log"]))))
    return "\n".join(f"=== {title} ===\n{text}" for title, text in parts)


def _said(read, *args) -> str:
    """What read(*args) returns (None: ""), or why it could not: a report of a failure must not fail."""
    try:
        return read(*args) or ""
    except Exception as error:  # noqa: BLE001
        return f"could not read: {error!r}"


def _ask_for_stacks(record: dict) -> None:
    """A Python emulator writes every thread's stack to its log on SIGUSR1 (reconciler.sandbox.base.launch)."""
    os.kill(record["pid"], signal.SIGUSR1)


def _pod_watch_cache(running: Sandbox) -> str:
    with running.kube_api_client() as api:
        method, url, headers, body, post = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
        response = api.call_api(method, url, headers, body, post, _request_timeout=_METRICS_TIMEOUT_S)
        text = response.read().decode()
    return "\n".join(line for line in text.splitlines()
                     if line.startswith(_WATCH_CACHE_METRICS) and 'resource="pods"' in line)


def _log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The latest launch's last lines, each cut short (kwok's are long JSON)."""
    from reconciler.sandbox.supervisor import log_tail

    return "\n".join(line[:_LINE_CHARS] for line in log_tail(str(path), lines).splitlines())
