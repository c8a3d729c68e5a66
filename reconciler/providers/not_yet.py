"""The addresses of the families whose providers are not built yet, so plans list them as not managed yet.

Each function moves into its family's package, as real desired resources, when that provider lands.
"""

from __future__ import annotations

from reconciler.engine.address import Address
from reconciler.engine.resource import Resource
from reconciler.spec.model import Spec


def _part(kind: str, name: str, spec_field: str) -> Resource:
    return Resource(Address(kind, name), kind, name, {}, spec_field=spec_field)


def gke(spec: Spec) -> list[Resource]:
    if spec.cluster is None:
        return []
    return [_part("gke.cluster", spec.cluster.name, "cluster")] + [
        _part("gke.node_pool", pool.name, f"cluster.tpuPools[{index}]")
        for index, pool in enumerate(spec.cluster.tpu_pools)]


def iam(spec: Spec) -> list[Resource]:
    if spec.identity is None:
        return []
    gsa, ksa = spec.identity.google_service_account, spec.identity.kubernetes_service_account
    return [_part("iam.service_account", gsa.name, "identity.googleServiceAccount")] + [
        _part("iam.project_binding", role, f"identity.googleServiceAccount.projectRoles[{index}]")
        for index, role in enumerate(gsa.project_roles)] + [
        _part("iam.workload_identity", f"{ksa.namespace}/{ksa.name}", "identity")]


def kubernetes(spec: Spec) -> list[Resource]:
    parts = []
    if spec.identity is not None:
        ksa = spec.identity.kubernetes_service_account
        parts.append(_part("kubernetes.service_account", f"{ksa.namespace}/{ksa.name}",
                           "identity.kubernetesServiceAccount"))
    if spec.sax is not None:
        namespace = spec.identity.kubernetes_service_account.namespace if spec.identity else "default"
        for name, spec_field in (("sax-admin-server", "sax.adminServer"), ("sax-model-server", "sax.modelServer"),
                                 ("sax-http", "sax.httpServer")):
            parts.append(_part("kubernetes.deployment", f"{namespace}/{name}", spec_field))
        parts.append(_part("kubernetes.service", f"{namespace}/sax-http-lb", "sax.httpServer"))
    return parts


def sax(spec: Spec) -> list[Resource]:
    return [_part("sax.model", model.name, f"models[{index}]") for index, model in enumerate(spec.models)]
