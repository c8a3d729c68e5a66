"""The GKE emulator: container v1 clusters, node pools and operations over REST, nodes handed to a NodeSink.

Control endpoints (beside health, faults and requests):
  GET  /_sandbox/nodes                    every pool's nodes, as the NodeSink gets them
  GET  /_sandbox/instance-groups          every pool's managed instance group per zone and its target size: what the
                                          Compute emulator serves as instanceGroupManagers (GKE's pools are MIGs)
  GET|POST /_sandbox/operation-latency    {"CREATE_CLUSTER": 2.0, "default": 0.5}: seconds per operation type
  GET|POST|DELETE /_sandbox/operation-failures
                                          [{"operationType": "CREATE_NODE_POOL", "kind": "stockout"|"quota",
                                            "code": 8, "message": "...", "count": 1}]: the next such operations
                                          end DONE with that error (and their node pool or cluster in ERROR)
  POST /_sandbox/operation-finish         {"name": "projects/P/locations/L/operations/NAME"}: that operation ends
                                          now (a test holds one with a long latency, then lets it go)
  POST /_sandbox/auto-upgrade             {"cluster": "projects/P/locations/L/clusters/C", "version": optional}:
                                          an UPGRADE_MASTER operation moving master and auto-upgrading pools
  GET|POST|DELETE /_sandbox/apiserver-proxy
                                          POST {"rules": [{"kind": "reset"|"drop"|"stall", "probability": 0.1,
                                          "seed": 7, "delay_s": 2, "after_reply": false}]}: clusters created from
                                          now on get the address of a TCP proxy in front of the apiserver that
                                          fails connections by these rules (tcp_proxy.py); DELETE: the rules
                                          cleared and new clusters get the apiserver's own address again (the
                                          proxy keeps serving the clusters that have its address)
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from google.cloud import container_v1

from reconciler.sandbox.base import launch, proto_json
from reconciler.sandbox.tcp_proxy import TcpProxy
from reconciler.sandbox.base.api_errors import ApiError, ErrorFormat, bad_request
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.ids import project_number
from reconciler.sandbox.base.operations import Operation, Operations, rfc3339
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.base.store import ResourceStore
from reconciler.sandbox.gke import resources
from reconciler.sandbox.gke.kube_access import KubeAccess, kube_access
from reconciler.sandbox.gke.nodes import NodeSink, NoNodeSink, NodeSpec, instance_group_name, pool_nodes
from reconciler.sandbox.gke.resources import Location

# Seconds from start to DONE per operation type: small, so that the demo is quick; real GKE takes minutes.
DEFAULT_LATENCIES = {"CREATE_CLUSTER": 1.0, "CREATE_NODE_POOL": 1.0, "default": 0.5}
SLOW_NODE_SYNC_S = 5.0
_FAILURE_PRESETS = {
    "stockout": (8, "Google Compute Engine: Not all instances running in IGM. Current errors: [GCE_STOCKOUT]: "
                    "The zone '{zone}' does not have enough resources available to fulfill the request. "
                    "'(resource type:compute)'."),
    "quota": (8, "Insufficient regional quota to satisfy request: resource \"TPU_LITE_PODSLICE_V5\": request requires "
                 "more than the project has available in region {region}."),
}
# What an operation of each kind is said to be doing, in GKE's "Operation X is currently ..." refusal.
_DOING = {"CREATE_CLUSTER": "creating cluster {c}", "DELETE_CLUSTER": "deleting cluster {c}",
          "CREATE_NODE_POOL": "creating a node pool for cluster {c}",
          "DELETE_NODE_POOL": "deleting a node pool for cluster {c}",
          "SET_NODE_POOL_SIZE": "resizing a node pool for cluster {c}",
          "UPGRADE_NODES": "upgrading a node pool for cluster {c}", "UPGRADE_MASTER": "upgrading cluster {c}",
          "SET_LABELS": "setting labels on cluster {c}", "UPDATE_CLUSTER": "updating cluster {c}"}
_CLUSTER_STATUS_DURING = {"CREATE_CLUSTER": "PROVISIONING", "DELETE_CLUSTER": "STOPPING"}
_POOL_STATUS_DURING = {"CREATE_NODE_POOL": "PROVISIONING", "DELETE_NODE_POOL": "STOPPING",
                       "SET_NODE_POOL_SIZE": "RECONCILING", "UPGRADE_NODES": "RECONCILING"}

log = logging.getLogger(__name__)

_P = "/v1/projects/{project}/locations/{location}"
ROUTES = RouteTable((
    route("POST", f"{_P}/clusters", "_create_cluster", "container.projects.locations.clusters.create"),
    route("GET", f"{_P}/clusters", "_list_clusters", "container.projects.locations.clusters.list"),
    route("GET", f"{_P}/clusters/{{cluster}}", "_get_cluster", "container.projects.locations.clusters.get"),
    route("PUT", f"{_P}/clusters/{{cluster}}", "_update_cluster", "container.projects.locations.clusters.update"),
    route("DELETE", f"{_P}/clusters/{{cluster}}", "_delete_cluster", "container.projects.locations.clusters.delete"),
    route("POST", f"{_P}/clusters/{{cluster}}:setResourceLabels", "_set_labels",
          "container.projects.locations.clusters.setResourceLabels"),
    route("POST", f"{_P}/clusters/{{cluster}}/nodePools", "_create_pool",
          "container.projects.locations.clusters.nodePools.create"),
    route("GET", f"{_P}/clusters/{{cluster}}/nodePools", "_list_pools",
          "container.projects.locations.clusters.nodePools.list"),
    route("GET", f"{_P}/clusters/{{cluster}}/nodePools/{{pool}}", "_get_pool",
          "container.projects.locations.clusters.nodePools.get"),
    route("PUT", f"{_P}/clusters/{{cluster}}/nodePools/{{pool}}", "_update_pool",
          "container.projects.locations.clusters.nodePools.update"),
    route("DELETE", f"{_P}/clusters/{{cluster}}/nodePools/{{pool}}", "_delete_pool",
          "container.projects.locations.clusters.nodePools.delete"),
    route("POST", f"{_P}/clusters/{{cluster}}/nodePools/{{pool}}:setSize", "_set_size",
          "container.projects.locations.clusters.nodePools.setSize"),
    route("GET", f"{_P}/operations/{{operation}}", "_get_operation", "container.projects.locations.operations.get"),
    route("GET", f"{_P}/operations", "_list_operations", "container.projects.locations.operations.list"),
))
CONTROLS = RouteTable((
    route("GET", "nodes", "_control_nodes"),
    route("GET", "instance-groups", "_control_instance_groups"),
    route("GET", "operation-latency", "_control_latency"),
    route("POST", "operation-latency", "_control_set_latency"),
    route("GET", "operation-failures", "_control_failures"),
    route("POST", "operation-failures", "_control_add_failures"),
    route("DELETE", "operation-failures", "_control_clear_failures"),
    route("POST", "operation-finish", "_control_finish_operation"),
    route("POST", "auto-upgrade", "_control_auto_upgrade"),
    route("GET", "apiserver-proxy", "_control_proxy"),
    route("POST", "apiserver-proxy", "_control_set_proxy"),
    route("DELETE", "apiserver-proxy", "_control_stop_handing_out_proxy"),
))


class GkeServer(EmulatorServer):
    error_format = ErrorFormat.RPC
    service = "container.googleapis.com"

    def __init__(self, address: tuple[str, int], store: ResourceStore, kube: KubeAccess,
                 node_sink: NodeSink | None = None, latencies: Mapping[str, float] | None = None):
        super().__init__(address, GkeHandler, "gke")
        self.store = store
        self.kube = kube
        self.node_sink = node_sink or NoNodeSink()
        self.latencies = {**DEFAULT_LATENCIES, **(latencies or {})}
        self.failures: list[dict] = []  # planned operation failures, consumed in order
        self.operations = Operations(store, "operation/", self._finish)
        self.proxy: TcpProxy | None = None  # in front of the apiserver, once a control call asked for it
        self.hands_out_proxy = False  # whether new clusters get the proxy's address as their endpoint
        for key, stored in store.list("cluster/"):  # the Kubernetes side may have restarted too
            self._follow_the_apiserver(key, stored.resource)
            self._sync_nodes(key.removeprefix("cluster/"), stored.resource, list(stored.resource["nodeCounts"]))

    def _follow_the_apiserver(self, key: str, stored: dict) -> None:
        """A restarted sandbox's apiserver may come back on another port: each kept cluster's endpoint and CA follow
        it (a GKE cluster's control plane keeps its address; here every cluster's is the sandbox's one)."""
        cluster = stored["cluster"]
        endpoint = self.kube.endpoint_of(key.removeprefix("cluster/"))
        auth = cluster.get("masterAuth", {})
        if (cluster.get("endpoint"), auth.get("clusterCaCertificate")) != (endpoint, self.kube.ca_certificate):
            moved = {**cluster, "endpoint": endpoint, "masterAuth": {**auth, "clusterCaCertificate":
                                                                      self.kube.ca_certificate}}
            self.store.put(key, {**stored, "cluster": moved})

    def server_close(self) -> None:
        self.operations.close()
        if self.proxy is not None:
            self.proxy.close()
        super().server_close()

    def endpoint_of(self, cluster_name: str) -> str:
        """A new cluster's endpoint: the apiserver's, or the proxy in front of it while it is handed out."""
        return self.proxy.endpoint if self.hands_out_proxy and self.proxy else self.kube.endpoint_of(cluster_name)

    def apiserver_proxy(self) -> TcpProxy:
        if self.proxy is None:
            if self.kube.endpoint is None:
                raise bad_request("no apiserver to put a proxy in front of (the emulator runs without --kube-endpoint)")
            host, _, port = self.kube.endpoint.rpartition(":")
            self.proxy = TcpProxy((host, int(port)), host=host)
        return self.proxy

    def latency(self, operation_type: str) -> float:
        return self.latencies.get(operation_type, self.latencies["default"])

    def take_failure(self, operation_type: str) -> dict | None:
        with self.store.lock:
            for planned in self.failures:
                if planned["operationType"] in ("*", operation_type):
                    planned["count"] -= 1
                    if planned["count"] == 0:
                        self.failures.remove(planned)
                    return {"code": planned["code"], "message": planned["message"]}
        return None

    def nodes(self) -> list[tuple[str, str, NodeSpec]]:
        found = []
        for key, stored in self.store.list("cluster/"):
            cluster_name = key.removeprefix("cluster/")
            for pool in stored.resource["cluster"]["nodePools"]:
                count = stored.resource["nodeCounts"].get(pool["name"], 0)
                found += [(cluster_name, pool["name"], node) for node in pool_nodes(cluster_name, pool, count)]
        return found

    def instance_groups(self) -> list[dict]:
        """One managed instance group per pool and zone: from the pool's create on (GKE makes a pool's groups, at
        the size it is created with, while the pool is PROVISIONING; their machines count in quota usage from
        then), until its delete is done. None for a pool whose create failed."""
        found = []
        for key, stored in self.store.list("cluster/"):
            cluster_name = key.removeprefix("cluster/")
            cluster = stored.resource["cluster"]
            for pool in cluster["nodePools"]:
                size = stored.resource["nodeCounts"].get(pool["name"])
                if size is None and pool["status"] == "PROVISIONING":
                    size = pool["initialNodeCount"]
                if size is None:
                    continue
                for zone in pool["locations"]:
                    found.append({"project": cluster_name.split("/")[1], "zone": zone,
                                  "name": instance_group_name(cluster_name, pool["name"], zone),
                                  "targetSize": size,
                                  "machineType": pool["config"]["machineType"], "cluster": cluster_name,
                                  "pool": pool["name"], "creationTimestamp": cluster["createTime"]})
        return found

    # --- operations finishing: the effect of each kind -----------------------------------------------------------

    def _finish(self, operation: Operation) -> None:
        record = operation.record
        key = record["cluster"]
        stored = self.store.get(key)
        if stored is None:
            return
        value = stored.resource
        cluster = value["cluster"]
        effect = record["effect"]
        kind = record["type"]
        failure = operation.failure
        touched: list[str] = []
        cluster_name = key.removeprefix("cluster/")  # the node sink speaks cluster names, the store keys
        if kind == "DELETE_CLUSTER" and failure is None:
            self.store.delete(key)
            for pool in cluster["nodePools"]:
                self._sync(cluster_name, pool["name"], [])
            return
        if failure is not None:
            target = _target_pool(cluster, effect) if kind == "CREATE_NODE_POOL" else cluster
            if kind in ("CREATE_CLUSTER", "CREATE_NODE_POOL"):
                target.update(status="ERROR", statusMessage=failure["message"])
        elif kind == "CREATE_CLUSTER":
            for pool in cluster["nodePools"]:
                value["nodeCounts"][pool["name"]] = pool["initialNodeCount"]
                touched.append(pool["name"])
        elif kind == "CREATE_NODE_POOL":
            pool = _target_pool(cluster, effect)
            value["nodeCounts"][pool["name"]] = pool["initialNodeCount"]
            touched.append(pool["name"])
        elif kind == "DELETE_NODE_POOL":
            cluster["nodePools"] = [pool for pool in cluster["nodePools"] if pool["name"] != effect["pool"]]
            value["nodeCounts"].pop(effect["pool"], None)
            self._sync(cluster_name, effect["pool"], [])
        elif kind == "SET_NODE_POOL_SIZE":
            value["nodeCounts"][effect["pool"]] = effect["nodeCount"]
            touched.append(effect["pool"])
        elif kind == "UPGRADE_NODES" and "updatedPool" in effect:
            cluster["nodePools"] = [effect["updatedPool"] if pool["name"] == effect["pool"] else pool
                                    for pool in cluster["nodePools"]]
            touched.append(effect["pool"])
        elif kind == "SET_LABELS":
            cluster["resourceLabels"] = effect["resourceLabels"]
            cluster["labelFingerprint"] = resources.label_fingerprint(effect["resourceLabels"])
        elif "update" in effect:
            resources.apply_cluster_update(cluster, effect["update"])
            if effect.get("autoUpgradePools"):
                resources.auto_upgrade_pools(cluster)
            touched = [pool["name"] for pool in cluster["nodePools"]]
        if cluster["status"] != "ERROR":
            cluster["status"] = "RUNNING"
            cluster.pop("statusMessage", None)
        for pool in cluster["nodePools"]:
            if pool["status"] != "ERROR":
                pool["status"] = "RUNNING"
        self.store.put(key, value)
        self._sync_nodes(cluster_name, value, touched)

    def _sync_nodes(self, cluster_name: str, value: Mapping, pool_names: list[str]) -> None:
        pools = {pool["name"]: pool for pool in value["cluster"]["nodePools"]}
        for pool_name in pool_names:
            if pool_name in pools:
                count = value["nodeCounts"].get(pool_name, 0)
                self._sync(cluster_name, pool_name, pool_nodes(cluster_name, pools[pool_name], count))

    def _sync(self, cluster_name: str, pool_name: str, nodes: list[NodeSpec]) -> None:
        started = time.monotonic()
        try:
            self.node_sink.sync(cluster_name, pool_name, nodes)
        except Exception:  # the Kubernetes side is sandbox plumbing: its failure must not wedge the GKE API
            log.exception("the node sink failed for %s/nodePools/%s", cluster_name, pool_name)
        took = time.monotonic() - started
        if took > SLOW_NODE_SYNC_S:  # every GKE request waits on it: the log says so
            log.warning("syncing %d nodes of %s/nodePools/%s took %.1f s", len(nodes), cluster_name, pool_name, took)


class GkeHandler(EmulatorHandler):
    server: GkeServer
    routes = ROUTES
    controls = CONTROLS

    # --- clusters ------------------------------------------------------------------------------------------------

    def _create_cluster(self, query: dict, project: str, location: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.CreateClusterRequest)
        where = resources.check_location(project, location)
        name = request.get("cluster", {}).get("name")
        kube = self.server.kube
        cluster = resources.new_cluster(request.get("cluster", {}), where, now=rfc3339(time.time()),
                                        endpoint=self.server.endpoint_of(where.name("clusters", name or "")),
                                        ca_certificate=kube.ca_certificate)
        key = _cluster_key(where, cluster["name"])
        with self.server.store.lock:
            if self.server.store.get(key) is not None:
                raise _already_exists(where.name("clusters", cluster["name"]))
            self.server.store.create(key, {"cluster": cluster, "nodeCounts": {}})
            operation = self._start(where, cluster["name"], "CREATE_CLUSTER", where.link("clusters", cluster["name"]))
        self._reply(container_v1.Operation, operation)

    def _get_cluster(self, query: dict, project: str, location: str, cluster: str) -> None:
        self.server.operations.advance()
        self._reply(container_v1.Cluster, _render_cluster(*self._existing(project, location, cluster)))

    def _list_clusters(self, query: dict, project: str, location: str) -> None:
        self.server.operations.advance()
        scope = "" if location == "-" else resources.check_location(project, location).location + "/"
        listed = [_render_cluster(stored.resource, stored.etag)
                  for _, stored in self.server.store.list(f"cluster/projects/{project}/locations/{scope}")]
        self._reply(container_v1.ListClustersResponse, {"clusters": listed})

    def _update_cluster(self, query: dict, project: str, location: str, cluster: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.UpdateClusterRequest)
        update = dict(request.get("update", {}))
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, etag = self._existing(project, location, cluster)
            _check_etag(update.pop("etag", None), etag, where.name("clusters", cluster))
            kind = resources.check_cluster_update(value["cluster"], update, where)
            operation = self._start(where, cluster, kind, where.link("clusters", cluster), update=update)
        self._reply(container_v1.Operation, operation)

    def _delete_cluster(self, query: dict, project: str, location: str, cluster: str) -> None:
        where = resources.check_location(project, location)
        with self.server.store.lock:
            self._existing(project, location, cluster)
            operation = self._start(where, cluster, "DELETE_CLUSTER", where.link("clusters", cluster))
        self._reply(container_v1.Operation, operation)

    def _set_labels(self, query: dict, project: str, location: str, cluster: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.SetLabelsRequest)
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, _ = self._existing(project, location, cluster)
            expected = value["cluster"]["labelFingerprint"]
            supplied = request.get("labelFingerprint", "")
            if supplied != expected:
                raise ApiError(400, "Labels could not be set due to fingerprint mismatch; try again with the proper "
                                    f'fingerprint: incorrect fingerprint supplied was "{supplied}", the expected one '
                                    f'is "{expected}".', status="FAILED_PRECONDITION")
            operation = self._start(where, cluster, "SET_LABELS", where.link("clusters", cluster),
                                    resourceLabels=request.get("resourceLabels", {}))
        self._reply(container_v1.Operation, operation)

    # --- node pools ----------------------------------------------------------------------------------------------

    def _create_pool(self, query: dict, project: str, location: str, cluster: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.CreateNodePoolRequest)
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, _ = self._existing(project, location, cluster)
            pool = resources.new_node_pool(request.get("nodePool", {}), value["cluster"], where)
            if any(existing["name"] == pool["name"] for existing in value["cluster"]["nodePools"]):
                raise _already_exists(where.name("clusters", cluster, "nodePools", pool["name"]))
            self._refuse_if_busy(where, cluster)
            value["cluster"]["nodePools"].append(pool)
            self.server.store.put(_cluster_key(where, cluster), value)
            operation = self._start(where, cluster, "CREATE_NODE_POOL",
                                    where.link("clusters", cluster, "nodePools", pool["name"]), pool=pool["name"])
        self._reply(container_v1.Operation, operation)

    def _get_pool(self, query: dict, project: str, location: str, cluster: str, pool: str) -> None:
        self.server.operations.advance()
        value, etag = self._existing(project, location, cluster)
        rendered = _render_cluster(value, etag)
        self._reply(container_v1.NodePool, resources.pool_by_name(rendered, pool))

    def _list_pools(self, query: dict, project: str, location: str, cluster: str) -> None:
        self.server.operations.advance()
        rendered = _render_cluster(*self._existing(project, location, cluster))
        self._reply(container_v1.ListNodePoolsResponse, {"nodePools": rendered["nodePools"]})

    def _update_pool(self, query: dict, project: str, location: str, cluster: str, pool: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.UpdateNodePoolRequest)
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, etag = self._existing(project, location, cluster)
            stored_pool = resources.pool_by_name(_render_cluster(value, etag), pool)
            _check_etag(request.get("etag"), stored_pool["etag"], where.name("clusters", cluster, "nodePools", pool))
            updated = resources.check_pool_update(resources.pool_by_name(value["cluster"], pool), request,
                                                  value["cluster"])
            operation = self._start(where, cluster, "UPGRADE_NODES",
                                    where.link("clusters", cluster, "nodePools", pool), pool=pool, updatedPool=updated)
        self._reply(container_v1.Operation, operation)

    def _delete_pool(self, query: dict, project: str, location: str, cluster: str, pool: str) -> None:
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, _ = self._existing(project, location, cluster)
            resources.pool_by_name(value["cluster"], pool)
            operation = self._start(where, cluster, "DELETE_NODE_POOL",
                                    where.link("clusters", cluster, "nodePools", pool), pool=pool)
        self._reply(container_v1.Operation, operation)

    def _set_size(self, query: dict, project: str, location: str, cluster: str, pool: str) -> None:
        request = proto_json.parse_body(self.read_body(), container_v1.SetNodePoolSizeRequest)
        where = resources.check_location(project, location)
        count = request.get("nodeCount", 0)
        if count < 0:
            raise bad_request("node_count must be non-negative.", "node_count")
        with self.server.store.lock:
            value, _ = self._existing(project, location, cluster)
            stored_pool = resources.pool_by_name(value["cluster"], pool)
            if resources.multi_host(stored_pool) and count not in (0, stored_pool["initialNodeCount"]):
                raise ApiError(400, f"Node pool {pool} is a multi-host TPU slice of "
                                    f"{stored_pool['initialNodeCount']} nodes: it can only be resized to 0 or "
                                    f"{stored_pool['initialNodeCount']}.", status="FAILED_PRECONDITION")
            operation = self._start(where, cluster, "SET_NODE_POOL_SIZE",
                                    where.link("clusters", cluster, "nodePools", pool), pool=pool, nodeCount=count)
        self._reply(container_v1.Operation, operation)

    # --- operations ----------------------------------------------------------------------------------------------

    def _get_operation(self, query: dict, project: str, location: str, operation: str) -> None:
        found = self.server.operations.get(f"projects/{project}/locations/{location}/operations/{operation}")
        if found is None and location != "-":
            raise ApiError(404, f"Not found: projects/{project}/locations/{location}/operations/{operation}.",
                           status="NOT_FOUND")
        if found is None:  # "-": any location of the project
            found = next((op for op in self.server.operations.list(f"projects/{project}/")
                          if op.key.endswith(f"/operations/{operation}")), None)
            if found is None:
                raise ApiError(404, f"Not found: projects/{project}/locations/-/operations/{operation}.",
                               status="NOT_FOUND")
        self._reply(container_v1.Operation, _render_operation(found))

    def _list_operations(self, query: dict, project: str, location: str) -> None:
        scope = "" if location == "-" else resources.check_location(project, location).location + "/"
        listed = self.server.operations.list(f"projects/{project}/locations/{scope}")
        self._reply(container_v1.ListOperationsResponse, {"operations": [_render_operation(op) for op in listed]})

    # --- control endpoints ---------------------------------------------------------------------------------------

    def _control_nodes(self, query: dict) -> None:
        self.server.operations.advance()
        self.send_json(200, {"nodes": [{"cluster": cluster, "pool": pool, "name": node.name, "labels": node.labels,
                                        "taints": list(node.taints), "capacity": node.capacity}
                                       for cluster, pool, node in self.server.nodes()]})

    def _control_instance_groups(self, query: dict) -> None:
        self.server.operations.advance()
        self.send_json(200, {"instanceGroups": self.server.instance_groups()})

    def _control_latency(self, query: dict) -> None:
        self.send_json(200, self.server.latencies)

    def _control_set_latency(self, query: dict) -> None:
        self.server.latencies.update(_latencies(self._control_json(dict)))
        self.send_json(200, self.server.latencies)

    def _control_failures(self, query: dict) -> None:
        self.send_json(200, {"failures": self.server.failures})

    def _control_add_failures(self, query: dict) -> None:
        raw = self._control_json((list, dict))
        planned = [_planned_failure(item) for item in (raw if isinstance(raw, list) else [raw])]
        with self.server.store.lock:
            self.server.failures.extend(planned)
        self.send_json(200, {"failures": self.server.failures})

    def _control_clear_failures(self, query: dict) -> None:
        with self.server.store.lock:
            self.server.failures.clear()
        self.send_json(200, {"failures": []})

    def _control_finish_operation(self, query: dict) -> None:
        name = self._control_json(dict).get("name", "")
        finished = self.server.operations.finish_now(name)
        if finished is None:
            raise ApiError(404, f"Not found: {name}.", status="NOT_FOUND")
        self.send_json(200, _render_operation(finished))

    def _control_auto_upgrade(self, query: dict) -> None:
        request = self._control_json(dict)
        name = request.get("cluster", "")
        parts = name.split("/")
        if len(parts) != 6 or parts[0::2] != ["projects", "locations", "clusters"]:
            raise bad_request(f"cluster must be projects/P/locations/L/clusters/C, got {name!r}")
        project, location, cluster = parts[1::2]
        where = resources.check_location(project, location)
        with self.server.store.lock:
            value, _ = self._existing(project, location, cluster)
            offered = resources.CHANNEL_VERSIONS[resources.channel_of(value["cluster"])]
            version = request.get("version") or next(
                (v for v in offered if resources.version_key(v) > resources.version_key(
                    value["cluster"]["currentMasterVersion"])), offered[-1])
            update = {"desiredMasterVersion": version}
            operation = self._start(where, cluster, "UPGRADE_MASTER", where.link("clusters", cluster), update=update,
                                    autoUpgradePools=True)
        self.send_json(200, operation)

    def _control_proxy(self, query: dict) -> None:
        proxy = self.server.proxy
        self.send_json(200, {"endpoint": proxy.endpoint if proxy else None, "handed_out": self.server.hands_out_proxy,
                             "rules": proxy.rules() if proxy else []})

    def _control_set_proxy(self, query: dict) -> None:
        body = self._control_json(dict)
        with self.server.store.lock:
            proxy = self.server.apiserver_proxy()
            try:
                proxy.set_rules(body.get("rules", []))
            except (ValueError, TypeError) as error:
                raise bad_request(f"bad apiserver-proxy rules: {error}") from None
            self.server.hands_out_proxy = True
        self._control_proxy(query)

    def _control_stop_handing_out_proxy(self, query: dict) -> None:
        with self.server.store.lock:
            self.server.hands_out_proxy = False
            if self.server.proxy is not None:
                self.server.proxy.set_rules([])
        self._control_proxy(query)

    def _control_json(self, expected: type | tuple[type, ...]):
        try:
            value = json.loads(self.read_body() or b"null")
        except ValueError as error:
            raise bad_request(f"bad control request body: {error}") from None
        if not isinstance(value, expected):
            raise bad_request(f"the control request body must be a JSON {expected}")
        return value

    # --- helpers -------------------------------------------------------------------------------------------------

    def _existing(self, project: str, location: str, cluster: str) -> tuple[dict, str]:
        where = resources.check_location(project, location) if location != "-" else None
        stored = self.server.store.get(_cluster_key(where, cluster)) if where else None
        if stored is None:
            raise ApiError(404, f"Not found: projects/{project}/locations/{location}/clusters/{cluster}.",
                           status="NOT_FOUND")
        return stored.resource, stored.etag

    def _refuse_if_busy(self, where: Location, cluster: str) -> None:
        # GKE runs one operation per cluster at a time.
        key = _cluster_key(where, cluster)
        running = self.server.operations.active(lambda op: op.record["cluster"] == key)
        if running is not None:
            doing = _DOING.get(running.record["type"], "operating on cluster {c}").format(c=cluster)
            raise ApiError(400, f"Operation {running.key.rsplit('/', 1)[1]} is currently {doing}. Please wait and "
                                "try again once it is done.", status="FAILED_PRECONDITION")

    def _start(self, where: Location, cluster: str, kind: str, target: str, **effect) -> dict:
        """Start an operation on a cluster (the store lock held): refused while another runs on it."""
        self._refuse_if_busy(where, cluster)
        key = _cluster_key(where, cluster)
        value = self.server.store.get(key).resource
        if kind in _CLUSTER_STATUS_DURING or kind in ("UPDATE_CLUSTER", "UPGRADE_MASTER", "UPGRADE_NODES"):
            value["cluster"]["status"] = _CLUSTER_STATUS_DURING.get(kind, "RECONCILING")
        if "pool" in effect and kind in _POOL_STATUS_DURING:
            for pool in value["cluster"]["nodePools"]:
                if pool["name"] == effect["pool"]:
                    pool["status"] = _POOL_STATUS_DURING[kind]
        self.server.store.put(key, value)
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(4)}"
        record = {"cluster": key, "type": kind, "target": target, "project": where.project,
                  "location": where.location, "zonal": where.zonal, "effect": effect}
        failure = self.server.take_failure(kind)
        if failure is not None:
            zone = f"projects/{where.project}/zones/{where.default_zones[0]}"
            failure["message"] = failure["message"].replace("{zone}", zone).replace("{region}", where.region)
        started = self.server.operations.start(where.name("operations", name), record, self.server.latency(kind),
                                               failure)
        return _render_operation(started)

    def _reply(self, message_type: type, resource: Mapping) -> None:
        self.send_json(200, proto_json.render(resource, message_type,
                                              int_enums=proto_json.int_enums_requested(self.query)))


