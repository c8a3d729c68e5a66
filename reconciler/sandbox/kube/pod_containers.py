"""Which containers of a pod the sandbox runs as processes, and with what command line and environment (pure).

A container runs when its pod is bound to one of kwok's nodes, has its IP, is not being deleted or finished, and its
image is in the image table. Its process gets what a container on GKE would see, as far as a process can:
- the command line Kubernetes makes of the image and the container's `command`/`args`;
- the container's `env` (plain values, and the downward API's pod fields), on top of the node's PATH, HOME, LANG (and
  PYTHONPATH) and the pod's name as HOSTNAME;
- the sandbox's Google endpoints (STORAGE_EMULATOR_HOST, ...), where GKE's metadata server would give Workload
  Identity credentials for the real ones;
- SAXCTL_SANDBOX_POD_IP, the pod's IP (a loopback address of its own, control_plane.pod_cidr), to listen on and to
  advertise, as a process in a pod listens on the pod's network interface;
- XLA_FLAGS asking JAX for as many host devices as the container's `google.com/tpu` limit (1 without one): the
  chips the pod would see on its TPU node;
- KUBERNETES_SERVICE_HOST/PORT, the apiserver (what in-cluster config reads), and the pod's volumes
  (pod_volumes.py): a path under a volume's mountPath in the command line or in an env value (`/etc/saxctl/spec.yaml`,
  `--metrics-file=/var/run/saxctl/x.prom`, `HOME=/tmp`) is rewritten to the volume's directory on this machine, the
  longest mountPath first. A path a program builds itself (the client libraries' fixed in-cluster token path,
  /var/run/secrets/kubernetes.io/serviceaccount/token) is not there: processes are not in a mount namespace;
- SAXCTL_SANDBOX_TOKEN, the pod's Google token (pod_volumes.py says what stands for Workload Identity).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from reconciler.sandbox.kube.containers import ContainerSpec
from reconciler.sandbox.kube.images import Image, UnrunnableContainer, image_name

if TYPE_CHECKING:
    from reconciler.sandbox.kube.pod_volumes import PodFiles

POD_IP_ENV = "SAXCTL_SANDBOX_POD_IP"
GOOGLE_TOKEN_ENV = "SAXCTL_SANDBOX_TOKEN"  # providers/endpoints.py's SANDBOX_TOKEN
TPU_RESOURCE = "google.com/tpu"
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
# What the node gives every container (an image would set these), and the interpreter's module path, so that the
# stand-ins run the runner's own code (a checkout run with PYTHONPATH set, too).
_NODE_ENV = ("PATH", "HOME", "LANG", "PYTHONPATH")
_DEFAULT_GRACE_S = 30.0  # the API's default terminationGracePeriodSeconds
_FIELD_PATH = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")


def runnable_pod(pod, kwok_nodes: set[str]) -> bool:
    """Bound to a kwok node, given its IP, and neither going nor finished (a kubelet runs such a pod's containers)."""
    return (pod.spec.node_name in kwok_nodes and pod.metadata.deletion_timestamp is None
            and bool(pod.status.pod_ip) and pod.status.phase not in ("Succeeded", "Failed"))


def runs_any(pod, images: Mapping[str, Image]) -> bool:
    """Whether one of the pod's containers has an image of `images` (then the runner prepares the pod's volumes)."""
    return any(image_name(container.image or "") in images for container in pod.spec.containers)


def container_specs(pod, images: Mapping[str, Image], node_env: Mapping[str, str], endpoints: Mapping[str, str],
                    files: PodFiles | None = None) -> tuple[list[ContainerSpec], list[tuple[str, str]]]:
    """The pod's containers whose image is in `images`, as processes; and (container, why) for those that cannot run.

    `node_env` is the runner's own environment (PATH, HOME and LANG are taken from it); `endpoints` the sandbox's
    Google endpoint exports and the apiserver's KUBERNETES_SERVICE_HOST/PORT; `files` the pod's volumes and token.
    """
    specs, refused = [], []
    for container in pod.spec.containers:
        image = images.get(image_name(container.image or ""))
        if image is None:
            continue  # kwok alone simulates it, as before
        try:
            argv = image.argv(container.command, container.args)
        except UnrunnableContainer as error:
            refused.append((container.name, str(error)))
            continue
        mounts = mount_directories(container, files)
        env = container_env(pod, container, node_env, endpoints, mounts)
        if files is not None:
            env[GOOGLE_TOKEN_ENV] = files.google_token
        grace = pod.spec.termination_grace_period_seconds
        specs.append(ContainerSpec(
            namespace=pod.metadata.namespace, pod=pod.metadata.name, pod_uid=pod.metadata.uid, name=container.name,
            argv=(argv[0], *(map_path(arg, mounts) for arg in argv[1:])), env=tuple(sorted(env.items())),
            restart_policy=pod.spec.restart_policy or "Always",
            grace_s=float(_DEFAULT_GRACE_S if grace is None else grace)))
    return specs, refused


def container_env(pod, container, node_env: Mapping[str, str], endpoints: Mapping[str, str],
                  mounts: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    env = {name: node_env[name] for name in _NODE_ENV if name in node_env}
    env["HOSTNAME"] = pod.metadata.name
    env.update(endpoints)
    for variable in container.env or []:
        if variable.value_from is None:
            env[variable.name] = map_path(variable.value or "", mounts)
        elif variable.value_from.field_ref is not None:
            value = pod_field(pod, variable.value_from.field_ref.field_path)
            if value is not None:
                env[variable.name] = value
        # configMapKeyRef, secretKeyRef, resourceFieldRef: not resolved (no Sax manifest uses them)
    env[POD_IP_ENV] = pod.status.pod_ip
    device_flag = f"{DEVICE_COUNT_FLAG}={tpu_chips(container)}"
    env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} {device_flag}" if env.get("XLA_FLAGS") else device_flag
    return env


def mount_directories(container, files: PodFiles | None) -> list[tuple[str, str]]:
    """(mountPath, the directory on this machine) of the container's mounts of volumes the runner made, longest
    mountPath first (a mount inside another's path wins)."""
    if files is None:
        return []
    mounts = []
    for mount in container.volume_mounts or ():
        directory = files.directory_of(mount.name)
        if directory is not None:
            target = f"{directory}/{mount.sub_path}" if mount.sub_path else directory
            mounts.append((mount.mount_path.rstrip("/") or "/", target))
    return sorted(mounts, key=lambda pair: len(pair[0]), reverse=True)


def map_path(value: str, mounts: Sequence[tuple[str, str]]) -> str:
    """A path under a mountPath, alone or as the value of `--flag=PATH`, rewritten to the volume's directory."""
    flag, equals, path = value.partition("=")
    if equals and flag.startswith("-"):
        return f"{flag}={map_path(path, mounts)}"
    for mount_path, directory in mounts:
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return directory + value[len(mount_path):] if mount_path != "/" else f"{directory}{value}"
    return value


def tpu_chips(container) -> int:
    limits = (container.resources.limits if container.resources is not None else None) or {}
    return int(limits.get(TPU_RESOURCE, 1))


def pod_field(pod, path: str) -> str | None:
    """The downward API's pod fields (fieldRef.fieldPath)."""
    simple = {"metadata.name": pod.metadata.name, "metadata.namespace": pod.metadata.namespace,
              "metadata.uid": pod.metadata.uid, "spec.nodeName": pod.spec.node_name,
              "spec.serviceAccountName": pod.spec.service_account_name, "status.podIP": pod.status.pod_ip,
              "status.hostIP": pod.status.host_ip}
    if path in simple:
        return simple[path]
    keyed = _FIELD_PATH.fullmatch(path)
    if keyed is not None:
        return (getattr(pod.metadata, keyed.group(1)) or {}).get(keyed.group(2))
    return None


def pod_ports(pod) -> list[int]:
    """The TCP ports the pod's containers declare: those a port-forward to the pod can reach."""
    return [port.container_port for container in pod.spec.containers for port in container.ports or []
            if (port.protocol or "TCP") == "TCP"]
