"""The container v1 Cluster and NodePool as GKE keeps them: validation, the fields the server fills in, updates.

Pure functions over camelCase dicts (the JSON of the API); the server module owns storage and operations.
Wording of errors follows the real API where it is known (cluster and pool names, label fingerprints); the rest is
worded plainly and marked "(sandbox)" where it is a limit of the emulator rather than of GKE.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.sandbox.base.api_errors import ApiError, bad_request
from reconciler.sandbox.base.ids import hex_id
from reconciler.sandbox.compute import catalog
from reconciler.sandbox.gke.nodes import instance_group_name
from reconciler.spec.tpu import TPU_MACHINES, topology_chips

API_ROOT = "https://container.googleapis.com/v1"
COMPUTE_ROOT = "https://www.googleapis.com/compute/v1"
_NAME = re.compile(r"(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)")
# Versions each release channel offers, default first; an auto-upgrade moves to the next one.
CHANNEL_VERSIONS: dict[str, tuple[str, ...]] = {
    "RAPID": ("1.34.1-gke.1431000", "1.34.2-gke.1120000"),
    "REGULAR": ("1.33.5-gke.1201000", "1.34.1-gke.1431000"),
    "STABLE": ("1.33.4-gke.1245000", "1.33.5-gke.1201000"),
    "EXTENDED": ("1.32.9-gke.1108000", "1.33.4-gke.1245000"),
}
DEFAULT_CHANNEL = "REGULAR"  # what a new cluster is enrolled in when the request names no channel
# NodeConfig.oauthScopes when a request sets none: the scopes Cloud Logging and Monitoring need (they are on).
DEFAULT_SCOPES = ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring"]
DEFAULT_MACHINE_TYPE = "e2-medium"
# What a ClusterUpdate may carry here, and the operation each is.
CLUSTER_UPDATES = {"desiredReleaseChannel": "UPDATE_CLUSTER", "desiredMasterVersion": "UPGRADE_MASTER",
                   "desiredNodeVersion": "UPGRADE_NODES", "desiredWorkloadIdentityConfig": "UPDATE_CLUSTER",
                   "desiredLocations": "UPDATE_CLUSTER", "desiredNodePoolAutoscaling": "UPDATE_CLUSTER",
                   "desiredLoggingService": "UPDATE_CLUSTER", "desiredMonitoringService": "UPDATE_CLUSTER"}
# What an UpdateNodePoolRequest may change here (beside nodeVersion and imageType). machineType moves the nodes to
# another machine type in place (GKE's vertical scaling of a node pool).
POOL_UPDATES = ("locations", "labels", "taints", "resourceLabels", "tags", "upgradeSettings", "machineType")


@dataclass(frozen=True, slots=True)
class Location:
    project: str
    location: str  # a zone (zonal cluster) or a region (regional cluster)

    @property
    def zonal(self) -> bool:
        return self.location in catalog.ZONES

    @property
    def region(self) -> str:
        return catalog.region_of(self.location) if self.zonal else self.location

    @property
    def default_zones(self) -> list[str]:
        """A zonal cluster's nodes live in its zone; a regional one's in three zones of the region."""
        return [self.location] if self.zonal else catalog.regions()[self.location][:3]

    def link(self, *parts: str, project: str | None = None) -> str:
        scope = "zones" if self.zonal else "locations"
        return "/".join((API_ROOT, "projects", project or self.project, scope, self.location, *parts))

    def name(self, *parts: str) -> str:
        return "/".join(("projects", self.project, "locations", self.location, *parts))


def check_location(project: str, location: str) -> Location:
    if location not in catalog.ZONES and location not in catalog.regions():
        raise bad_request(f'Location "{location}" does not exist (sandbox: known zones and regions are those of '
                          "reconciler/sandbox/compute/catalog.py).")
    return Location(project, location)


def check_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"{field} must be set.", field)
    if not _NAME.fullmatch(value):
        raise bad_request(f'Invalid value for field "{field}": "{value}". Must be a match of regex '
                          "'(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and '-' allowed, must start "
                          "with a letter and end with an alphanumeric, and must be no longer than 40 characters).",
                          field)
    return value


def label_fingerprint(labels: Mapping[str, str]) -> str:
    return hex_id(json.dumps(dict(sorted(labels.items()))))


def content_etag(resource: Mapping) -> str:
    return base64.b64encode(hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).digest()[:8]).decode()


def channel_of(cluster: Mapping) -> str:
    channel = cluster.get("releaseChannel", {}).get("channel", "UNSPECIFIED")
    return channel if channel in CHANNEL_VERSIONS else DEFAULT_CHANNEL


def pick_version(requested: str | None, cluster: Mapping, field: str) -> str:
    """The version a request asks for ('latest', '-' or empty: the channel's default), if GKE offers it."""
    offered = CHANNEL_VERSIONS[channel_of(cluster)]
    if not requested or requested in ("-", "latest"):
        return offered[0]
    matches = [version for version in offered if version == requested or version.startswith(requested + ".")
               or version.startswith(requested + "-")]
    if not matches:
        raise bad_request(f'{field} "{requested}" is unsupported; the {channel_of(cluster)} channel offers '
                          f"{', '.join(offered)}.", field)
    return matches[-1]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"[0-9]+", version))


