"""The addresses of the families whose providers are not built yet, so plans list them as not managed yet.

Each function moves into its family's package, as real desired resources, when that provider lands.
"""

from __future__ import annotations

from reconciler.engine.address import Address
from reconciler.engine.resource import Resource
from reconciler.providers.sax import addresses as sax_at
from reconciler.spec.model import Spec


def _part(address: Address, spec_field: str) -> Resource:
    return Resource(address, address.kind, address.name, {}, spec_field=spec_field)


def sax(spec: Spec) -> list[Resource]:
    return [_part(sax_at.model(model.name), f"models[{index}]") for index, model in enumerate(spec.models)]
