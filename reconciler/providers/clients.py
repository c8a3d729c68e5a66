"""The API clients of one run, each built the first time a provider asks for it (imports are slow: 0.3-0.5 s each).

Real Google Cloud by default, with Application Default Credentials; the sandbox when its exports are set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from reconciler.providers.kubernetes.options import KubeOptions

from reconciler.spec.model import Spec


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """What the command line says to the providers, by family (plain values: importing this costs nothing)."""

    kubernetes: KubeOptions = KubeOptions()


class Clients:
    offline = False  # True: an offline plan's, which has none (OfflineClients)

    def __init__(self, spec: Spec, options: ProviderOptions | None = None):
        self.project = spec.project.id
        self.options = options or ProviderOptions()  # what the command line said to the providers
        self.spec = spec  # what some providers are built for (the IAM record's bucket, whether IAM is used at all)

    @functools.cached_property
    def storage(self):
        from reconciler.providers.gcs.client import storage_client

        return storage_client(self.project)

    @functools.cached_property
    def admin_records(self):
        """saxctl's own records in the admin bucket: one per run, shared by the provider that carries them across a
        replace of the bucket (gcs) and those that read and write them (iam)."""
        from reconciler.providers.gcs.records import AdminRecords

        return AdminRecords(self.storage, self.spec.buckets.admin.name, self.spec.buckets.data.name)

    @functools.cached_property
    def iam(self):
        from reconciler.providers.iam.client import iam_client

        return iam_client()

    @functools.cached_property
    def projects(self):
        from reconciler.providers.iam.client import projects_client

        return projects_client()

    @functools.cached_property
    def gke(self):
        from reconciler.providers.gke.client import cluster_manager

        return cluster_manager()

    @functools.cached_property
    def gke_instance_groups(self):
        """Node pool sizes (compute v1 instance groups), read without importing google.cloud.compute_v1."""
        from reconciler.providers.gke.client import instance_groups

        return instance_groups()

    @functools.cached_property
    def compute_machine_types(self):
        from reconciler.providers.gke.client import machine_types

        return machine_types()

    @functools.cached_property
    def compute_regions(self):
        from reconciler.providers.gke.client import regions

        return regions()


class Unreachable:
    """What an offline plan has in place of an API client: any use of it raises NotReadOffline."""

    def __init__(self, api: str):
        self._api = api

    def __getattr__(self, name: str):
        from reconciler.engine.offline import NotReadOffline

        raise NotReadOffline(self._api)


class OfflineClients(Clients):
    """The clients of an offline plan (`saxctl plan --from --to`): none, so no credentials are ever looked up."""

    offline = True
    storage = property(lambda self: Unreachable("Cloud Storage"))
    iam = property(lambda self: Unreachable("IAM"))
    projects = property(lambda self: Unreachable("Resource Manager"))
    gke = property(lambda self: Unreachable("GKE"))
    gke_instance_groups = property(lambda self: Unreachable("Compute Engine"))
    compute_machine_types = property(lambda self: Unreachable("Compute Engine"))
    compute_regions = property(lambda self: Unreachable("Compute Engine"))
