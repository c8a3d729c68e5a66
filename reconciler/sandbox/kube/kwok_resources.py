"""kwok's resources for port-forward and logs (RECIPES §12): their definitions, and the objects that say, per pod, where
its ports and its containers' logs are.

kwok serves as the kubelet of every node it simulates: `kubectl port-forward` and `kubectl logs` reach it through the
apiserver, and it answers from a PortForward and a Logs object of the pod's own namespace and name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import EndpointError

GROUP = "kwok.x-k8s.io"
VERSION = "v1alpha1"
KINDS = ("PortForward", "Logs")  # kwok's --enable-crds: it watches these (no static configuration file)
_DEFINITIONS = Path(__file__).with_name("crds")
_FIELD_MANAGER = "saxctl-sandbox"
_ESTABLISHED_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class PodRef:
    namespace: str
    name: str
    uid: str


def install_definitions(kubeconfig: Path) -> None:
    """Apply the CustomResourceDefinitions and wait until the apiserver serves them (before kwok starts)."""
    from kubernetes import client, config
    from ruamel.yaml import YAML

    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        extensions = client.ApiextensionsV1Api(api_client)
        names = []
        for path in sorted(_DEFINITIONS.glob("*.yaml")):
            definition = YAML(typ="safe").load(path.read_text())
            names.append(definition["metadata"]["name"])
            extensions.patch_custom_resource_definition(names[-1], definition, field_manager=_FIELD_MANAGER,
                                                        force=True, _content_type="application/apply-patch+yaml")
        deadline = time.monotonic() + _ESTABLISHED_TIMEOUT_S
        waiting = set(names)
        while waiting:
            waiting = {name for name in waiting if not _established(extensions.read_custom_resource_definition(name))}
            if waiting and time.monotonic() > deadline:
                raise EndpointError(f"the sandbox's kube-apiserver did not establish {sorted(waiting)} within "
                                    f"{_ESTABLISHED_TIMEOUT_S:.0f} s")
            if waiting:
                time.sleep(0.1)


def _established(definition) -> bool:
    return any(condition.type == "Established" and condition.status == "True"
               for condition in (definition.status.conditions or []))


def port_forward(pod: PodRef, address: str, ports: list[int]) -> dict:
    """Each of the pod's ports forwards to the same port at `address` (the pod's IP, where its processes listen)."""
    return _object(pod, "PortForward", {"forwards": [{"ports": [port], "target": {"address": address, "port": port}}
                                                     for port in sorted(set(ports))]})


def logs(pod: PodRef, files: dict[str, tuple[Path, Path | None]]) -> dict:
    """container name → (its current log file, its previous run's or None): what `kubectl logs [--previous]` shows."""
    entries = []
    for container, (current, previous) in sorted(files.items()):
        entry = {"containers": [container], "logsFile": str(current), "follow": True}
        if previous is not None:
            entry["previousLogsFile"] = str(previous)
        entries.append(entry)
    return _object(pod, "Logs", {"logs": entries})


def plural(kind: str) -> str:
    return {"PortForward": "portforwards", "Logs": "logs"}[kind]


def _object(pod: PodRef, kind: str, spec: dict) -> dict:
    # Owned by the pod: the garbage collector deletes it with the pod, whoever deletes the pod.
    owner = {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": pod.name, "namespace": pod.namespace, "ownerReferences": [owner]}, "spec": spec}
