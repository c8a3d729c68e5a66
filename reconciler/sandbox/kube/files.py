"""Where the control plane keeps its certificates, tokens and kubeconfigs, and how they are written."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.sandbox import paths


def directory() -> Path:
    """<state dir>/kube: kept across `down` and `down --purge` (the cluster's CA must not change under clients)."""
    return paths.state_dir() / "kube"


def kubeconfig() -> Path:
    """The admin kubeconfig, for kubectl users and the tests: `kubectl --kubeconfig PATH get nodes`."""
    return directory() / "kubeconfig"


def components_kubeconfig() -> Path:
    """What controller-manager, scheduler and kwok connect with (their own token, never exported)."""
    return directory() / "components.kubeconfig"


def token_file() -> Path:
    """kube-apiserver's --token-auth-file: one line per token, written anew at every `up`."""
    return directory() / "tokens.csv"


def private_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write(path: Path, content: bytes, *, secret: bool) -> None:
    """Write through a scratch file and rename, so no reader sees half a key; secrets readable by their owner only."""
    scratch = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.replace(scratch, path)
