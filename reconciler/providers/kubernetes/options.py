"""What the command line says about Kubernetes for one run (plain values: importing this costs nothing)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ROLLOUT_TIMEOUT_S = 900.0  # a TPU model server pulls a large image; GKE may also be adding its nodes


@dataclass(frozen=True, slots=True)
class KubeOptions:
    kubeconfig: str | None = None  # reach the cluster through this kubeconfig, not the cluster object's endpoint
    context: str | None = None  # the kubeconfig's context (default: its current-context)
    force_conflicts: bool = False  # take fields another field manager applied (server-side apply's force)
    rollout_timeout_s: float = DEFAULT_ROLLOUT_TIMEOUT_S  # how long apply waits for a workload to be ready