def check_not_newer(node_version: str, cluster: Mapping, field: str) -> None:
    master = cluster.get("currentMasterVersion")
    if master and version_key(node_version) > version_key(master):
        raise bad_request(f"Node version {node_version} cannot be newer than the master version {master}.", field)


# --- clusters --------------------------------------------------------------------------------------------------------

def new_cluster(body: Mapping, where: Location, *, endpoint: str, ca_certificate: str, now: str) -> dict:
    """The cluster GKE stores for a create request's `cluster` (status PROVISIONING, pools PROVISIONING)."""
    name = check_name(body.get("name"), "cluster.name")
    if body.get("autopilot", {}).get("enabled"):
        raise bad_request("Autopilot clusters are not emulated (sandbox).", "cluster.autopilot")
    pools_requested = body.get("nodePools", [])
    initial_count = body.get("initialNodeCount", 0)
    if pools_requested and (initial_count or body.get("nodeConfig")):
        raise bad_request("Cluster.initial_node_count and Cluster.node_config must be unset when node_pools is "
                          "specified.", "cluster.node_pools")
    if not pools_requested and initial_count <= 0:
        raise bad_request("Cluster.initial_node_count must be greater than zero.", "cluster.initial_node_count")
    workload_pool = body.get("workloadIdentityConfig", {}).get("workloadPool")
    if workload_pool is not None and workload_pool != f"{where.project}.svc.id.goog":
        raise bad_request(f'Workload Identity pool "{workload_pool}" is invalid: the pool of project '
                          f'{where.project} is "{where.project}.svc.id.goog".', "cluster.workload_identity_config")
    locations = body.get("locations") or where.default_zones
    for zone in locations:
        if zone not in where.default_zones and catalog.region_of(zone) != where.region:
            raise bad_request(f'Node location "{zone}" is not in the cluster\'s region {where.region}.',
                              "cluster.locations")
    cluster = {**body, "locations": locations}
    cluster.setdefault("releaseChannel", {"channel": DEFAULT_CHANNEL})
    version = pick_version(body.get("initialClusterVersion"), cluster, "cluster.initial_cluster_version")
    network = body.get("network", "default")
    subnetwork = body.get("subnetwork", "default")
    cluster.update({
        "name": name, "status": "PROVISIONING", "createTime": now, "zone": where.location, "location": where.location,
        "selfLink": where.link("clusters", name), "id": hex_id(where.name("clusters", name), now, length=64),
        "initialClusterVersion": version, "currentMasterVersion": version, "currentNodeVersion": version,
        "endpoint": endpoint, "masterAuth": {**body.get("masterAuth", {}), "clusterCaCertificate": ca_certificate},
        "labelFingerprint": label_fingerprint(body.get("resourceLabels", {})),
        "loggingService": body.get("loggingService", "logging.googleapis.com/kubernetes"),
        "monitoringService": body.get("monitoringService", "monitoring.googleapis.com/kubernetes"),
        "network": network, "subnetwork": subnetwork,
        "networkConfig": {**body.get("networkConfig", {}),
                          "network": f"projects/{where.project}/global/networks/{network}",
                          "subnetwork": f"projects/{where.project}/regions/{where.region}/subnetworks/{subnetwork}"},
        "clusterIpv4Cidr": body.get("clusterIpv4Cidr") or "10.96.0.0/14", "servicesIpv4Cidr": "34.118.224.0/20",
        "nodeIpv4CidrSize": 24, "shieldedNodes": body.get("shieldedNodes", {"enabled": True}),
        "databaseEncryption": body.get("databaseEncryption", {"state": "DECRYPTED"}),
    })
    requested = pools_requested or [{"name": "default-pool", "initialNodeCount": initial_count,
                                     "config": body.get("nodeConfig", {})}]
    names = [pool.get("name") for pool in requested]
    duplicate = next((pool_name for pool_name in names if names.count(pool_name) > 1), None)
    if duplicate:
        raise bad_request(f'Node pool "{duplicate}" is specified twice.', "cluster.node_pools")
    cluster["nodePools"] = [new_node_pool(pool, cluster, where, field=f"cluster.node_pools[{index}]")
                            for index, pool in enumerate(requested)]
    cluster["nodeConfig"] = cluster["nodePools"][0]["config"]
    cluster.pop("initialNodeCount", None)  # it made the default pool; the pool carries it from now on
    return cluster


