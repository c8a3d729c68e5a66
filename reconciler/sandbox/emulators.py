"""The table of emulators the sandbox runs: how to start each, where its health is, and what it exports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox import paths
from reconciler.sandbox.kube import control_plane as kube


@dataclass(frozen=True, slots=True)
class Launch:
    """What the supervisor knows when it starts an emulator: every emulator's port, and the built Go binaries."""

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
    prepare: Callable[[Launch], None] | None = None  # writes what the process reads at start (certificates, tokens)
    health_ca: Callable[[], Path] | None = None  # health is HTTPS, verified against this CA
    start_timeout_s: float = 20.0  # how long it may take to be healthy before `up` gives up
    extra_ports: tuple[str, ...] = ()  # more ports it listens on, named in Launch.ports (etcd's peer port)


def _fake_gcs_command(launch: Launch) -> list[str]:
    return [str(launch.binaries["fake-gcs-server"]), "-scheme", "http", "-host", "127.0.0.1",
            "-port", str(launch.ports["fake-gcs-server"]), "-backend", "filesystem",
            "-filesystem-root", str(paths.data_dir("fake-gcs-server")),
            # Object links (mediaLink, selfLink) must lead back through the front layer, not around it.
            "-external-url", f"http://127.0.0.1:{launch.ports['gcs']}", "-log-level", "warn"]


def _gcs_front_command(launch: Launch) -> list[str]:
    return [sys.executable, "-m", "reconciler.sandbox.gcs_front", "--port", str(launch.ports["gcs"]),
            "--upstream", f"http://127.0.0.1:{launch.ports['fake-gcs-server']}",
            "--store", str(paths.data_dir("gcs") / "buckets.json"),
            "--faults-json", launch.faults_json.get("gcs", "")]


# Start order; `down` stops them in reverse. Adding an emulator (GKE, IAM, kube-apiserver...) is adding an entry.
EMULATORS: tuple[Emulator, ...] = (
    Emulator(name="fake-gcs-server", go_tool="fake-gcs-server", command=_fake_gcs_command,
             health_path="/_internal/healthcheck", exports=lambda ports: {}, marker="fake-gcs-server",
             takes_faults=False),
    Emulator(name="gcs", go_tool=None, command=_gcs_front_command, health_path="/_sandbox/health",
             exports=lambda ports: {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['gcs']}"},
             marker="reconciler.sandbox.gcs_front", takes_faults=True),
    # The Kubernetes control plane (reconciler/sandbox/kube/), built from Go modules at pinned versions.
    Emulator(name="etcd", go_tool="etcd", command=kube.etcd_command, health_path="/health", exports=lambda ports: {},
             marker="etcd", takes_faults=False, prepare=kube.prepare_etcd, extra_ports=("etcd-peer",)),
    Emulator(name="kube-apiserver", go_tool="kube-apiserver", command=kube.apiserver_command, health_path="/readyz",
             exports=kube.exports, marker="kube-apiserver", takes_faults=False, prepare=kube.prepare_apiserver,
             # /readyz answered ok 3.7-7.9 s after start here while other builds ran (3-5 s idle, RECIPES §1).
             health_ca=kube.ca_cert, start_timeout_s=90.0),
    Emulator(name="kube-controller-manager", go_tool="kube-controller-manager",
             command=kube.controller_manager_command, health_path="/healthz", exports=lambda ports: {},
             marker="kube-controller-manager", takes_faults=False, health_ca=kube.ca_cert, start_timeout_s=60.0),
    Emulator(name="kube-scheduler", go_tool="kube-scheduler", command=kube.scheduler_command, health_path="/healthz",
             exports=lambda ports: {}, marker="kube-scheduler", takes_faults=False, health_ca=kube.ca_cert,
             start_timeout_s=60.0),
    Emulator(name="kwok", go_tool="kwok", command=kube.kwok_command, health_path="/healthz",
             exports=lambda ports: {}, marker="kwok", takes_faults=False, start_timeout_s=60.0),
)

BY_NAME = {emulator.name: emulator for emulator in EMULATORS}
