"""The addresses of the families whose providers are not built yet, so plans list them as not managed yet.

Each function moves into its family's package, as real desired resources, when that provider lands.
"""

from __future__ import annotations

from reconciler.engine.address import Address
from reconciler.engine.resource import Resource
from reconciler.providers.kubernetes import addresses as kube_at
from reconciler.providers.sax import addresses as sax_at
from reconciler.spec.model import Spec

SAX_DEPLOYMENTS = (("sax-admin-server", "sax.adminServer"), ("sax-model-server", "sax.modelServer"),
                   ("sax-http", "sax.httpServer"))


def _part(address: Address, spec_field: str) -> Resource:
    return Resource(address, address.kind, address.name, {}, spec_field=spec_field)


def kubernetes(spec: Spec) -> list[Resource]:
    parts = []
    if spec.identity is not None:
        ksa = spec.identity.kubernetes_service_account
        parts.append(_part(kube_at.service_account(ksa.namespace, ksa.name), "identity.kubernetesServiceAccount"))
    if spec.sax is not None:
        namespace = spec.identity.kubernetes_service_account.namespace if spec.identity else "default"
        for name, spec_field in SAX_DEPLOYMENTS:
            parts.append(_part(kube_at.deployment(namespace, name), spec_field))
        parts.append(_part(kube_at.service(namespace, "sax-http-lb"), "sax.httpServer"))
    return parts


def sax(spec: Spec) -> list[Resource]:
    return [_part(sax_at.model(model.name), f"models[{index}]") for index, model in enumerate(spec.models)]
