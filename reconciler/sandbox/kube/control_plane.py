"""How the sandbox runs its Kubernetes control plane: each process's command line, files and health.

Launch order (the emulator table's): etcd → kube-apiserver → kube-controller-manager → kube-scheduler → kwok (then
the pod runner, reconciler/sandbox/kube/pod_runner.py); `down` stops them in reverse. Flags as measured in RECIPES §1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.sandbox import paths
from reconciler.sandbox.kube import credentials, files, images, kwok_resources, kwok_stages, pki

if TYPE_CHECKING:
    from reconciler.sandbox.emulators import Launch

# The emulator table's names for these processes, in launch order.
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# kwok simulates the Nodes carrying this annotation, and only those (the node sink puts it on every Node it makes).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# Service addresses are recorded, never dialled (no kube-proxy). Every node's address is 127.0.0.1, where kwok serves as
# its kubelet (logs, port-forward): the apiserver dials it there.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
NODE_IP = "127.0.0.1"


def pod_cidr(kwok_port: int) -> str:
    """Where kwok takes pod IPs from: 127.A.B.0/24, A.B the two bytes of kwok's own port.

    Loopback addresses, so a pod's IP is where the process the pod runner starts for it listens, reachable from this
    machine as a pod's IP is from its cluster. One range per sandbox: the port is bound by the running kwok, so no two
    sandboxes of this machine share it, and no two pods of different sandboxes get one address (A is never 0: the
    port is above 255, so 127.0.0.1, every node's address, is never a pod's).
    """
    return f"127.{kwok_port >> 8}.{kwok_port & 0xFF}.1/24"


def server_url(launch: Launch) -> str:
    return f"https://127.0.0.1:{launch.ports['kube-apiserver']}"


def issued() -> pki.Pki:
    """Where the PKI of this state dir is (made by prepare_apiserver)."""
    return pki.Pki.at(files.directory())


def ca_cert() -> Path:
    """The CA that signed the apiserver's certificate: what a GKE cluster object gives as clusterCaCertificate."""
    return issued().ca_cert


def exports(ports: dict[str, int]) -> dict[str, str]:
    """SAXCTL_SANDBOX_TOKEN: saxctl's bearer token in the sandbox; SAXCTL_SANDBOX_KUBECONFIG: for kubectl and tests."""
    return {"SAXCTL_SANDBOX_KUBECONFIG": str(files.kubeconfig()), "SAXCTL_SANDBOX_TOKEN": credentials.admin_token()}


# --- etcd ------------------------------------------------------------------------------------------------------------

def prepare_etcd(launch: Launch) -> None:
    files.private_directory(paths.data_dir("etcd"))  # etcd warns about a data dir others can read


def etcd_command(launch: Launch) -> list[str]:
    client = f"http://127.0.0.1:{launch.ports['etcd']}"
    peer = f"http://127.0.0.1:{launch.ports['etcd:peer']}"
    return [str(launch.binaries["etcd"]), "--name", "sandbox", "--data-dir", str(paths.data_dir("etcd")),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            # A one-member cluster never dials a peer, but etcd listens on the peer port anyway (default 2380:
            # taken by the next sandbox), so each sandbox gets its own.
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"sandbox={peer}",
            # A sandbox's data is disposable: without fsync, applies are not bound by this disk's flush latency.
            "--unsafe-no-fsync", "--log-level", "warn"]


# --- kube-apiserver --------------------------------------------------------------------------------------------------

def prepare_apiserver(launch: Launch) -> None:
    """The PKI (kept from an earlier `up`), and new tokens and kubeconfigs for this one."""
    credentials.write(server_url(launch), pki.ensure(files.directory()).ca_cert)