def _cluster_key(where: Location, cluster: str) -> str:
    return f"cluster/{where.name('clusters', cluster)}"


def _target_pool(cluster: dict, effect: Mapping) -> dict:
    return resources.pool_by_name(cluster, effect["pool"])


def _already_exists(name: str) -> ApiError:
    return ApiError(409, f"Already exists: {name}.", status="ALREADY_EXISTS")


def _check_etag(supplied: str | None, current: str, name: str) -> None:
    """A stale etag is refused with ABORTED (HTTP 409), as container v1 documents for ClusterUpdate.etag and
    UpdateNodePoolRequest.etag ("update will be blocked and an ABORTED error will be returned", the discovery
    document in googleapiclient/discovery_cache) and AIP-154 requires (aip-dev/google.aip.dev#705: ABORTED, not
    FAILED_PRECONDITION/400). No etag is no condition. SetNodePoolSizeRequest has no etag field at all."""
    if supplied and supplied != current:
        raise ApiError(409, f'The etag "{supplied}" of {name} is stale; the current one is "{current}". Get the '
                            "resource again and retry.", status="ABORTED")


def _render_cluster(value: Mapping, etag: str) -> dict:
    cluster = copy.deepcopy(value["cluster"])
    counts = value["nodeCounts"]
    for pool in cluster["nodePools"]:
        pool["etag"] = resources.content_etag(pool)
    cluster["etag"] = etag
    cluster["currentNodeCount"] = sum(counts.get(pool["name"], 0) * len(pool["locations"])
                                      for pool in cluster["nodePools"])
    cluster["instanceGroupUrls"] = [url for pool in cluster["nodePools"] for url in pool["instanceGroupUrls"]]
    return cluster


