"""The sandbox's small world of zones, machine types and default quotas (read by the Compute and GKE emulators).

TPU v5e zones: Google's "TPU regions and zones" page (cloud.google.com/tpu/docs/regions-zones, read 2026-12-01)
lists v5e ("all v5litepod configurations") in us-central1-a, us-south1-a, us-west1-c, us-west4-a and, single-tenant,
us-east5-a/b/c; no v5e in the other zones listed here (us-central1-b/c/f, us-west1-a/b, us-west4-b, us-east1-*), which
is what a preflight test of "a zone without v5e" needs. Machine shapes of ct5lp-hightpu-1t/-4t/-8t (24/112/224 vCPUs,
48/192/384 GB) are from GKE's "Plan TPUs in GKE" page; e2/n2 shapes from Compute Engine's machine-types page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MachineShape:
    name: str
    guest_cpus: int
    memory_mb: int
    description: str
    shared_cpu: bool = False
    tpu_chips: int = 0  # chips per host for ct5lp-* (google.com/tpu on the node)


_GB = 1024
CPU_MACHINES: tuple[MachineShape, ...] = (
    MachineShape("e2-medium", 2, 4 * _GB, "Efficient Instance, 2 vCPU (1/2 shared physical core) and 4 GB RAM", True),
    MachineShape("e2-standard-2", 2, 8 * _GB, "Efficient Instance, 2 vCPUs, 8 GB RAM"),
    MachineShape("e2-standard-4", 4, 16 * _GB, "Efficient Instance, 4 vCPUs, 16 GB RAM"),
    MachineShape("e2-standard-8", 8, 32 * _GB, "Efficient Instance, 8 vCPUs, 32 GB RAM"),
    MachineShape("n2-standard-4", 4, 16 * _GB, "4 vCPUs 16 GB RAM"),
    MachineShape("n2-standard-8", 8, 32 * _GB, "8 vCPUs 32 GB RAM"),
)
TPU_V5E_MACHINES: tuple[MachineShape, ...] = (
    MachineShape("ct5lp-hightpu-1t", 24, 48 * _GB, "24 vCPUs, 48 GB RAM, 1 TPU v5 lite chip", tpu_chips=1),
    MachineShape("ct5lp-hightpu-4t", 112, 192 * _GB, "112 vCPUs, 192 GB RAM, 4 TPU v5 lite chips", tpu_chips=4),
    MachineShape("ct5lp-hightpu-8t", 224, 384 * _GB, "224 vCPUs, 384 GB RAM, 8 TPU v5 lite chips", tpu_chips=8),
)
MACHINES = {shape.name: shape for shape in CPU_MACHINES + TPU_V5E_MACHINES}

# zone → whether it offers TPU v5e; every zone offers the CPU machine types.
ZONES: dict[str, bool] = {
    "us-central1-a": True, "us-central1-b": False, "us-central1-c": False, "us-central1-f": False,
    "us-south1-a": True, "us-south1-b": False, "us-south1-c": False,
    "us-west1-a": False, "us-west1-b": False, "us-west1-c": True,
    "us-west4-a": True, "us-west4-b": False, "us-west4-c": False,
    "us-east5-a": True, "us-east5-b": True, "us-east5-c": True,
    "us-east1-b": False, "us-east1-c": False, "us-east1-d": False,
}

# Regional quotas a new project starts with here (limits); `--quota` and POST /_sandbox/quotas change them.
# 32 v5e chips covers the specs (2x2 and 2x4 slices) with room for a replacement; 0 where no zone offers v5e.
DEFAULT_CPU_QUOTAS = {"CPUS": 24.0, "N2_CPUS": 24.0, "DISKS_TOTAL_GB": 4096.0, "SSD_TOTAL_GB": 500.0,
                      "IN_USE_ADDRESSES": 8.0, "INSTANCES": 24.0}
DEFAULT_TPU_QUOTAS = {"TPU_LITE_PODSLICE_V5": 32.0, "PREEMPTIBLE_TPU_LITE_PODSLICE_V5": 32.0,
                      "TPU_LITE_DEVICE_V5": 32.0}


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def regions() -> dict[str, list[str]]:
    """region → its zones, in order."""
    found: dict[str, list[str]] = {}
    for zone in ZONES:
        found.setdefault(region_of(zone), []).append(zone)
    return found


def machines_in(zone: str) -> list[MachineShape]:
    """The machine types a zone offers ([] for a zone the sandbox does not know)."""
    if zone not in ZONES:
        return []
    return list(CPU_MACHINES + (TPU_V5E_MACHINES if ZONES[zone] else ()))


def offers(zone: str, machine_type: str) -> bool:
    return any(shape.name == machine_type for shape in machines_in(zone))


def default_quotas(region: str) -> dict[str, float]:
    has_tpu = any(ZONES[zone] for zone in regions().get(region, ()))
    tpu = DEFAULT_TPU_QUOTAS if has_tpu else dict.fromkeys(DEFAULT_TPU_QUOTAS, 0.0)
    return {**DEFAULT_CPU_QUOTAS, **tpu}
