"""The Compute emulator: compute v1 zones, machine types (get, list, aggregatedList), regions with quotas[], and the
managed instance groups of GKE's node pools (instanceGroupManagers.get).

Read-only over the table of catalog.py and, with `--gke-control URL`, over the GKE emulator's node pools: in Google
Cloud a node pool is a managed instance group per zone, whose targetSize is the pool's size (the container v1 API does
not report it), and the TPU chips of running pools count against the region's TPU quota usage, as they do in Google
Cloud. Quotas per region start at catalog.default_quotas(), for every project;
`--quota REGION:METRIC=LIMIT[:USAGE]` (repeatable) changes them at launch, and the control endpoint
  POST /_sandbox/quotas  {"region": "us-central1", "metric": "TPU_LITE_PODSLICE_V5", "limit": 4, "usage": 0,
                          "project": optional: only this project}
while running (GET /_sandbox/quotas shows what is set). Errors are compute's legacy body (no `status`).
Replies are built as compute v1 JSON directly: importing google.cloud.compute_v1 for its types takes seconds (it loads
every Compute service), and compute's JSON comes from its discovery document, which the contract tests check.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.sandbox.base import launch
from reconciler.sandbox.base.api_errors import ApiError, ErrorFormat
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.ids import numeric_id
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.compute import catalog

API_ROOT = "https://www.googleapis.com/compute/v1"
# Compute reports this creation time for its built-in resources (zones, regions, machine types).
_BUILT_IN_CREATION = "1969-12-31T16:00:00.000-08:00"
_MAX_RESULTS = 500
_NAME_FILTER = re.compile(r'\s*name\s*(?:=|eq)\s*"?([a-z0-9-]+)"?\s*')
_METRIC = re.compile(r"[A-Z][A-Z0-9_]*")

_P = "/compute/v1/projects/{project}"
ROUTES = RouteTable((
    route("GET", f"{_P}/zones/{{zone}}/machineTypes/{{machineType}}", "_get_machine_type", "compute.machineTypes.get"),
    route("GET", f"{_P}/zones/{{zone}}/machineTypes", "_list_machine_types", "compute.machineTypes.list"),
    route("GET", f"{_P}/aggregated/machineTypes", "_aggregated_machine_types", "compute.machineTypes.aggregatedList"),
    route("GET", f"{_P}/regions/{{region}}", "_get_region", "compute.regions.get"),
    route("GET", f"{_P}/regions", "_list_regions", "compute.regions.list"),
    route("GET", f"{_P}/zones/{{zone}}", "_get_zone", "compute.zones.get"),
    route("GET", f"{_P}/zones", "_list_zones", "compute.zones.list"),
    route("GET", f"{_P}/zones/{{zone}}/instanceGroupManagers/{{instanceGroupManager}}", "_get_instance_group_manager",
          "compute.instanceGroupManagers.get"),
))
# The quota metric a TPU v5e podslice's chips count against (compute v1 Quota.metric), by chips of catalog.py.
TPU_V5E_QUOTA = "TPU_LITE_PODSLICE_V5"
_GKE_TIMEOUT_S = 5
CONTROLS = RouteTable((
    route("GET", "quotas", "_control_quotas"),
    route("POST", "quotas", "_control_set_quota"),
))


@dataclass(frozen=True, slots=True)
class QuotaSetting:
    region: str
    metric: str
    limit: float
    usage: float = 0.0
    project: str | None = None  # None: every project

    @classmethod
    def parse(cls, text: str) -> "QuotaSetting":
        """REGION:METRIC=LIMIT[:USAGE], the --quota argument."""
        found = re.fullmatch(r"([a-z0-9-]+):([A-Z0-9_]+)=([0-9.]+)(?::([0-9.]+))?", text)
        if not found:
            raise ValueError(f"--quota takes REGION:METRIC=LIMIT[:USAGE], got {text!r}")
        return cls.of({"region": found[1], "metric": found[2], "limit": float(found[3]),
                       "usage": float(found[4] or 0)})

    @classmethod
    def of(cls, raw: Mapping) -> "QuotaSetting":
        unknown = set(raw) - {"region", "metric", "limit", "usage", "project"}
        if unknown:
            raise ValueError(f"unknown quota field(s) {sorted(unknown)}")
        setting = cls(raw.get("region", ""), raw.get("metric", ""), raw.get("limit", -1), raw.get("usage", 0.0),
                      raw.get("project"))
        if setting.region not in catalog.regions():
            raise ValueError(f"unknown region {setting.region!r}; known: {', '.join(catalog.regions())}")
        if not _METRIC.fullmatch(str(setting.metric)):
            raise ValueError(f"{setting.metric!r} is not a quota metric name (e.g. TPU_LITE_PODSLICE_V5)")
        for field, number in (("limit", setting.limit), ("usage", setting.usage)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise ValueError(f"quota {field} must be a non-negative number, got {number!r}")
        return setting


class ComputeServer(EmulatorServer):
    error_format = ErrorFormat.LEGACY
    service = "compute.googleapis.com"

    def __init__(self, address: tuple[str, int], quotas: list[QuotaSetting] | None = None,
                 gke_control: str | None = None):
        super().__init__(address, ComputeHandler, "compute")
        self.quota_settings: list[QuotaSetting] = list(quotas or [])
        self.gke_control = gke_control  # the GKE emulator's base URL: its node pools are our instance groups

    def instance_groups(self, project: str) -> list[dict]:
        """The GKE emulator's instance groups of this project ([] without a GKE emulator); 503 when it is down."""
        if not self.gke_control:
            return []
        try:
            with urllib.request.urlopen(f"{self.gke_control}/_sandbox/instance-groups", timeout=_GKE_TIMEOUT_S) as reply:
                listed = json.load(reply)["instanceGroups"]
        except (OSError, ValueError, KeyError) as error:
            raise ApiError(503, f"The service is currently unavailable (sandbox: the GKE emulator at "
                                f"{self.gke_control} did not answer: {error}).", "backendError") from None
        return [group for group in listed if group["project"] == project]

    def tpu_chips_in_use(self, project: str, region: str) -> float:
        return float(sum(catalog.MACHINES[group["machineType"]].tpu_chips * group["targetSize"]
                         for group in self.instance_groups(project)
                         if catalog.region_of(group["zone"]) == region and group["machineType"] in catalog.MACHINES))

    def default_error(self, status: int) -> ApiError:
        if status == 429:
            return ApiError(429, "Rate Limit Exceeded", "rateLimitExceeded")
        return super().default_error(status)

    def quotas(self, project: str, region: str) -> list[dict]:
        values = {metric: (limit, 0.0) for metric, limit in catalog.default_quotas(region).items()}
        for setting in self.quota_settings:  # later settings win; a project's own over the every-project ones
            if setting.region == region and setting.project is None:
                values[setting.metric] = (float(setting.limit), float(setting.usage))
        for setting in self.quota_settings:
            if setting.region == region and setting.project == project:
                values[setting.metric] = (float(setting.limit), float(setting.usage))
        if TPU_V5E_QUOTA in values:  # what GKE's pools hold comes on top of the usage set
            limit, usage = values[TPU_V5E_QUOTA]
            values[TPU_V5E_QUOTA] = (limit, usage + self.tpu_chips_in_use(project, region))
        return [{"metric": metric, "limit": limit, "usage": usage} for metric, (limit, usage) in sorted(values.items())]


