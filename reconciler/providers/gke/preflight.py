"""Before any write: does each zone offer the machine types the plan creates there, and does the region's TPU quota
cover the chips it adds? (compute v1 machineTypes.get and regions.get.) What a user would otherwise learn from a
node pool create that fails minutes after the cluster was made.

Capacity (a stockout) cannot be seen in advance; the operation's failure says so when it happens.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Problem
from reconciler.engine.resource import Action, Change, Observed
from reconciler.providers.gke import addresses
from reconciler.providers.gke.diffs import ERROR, changed_paths
from reconciler.providers.gke.resources import is_zonal, region_of
from reconciler.providers.google_retry import idempotent
from reconciler.spec import tpu

TIMEOUT = 30  # seconds per HTTP request
# The quota TPU v5e podslice chips (ct5lp-*) count against (compute v1 Quota.metric). The metrics of other TPU
# generations are not checked: their names are not verified here.
V5E_QUOTA = "TPU_LITE_PODSLICE_V5"
ZONES_SHOWN = 6


@dataclass(frozen=True, slots=True)
class _Offer:
    """A machine type the plan needs in a zone (zone None: in every zone of the region, a regional CPU pool)."""

    address: Address
    field: str
    zone: str | None
    region: str
    machine_type: str
    fix: str  # what to change when the zone does not offer it


@dataclass(frozen=True, slots=True)
class _Chips:
    """TPU v5e chips the plan adds in a zone."""

    address: Address
    field: str
    zone: str
    chips: int


class Preflight:
    def __init__(self, project: str, machine_types: Callable[[], object], regions: Callable[[], object]):
        self._project = project
        self._machine_types = machine_types  # compute_v1 clients, built (seconds of imports) only when needed
        self._regions = regions

    def problems(self, changes: Sequence[Change]) -> list[Problem]:
        """changes: the plan's, deletes included: the chips a deleted pool holds are free for the creates (the walk
        deletes it first, see quota_claims)."""
        offers = [offer for change in changes for offer in _offers(change)]
        chips = [ask for change in changes for ask in _chips(change)]
        if not offers and not chips:
            return []
        regions = _each(self._region, sorted({o.region for o in offers if o.zone is None} |
                                             {region_of(c.zone) for c in chips}))
        needed = [(offer, zone) for offer in offers
                  for zone in ([offer.zone] if offer.zone else regions[offer.region]["zones"])]
        offered = _each(lambda pair: self._offers(*pair), sorted({(zone, o.machine_type) for o, zone in needed}))
        problems = []
        for offer, zone in needed:
            if not offered[(zone, offer.machine_type)]:
                problems.append(Problem(offer.address, offer.field, self._not_offered(zone, offer)))
        return _first_per_field(problems) + _quota_problems(chips, _freed(changes), regions)

    def _region(self, region: str) -> dict:
        found = idempotent("compute.regions.get", f"projects/{self._project}/regions/{region}",
                           lambda: self._regions().get(project=self._project, region=region, timeout=TIMEOUT,
                                                       retry=None))
        return {"zones": [link.rsplit("/", 1)[1] for link in found.zones],
                "quotas": {quota.metric: (quota.limit, quota.usage) for quota in found.quotas}}

    def _offers(self, zone: str, machine_type: str) -> bool:
        from google.api_core.exceptions import NotFound

        target = f"projects/{self._project}/zones/{zone}/machineTypes/{machine_type}"
        def read() -> bool:
            try:
                self._machine_types().get(project=self._project, zone=zone, machine_type=machine_type,
                                          timeout=TIMEOUT, retry=None)
            except NotFound:
                return False
            return True

        return idempotent("compute.machineTypes.get", target, read)

    def _not_offered(self, zone: str, offer: _Offer) -> str:
        machine = tpu.TPU_MACHINES.get(offer.machine_type)
        what = f"{offer.machine_type} (TPU {machine.generation})" if machine else offer.machine_type
        zones = sorted(self._zones_offering(offer.machine_type), key=lambda z: (region_of(z) != offer.region, z))
        if not zones:
            return f"{zone} does not offer {what}, and no zone does: {offer.fix}"
        shown = ", ".join(zones[:ZONES_SHOWN]) + (", ..." if len(zones) > ZONES_SHOWN else "")
        return f"{zone} does not offer {what}; zones that do: {shown}: {offer.fix}"

    def _zones_offering(self, machine_type: str) -> list[str]:
        from google.cloud import compute_v1

        request = compute_v1.AggregatedListMachineTypesRequest(project=self._project, filter=f'name = "{machine_type}"')
        listed = idempotent("compute.machineTypes.aggregatedList", f"projects/{self._project}", lambda: list(
            self._machine_types().aggregated_list(request=request, timeout=TIMEOUT, retry=None)))
        return [scope.removeprefix("zones/") for scope, found in listed if found.machine_types]


def _offers(change: Change) -> Iterable[_Offer]:
    if change.action is Action.DELETE:
        return
    resource = change.desired
    fields = resource.fields
    if change.kind == addresses.CLUSTER:
        if change.action is Action.UPDATE and "cpuNodes.machineType" not in changed_paths(change) and (
                change.observed is None or change.observed.fields.get("cpuNodes") is not None):
            return
        location = fields["location"]
        yield _Offer(resource.address, "cluster.cpuNodes.machineType", location if is_zonal(location) else None,
                     region_of(location), fields["cpuNodes"]["machineType"],
                     "choose another machine type for cluster.cpuNodes.machineType, or another location")
    elif change.action is not Action.UPDATE:
        where = "cluster.location" if is_zonal(resource.params["location"]) else f"{resource.spec_field}.zone"
        yield _Offer(resource.address, f"{resource.spec_field}.machineType", fields["zone"], region_of(fields["zone"]),
                     fields["machineType"], f"pick one of them for {where}")


def quota_claims(change: Change) -> frozenset[str]:
    """The quota a node pool change takes or frees: its region's TPU v5e chips (what the preflight counts)."""
    if change.kind != addresses.NODE_POOL:
        return frozenset()
    fields = change.observed.fields if change.action is Action.DELETE else change.desired.fields
    machine = tpu.TPU_MACHINES.get(fields.get("machineType"))
    zone = fields.get("zone")
    if machine is None or machine.generation != "v5e" or not isinstance(zone, str):
        return frozenset()
    return frozenset({f"{V5E_QUOTA} in {region_of(zone)}"})