def _render_operation(operation: Operation) -> dict:
    record = operation.record
    name = operation.key.rsplit("/", 1)[1]
    where = Location(record["project"], record["location"])
    rendered = {"name": name, "zone": record["location"], "location": record["location"],
                "operationType": record["type"], "status": operation.status,
                "selfLink": where.link("operations", name, project=project_number(record["project"])),
                "targetLink": record["target"], "startTime": operation.start_time}
    if operation.end_time:
        rendered["endTime"] = operation.end_time
    if operation.done and operation.error:
        rendered["error"] = operation.error
        rendered["statusMessage"] = operation.error["message"]
    return rendered


def _latencies(raw: Mapping) -> dict[str, float]:
    known = {"default", *container_v1.Operation.Type.__members__}
    parsed = {}
    for kind, seconds in raw.items():
        if kind not in known:
            raise bad_request(f"unknown operation type {kind!r}; known: default, {', '.join(sorted(known - {'default'}))}")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
            raise bad_request(f"the latency of {kind} must be a number of seconds in [0, 3600], got {seconds!r}")
        parsed[kind] = float(seconds)
    return parsed


def _planned_failure(raw: object) -> dict:
    if not isinstance(raw, dict):
        raise bad_request("an operation failure must be a JSON object")
    unknown = set(raw) - {"operationType", "kind", "code", "message", "count"}
    if unknown:
        raise bad_request(f"unknown operation failure field(s) {sorted(unknown)}")
    code, message = _FAILURE_PRESETS.get(raw.get("kind", "stockout"), (None, None))
    if code is None:
        raise bad_request(f"unknown failure kind {raw.get('kind')!r}; known: {', '.join(_FAILURE_PRESETS)}")
    planned = {"operationType": raw.get("operationType", "*"), "code": raw.get("code", code),
               "message": raw.get("message", message), "count": raw.get("count", 1)}
    if not isinstance(planned["count"], int) or planned["count"] < 1:
        raise bad_request(f"count must be a positive integer, got {planned['count']!r}")
    return planned


