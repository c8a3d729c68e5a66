"""Which provider serves which part of the spec; parts without a provider yet are listed as not managed."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.lock import LockStore
from reconciler.engine.plan import ProviderSet, Unmanaged
from reconciler.engine.resource import Resource
from reconciler.providers import checkpoint
from reconciler.providers.gcs import bucket
from reconciler.spec.model import Spec


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    force_delete_buckets: bool = False


def desired_resources(spec: Spec) -> list[Resource]:
    return bucket.desired_resources(spec) + checkpoint.desired_resources(spec)


@dataclass(frozen=True, slots=True)
class Connection:
    """What a run talks to: the providers, and the lock in the admin bucket, over one set of clients."""

    providers: ProviderSet
    lock_store: LockStore


def connect(spec: Spec, options: ProviderOptions) -> Connection:
    """Build the clients, the providers and the lock store. Clients are made here, never inside the engine."""
    from reconciler.providers.gcs.client import storage_client
    from reconciler.providers.gcs.lock_store import GcsLockStore

    storage = storage_client(spec.project.id)
    providers = ProviderSet([
        bucket.BucketProvider(storage, force_delete=options.force_delete_buckets),
        checkpoint.CheckpointProvider(storage),
    ])
    return Connection(providers, GcsLockStore(storage, spec.buckets.admin.name))


def unmanaged_parts(spec: Spec) -> list[Unmanaged]:
    """What the spec asks for that no provider manages yet, with the address it will have."""
    parts: list[Unmanaged] = []

    def later(address: str, spec_field: str, provider: str) -> None:
        parts.append(Unmanaged(address, spec_field, f"not managed yet: the {provider} provider is not built yet"))

    if spec.cluster is not None:
        later(f"gke.cluster.{spec.cluster.name}", "cluster", "GKE")
        for index, pool in enumerate(spec.cluster.tpu_pools):
            later(f"gke.node_pool.{pool.name}", f"cluster.tpuPools[{index}]", "GKE")
    if spec.identity is not None:
        gsa, ksa = spec.identity.google_service_account, spec.identity.kubernetes_service_account
        later(f"iam.service_account.{gsa.name}", "identity.googleServiceAccount", "IAM")
        for index, role in enumerate(gsa.project_roles):
            later(f"iam.project_binding.{role}", f"identity.googleServiceAccount.projectRoles[{index}]", "IAM")
        later(f"iam.workload_identity.{ksa.namespace}/{ksa.name}", "identity", "IAM")
        later(f"kubernetes.service_account.{ksa.namespace}/{ksa.name}", "identity.kubernetesServiceAccount",
              "Kubernetes")
    if spec.sax is not None:
        for name, spec_field in (("sax-admin-server", "sax.adminServer"), ("sax-model-server", "sax.modelServer"),
                                 ("sax-http", "sax.httpServer")):
            later(f"kubernetes.deployment.{name}", spec_field, "Kubernetes")
        later("kubernetes.service.sax-http-lb", "sax.httpServer", "Kubernetes")
    for index, model in enumerate(spec.models):
        later(f"sax.model.{model.name}", f"models[{index}]", "Sax")
    return parts