def apply_cluster_update(cluster: dict, update: Mapping) -> None:
    """Commit a ClusterUpdate (checked by check_cluster_update) to the stored cluster."""
    if "desiredReleaseChannel" in update:
        cluster["releaseChannel"] = update["desiredReleaseChannel"]
    if "desiredMasterVersion" in update:
        cluster["currentMasterVersion"] = update["desiredMasterVersion"]
    if "desiredNodeVersion" in update:
        for pool in cluster["nodePools"]:
            if update.get("desiredNodePoolId") in (None, pool["name"]):
                pool["version"] = update["desiredNodeVersion"]
        cluster["currentNodeVersion"] = min((pool["version"] for pool in cluster["nodePools"]), key=version_key)
    if "desiredWorkloadIdentityConfig" in update:
        cluster["workloadIdentityConfig"] = update["desiredWorkloadIdentityConfig"]
    if "desiredLocations" in update:
        cluster["locations"] = update["desiredLocations"]
    if "desiredNodePoolAutoscaling" in update:
        pool_by_name(cluster, update["desiredNodePoolId"])["autoscaling"] = update["desiredNodePoolAutoscaling"]
    for field, key in (("desiredLoggingService", "loggingService"), ("desiredMonitoringService", "monitoringService")):
        if field in update:
            cluster[key] = update[field]


def auto_upgrade_pools(cluster: dict) -> None:
    """What an auto-upgrade does after the master: every pool with autoUpgrade moves to the master's version."""
    for pool in cluster["nodePools"]:
        if pool.get("management", {}).get("autoUpgrade"):
            pool["version"] = cluster["currentMasterVersion"]
    cluster["currentNodeVersion"] = min((pool["version"] for pool in cluster["nodePools"]), key=version_key)


def check_cluster_update(cluster: Mapping, update: dict, where: Location) -> str:
    """Validate a ClusterUpdate (resolving versions in place); the operation type it runs as."""
    asked = [field for field in update if field.startswith("desired") and field != "desiredNodePoolId"]
    unsupported = [field for field in asked if field not in CLUSTER_UPDATES]
    if unsupported:
        raise bad_request(f"ClusterUpdate fields {unsupported} are not emulated (sandbox); supported: "
                          f"{sorted(CLUSTER_UPDATES)}.", "update")
    if len(asked) != 1:
        raise bad_request(f"Exactly one update can be applied to a cluster per request; got {asked or 'none'}.",
                          "update")
    field = asked[0]
    if field == "desiredNodePoolAutoscaling":
        pool_by_name(cluster, update.get("desiredNodePoolId", ""))
    if field == "desiredMasterVersion":
        update[field] = pick_version(update[field], cluster, "update.desired_master_version")
    elif field == "desiredNodeVersion":
        if update.get("desiredNodePoolId"):
            pool_by_name(cluster, update["desiredNodePoolId"])
        version = pick_version(update[field], cluster, "update.desired_node_version")
        check_not_newer(version, cluster, "update.desired_node_version")
        update[field] = version
    elif field == "desiredWorkloadIdentityConfig":
        pool = update[field].get("workloadPool")
        if pool not in (None, f"{where.project}.svc.id.goog"):
            raise bad_request(f'Workload Identity pool "{pool}" is invalid: the pool of project {where.project} is '
                              f'"{where.project}.svc.id.goog".', "update.desired_workload_identity_config")
    elif field == "desiredReleaseChannel" and update[field].get("channel", "UNSPECIFIED") == "UNSPECIFIED":
        raise bad_request("Leaving a release channel is not emulated (sandbox).", "update.desired_release_channel")
    return CLUSTER_UPDATES[field]


