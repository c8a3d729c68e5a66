"""The sandbox's Kubernetes control plane: every process up and shown, pinned versions, the token and its files."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from reconciler.sandbox import gobuild, paths
from reconciler.sandbox.emulators import EMULATORS
from reconciler.sandbox.kube.control_plane import PROCESSES

SAXCTL = str(Path(sys.executable).with_name("saxctl"))
GO_MOD = gobuild.KUBE_CONTROL_PLANE.directory / "go.mod"


def run(*command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def status(sandbox, *args: str) -> subprocess.CompletedProcess:
    return run(SAXCTL, "sandbox", "status", *args, SAXCTL_SANDBOX_DIR=str(sandbox.state_dir), NO_COLOR="1",
               COLUMNS="250")


def apiserver(sandbox, method: str, path: str, token: str, **kwargs) -> requests.Response:
    ca = sandbox.state["emulators"]["kube-apiserver"]["health_ca"]
    base = sandbox.state["emulators"]["kube-apiserver"]["health_url"].removesuffix("/readyz")
    return requests.request(method, base + path, headers={"Authorization": f"Bearer {token}"}, verify=ca,
                            timeout=10, **kwargs)


def test_the_control_plane_starts_in_order_and_the_gke_emulator_after_its_apiserver():
    names = [emulator.name for emulator in EMULATORS]
    assert [name for name in names if name in PROCESSES] == list(PROCESSES)
    needs = {emulator.name: emulator.needs for emulator in EMULATORS}
    assert needs["kube-apiserver"] == ("etcd",)
    assert all(needs[name] == ("kube-apiserver",) for name in PROCESSES[2:])
    assert "kube-apiserver" in needs["gke"], "clusters carry the apiserver's endpoint and CA, pools make its Nodes"


def test_status_shows_every_process_healthy_and_where_the_kubeconfig_is(sandbox):
    rows = {row["name"]: row for row in json.loads(status(sandbox, "--json").stdout)}
    assert all(rows[name]["healthy"] and rows[name]["pid"] for name in PROCESSES), rows
    text = status(sandbox)
    assert text.returncode == 0
    assert f"kubeconfig: {sandbox.env['SAXCTL_SANDBOX_KUBECONFIG']}" in text.stdout
    assert sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"] == str(sandbox.state_dir / "kube" / "kubeconfig")


def test_the_binaries_report_the_versions_go_mod_pins(sandbox):
    pinned = dict(line.split()[:2] for line in GO_MOD.read_text().splitlines()
                  if line.startswith("\t") and " v" in line and "=>" not in line)
    assert pinned["k8s.io/kubernetes"] == gobuild.KUBERNETES_VERSION
    kubectl = paths.bin_dir() / "kubectl"
    versions = json.loads(run(str(kubectl), "--kubeconfig", sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"], "version",
                              "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == versions["serverVersion"]["gitVersion"] == \
        gobuild.KUBERNETES_VERSION
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        reported = run(str(paths.bin_dir() / name), "--version").stdout.strip()
        assert reported == f"Kubernetes {gobuild.KUBERNETES_VERSION}", name
    assert f"etcd Version: {pinned['go.etcd.io/etcd/server/v3'].removeprefix('v')}" in \
        run(str(paths.bin_dir() / "etcd"), "--version").stdout


def test_the_exported_token_is_a_cluster_admin_bearer_token(sandbox):
    review = apiserver(sandbox, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       sandbox.env["SAXCTL_SANDBOX_TOKEN"],
                       json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review.status_code == 201, review.text
    user = review.json()["status"]["userInfo"]
    assert user["username"] == "saxctl-sandbox-admin" and "system:masters" in user["groups"]
    assert apiserver(sandbox, "GET", "/api/v1/nodes", "not-the-token").status_code == 401


def test_the_token_is_in_no_log_and_no_status_and_its_files_are_private(sandbox):
    token = sandbox.env["SAXCTL_SANDBOX_TOKEN"]
    assert len(token) >= 32
    logs = list(sandbox.state_dir.rglob("*.log"))
    assert {Path(sandbox.state["emulators"][name]["log"]) for name in PROCESSES} <= set(logs)
    for log in logs:
        assert token not in log.read_text(errors="replace"), log
    for args in ((), ("--json",)):
        shown = status(sandbox, *args)
        assert token not in shown.stdout + shown.stderr
    for name in PROCESSES:
        assert token.encode() not in Path(f"/proc/{sandbox.state['emulators'][name]['pid']}/cmdline").read_bytes()
    kube = sandbox.state_dir / "kube"
    for secret in (kube / "kubeconfig", kube / "components.kubeconfig", kube / "tokens.csv", kube / "ca.key",
                   kube / "serving.key", kube / "service-account.key", sandbox.state_dir / "state.json"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(kube.stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["kube-apiserver", "kube-controller-manager", "kube-scheduler"])
def test_health_is_served_over_tls_that_the_sandbox_ca_verifies(sandbox, name):
    record = sandbox.state["emulators"][name]
    assert record["health_url"].startswith("https://127.0.0.1:")
    assert requests.get(record["health_url"], verify=record["health_ca"], timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(record["health_url"], timeout=10)  # not trusted by the system's CAs