def _held_chips(observed: Observed) -> int:
    """The v5e chips a live pool counts in its region's quota usage: its instance groups' size; when that was not
    read (GKE still creating or deleting it: its groups are made first and go last; a pool found for pruning), the
    size it was created with; none for a pool whose create failed."""
    machine = tpu.TPU_MACHINES.get(observed.fields.get("machineType"))
    if machine is None or machine.generation != "v5e":
        return 0
    nodes = observed.fields.get("nodeCount")
    if isinstance(nodes, list):  # one size per zone
        nodes = sum(nodes)
    if not isinstance(nodes, int):
        failed = observed.facts.get("status") == ERROR
        nodes = 0 if failed else observed.facts.get("initial_node_count") or 0
    return nodes * machine.chips_per_node


def _chips(change: Change) -> Iterable[_Chips]:
    """The v5e chips a node pool change adds: all of a new slice's, the growth of a resize, the difference of a
    replacement (its old slice deleted first), nothing for a slice still being created by an earlier run (its
    chips already count in the quota's usage)."""
    if change.kind != addresses.NODE_POOL or change.action is Action.DELETE:
        return
    fields = change.desired.fields
    machine = tpu.TPU_MACHINES.get(fields["machineType"])
    if machine is None or machine.generation != "v5e":
        return
    adds = fields["nodeCount"] * machine.chips_per_node
    observed = change.observed
    if observed is not None and region_of(str(observed.fields.get("zone"))) == region_of(fields["zone"]):
        adds -= _held_chips(observed)
    if adds > 0:
        yield _Chips(change.desired.address, change.desired.spec_field, fields["zone"], adds)


def _freed(changes: Sequence[Change]) -> dict[str, int]:
    """Region → the v5e chips the plan's deletes of node pools free there."""
    freed: dict[str, int] = {}
    for change in changes:
        if change.kind == addresses.NODE_POOL and change.action is Action.DELETE and change.observed is not None:
            zone = change.observed.fields.get("zone")
            if isinstance(zone, str):
                freed[region_of(zone)] = freed.get(region_of(zone), 0) + _held_chips(change.observed)
    return freed


def _quota_problems(chips: list[_Chips], freed: dict[str, int], regions: dict[str, dict]) -> list[Problem]:
    problems = []
    for region in sorted({region_of(ask.zone) for ask in chips}):
        asks = [ask for ask in chips if region_of(ask.zone) == region]
        needed = sum(ask.chips for ask in asks)
        first = asks[0]
        quota = regions[region]["quotas"].get(V5E_QUOTA)
        if quota is None:
            message = (f"{first.zone}: {region} has no TPU v5e chips quota ({V5E_QUOTA}) and the plan adds {needed}; "
                       "request it or pick another zone")
        else:
            limit, usage = quota
            credit = freed.get(region, 0)
            free = max(0.0, limit - usage + credit)
            if needed <= free:
                continue
            deleting = f", {credit} freed by the pools this plan deletes" if credit else ""
            message = (f"{first.zone}: TPU v5e chips quota {free:g} of {needed} free ({V5E_QUOTA} in {region}: limit "
                       f"{limit:g}, {usage:g} in use{deleting}); request more or pick another zone")
        problems.append(Problem(first.address, first.field, message))
    return problems


def _first_per_field(problems: list[Problem]) -> list[Problem]:
    """One problem per spec field (a regional pool's machine type missing in three zones is one thing to fix)."""
    seen, kept = set(), []
    for problem in problems:
        if (problem.address, problem.field) not in seen:
            seen.add((problem.address, problem.field))
            kept.append(problem)
    return kept


def _each(read: Callable, keys: list) -> dict:
    """read(key) for every key, in parallel: the preflight's reads are independent."""
    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(keys)), thread_name_prefix="gke-preflight") as pool:
        return dict(zip(keys, pool.map(read, keys)))