def main(argv: list[str] | None = None, node_sink: NodeSink | None = None) -> None:
    """The emulator process; `node_sink` is where pools' nodes go (the Kubernetes side's sink, wired by its caller)."""
    parser = launch.argument_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--store", type=Path, required=True, help="JSON file holding clusters and operations")
    parser.add_argument("--kube-endpoint", help="the sandbox apiserver's https:// URL: every cluster's endpoint")
    parser.add_argument("--kube-ca-file", type=Path, help="PEM file of the CA that signed the apiserver's certificate")
    parser.add_argument("--kubeconfig", type=Path, help="where node pools' nodes become Node objects (kwok's)")
    parser.add_argument("--operation-latency", action="append", default=[], metavar="TYPE=SECONDS",
                        help="seconds an operation type takes (TYPE: CREATE_CLUSTER, ..., or default); repeatable")
    args = parser.parse_args(argv)
    launch.start_logging()
    try:
        latencies = _latencies({kind: float(seconds) for kind, _, seconds in
                                (item.partition("=") for item in args.operation_latency)})
        kube = kube_access(args.kube_endpoint, args.kube_ca_file, args.store.with_name("generated-ca.pem"))
    except (ValueError, ApiError) as error:
        parser.error(str(error))
    if args.kubeconfig is not None:
        from reconciler.sandbox.kube.nodes import KubeNodeSink

        node_sink = KubeNodeSink(args.kubeconfig)
    server = GkeServer((args.host, args.port), ResourceStore(args.store), kube, node_sink, latencies)
    launch.serve(server, args, f"GKE emulator (state in {args.store})")


if __name__ == "__main__":
    main()
