"""The control plane's credentials: bearer tokens made anew at every `up`, and the kubeconfigs that carry them.

The admin token is what saxctl presents in the sandbox in place of a Google access token (on GKE, Application
Default Credentials give a bearer token the same way), so the Kubernetes provider reaches this apiserver exactly as
it reaches a real cluster. It is exported as SAXCTL_SANDBOX_TOKEN and written only to 0600 files: never to a log,
never to a command line (where /proc would show it).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from reconciler.sandbox.kube import files

ADMIN_USER = "saxctl-sandbox-admin"
COMPONENTS_USER = "saxctl-sandbox-control-plane"
_MASTERS = "system:masters"  # the group RBAC lets do anything, as GKE's cluster-admin


def write(server: str, ca_cert: Path) -> None:
    """New tokens for the admin and for the control-plane components; their kubeconfigs point at `server`."""
    admin_token, components_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    # kube-apiserver's static token file: token,user,uid,"group1,group2" (no header line).
    lines = [f'{admin_token},{ADMIN_USER},{ADMIN_USER},"{_MASTERS}"',
             f'{components_token},{COMPONENTS_USER},{COMPONENTS_USER},"{_MASTERS}"']
    files.private_directory(files.directory())
    files.write(files.token_file(), ("\n".join(lines) + "\n").encode(), secret=True)
    files.write(files.kubeconfig(), _kubeconfig(server, ca_cert, ADMIN_USER, admin_token), secret=True)
    files.write(files.components_kubeconfig(), _kubeconfig(server, ca_cert, COMPONENTS_USER, components_token),
                secret=True)


def admin_token() -> str:
    """The admin token of the latest `up` of this state dir ("" before the first one)."""
    try:
        first_line = files.token_file().read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        return ""
    return first_line.split(",", 1)[0]  # written first by write()


def _kubeconfig(server: str, ca_cert: Path, user: str, token: str) -> bytes:
    """A kubeconfig (JSON is YAML: kubectl, client-go and the Python client all read it)."""
    name = "saxctl-sandbox"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user, "namespace": "default"}}],
    }
    return (json.dumps(config, indent=2) + "\n").encode()
