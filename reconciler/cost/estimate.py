"""The monthly cost a plan adds or removes, line by line, from the before and after of its GKE changes.

Pure: it reads the plan's values and a price table, never an API, so an offline plan of a pull request and a live
plan cost the same. TPU slice nodes are billed as their chips (the host VM is in the chip price); CPU nodes as
their machine type; each cluster pays GKE's management fee. Buckets cost what is stored in them: "depends on usage".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from reconciler.cost.prices import Price, PriceTable
from reconciler.engine.plan import Plan
from reconciler.engine.resource import UNKNOWN, Action, Change
from reconciler.providers.gke import addresses as gke
from reconciler.providers.gke.resources import is_zonal
from reconciler.spec import tpu

REGIONAL_ZONES = 3  # a regional cluster runs its CPU node count in each of the region's zones; GKE's default is 3
BUCKET_KIND = "gcs.bucket"


@dataclass(frozen=True, slots=True)
class CostLine:
    what: str  # "TPU v5e chips", "e2-standard-4 nodes", "GKE cluster fee"
    before: float  # units: chips, nodes or clusters
    after: float
    price: Price | None  # None: not in the table (the line says so, the total leaves it out)
    unit: str  # "chip", "node", "cluster"

    def monthly_delta(self, hours: float) -> float | None:
        return None if self.price is None else (self.after - self.before) * self.price.usd * hours


@dataclass(frozen=True, slots=True)
class Estimate:
    lines: tuple[CostLine, ...]  # only what changes
    prices: PriceTable
    usage_based: tuple[str, ...]  # addresses whose cost depends on usage (buckets created or deleted)

    @property
    def monthly_delta(self) -> float:
        return sum(line.monthly_delta(self.prices.hours_per_month) or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> tuple[CostLine, ...]:
        return tuple(line for line in self.lines if line.price is None)

    @property
    def unconfirmed(self) -> tuple[CostLine, ...]:
        return tuple(line for line in self.lines if line.price is not None and not line.price.confirmed)


def estimate(plan: Plan, prices: PriceTable) -> Estimate:
    """What applying plan changes in the monthly bill. A value known only after apply counts as none (GKE's counted
    fields all come from the spec, so none is unknown in practice)."""
    before: Counter[tuple[str, str]] = Counter()
    after: Counter[tuple[str, str]] = Counter()
    usage_based = []
    for change in plan.changes:
        if change.kind == BUCKET_KIND and change.action in (Action.CREATE, Action.DELETE, Action.REPLACE):
            usage_based.append(change.address)
        before.update(_units(change.kind, _before(change)))
        after.update(_units(change.kind, _after(change)))
    lines = []
    for key in sorted(set(before) | set(after)):
        if before[key] != after[key]:
            lines.append(_line(key, before[key], after[key], prices))
    return Estimate(tuple(lines), prices, tuple(usage_based))


def _before(change: Change) -> Mapping[str, Any] | None:
    return change.before if change.action is not Action.CREATE else None


def _after(change: Change) -> Mapping[str, Any] | None:
    return None if change.action is Action.DELETE else change.after


def _units(kind: str, fields: Mapping[str, Any] | None) -> Counter[tuple[str, str]]:
    """(what, name) → how many of it these fields hold: ("tpu", "v5e") chips, ("machine", "e2-standard-4") nodes."""
    units: Counter[tuple[str, str]] = Counter()
    if not fields:
        return units
    if kind == gke.CLUSTER:
        units[("cluster", "")] += 1
        cpu = fields.get("cpuNodes") or {}
        count = _number(cpu.get("nodeCount"))
        if count and cpu.get("machineType") not in (None, UNKNOWN):
            zones = 1 if is_zonal(str(fields.get("location", ""))) else REGIONAL_ZONES
            units[("machine", cpu["machineType"])] += count * zones
    elif kind == gke.NODE_POOL:
        machine = tpu.TPU_MACHINES.get(str(fields.get("machineType")))
        count = _number(fields.get("nodeCount"))
        if machine is not None and count:
            units[("tpu", machine.generation)] += count * machine.chips_per_node
    return units


def _number(value: Any) -> int:
    """A node count as plans hold it: a number, or a list per zone (zones that disagree), or unknown (0)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return sum(item for item in value if isinstance(item, int) and not isinstance(item, bool))
    return 0


def _line(key: tuple[str, str], before: int, after: int, prices: PriceTable) -> CostLine:
    what, name = key
    if what == "tpu":
        return CostLine(f"TPU {name} chips", before, after, prices.tpu_chip_hour.get(name), "chip")
    if what == "machine":
        return CostLine(f"{name} nodes", before, after, prices.machine_hour.get(name), "node")
    return CostLine("GKE cluster fee", before, after, prices.cluster_hour, "cluster")