def pool_by_name(cluster: Mapping, pool_name: str) -> dict:
    for pool in cluster["nodePools"]:
        if pool["name"] == pool_name:
            return pool
    raise ApiError(404, f"Not found: {cluster['selfLink'].split('/v1/', 1)[1]}/nodePools/{pool_name}.",
                   status="NOT_FOUND")


# --- node pools ------------------------------------------------------------------------------------------------------

def new_node_pool(body: Mapping, cluster: Mapping, where: Location, *, field: str = "node_pool") -> dict:
    """The pool GKE stores for a create request's `nodePool` (status PROVISIONING), after GKE's checks."""
    name = check_name(body.get("name"), f"{field}.name")
    count = body.get("initialNodeCount", 0)
    if count < 0:
        raise bad_request(f"{field}.initial_node_count must be non-negative.", f"{field}.initial_node_count")
    config = dict(body.get("config", {}))
    machine_type = config.setdefault("machineType", DEFAULT_MACHINE_TYPE)
    locations = body.get("locations") or cluster["locations"]
    for zone in locations:
        if not catalog.offers(zone, machine_type):
            raise bad_request(f'Machine type "{machine_type}" is not available in zone "{zone}".',
                              f"{field}.config.machine_type")
    check_tpu(machine_type, body.get("placementPolicy", {}), count, locations, field)
    config.setdefault("diskSizeGb", 100)
    config.setdefault("diskType", "pd-balanced")
    config.setdefault("imageType", "COS_CONTAINERD")
    config.setdefault("oauthScopes", DEFAULT_SCOPES)
    config.setdefault("serviceAccount", "default")
    config["metadata"] = {"disable-legacy-endpoints": "true", **config.get("metadata", {})}
    version = pick_version(body.get("version"), cluster, f"{field}.version")
    check_not_newer(version, cluster, f"{field}.version")
    management = {"autoUpgrade": True, "autoRepair": True, **body.get("management", {})}
    if cluster.get("releaseChannel", {}).get("channel", "UNSPECIFIED") != "UNSPECIFIED" and not (
            management["autoUpgrade"] and management["autoRepair"]):
        raise bad_request("Auto-upgrade and auto-repair cannot be turned off for node pools of a cluster enrolled in "
                          "a release channel.", f"{field}.management")
    cluster_name = where.name("clusters", cluster["name"])
    return {
        **body, "name": name, "config": config, "initialNodeCount": count, "locations": locations,
        "management": management, "version": version, "status": "PROVISIONING",
        "selfLink": where.link("clusters", cluster["name"], "nodePools", name), "podIpv4CidrSize": 24,
        "upgradeSettings": body.get("upgradeSettings", {"maxSurge": 1, "strategy": "SURGE"}),
        "maxPodsConstraint": body.get("maxPodsConstraint", {"maxPodsPerNode": "110"}),
        "instanceGroupUrls": [f"{COMPUTE_ROOT}/projects/{where.project}/zones/{zone}/instanceGroupManagers/"
                              f"{instance_group_name(cluster_name, name, zone)}" for zone in locations],
    }


