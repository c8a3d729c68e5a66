"""Pytest plugin: a session-wide sandbox (real emulator processes) and unique names for what tests create."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

_CONTROL_TIMEOUT_S = 5
_NO_BACKGROUND_BUCKET_GET = "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"
# The pod runner's test image: a pod of image sandbox-test-echo runs tests/kube/echo_server.py (tests/kube/).
_ECHO_SERVER = Path(__file__).parent / "kube" / "echo_server.py"
_RUNNER_TEST_IMAGES = {"sandbox-test-echo": {"entrypoint": [sys.executable, str(_ECHO_SERVER)],
                                             "executable": "echo-server"}}
_live: list["Sandbox"] = []  # the session's sandbox once a test asked for it
_started: list[dict] = []  # its state as started, for the start-up cost in the summary


class Sandbox:
    """The running sandbox of this test session: its exports, clients pointed at it, and its control endpoints."""

    def __init__(self, state: dict, state_dir: Path):
        self.state = state
        self.state_dir = state_dir
        self.env: dict[str, str] = dict(state["env"])
        self.gcs_endpoint: str = self.env["STORAGE_EMULATOR_HOST"]
        self.iam_endpoint: str = self.env["SAXCTL_IAM_ENDPOINT"]  # a gRPC target, host:port
        self._faulted: set[str] = set()
        self._channels: list = []  # gRPC channels of the clients handed out, closed with the sandbox

    def url(self, emulator: str) -> str:
        return f"http://127.0.0.1:{self.state['emulators'][emulator]['port']}"

    def kube_api_client(self):
        """A real kubernetes.client.ApiClient for the sandbox's kube-apiserver (admin, from its kubeconfig).

        Close it when done (`with sandbox.kube_api_client() as api:`): each holds a connection pool.
        """
        from kubernetes import config

        return config.new_client_from_config(config_file=self.env["SAXCTL_SANDBOX_KUBECONFIG"])

    def storage_client(self, project: str):
        """A real google.cloud.storage.Client talking to the sandbox's GCS front layer."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.gcs_endpoint})

    def gke_client(self):
        """A real container_v1.ClusterManagerClient on the GKE emulator (REST transport, as RECIPES §3)."""
        from google.cloud import container_v1

        return container_v1.ClusterManagerClient(**self._rest_options("SAXCTL_GKE_ENDPOINT"))

    def projects_client(self):
        """A real resourcemanager_v3.ProjectsClient on the Resource Manager emulator."""
        from google.cloud import resourcemanager_v3

        return resourcemanager_v3.ProjectsClient(**self._rest_options("SAXCTL_RESOURCEMANAGER_ENDPOINT"))

    def machine_types_client(self):
        """A real compute_v1.MachineTypesClient on the Compute emulator."""
        from google.cloud import compute_v1

        return compute_v1.MachineTypesClient(**self._rest_options("SAXCTL_COMPUTE_ENDPOINT"))

    def regions_client(self):
        """A real compute_v1.RegionsClient on the Compute emulator."""
        from google.cloud import compute_v1

        return compute_v1.RegionsClient(**self._rest_options("SAXCTL_COMPUTE_ENDPOINT"))

    def _rest_options(self, variable: str) -> dict:
        from google.auth.credentials import AnonymousCredentials

        # The endpoint keeps its http:// (without a scheme the clients use https).
        return {"credentials": AnonymousCredentials(), "transport": "rest",
                "client_options": {"api_endpoint": self.env[variable]}}

    def iam_client(self):
        """A real google.cloud.iam_admin_v1.IAMClient on its own insecure gRPC channel to the IAM emulator.

        The client speaks gRPC only (RECIPES §3); an explicit channel needs no credentials and opens no TLS.
        """
        import grpc
        from google.cloud.iam_admin_v1 import IAMClient
        from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

        channel = grpc.insecure_channel(self.iam_endpoint)
        self._channels.append(channel)
        return IAMClient(transport=IAMGrpcTransport(channel=channel))

    def close_clients(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()

    def requests(self, emulator: str = "gcs") -> list[dict]:
        """API calls the emulator saw since the last reset: [{method, path, query, status, ms}]."""
        return self.control("GET", emulator, "requests")["requests"]

    def reset_requests(self, emulator: str = "gcs") -> None:
        self.control("DELETE", emulator, "requests")

    def inject_fault(self, emulator: str = "gcs", **rule) -> dict:
        """Add a rule: method, path (regex), status, body, count, probability, delay_s, retry_after, drop; for the
        gRPC emulator (iam) also grpc_code, after_commit and seed. Its path matches the method path there.

        Rules are cleared after each test; the rule as installed (with its id) is returned.
        """
        self._faulted.add(emulator)
        return self.control("POST", emulator, "faults", [rule])["rules"][0]

    def faults(self, emulator: str = "gcs") -> list[dict]:
        return self.control("GET", emulator, "faults")["rules"]

    def clear_faults(self, emulator: str = "gcs") -> None:
        self.control("DELETE", emulator, "faults")
        self._faulted.discard(emulator)

    def control(self, method: str, emulator: str, what: str, payload: object = None) -> dict:
        """Call an emulator's control endpoint /_sandbox/WHAT (nodes, operation-latency, quotas, policy...)."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.url(emulator)}/_sandbox/{what}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=_CONTROL_TIMEOUT_S) as response:
            return json.load(response)


@contextlib.contextmanager
def state_dir_env(state_dir: Path) -> Iterator[None]:
    """Point the supervisor at a state dir for the duration of a call, leaving the process env as it was."""
    previous = os.environ.get("SAXCTL_SANDBOX_DIR")
    os.environ["SAXCTL_SANDBOX_DIR"] = str(state_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SAXCTL_SANDBOX_DIR", None)
        else:
            os.environ["SAXCTL_SANDBOX_DIR"] = previous


@contextlib.contextmanager
def _runner_test_images() -> Iterator[None]:
    """The pod runner reads its extra image rows when it starts."""
    from reconciler.sandbox.kube.images import EXTRA_IMAGES_ENV

    os.environ[EXTRA_IMAGES_ENV] = json.dumps(_RUNNER_TEST_IMAGES)
    try:
        yield
    finally:
        os.environ.pop(EXTRA_IMAGES_ENV, None)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox in a temporary state dir; the emulator binaries are built once into <repo>/.sandbox/bin."""
    from reconciler.sandbox import supervisor

    state_dir = tmp_path_factory.mktemp("sandbox")
    # google-cloud-storage 3.17 fires a background `GET /storage/v1/b/NAME` (trace metadata) on the first object or
    # create call per bucket and client. In tests it lands at random: after reset_requests(), or on a fault meant
    # for the call under test. Off for this process and the saxctl subprocesses it starts (they inherit os.environ).
    background_get_setting = os.environ.get(_NO_BACKGROUND_BUCKET_GET)
    os.environ[_NO_BACKGROUND_BUCKET_GET] = "true"
    say = lambda message: print(f"[sandbox] {message}", flush=True)  # noqa: E731 (shown with -s)
    # Stops the emulators should this session be killed before its teardown (they run detached).
    with open(state_dir / "reaper.log", "wb") as reaper_log:
        reaper = subprocess.Popen([sys.executable, "-m", "reconciler.sandbox.reaper", "--owner", str(os.getpid()),
                                   "--state-dir", str(state_dir)], stdin=subprocess.DEVNULL, stdout=reaper_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with state_dir_env(state_dir), _runner_test_images():
            state, _ = supervisor.up(say)
        _started.append(state)
        running = Sandbox(state, state_dir)
        _live.append(running)
        try:
            yield running
        finally:
            _live.remove(running)
            running.close_clients()
            with state_dir_env(state_dir):
                supervisor.down(say)
    finally:
        reaper.terminate()
        reaper.wait(timeout=10)
        if background_get_setting is None:
            os.environ.pop(_NO_BACKGROUND_BUCKET_GET, None)
        else:
            os.environ[_NO_BACKGROUND_BUCKET_GET] = background_get_setting


@pytest.fixture
def sandbox_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The sandbox's exports set in os.environ for one test (for code that reads STORAGE_EMULATOR_HOST...)."""
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    return sandbox.env


@pytest.fixture
def unique_name(request: pytest.FixtureRequest):
    """unique_name(prefix="t") → a name valid for GCS buckets and Kubernetes objects, unique per call."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")
    slug = slug.replace("google", "ggl")[:28].strip("-")  # GCS refuses names containing "google"

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{slug}-{secrets.token_hex(4)}"[:63]

    return make


@pytest.fixture
def unique_project(unique_name):
    """unique_project() → a valid project id (6 to 30 characters), unique per call: a test's own IAM policy,
    clusters and operations."""

    def make() -> str:
        name = unique_name("p")  # p-SLUG-HEX8
        return f"{name[:21].rstrip('-')}-{name[-8:]}"

    return make


@pytest.fixture(autouse=True)
def _sandbox_faults_cleared() -> Iterator[None]:
    """Fault rules one test injected never leak into the next (does not start the sandbox)."""
    yield
    for running in _live:
        for emulator in list(running._faulted):
            running.clear_faults(emulator)


def live_sandboxes() -> list[Sandbox]:
    """The session's sandbox, once a test has asked for it (none before, and none after its teardown)."""
    return list(_live)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the sandbox carries the `sandbox` marker, so `-m "not sandbox"` skips them all."""
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sandbox)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the sandbox's Go programs before the first test when any selected test uses the sandbox.

    Here, not in the fixture: a cold build of the Kubernetes control plane takes minutes, longer than a test's
    timeout. Once per machine in practice: the binaries are reused, and Go's build cache makes a rebuild seconds.
    """
    if session.config.option.collectonly or not any("sandbox" in getattr(item, "fixturenames", ())
                                                    for item in session.items):
        return
    from reconciler.sandbox import gobuild

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = (lambda message: reporter.write_line(f"[sandbox] {message}")) if reporter else (lambda message: None)
    try:
        gobuild.ensure_all(say)
    except gobuild.BuildError as error:  # each sandbox test then fails with it; the others still run
        say(f"{error.message}\n{error.hint or ''}")


def pytest_terminal_summary(terminalreporter) -> None:
    """What the session's sandbox cost to start, the control plane apart (started once, shared by every test)."""
    from reconciler.sandbox.kube.control_plane import PROCESSES

    for started in _started:
        # Each emulator's start_seconds is when `up` first found it healthy, counted from the first launch.
        ready = {name: record["start_seconds"] for name, record in started["emulators"].items()}
        kube = max(ready[name] for name in PROCESSES)
        others = max(seconds for name, seconds in ready.items() if name not in PROCESSES)
        terminalreporter.write_line(
            f"sandbox start: {started['start_seconds']:.1f} s; healthy after: the Kubernetes control plane {kube:.1f} s "
            f"({', '.join(f'{name} {ready[name]:.1f}' for name in PROCESSES)}), the other emulators {others:.1f} s")