def apiserver_command(launch: Launch) -> list[str]:
    certificates = issued()
    return [str(launch.binaries["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{launch.ports['etcd']}",
            "--bind-address=127.0.0.1", f"--secure-port={launch.ports['kube-apiserver']}",
            f"--tls-cert-file={certificates.serving_cert}", f"--tls-private-key-file={certificates.serving_key}",
            # Logs and port-forward reach a pod through its node's kubelet (kwok), which serves the sandbox's
            # certificate for 127.0.0.1: checked, as GKE's apiserver checks its kubelets.
            f"--kubelet-client-certificate={certificates.kubelet_client_cert}",
            f"--kubelet-client-key={certificates.kubelet_client_key}",
            f"--kubelet-certificate-authority={certificates.ca_cert}", "--kubelet-preferred-address-types=InternalIP",
            # No other client certificate is ever issued, but with these the apiserver publishes a complete
            # extension-apiserver-authentication ConfigMap, which controller-manager and scheduler look up (they log
            # an error every few seconds without it). The front-proxy name is kubeadm's.
            f"--client-ca-file={certificates.ca_cert}", f"--requestheader-client-ca-file={certificates.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={certificates.service_account_public_key}",
            f"--service-account-signing-key-file={certificates.service_account_key}",
            f"--token-auth-file={files.token_file()}", "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # As GKE: privileged containers allowed (the Sax manifests are privileged), and the plugin that lets a
            # pod requesting google.com/tpu tolerate the TPU nodes' taint, on top of the default plugins.
            # PodNodeSelector: one apiserver serves every emulated cluster, and a namespace annotated by
            # nodes.cluster_namespace_annotations keeps its pods on its own cluster's nodes, as separate clusters would.
            "--allow-privileged=true", "--enable-admission-plugins=ExtendedResourceToleration,PodNodeSelector",
            f"--cert-dir={files.directory()}"]  # unused (certificates are given), but its default is /var/run


# --- kube-controller-manager and kube-scheduler ----------------------------------------------------------------------

def _component_flags(launch: Launch, name: str) -> list[str]:
    """Connect with the components' kubeconfig; serve health on their own port with our certificate (one CA)."""
    kubeconfig = files.components_kubeconfig()
    certificates = issued()
    return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1",
            f"--secure-port={launch.ports[name]}", f"--tls-cert-file={certificates.serving_cert}",
            f"--tls-private-key-file={certificates.serving_key}", "--leader-elect=false"]


def controller_manager_command(launch: Launch) -> list[str]:
    certificates = issued()
    return [str(launch.binaries["kube-controller-manager"]), *_component_flags(launch, "kube-controller-manager"),
            # Node IPAM needs a cluster CIDR and there is no pod network; cloud controllers are skipped by 1.34
            # itself. The node-lifecycle controller stays: it lifts the not-ready taint new Nodes get.
            "--controllers=*,-node-ipam-controller",
            # Its default client limit (20 requests/s) is shared by all its controllers: a test suite that makes and
            # deletes many namespaces in one sandbox can queue the node-lifecycle controller (which lifts new Nodes'
            # not-ready taint, and so lets pods schedule) behind that work.
            "--kube-api-qps=200", "--kube-api-burst=400",
            # kwok renews a node's heartbeat every 20-45 s (no Lease), and on a loaded machine later: at the default
            # grace of 50 s the controller took Ready nodes for NotReady and marked their running pods not ready,
            # for good (kwok does not write a pod's conditions again), so Deployments read 0/1 ready a minute in.
            "--node-monitor-grace-period=180s",
            f"--service-account-private-key-file={certificates.service_account_key}",
            f"--root-ca-file={certificates.ca_cert}",
            f"--cluster-signing-cert-file={certificates.ca_cert}", f"--cluster-signing-key-file={certificates.ca_key}"]


def scheduler_command(launch: Launch) -> list[str]:
    return [str(launch.binaries["kube-scheduler"]), *_component_flags(launch, "kube-scheduler")]


# --- kwok ------------------------------------------------------------------------------------------------------------

def prepare_kwok(launch: Launch) -> None:
    """kwok's resources for port-forward and logs exist before it starts (it watches them from the start); its pod
    stages leave the Job pods the pod runner runs to the runner."""
    kwok_resources.install_definitions(files.components_kubeconfig())
    kwok_stages.write(_kwok_stages_file(), images.table())


def _kwok_stages_file() -> Path:
    return files.directory() / "kwok-stages.yaml"


def kwok_command(launch: Launch) -> list[str]:
    key, value = KWOK_NODE_ANNOTATION
    certificates = issued()
    port = launch.ports["kwok"]
    return [str(launch.binaries["kwok"]), f"--kubeconfig={files.components_kubeconfig()}",
            "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--cidr={pod_cidr(port)}", f"--node-ip={NODE_IP}",
            # Its kubelet-like server: health, and each pod's logs and port-forward as the pod runner configures them
            # (HTTPS with the sandbox's certificate for the apiserver, plain HTTP on the same port for health). Every
            # node it simulates reports this port as its kubelet's (status.daemonEndpoints), as a kubelet registers.
            f"--server-address=127.0.0.1:{port}", f"--node-port={port}",
            f"--tls-cert-file={certificates.serving_cert}", f"--tls-private-key-file={certificates.serving_key}",
            f"--enable-crds={','.join(kwok_resources.KINDS)}", f"--config={_kwok_stages_file()}"]