class ComputeHandler(EmulatorHandler):
    server: ComputeServer
    routes = ROUTES
    controls = CONTROLS

    def _get_machine_type(self, query: dict, project: str, zone: str, machineType: str) -> None:  # noqa: N803
        self._zone(project, zone)
        shape = next((shape for shape in catalog.machines_in(zone) if shape.name == machineType), None)
        if shape is None:
            raise _not_found(f"projects/{project}/zones/{zone}/machineTypes/{machineType}")
        self.send_json(200, _machine_type(project, zone, shape))

    def _list_machine_types(self, query: dict, project: str, zone: str) -> None:
        self._zone(project, zone)
        shapes = _filtered(catalog.machines_in(zone), query)
        self.send_json(200, self._page(
            query, [_machine_type(project, zone, shape) for shape in shapes], kind="compute#machineTypeList",
            self_link=f"{API_ROOT}/projects/{project}/zones/{zone}/machineTypes"))

    def _aggregated_machine_types(self, query: dict, project: str) -> None:
        items = {}
        for zone in catalog.ZONES:
            shapes = _filtered(catalog.machines_in(zone), query)
            items[f"zones/{zone}"] = ({"machineTypes": [_machine_type(project, zone, shape) for shape in shapes]}
                                      if shapes else _no_results(f"zones/{zone}"))
        self.send_json(200, {
            "kind": "compute#machineTypeAggregatedList", "id": f"projects/{project}/aggregated/machineTypes",
            "items": items, "selfLink": f"{API_ROOT}/projects/{project}/aggregated/machineTypes"})

    def _get_instance_group_manager(self, query: dict, project: str, zone: str,
                                    instanceGroupManager: str) -> None:  # noqa: N803
        self._zone(project, zone)
        group = next((group for group in self.server.instance_groups(project)
                      if group["zone"] == zone and group["name"] == instanceGroupManager), None)
        if group is None:
            raise _not_found(f"projects/{project}/zones/{zone}/instanceGroupManagers/{instanceGroupManager}")
        self.send_json(200, _instance_group_manager(group))

    def _get_region(self, query: dict, project: str, region: str) -> None:
        if region not in catalog.regions():
            raise _not_found(f"projects/{project}/regions/{region}")
        self.send_json(200, self._region(project, region))

    def _list_regions(self, query: dict, project: str) -> None:
        regions = [self._region(project, region) for region in _filtered(list(catalog.regions()), query)]
        self.send_json(200, self._page(query, regions, kind="compute#regionList",
                                                       self_link=f"{API_ROOT}/projects/{project}/regions"))

    def _get_zone(self, query: dict, project: str, zone: str) -> None:
        self.send_json(200, self._zone(project, zone))

    def _list_zones(self, query: dict, project: str) -> None:
        zones = [_zone_resource(project, zone) for zone in _filtered(list(catalog.ZONES), query)]
        self.send_json(200, self._page(query, zones, kind="compute#zoneList",
                                                     self_link=f"{API_ROOT}/projects/{project}/zones"))

    # --- control endpoints ---------------------------------------------------------------------------------------

    def _control_quotas(self, query: dict) -> None:
        self.send_json(200, {"quotas": [_setting_json(setting) for setting in self.server.quota_settings]})

    def _control_set_quota(self, query: dict) -> None:
        try:
            raw = json.loads(self.read_body() or b"null")
            settings = [QuotaSetting.of(item) for item in (raw if isinstance(raw, list) else [raw])]
        except (ValueError, TypeError, AttributeError) as error:
            raise ApiError(400, f"bad quota setting: {error}") from None
        self.server.quota_settings.extend(settings)
        self.send_json(200, {"quotas": [_setting_json(setting) for setting in self.server.quota_settings]})

    # --- helpers -------------------------------------------------------------------------------------------------

    def _zone(self, project: str, zone: str) -> dict:
        if zone not in catalog.ZONES:
            raise _not_found(f"projects/{project}/zones/{zone}")
        return _zone_resource(project, zone)

    def _region(self, project: str, region: str) -> dict:
        return {"kind": "compute#region", "id": numeric_id("region", region), "name": region,
                "creationTimestamp": _BUILT_IN_CREATION, "description": region, "status": "UP",
                "selfLink": f"{API_ROOT}/projects/{project}/regions/{region}",
                "zones": [f"{API_ROOT}/projects/{project}/zones/{zone}" for zone in catalog.regions()[region]],
                "quotas": self.server.quotas(project, region), "supportsPzs": False}

    def _page(self, query: dict, items: list[dict], *, kind: str, self_link: str) -> dict:
        try:
            size = int(query.get("maxResults", _MAX_RESULTS))
        except ValueError:
            raise ApiError(400, f"Invalid value for field 'maxResults': '{query['maxResults']}'. Must be a number.",
                           "invalid") from None
        if not 0 <= size <= _MAX_RESULTS:
            raise ApiError(400, f"Invalid value for field 'maxResults': '{size}'. Must be in the range [0, "
                                f"{_MAX_RESULTS}].", "invalid")
        start = _decode_token(query.get("pageToken"))
        page = {"kind": kind, "id": self_link.split("/compute/v1/", 1)[1], "selfLink": self_link,
                "items": items[start:start + (size or _MAX_RESULTS)]}
        if start + (size or _MAX_RESULTS) < len(items):
            page["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return page


def _machine_type(project: str, zone: str, shape: catalog.MachineShape) -> dict:
    return {"kind": "compute#machineType", "id": numeric_id("machineType", shape.name), "name": shape.name,
            "creationTimestamp": _BUILT_IN_CREATION, "description": shape.description,
            "guestCpus": shape.guest_cpus, "memoryMb": shape.memory_mb, "isSharedCpu": shape.shared_cpu,
            "maximumPersistentDisks": 128, "maximumPersistentDisksSizeGb": "263168", "zone": zone,
            "selfLink": f"{API_ROOT}/projects/{project}/zones/{zone}/machineTypes/{shape.name}"}


def _instance_group_manager(group: Mapping) -> dict:
    """A GKE pool's managed instance group in one zone, as compute v1 shows it (stable: no action under way)."""
    project, zone, name, size = group["project"], group["zone"], group["name"], group["targetSize"]
    zone_link = f"{API_ROOT}/projects/{project}/zones/{zone}"
    template = f"{API_ROOT}/projects/{project}/global/instanceTemplates/{name.removesuffix('-grp')}"
    return {"kind": "compute#instanceGroupManager", "id": numeric_id("instanceGroupManager", project, zone, name),
            "creationTimestamp": group["creationTimestamp"], "name": name, "zone": zone_link,
            "instanceTemplate": template, "versions": [{"instanceTemplate": template}],
            "instanceGroup": f"{zone_link}/instanceGroups/{name}", "baseInstanceName": name.removesuffix("-grp"),
            "fingerprint": base64.b64encode(f"{name}:{size}".encode()).decode(),
            "currentActions": {"none": size, "creating": 0, "deleting": 0, "recreating": 0, "refreshing": 0,
                               "restarting": 0, "abandoning": 0, "verifying": 0},
            "status": {"isStable": True, "versionTarget": {"isReached": True}}, "targetSize": size,
            "selfLink": f"{zone_link}/instanceGroupManagers/{name}", "listManagedInstancesResults": "PAGELESS"}


def _zone_resource(project: str, zone: str) -> dict:
    return {"kind": "compute#zone", "id": numeric_id("zone", zone), "name": zone, "description": zone,
            "creationTimestamp": _BUILT_IN_CREATION, "status": "UP",
            "region": f"{API_ROOT}/projects/{project}/regions/{catalog.region_of(zone)}",
            "selfLink": f"{API_ROOT}/projects/{project}/zones/{zone}", "supportsPzs": False}


def _filtered(items: list, query: dict) -> list:
    """The `filter` parameter, as far as the sandbox reads it: `name = "x"` (or `name eq x`); else 400."""
    text = query.get("filter")
    if not text:
        return items
    found = _NAME_FILTER.fullmatch(text)
    if not found:
        raise ApiError(400, f"Invalid value for field 'filter': '{text}'. The sandbox reads only name = \"...\".",
                       "invalid")
    return [item for item in items if getattr(item, "name", item) == found[1]]


def _no_results(scope: str) -> dict:
    return {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": f"There are no results for scope '{scope}' on "
                        "this page.", "data": [{"key": "scope", "value": scope}]}}


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:
        raise ApiError(400, f"Invalid value for field 'pageToken': '{token}'.", "invalid") from None


def _not_found(resource: str) -> ApiError:
    return ApiError(404, f"The resource '{resource}' was not found", "notFound")


def _setting_json(setting: QuotaSetting) -> dict:
    return {"region": setting.region, "metric": setting.metric, "limit": setting.limit, "usage": setting.usage,
            "project": setting.project}


def main(argv: list[str] | None = None) -> None:
    parser = launch.argument_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--quota", action="append", default=[], metavar="REGION:METRIC=LIMIT[:USAGE]",
                        help="a regional quota for every project, e.g. us-central1:TPU_LITE_PODSLICE_V5=8; repeatable")
    parser.add_argument("--gke-control", metavar="URL",
                        help="the GKE emulator's base URL: its node pools are served as instance groups")
    args = parser.parse_args(argv)
    launch.start_logging()
    try:
        quotas = [QuotaSetting.parse(text) for text in args.quota]
    except ValueError as error:
        parser.error(str(error))
    launch.serve(ComputeServer((args.host, args.port), quotas, args.gke_control), args, "Compute emulator")


if __name__ == "__main__":
    main()
