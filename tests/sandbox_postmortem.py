"""Pytest plugin: a failed test that used the sandbox carries, in its report, what the sandbox's parts were doing when
it failed: the pod runner's threads (a stack dump it writes on SIGUSR1) and last log lines, kwok's last log lines, and
the apiserver's watch cache of pods. A failure that a stalled part caused then says so in CI's output, where the
sandbox itself is gone by the time anyone looks."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from pathlib import Path

import pytest
from sandbox_fixture import Sandbox, live_sandboxes

_TAIL_LINES = 40
_LINE_CHARS = 300
_DUMP_WAIT_S = 0.5  # the runner writes its stacks from a signal handler: at once, unless the GIL is held
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
    parts = [("the apiserver's watch cache of pods", _pod_watch_cache, running),
             ("the pod runner's threads and last log lines", _pod_runner, running),
             ("kwok's last log lines", _log_tail, Path(running.state["emulators"]["kwok"]["log"]))]
    said = []
    for title, read, argument in parts:
        try:
            text = read(argument)
        except Exception as error:  # noqa: BLE001 (a report of a failure must not fail)
            text = f"could not read: {error!r}"
        said.append(f"=== {title} ===\n{text}")
    return "\n".join(said)


def _pod_watch_cache(running: Sandbox) -> str:
    with running.kube_api_client() as api:
        method, url, headers, body, post = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
        response = api.call_api(method, url, headers, body, post, _request_timeout=_METRICS_TIMEOUT_S)
        text = response.read().decode()
    return "\n".join(line for line in text.splitlines()
                     if line.startswith(_WATCH_CACHE_METRICS) and 'resource="pods"' in line)


def _pod_runner(running: Sandbox) -> str:
    record = running.state["emulators"]["pod-runner"]
    os.kill(record["pid"], signal.SIGUSR1)  # reconciler.sandbox.base.launch: every thread's stack, into its log
    time.sleep(_DUMP_WAIT_S)
    return _log_tail(Path(record["log"]), lines=3 * _TAIL_LINES)


def _log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    with open(path, errors="replace") as log:
        return "\n".join(line.rstrip("\n")[:_LINE_CHARS] for line in deque(log, maxlen=lines))
