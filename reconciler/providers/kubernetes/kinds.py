"""Where each kind saxctl touches lives in the REST API: a fixed table, so no discovery request is ever needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    prefix: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str

    @property
    def group_kind(self) -> str:
        """As ApplySet writes it: Deployment.apps, and a core kind bare (Service)."""
        group = self.prefix.removeprefix("/apis/").rpartition("/")[0] if self.prefix.startswith("/apis/") else ""
        return f"{self.kind}.{group}" if group else self.kind

    @property
    def api_version(self) -> str:
        return self.prefix.removeprefix("/apis/").removeprefix("/api/")

    @property
    def all_namespaces(self) -> str:
        return f"{self.prefix}/{self.plural}"

    def collection(self, namespace: str) -> str:
        return f"{self.prefix}/namespaces/{namespace}/{self.plural}"

    def path(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


KINDS: dict[str, Kind] = {kind.kind: kind for kind in (
    Kind("ServiceAccount", "/api/v1", "serviceaccounts"),
    Kind("ConfigMap", "/api/v1", "configmaps"),
    Kind("Service", "/api/v1", "services"),
    Kind("Deployment", "/apis/apps/v1", "deployments"),
    Kind("StatefulSet", "/apis/apps/v1", "statefulsets"),
    Kind("Pod", "/api/v1", "pods"),
)}
BY_GROUP_KIND: dict[str, Kind] = {kind.group_kind: kind for kind in KINDS.values()}
NODES = "/api/v1/nodes"


def path_of(manifest: Mapping[str, Any]) -> str:
    meta = manifest["metadata"]
    return KINDS[manifest["kind"]].path(meta["namespace"], meta["name"])


def describe(manifest: Mapping[str, Any]) -> str:
    """How messages name an object: Deployment default/sax-http."""
    meta = manifest["metadata"]
    return f"{manifest['kind']} {meta['namespace']}/{meta['name']}"
