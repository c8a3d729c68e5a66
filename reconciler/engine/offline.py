"""An offline world: what applying an earlier spec leaves, modelled by the providers, with no read at all.

A plan of NEW_SPEC in this world is the plan a reviewer reads on a pull request (`saxctl plan --from OLD --to NEW`):
no credentials, no cloud. Each object NEW has is what its provider's `modelled` says applying OLD's resource at the
same address left; what OLD made that NEW no longer has is found, as a live plan finds it, through `left_behind`.
The other reads of a plan (what a delete would lose, a preflight's quotas and offers) need the cloud: a provider built
for an offline plan meets NotReadOffline there, and the plan goes on without them, each named in `skipped`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Owned, Provider
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import Observed, Resource


class NotReadOffline(Exception):
    """A provider of an offline plan needed a read (it has no client): that part of the plan is not checked.

    partial: what the provider found without it (a preflight's problems that need no read), the read's result then.
    """

    def __init__(self, api: str, partial: object = None):
        super().__init__(f"{api} is not read offline")
        self.api, self.partial = api, partial


class OfflineProviderSet(ProviderSet):
    """The providers of an offline plan, answering from their models of what applying `applied` left."""

    def __init__(self, providers: Sequence[Provider], applied: Sequence[Resource]):
        super().__init__(providers)
        self._applied = {resource.address: resource for resource in applied}
        self.skipped: list[str] = []  # what the plan could not check, in its own words

    def observe(self, resources: Sequence[Resource]) -> dict[Address, Observed | None]:
        return {resource.address: self.for_kind(resource.kind).modelled(resource, self._applied.get(resource.address))
                for resource in resources}

    def owned(self, spec_name: str, known: Mapping[Address, Observed]) -> list[Owned]:
        """What applying the earlier spec made, as a live plan lists it. An object inside one that this plan does not
        find (pruned, or named otherwise now) is not listed: it goes with that one, and a live plan does not look
        inside what is not there."""
        found = []
        for resource in self._applied.values():
            if resource.inside is not None and resource.inside not in known:
                continue
            left = self.for_kind(resource.kind).left_behind(resource)
            if left is not None and left.observed is not None and left.observed.owner == spec_name:
                found.append(left)
        return found

    def read(self, operation: Callable[[], object], what: str):
        """No retries (nothing is sent); a read that needs the cloud is skipped and said."""
        try:
            return operation()
        except NotReadOffline as error:
            note = f"{what}: {error.api}"
            if note not in self.skipped:
                self.skipped.append(note)
            return error.partial