def check_tpu(machine_type: str, placement: Mapping, nodes: int, locations: list[str], field: str) -> None:
    """GKE's TPU v5e rules: topology ↔ machine type ↔ node count, one zone per slice."""
    tpu = TPU_MACHINES.get(machine_type)
    topology = placement.get("tpuTopology")
    if tpu is None:
        if topology:
            raise bad_request(f"placementPolicy.tpuTopology is only valid for TPU machine types, not "
                              f"{machine_type}.", f"{field}.placement_policy.tpu_topology")
        return
    if len(locations) != 1:
        raise bad_request(f"A TPU node pool must be in exactly one zone, got {locations}.", f"{field}.locations")
    topology = topology or tpu.single_host[0]
    if topology in tpu.single_host:
        hosts = 1
    elif topology in tpu.multi_host:
        hosts = topology_chips(topology) // tpu.chips_per_node
    else:
        offered = ", ".join(tpu.single_host + tpu.multi_host)
        raise bad_request(f'TPU topology "{topology}" is not supported for machine type {machine_type}; supported: '
                          f"{offered}.", f"{field}.placement_policy.tpu_topology")
    if hosts > 1 and placement.get("type") not in (None, "COMPACT"):
        raise bad_request(f"A multi-host TPU slice needs placementPolicy.type COMPACT, not {placement['type']}.",
                          f"{field}.placement_policy.type")
    if nodes != hosts and not (hosts == 1 and nodes > 1):
        raise bad_request(f"TPU topology {topology} on {machine_type} needs {hosts} node(s), got {nodes}.",
                          f"{field}.initial_node_count")


def multi_host(pool: Mapping) -> bool:
    tpu = TPU_MACHINES.get(pool.get("config", {}).get("machineType", ""))
    topology = pool.get("placementPolicy", {}).get("tpuTopology")
    return tpu is not None and topology is not None and topology in tpu.multi_host


def check_pool_update(pool: Mapping, request: Mapping, cluster: Mapping, field: str = "") -> dict:
    """The pool after an UpdateNodePoolRequest (not yet stored); node_version and image_type are required."""
    for required in ("nodeVersion", "imageType"):
        if not request.get(required):
            raise bad_request(f"Required field {required} is not set.", required)
    unsupported = sorted(set(request) - {"nodeVersion", "imageType", "etag", "name", *POOL_UPDATES})
    if unsupported:
        raise bad_request(f"UpdateNodePoolRequest fields {unsupported} are not emulated (sandbox); supported: "
                          f"nodeVersion, imageType, etag, {', '.join(POOL_UPDATES)}.", unsupported[0])
    updated = {**pool, "config": dict(pool["config"])}
    version = pick_version(request["nodeVersion"], cluster, "node_version")
    check_not_newer(version, cluster, "node_version")
    updated["version"] = version
    updated["config"]["imageType"] = request["imageType"]
    if "machineType" in request:
        updated["config"]["machineType"] = _checked_new_machine_type(pool, request["machineType"],
                                                                     request.get("locations", pool["locations"]))
    if "locations" in request:
        for zone in request["locations"]:
            if not catalog.offers(zone, pool["config"]["machineType"]):
                raise bad_request(f'Machine type "{pool["config"]["machineType"]}" is not available in zone '
                                  f'"{zone}".', "locations")
        if TPU_MACHINES.get(pool["config"]["machineType"]) and len(request["locations"]) != 1:
            raise bad_request("A TPU node pool must be in exactly one zone.", "locations")
        updated["locations"] = request["locations"]
    for wrapped, key in (("labels", "labels"), ("taints", "taints"), ("resourceLabels", "labels"),
                         ("tags", "tags")):
        if wrapped in request:
            updated["config"][wrapped] = request[wrapped].get(key, {} if key == "labels" else [])
    if "upgradeSettings" in request:
        updated["upgradeSettings"] = request["upgradeSettings"]
    return updated


def _checked_new_machine_type(pool: Mapping, machine_type: str, locations: list[str]) -> str:
    if machine_type in TPU_MACHINES or pool["config"]["machineType"] in TPU_MACHINES:
        raise bad_request("Changing the machine type of a TPU node pool in place is not emulated (sandbox): create a "
                          "new node pool.", "machine_type")
    for zone in locations:
        if not catalog.offers(zone, machine_type):
            raise bad_request(f'Machine type "{machine_type}" is not available in zone "{zone}".', "machine_type")
    return machine_type
