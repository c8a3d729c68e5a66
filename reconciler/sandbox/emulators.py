"""The table of emulators the sandbox runs: how to start each, where its health is, and what it exports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox import paths
from reconciler.sandbox.kube import control_plane as kube
from reconciler.sandbox.kube import files as kube_files


@dataclass(frozen=True, slots=True)
class Launch:
    """What the supervisor knows when it starts an emulator: every emulator's port, and the built Go binaries.

    `ports` is keyed by emulator name, and by "name:extra" for an emulator's extra ports (see Emulator.port_keys).
    """

    ports: dict[str, int]
    binaries: dict[str, Path]
    faults_json: dict[str, str]  # emulator → JSON list of fault rules to install at start


@dataclass(frozen=True, slots=True)
class Emulator:
    name: str
    go_tool: str | None  # an entry of gobuild.GO_TOOLS to build first, if any
    command: Callable[[Launch], list[str]]
    health_path: str
    exports: Callable[[dict[str, int]], dict[str, str]]
    marker: str  # a string in the process's command line: proves a pid is still ours before we signal it
    takes_faults: bool  # whether it serves /_sandbox/faults (Python emulators do, fake-gcs-server does not)
    # Ports beyond the one its health and control endpoints answer on, e.g. ("grpc",) for a gRPC API.
    extra_ports: tuple[str, ...] = ()
    prepare: Callable[[Launch], None] | None = None  # writes what the process reads at start (certificates, tokens)
    health_ca: Callable[[], Path] | None = None  # health is HTTPS, verified against this CA
    # How long it may take to be healthy before `up` gives up: a Python emulator imports its client library's types in
    # 1-2 s on an idle machine; 20 s left too little margin with eleven processes starting on 2 busy cores.
    start_timeout_s: float = 60.0
    needs: tuple[str, ...] = ()  # emulators that must be healthy before it starts (the others start at once)

    def port_keys(self) -> list[str]:
        return [self.name, *(f"{self.name}:{extra}" for extra in self.extra_ports)]


def _fake_gcs_command(launch: Launch) -> list[str]:
    return [str(launch.binaries["fake-gcs-server"]), "-scheme", "http", "-host", "127.0.0.1",
            "-port", str(launch.ports["fake-gcs-server"]), "-backend", "filesystem",
            "-filesystem-root", str(paths.data_dir("fake-gcs-server")),
            # Object links (mediaLink, selfLink) must lead back through the front layer, not around it.
            "-external-url", f"http://127.0.0.1:{launch.ports['gcs']}", "-log-level", "warn"]


def _gcs_front_command(launch: Launch) -> list[str]:
    return [sys.executable, "-m", "reconciler.sandbox.gcs.front", "--port", str(launch.ports["gcs"]),
            "--upstream", f"http://127.0.0.1:{launch.ports['fake-gcs-server']}",
            "--store", str(paths.data_dir("gcs") / "bucket-store.json"),
            "--faults-json", launch.faults_json.get("gcs", "")]


def _python_emulator(module: str, name: str, *extra: str) -> Callable[[Launch], list[str]]:
    def command(launch: Launch) -> list[str]:
        return [sys.executable, "-m", module, "--port", str(launch.ports[name]),
                "--faults-json", launch.faults_json.get(name, ""), *extra]

    return command


def _endpoint(name: str, variable: str) -> Callable[[dict[str, int]], dict[str, str]]:
    return lambda ports: {variable: f"http://127.0.0.1:{ports[name]}"}


def _gke_command(launch: Launch) -> list[str]:
    # Every cluster's endpoint and CA are the sandbox apiserver's; each node of each pool becomes a kwok Node there.
    return _python_emulator("reconciler.sandbox.gke.server", "gke", "--store",
                            str(paths.data_dir("gke") / "store.json"),
                            "--kube-endpoint", kube.server_url(launch), "--kube-ca-file", str(kube.ca_cert()),
                            "--kubeconfig", str(kube_files.components_kubeconfig()))(launch)


def _compute_command(launch: Launch) -> list[str]:
    # GKE's node pools are Compute's managed instance groups: the Compute emulator asks the GKE emulator for them.
    return _python_emulator("reconciler.sandbox.compute.server", "compute", "--gke-control",
                            f"http://127.0.0.1:{launch.ports['gke']}")(launch)


def _resourcemanager_command(launch: Launch) -> list[str]:
    return _python_emulator("reconciler.sandbox.resourcemanager.server", "resourcemanager", "--store",
                            str(paths.data_dir("resourcemanager") / "store.json"))(launch)


def _iam_command(launch: Launch) -> list[str]:
    return _python_emulator("reconciler.sandbox.iam.server", "iam", "--grpc-port", str(launch.ports["iam:grpc"]),
                            "--store", str(paths.data_dir("iam") / "accounts.json"),
                            "--resourcemanager", f"http://127.0.0.1:{launch.ports['resourcemanager']}")(launch)


def _pod_runner_command(launch: Launch) -> list[str]:
    # Each process it starts gets the sandbox's Google endpoints, where a pod on GKE reaches Google's APIs; never the
    # Kubernetes exports (the admin token): a pod has its own service account.
    google = {name: value for emulator in EMULATORS if emulator.name not in (*kube.PROCESSES, "pod-runner")
              for name, value in emulator.exports(launch.ports).items()}
    return [*_python_emulator("reconciler.sandbox.kube.pod_runner", "pod-runner")(launch),
            "--kubeconfig", str(kube_files.components_kubeconfig()), "--logs-dir", str(paths.logs_dir()),
            "--kubelet-port", str(launch.ports["kwok"]),
            *(f"--env={name}={value}" for name, value in sorted(google.items()))]


# Start order; `down` stops them in reverse. Adding an emulator (GKE, IAM, kube-apiserver...) is adding an entry.
EMULATORS: tuple[Emulator, ...] = (
    Emulator(name="fake-gcs-server", go_tool="fake-gcs-server", command=_fake_gcs_command,
             health_path="/_internal/healthcheck", exports=lambda ports: {}, marker="fake-gcs-server",
             takes_faults=False),
    Emulator(name="gcs", go_tool=None, command=_gcs_front_command, health_path="/_sandbox/health",
             exports=lambda ports: {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['gcs']}"},
             marker="reconciler.sandbox.gcs.front", takes_faults=True),
    # The Kubernetes control plane (reconciler/sandbox/kube/), built from Go modules at pinned versions.
    Emulator(name="etcd", go_tool="etcd", command=kube.etcd_command, health_path="/health", exports=lambda ports: {},
             marker="etcd", takes_faults=False, prepare=kube.prepare_etcd, extra_ports=("peer",)),
    Emulator(name="kube-apiserver", go_tool="kube-apiserver", command=kube.apiserver_command, health_path="/readyz",
             exports=kube.exports, marker="kube-apiserver", takes_faults=False, prepare=kube.prepare_apiserver,
             # /readyz answered ok 3.7-7.9 s after start here while other builds ran (3-5 s idle, RECIPES §1).
             health_ca=kube.ca_cert, start_timeout_s=90.0, needs=("etcd",)),
    Emulator(name="kube-controller-manager", go_tool="kube-controller-manager",
             command=kube.controller_manager_command, health_path="/healthz", exports=lambda ports: {},
             marker="kube-controller-manager", takes_faults=False, health_ca=kube.ca_cert, start_timeout_s=60.0,
             needs=("kube-apiserver",)),
    Emulator(name="kube-scheduler", go_tool="kube-scheduler", command=kube.scheduler_command, health_path="/healthz",
             exports=lambda ports: {}, marker="kube-scheduler", takes_faults=False, health_ca=kube.ca_cert,
             start_timeout_s=60.0, needs=("kube-apiserver",)),
    Emulator(name="kwok", go_tool="kwok", command=kube.kwok_command, health_path="/healthz",
             exports=lambda ports: {}, marker="kwok", takes_faults=False, start_timeout_s=60.0,
             prepare=kube.prepare_kwok, needs=("kube-apiserver",)),
    Emulator(name="gke", go_tool=None, command=_gke_command, health_path="/_sandbox/health",
             exports=_endpoint("gke", "SAXCTL_GKE_ENDPOINT"), marker="reconciler.sandbox.gke.server",
             takes_faults=True, needs=("kube-apiserver",)),
    Emulator(name="resourcemanager", go_tool=None, command=_resourcemanager_command, health_path="/_sandbox/health",
             exports=_endpoint("resourcemanager", "SAXCTL_RESOURCEMANAGER_ENDPOINT"),
             marker="reconciler.sandbox.resourcemanager.server", takes_faults=True),
    Emulator(name="compute", go_tool=None, command=_compute_command,
             health_path="/_sandbox/health", exports=_endpoint("compute", "SAXCTL_COMPUTE_ENDPOINT"),
             marker="reconciler.sandbox.compute.server", takes_faults=True),
    # The IAM admin client speaks gRPC only: the export is a gRPC target (insecure), not a URL.
    Emulator(name="iam", go_tool=None, command=_iam_command, health_path="/_sandbox/health",
             exports=lambda ports: {"SAXCTL_IAM_ENDPOINT": f"127.0.0.1:{ports['iam:grpc']}"},
             marker="reconciler.sandbox.iam.server", takes_faults=True, extra_ports=("grpc",)),
    # Runs a process for each pod of a known image on a kwok node (Sax's stand-ins): reconciler/sandbox/kube/.
    Emulator(name="pod-runner", go_tool=None, command=_pod_runner_command, health_path="/_sandbox/health",
             exports=lambda ports: {}, marker="reconciler.sandbox.kube.pod_runner", takes_faults=False,
             needs=("kwok",)),
)

BY_NAME = {emulator.name: emulator for emulator in EMULATORS}
