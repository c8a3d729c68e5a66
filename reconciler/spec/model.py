"""The typed, immutable model of a validated spec (DESIGN.md §2), in saxctl's own words (snake_case)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each field came from, so later stages (plan, apply) can point at the spec line too."""

    file: str
    positions: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))

    def locate(self, field_path: str) -> tuple[int, int]:
        """(line, column) of field_path, or of its nearest located ancestor, or (1, 1)."""
        path = field_path
        while path:
            if path in self.positions:
                return self.positions[path]
            path = _parent(path)
        return self.positions.get("", (1, 1))


def _parent(field_path: str) -> str:
    cut = max(field_path.rfind("."), field_path.rfind("["))
    return field_path[:cut] if cut > 0 else ""


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    region: str


@dataclass(frozen=True, slots=True)
class CpuNodes:
    count: int
    machine_type: str


@dataclass(frozen=True, slots=True)
class TpuPool:
    name: str
    machine_type: str  # e.g. ct5lp-hightpu-4t
    topology: str  # e.g. 2x2
    nodes: int
    zone: str | None = None  # set in a regional cluster (a slice lives in one zone); a zonal cluster's zone otherwise


CPU_POOL = "default-pool"  # GKE's name for the pool a cluster is created with: the cpuNodes


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    location: str  # a zone makes a zonal cluster, a region a regional one
    release_channel: str  # RAPID | REGULAR | STABLE | UNSPECIFIED
    cpu_nodes: CpuNodes
    tpu_pools: tuple[TpuPool, ...]


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    location: str  # as written; GCS reports it upper-case
    storage_class: str | None = None  # None: saxctl does not own it (server default STANDARD)
    uniform_access: bool = True
    versioning: bool | None = None  # None: saxctl does not own it
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Buckets:
    admin: Bucket  # the Sax root: the admin server keeps its state and address there
    data: Bucket  # checkpoints


@dataclass(frozen=True, slots=True)
class KubernetesServiceAccount:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class GoogleServiceAccount:
    name: str  # account id: NAME@PROJECT.iam.gserviceaccount.com
    project_roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Identity:
    kubernetes_service_account: KubernetesServiceAccount
    google_service_account: GoogleServiceAccount


@dataclass(frozen=True, slots=True)
class Server:
    image: str
    replicas: int = 1


@dataclass(frozen=True, slots=True)
class ModelServer:
    image: str
    pool: str  # a cluster.tpuPools name; chip and topology come from it
    replicas: int = 1


@dataclass(frozen=True, slots=True)
class HttpServer:
    image: str
    port: int = 8888
    exposure: str = "internal"  # internal | public (explicit opt-in)
    replicas: int = 1


@dataclass(frozen=True, slots=True)
class Sax:
    cell: str  # e.g. /sax/test
    admin_server: Server
    model_server: ModelServer
    http_server: HttpServer


@dataclass(frozen=True, slots=True)
class CheckpointSource:
    format: str  # hf-gptj
    path: str  # local directory or gs:// URL, resolved against the spec file's directory


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str  # the key under checkpoints:
    source: CheckpointSource
    destination: str  # gs://BUCKET/.../checkpoint_00000000


@dataclass(frozen=True, slots=True)
class Model:
    name: str  # published as CELL/NAME
    model_path: str  # Sax params class, e.g. saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32
    checkpoint: str  # a key of checkpoints, or a gs:// path
    replicas: int = 1
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # Sax's Model.overrides


@dataclass(frozen=True, slots=True)
class DriftIgnore:
    """A drift.ignore rule: these fields of this address are not drift (another controller owns them)."""

    address: str
    fields: tuple[str, ...] = ()  # empty: every field of the address


@dataclass(frozen=True, slots=True)
class Spec:
    api_version: str
    kind: str
    name: str  # metadata.name: marks everything this spec owns
    project: Project
    buckets: Buckets
    cluster: Cluster | None = None
    identity: Identity | None = None
    sax: Sax | None = None
    checkpoints: Mapping[str, Checkpoint] = field(default_factory=lambda: MappingProxyType({}))
    models: tuple[Model, ...] = ()
    drift_ignore: tuple[DriftIgnore, ...] = ()
    source: SourceMap = field(default_factory=lambda: SourceMap(file="<memory>"))
