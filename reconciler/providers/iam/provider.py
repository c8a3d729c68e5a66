"""The IAM family's provider: one per run, passing each of its three kinds to the part that knows that kind's API."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Change, Hazard, Observed, Resource
from reconciler.providers.iam import addresses as iam_at
from reconciler.providers.iam.bindings import Bindings
from reconciler.providers.iam.policies import AccountPolicies, ProjectPolicies
from reconciler.providers.iam.record import MemberRecord
from reconciler.providers.iam.service_account import ServiceAccounts


class IamProvider(Provider):
    kinds = frozenset({iam_at.SERVICE_ACCOUNT, iam_at.PROJECT_BINDING, iam_at.WORKLOAD_IDENTITY})

    def __init__(self, iam_client: Callable[[], object], projects_client: Callable[[], object], record: MemberRecord,
                 project: str):
        """The clients come as functions: built on first use (their imports are slow)."""
        self._clients = iam_client, projects_client
        self._record, self._project = record, project

    @functools.cached_property
    def _parts(self) -> dict[str, Provider]:
        iam_client, projects_client = (make() for make in self._clients)
        return {
            iam_at.SERVICE_ACCOUNT: ServiceAccounts(iam_client, self._project, self._record),
            iam_at.PROJECT_BINDING: Bindings(iam_at.PROJECT_BINDING, ProjectPolicies(projects_client), self._record),
            iam_at.WORKLOAD_IDENTITY: Bindings(iam_at.WORKLOAD_IDENTITY, AccountPolicies(iam_client), self._record),
        }

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """Each kind's reads, the kinds in parallel (a project's policy and an account's are independent)."""
        by_kind: dict[str, list[Resource]] = {}
        for resource in desired:
            by_kind.setdefault(resource.kind, []).append(resource)
        with ThreadPoolExecutor(max_workers=max(1, len(by_kind)), thread_name_prefix="iam-observe") as pool:
            results = list(pool.map(lambda item: self._parts[item[0]].observe(item[1]), by_kind.items()))
        return {address: live for result in results for address, live in result.items()}

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        return self._parts[desired.kind].diff(desired, observed)

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        return self._parts[desired.kind].modelled(desired, applied)

    def left_behind(self, applied: Resource) -> Owned | None:
        return self._parts[applied.kind].left_behind(applied)

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        return self._parts[change.kind].apply(change, progress)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """What left the spec's identity section (a role, a renamed account or KSA), or the whole section: a spec
        without one still lists the project's accounts, to prune those a removed `identity:` made."""
        return [owned for kind, part in self._parts.items() if kind in kinds
                for owned in part.owned(spec_name, kinds, known)]

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        return self._parts[change.kind].hazard(change, going_inside)


def for_run(clients) -> IamProvider:
    """The provider of one run, from its reconciler.providers.clients.Clients."""
    spec = clients.spec
    return IamProvider(lambda: clients.iam, lambda: clients.projects,
                       MemberRecord(clients.admin_records, spec.name), clients.project)
