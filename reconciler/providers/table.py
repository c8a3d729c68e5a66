"""The one table of API families: the kinds each serves, the resources it makes of a spec, how its provider is built.

Adding a provider is adding a row here. A family whose provider is not built yet lists the addresses it will manage,
so every plan shows them as not managed yet instead of dropping them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reconciler.engine.lock import LockHome, LockStore
from reconciler.engine.offline import OfflineProviderSet
from reconciler.engine.plan import Unmanaged
from reconciler.engine.provider import Provider
from reconciler.engine.provider_set import LazyProvider, ProviderSet
from reconciler.engine.resource import Resource
from reconciler.providers import checkpoint
from reconciler.providers.clients import Clients, OfflineClients, ProviderOptions
from reconciler.providers.gcs import bucket
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.gke import resources as gke_resources
from reconciler.providers.iam import resources as iam_resources
from reconciler.providers.iam import provider as iam_provider
from reconciler.providers.kubernetes import addresses as kube_at
from reconciler.providers.kubernetes import resources as kube_resources
from reconciler.providers.sax import addresses as sax_at
from reconciler.providers.sax import resources as sax_resources
from reconciler.spec.model import Spec


def _gke_provider(clients: Clients) -> Provider:
    from reconciler.providers.gke.provider import GkeProvider

    return GkeProvider(clients)


def _kube_provider(clients: Clients) -> Provider:
    from reconciler.providers.kubernetes.provider import KubernetesProvider

    return KubernetesProvider(clients.options.kubernetes)


def _sax_provider(clients: Clients) -> Provider:
    from reconciler.providers.sax.provider import SaxModelProvider

    return SaxModelProvider(clients.storage, clients.admin_records, clients.spec, clients.options.kubernetes)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kinds: frozenset[str]
    desired: Callable[[Spec], list[Resource]]
    provider: Callable[[Clients], Provider] | None  # None: not built yet; `desired` then gives what it will manage
    lock_homes: Callable[[Spec, Clients], list[LockHome]] | None = None  # where a run's lock may live


FAMILIES: tuple[Family, ...] = (
    Family("gcs", frozenset({bucket.KIND}), bucket.desired_resources,
           lambda clients: bucket.BucketProvider(clients.storage, clients.project, clients.admin_records),
           lock_homes=bucket.lock_homes),
    Family("checkpoint", frozenset({checkpoint.KIND}), checkpoint.desired_resources,
           lambda clients: checkpoint.CheckpointProvider(clients.storage, source_checked=not clients.offline)),
    Family("gke", frozenset({gke_at.CLUSTER, gke_at.NODE_POOL}), gke_resources.desired_resources, _gke_provider),
    Family("iam", iam_provider.IamProvider.kinds, lambda spec: iam_resources.desired_resources(spec, managed_kinds()),
           iam_provider.for_run),
    Family("kubernetes", kube_at.KINDS, kube_resources.desired_resources, _kube_provider),
    Family("sax", frozenset({sax_at.MODEL}), sax_resources.desired_resources, _sax_provider),
)

ALL_KINDS: frozenset[str] = frozenset().union(*(family.kinds for family in FAMILIES))


def managed_kinds() -> frozenset[str]:
    """The kinds whose provider is built: a family may depend on another's resources only once that one is managed
    (until then its addresses are not in the plan, only listed as not managed yet)."""
    return frozenset().union(*(family.kinds for family in FAMILIES if family.provider is not None))


@dataclass(frozen=True, slots=True)
class Connection:
    """What a run talks to: the providers (built when first needed) and the homes its lock may live in."""

    providers: ProviderSet
    lock_homes: list[LockHome]
    admin_record: Callable[[str], LockStore] | None = None  # a record beside the lock: saxctl/drift.json


def desired_resources(spec: Spec) -> list[Resource]:
    return [resource for family in FAMILIES if family.provider is not None for resource in family.desired(spec)]


def unmanaged_parts(spec: Spec) -> list[Unmanaged]:
    return [Unmanaged(resource.address, resource.spec_field,
                      f"not managed yet: the {family.name} provider is not built yet")
            for family in FAMILIES if family.provider is None for resource in family.desired(spec)]


def connect(spec: Spec, on_read_retry=None, options: ProviderOptions | None = None) -> Connection:
    clients = Clients(spec, options)
    providers = ProviderSet([LazyProvider(family.kinds, lambda f=family: f.provider(clients))
                             for family in FAMILIES if family.provider is not None], on_read_retry=on_read_retry)
    homes = [home for family in FAMILIES if family.lock_homes is not None for home in family.lock_homes(spec, clients)]
    return Connection(providers, homes, lambda name: bucket.admin_record_store(spec, clients, name))


def offline(spec: Spec, applied: Spec | None, options: ProviderOptions | None = None) -> OfflineProviderSet:
    """The providers of an offline plan of `spec` in the world applying `applied` leaves (None: nothing applied):
    built without a client, so no credentials are looked up and no request is made."""
    clients = OfflineClients(spec, options)
    return OfflineProviderSet([family.provider(clients) for family in FAMILIES if family.provider is not None],
                              desired_resources(applied) if applied else [])
